"""kexec on bare metal, held against kexec-uefi-acpi.log and kexec-dt-noefi.log."""

from __future__ import annotations

import pytest

from cosim.scheduler import MS
from tests.guest.harness import STAMP, boot
from tests.guest.test_boot_baremetal import RELEVANT, _allowed

# kexec-uefi-acpi.log:684-688 (first kernel) and 772-817 (second kernel's GIC/ITS/LPI lines)
REAL_KEXEC_UEFI = """\
kexec_core: Starting new kernel
psci: CPU1 killed (polled 0 ms)
psci: CPU2 killed (polled 0 ms)
psci: CPU3 killed (polled 0 ms)
Bye!
ITS [mem 0x08080000-0x0809ffff]
ITS@0x0000000008080000: allocated 8192 Devices @429a0000 (indirect, esz 8, psz 64K, shr 1)
ITS@0x0000000008080000: allocated 8192 Interrupt Collections @429b0000 (flat, esz 8, psz 64K, shr 1)
GICv3: Using preallocated redistributor tables
GICv3: using LPI property table @0x00000000401c0000
GICv3: CPU0: using reserved LPI pending table @0x00000000401d0000
GICv3: CPU1: using reserved LPI pending table @0x00000000401e0000
GICv3: CPU2: using reserved LPI pending table @0x00000000401f0000
GICv3: CPU3: using reserved LPI pending table @0x0000000040200000"""

# kexec-dt-noefi.log:594-598 and 663-699
REAL_KEXEC_DT = """\
kexec_core: Starting new kernel
psci: CPU1 killed (polled 0 ms)
psci: CPU2 killed (polled 0 ms)
psci: CPU3 killed (polled 0 ms)
Bye!
ITS [mem 0x08080000-0x0809ffff]
ITS@0x0000000008080000: allocated 8192 Devices @401a0000 (indirect, esz 8, psz 64K, shr 1)
ITS@0x0000000008080000: allocated 8192 Interrupt Collections @401b0000 (flat, esz 8, psz 64K, shr 1)
GICv3: Using preallocated redistributor tables
GICv3: using LPI property table @0x00000000425c0000
Internal error: Oops - Undefined instruction: 0000000002000000 [#1] SMP
pc : __list_add_valid+0x0/0xb4
lr : free_lpi_range+0x94/0xf0
Call trace:
 __list_add_valid+0x0/0xb4
 its_init+0x488/0x70c
 gic_init_bases+0x55c/0x5b4
 gic_of_init+0x1c0/0x274
 of_irq_init+0x24c/0x398
 irqchip_init+0x20/0x48
 init_IRQ+0xb4/0xcc
 start_kernel+0x568/0x790
 __primary_switched+0xbc/0xc4
Kernel panic - not syncing: Attempted to kill the idle task!
---[ end Kernel panic - not syncing: Attempted to kill the idle task! ]---"""

KEEP = ("kexec_core", "psci: CPU", "Bye!", "ITS", "LPI", "preallocated", "Internal error", "pc :", "lr :",
        "Call trace", "Kernel panic - not", "kernel BUG")  # fmt: skip


def _kexec_lines(run) -> list[str]:  # type: ignore[no-untyped-def]
    """The kexec messages about kexec, the GIC tables and the crash (call trace included)."""
    msgs = [STAMP.sub("", ln) for ln in run.result()["kexec"]["messages"]]
    return [
        ln
        for ln in msgs
        if RELEVANT.search(ln)
        and "domain created" not in ln
        and (ln.startswith(" ") or any(w in ln for w in KEEP))
    ]


@pytest.fixture(scope="module")
def kexec_uefi():  # type: ignore[no-untyped-def]
    return boot("efi", kexec_at=200 * MS, until=500 * MS)


@pytest.fixture(scope="module")
def kexec_dt():  # type: ignore[no-untyped-def]
    return boot("dt", kexec_at=200 * MS, until=500 * MS)


def test_uefi_kexec_adopts_the_reserved_tables(kexec_uefi) -> None:  # type: ignore[no-untyped-def]
    res = kexec_uefi.result()
    assert res["kexec"]["outcome"] == "booted"
    assert res["kexec"]["corruption"] == []
    ours = [ln for ln in _kexec_lines(kexec_uefi) if not ln.startswith(" ")]
    ours = [ln for ln in ours if "found redistributor" not in ln and "Booted secondary" not in ln]
    assert ours == REAL_KEXEC_UEFI.splitlines()
    # the kernel went where kexec-tools put the real one ("40410000-41a5ffff : Kernel code")
    assert res["generations"][1]["kernel_addr"] == 0x4040_0000
    assert (
        res["generations"][1]["status"] == "booted"
        and res["generations"][1]["taint"] == "Not tainted"
    )
    assert res["warnings"] == []


def test_uefi_kexec_second_kernel_programs_no_new_lpi_tables(kexec_uefi) -> None:  # type: ignore[no-untyped-def]
    """With PREALLOCATED, its_cpu_init_lpis skips PROPBASER/PENDBASER: each was written once,
    by the first kernel; EnableLPIs stays set (QEMU keeps it across the kexec)."""
    for cpu in range(4):
        rd = 0x080A_0000 + cpu * 0x2_0000
        assert kexec_uefi.mmio_writes(rd + 0x70) == [0x401C_078F]
        assert kexec_uefi.mmio_writes(rd + 0x78) == [(0x401D_0000 + cpu * 0x1_0000) | 0x780]


def test_dt_kexec_dies_the_way_the_real_one_did(kexec_dt) -> None:  # type: ignore[no-untyped-def]
    res = kexec_dt.result()
    k = res["kexec"]
    assert k["outcome"] == "panic"
    assert res["generations"][1]["status"] == "panic"
    # the old property table lay inside the new kernel's image; its 0xa2 reset is reported
    hits = [c for c in k["corruption"] if c["function"] == "gic_reset_prop_table"]
    assert hits == [
        {
            "address": 0x425C_0000,
            "size": 0x1_0000,
            "writer": "guest",
            "function": "gic_reset_prop_table",
            "time": hits[0]["time"],
            "owner": "kernel image (gen 2)",
            "owner_kind": "image",
            "owner_gen": 2,
            "gen": 2,
            "intended": "LPI property table",
        }
    ]
    # and the kernel executed the overwritten text: the function lies in that range
    oops = k["oops"]
    assert oops["function"] == "__list_add_valid"
    assert 0x425C_0000 <= oops["address"] < 0x425D_0000
    assert oops["code"] == "a2a2a2a2 a2a2a2a2 a2a2a2a2 a2a2a2a2 a2a2a2a2"
    ours = _allowed(_kexec_lines(kexec_dt), "ours")
    ours = [ln for ln in ours if not ln.startswith((" do_undefinstr", " el1"))]
    real = _allowed(REAL_KEXEC_DT.splitlines(), "real")
    assert ours == real


def test_dt_kexec_relocation_overwrote_the_live_gic_tables(kexec_dt) -> None:  # type: ignore[no-untyped-def]
    """Nothing reserved the first kernel's tables: kexec's copy of the new Image runs over
    them while the GIC still has them programmed."""
    k = kexec_dt.result()["kexec"]
    reloc = {c["owner"] for c in k["corruption"] if c["function"] == "arm64_relocate_new_kernel"}
    assert "LPI property table (gen 1)" in reloc
    assert {f"LPI pending table of CPU{i} (gen 1)" for i in range(4)} <= reloc
