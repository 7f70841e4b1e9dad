"""The physical GICv3 of the QEMU 7.2 ``virt`` machine: distributor, redistributors, ITS, CPU
interfaces, and the bus that routes MMIO, system registers and MSIs to them.

Memory map (hw/arm/virt.c): GICD at 0x08000000 (64 KiB), ITS at 0x08080000 (128 KiB),
redistributors from 0x080A0000 with a 0x20000 stride (VIRT_GIC_REDIST holds 123; further CPUs
go to VIRT_HIGH_GIC_REDIST2 at 0x40_0000_0000), GICR_TYPER.Last on the final one of each
region. CPU i has MPIDR affinity Aff1 = i / 16, Aff0 = i % 16 (virt_cpu_mp_affinity with
GICV3_TARGETLIST_BITS) and Processor_Number i, so ITS effects name redistributors by CPU index.

Interrupt delivery follows gicv3_update / gicv3_redist_update_noirqset: a PE's highest priority
pending interrupt is the best (lowest priority value, then lowest INTID) of its routed SPIs,
its SGIs/PPIs and its cached hpplpi (LPIs count only with EnableLPIs and an ITS; as in QEMU they
are not gated by GICD_CTLR.EnableGrp1). After every operation :meth:`Gic.changed_lines` gives
the IRQ lines that moved, so a host sends ``irq`` messages only on change.

Everything that touches guest RAM is a generator yielding gic.port MemRead/MemWrite requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from gic.cpu_interface import CpuInterface, SgiRequest, SysregError
from gic.distributor import Distributor, GuestError, Hppi, better
from gic.fastinit import fast_init
from gic.its import (
    BadAccess,
    CommandError,
    InvAllLpis,
    InvLpi,
    Its,
    ItsEffect,
    MoveAllLpis,
    MoveLpi,
    MsiDropped,
    SetLpi,
    Sync,
)
from gic.port import Core
from gic.redistributor import GICR_CTLR_ENABLE_LPIS, Redistributor
from gic.registers import GIC_V3_DIST_SIZE, GIC_V3_REDIST_SIZE, GICV3_ITS_SIZE, LPI_INTID_BASE

VIRT_GIC_DIST = 0x08000000
VIRT_GIC_ITS = 0x08080000
VIRT_GIC_REDIST = 0x080A0000
VIRT_GIC_REDIST_SIZE = 0x00F60000
VIRT_HIGH_GIC_REDIST2 = 0x40_0000_0000
VIRT_HIGH_GIC_REDIST2_SIZE = 0x04000000
GICV3_TARGETLIST_BITS = 16

#: Records the bus keeps about what the guest did wrong or what the ITS dropped.
GicRecord = GuestError | BadAccess | CommandError | MsiDropped


@dataclass(frozen=True, slots=True)
class IrqLine:
    """The IRQ line of ``cpu`` went up or down."""

    cpu: int
    level: bool


class _PeSource:
    """The InterruptSource of one PE: its redistributor plus the SPIs routed to it."""

    def __init__(self, gic: Gic, cpu: int) -> None:
        self._gic = gic
        self._cpu = cpu

    @property
    def num_irq(self) -> int:
        return self._gic.dist.num_irq

    @property
    def lpis(self) -> bool:
        return self._gic.lpis

    def hppi(self) -> Hppi | None:
        g = self._gic
        rd = g.redists[self._cpu]
        best = g.dist.hppi_for(rd.affinity)  # best_of(spi, private, lpi), unrolled: hot path
        cand = rd.private_hppi(g.dist.ctlr)
        if better(cand, best):
            best = cand
        if g.lpis:
            cand = rd.lpi_hppi()
            if better(cand, best):
                best = cand
        return best

    def activate(self, intid: int) -> Core[None]:
        """icc_activate_irq(): SGI/PPI, SPI, or clear the LPI's RAM pending bit."""
        rd = self._gic.redists[self._cpu]
        if intid < 32:
            rd.activate_private(intid)
        elif intid < LPI_INTID_BASE:
            self._gic.dist.activate(intid)
        else:
            yield from rd.lpi_pending(intid, False)

    def deactivate(self, intid: int) -> None:
        if intid < 32:
            self._gic.redists[self._cpu].deactivate_private(intid)
        elif intid < LPI_INTID_BASE:
            self._gic.dist.deactivate(intid)


