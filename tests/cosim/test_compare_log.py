"""``cosim compare-log`` on what the model prints for the EFI scenarios against the real
boots (reference/real-boot/native-uefi-acpi.log, kexec-uefi-acpi.log): every line in scope
is equal or a documented v5.15/v6.1 difference (guest.guest.DIFFERENCES_5_15_VS_6_1)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from cosim import compare_log
from cosim.run import execute, result_log
from cosim.scenario import load

REPO = Path(__file__).parents[2]
REAL = REPO / ".." / "shared" / "reference" / "real-boot"
CASES = [
    ("baremetal-efi.toml", "native-uefi-acpi.log", 1),
    ("baremetal-efi-kexec.toml", "kexec-uefi-acpi.log", 2),
]
#: v5.15 prints this stub line after "Generating empty DTB", v6.1 before it (a documented
#: difference); compare_log pairs documented lines only within one differing block.
MOVED = "EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path"

needs_real = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real boot logs not present at {REAL.resolve()}"
)


@cache
def _rows(config: str, real_log: str) -> list[tuple[int, list[compare_log.Row]]]:
    sim, _ = execute(load(str(REPO / "configs" / config)))
    real = (REAL / real_log).read_text(encoding="utf-8", errors="replace").splitlines()
    return compare_log.compare(result_log(sim), real)


@needs_real
@pytest.mark.parametrize(("config", "real_log", "kernels"), CASES)
def test_only_documented_differences_remain(config: str, real_log: str, kernels: int) -> None:
    result = _rows(config, real_log)
    assert len(result) == kernels
    for _, rows in result:
        assert any(
            r.mark == " " and r.real and r.real.text.startswith("efi: EFI v2.70") for r in rows
        )
        assert any(
            r.mark == "~" and r.real and r.real.text.startswith("efi: SMBIOS 3.0=") for r in rows
        )
        bad = [r for r in rows if r.mark not in (" ", "~")]
        # anything else is the one reordered stub line, seen once on each side
        assert sorted((r.mark, (r.model or r.real).text) for r in bad) in (
            [],
            [("<", MOVED), (">", MOVED)],
        )


@needs_real
@pytest.mark.parametrize(("config", "real_log", "kernels"), CASES)
def test_zero_differences(config: str, real_log: str, kernels: int) -> None:
    bad = sum(1 for _, rows in _rows(config, real_log) for r in rows if r.mark not in (" ", "~"))
    assert bad == 0
