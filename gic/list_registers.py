"""The EL2 virtual CPU interface of one vCPU: ICH_*_EL2 and what the guest's ICC_* accesses do.

Follows QEMU 7.2 hw/intc/arm_gicv3_cpuif.c (ich_*_read/write, hppvi_index,
icv_hppi_can_preempt, icv_iar_read, icv_eoir_write, icv_dir_write,
eoi_maintenance_interrupt_state, maintenance_interrupt_state) for a GICv3 (no GICv4 direct
vLPI injection) with QEMU's Cortex-A57 values: 5 virtual priority and preemption bits, so one
active-priority register per group and ICH_VTR_EL2 = 0x90B80003 for 4 list registers.

LPIs in list registers (HW = 0, vINTID >= 8192) follow QEMU commit 82a65e3188ab ("handle LPIs
in the list registers", Cc qemu-stable, i.e. the 7.2.x stable series the real boots used) and
the VirtualWriteEOIR1() pseudocode it cites: the acknowledge moves the LR pending -> active
like any interrupt (icv_activate_irq has no LPI case), and the EOI then deactivates it at once
(-> invalid) even with VEOIM = 1, since no separate deactivate comes for an LPI; an EOI of an
LPI found in no LR drops the priority without incrementing EOIcount.

Where QEMU is not the architecture: ICH_MISR_EL2.VGrp0D here tests VENG0 (QEMU tests VENG1);
pINTID is the 13-bit field [44:32] of the fact sheet (QEMU reads 10 bits).

Raw register values are exposed (:meth:`save` / :meth:`restore`) so a host can carry them in
transport.messages.GicContext(lrs, hcr, vmcr, ap1r). No RAM is ever touched here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gic.cpu_interface import ICC_SRE_EL1_VALUE, SysregError, is_special
from gic.registers import (
    ICH_HCR_EL2,
    ICH_LR_EL2,
    ICH_MISR_EL2,
    ICH_VMCR_EL2,
    ICH_VTR_EL2,
    INTID_SPURIOUS,
    LPI_INTID_BASE,
)
from gic.registers import (
    ICH_LR_EL2_HW as ICH_LR_EL2_HW_VIEW,
)

ICH_LR_EL2_STATE_SHIFT = 62
ICH_LR_EL2_STATE_MASK = 3 << 62
ICH_LR_EL2_STATE_PENDING_BIT = 1 << 62
ICH_LR_EL2_STATE_ACTIVE_BIT = 1 << 63
ICH_LR_EL2_HW = 1 << 61
ICH_LR_EL2_GROUP = 1 << 60
ICH_LR_EL2_NMI = 1 << 59
ICH_LR_EL2_EOI = 1 << 41
_PINTID = ICH_LR_EL2_HW_VIEW["pINTID"]
_VINTID = ICH_LR_EL2["vINTID"]
_PRIORITY = ICH_LR_EL2["Priority"]

_HCR = {f.name: f.mask for f in ICH_HCR_EL2}
ICH_HCR_EL2_EN = _HCR["En"]
ICH_HCR_EL2_UIE = _HCR["UIE"]
ICH_HCR_EL2_LRENPIE = _HCR["LRENPIE"]
ICH_HCR_EL2_NPIE = _HCR["NPIE"]
ICH_HCR_EL2_EOICOUNT = ICH_HCR_EL2["EOIcount"]
# ich_hcr_write: the bits QEMU keeps (no vSGIEOICount, no DVIM).
_HCR_WRITABLE = (
    sum(
        _HCR[n]
        for n in (
            "En",
            "UIE",
            "LRENPIE",
            "NPIE",
            "VGrp0EIE",
            "VGrp0DIE",
            "VGrp1EIE",
            "VGrp1DIE",
            "TC",
            "TALL0",
            "TALL1",
            "TSEI",
            "TDIR",
        )
    )
    | ICH_HCR_EL2_EOICOUNT.mask
)

_VMCR = {f.name: f for f in ICH_VMCR_EL2}
ICH_VMCR_EL2_VENG0 = _VMCR["VENG0"].mask
ICH_VMCR_EL2_VENG1 = _VMCR["VENG1"].mask
ICH_VMCR_EL2_VFIQEN = _VMCR["VFIQEn"].mask
ICH_VMCR_EL2_VCBPR = _VMCR["VCBPR"].mask
ICH_VMCR_EL2_VEOIM = _VMCR["VEOIM"].mask
_VBPR0 = _VMCR["VBPR0"]
_VBPR1 = _VMCR["VBPR1"]
_VPMR = _VMCR["VPMR"]
_VMCR_WRITABLE = (
    ICH_VMCR_EL2_VENG0
    | ICH_VMCR_EL2_VENG1
    | ICH_VMCR_EL2_VCBPR
    | ICH_VMCR_EL2_VEOIM
    | _VBPR1.mask
    | _VBPR0.mask
    | _VPMR.mask
)

_MISR = {f.name: f.mask for f in ICH_MISR_EL2}
_LR_RE = re.compile(r"ICH_LR(\d+)_EL2")
_M64 = (1 << 64) - 1


def lr_state(lr: int) -> int:
    return (lr >> ICH_LR_EL2_STATE_SHIFT) & 3


def lr_vintid(lr: int) -> int:
    return _VINTID.get(lr)


def lr_priority(lr: int) -> int:
    return _PRIORITY.get(lr)


def _ctz32(x: int) -> int:
    x &= 0xFFFFFFFF
    return (x & -x).bit_length() - 1 if x else 32


@dataclass(frozen=True, slots=True)
class PhysicalDeactivate:
    """Deactivating an HW = 1 LR also deactivates physical ``pintid`` (icv_deactivate_irq)."""

    pintid: int


@dataclass(frozen=True, slots=True)
class VgicState:
    """The raw state a hypervisor saves and restores (GicContext's fields)."""

    lrs: tuple[int, ...]
    hcr: int
    vmcr: int
    ap1r: tuple[int, ...]


class ListRegisters:
    """ICH_* state of one vCPU's virtual CPU interface with ``num_lrs`` list registers."""

    def __init__(self, num_lrs: int = 4, *, vpribits: int = 5, vprebits: int = 5) -> None:
        if not 1 <= num_lrs <= 16:
            raise ValueError(f"num_lrs {num_lrs}: must be 1..16")
        if not 5 <= vprebits <= 7 or not vprebits <= vpribits <= 8:
            raise ValueError(f"vpribits {vpribits} / vprebits {vprebits}: need 5 <= PRE <= PRI")
        self.num_lrs = num_lrs
        self.vpribits = vpribits
        self.vprebits = vprebits
        self.reset()

    def reset(self) -> None:
        """icc_reset(), ICH part."""
        self.lrs = [0] * self.num_lrs
        self.hcr = 0
        self.vmcr = (
            ICH_VMCR_EL2_VFIQEN | _VBPR1.put(0, self.min_vbpr + 1) | _VBPR0.put(0, self.min_vbpr)
        )
        self.ap0r = [0] * self.num_aprs
        self.ap1r = [0] * self.num_aprs

    # --- constants ------------------------------------------------------------------------

    @property
    def min_vbpr(self) -> int:
        return 7 - self.vprebits

    @property
    def num_aprs(self) -> int:
        """ich_num_aprs(): 1, 2 or 4 active-priority registers per group."""
        return 1 << (self.vprebits - 5)

    @property
    def vtr(self) -> int:
        """ich_vtr_read(): ListRegs, TDS, nV4 (GICv3), A3V, IDbits = 1, PREbits, PRIbits."""
        return ICH_VTR_EL2.encode(
            ListRegs=self.num_lrs - 1,
            TDS=1,
            nV4=1,
            A3V=1,
            IDbits=1,
            PREbits=self.vprebits - 1,
            PRIbits=self.vpribits - 1,
        )

    # --- computed status registers --------------------------------------------------------

    def _eisr_and_misr(self) -> tuple[int, int]:
        """eoi_maintenance_interrupt_state(): EISR bits and MISR.EOI/U/NP."""
        eisr = 0
        valid = 0
        seen_pending = False
        for i, lr in enumerate(self.lrs):
            if lr & (ICH_LR_EL2_STATE_MASK | ICH_LR_EL2_HW | ICH_LR_EL2_EOI) == ICH_LR_EL2_EOI:
                eisr |= 1 << i
            if lr & ICH_LR_EL2_STATE_MASK:
                valid += 1
            if lr_state(lr) == 1:
                seen_pending = True
        misr = 0
        if valid < 2 and self.hcr & ICH_HCR_EL2_UIE:
            misr |= _MISR["U"]
        if not seen_pending and self.hcr & ICH_HCR_EL2_NPIE:
            misr |= _MISR["NP"]
        if eisr:
            misr |= _MISR["EOI"]
        return eisr, misr

    @property
    def eisr(self) -> int:
        return self._eisr_and_misr()[0]

    @property
    def elrsr(self) -> int:
        """ich_elrsr_read(): LR empty (State 0) and (HW or no EOI request)."""
        out = 0
        for i, lr in enumerate(self.lrs):
            if not lr & ICH_LR_EL2_STATE_MASK and (lr & ICH_LR_EL2_HW or not lr & ICH_LR_EL2_EOI):
                out |= 1 << i
        return out

    @property
    def misr(self) -> int:
        """maintenance_interrupt_state()."""
        _eisr, misr = self._eisr_and_misr()
        if self.hcr & ICH_HCR_EL2_LRENPIE and ICH_HCR_EL2_EOICOUNT.get(self.hcr):
            misr |= _MISR["LRENP"]
        veng0 = bool(self.vmcr & ICH_VMCR_EL2_VENG0)
        veng1 = bool(self.vmcr & ICH_VMCR_EL2_VENG1)
        for name, ie, cond in (
            ("VGrp0E", "VGrp0EIE", veng0),
            ("VGrp0D", "VGrp0DIE", not veng0),
            ("VGrp1E", "VGrp1EIE", veng1),
            ("VGrp1D", "VGrp1DIE", not veng1),
        ):
            if self.hcr & _HCR[ie] and cond:
                misr |= _MISR[name]
        return misr

    @property
    def maintenance_level(self) -> bool:
        """gicv3_cpuif_virt_update(): En and any MISR bit."""
        return bool(self.hcr & ICH_HCR_EL2_EN) and self.misr != 0

    # --- virtual priority machinery -------------------------------------------------------

    def _vbpr(self, group1: bool) -> int:
        return (_VBPR1 if group1 else _VBPR0).get(self.vmcr)

    def _write_vbpr(self, group1: bool, value: int) -> None:
        minval = self.min_vbpr + (1 if group1 else 0)
        value = (value if value >= minval else minval) & 7
        field = _VBPR1 if group1 else _VBPR0
        self.vmcr = (self.vmcr & ~field.mask) | field.put(0, value)

    def _gprio_mask(self, group1: bool) -> int:
        """icv_gprio_mask() (VGroupBits)."""
        if group1 and self.vmcr & ICH_VMCR_EL2_VCBPR:
            group1 = False
        bpr = self._vbpr(group1)
        if group1:
            bpr -= 1
        return (~0 << (bpr + 1)) & 0xFFFFFFFF

    def running_priority(self) -> int:
        """ich_highest_active_virt_prio()."""
        for i in range(self.num_aprs):
            apr = self.ap0r[i] | self.ap1r[i]
            if apr:
                return (i * 32 + _ctz32(apr)) << (self.min_vbpr + 1)
        return 0xFF

    def hppvi_index(self) -> int:
        """hppvi_index(): the pending LR of highest priority (lowest index on a tie), or -1."""
        if not self.vmcr & (ICH_VMCR_EL2_VENG0 | ICH_VMCR_EL2_VENG1):
            return -1
        idx, prio = -1, 0xFF
        for i, lr in enumerate(self.lrs):
            if lr_state(lr) != 1:
                continue
            enable = ICH_VMCR_EL2_VENG1 if lr & ICH_LR_EL2_GROUP else ICH_VMCR_EL2_VENG0
            if not self.vmcr & enable:
                continue
            p = lr_priority(lr)
            if p < prio:
                idx, prio = i, p
        return idx

    def _can_preempt(self, lr: int) -> bool:
        """icv_hppi_can_preempt()."""
        if not self.hcr & ICH_HCR_EL2_EN:
            return False
        prio = lr_priority(lr)
        if prio >= _VPMR.get(self.vmcr):
            return False
        rprio = self.running_priority()
        if rprio == 0xFF:
            return True
        mask = self._gprio_mask(bool(lr & ICH_LR_EL2_GROUP))
        return (prio & mask) < (rprio & mask)

    def _signalled(self) -> int | None:
        idx = self.hppvi_index()
        if idx >= 0 and self._can_preempt(self.lrs[idx]):
            return idx
        return None

    @property
    def virq_level(self) -> bool:
        """gicv3_cpuif_virt_irq_fiq_update(): a Group 1 LR can preempt -> vIRQ."""
        idx = self._signalled()
        return idx is not None and bool(self.lrs[idx] & ICH_LR_EL2_GROUP)

    @property
    def vfiq_level(self) -> bool:
        idx = self._signalled()
        return idx is not None and not self.lrs[idx] & ICH_LR_EL2_GROUP

    # --- EL2 register access --------------------------------------------------------------

    def _lr_index(self, reg: str) -> int | None:
        m = _LR_RE.fullmatch(reg)
        if not m:
            return None
        n = int(m.group(1))
        if n >= self.num_lrs:
            raise SysregError(f"{reg}: only {self.num_lrs} list registers are implemented")
        return n

    def read(self, reg: str) -> int:
        """Read an ICH_*_EL2 register."""
        n = self._lr_index(reg)
        if n is not None:
            return self.lrs[n]
        values = {
            "ICH_HCR_EL2": lambda: self.hcr,
            "ICH_VTR_EL2": lambda: self.vtr,
            "ICH_VMCR_EL2": lambda: self.vmcr,
            "ICH_MISR_EL2": lambda: self.misr,
            "ICH_EISR_EL2": lambda: self.eisr,
            "ICH_ELRSR_EL2": lambda: self.elrsr,
            "ICH_AP0R0_EL2": lambda: self.ap0r[0],
            "ICH_AP1R0_EL2": lambda: self.ap1r[0],
        }
        if reg in values:
            return values[reg]()
        raise SysregError(f"{reg}: not a readable ICH register")

    def write(self, reg: str, value: int) -> None:
        """Write an ICH_*_EL2 register with QEMU's masking (read-only ones refuse)."""
        value &= _M64
        n = self._lr_index(reg)
        if n is not None:
            self.lrs[n] = self._sanitise_lr(value)
        elif reg == "ICH_HCR_EL2":
            self.hcr = value & _HCR_WRITABLE
        elif reg == "ICH_VMCR_EL2":
            self.vmcr = (value & _VMCR_WRITABLE) | ICH_VMCR_EL2_VFIQEN
            self._write_vbpr(False, self._vbpr(False))
            self._write_vbpr(True, self._vbpr(True))
        elif reg == "ICH_AP0R0_EL2":
            self.ap0r[0] = value & 0xFFFFFFFF
        elif reg == "ICH_AP1R0_EL2":
            self.ap1r[0] = value & 0xFFFFFFFF
        else:
            raise SysregError(f"{reg}: not a writable ICH register")

    def _sanitise_lr(self, value: int) -> int:
        """ich_lr_write(): unimplemented priority bits and NMI (no FEAT_GICv3_NMI) are RES0."""
        if self.vpribits < 8:
            value &= ~(((1 << (8 - self.vpribits)) - 1) << _PRIORITY.lo)
        return value & ~ICH_LR_EL2_NMI

    def save(self) -> VgicState:
        """The raw values a hypervisor saves on exit (GicContext lrs, hcr, vmcr, ap1r)."""
        return VgicState(tuple(self.lrs), self.hcr, self.vmcr, tuple(self.ap1r))

    def restore(
        self, lrs: tuple[int, ...], hcr: int, vmcr: int, ap1r: tuple[int, ...] = ()
    ) -> None:
        """Write the registers back (as a hypervisor does on entry); missing LRs read 0."""
        if len(lrs) > self.num_lrs:
            raise SysregError(f"{len(lrs)} list registers given, {self.num_lrs} implemented")
        if len(ap1r) > self.num_aprs:
            raise SysregError(f"{len(ap1r)} ICH_AP1R values given, {self.num_aprs} implemented")
        for i in range(self.num_lrs):
            self.lrs[i] = self._sanitise_lr((lrs[i] if i < len(lrs) else 0) & _M64)
        self.write("ICH_HCR_EL2", hcr)
        self.write("ICH_VMCR_EL2", vmcr)
        for i in range(self.num_aprs):
            self.ap1r[i] = (ap1r[i] if i < len(ap1r) else 0) & 0xFFFFFFFF

    # --- the guest's ICC_* accesses (ICV_* with HCR_EL2.IMO) ------------------------------

    def icv_read(self, reg: str) -> int:
        """A guest read of ICC ``reg`` served by the virtual interface (may acknowledge)."""
        if reg == "ICC_IAR1_EL1":
            return self._iar1()
        if reg == "ICC_HPPIR1_EL1":
            idx = self.hppvi_index()
            if idx >= 0 and self.lrs[idx] & ICH_LR_EL2_GROUP:
                return lr_vintid(self.lrs[idx])
            return INTID_SPURIOUS
        if reg == "ICC_RPR_EL1":
            return self.running_priority()
        if reg == "ICC_PMR_EL1":
            return _VPMR.get(self.vmcr)
        if reg == "ICC_BPR1_EL1":
            if self.vmcr & ICH_VMCR_EL2_VCBPR:
                return min(self._vbpr(False) + 1, 7)
            return self._vbpr(True)
        if reg == "ICC_BPR0_EL1":
            return self._vbpr(False)
        if reg == "ICC_IGRPEN1_EL1":
            return int(bool(self.vmcr & ICH_VMCR_EL2_VENG1))
        if reg == "ICC_IGRPEN0_EL1":
            return int(bool(self.vmcr & ICH_VMCR_EL2_VENG0))
        if reg == "ICC_CTLR_EL1":
            value = (1 << 15) | (1 << 11) | ((self.vpribits - 1) << 8)  # A3V, IDbits, PRIbits
            if self.vmcr & ICH_VMCR_EL2_VEOIM:
                value |= 1 << 1
            if self.vmcr & ICH_VMCR_EL2_VCBPR:
                value |= 1 << 0
            return value
        if reg == "ICC_AP1R0_EL1":
            return self.ap1r[0]
        if reg == "ICC_SRE_EL1":
            return ICC_SRE_EL1_VALUE
        raise SysregError(f"{reg}: not served by the virtual CPU interface")

    def icv_write(self, reg: str, value: int) -> tuple[PhysicalDeactivate, ...]:
        """A guest write of ICC ``reg`` to the virtual interface; returns physical effects."""
        value &= _M64
        if reg == "ICC_EOIR1_EL1":
            return self._eoir1(value & 0xFFFFFF)
        if reg == "ICC_DIR_EL1":
            return self._dir(value & 0xFFFFFF)
        if reg == "ICC_PMR_EL1":
            fullprio = (0xFF << (8 - self.vpribits)) & 0xFF
            self.vmcr = (self.vmcr & ~_VPMR.mask) | _VPMR.put(0, value & fullprio)
        elif reg == "ICC_BPR1_EL1":
            if not self.vmcr & ICH_VMCR_EL2_VCBPR:
                self._write_vbpr(True, value)
        elif reg == "ICC_BPR0_EL1":
            self._write_vbpr(False, value)
        elif reg in ("ICC_IGRPEN1_EL1", "ICC_IGRPEN0_EL1"):
            bit = ICH_VMCR_EL2_VENG1 if reg == "ICC_IGRPEN1_EL1" else ICH_VMCR_EL2_VENG0
            self.vmcr = (self.vmcr & ~bit) | (bit if value & 1 else 0)
        elif reg == "ICC_CTLR_EL1":
            self.vmcr &= ~(ICH_VMCR_EL2_VCBPR | ICH_VMCR_EL2_VEOIM)
            if value & 1:
                self.vmcr |= ICH_VMCR_EL2_VCBPR
            if value & 2:
                self.vmcr |= ICH_VMCR_EL2_VEOIM
        elif reg == "ICC_AP1R0_EL1":
            self.ap1r[0] = value & 0xFFFFFFFF
        elif reg == "ICC_SRE_EL1":
            pass
        elif reg in ("ICC_SGI1R_EL1", "ICC_SGI0R_EL1", "ICC_ASGI1R_EL1"):
            raise SysregError(f"{reg}: traps to EL2 (gicv3_sgi_access), not an ICV register")
        else:
            raise SysregError(f"{reg}: not served by the virtual CPU interface")
        return ()

    def _iar1(self) -> int:
        """icv_iar_read() for Group 1."""
        idx = self.hppvi_index()
        if idx < 0:
            return INTID_SPURIOUS
        lr = self.lrs[idx]
        if not lr & ICH_LR_EL2_GROUP or not self._can_preempt(lr):
            return INTID_SPURIOUS
        intid = lr_vintid(lr)
        if is_special(intid):
            self.lrs[idx] = lr & ~ICH_LR_EL2_STATE_PENDING_BIT  # pending -> invalid
            return intid  # the bogus ID, as the pseudocode does
        # icv_activate_irq(): pending -> active (also for a vLPI), set the APR bit
        prio = lr_priority(lr) & self._gprio_mask(True)
        aprbit = prio >> (8 - self.vprebits)
        self.lrs[idx] = (lr & ~ICH_LR_EL2_STATE_PENDING_BIT) | ICH_LR_EL2_STATE_ACTIVE_BIT
        self.ap1r[aprbit // 32] |= 1 << (aprbit % 32)
        return intid

    def _drop_prio(self) -> int:
        """icv_drop_prio(): clear the lowest active-priority bit (Group 0 first on a tie)."""
        for i in range(self.num_aprs):
            a0, a1 = self.ap0r[i], self.ap1r[i]
            if not (a0 or a1):
                continue
            c0, c1 = _ctz32(a0), _ctz32(a1)
            if c0 <= c1:
                self.ap0r[i] = a0 & (a0 - 1)
                return (c0 + i * 32) << (self.min_vbpr + 1)
            self.ap1r[i] = a1 & (a1 - 1)
            return (c1 + i * 32) << (self.min_vbpr + 1)
        return 0xFF

    def _find_active(self, irq: int) -> int:
        """icv_find_active() (FindActiveVirtualInterrupt)."""
        for i, lr in enumerate(self.lrs):
            if lr & ICH_LR_EL2_STATE_ACTIVE_BIT and lr_vintid(lr) == irq:
                return i
        return -1

    def _increment_eoicount(self) -> None:
        count = (ICH_HCR_EL2_EOICOUNT.get(self.hcr) + 1) & 0x1F
        self.hcr = (self.hcr & ~ICH_HCR_EL2_EOICOUNT.mask) | ICH_HCR_EL2_EOICOUNT.put(0, count)

    def _deactivate(self, idx: int) -> tuple[PhysicalDeactivate, ...]:
        """icv_deactivate_irq(): clear Active; an HW = 1 LR deactivates its pINTID too."""
        lr = self.lrs[idx]
        effects: tuple[PhysicalDeactivate, ...] = ()
        if lr & ICH_LR_EL2_HW:
            pirq = _PINTID.get(lr)
            if not is_special(pirq) and pirq < LPI_INTID_BASE:
                effects = (PhysicalDeactivate(pirq),)
        self.lrs[idx] = lr & ~ICH_LR_EL2_STATE_ACTIVE_BIT
        return effects

    def _eoir1(self, irq: int) -> tuple[PhysicalDeactivate, ...]:
        """icv_eoir_write() for Group 1 (with the LPI handling of QEMU 82a65e3188ab)."""
        if is_special(irq):
            return ()
        dropprio = self._drop_prio()
        if dropprio == 0xFF:
            return ()  # nothing active: the LRs are not checked (CONSTRAINED UNPREDICTABLE)
        idx = self._find_active(irq)
        if idx < 0:
            if irq < LPI_INTID_BASE:
                self._increment_eoicount()
            return ()
        lr = self.lrs[idx]
        same = lr & ICH_LR_EL2_GROUP and lr_priority(lr) & self._gprio_mask(True) == dropprio
        # LPIs are deactivated at once: no separate deactivate is expected for them.
        if same and (not self.vmcr & ICH_VMCR_EL2_VEOIM or irq >= LPI_INTID_BASE):
            return self._deactivate(idx)
        return ()

    def _dir(self, irq: int) -> tuple[PhysicalDeactivate, ...]:
        """icv_dir_write(): only with VEOIM = 1; LPIs and specials (>= 1020) are ignored."""
        if irq >= 1020 or not self.vmcr & ICH_VMCR_EL2_VEOIM:
            return ()
        idx = self._find_active(irq)
        if idx < 0:
            self._increment_eoicount()
            return ()
        return self._deactivate(idx)


__all__ = [
    "ListRegisters",
    "PhysicalDeactivate",
    "VgicState",
    "lr_priority",
    "lr_state",
    "lr_vintid",
]
