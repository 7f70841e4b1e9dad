"""Xen's vGICv3 for one domain: distributor and redistributor emulation plus its vITSes.

Follows xen/arch/arm/vgic-v3.c of Xen 4.17 register by register (``vgic_v3_distr_mmio_read``
/ ``_write``, ``__vgic_v3_distr_common_mmio_read`` / ``_write``, ``__vgic_v3_rdistr_rd_mmio_*``,
``vgic_v3_rdistr_sgi_mmio_*``), with Xen's switch ranges (VREG32/VREG64/VRANGE32), access-size
checks, RAZ/WI and console lines. :class:`VgicV3` owns the domain's :class:`~hypervisor.vgic.Vgic`
(interrupt state, LR scheduling) and one :class:`~hypervisor.vits.Vits` per host ITS when Xen is
built with HAS_ITS and the domain is the hardware domain (``vgic_v3_its_init_domain``).

Contract with the Xen component (hypervisor/xen.py):

* ``mmio(vcpu, addr, size, write, value, reg=0)`` is a core (generator): drive it with
  ``gic.port.Driver``; it yields ``MemRead``/``MemWrite`` only for vITS command processing and
  returns a :class:`~hypervisor.vgic.MmioResult`. ``handled`` False means no vGIC frame claims
  the address; ``abort`` means Xen injects a data abort (a handler returned 0); ``log`` holds
  Xen's console lines; ``injections`` are vIRQs raised as a side effect (kick their vCPUs);
  ``actions`` are physical-GIC operations for hardware-linked SPIs; ``crash`` is a Xen crash.
  ``vcpu`` is the trapping vCPU, current on the pCPU running the handler.
* Interrupt delivery goes through :attr:`VgicV3.vgic` (``inject_irq``, ``inject_lpi``,
  ``sync_from_lrs``, ``sync_to_lrs``, ``emulate_sgi1r``, ``vcpu_pending_irq``, ...).

Xen 4.17 specifics modelled (see the module notes of vgic.py for the LR side): GICR
``write_ignore_64`` has its check inverted (fixed upstream in 2025), so 32/64-bit writes to
GICR_TYPER, SETLPIR, CLRLPIR, INVLPIR, INVALLR, and to PROPBASER/PENDBASER without a vITS,
abort; ISPENDR writes inject (since 4.15); ICPENDR/ISACTIVER writes abort and ICACTIVER writes
only print (the real boot logs show the ICACTIVER lines); reading GICR_PENDBASER clears bit 62
of the returned data (the PTZ position of a 64-bit read; unverified whether 4.17 has the later
32-bit fix); IROUTER stores use ``virq & 31`` (the 2022 fix). GICD_TYPER has no ESPI fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gic.port import Core
from hypervisor.vgic import (
    DABT_BYTE,
    DABT_SIZES,
    DABT_WORD,
    Dabt,
    MmioResult,
    VcpuVgic,
    Vgic,
    XenCrash,
    XenCrashed,
    vaffinity_to_vcpuid,
    vcpuid_to_vaffinity,
    vgic_reg64_check_access,
    vreg_reg_clearbits,
    vreg_reg_extract,
    vreg_reg_setbits,
    vreg_reg_update,
)
from hypervisor.vits import HostItsOps, Vits
from hypervisor.xen_log import XenLog, XenLogLine

GICV3_GICR_SIZE = 0x20000
SZ_64K = 0x10000
GICV3_GICD_IIDR_VAL = 0x34C
GICV3_GICR_IIDR_VAL = GICV3_GICD_IIDR_VAL
GICV3_GICD_PIDR2 = 0x30
GICV3_GICR_PIDR2 = GICV3_GICD_PIDR2
GICD_CTLR_ARE_NS = 1 << 4
GICD_CTLR_ENABLE_G1A = 1 << 1
GICD_TYPE_CPUS_SHIFT = 5
GICD_TYPE_LPIS = 1 << 17
GICD_TYPE_ID_BITS_SHIFT = 19
GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_TYPER_PLPIS = 1 << 0
GICR_TYPER_LAST = 1 << 4
GICR_TYPER_PROC_NUM_SHIFT = 8
GICR_SYNCR_NOT_BUSY = 1
GICR_PENDBASER_PTZ = 1 << 62
GICD_IROUTER_SPI_MODE_ANY = 1 << 31
READ_UNKNOWN = 0xDEADBEAFDEADBEAF


def _gm(h: int, lo: int) -> int:
    return ((1 << (h - lo + 1)) - 1) << lo


GICR_PROPBASER_RES0_MASK = _gm(63, 59) | _gm(55, 52) | _gm(6, 5)
GICR_PENDBASER_RES0_MASK = (1 << 63) | _gm(61, 59) | _gm(55, 52) | _gm(15, 12) | _gm(6, 0)

# Distributor offsets (Xen's gic.h / gic_v3_defs.h); xxxN is the last register of an array.
GICD_CTLR, GICD_TYPER, GICD_IIDR, GICD_STATUSR = 0x000, 0x004, 0x008, 0x010
GICD_IGROUPR, GICD_IGROUPRN = 0x080, 0x0FC
GICD_ISENABLER, GICD_ISENABLERN = 0x100, 0x17C
GICD_ICENABLER, GICD_ICENABLERN = 0x180, 0x1FC
GICD_ISPENDR, GICD_ISPENDRN = 0x200, 0x27C
GICD_ICPENDR, GICD_ICPENDRN = 0x280, 0x2FC
GICD_ISACTIVER, GICD_ISACTIVERN = 0x300, 0x37C
GICD_ICACTIVER, GICD_ICACTIVERN = 0x380, 0x3FC
GICD_IPRIORITYR, GICD_IPRIORITYRN = 0x400, 0x7F8
GICD_ICFGR, GICD_ICFGRN = 0xC00, 0xCFC
GICD_NSACR, GICD_NSACRN = 0xE00, 0xEFC
GICD_SGIR = 0xF00
GICD_CPENDSGIR, GICD_CPENDSGIRN = 0xF10, 0xF1C
GICD_SPENDSGIR, GICD_SPENDSGIRN = 0xF20, 0xF2C
GICD_IROUTER, GICD_IROUTER32, GICD_IROUTER1019 = 0x6000, 0x6100, 0x7FD8
GICD_PIDR2 = 0xFFE8
# Redistributor RD_base / SGI_base offsets
GICR_CTLR, GICR_IIDR, GICR_TYPER, GICR_STATUSR, GICR_WAKER = 0x0, 0x4, 0x8, 0x10, 0x14
GICR_SETLPIR, GICR_CLRLPIR, GICR_PROPBASER, GICR_PENDBASER = 0x40, 0x48, 0x70, 0x78
GICR_INVLPIR, GICR_INVALLR, GICR_SYNCR, GICR_PIDR2 = 0xA0, 0xB0, 0xC0, 0xFFE8
GICR_IGROUPR0, GICR_ISENABLER0, GICR_ICENABLER0 = 0x080, 0x100, 0x180
GICR_ISPENDR0, GICR_ICPENDR0, GICR_ISACTIVER0, GICR_ICACTIVER0 = 0x200, 0x280, 0x300, 0x380
GICR_IPRIORITYR0, GICR_IPRIORITYR7 = 0x400, 0x41C
GICR_ICFGR0, GICR_ICFGR1, GICR_IGRPMODR0, GICR_NSACR = 0xC00, 0xC04, 0xD00, 0xE00


def VREG32(off: int, reg: int) -> bool:
    return reg <= off <= reg + 3


def VREG64(off: int, reg: int) -> bool:
    return reg <= off <= reg + 7


def VRANGE32(off: int, start: int, end: int) -> bool:
    return start <= off <= end + 3


def VRANGE64(off: int, start: int, end: int) -> bool:
    return start <= off <= end + 7


def REG_RANK_NR(b: int, n: int) -> int:
    return n >> {64: 5, 32: 5, 16: 4, 8: 3, 4: 2, 2: 1, 1: 0}[b]


def REG_RANK_INDEX(b: int, n: int, s: int) -> int:
    return ((n >> s) & (b - 1)) % 32


def _sanitise(reg: int, share_shift: int, inner_shift: int, outer_shift: int) -> int:
    """vgic_sanitise_{shareability,inner,outer}_cacheability for PROPBASER / PENDBASER."""
    if (reg >> share_shift) & 3 == 2:  # OuterShareable -> InnerShareable
        reg = (reg & ~(3 << share_shift)) | (1 << share_shift)
    if (reg >> inner_shift) & 7 in (0, 1):  # nCnB / nC -> RaWb
        reg = (reg & ~(7 << inner_shift)) | (3 << inner_shift)
    if (reg >> outer_shift) & 7 not in (0, 1):  # only SameAsInner or nC
        reg = (reg & ~(7 << outer_shift)) | (1 << outer_shift)
    return reg


def sanitize_propbaser(reg: int) -> int:
    return _sanitise(reg, 10, 7, 56) & ~GICR_PROPBASER_RES0_MASK


def sanitize_pendbaser(reg: int) -> int:
    return _sanitise(reg, 10, 7, 56) & ~GICR_PENDBASER_RES0_MASK


@dataclass(frozen=True, slots=True)
class HostItsInfo:
    """One host ITS as Xen found it: its base and GITS_TYPER's DeviceID/EventID widths."""

    base: int
    devid_bits: int
    evid_bits: int


