"""The physical GICv3 CPU interface of one PE: its ICC_*_EL1 system registers.

Follows QEMU 7.2 hw/intc/arm_gicv3_cpuif.c for a GIC with one Security state (DS = 1) and a
PE without EL3 (QEMU virt, ``-cpu cortex-a57``/``max``): only Group 0 and Non-secure Group 1
exist, Group 1 is signalled as IRQ and Group 0 as FIQ. Implementation choices follow QEMU:

* 5 priority and 5 preemption bits (``cs->pribits = cpu->gic_pribits``, 5 for Cortex-A57 since
  QEMU 7.1), so one active-priority register (ICC_AP1R0_EL1) and ICC_CTLR_EL1 = 0x8C00 at
  reset (A3V, IDbits = 1 i.e. 24-bit INTIDs, PRIbits = 4).
* ICC_SRE_EL1 is the constant 0x7 (SRE, DFB, DIB RAO/WI).
* The highest priority pending interrupt ties go to the lower INTID (irqbetter).
* Acknowledging an LPI clears its pending bit in the RAM pending table
  (icc_activate_irq -> gicv3_redist_lpi_pending(cs, irq, 0)); LPIs have no active state, so an
  EOI of an LPI only drops the running priority. (QEMU 7.2's icc_deactivate_irq would index
  the SPI bitmaps with the LPI INTID; this model does nothing instead.)

The interface does not own the interrupts: an :class:`InterruptSource` (the aggregate GIC)
reports the highest priority pending interrupt for this PE and performs activation and
deactivation. ICC_SGI1R_EL1 writes return an :class:`SgiRequest` for the aggregate to route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gic.distributor import Hppi
from gic.port import Core
from gic.registers import ICC_CTLR_EL1, ICC_SGI1R_EL1, INTID_SPURIOUS, LPI_INTID_BASE

ICC_CTLR_EL1_CBPR = 1 << 0
ICC_CTLR_EL1_EOIMODE = 1 << 1
ICC_SRE_EL1_VALUE = 0x7  # SRE | DFB | DIB, RAO/WI


def is_special(intid: int) -> bool:
    """gicv3_intid_is_special(): 1020..1023."""
    return 1020 <= intid <= 1023


class InterruptSource(Protocol):
    """What the CPU interface needs from the distributor and its redistributor."""

    num_irq: int  # SPIs end here (GICD_TYPER.ITLinesNumber)
    lpis: bool  # LPIs implemented (QEMU lpi_enable)

    def hppi(self) -> Hppi | None:
        """The highest priority pending, enabled interrupt for this PE, or None."""
        ...

    def activate(self, intid: int) -> Core[None]:
        """icc_activate_irq's side effect on the interrupt (LPI: clears the RAM pending bit)."""
        ...

    def deactivate(self, intid: int) -> None:
        """icc_deactivate_irq()."""
        ...


@dataclass(frozen=True, slots=True)
class SgiRequest:
    """An ICC_SGI1R_EL1 write (icc_generate_sgi): who should get SGI ``intid``.

    With ``irm`` every PE but the sender; else the PEs whose affinity is
    ``aff3.aff2.aff1.n`` for each bit n of ``target_list`` (Aff0 0..15).
    """

    sender: int
    intid: int
    irm: bool
    aff: int  # Aff3 << 16 | Aff2 << 8 | Aff1 (QEMU's packed form)
    target_list: int
    group1: bool = True

    @classmethod
    def decode(cls, sender: int, value: int, group1: bool = True) -> SgiRequest:
        f = ICC_SGI1R_EL1.decode(value & ((1 << 64) - 1))
        return cls(
            sender=sender,
            intid=f["INTID"],
            irm=bool(f["IRM"]),
            aff=f["Aff3"] << 16 | f["Aff2"] << 8 | f["Aff1"],
            target_list=f["TargetList"],
            group1=group1,
        )

    def targets(self, affinity: int) -> bool:
        """Whether the PE with packed GICR_TYPER affinity ``affinity`` is a target."""
        if affinity >> 8 != self.aff:
            return False
        aff0 = affinity & 0xFF
        return aff0 <= 15 and bool(self.target_list >> aff0 & 1)


class _NoSource:
    num_irq = 32
    lpis = False

    def hppi(self) -> Hppi | None:
        return None

    def activate(self, intid: int) -> Core[None]:
        return
        yield  # pragma: no cover

    def deactivate(self, intid: int) -> None:
        return


#: Registers this interface answers, by name.
READABLE = (
    "ICC_SRE_EL1",
    "ICC_CTLR_EL1",
    "ICC_PMR_EL1",
    "ICC_BPR0_EL1",
    "ICC_BPR1_EL1",
    "ICC_IGRPEN0_EL1",
    "ICC_IGRPEN1_EL1",
    "ICC_IAR1_EL1",
    "ICC_RPR_EL1",
    "ICC_HPPIR1_EL1",
    "ICC_AP0R0_EL1",
    "ICC_AP1R0_EL1",
)
WRITABLE = (
    "ICC_SRE_EL1",
    "ICC_CTLR_EL1",
    "ICC_PMR_EL1",
    "ICC_BPR0_EL1",
    "ICC_BPR1_EL1",
    "ICC_IGRPEN0_EL1",
    "ICC_IGRPEN1_EL1",
    "ICC_EOIR1_EL1",
    "ICC_DIR_EL1",
    "ICC_AP0R0_EL1",
    "ICC_AP1R0_EL1",
    "ICC_SGI1R_EL1",
)


