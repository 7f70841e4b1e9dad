"""CPU interface: ICC_* values, acknowledge/EOI, running priority, IRQ line (QEMU 7.2)."""

from __future__ import annotations

from typing import Any

import pytest

from gic.cpu_interface import CpuInterface, SgiRequest, SysregError
from gic.distributor import Hppi, best_of
from gic.port import Core, run_sync
from gic.registers import ICC_CTLR_EL1


class FakeSource:
    """Pending interrupts as a dict; activation/deactivation logged."""

    num_irq = 256
    lpis = True

    def __init__(self) -> None:
        self.pending: dict[int, Hppi] = {}
        self.active: set[int] = set()
        self.log: list[tuple[str, int]] = []

    def add(self, intid: int, prio: int, group1: bool = True) -> None:
        self.pending[intid] = Hppi(intid, prio, group1)

    def hppi(self) -> Hppi | None:
        return best_of(*self.pending.values())

    def activate(self, intid: int) -> Core[None]:
        self.log.append(("activate", intid))
        self.pending.pop(intid, None)
        if intid < 8192:
            self.active.add(intid)
        return
        yield  # pragma: no cover

    def deactivate(self, intid: int) -> None:
        self.log.append(("deactivate", intid))
        self.active.discard(intid)


def no_ram(req: Any) -> Any:
    raise AssertionError(f"unexpected RAM request {req!r}")


def rd(cif: CpuInterface, reg: str) -> int:
    return run_sync(cif.read(reg), no_ram)


def wr(cif: CpuInterface, reg: str, value: int) -> Any:
    return run_sync(cif.write(reg, value), no_ram)


def ready(src: FakeSource | None = None) -> tuple[CpuInterface, FakeSource]:
    src = src or FakeSource()
    cif = CpuInterface(0, source=src)
    wr(cif, "ICC_PMR_EL1", 0xF0)  # Linux DEFAULT_PMR_VALUE
    wr(cif, "ICC_IGRPEN1_EL1", 1)
    return cif, src


def test_reset_values() -> None:
    cif = CpuInterface(0)
    ctlr = rd(cif, "ICC_CTLR_EL1")
    assert ctlr == 0x8C00
    f = ICC_CTLR_EL1.decode(ctlr)
    # A76 TRM: PRIbits 0x4 = 5 priority bits; IDbits 1 = 24-bit INTIDs (QEMU); A3V.
    assert (f["PRIbits"], f["IDbits"], f["A3V"], f["EOImode"]) == (4, 1, 1, 0)
    assert rd(cif, "ICC_SRE_EL1") == 0x7
    assert rd(cif, "ICC_PMR_EL1") == 0
    assert rd(cif, "ICC_BPR1_EL1") == 3  # minimum Non-secure BPR with 5 preemption bits
    assert rd(cif, "ICC_RPR_EL1") == 0xFF
    assert rd(cif, "ICC_IAR1_EL1") == 1023


def test_writable_bits() -> None:
    cif = CpuInterface(0)
    wr(cif, "ICC_PMR_EL1", 0xFF)
    assert rd(cif, "ICC_PMR_EL1") == 0xF8  # 5 implemented priority bits
    wr(cif, "ICC_BPR1_EL1", 0)
    assert rd(cif, "ICC_BPR1_EL1") == 3
    wr(cif, "ICC_BPR1_EL1", 5)
    assert rd(cif, "ICC_BPR1_EL1") == 5
    wr(cif, "ICC_CTLR_EL1", 0xFFFFFFFF)
    assert rd(cif, "ICC_CTLR_EL1") == 0x8C03  # only CBPR and EOImode are writable
    wr(cif, "ICC_SRE_EL1", 0)
    assert rd(cif, "ICC_SRE_EL1") == 0x7
    wr(cif, "ICC_IGRPEN1_EL1", 0xFF)
    assert rd(cif, "ICC_IGRPEN1_EL1") == 1


def test_acknowledge_and_eoi() -> None:
    cif, src = ready()
    src.add(40, 0xA0)
    assert cif.irq_level()
    assert rd(cif, "ICC_HPPIR1_EL1") == 40
    assert rd(cif, "ICC_IAR1_EL1") == 40
    assert src.log == [("activate", 40)]
    assert rd(cif, "ICC_RPR_EL1") == 0xA0
    assert rd(cif, "ICC_AP1R0_EL1") == 1 << (0xA0 >> 3)  # priority group 20
    assert not cif.irq_level()
    wr(cif, "ICC_EOIR1_EL1", 40)
    assert src.log[-1] == ("deactivate", 40)
    assert rd(cif, "ICC_RPR_EL1") == 0xFF
    assert rd(cif, "ICC_AP1R0_EL1") == 0
    assert rd(cif, "ICC_IAR1_EL1") == 1023