@dataclass(frozen=True, slots=True)
class RdistRegion:
    """A redistributor region (base, size) as the host describes it."""

    base: int
    size: int


@dataclass(eq=False, slots=True)
class _RdistState:
    rdist_base: int
    last: bool
    pendbase: int = 0
    lpis_enabled: bool = False


class _Bad(Exception):
    """Internal: the handler returned 0 (Xen injects a data abort)."""


class VgicV3:
    """One domain's vGICv3 (Xen's ``d->arch.vgic`` for GIC_V3) with its MMIO frames."""

    def __init__(
        self,
        domid: int,
        *,
        vcpus: int,
        has_its: bool,
        nr_spis: int,
        intid_bits: int,
        vits_bases: Sequence[HostItsInfo] = (),
        redist_regions: Sequence[RdistRegion | tuple[int, int]],
        lr_count: int,
        log: Callable[[XenLogLine], None] | None = None,
        dist_base: int = 0x0800_0000,
        host: HostItsOps | None = None,
        hardware_domain: bool | None = None,
        debug_build: bool = False,
    ) -> None:
        self.domid = domid
        self.hwdom = (domid == 0) if hardware_domain is None else bool(hardware_domain)
        self._lines: list[XenLogLine] = []
        self._sink = log

        def sink(line: XenLogLine) -> None:
            self._lines.append(line)
            if self._sink is not None:
                self._sink(line)

        self.xlog = XenLog(sink, debug_build=debug_build)
        self.vgic = Vgic(domid, vcpus=vcpus, nr_spis=nr_spis, lr_count=lr_count, log=self.xlog)
        # vgic_v3_real_domain_init: dom0 gets the host ID bits, domUs "10 for now".
        if self.hwdom and not 14 <= intid_bits <= 24:
            raise ValueError(f"intid_bits={intid_bits}: host GICD_TYPER.IDbits+1 is 14..24")
        self.intid_bits = intid_bits if self.hwdom else 10
        self.dbase = dist_base
        self.ctlr = GICD_CTLR_ARE_NS  # VGICD_CTLR_DEFAULT
        self.regions = [
            r if isinstance(r, RdistRegion) else RdistRegion(*r) for r in redist_regions
        ]
        if not self.regions:
            raise ValueError("at least one redistributor region is needed")
        self.first_cpu: list[int] = []
        first = 0
        for r in self.regions:
            self.first_cpu.append(first)
            first += r.size // GICV3_GICR_SIZE
        self.rdist = [self._vcpu_init(i) for i in range(vcpus)]
        self.its: list[Vits] = []
        if has_its and self.hwdom:  # vgic_v3_its_init_domain: one vITS per host ITS, dom0 only
            for h in vits_bases:
                self.its.append(
                    Vits(
                        self.vgic,
                        base=h.base,
                        devid_bits=h.devid_bits,
                        evid_bits=h.evid_bits,
                        host=host,
                        log=self.xlog,
                    )
                )
        self.has_its = bool(self.its)

    def _vcpu_init(self, vcpu: int) -> _RdistState:
        """``vgic_v3_vcpu_init``: the redistributor frame and the Last flag of a vCPU."""
        i = 1
        while i < len(self.regions) and vcpu >= self.first_cpu[i]:
            i += 1
        region, first = self.regions[i - 1], self.first_cpu[i - 1]
        base = region.base + (vcpu - first) * GICV3_GICR_SIZE
        if base < region.base or base + GICV3_GICR_SIZE > region.base + region.size:
            raise ValueError(f"d{self.domid}: Unable to find a re-distributor for VCPU {vcpu}")
        last_cpu = region.size // GICV3_GICR_SIZE + first - 1
        return _RdistState(base, vcpu == last_cpu or vcpu == self.vgic.max_vcpus - 1)

    # ------------------------------------------------------------------ register values

    @property
    def gicd_typer(self) -> int:
        ncpus = min(self.vgic.max_vcpus, 8)
        typer = (ncpus - 1) << GICD_TYPE_CPUS_SHIFT | -(-self.vgic.nr_spis // 32)
        if self.has_its:
            typer |= GICD_TYPE_LPIS
        return typer | (self.intid_bits - 1) << GICD_TYPE_ID_BITS_SHIFT

    def gicr_typer(self, vcpu: int) -> int:
        aff = vcpuid_to_vaffinity(vcpu)  # v->arch.vmpidr affinity: Aff1 [15:8], Aff0 [7:0]
        typer = (aff & 0xFF) << 32 | ((aff >> 8) & 0xFF) << 40
        typer |= vcpu << GICR_TYPER_PROC_NUM_SHIFT
        if self.rdist[vcpu].last:
            typer |= GICR_TYPER_LAST
        if self.has_its:
            typer |= GICR_TYPER_PLPIS
        return typer

    @property
    def rdist_propbase(self) -> int:
        return self.vgic.rdist_propbase

    def vits_at(self, addr: int) -> Vits | None:
        for its in self.its:
            if its.base <= addr < its.base + SZ_64K:
                return its
        return None

    # ------------------------------------------------------------------ the trap

    def mmio(
        self, vcpu: int, addr: int, size: int, write: bool, value: int = 0, *, reg: int = 0
    ) -> Core[MmioResult]:
        """A stage-2 data abort by ``vcpu`` on ``addr``: dispatch to the frame's handler."""
        vg = self.vgic
        if not isinstance(vcpu, int) or not 0 <= vcpu < vg.max_vcpus:
            return MmioResult(False, error=f"vcpu {vcpu!r} is not a vCPU of d{self.domid}")
        if size not in DABT_SIZES:
            return MmioResult(False, error=f"access size {size!r} is not 1, 2, 4 or 8 bytes")
        if not isinstance(addr, int) or not 0 <= addr < 1 << 64:
            return MmioResult(False, error=f"address {addr!r} is not a 64-bit IPA")
        r = int(value) & (2**64 - 1) if isinstance(value, int) else 0
        dabt = Dabt(addr, DABT_SIZES[size], int(reg) & 31 if isinstance(reg, int) else 0, write)
        frame = ""
        if self.dbase <= addr < self.dbase + SZ_64K:
            frame = "GICD"
        elif any(g.base <= addr < g.base + g.size for g in self.regions):
            frame = "GICR"
        elif self.vits_at(addr) is not None:
            frame = "GITS"
        if not frame:
            return MmioResult(False)
        self._lines = []
        vg.begin(vcpu)
        if vg.crashed is not None:
            return MmioResult(True, abort=True, frame=frame, crash=vg.crashed)
        v = vg.vcpus[vcpu]
        ok, val = True, 0
        try:
            if frame == "GICD":
                off = addr - self.dbase
                ok, val = (
                    self._distr_read(v, dabt, off)
                    if not write
                    else self._distr_write(v, dabt, off, r)
                )
            elif frame == "GICR":
                ok, val = self._rdistr(v, dabt, r)
            else:
                its = self.vits_at(addr)
                assert its is not None
                ok, val = yield from its.mmio(vg.name(vcpu), dabt, r)
        except XenCrashed as e:
            vg.crashed = e.crash
        inj, act = vg.take_effects()
        crash: XenCrash | None = vg.crashed
        return MmioResult(
            True,
            value=val if ok and not write else 0,
            abort=not ok or crash is not None,
            frame=frame,
            log=tuple(self._lines),
            injections=inj,
            actions=act,
            crash=crash,
        )

    # ------------------------------------------------------------------ common GICD / GICR SGI

    def _rank_offset(self, v: VcpuVgic, b: int, n: int, s: int):  # type: ignore[no-untyped-def]
        return self.vgic.vgic_get_rank(v, REG_RANK_NR(b, n >> s))

    def _common_read(self, name: str, v: VcpuVgic, dabt: Dabt, reg: int) -> tuple[bool, int]:
        vn = self.vgic.name(v.id)

        def bad_width() -> tuple[bool, int]:
            self.xlog.emit("common.bad_read_width", vn, name, dabt.size, dabt.reg, reg)
            return False, 0

        word = dabt.size == DABT_WORD
        if VRANGE32(reg, GICD_IGROUPR, GICD_IGROUPRN):
            return (True, 0) if word else bad_width()
        for base, last in ((GICD_ISENABLER, GICD_ISENABLERN), (GICD_ICENABLER, GICD_ICENABLERN)):
            if VRANGE32(reg, base, last):
                if not word:
                    return bad_width()
                rank = self._rank_offset(v, 1, reg - base, DABT_WORD)
                return (
                    (True, 0) if rank is None else (True, vreg_reg_extract(rank.ienable, dabt, 32))
                )
        if VRANGE32(reg, GICD_ISPENDR, GICD_ISPENDRN) or VRANGE32(reg, GICD_ICPENDR, GICD_ICPENDR):
            return True, 0  # pending state is not readable (and only ICPENDR0 is listed)
        if VRANGE32(reg, GICD_ISACTIVER, GICD_ISACTIVER) or VRANGE32(
            reg, GICD_ICACTIVER, GICD_ICACTIVERN
        ):
            return True, 0
        if VRANGE32(reg, GICD_IPRIORITYR, GICD_IPRIORITYRN):
            if dabt.size not in (DABT_BYTE, DABT_WORD):
                return bad_width()
            rank = self._rank_offset(v, 8, reg - GICD_IPRIORITYR, DABT_WORD)
            if rank is None:
                return True, 0
            idx = REG_RANK_INDEX(8, reg - GICD_IPRIORITYR, DABT_WORD)
            return True, vreg_reg_extract(rank.get_ipriorityr(idx), dabt, 32)
        if VRANGE32(reg, GICD_ICFGR, GICD_ICFGRN):
            if not word:
                return bad_width()
            rank = self._rank_offset(v, 2, reg - GICD_ICFGR, DABT_WORD)
            if rank is None:
                return True, 0
            idx = REG_RANK_INDEX(2, reg - GICD_ICFGR, DABT_WORD)
            return True, vreg_reg_extract(rank.icfg[idx], dabt, 32)
        self.xlog.emit("common.unhandled_read", vn, name, dabt.reg, reg)
        return False, 0

    def _common_write(self, name: str, v: VcpuVgic, dabt: Dabt, reg: int, r: int) -> bool:
        vg = self.vgic
        vn = vg.name(v.id)

        def bad_width() -> bool:
            self.xlog.emit("common.bad_write_width", vn, name, dabt.size, dabt.reg, r, reg)
            return False

        word = dabt.size == DABT_WORD
        if VRANGE32(reg, GICD_IGROUPR, GICD_IGROUPRN):
            return True if word else bad_width()
        if VRANGE32(reg, GICD_ISENABLER, GICD_ISENABLERN):
            if not word:
                return bad_width()
            rank = self._rank_offset(v, 1, reg - GICD_ISENABLER, DABT_WORD)
            if rank is None:
                return True
            tr = rank.ienable
            rank.ienable = vreg_reg_setbits(rank.ienable, r, dabt, 32)
            vg.vgic_enable_irqs(v, rank.ienable & ~tr, rank.index)
            return True
        if VRANGE32(reg, GICD_ICENABLER, GICD_ICENABLERN):
            if not word:
                return bad_width()
            rank = self._rank_offset(v, 1, reg - GICD_ICENABLER, DABT_WORD)
            if rank is None:
                return True
            tr = rank.ienable
            rank.ienable = vreg_reg_clearbits(rank.ienable, r, dabt, 32)
            vg.vgic_disable_irqs(v, ~rank.ienable & tr, rank.index)
            return True
        if VRANGE32(reg, GICD_ISPENDR, GICD_ISPENDRN):
            if not word:
                return bad_width()
            rank = self._rank_offset(v, 1, reg - GICD_ISPENDR, DABT_WORD)
            if rank is None:
                return True
            vg.vgic_set_irqs_pending(v, r, rank.index)
            return True
        if VRANGE32(reg, GICD_ICPENDR, GICD_ICPENDRN):
            if not word:
                return bad_width()
            self.xlog.emit("common.unhandled_icpendr", vn, name, r, reg - GICD_ICPENDR)
            return False
        if VRANGE32(reg, GICD_ISACTIVER, GICD_ISACTIVERN):
            if not word:
                return bad_width()
            self.xlog.emit("common.unhandled_isactiver", vn, name, r, reg - GICD_ISACTIVER)
            return False
        if VRANGE32(reg, GICD_ICACTIVER, GICD_ICACTIVERN):
            self.xlog.emit("common.unhandled_icactiver", vn, name, r, reg - GICD_ICACTIVER)
            return True if word else bad_width()
        if VRANGE32(reg, GICD_IPRIORITYR, GICD_IPRIORITYRN):
            if dabt.size not in (DABT_BYTE, DABT_WORD):
                return bad_width()
            rank = self._rank_offset(v, 8, reg - GICD_IPRIORITYR, DABT_WORD)
            if rank is None:
                return True
            idx = REG_RANK_INDEX(8, reg - GICD_IPRIORITYR, DABT_WORD)
            rank.set_ipriorityr(idx, vreg_reg_update(rank.get_ipriorityr(idx), r, dabt, 32))
            return True
        if VREG32(reg, GICD_ICFGR):  # SGIs: fixed
            return True if word else bad_width()
        if VRANGE32(reg, GICD_ICFGR + 4, GICD_ICFGRN):
            if not word:
                return bad_width()
            rank = self._rank_offset(v, 2, reg - GICD_ICFGR, DABT_WORD)
            if rank is None:
                return True
            idx = REG_RANK_INDEX(2, reg - GICD_ICFGR, DABT_WORD)
            rank.icfg[idx] = vreg_reg_update(rank.icfg[idx], r, dabt, 32)
            return True
        self.xlog.emit("common.unhandled_write", vn, name, dabt.reg, r, reg)
        return False

    # ------------------------------------------------------------------ distributor

    _GICD_COMMON = (
        (GICD_IGROUPR, GICD_IGROUPRN),
        (GICD_ISENABLER, GICD_ISENABLERN),
        (GICD_ICENABLER, GICD_ICENABLERN),
        (GICD_ISPENDR, GICD_ISPENDRN),
        (GICD_ICPENDR, GICD_ICPENDRN),
        (GICD_ISACTIVER, GICD_ISACTIVERN),
        (GICD_ICACTIVER, GICD_ICACTIVERN),
        (GICD_IPRIORITYR, GICD_IPRIORITYRN),
        (GICD_ICFGR, GICD_ICFGRN),
    )
    _GICD_RESERVED = (
        (0x000C, 0x000C), (0x0014, 0x001C), (0x0040, 0x0058), (0x005C, 0x007C),
        (0x0F30, 0x60FC), (0x7FE0, 0xBFFC),
    )  # fmt: skip
    _GICD_IMPL = ((0x0020, 0x003C), (0xC000, 0xFFCC), (0xFFD0, 0xFFE4), (0xFFEC, 0xFFFC))
    _GICD_RAZWI32 = (
        (GICD_STATUSR, GICD_STATUSR), (GICD_NSACR, GICD_NSACRN), (GICD_SGIR, GICD_SGIR),
        (GICD_CPENDSGIR, GICD_CPENDSGIRN), (GICD_SPENDSGIR, GICD_SPENDSGIRN),
    )  # fmt: skip

    def _distr_read(self, v: VcpuVgic, dabt: Dabt, reg: int) -> tuple[bool, int]:
        vn = self.vgic.name(v.id)

        def bad_width() -> tuple[bool, int]:
            self.xlog.emit("vgicd.bad_read_width", vn, dabt.size, dabt.reg, reg)
            return False, 0

        word = dabt.size == DABT_WORD
        if VREG32(reg, GICD_CTLR):
            return (True, vreg_reg_extract(self.ctlr, dabt, 32)) if word else bad_width()
        if VREG32(reg, GICD_TYPER):
            return (True, vreg_reg_extract(self.gicd_typer, dabt, 32)) if word else bad_width()
        if VREG32(reg, GICD_IIDR):
            return (True, vreg_reg_extract(GICV3_GICD_IIDR_VAL, dabt, 32)) if word else bad_width()
        if any(VRANGE32(reg, a, b) for a, b in self._GICD_RAZWI32):
            return (True, 0) if word else bad_width()
        if any(VRANGE32(reg, a, b) for a, b in self._GICD_RESERVED):
            self.xlog.emit("vgicd.raz_reserved", vn, reg)
            return True, 0
        if any(VRANGE32(reg, a, b) for a, b in self._GICD_IMPL):
            self.xlog.emit("vgicd.raz_impl", vn, reg)
            return True, 0
        if any(VRANGE32(reg, a, b) for a, b in self._GICD_COMMON):
            return self._common_read("vGICD", v, dabt, reg)
        if VRANGE64(reg, GICD_IROUTER32, GICD_IROUTER1019):
            if not vgic_reg64_check_access(dabt):
                return bad_width()
            rank = self._rank_offset(v, 64, reg - GICD_IROUTER, 3)
            if rank is None:
                return True, 0
            irouter = vcpuid_to_vaffinity(rank.vcpu[((reg - GICD_IROUTER) // 8) & 31])
            return True, vreg_reg_extract(irouter, dabt, 64)
        if VREG32(reg, GICD_PIDR2):
            return (True, vreg_reg_extract(GICV3_GICD_PIDR2, dabt, 32)) if word else bad_width()
        self.xlog.emit("vgicd.unhandled_read", vn, dabt.reg, reg)
        return False, 0

    def _distr_write(self, v: VcpuVgic, dabt: Dabt, reg: int, r: int) -> tuple[bool, int]:
        vn = self.vgic.name(v.id)

        def bad_width() -> tuple[bool, int]:
            self.xlog.emit("vgicd.bad_write_width", vn, dabt.size, dabt.reg, r, reg)
            return False, 0

        word = dabt.size == DABT_WORD
        if VREG32(reg, GICD_CTLR):
            if not word:
                return bad_width()
            ctlr = vreg_reg_update(0, r, dabt, 32)  # only EnableGrp1A can be changed
            if ctlr & GICD_CTLR_ENABLE_G1A:
                self.ctlr |= GICD_CTLR_ENABLE_G1A
            else:
                self.ctlr &= ~GICD_CTLR_ENABLE_G1A
            return True, 0
        if VREG32(reg, GICD_TYPER) or VREG32(reg, GICD_IIDR) or VREG32(reg, GICD_STATUSR):
            return (True, 0) if word else bad_width()
        if any(VRANGE32(reg, a, b) for a, b in self._GICD_RESERVED):
            self.xlog.emit("vgicd.wi_reserved", vn, reg)
            return True, 0
        if any(VRANGE32(reg, a, b) for a, b in self._GICD_IMPL):
            self.xlog.emit("vgicd.wi_impl", vn, reg)
            return True, 0
        if any(VRANGE32(reg, a, b) for a, b in self._GICD_COMMON):
            return self._common_write("vGICD", v, dabt, reg, r), 0
        if VRANGE32(reg, GICD_NSACR, GICD_NSACRN) or VREG32(reg, GICD_SGIR):
            return (True, 0) if word else bad_width()
        if VRANGE32(reg, GICD_CPENDSGIR, GICD_CPENDSGIRN) or VRANGE32(
            reg, GICD_SPENDSGIR, GICD_SPENDSGIRN
        ):
            return (False, 0) if word else bad_width()  # "ignore write": returns 0, no line
        if VRANGE64(reg, GICD_IROUTER32, GICD_IROUTER1019):
            if not vgic_reg64_check_access(dabt):
                return bad_width()
            rank = self._rank_offset(v, 64, reg - GICD_IROUTER, 3)
            if rank is None:
                return True, 0
            off = reg - GICD_IROUTER
            irouter = vcpuid_to_vaffinity(rank.vcpu[(off // 8) & 31])
            irouter = vreg_reg_update(irouter, r, dabt, 64)
            self._store_irouter(rank, off, irouter)
            return True, 0
        if VREG32(reg, GICD_PIDR2):
            return (True, 0) if word else bad_width()
        self.xlog.emit("vgicd.unhandled_write", vn, dabt.reg, r, reg)
        return False, 0

    def _store_irouter(self, rank, offset: int, irouter: int) -> None:  # type: ignore[no-untyped-def]
        """``vgic_store_irouter``: move the SPI's target vCPU (invalid targets are ignored)."""
        vg = self.vgic
        virq = offset // 8
        idx = virq & 31
        if irouter & GICD_IROUTER_SPI_MODE_ANY:
            new = vg.vcpus[0]
        else:
            vid = vaffinity_to_vcpuid(irouter)
            if vid >= vg.max_vcpus:
                return
            new = vg.vcpus[vid]
        old = vg.vcpus[rank.vcpu[idx]]
        if new is not old and vg.vgic_migrate_irq(old, new, virq):
            rank.vcpu[idx] = new.id

    # ------------------------------------------------------------------ redistributor

    def _rdistr(self, cur: VcpuVgic, dabt: Dabt, r: int) -> tuple[bool, int]:
        """``vgic_v3_rdistr_mmio_read/write``: find the target vCPU's frame, then RD or SGI."""
        vg = self.vgic
        gpa = dabt.gpa
        ri = next(i for i, g in enumerate(self.regions) if g.base <= gpa < g.base + g.size)
        vid = self.first_cpu[ri] + (gpa - self.regions[ri].base) // GICV3_GICR_SIZE
        if vid >= vg.max_vcpus:
            return False, 0
        v = vg.vcpus[vid]
        offset = gpa - self.rdist[vid].rdist_base
        if offset < SZ_64K:
            if dabt.write:
                return self._rd_write(v, dabt, offset, r), 0
            return self._rd_read(v, dabt, offset)
        if offset < 2 * SZ_64K:
            if dabt.write:
                return self._sgi_write(v, dabt, offset - SZ_64K, r), 0
            return self._sgi_read(v, dabt, offset - SZ_64K)
        key = "vgicr.unknown_gpa_write" if dabt.write else "vgicr.unknown_gpa_read"
        self.xlog.emit(key, vg.name(vid), gpa)
        return False, 0

    _RD_RESERVED = (0x0018, 0x0050, 0x0080, 0x00A8, 0x00B8, 0x00C8, 0x0108)
    _RD_IMPL = (0x0020,)

    def _rd_read(self, v: VcpuVgic, dabt: Dabt, reg: int) -> tuple[bool, int]:
        vn = self.vgic.name(v.id)
        st = self.rdist[v.id]

        def bad_width() -> tuple[bool, int]:
            self.xlog.emit("vgicr.bad_read_width", vn, dabt.size, dabt.reg, reg)
            return False, 0

        word = dabt.size == DABT_WORD
        ok64 = vgic_reg64_check_access(dabt)

        def reserved() -> tuple[bool, int]:
            self.xlog.emit("vgicr.raz_reserved", vn, reg)
            return True, 0

        def impl() -> tuple[bool, int]:
            self.xlog.emit("vgicr.raz_impl", vn, reg)
            return True, 0

        if VREG32(reg, GICR_CTLR):
            if not word:
                return bad_width()
            return True, (vreg_reg_extract(int(st.lpis_enabled), dabt, 32) if self.has_its else 0)
        if VREG32(reg, GICR_IIDR):
            return (True, vreg_reg_extract(GICV3_GICR_IIDR_VAL, dabt, 32)) if word else bad_width()
        if VREG64(reg, GICR_TYPER):
            return (
                (True, vreg_reg_extract(self.gicr_typer(v.id), dabt, 64)) if ok64 else bad_width()
            )
        if VREG32(reg, GICR_STATUSR) or VREG32(reg, GICR_WAKER):
            return (True, 0) if word else bad_width()
        if reg in self._RD_RESERVED or 0x0118 <= reg <= 0xBFFC:
            return reserved()
        if reg in self._RD_IMPL or VREG64(reg, 0x0100) or VREG64(reg, 0x0110):
            return impl()
        if 0xC000 <= reg <= 0xFFCC or 0xFFD0 <= reg <= 0xFFE4 or 0xFFEC <= reg <= 0xFFFC:
            return impl()
        if any(VREG64(reg, x) for x in (GICR_SETLPIR, GICR_CLRLPIR, GICR_INVLPIR, GICR_INVALLR)):
            return True, vreg_reg_extract(READ_UNKNOWN, dabt, 64)
        if VREG64(reg, GICR_PROPBASER):
            if not self.has_its:
                return (True, 0) if ok64 else bad_width()
            return (
                (True, vreg_reg_extract(self.vgic.rdist_propbase, dabt, 64))
                if ok64
                else bad_width()
            )
        if VREG64(reg, GICR_PENDBASER):
            if not ok64:
                return bad_width()
            if not self.has_its:
                return True, 0
            return True, vreg_reg_extract(st.pendbase, dabt, 64) & ~GICR_PENDBASER_PTZ
        if VREG32(reg, GICR_SYNCR):
            return (True, vreg_reg_extract(GICR_SYNCR_NOT_BUSY, dabt, 32)) if word else bad_width()
        if VREG32(reg, GICR_PIDR2):
            return (True, vreg_reg_extract(GICV3_GICR_PIDR2, dabt, 32)) if word else bad_width()
        self.xlog.emit("vgicr.unhandled_read", vn, dabt.reg, reg)
        return False, 0

    def _rd_write(self, v: VcpuVgic, dabt: Dabt, reg: int, r: int) -> bool:
        vg = self.vgic
        vn = vg.name(v.id)
        st = self.rdist[v.id]

        def bad_width() -> bool:
            self.xlog.emit("vgicr.bad_write_width", vn, dabt.size, dabt.reg, r, reg)
            return False

        word = dabt.size == DABT_WORD
        ok64 = vgic_reg64_check_access(dabt)

        def write_ignore_64() -> bool:
            # Xen 4.17: "if ( vgic_reg64_check_access(dabt) ) goto bad_width;" (inverted)
            return bad_width() if ok64 else True

        if VREG32(reg, GICR_CTLR):
            if not self.has_its:
                return True if word else bad_width()
            if not word:
                return bad_width()
            if r & GICR_CTLR_ENABLE_LPIS and not st.lpis_enabled:  # only once, never disabled
                self._vcpu_enable_lpis(v)
            return True
        if VREG32(reg, GICR_IIDR) or VREG32(reg, GICR_STATUSR) or VREG32(reg, GICR_WAKER):
            return True if word else bad_width()
        if VREG64(reg, GICR_TYPER):
            return write_ignore_64()
        if reg in self._RD_RESERVED or 0x0118 <= reg <= 0xBFFC:
            self.xlog.emit("vgicr.wi_reserved", vn, reg)
            return True
        if reg in self._RD_IMPL or VREG64(reg, 0x0100) or VREG64(reg, 0x0110):
            self.xlog.emit("vgicr.wi_impl", vn, reg)
            return True
        if 0xC000 <= reg <= 0xFFCC or 0xFFD0 <= reg <= 0xFFE4 or 0xFFEC <= reg <= 0xFFFC:
            self.xlog.emit("vgicr.wi_impl", vn, reg)
            return True
        if any(VREG64(reg, x) for x in (GICR_SETLPIR, GICR_CLRLPIR, GICR_INVLPIR, GICR_INVALLR)):
            return write_ignore_64()
        if VREG64(reg, GICR_PROPBASER):
            if not self.has_its:
                return write_ignore_64()
            if not ok64:
                return bad_width()
            if not vg.rdists_enabled:  # frozen once any redistributor enabled LPIs
                val = vreg_reg_update(vg.rdist_propbase, r, dabt, 64)
                vg.rdist_propbase = sanitize_propbaser(val)
            return True
        if VREG64(reg, GICR_PENDBASER):
            if not self.has_its:
                return write_ignore_64()
            if not ok64:
                return bad_width()
            if not st.lpis_enabled:  # frozen once this vCPU enabled LPIs
                st.pendbase = sanitize_pendbaser(vreg_reg_update(st.pendbase, r, dabt, 64))
            return True
        if VREG32(reg, GICR_SYNCR) or VREG32(reg, GICR_PIDR2):
            return True if word else bad_width()
        self.xlog.emit("vgicr.unhandled_write", vn, dabt.reg, reg)
        return False

    def _vcpu_enable_lpis(self, v: VcpuVgic) -> None:
        """``vgic_vcpu_enable_lpis``: the first enable latches nr_lpis and rdists_enabled."""
        vg = self.vgic
        nr_lpis = (1 << ((vg.rdist_propbase & 0x1F) + 1)) & 0xFFFFFFFF  # unsigned int BIT()
        nr_lpis = 0 if nr_lpis < 8192 else nr_lpis - 8192
        if not vg.rdists_enabled:
            vg.nr_lpis = nr_lpis
            vg.rdists_enabled = True
        self.rdist[v.id].lpis_enabled = True

    _SGI_COMMON = (
        (GICR_IGROUPR0, GICR_IGROUPR0), (GICR_ISENABLER0, GICR_ISENABLER0),
        (GICR_ICENABLER0, GICR_ICENABLER0), (GICR_ISACTIVER0, GICR_ISACTIVER0),
        (GICR_ICACTIVER0, GICR_ICACTIVER0), (GICR_IPRIORITYR0, GICR_IPRIORITYR7),
    )  # fmt: skip

    def _sgi_read(self, v: VcpuVgic, dabt: Dabt, reg: int) -> tuple[bool, int]:
        vn = self.vgic.name(v.id)
        if any(VRANGE32(reg, a, b) for a, b in self._SGI_COMMON) or VRANGE32(
            reg, GICR_ICFGR0, GICR_ICFGR1
        ):
            return self._common_read("vGICR: SGI", v, dabt, reg)
        if VREG32(reg, GICR_ISPENDR0) or VREG32(reg, GICR_ICPENDR0):
            return True, 0
        if VREG32(reg, GICR_IGRPMODR0) or VREG32(reg, GICR_NSACR):
            if dabt.size != DABT_WORD:
                self.xlog.emit("sgi.bad_read_width", vn, dabt.size, dabt.reg, reg)
                return False, 0
            return True, 0
        if 0x0E04 <= reg <= 0xBFFC or 0xFFD0 <= reg <= 0xFFFC:
            self.xlog.emit("sgi.raz_reserved", vn, reg)
            return True, 0
        if 0xC000 <= reg <= 0xFFCC:
            self.xlog.emit("sgi.raz_impl", vn, reg)
            return True, 0
        self.xlog.emit("sgi.unhandled_read", vn, dabt.reg, reg)
        return False, 0

    def _sgi_write(self, v: VcpuVgic, dabt: Dabt, reg: int, r: int) -> bool:
        vn = self.vgic.name(v.id)
        if (
            any(VRANGE32(reg, a, b) for a, b in self._SGI_COMMON)
            or VREG32(reg, GICR_ICFGR1)
            or VREG32(reg, GICR_ISPENDR0)
        ):
            return self._common_write("vGICR: SGI", v, dabt, reg, r)
        if VREG32(reg, GICR_ICPENDR0):
            if dabt.size != DABT_WORD:
                self.xlog.emit("sgi.bad_write_width", vn, dabt.size, dabt.reg, r, reg)
                return False
            self.xlog.emit("sgi.unhandled_icpendr0", vn, r)
            return False
        if VREG32(reg, GICR_IGRPMODR0) or VREG32(reg, GICR_NSACR):
            if dabt.size != DABT_WORD:
                self.xlog.emit("sgi.bad_write_width", vn, dabt.size, dabt.reg, r, reg)
                return False
            return True
        self.xlog.emit("sgi.unhandled_write", vn, dabt.reg, reg)
        return False

    # ------------------------------------------------------------------ inspection

    def pendbaser(self, vcpu: int) -> int:
        return self.rdist[vcpu].pendbase

    def lpis_enabled(self, vcpu: int) -> bool:
        return self.rdist[vcpu].lpis_enabled

    def rdist_base(self, vcpu: int) -> int:
        return self.rdist[vcpu].rdist_base