class SysregError(ValueError):
    """An access to a register this interface does not have (the PE would UNDEF)."""


class CpuInterface:
    """ICC_* state of PE ``cpu`` (QEMU GICv3CPUState's icc_* fields)."""

    def __init__(self, cpu: int, *, pribits: int = 5, source: InterruptSource | None = None):
        if not 4 <= pribits <= 8:
            raise ValueError(f"pribits {pribits}: must be 4..8")
        self.cpu = cpu
        self.pribits = pribits
        self.prebits = 7 if pribits == 8 else pribits  # gicv3_init_cpuif
        self.source: InterruptSource = source if source is not None else _NoSource()
        self.reset()

    def reset(self) -> None:
        """icc_reset()."""
        self.ctlr = ICC_CTLR_EL1.encode(A3V=1, IDbits=1, PRIbits=self.pribits - 1)
        self.pmr = 0
        self.bpr0 = self.min_bpr
        self.bpr1 = self.min_bpr + 1  # Non-secure Group 1 minimum
        self.ap0r = 0
        self.ap1r = 0
        self.igrpen0 = 0
        self.igrpen1 = 0

    # --- priority arithmetic (QEMU helpers) -------------------------------------------------

    @property
    def min_bpr(self) -> int:
        return 7 - self.prebits

    @property
    def fullprio_mask(self) -> int:
        return (0xFF << (8 - self.pribits)) & 0xFF

    def running_priority(self) -> int:
        """icc_highest_active_prio(): from the lowest set active-priority bit; 0xFF idle."""
        apr = self.ap0r | self.ap1r
        if not apr:
            return 0xFF
        return ((apr & -apr).bit_length() - 1) << (self.min_bpr + 1)

    def _gprio_mask(self, group1: bool) -> int:
        """icc_gprio_mask(): the group-priority bits for preemption (BPR, CBPR)."""
        if group1 and not self.ctlr & ICC_CTLR_EL1_CBPR:
            bpr = (self.bpr1 & 7) - 1
        else:
            bpr = self.bpr0 & 7
        return (~0 << (bpr + 1)) & 0xFFFFFFFF

    def _no_enabled_hppi(self, h: Hppi | None) -> bool:
        if h is None or h.priority == 0xFF:
            return True
        return not (self.igrpen1 if h.group1 else self.igrpen0)

    def _can_preempt(self, h: Hppi | None) -> bool:
        """icc_hppi_can_preempt()."""
        if self._no_enabled_hppi(h):
            return False
        assert h is not None
        if h.priority >= self.pmr:
            return False
        rprio = self.running_priority()
        if rprio == 0xFF:
            return True
        mask = self._gprio_mask(h.group1)
        return (h.priority & mask) < (rprio & mask)

    # --- lines -----------------------------------------------------------------------------

    def irq_level(self) -> bool:
        """gicv3_cpuif_update(): IRQ is up iff a Group 1 interrupt can preempt."""
        h = self.source.hppi()
        return self._can_preempt(h) and h is not None and h.group1

    def fiq_level(self) -> bool:
        h = self.source.hppi()
        return self._can_preempt(h) and h is not None and not h.group1

    # --- register access -------------------------------------------------------------------

    def _hppir1(self, h: Hppi | None) -> int:
        """icc_hppir1_value(): Group 0 interrupts are not visible through HPPIR1."""
        if self._no_enabled_hppi(h) or h is None or not h.group1:
            return INTID_SPURIOUS
        return h.intid

    def read(self, reg: str) -> Core[int]:
        """Read ICC register ``reg``; ICC_IAR1_EL1 acknowledges (may write the pending table)."""
        if reg == "ICC_IAR1_EL1":
            value = yield from self._iar1()
            return value
        return self.read_now(reg)

    def read_now(self, reg: str) -> int:
        """Side-effect-free reads (everything but ICC_IAR1_EL1)."""
        if reg == "ICC_SRE_EL1":
            return ICC_SRE_EL1_VALUE
        if reg == "ICC_CTLR_EL1":
            return self.ctlr
        if reg == "ICC_PMR_EL1":
            return self.pmr
        if reg == "ICC_BPR0_EL1":
            return self.bpr0
        if reg == "ICC_BPR1_EL1":
            if self.ctlr & ICC_CTLR_EL1_CBPR:
                return min(self.bpr0 + 1, 7)  # reads BPR0 + 1 saturated; writes ignored
            return self.bpr1
        if reg == "ICC_IGRPEN0_EL1":
            return self.igrpen0
        if reg == "ICC_IGRPEN1_EL1":
            return self.igrpen1
        if reg == "ICC_RPR_EL1":
            return self.running_priority()
        if reg == "ICC_HPPIR1_EL1":
            return self._hppir1(self.source.hppi())
        if reg == "ICC_AP0R0_EL1":
            return self.ap0r
        if reg == "ICC_AP1R0_EL1":
            return self.ap1r
        raise SysregError(f"{reg}: not a readable ICC register of this CPU interface")

    def _iar1(self) -> Core[int]:
        """icc_iar1_read(): acknowledge; 1023 when nothing can preempt."""
        h = self.source.hppi()
        intid = self._hppir1(h) if self._can_preempt(h) else INTID_SPURIOUS
        if not is_special(intid):
            assert h is not None
            yield from self._activate(h)
        return intid

    def _activate(self, h: Hppi) -> Core[None]:
        """icc_activate_irq(): set the active-priority bit, then activate the interrupt."""
        prio = h.priority & self._gprio_mask(h.group1)
        aprbit = prio >> (8 - self.prebits)
        if aprbit < 32:  # one APR register per group with <= 5 preemption bits
            if h.group1:
                self.ap1r |= 1 << aprbit
            else:
                self.ap0r |= 1 << aprbit
        yield from self.source.activate(h.intid)

    def write(self, reg: str, value: int) -> Core[SgiRequest | None]:
        """Write ICC register ``reg``. ICC_SGI1R_EL1 returns the SGI to route."""
        value &= (1 << 64) - 1
        if reg == "ICC_SGI1R_EL1":
            return SgiRequest.decode(self.cpu, value, group1=True)
        self.write_now(reg, value)
        return None
        yield  # pragma: no cover - generator for a uniform interface

    def write_now(self, reg: str, value: int) -> None:  # noqa: C901 - a register switch
        if reg == "ICC_SRE_EL1":
            return  # RAO/WI
        if reg == "ICC_CTLR_EL1":
            mask = ICC_CTLR_EL1_CBPR | ICC_CTLR_EL1_EOIMODE  # DS = 1, no EL3
            self.ctlr = (self.ctlr & ~mask) | (value & mask)
        elif reg == "ICC_PMR_EL1":
            self.pmr = value & self.fullprio_mask
        elif reg == "ICC_BPR0_EL1":
            self.bpr0 = (value if value >= self.min_bpr else self.min_bpr) & 7
        elif reg == "ICC_BPR1_EL1":
            if self.ctlr & ICC_CTLR_EL1_CBPR:
                return
            minval = self.min_bpr + 1
            self.bpr1 = (value if value >= minval else minval) & 7
        elif reg == "ICC_IGRPEN0_EL1":
            self.igrpen0 = value & 1
        elif reg == "ICC_IGRPEN1_EL1":
            self.igrpen1 = value & 1
        elif reg == "ICC_EOIR1_EL1":
            self._eoir1(value & 0xFFFFFF)
        elif reg == "ICC_DIR_EL1":
            self._dir(value & 0xFFFFFF)
        elif reg == "ICC_AP0R0_EL1":
            self.ap0r = value & 0xFFFFFFFF
        elif reg == "ICC_AP1R0_EL1":
            self.ap1r = value & 0xFFFFFFFF
        else:
            raise SysregError(f"{reg}: not a writable ICC register of this CPU interface")

    def _highest_active_group1(self) -> bool | None:
        """icc_highest_active_group(): the group of the lowest set APR bit (G0 on a tie)."""
        if not (self.ap0r or self.ap1r):
            return None
        g0 = (self.ap0r & -self.ap0r).bit_length() - 1 if self.ap0r else 32
        g1 = (self.ap1r & -self.ap1r).bit_length() - 1 if self.ap1r else 32
        return g1 < g0

    def _eoir1(self, irq: int) -> None:
        """icc_eoir_write() for EOIR1: priority drop; deactivate too when EOImode = 0."""
        lpi = self.source.lpis and irq >= LPI_INTID_BASE
        if irq >= self.source.num_irq and not lpi:
            return  # spurious IDs and non-existent INTIDs are ignored
        if self._highest_active_group1() is not True:
            return  # nothing active, or the highest active is Group 0: EOIR1 ignored
        self.ap1r &= self.ap1r - 1  # icc_drop_prio(): clear the lowest set bit
        if not self.ctlr & ICC_CTLR_EL1_EOIMODE and not lpi:
            self.source.deactivate(irq)

    def _dir(self, irq: int) -> None:
        """icc_dir_write(): deactivate, only when EOImode = 1; LPIs and specials ignored."""
        if irq >= self.source.num_irq:
            return
        if not self.ctlr & ICC_CTLR_EL1_EOIMODE:
            return
        self.source.deactivate(irq)


__all__ = [
    "CpuInterface",
    "InterruptSource",
    "READABLE",
    "SgiRequest",
    "SysregError",
    "WRITABLE",
    "is_special",
]
