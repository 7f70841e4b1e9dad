"""Distributor: GICD_TYPER as QEMU composes it, SPI state, routing, hostile MMIO."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gic.distributor import Distributor, Hppi, half_shuffle32, half_unshuffle32
from gic.registers import GICD_TYPER


def test_gicd_typer_e7() -> None:
    d = Distributor()
    # Sheet E7: QEMU GICD_TYPER with 256 INTIDs, one Security state, LPIs.
    assert d.mmio_read(0x4, 4) == 0x037A0007
    f = GICD_TYPER.decode(d.mmio_read(0x4, 4))
    assert (f["ITLinesNumber"], f["LPIS"], f["IDbits"], f["A3V"], f["No1N"]) == (7, 1, 15, 1, 1)
    assert f["SecurityExtn"] == 0 and f["CPUNumber"] == 0
    assert Distributor(lpis=False).mmio_read(0x4, 4) == 0x037A0007 & ~(1 << 17)
    assert Distributor(288 - 32).mmio_read(0x4, 4) & 0x1F == 8


def test_identification() -> None:
    d = Distributor()
    assert d.mmio_read(0xFFE8, 4) == 0x3B  # PIDR2: GICv3
    assert d.mmio_read(0xFFE0, 4) == 0x92
    assert d.mmio_read(0x8, 4) == 0x43B
    assert d.errors == []


def test_gicd_typer2_is_raz_in_qemu_7_2() -> None:
    d = Distributor()
    assert d.mmio_read(0xC, 4) == 0
    assert len(d.errors) == 1


def test_gicd_ctlr_single_security_state() -> None:
    d = Distributor()
    assert d.mmio_read(0x0, 4) == 0x50  # ARE (bit 4) and DS (bit 6) read as one
    d.mmio_write(0x0, 4, 0xFFFFFFFF)  # only EnableGrp0 and EnableGrp1 are writable
    assert d.mmio_read(0x0, 4) == 0x53
    d.mmio_write(0x0, 4, 0x2)  # Linux: ARE_NS | EnableGrp1 (ARE is RAO/WI)
    assert d.mmio_read(0x0, 4) == 0x52


def test_spi_enable_priority_config_and_router() -> None:
    d = Distributor()
    d.mmio_write(0x104, 4, 1 << 8)  # GICD_ISENABLER1: SPI 40
    assert d.mmio_read(0x184, 4) == 1 << 8
    d.mmio_write(0x428, 1, 0xA0)
    assert d.mmio_read(0x428, 4) == 0xA0
    d.mmio_write(0xC08, 4, 0x2 << 16)  # GICD_ICFGR2: SPI 40 edge
    assert d.mmio_read(0xC08, 4) == 0x2 << 16
    assert d.edge_trigger >> 40 & 1
    d.mmio_write(0x6000 + 8 * 40, 8, 0x0000000100000203)
    assert d.mmio_read(0x6000 + 8 * 40, 8) == 0x0000000100000203
    assert d.mmio_read(0x6000 + 8 * 40 + 4, 4) == 0x1
    assert d.route_affinity(40) == 0x01000203


def test_registers_beyond_itlines_and_for_private_intids_are_raz_wi() -> None:
    d = Distributor()
    d.mmio_write(0x11C, 4, 0xFFFFFFFF)  # ISENABLER7: SPIs 224..255 exist
    assert d.mmio_read(0x11C, 4) == 0xFFFFFFFF
    d.mmio_write(0x120, 4, 0xFFFFFFFF)  # ISENABLER8: beyond ITLinesNumber 7
    assert d.mmio_read(0x120, 4) == 0
    d.mmio_write(0x100, 4, 0xFFFFFFFF)  # ISENABLER0: banked in the redistributors
    assert d.mmio_read(0x100, 4) == 0
    d.mmio_write(0x6000 + 8 * 300, 8, 5)
    assert d.mmio_read(0x6000 + 8 * 300, 8) == 0
    assert d.errors == []  # architecturally RAZ/WI, not a guest error


def test_level_and_edge_spis() -> None:
    d = Distributor()
    d.mmio_write(0x0, 4, 0x2)
    d.mmio_write(0x84, 4, 0xFFFFFFFF)  # Group 1
    d.mmio_write(0x104, 4, 0xFFFFFFFF)
    d.priority[40] = 0xA0
    d.set_spi(40, True)
    assert d.hppi_for(0) == Hppi(40, 0xA0, True)
    assert d.mmio_read(0x204, 4) == 1 << 8
    d.set_spi(40, False)  # level: no latch
    assert d.hppi_for(0) is None
    d.mmio_write(0xC08, 4, 0x2 << 16)
    d.set_spi(40, True)
    d.set_spi(40, False)  # edge: latched
    assert d.hppi_for(0) == Hppi(40, 0xA0, True)
    assert d.hppi_for(1) is None  # routed to affinity 0
    d.activate(40)
    assert d.hppi_for(0) is None and d.mmio_read(0x304, 4) == 1 << 8
    d.deactivate(40)
    assert d.mmio_read(0x304, 4) == 0


def test_group_enable_gates_spis() -> None:
    d = Distributor()
    d.mmio_write(0x84, 4, 0xFFFFFFFF)
    d.mmio_write(0x104, 4, 1 << 8)
    d.mmio_write(0x204, 4, 1 << 8)
    assert d.hppi_for(0) is None  # EnableGrp1 = 0
    d.mmio_write(0x0, 4, 0x2)
    assert d.hppi_for(0) is not None


def test_lowest_intid_wins_a_priority_tie() -> None:
    d = Distributor()
    d.mmio_write(0x0, 4, 0x3)
    d.mmio_write(0x104, 4, 0xFFFFFFFF)
    d.mmio_write(0x204, 4, (1 << 9) | (1 << 12))  # SPIs 41 and 44 pending
    d.priority[41] = d.priority[44] = 0x80
    assert d.hppi_for(0) == Hppi(41, 0x80, False)
    d.priority[44] = 0x70
    assert d.hppi_for(0) == Hppi(44, 0x70, False)


def test_half_shuffle_round_trip() -> None:
    assert half_shuffle32(0xFFFF) == 0x55555555
    assert half_unshuffle32(0xAAAAAAAA >> 1) == 0xFFFF


def test_bad_sizes_are_logged() -> None:
    d = Distributor()
    assert d.mmio_read(0x4, 2) == 0
    assert d.mmio_read(0x5, 4) == 0
    d.mmio_write(0x4, 4, 0)  # GICD_TYPER is read-only
    assert d.mmio_read(0x4, 4) == 0x037A0007
    assert len(d.errors) == 3
    assert "GICD" in str(d.errors[0])


@settings(max_examples=200, deadline=None)
@given(
    offset=st.integers(min_value=-8, max_value=0x10010),
    size=st.sampled_from([0, 1, 2, 3, 4, 8, 16]),
    value=st.integers(min_value=0, max_value=(1 << 64) - 1),
)
def test_hostile_mmio_never_raises(offset: int, size: int, value: int) -> None:
    d = Distributor()
    d.mmio_write(offset, size, value)
    v = d.mmio_read(offset, size)
    assert 0 <= v < 1 << (8 * max(size, 1))
    assert d.mmio_read(0x4, 4) == 0x037A0007
