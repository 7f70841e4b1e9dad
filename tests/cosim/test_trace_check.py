"""``cosim trace check``: every rule passing and failing, bad rules, torn traces.

Table addresses come from the worked examples of gicv3-architecture.md: E4 (GICR_PROPBASER
0x80A0078F: table at 0x80A00000, 16 ID bits; GICR_PENDBASER 0x80A10780), E6 (GITS_CBASER
0xB80000080C0040F: 64 KiB queue at 0x80C00000), E2 (MAPD DeviceID 0x10, Size 4, ITT at
0x80B00000) and E8 (LPI 8195's property byte at PROPBASER.PA + 3, LPI 8200's pending byte
at PENDBASER.PA + 0x401).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cosim.trace_cli import run
from tests.cosim.test_trace_filter import MAPD_E2
from tests.cosim.test_trace_synth import GICR_BASE, GITS_BASE, Synth

PROPBASER_E4 = 0x80A0078F
PENDBASER_E4 = 0x80A10780
CBASER_E6 = 0xB800000080C0040F
# GITS_BASER0: Valid, Type 1 (Devices), Entry_Size 8 bytes, 64 KiB pages, 2 pages at 0x80D00000
BASER0 = (1 << 63) | (1 << 56) | (7 << 48) | 0x80D00000 | (2 << 8) | 1


def _check(path: Path, capsys: pytest.CaptureFixture[str], *rules: str) -> tuple[int, list[str]]:
    rc = run(["check", str(path), *rules])
    out = capsys.readouterr()
    assert out.err == ""
    return rc, out.out.splitlines()


def _interrupts(path: Path, *, lose: bool = False, unnamed_drop: bool = False) -> None:
    s = Synth(path)
    t = s.bare_chain(1000, devid=1, eventid=0, intid=8192, cpu=0, d_inject=40, d_ack=300, d_eoi=900)
    t = s.xen_chain(
        t + 100, devid=2, eventid=1, host_lpi=8300, pcpu=1, vcpu=0, virq=8195,
        d_inject=500, d_ack=700, d_eoi=2000,
    )  # fmt: skip
    s.msi(t + 100, 1, 5)
    s.lpi(t + 110, 1, 5, 8197, 0, action="coalesced")
    s.event(t + 120, "link", "fault", {"rule": "lossy", "action": "drop", "devid": 1, "eventid": 6})
    s.msi(t + 130, 1, 7)
    s.lpi(t + 140, 1, 7, 8199, 0, action="dropped", reason="lossy")
    if unnamed_drop:
        s.msi(t + 200, 1, 8)
        s.lpi(t + 210, 1, 8, 8200, 0, action="dropped", reason="DeviceID unmapped")
    if lose:
        s.msi(t + 300, 3, 4)
        s.lpi(t + 310, 3, 4, 8400, 2)
    s.close()


def test_no_lost_lpi_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _interrupts(path)
    assert _check(path, capsys, "no-lost-lpi") == (0, ["ok: 20 records, 1 rules hold"])


def test_no_lost_lpi_fails_on_an_undelivered_msi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.trace"
    _interrupts(path, lose=True)
    rc, lines = _check(path, capsys, "no-lost-lpi")
    assert rc == 1
    assert lines[0] == (
        "FAIL no-lost-lpi: record #20: interrupt #5 (devid 0x3 eventid 4 LPI 8400) "
        "not delivered: last seen at its lpi"
    )
    assert lines[1].split()[1:4] == ["#20", "dev0", "->"] and "msi" in lines[1]


def test_no_lost_lpi_fails_on_a_drop_without_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.trace"
    _interrupts(path, unnamed_drop=True)
    rc, lines = _check(path, capsys, "no-lost-lpi")
    assert rc == 1
    assert lines[0] == (
        "FAIL no-lost-lpi: record #20: interrupt #5 (devid 0x1 eventid 8 LPI 8200) "
        "dropped without a fault rule (DeviceID unmapped)"
    )


def _tables(path: Path, access: tuple[str, int, int] | None, *, guest: bool = False) -> None:
    s = Synth(path)
    s.mem(50, "hw", 0x80A00003, 1, why="update_for_one_lpi")  # before PROPBASER: not a table yet
    s.mmio_write(100, GICR_BASE + 0x70, PROPBASER_E4, why="its_cpu_init_lpis")
    s.mmio_write(200, GICR_BASE + 0x78, PENDBASER_E4, why="its_cpu_init_lpis")
    s.mmio_write(300, GITS_BASE + 0x80, CBASER_E6, why="its_probe_one")
    s.mmio_write(400, GITS_BASE + 0x100, BASER0, why="its_setup_baser")
    # the MAPD as an event carrying the command (a queue read by hw would touch cmdq)
    s.event(500, "host", "its-cmd", {"command": MAPD_E2}, why="process_cmdq")
    s.event(505, "host", "its-cmd", {"command": MAPD_E2[:16]}, why="process_cmdq")  # too short
    s.mem(600, "hw", 0x80A0E000, 4, why="elsewhere")  # just past the property table
    s.mem(610, "hw", 0x80B00180, 8, why="elsewhere")  # just past the ITT (32 x 12 bytes)
    if access is not None:
        agent, addr, size = access
        s.mem(700, "guest" if guest else agent, addr, size, why="gicv3_lpi_update")
    s.close()


@pytest.mark.parametrize(
    ("table", "access", "found"),
    [
        ("property", ("hw", 0x80A00003, 1), "[0x80a00000, 0x80a0e000)"),  # E8: LPI 8195
        ("pending", ("xen", 0x80A10401, 1), "[0x80a10000, 0x80a12000)"),  # E8: LPI 8200
        ("cmdq", ("xen", 0x80C0FFE0, 32), "[0x80c00000, 0x80c10000)"),
        ("device", ("hw", 0x80D1FFF8, 8), "[0x80d00000, 0x80d20000)"),
        ("itt", ("hw", 0x80B00100, 12), "[0x80b00000, 0x80b00180)"),
    ],
)
def test_no_foreign_access(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    table: str,
    access: tuple[str, int, int],
    found: str,
) -> None:
    clean = tmp_path / "clean.trace"
    _tables(clean, None)
    assert _check(clean, capsys, f"no-foreign-access={table}")[0] == 0
    guest = tmp_path / "guest.trace"
    _tables(guest, access, guest=True)  # the guest's own accesses are not foreign
    assert _check(guest, capsys, f"no-foreign-access={table}")[0] == 0
    bad = tmp_path / "bad.trace"
    _tables(bad, access)
    rc, lines = _check(bad, capsys, f"no-foreign-access={table}", "warnings=0")
    agent, addr, size = access
    assert rc == 1
    assert lines[0] == (
        f"FAIL no-foreign-access={table}: record #16: {agent} in gicv3_lpi_update reads "
        f"[{addr:#x}, {addr + size:#x}) inside the {table} table {found}"
    )
    assert "#16" in lines[1] and "mem" in lines[1]


@pytest.mark.parametrize("unmap", [False, True])
def test_collection_table_and_unmap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unmap: bool
) -> None:
    path = tmp_path / "t.trace"
    s = Synth(path)
    baser1 = (1 << 63) | (4 << 56) | 0x80E00000  # Collections, 4 KiB pages, 1 page
    s.mmio_write(100, GITS_BASE + 0x108, baser1)
    if unmap:
        s.mmio_write(200, GITS_BASE + 0x108, baser1 & ~(1 << 63))  # Valid = 0: no table
    s.mem(300, "hw", 0x80E00FF8, 8, write=True, why="update_cte")
    s.close()
    rc, lines = _check(path, capsys, "no-foreign-access=collection")
    if unmap:
        assert rc == 0
    else:
        assert rc == 1 and lines[0] == (
            "FAIL no-foreign-access=collection: record #2: hw in update_cte writes "
            "[0x80e00ff8, 0x80e01000) inside the collection table [0x80e00000, 0x80e01000)"
        )


def _warnings_and_overflow(path: Path) -> None:
    s = Synth(path)
    s.event(10, "guest", "warning", {"cpu": 0, "file": "drivers/irqchip/irq-gic-v3-its.c", "line": 3091, "function": "its_cpu_init_lpis"})  # fmt: skip
    s.xen_chain(
        100, devid=1, eventid=0, host_lpi=8192, pcpu=0, vcpu=0, virq=8192,
        d_inject=50, d_ack=100, d_eoi=100, uie=True, other_lrs=3,
    )  # fmt: skip
    s.event(1000, "guest", "warning", {"cpu": 1, "file": "kernel/irq/manage.c", "line": 1, "function": "f"})  # fmt: skip
    s.close()


def test_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _warnings_and_overflow(path)
    assert _check(path, capsys, "warnings=2")[0] == 0
    rc, lines = _check(path, capsys, "warnings=1")
    assert rc == 1 and lines[0] == "FAIL warnings=1: record #10: warning number 2, more than 1"
    rc, lines = _check(path, capsys, "warnings=0")
    assert rc == 1 and lines[0] == "FAIL warnings=0: record #0: warning number 1, more than 0"


def test_max_lr_overflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _warnings_and_overflow(path)
    assert _check(path, capsys, "max-lr-overflow=1", "no-lost-lpi")[0] == 0
    rc, lines = _check(path, capsys, "max-lr-overflow=0")
    assert rc == 1
    assert (
        lines[0]
        == "FAIL max-lr-overflow=0: record #7: list-register overflow number 1, more than 0"
    )
    assert "entry" in lines[1]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("no-such-rule", "unknown rule 'no-such-rule': rules are no-lost-lpi, "
         "no-foreign-access=TABLE, warnings=N, max-lr-overflow=N"),
        ("no-foreign-access=heap", "rule 'no-foreign-access=heap': TABLE must be one of "
         "property, pending, device, collection, itt, cmdq"),
        ("warnings=many", "rule 'warnings=many': N must be a non-negative integer"),
        ("max-lr-overflow=-1", "rule 'max-lr-overflow=-1': N must be a non-negative integer"),
        ("no-lost-lpi=1", "unknown rule 'no-lost-lpi=1': rules are no-lost-lpi, "
         "no-foreign-access=TABLE, warnings=N, max-lr-overflow=N"),
    ],
)  # fmt: skip
def test_bad_rule_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str, message: str
) -> None:
    path = tmp_path / "t.trace"
    _warnings_and_overflow(path)
    assert run(["check", str(path), "warnings=5", rule]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"cosim trace check: {message}\n"


def test_torn_trace_is_a_violation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _warnings_and_overflow(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # corrupt the last record
    path.write_bytes(bytes(data))
    rc, lines = _check(path, capsys, "warnings=5")
    assert rc == 1 and lines[0].startswith("FAIL readable: record #10: record 10 at byte ")
    assert "is corrupt: CRC" in lines[0]
    # a violation inside the readable prefix comes first
    rc, lines = _check(path, capsys, "warnings=0")
    assert lines[0] == "FAIL warnings=0: record #0: warning number 1, more than 0"