def test_pmr_masks_and_equal_priority_does_not_preempt() -> None:
    cif, src = ready()
    src.add(40, 0xF0)
    assert not cif.irq_level()  # priority must be strictly below PMR
    assert rd(cif, "ICC_IAR1_EL1") == 1023
    assert rd(cif, "ICC_HPPIR1_EL1") == 40  # HPPIR ignores PMR
    src.pending.clear()
    src.add(41, 0xA0)
    assert rd(cif, "ICC_IAR1_EL1") == 41
    src.add(42, 0xA0)
    assert not cif.irq_level()
    assert rd(cif, "ICC_IAR1_EL1") == 1023
    src.add(43, 0x90)
    assert cif.irq_level()
    assert rd(cif, "ICC_IAR1_EL1") == 43


def test_group1_disabled_means_no_line() -> None:
    cif, src = ready()
    wr(cif, "ICC_IGRPEN1_EL1", 0)
    src.add(40, 0x80)
    assert not cif.irq_level()
    assert rd(cif, "ICC_IAR1_EL1") == 1023
    assert rd(cif, "ICC_HPPIR1_EL1") == 1023


def test_group0_goes_to_fiq_not_iar1() -> None:
    cif, src = ready()
    wr(cif, "ICC_IGRPEN0_EL1", 1)
    src.add(40, 0x80, group1=False)
    assert cif.fiq_level() and not cif.irq_level()
    assert rd(cif, "ICC_IAR1_EL1") == 1023


def test_eoimode_1_splits_drop_and_deactivate() -> None:
    cif, src = ready()
    wr(cif, "ICC_CTLR_EL1", 0x2)
    src.add(40, 0xA0)
    assert rd(cif, "ICC_IAR1_EL1") == 40
    wr(cif, "ICC_EOIR1_EL1", 40)
    assert rd(cif, "ICC_RPR_EL1") == 0xFF
    assert 40 in src.active
    wr(cif, "ICC_DIR_EL1", 40)
    assert 40 not in src.active


def test_lpi_eoi_drops_priority_without_deactivation() -> None:
    cif, src = ready()
    src.add(8195, 0xA0)
    assert rd(cif, "ICC_IAR1_EL1") == 8195
    wr(cif, "ICC_EOIR1_EL1", 8195)
    assert rd(cif, "ICC_RPR_EL1") == 0xFF
    assert src.log == [("activate", 8195)]


def test_spurious_and_nonexistent_eoi_ignored() -> None:
    cif, src = ready()
    src.add(40, 0xA0)
    rd(cif, "ICC_IAR1_EL1")
    for bad in (1023, 1020, 300):
        wr(cif, "ICC_EOIR1_EL1", bad)
    assert rd(cif, "ICC_RPR_EL1") == 0xA0


def test_nested_preemption_and_running_priority() -> None:
    cif, src = ready()
    src.add(40, 0xA0)
    assert rd(cif, "ICC_IAR1_EL1") == 40
    src.add(41, 0x80)
    assert rd(cif, "ICC_IAR1_EL1") == 41
    assert rd(cif, "ICC_RPR_EL1") == 0x80
    assert rd(cif, "ICC_AP1R0_EL1") == (1 << 20) | (1 << 16)
    wr(cif, "ICC_EOIR1_EL1", 41)
    assert rd(cif, "ICC_RPR_EL1") == 0xA0


def test_sgi1r_decodes_targets() -> None:
    cif = CpuInterface(3)
    req = wr(cif, "ICC_SGI1R_EL1", (5 << 24) | (1 << 16) | 0b110)
    assert req == SgiRequest(sender=3, intid=5, irm=False, aff=1, target_list=0b110)
    assert req.targets(0x0101) and req.targets(0x0102)
    assert not req.targets(0x0001) and not req.targets(0x0103)
    broadcast = wr(cif, "ICC_SGI1R_EL1", (1 << 40) | (2 << 24))
    assert broadcast.irm and broadcast.intid == 2


def test_unknown_register_is_a_one_line_error() -> None:
    cif = CpuInterface(0)
    with pytest.raises(SysregError, match="ICC_FOO_EL1"):
        rd(cif, "ICC_FOO_EL1")
    with pytest.raises(SysregError, match="ICC_IAR1_EL1"):
        wr(cif, "ICC_IAR1_EL1", 0)
