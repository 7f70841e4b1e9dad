"""The aggregate virt GIC: bus dispatch, an MSI end to end, the IRQ line, priorities, SGIs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gic.distributor import GuestError
from gic.gic import Gic, IrqLine
from gic.its import SetLpi
from gic.port import MemRead, MemWrite, Ram, run_sync

GICD = 0x08000000
ITS = 0x08080000
GICR = 0x080A0000
PROP = 0x80A00000
PEND = 0x80A10000  # sheet E4
CMDQ = 0x80C00000  # sheet E6
ITT = 0x80B00000  # sheet E2

# Sheet E1-E3: the 32 command bytes in memory order.
MAPD_E2 = bytes.fromhex(
    "08 00 00 00 10 00 00 00 04 00 00 00 00 00 00 00 00 00 b0 80 00 00 00 80 00 00 00 00 00 00 00 00"
)
MAPC_E3 = bytes.fromhex(
    "09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 00 02 00 00 00 00 80 00 00 00 00 00 00 00 00"
)
MAPTI_E1 = bytes.fromhex(
    "0a 00 00 00 10 00 00 00 03 00 00 00 03 20 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
)


class Bus:
    """Runs GIC cores against a Ram and logs RAM requests."""

    def __init__(self) -> None:
        self.ram = Ram()
        self.log: list[Any] = []

    def __call__(self, req: Any) -> Any:
        self.log.append(req)
        return self.ram.answer(req)

    def run(self, gen: Any) -> Any:
        return run_sync(gen, self)


def w(bus: Bus, g: Gic, addr: int, size: int, value: int) -> None:
    bus.run(g.mmio(0, addr, size, True, value))


def r(bus: Bus, g: Gic, addr: int, size: int) -> int:
    return bus.run(g.mmio(0, addr, size, False))


def sysreg(bus: Bus, g: Gic, cpu: int, reg: str, value: int | None = None) -> int:
    return bus.run(g.sysreg(cpu, reg, value is not None, value or 0))


def lpi_tables(bus: Bus, g: Gic, cpu: int, pend: int) -> None:
    """its_cpu_init_lpis as Linux does it: PROPBASER, PENDBASER, then EnableLPIs."""
    base = g.redistributor_base(cpu)
    w(bus, g, base + 0x70, 8, 0x0000000080A0078F)
    w(bus, g, base + 0x78, 8, pend | 0x780)
    w(bus, g, base + 0x0, 4, 1)


def cpu_ready(bus: Bus, g: Gic, cpu: int) -> None:
    sysreg(bus, g, cpu, "ICC_PMR_EL1", 0xF0)
    sysreg(bus, g, cpu, "ICC_IGRPEN1_EL1", 1)


def test_mmio_dispatch_and_identification() -> None:
    bus, g = Bus(), Gic(4)
    assert r(bus, g, GICD + 0x4, 4) == 0x037A0007  # sheet E7
    assert r(bus, g, ITS + 0x8, 8) == 0x1F0001EFB1  # sheet E7: QEMU GITS_TYPER
    typers = [r(bus, g, GICR + i * 0x20000 + 0x8, 8) for i in range(4)]
    assert typers == [0x0000000001000001, 0x0000000101000101, 0x0000000201000201,
                      0x0000000301000311]  # fmt: skip
    assert [r(bus, g, GICR + i * 0x20000 + 0xFFE8, 4) for i in range(4)] == [0x3B] * 4
    assert g.take_errors() == []


def test_last_bit_per_redistributor_region() -> None:
    bus, g = Bus(), Gic(130)  # 123 fit in VIRT_GIC_REDIST, the rest go high
    assert g.redistributor_base(122) == GICR + 122 * 0x20000
    assert g.redistributor_base(123) == 0x40_0000_0000
    lasts = [i for i, rd in enumerate(g.redists) if rd.typer >> 4 & 1]
    assert lasts == [122, 129]
    assert r(bus, g, 0x40_0000_0000 + 0x8, 8) >> 8 & 0xFFFF == 123
    assert g.redists[17].typer >> 32 == 0x0101  # virt: Aff1 = 17 / 16, Aff0 = 17 % 16


def test_unmapped_addresses_are_raz_wi_and_reported() -> None:
    bus, g = Bus(), Gic(4)
    assert r(bus, g, 0x09000000, 4) == 0
    w(bus, g, GICR + 4 * 0x20000, 4, 1)  # just past the last redistributor
    errors = g.take_errors()
    assert errors == [
        GuestError("bus", 0x09000000, 4, False, "no device at this address"),
        GuestError("bus", GICR + 4 * 0x20000, 4, True, "no device at this address"),
    ]
    assert g.take_errors() == []


def its_setup(bus: Bus, g: Gic) -> None:
    """Tables and queue as Linux its_probe_one / its_alloc_tables would, then E2, E3, E1."""
    w(bus, g, ITS + 0x100, 8, 0x8107000080C10200)  # BASER0: Devices, 64 KiB page
    w(bus, g, ITS + 0x108, 8, 0x8407000080C20200)  # BASER1: Collections
    w(bus, g, ITS + 0x80, 8, 0xB800000080C0040F)  # CBASER, sheet E6
    w(bus, g, ITS + 0x0, 4, 1)  # GITS_CTLR.Enabled
    bus.ram.write(CMDQ, MAPD_E2 + MAPC_E3 + MAPTI_E1)
    w(bus, g, ITS + 0x88, 8, 0x60)  # GITS_CWRITER after three commands (sheet E6)
    assert r(bus, g, ITS + 0x90, 8) == 0x60  # GITS_CREADR caught up, not stalled


def test_msi_end_to_end_sets_the_e8_bit_and_the_line() -> None:
    bus, g = Bus(), Gic(4)
    lpi_tables(bus, g, 2, PEND)
    bus.ram.write(PROP + 3, b"\xa3")  # LPI 8195: priority 0xA0, enabled (sheet E8)
    its_setup(bus, g)
    cpu_ready(bus, g, 2)
    assert g.changed_lines() == []
    bus.log.clear()
    bus.run(g.msi(0x10, 3))
    assert MemWrite(PEND + 0x400, b"\x08", why="set_pending_table_bit") in bus.log
    assert bus.ram.read(PEND + 0x400, 1) == b"\x08"  # sheet E8: 0x400, bit 3
    assert g.changed_lines() == [IrqLine(2, True)]
    assert g.changed_lines() == []  # reported once
    assert g.irq_lines() == {0: False, 1: False, 2: True, 3: False}
    assert sysreg(bus, g, 2, "ICC_IAR1_EL1") == 8195
    assert bus.ram.read(PEND + 0x400, 1) == b"\x00"  # the acknowledge cleared it in RAM
    assert g.changed_lines() == [IrqLine(2, False)]
    assert sysreg(bus, g, 2, "ICC_RPR_EL1") == 0xA0
    sysreg(bus, g, 2, "ICC_EOIR1_EL1", 8195)
    assert sysreg(bus, g, 2, "ICC_RPR_EL1") == 0xFF
    assert sysreg(bus, g, 2, "ICC_IAR1_EL1") == 1023
    assert g.take_errors() == []


def test_disabled_property_byte_pends_in_ram_but_raises_no_line() -> None:
    bus, g = Bus(), Gic(4)
    lpi_tables(bus, g, 2, PEND)
    bus.ram.write(PROP + 3, b"\xa2")  # Linux's default byte: priority 0xA0, disabled
    its_setup(bus, g)
    cpu_ready(bus, g, 2)
    bus.run(g.msi(0x10, 3))
    assert bus.ram.read(PEND + 0x400, 1) == b"\x08"
    assert g.changed_lines() == []
    assert sysreg(bus, g, 2, "ICC_IAR1_EL1") == 1023


def test_msi_before_enable_lpis_is_lost() -> None:
    bus, g = Bus(), Gic(4)
    its_setup(bus, g)
    bus.log.clear()
    bus.run(g.msi(0x10, 3))
    assert not any(isinstance(q, MemWrite) for q in bus.log)
    assert g.changed_lines() == []


def test_unmapped_msi_is_recorded() -> None:
    bus, g = Bus(), Gic(4)
    its_setup(bus, g)
    bus.run(g.msi(0x11, 0))
    records = g.take_errors()
    assert len(records) == 1 and type(records[0]).__name__ == "MsiDropped"


def test_priority_ordering_two_lpis_and_a_ppi() -> None:
    bus, g = Bus(), Gic(2)
    lpi_tables(bus, g, 0, PEND)
    bus.ram.write(PROP + 3, b"\xa3")  # 8195 at 0xA0
    bus.ram.write(PROP + 8, b"\x83")  # 8200 at 0x80
    w(bus, g, GICD + 0x0, 4, 0x2)  # GICD_CTLR.EnableGrp1
    sgi = g.redistributor_base(0) + 0x10000
    w(bus, g, sgi + 0x80, 4, 0xFFFFFFFF)  # IGROUPR0: Group 1
    w(bus, g, sgi + 0x41B, 1, 0x90)  # PPI 27 at 0x90
    w(bus, g, sgi + 0x100, 4, 1 << 27)
    cpu_ready(bus, g, 0)
    bus.run(g.apply([SetLpi(0, 8195, True), SetLpi(0, 8200, True)]))
    g.set_ppi(0, 27, True)
    assert sysreg(bus, g, 0, "ICC_HPPIR1_EL1") == 8200
    order = []
    for _ in range(3):
        intid = sysreg(bus, g, 0, "ICC_IAR1_EL1")
        order.append(intid)
        if intid == 27:
            g.set_ppi(0, 27, False)  # the timer handler reprograms the timer
        sysreg(bus, g, 0, "ICC_EOIR1_EL1", intid)
    assert order == [8200, 27, 8195]
    assert sysreg(bus, g, 0, "ICC_IAR1_EL1") == 1023
    assert bus.ram.read(PEND + 0x400, 2) == b"\x00\x00"


def test_timer_ppi_raises_only_its_cpu() -> None:
    bus, g = Bus(), Gic(2)
    w(bus, g, GICD + 0x0, 4, 0x2)
    sgi = g.redistributor_base(1) + 0x10000
    w(bus, g, sgi + 0x80, 4, 0xFFFFFFFF)
    w(bus, g, sgi + 0x100, 4, 1 << 27)
    w(bus, g, sgi + 0x41B, 1, 0xA0)
    cpu_ready(bus, g, 1)
    g.set_ppi(1, 27, True)
    assert g.changed_lines() == [IrqLine(1, True)]
    g.set_ppi(1, 27, False)
    assert g.changed_lines() == [IrqLine(1, False)]


def test_sgi1r_delivers_to_targets_of_the_right_group() -> None:
    bus, g = Bus(), Gic(4)
    for cpu in (1, 2):
        w(bus, g, g.redistributor_base(cpu) + 0x10080, 4, 0xFFFF)  # SGIs Group 1
    sysreg(bus, g, 0, "ICC_SGI1R_EL1", (3 << 24) | 0b1110)  # SGI 3 to Aff0 1, 2, 3
    pend = [r(bus, g, g.redistributor_base(c) + 0x10200, 4) for c in range(4)]
    assert pend == [0, 1 << 3, 1 << 3, 0]  # CPU 3 has SGI 3 in Group 0: not delivered
    sysreg(bus, g, 2, "ICC_SGI1R_EL1", (1 << 40) | (5 << 24))  # IRM: all but self
    pend = [r(bus, g, g.redistributor_base(c) + 0x10200, 4) for c in range(4)]
    assert pend == [0, (1 << 3) | (1 << 5), 1 << 3, 0]


def test_bad_sysreg_and_cpu_are_recorded_not_raised() -> None:
    bus, g = Bus(), Gic(2)
    assert sysreg(bus, g, 0, "ICC_BOGUS_EL1") == 0
    assert sysreg(bus, g, 5, "ICC_IAR1_EL1") == 0
    g.set_ppi(9, 27, True)
    assert bus.run(g.sysreg(0, "ICC_PMR_EL1", True, "0xf0")) == 0  # type: ignore[arg-type]
    errors = g.take_errors()
    assert len(errors) == 4
    assert "ICC_BOGUS_EL1" in str(errors[0])


@settings(max_examples=200, deadline=None)
@given(
    addr=st.one_of(
        st.integers(GICD - 0x10, GICR + 3 * 0x20000),
        st.sampled_from([GICD + 0x0, ITS + 0x0, ITS + 0x88, ITS + 0x10040, GICR + 0x0]),
    ),
    size=st.sampled_from([0, 1, 2, 3, 4, 8, 16]),
    value=st.integers(0, (1 << 64) - 1),
    write=st.booleans(),
)
def test_hostile_bus_mmio_never_raises(addr: int, size: int, value: int, write: bool) -> None:
    g = Gic(2)
    answer = lambda q: bytes(q.size) if isinstance(q, MemRead) else None  # noqa: E731
    v = run_sync(g.mmio(0, addr, size, write, value, devid=value & 0xFFFF), answer)
    assert v == 0 or (not write and 0 <= v < 1 << (8 * max(size, 1)))
    g.take_errors()