def virt_affinity(cpu: int) -> int:
    """Packed Aff3.Aff2.Aff1.Aff0 (GICR_TYPER.Affinity_Value) of CPU ``cpu`` on virt."""
    return (cpu // GICV3_TARGETLIST_BITS) << 8 | (cpu % GICV3_TARGETLIST_BITS)


@fast_init
@dataclass(frozen=True, slots=True)
class MsiOutcome:
    """What one MSI became: ``action`` is "set", "coalesced" or "dropped" (with ``reason``)."""

    action: str
    processor: int | None = None
    intid: int | None = None
    reason: str = ""


class Gic:
    """The whole physical GIC of a ``virt`` machine with ``num_cpus`` PEs."""

    def __init__(
        self,
        num_cpus: int,
        *,
        num_spis: int = 224,
        lpi_id_bits: int = 16,
        its: bool = True,
        pribits: int = 5,
    ) -> None:
        cap1 = VIRT_GIC_REDIST_SIZE // GIC_V3_REDIST_SIZE
        cap2 = VIRT_HIGH_GIC_REDIST2_SIZE // GIC_V3_REDIST_SIZE
        if not 1 <= num_cpus <= cap1 + cap2:
            raise ValueError(f"num_cpus {num_cpus}: virt has room for 1..{cap1 + cap2}")
        self.num_cpus = num_cpus
        self.lpis = its
        self.dist = Distributor(num_spis, lpis=its, id_bits=lpi_id_bits)
        self.its: Its | None = Its(VIRT_GIC_ITS, num_processors=num_cpus) if its else None
        n1 = min(num_cpus, cap1)
        self.regions: list[tuple[int, int, int]] = [(VIRT_GIC_REDIST, 0, n1)]
        if num_cpus > n1:
            self.regions.append((VIRT_HIGH_GIC_REDIST2, n1, num_cpus - n1))
        lasts = {first + count - 1 for _base, first, count in self.regions}
        self.redists = [
            Redistributor(i, virt_affinity(i), i in lasts, lpi_id_bits=lpi_id_bits, plpis=its)
            for i in range(num_cpus)
        ]
        self.cpus = [
            CpuInterface(i, pribits=pribits, source=_PeSource(self, i)) for i in range(num_cpus)
        ]
        self.errors: list[GuestError] = []
        self.its_records: list[BadAccess | CommandError | MsiDropped] = []
        self._reported = {i: False for i in range(num_cpus)}

    # --- addresses ----------------------------------------------------------------------------

    def redistributor_base(self, cpu: int) -> int:
        for base, first, count in self.regions:
            if first <= cpu < first + count:
                return base + (cpu - first) * GIC_V3_REDIST_SIZE
        raise ValueError(f"cpu {cpu}: no such CPU (0..{self.num_cpus - 1})")

    def _find_redist(self, addr: int) -> tuple[Redistributor, int] | None:
        for base, first, count in self.regions:
            if base <= addr < base + count * GIC_V3_REDIST_SIZE:
                idx, off = divmod(addr - base, GIC_V3_REDIST_SIZE)
                return self.redists[first + idx], off
        return None

    # --- bus operations -------------------------------------------------------------------------

    def mmio(
        self, cpu: int, addr: int, size: int, write: bool, value: int = 0, devid: int = 0
    ) -> Core[int]:
        """A load or store by ``cpu`` (or a device when it is an MSI write with ``devid``).
        Unmapped addresses read as zero, ignore writes and are recorded in :attr:`errors`."""
        if not isinstance(addr, int) or not isinstance(size, int) or not isinstance(value, int):
            self.errors.append(GuestError("bus", 0, 0, write, "non-integer MMIO operand"))
            return 0
        if size in (1, 2, 4, 8):
            value &= (1 << (8 * size)) - 1
        if VIRT_GIC_DIST <= addr < VIRT_GIC_DIST + GIC_V3_DIST_SIZE:
            off = addr - VIRT_GIC_DIST
            if write:
                self.dist.mmio_write(off, size, value)
                return 0
            return self.dist.mmio_read(off, size)
        if self.its is not None and VIRT_GIC_ITS <= addr < VIRT_GIC_ITS + GICV3_ITS_SIZE:
            off = addr - VIRT_GIC_ITS
            if write:
                effects = yield from self.its.mmio_write(off, size, value, devid)
                yield from self.apply(effects)
                return 0
            data = yield from self.its.mmio_read(off, size)
            return data
        found = self._find_redist(addr)
        if found is not None:
            rd, off = found
            if write:
                yield from rd.mmio_write(off, size, value)
                return 0
            data = yield from rd.mmio_read(off, size)
            return data
        self.errors.append(GuestError("bus", addr, size, write, "no device at this address"))
        return 0

    def sysreg(self, cpu: int, reg: str, write: bool, value: int = 0) -> Core[int]:
        """An ICC_* access by ``cpu``; unknown registers (the PE would UNDEF) are recorded and
        answered 0. ICC_SGI1R_EL1 writes are delivered here (icc_generate_sgi)."""
        if not isinstance(cpu, int) or not 0 <= cpu < self.num_cpus:
            self.errors.append(GuestError("cpuif", 0, 8, write, f"{reg}: no CPU {cpu!r}"))
            return 0
        if not isinstance(reg, str) or not isinstance(value, int):
            self.errors.append(GuestError(f"ICC{cpu}", 0, 8, write, f"bad operand {reg!r}"))
            return 0
        cif = self.cpus[cpu]
        try:
            if write:
                req = yield from cif.write(reg, value)
                if req is not None:
                    self.deliver_sgi(req)
                return 0
            data = yield from cif.read(reg)
            return data
        except SysregError as exc:
            self.errors.append(GuestError(f"ICC{cpu}", 0, 8, write, str(exc)))
            return 0

    def deliver_sgi(self, req: SgiRequest) -> list[int]:
        """icc_generate_sgi(): pend SGI ``req.intid`` on each target; returns who accepted it."""
        accepted: list[int] = []
        for i, rd in enumerate(self.redists):
            if req.irm:
                if i == req.sender:
                    continue
            elif not req.targets(rd.affinity):
                continue
            if rd.send_sgi(req.intid, req.group1):
                accepted.append(i)
        return accepted

    def msi(self, devid: int, eventid: int) -> Core[MsiOutcome]:
        """A device's write of ``eventid`` to GITS_TRANSLATER: translate, then deliver.

        The outcome says what became of it: the LPI became pending ("set"), was pending
        already ("coalesced": the architecture merges them), or went nowhere ("dropped":
        the ITS dropped it, or the redistributor ignored it)."""
        if self.its is None:
            self.errors.append(GuestError("bus", VIRT_GIC_ITS, 4, True, "MSI but no ITS"))
            return MsiOutcome("dropped", reason="no ITS on this machine")
        effects = yield from self.its.translate(devid, eventid)
        drops = [e for e in effects if isinstance(e, MsiDropped)]
        sets = [e for e in effects if isinstance(e, SetLpi)]
        yield from self.apply([e for e in effects if not isinstance(e, SetLpi)])
        if drops or not sets:
            return MsiOutcome("dropped", reason=drops[0].reason if drops else "no translation")
        s = sets[0]
        if not 0 <= s.processor < self.num_cpus:
            yield from self.apply([s])  # recorded as an error by apply
            return MsiOutcome("dropped", s.processor, s.intid, "collection targets no CPU")
        changed = yield from self.redists[s.processor].set_lpi(s.intid, s.level)
        if changed is None:
            why = "redistributor ignored the LPI (EnableLPIs = 0 or INTID beyond IDbits)"
            return MsiOutcome("dropped", s.processor, s.intid, why)
        return MsiOutcome("set" if changed else "coalesced", s.processor, s.intid)

    def apply(self, effects: list[ItsEffect]) -> Core[None]:
        """Apply ITS effects to the redistributors (processor number = CPU index)."""
        for e in effects:
            if isinstance(e, (BadAccess, CommandError, MsiDropped)):
                self.its_records.append(e)
                continue
            procs = self._processors(e)
            if any(not 0 <= p < self.num_cpus for p in procs):
                self.errors.append(
                    GuestError("ITS", 0, 0, True, f"{e!r} names a processor that does not exist")
                )
                continue
            if isinstance(e, SetLpi):
                yield from self.redists[e.processor].set_lpi(e.intid, e.level)
            elif isinstance(e, InvLpi):
                yield from self.redists[e.processor].inv_lpi(e.intid)
            elif isinstance(e, InvAllLpis):
                yield from self.redists[e.processor].inv_all()
            elif isinstance(e, MoveLpi):
                src, dst = self.redists[e.src_processor], self.redists[e.dst_processor]
                yield from src.move_lpi(dst, e.intid)
            elif isinstance(e, MoveAllLpis):
                yield from self.redists[e.src].move_all_lpis(self.redists[e.dst])
            elif isinstance(e, Sync):
                pass  # everything here is synchronous: nothing outstanding

    @staticmethod
    def _processors(e: ItsEffect) -> tuple[int, ...]:
        if isinstance(e, MoveLpi):
            return (e.src_processor, e.dst_processor)
        if isinstance(e, MoveAllLpis):
            return (e.src, e.dst)
        return (getattr(e, "processor", 0),)

    def set_ppi(self, cpu: int, intid: int, level: bool) -> None:
        """A PPI input of ``cpu`` (e.g. the virtual timer, INTID 27) changes level."""
        if not isinstance(cpu, int) or not 0 <= cpu < self.num_cpus:
            self.errors.append(GuestError("bus", intid, 0, True, f"PPI for no CPU {cpu!r}"))
            return
        self.redists[cpu].set_ppi(intid, level)

    def set_spi(self, intid: int, level: bool) -> None:
        """An SPI input line changes level (gicv3_dist_set_irq)."""
        self.dist.set_spi(intid, level)

    # --- outputs --------------------------------------------------------------------------------

    def _levels(self) -> list[tuple[int, bool]]:
        """(cpu, its IRQ line) for every CPU that may have a line up; the others' are low.

        Hosts ask after every operation, so with many CPUs this is the hot path: a PE with no
        candidate at all (no SPI pending anywhere, no SGI/PPI pending for it, no hpplpi) has
        no HPPI, and gicv3_cpuif_update leaves its line low without a priority comparison."""
        dist = self.dist
        if dist._int_pending():  # an SPI is pending: every PE looks at it
            return [(i, c.irq_level()) for i, c in enumerate(self.cpus)]
        ctlr = dist.ctlr
        lpis = self.lpis
        pe_source = _PeSource
        out: list[tuple[int, bool]] = []
        i = -1
        for c, rd in zip(self.cpus, self.redists):
            i += 1
            # rd.private_hppi(ctlr) is None when nothing is pending, enabled and inactive (its
            # first test, inlined; else ask it: the group mask may still leave nothing), and
            # rd.lpi_hppi() is None unless this (its test, inlined) holds.
            if (
                type(c.source) is pe_source
                and not (
                    (rd.ipendr0 | (~rd.edge_trigger & rd.level)) & rd.ienabler0 & ~rd.iactiver0
                    and rd.private_hppi(ctlr) is not None
                )
                and not (
                    lpis and rd.hpplpi_prio != 0xFF and rd.ctlr & GICR_CTLR_ENABLE_LPIS and rd.plpis
                )
            ):
                continue  # hppi() is None: _can_preempt(None) is False
            out.append((i, c.irq_level()))
        return out

    def irq_lines(self) -> dict[int, bool]:
        """The IRQ line of every CPU now."""
        out = dict.fromkeys(range(len(self.cpus)), False)
        out.update(self._levels())
        return out

    def raised_lines(self) -> list[int]:
        """The CPUs whose IRQ line is up, in CPU order (those ``irq_lines()`` has up)."""
        return [i for i, level in self._levels() if level]

    def irq_line(self, cpu: int) -> bool:
        """``irq_lines().get(cpu, False)``, computed for that CPU alone (same shortcut)."""
        if not 0 <= cpu < self.num_cpus:
            return False
        c = self.cpus[cpu]
        if type(c.source) is _PeSource and self.dist._int_pending() == 0:
            rd = self.redists[cpu]
            if not (
                (rd.ipendr0 | (~rd.edge_trigger & rd.level)) & rd.ienabler0 & ~rd.iactiver0
                and rd.private_hppi(self.dist.ctlr) is not None
            ) and not (
                self.lpis
                and rd.hpplpi_prio != 0xFF
                and rd.ctlr & GICR_CTLR_ENABLE_LPIS
                and rd.plpis
            ):
                return False
        return c.irq_level()

    def changed_lines(self) -> list[IrqLine]:
        """The lines that changed since the last call (initially all low)."""
        out: list[IrqLine] = []
        for cpu, level in self.irq_lines().items():
            if level != self._reported[cpu]:
                out.append(IrqLine(cpu, level))
                self._reported[cpu] = level
        return out

    def take_errors(self) -> list[GicRecord]:
        """Drain every guest-error and ITS record kept since the last call."""
        out: list[GicRecord] = [*self.errors, *self.dist.errors, *self.its_records]
        for rd in self.redists:
            if rd.errors:  # (nearly always empty: nothing to move)
                out.extend(rd.errors)
                rd.errors.clear()
        self.errors.clear()
        self.dist.errors.clear()
        self.its_records.clear()
        return out


__all__ = [
    "Gic",
    "GicRecord",
    "IrqLine",
    "VIRT_GIC_DIST",
    "VIRT_GIC_ITS",
    "VIRT_GIC_REDIST",
    "virt_affinity",
]
