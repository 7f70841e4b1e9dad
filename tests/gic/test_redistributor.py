"""Redistributor: GICR_TYPER, PROPBASER/PENDBASER, EnableLPIs and the LPI RAM traffic (QEMU 7.2)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gic.port import MemRead, MemWrite, Ram, run_sync
from gic.redistributor import Redistributor
from gic.registers import GICR_PENDBASER, GICR_PROPBASER

PROP = 0x80A00000
PEND = 0x80A10000
PROPBASER_E4 = 0x0000000080A0078F  # sheet E4: Linux, 16 ID bits, InnerShareable, RaWaWb
PENDBASER_E4 = 0x0000000080A10780
SGI = 0x10000


class Recorder:
    """Answers from a Ram and records every request."""

    def __init__(self, ram: Ram | None = None) -> None:
        self.ram = ram or Ram()
        self.log: list[Any] = []

    def __call__(self, req: Any) -> Any:
        self.log.append(req)
        return self.ram.answer(req)

    def run(self, gen: Any) -> Any:
        return run_sync(gen, self)


def rd_with_tables(rec: Recorder, processor: int = 0, last: bool = False) -> Redistributor:
    rd = Redistributor(processor, processor, last)
    rec.run(rd.mmio_write(0x70, 8, PROPBASER_E4))
    rec.run(rd.mmio_write(0x78, 8, PENDBASER_E4))
    return rd


def enable(rec: Recorder, rd: Redistributor) -> None:
    rec.run(rd.mmio_write(0x0, 4, 1))
    rec.log.clear()


# --- identification ---------------------------------------------------------------------------


def test_gicr_typer_matches_kvm_e7_plus_qemu_common_lpi_aff() -> None:
    rec = Recorder()
    rd = Redistributor(2, 2, False)
    typer = rec.run(rd.mmio_read(0x8, 8))
    # Sheet E7 (KVM): vCPU 2, Aff0 = 2, PLPIS, not last = 0x0000000200000201. QEMU's
    # arm_gicv3_common_realize additionally sets (1 << 24), CommonLPIAff = 0b01.
    assert typer == 0x0000000201000201
    assert typer & ~(3 << 24) == 0x0000000200000201
    assert rec.run(rd.mmio_read(0x8, 4)) == 0x01000201
    assert rec.run(rd.mmio_read(0xC, 4)) == 0x00000002


def test_gicr_typer_last_and_affinity_fields() -> None:
    rec = Recorder()
    rd = Redistributor(17, 0x0101, True)  # virt CPU 17: Aff1 = 1, Aff0 = 1
    assert rec.run(rd.mmio_read(0x8, 8)) == 0x0000010101001111
    no_lpi = Redistributor(0, 0, False, plpis=False)
    assert rec.run(no_lpi.mmio_read(0x8, 8)) == 0x0000000001000000


def test_identification_registers() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False)
    assert rec.run(rd.mmio_read(0xFFE8, 4)) == 0x3B  # PIDR2: ArchRev 3
    assert rec.run(rd.mmio_read(0x4, 4)) == 0x43B  # IIDR: Arm
    assert rec.run(rd.mmio_read(0xFFE0, 4)) == 0x93  # PIDR0 of a redistributor
    assert rd.errors == []


def test_waker_handshake() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False)
    assert rec.run(rd.mmio_read(0x14, 4)) == 0x6  # ProcessorSleep | ChildrenAsleep at reset
    rec.run(rd.mmio_write(0x14, 4, 0))  # Linux gic_enable_redist: wake
    assert rec.run(rd.mmio_read(0x14, 4)) == 0x0  # ChildrenAsleep clears at once
    rec.run(rd.mmio_write(0x14, 4, 0x2))
    assert rec.run(rd.mmio_read(0x14, 4)) == 0x6
    rec.run(rd.mmio_write(0x14, 4, 0xFFFFFFFF))  # only ProcessorSleep is writable
    assert rec.run(rd.mmio_read(0x14, 4)) == 0x6


# --- PROPBASER / PENDBASER ---------------------------------------------------------------------


def test_propbaser_pendbaser_as_linux_writes_them_read_back() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    assert rec.run(rd.mmio_read(0x70, 8)) == 0x0000000080A0078F
    assert rec.run(rd.mmio_read(0x78, 8)) == 0x0000000080A10780
    assert rec.run(rd.mmio_read(0x70, 4)) == 0x80A0078F
    assert rec.run(rd.mmio_read(0x74, 4)) == 0
    fields = GICR_PROPBASER.decode(rd.propbaser)
    assert (fields["IDbits"], fields["Physical_Address"]) == (15, 0x80A00000)
    assert (fields["InnerCache"], fields["Shareability"]) == (7, 1)
    assert GICR_PENDBASER.decode(rd.pendbaser)["Physical_Address"] == 0x80A10000
    assert rd.prop_base == PROP and rd.pend_base == PEND
    assert rec.log == []  # register writes alone touch no RAM


def test_propbaser_by_32_bit_halves_and_ptz_stored_raw() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False)
    rec.run(rd.mmio_write(0x70, 4, 0x80A0078F))
    rec.run(rd.mmio_write(0x74, 4, 0x1))
    assert rec.run(rd.mmio_read(0x70, 8)) == 0x0000000180A0078F
    # QEMU 7.2 stores GICR_PENDBASER raw: PTZ (bit 62) reads back as written.
    rec.run(rd.mmio_write(0x78, 8, 0x4000000080A10780))
    assert rec.run(rd.mmio_read(0x78, 8)) == 0x4000000080A10780


# --- EnableLPIs ------------------------------------------------------------------------------


def test_enable_lpis_scans_the_pending_table_in_one_read() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    rec.run(rd.mmio_write(0x0, 4, 1))
    assert rec.run(rd.mmio_read(0x0, 4)) == 1
    # 16 ID bits: bytes 0x400 .. 0x1FFF of the pending table, one request.
    assert rec.log == [MemRead(PEND + 0x400, 0x1C00, why="update_for_all_lpis")]


def test_enable_lpis_scan_reads_property_of_each_pending_bit() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    rec.ram.write(PEND + 0x400, bytes([0x08, 0x01]))  # LPIs 8195 and 8200 pending in RAM
    rec.ram.write(PROP + 3, b"\xa3")  # 8195: priority 0xA0, enabled
    rec.ram.write(PROP + 8, b"\x92")  # 8200: priority 0x90, disabled
    rec.run(rd.mmio_write(0x0, 4, 1))
    assert rec.log[1:] == [
        MemRead(PROP + 3, 1, why="update_for_one_lpi"),
        MemRead(PROP + 8, 1, why="update_for_one_lpi"),
    ]
    assert (rd.hpplpi_irq, rd.hpplpi_prio) == (8195, 0xA0)


def test_enable_lpis_can_be_cleared_in_qemu_7_2() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    enable(rec, rd)
    rec.run(rd.mmio_write(0x0, 4, 0))
    assert rec.run(rd.mmio_read(0x0, 4)) == 0
    assert rec.log == []


def test_enable_lpis_needs_plpis() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False, plpis=False)
    rec.run(rd.mmio_write(0x0, 4, 1))
    assert rec.run(rd.mmio_read(0x0, 4)) == 0
    assert rec.log == []


def test_propbaser_writes_accepted_while_lpis_enabled() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    enable(rec, rd)
    rec.run(rd.mmio_write(0x70, 8, 0x0000000080B0078F))
    assert rec.run(rd.mmio_read(0x70, 8)) == 0x0000000080B0078F


# --- set_lpi (gicv3_redist_process_lpi) ------------------------------------------------------


def test_set_lpi_sets_the_e8_bit_then_reads_the_property() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    rec.ram.write(PROP + 3, b"\xa3")
    enable(rec, rd)
    rec.run(rd.set_lpi(8195, True))
    # Sheet E8: LPI 8195's pending bit is PENDBASER.PA + 0x400, bit 3.
    assert rec.log == [
        MemRead(PEND + 0x400, 1, why="set_pending_table_bit"),
        MemWrite(PEND + 0x400, b"\x08", why="set_pending_table_bit"),
        MemRead(PROP + 3, 1, why="update_for_one_lpi"),
    ]
    assert rec.ram.read(PEND + 0x400, 1) == b"\x08"
    assert rd.lpi_hppi() is not None and rd.lpi_hppi().intid == 8195  # type: ignore[union-attr]
    rec.log.clear()
    rec.run(rd.set_lpi(8195, True))  # already pending: read only, no write-back
    assert rec.log == [MemRead(PEND + 0x400, 1, why="set_pending_table_bit")]


def test_set_lpi_8200_uses_byte_0x401_bit_0() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    enable(rec, rd)
    rec.run(rd.set_lpi(8200, True))
    assert rec.ram.read(PEND + 0x400, 2) == b"\x00\x01"


def test_set_lpi_ignored_when_lpis_disabled() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    rec.run(rd.set_lpi(8195, True))
    assert rec.log == []


def test_set_lpi_out_of_range_cases() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    enable(rec, rd)
    for intid in (8191, 65536, 1 << 20, 0):
        rec.run(rd.set_lpi(intid, True))
    assert rec.log == []
    rec.run(rd.set_lpi(65535, True))  # the last INTID with 16 ID bits is accepted
    assert rec.log[0] == MemRead(PEND + 65535 // 8, 1, why="set_pending_table_bit")


def test_idbits_clamped_to_gicd_typer_idbits() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False)  # GICD_TYPER.IDbits + 1 = 16
    rec.run(rd.mmio_write(0x70, 8, PROP | 0x1F))  # PROPBASER.IDbits = 31
    rec.run(rd.mmio_write(0x78, 8, PEND))
    rec.run(rd.mmio_write(0x0, 4, 1))
    assert rec.log[-1] == MemRead(PEND + 0x400, 0x1C00, why="update_for_all_lpis")
    rec.log.clear()
    rec.run(rd.set_lpi(65536, True))
    assert rec.log == []


def test_small_idbits_accepts_no_lpi_and_scans_nothing() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False)
    rec.run(rd.mmio_write(0x70, 8, PROP | 12))  # 13 ID bits: every INTID < 8192
    rec.run(rd.mmio_write(0x78, 8, PEND))
    rec.run(rd.mmio_write(0x0, 4, 1))
    rec.run(rd.set_lpi(8192, True))
    assert rec.log == []
    rec.run(rd.mmio_write(0x70, 8, PROP | 13))  # 14 ID bits: 8192 .. 16383
    rec.run(rd.set_lpi(16384, True))
    assert rec.log == []
    rec.run(rd.set_lpi(16383, True))
    assert rec.log[0] == MemRead(PEND + 16383 // 8, 1, why="set_pending_table_bit")


def test_property_changes_are_seen_only_after_inv() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    rec.ram.write(PROP + 3, b"\xa3")
    enable(rec, rd)
    rec.run(rd.set_lpi(8195, True))
    rec.ram.write(PROP + 3, b"\xa2")  # Linux masks the LPI: Enable = 0, no INV yet
    assert rd.lpi_hppi() is not None  # QEMU caches hpplpi
    rec.log.clear()
    rec.run(rd.inv_lpi(8195))
    assert rd.lpi_hppi() is None
    assert rec.log == [
        MemRead(PEND + 0x400, 0x1C00, why="update_for_all_lpis"),
        MemRead(PROP + 3, 1, why="update_for_one_lpi"),
    ]
    assert rec.ram.read(PEND + 0x400, 1) == b"\x08"  # still pending in RAM


def test_clearing_the_hpplpi_rescans() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    rec.ram.write(PROP + 3, b"\xa3")
    rec.ram.write(PROP + 8, b"\xb3")
    enable(rec, rd)
    rec.run(rd.set_lpi(8200, True))
    rec.run(rd.set_lpi(8195, True))
    assert rd.hpplpi_irq == 8195
    rec.run(rd.set_lpi(8195, False))
    assert (rd.hpplpi_irq, rd.hpplpi_prio) == (8200, 0xB0)
    assert rec.ram.read(PEND + 0x400, 2) == b"\x00\x01"


def test_move_lpi_clears_source_and_sets_destination() -> None:
    rec = Recorder()
    src = rd_with_tables(rec, 0)
    dst = Redistributor(1, 1, True)
    rec.run(dst.mmio_write(0x70, 8, PROPBASER_E4))
    rec.run(dst.mmio_write(0x78, 8, 0x80A20000))
    rec.ram.write(PROP + 3, b"\xa3")
    enable(rec, src)
    enable(rec, dst)
    rec.run(src.set_lpi(8195, True))
    rec.run(src.move_lpi(dst, 8195))
    assert rec.ram.read(PEND + 0x400, 1) == b"\x00"
    assert rec.ram.read(0x80A20400, 1) == b"\x08"
    assert src.lpi_hppi() is None
    assert dst.lpi_hppi() is not None and dst.lpi_hppi().intid == 8195  # type: ignore[union-attr]


def test_move_all_lpis() -> None:
    rec = Recorder()
    src = rd_with_tables(rec, 0)
    dst = Redistributor(1, 1, True)
    rec.run(dst.mmio_write(0x70, 8, PROPBASER_E4))
    rec.run(dst.mmio_write(0x78, 8, 0x80A20000))
    enable(rec, src)
    enable(rec, dst)
    rec.ram.write(PEND + 0x400, bytes([0x08, 0x01]))
    rec.ram.write(0x80A20400, bytes([0x10]))
    rec.run(src.move_all_lpis(dst))
    assert rec.ram.read(PEND + 0x400, 2) == b"\x00\x00"
    assert rec.ram.read(0x80A20400, 2) == bytes([0x18, 0x01])


# --- SGIs and PPIs ---------------------------------------------------------------------------


def test_sgi_frame_registers() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False)
    assert rec.run(rd.mmio_read(SGI + 0xC00, 4)) == 0xAAAAAAAA  # GICR_ICFGR0: SGIs edge
    assert rec.run(rd.mmio_read(SGI + 0xC04, 4)) == 0  # PPIs level at reset
    rec.run(rd.mmio_write(SGI + 0xC04, 4, 0x2 << 22))  # INTID 27 edge-triggered
    assert rec.run(rd.mmio_read(SGI + 0xC04, 4)) == 0x2 << 22
    rec.run(rd.mmio_write(SGI + 0x100, 4, 1 << 27))
    rec.run(rd.mmio_write(SGI + 0x100, 4, 1 << 1))
    assert rec.run(rd.mmio_read(SGI + 0x180, 4)) == (1 << 27) | (1 << 1)
    rec.run(rd.mmio_write(SGI + 0x41B, 1, 0x90))
    assert rec.run(rd.mmio_read(SGI + 0x418, 4)) == 0x90000000
    rec.run(rd.mmio_write(SGI + 0x400, 4, 0x44332211))
    assert rd.ipriorityr[:4] == [0x11, 0x22, 0x33, 0x44]


def test_level_ppi_reads_pending_while_high() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False)
    rd.set_ppi(27, True)
    assert rec.run(rd.mmio_read(SGI + 0x200, 4)) == 1 << 27
    rd.set_ppi(27, False)
    assert rec.run(rd.mmio_read(SGI + 0x200, 4)) == 0
    rd.set_ppi(5, True)  # not a PPI: recorded, ignored
    assert len(rd.errors) == 1


def test_reserved_and_bad_accesses_are_raz_wi_and_logged() -> None:
    rec = Recorder()
    rd = rd_with_tables(rec)
    for off, size in ((0x18, 4), (0x0, 2), (0x1, 4), (0x20000, 4), (0x8, 3), (0xA0, 8)):
        assert rec.run(rd.mmio_read(off, size)) == 0
        rec.run(rd.mmio_write(off, size, 0xFFFFFFFF))
    assert len(rd.errors) == 12
    assert rd.propbaser == PROPBASER_E4 and rd.ctlr == 0
    assert "GICR0" in str(rd.errors[0])


def test_direct_lpi_registers_only_when_advertised() -> None:
    rec = Recorder()
    rd = Redistributor(0, 0, False, direct_lpi=True)
    assert rec.run(rd.mmio_read(0x8, 4)) & 0x8  # GICR_TYPER.DirectLPI
    rec.run(rd.mmio_write(0x70, 8, PROPBASER_E4))
    rec.run(rd.mmio_write(0x78, 8, PENDBASER_E4))
    enable(rec, rd)
    rec.run(rd.mmio_write(0x40, 8, 8195))  # GICR_SETLPIR
    assert rec.ram.read(PEND + 0x400, 1) == b"\x08"
    rec.run(rd.mmio_write(0x48, 8, 8195))  # GICR_CLRLPIR
    assert rec.ram.read(PEND + 0x400, 1) == b"\x00"
    assert rec.run(rd.mmio_read(0xC0, 4)) == 0  # GICR_SYNCR: not busy
    assert rd.errors == []


@settings(max_examples=200, deadline=None)
@given(
    offset=st.integers(min_value=-8, max_value=0x20010),
    size=st.sampled_from([0, 1, 2, 3, 4, 8, 16]),
    value=st.integers(min_value=0, max_value=(1 << 64) - 1),
    write=st.booleans(),
)
def test_hostile_mmio_never_raises(offset: int, size: int, value: int, write: bool) -> None:
    rd = Redistributor(0, 0, True)
    zeros = lambda req: bytes(req.size) if isinstance(req, MemRead) else None  # noqa: E731
    run_sync(rd.mmio_write(0x70, 8, 0xFFFFFFFFFFFFFFFF), zeros)
    run_sync(rd.mmio_write(0x0, 4, 1), zeros)
    if write:
        run_sync(rd.mmio_write(offset, size, value), zeros)
    else:
        v = run_sync(rd.mmio_read(offset, size), zeros)
        assert 0 <= v < (1 << (8 * max(size, 1)))
