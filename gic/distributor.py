"""The physical GICv3 Distributor of the QEMU virt machine (QEMU 7.2 hw/intc/arm_gicv3_dist.c).

Models one Security state (GICD_CTLR.DS = 1, as QEMU virt without EL3: ``has-security-
extensions`` off), affinity routing always on, no message-based SPIs. Everything QEMU leaves
IMPLEMENTATION DEFINED follows QEMU 7.2: GICD_TYPER composition, RAZ/WI of reserved offsets
(logged as a guest error, never a data abort), ID registers, IROUTER ignoring the IRM bit.

Also holds the small types the redistributor and the aggregate share with it (QEMU keeps them
in gicv3_internal.h): :class:`GuestError`, :class:`Hppi` and the bitmap/ID-register helpers.
"""

from __future__ import annotations

from dataclasses import dataclass

from gic.fastinit import fast_init
from gic.registers import (
    GICD_CTLR,
    GICD_ICACTIVER,
    GICD_ICENABLER,
    GICD_ICFGR,
    GICD_ICPENDR,
    GICD_IGROUPR,
    GICD_IGRPMODR,
    GICD_IIDR,
    GICD_IPRIORITYR,
    GICD_IROUTER,
    GICD_ISACTIVER,
    GICD_ISENABLER,
    GICD_ISPENDR,
    GICD_NSACR,
    GICD_STATUSR,
    GICD_TYPER,
)

GIC_INTERNAL = 32  # SGIs + PPIs, banked per redistributor
GICV3_MAXIRQ = 1020  # QEMU: num-irq must not exceed this

# GICD_CTLR bits as QEMU names them (gicv3_internal.h); with DS = 1 bit 1 is EnableGrp1 and
# bit 4 (QEMU's ARE_S) is ARE.
GICD_CTLR_EN_GRP0 = 1 << 0
GICD_CTLR_EN_GRP1NS = 1 << 1
GICD_CTLR_EN_GRP1S = 1 << 2
GICD_CTLR_ARE_S = 1 << 4
GICD_CTLR_DS = 1 << 6

GICV3_IIDR = 0x43B  # gicv3_iidr(): Arm, r0p0, ProductID 0 ("the same as an r0p0 GIC-500")
GICD_IDREGS = 0xFFD0  # PIDR4 .. CIDR3
GICV3_PIDR0_DIST = 0x92
GICV3_PIDR0_REDIST = 0x93
_GICD_IDS = (0x44, 0x00, 0x00, 0x00, 0x92, 0xB4, 0x0B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)

# Register block spans in the Distributor frame (QEMU's "case X ... X + n").
_GICD_SGIR = 0x0F00
_GICD_CPENDSGIR = 0x0F10
_GICD_SPENDSGIR = 0x0F20
_GICD_ITARGETSR = 0x0800
_GICD_IROUTER_SPAN = 0x1FDF  # GICD_IROUTER ... GICD_IROUTER + 0x1fdf


@dataclass(frozen=True, slots=True)
class GuestError:
    """A bad guest access that the hardware answered RAZ/WI (QEMU's LOG_GUEST_ERROR)."""

    device: str
    offset: int
    size: int
    write: bool
    reason: str

    def __str__(self) -> str:
        op = "write" if self.write else "read"
        return f"{self.device}: invalid guest {op} at offset {self.offset:#x} size {self.size}: {self.reason}"


@fast_init
@dataclass(frozen=True, slots=True)
class Hppi:
    """A highest-priority pending interrupt candidate (QEMU PendingIrq): INTID, priority, group."""

    intid: int
    priority: int
    group1: bool = True


def better(cand: Hppi | None, best: Hppi | None) -> bool:
    """QEMU irqbetter(): lower priority value wins; on a tie the lower INTID (IMPDEF choice)."""
    if cand is None:
        return False
    if best is None:
        return True
    return cand.priority < best.priority or (
        cand.priority == best.priority and cand.intid <= best.intid
    )


def best_of(*cands: Hppi | None) -> Hppi | None:
    best: Hppi | None = None
    for c in cands:
        if better(c, best):
            best = c
    return best


def half_shuffle32(x: int) -> int:
    """Spread the low 16 bits of ``x`` into the even bits (QEMU half_shuffle32)."""
    out = 0
    for i in range(16):
        if x >> i & 1:
            out |= 1 << (2 * i)
    return out


def half_unshuffle32(x: int) -> int:
    """Gather the even bits of ``x`` into the low 16 bits (QEMU half_unshuffle32)."""
    out = 0
    for i in range(16):
        if x >> (2 * i) & 1:
            out |= 1 << i
    return out


def gicv3_idreg(regoffset: int, pidr0: int, revision: int = 3) -> int:
    """CoreSight ID register at ``regoffset`` from PIDR4 (QEMU gicv3_idreg): PIDR2 = 0x3B."""
    idx = regoffset // 4
    if idx == 4:
        return pidr0
    value = _GICD_IDS[idx]
    if idx == 6:
        value |= revision << 4
    return value


def _in(offset: int, base: int, span: int) -> bool:
    return base <= offset <= base + span


class Distributor:
    """GICD of QEMU virt: ``num_spis`` SPIs (224 = ITLinesNumber 7, 256 INTIDs, as the real
    boot logs show "224 SPIs implemented"), LPIs advertised when an ITS is present.

    Synchronous (no RAM). State is bitmaps over INTIDs 0..num_irq-1 like QEMU's GICv3State;
    bits 0..31 are unused here (banked in the redistributors).
    """

    def __init__(self, num_spis: int = 224, *, lpis: bool = True, id_bits: int = 16) -> None:
        num_irq = num_spis + GIC_INTERNAL
        if num_spis < 0 or num_spis % 32 or num_irq > GICV3_MAXIRQ:
            raise ValueError(
                f"num_spis {num_spis}: must be a multiple of 32 with 32 + num_spis <= {GICV3_MAXIRQ}"
            )
        if not 14 <= id_bits <= 24:
            raise ValueError(f"id_bits {id_bits}: must be 14..24")
        self.num_irq = num_irq
        self.lpis = lpis
        self.id_bits = id_bits
        self.errors: list[GuestError] = []
        self.reset()

    def reset(self) -> None:
        """arm_gicv3_common_reset(): DS and ARE set (no security extension), all else 0."""
        self.ctlr = GICD_CTLR_ARE_S | GICD_CTLR_DS
        self.group = 0
        self.enabled = 0
        self.pending = 0
        self.active = 0
        self.level = 0
        self.edge_trigger = 0
        self.priority = [0] * self.num_irq
        self.irouter = [0] * self.num_irq

    # --- identification -----------------------------------------------------------------

    @property
    def typer(self) -> int:
        """GICD_TYPER as QEMU gicd_readl composes it: No1N, A3V, IDbits, LPIS, ITLinesNumber."""
        return GICD_TYPER.encode(
            ITLinesNumber=self.num_irq // 32 - 1,
            LPIS=int(self.lpis),
            IDbits=self.id_bits - 1,
            A3V=1,
            No1N=1,
        )

    # --- interrupt inputs and state -----------------------------------------------------

    def _bit(self, bmp: int, irq: int) -> int:
        return (bmp >> irq) & 1

    def set_spi(self, intid: int, level: bool) -> None:
        """gicv3_dist_set_irq(): a change of an SPI input line; 0->1 latches edge-triggered."""
        if not GIC_INTERNAL <= intid < self.num_irq:
            self.errors.append(
                GuestError("GICD", intid, 0, True, f"SPI {intid} outside 32..{self.num_irq - 1}")
            )
            return
        if bool(self._bit(self.level, intid)) == bool(level):
            return
        if level:
            self.level |= 1 << intid
            if self._bit(self.edge_trigger, intid):
                self.pending |= 1 << intid
        else:
            self.level &= ~(1 << intid)

    def route_affinity(self, irq: int) -> int:
        """Packed Aff3.Aff2.Aff1.Aff0 an SPI targets (gicv3_cache_target_cpustate; IRM ignored)."""
        r = self.irouter[irq]
        return (r & 0xFFFFFF) | ((r >> 32) & 0xFF) << 24

    def _int_pending(self) -> int:
        """gicd_int_pending(): pending (latch or level), enabled, not active, group enabled."""
        pend = (self.pending | (~self.edge_trigger & self.level)) & self.enabled & ~self.active
        if not pend:
            return 0
        grpmask = 0
        if self.ctlr & GICD_CTLR_EN_GRP1NS:
            grpmask |= self.group
        if self.ctlr & GICD_CTLR_EN_GRP0:
            grpmask |= ~self.group  # DS = 1: IGRPMODR is RAZ, so ~group is Group 0
        mask = ((1 << self.num_irq) - 1) & ~((1 << GIC_INTERNAL) - 1)
        return pend & grpmask & mask

    def hppi_for(self, affinity: int) -> Hppi | None:
        """Best SPI routed to the PE with this packed affinity (gicv3_update_noirqset)."""
        pend = self._int_pending()
        best: Hppi | None = None
        while pend:
            irq = (pend & -pend).bit_length() - 1
            pend &= pend - 1
            if self.route_affinity(irq) != affinity:
                continue
            cand = Hppi(irq, self.priority[irq], bool(self._bit(self.group, irq)))
            if better(cand, best):
                best = cand
        return best

    def activate(self, irq: int) -> None:
        """icc_activate_irq() for an SPI: gicv3_gicd_active_set + gicv3_gicd_pending_clear."""
        if GIC_INTERNAL <= irq < self.num_irq:
            self.active |= 1 << irq
            self.pending &= ~(1 << irq)

    def deactivate(self, irq: int) -> None:
        """icc_deactivate_irq() for an SPI: gicv3_gicd_active_clear."""
        if GIC_INTERNAL <= irq < self.num_irq:
            self.active &= ~(1 << irq)

    # --- MMIO ------------------------------------------------------------------------------

    def _bad(self, offset: int, size: int, write: bool, reason: str) -> None:
        self.errors.append(GuestError("GICD", offset, size, write, reason))

    def mmio_read(self, offset: int, size: int) -> int:
        """gicv3_dist_read(): bad or reserved accesses read as zero and are logged."""
        if size not in (1, 2, 4, 8) or offset < 0 or offset % size:
            self._bad(offset, size, False, "bad size or alignment")
            return 0
        value: int | None
        if size == 1:
            value = self._readb(offset)
        elif size == 4:
            value = self._readl(offset)
        elif size == 8:
            value = self._readq(offset)
        else:
            value = None  # gicd_readw: MBIS = 0, so no 16-bit registers
        if value is None:
            self._bad(offset, size, False, "reserved or unimplemented register (RAZ)")
            return 0
        return value & ((1 << (8 * size)) - 1)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        """gicv3_dist_write(): bad or reserved accesses are ignored and logged."""
        if size not in (1, 2, 4, 8) or offset < 0 or offset % size:
            self._bad(offset, size, True, "bad size or alignment")
            return
        value &= (1 << (8 * size)) - 1
        if size == 1:
            ok = self._writeb(offset, value)
        elif size == 4:
            ok = self._writel(offset, value)
        elif size == 8:
            ok = self._writeq(offset, value)
        else:
            ok = False
        if not ok:
            self._bad(offset, size, True, "reserved or read-only register (WI)")

    def _valid_word(self, irq: int) -> bool:
        return GIC_INTERNAL <= irq < self.num_irq

    def _word(self, bmp: int, irq: int) -> int:
        return (bmp >> irq) & 0xFFFFFFFF

    def _readb(self, off: int) -> int | None:
        if _in(off, _GICD_CPENDSGIR, 0xF) or _in(off, _GICD_SPENDSGIR, 0xF):
            return 0
        if _in(off, _GICD_ITARGETSR, 0x3FF):
            return 0  # affinity routing always on
        if _in(off, GICD_IPRIORITYR.offset, 0x3FF):
            irq = off - GICD_IPRIORITYR.offset
            return self.priority[irq] if self._valid_word(irq) else 0
        return None

    def _writeb(self, off: int, value: int) -> bool:
        if (
            _in(off, _GICD_CPENDSGIR, 0xF)
            or _in(off, _GICD_SPENDSGIR, 0xF)
            or _in(off, _GICD_ITARGETSR, 0x3FF)
        ):
            return True
        if _in(off, GICD_IPRIORITYR.offset, 0x3FF):
            irq = off - GICD_IPRIORITYR.offset
            if self._valid_word(irq):
                self.priority[irq] = value & 0xFF
            return True
        return False

    def _bitmap_read(self, bmp: int, off: int, base: int) -> int:
        irq = (off - base) * 8
        if not self._valid_word(irq):
            return 0
        return self._word(bmp, irq)

    def _readl(self, off: int) -> int | None:  # noqa: C901 - a register switch
        if off == GICD_CTLR.offset:
            return self.ctlr
        if off == GICD_TYPER.offset:
            return self.typer
        if off == GICD_IIDR.offset:
            return GICV3_IIDR
        if off == GICD_STATUSR.offset:
            return 0
        if _in(off, GICD_IGROUPR.offset, 0x7F):
            return self._bitmap_read(self.group, off, GICD_IGROUPR.offset)
        if _in(off, GICD_ISENABLER.offset, 0x7F):
            return self._bitmap_read(self.enabled, off, GICD_ISENABLER.offset)
        if _in(off, GICD_ICENABLER.offset, 0x7F):
            return self._bitmap_read(self.enabled, off, GICD_ICENABLER.offset)
        if _in(off, GICD_ISPENDR.offset, 0x7F) or _in(off, GICD_ICPENDR.offset, 0x7F):
            base = GICD_ISPENDR.offset if off < GICD_ICPENDR.offset else GICD_ICPENDR.offset
            irq = (off - base) * 8
            if not self._valid_word(irq):
                return 0
            return self._word(self.pending | (~self.edge_trigger & self.level), irq)
        if _in(off, GICD_ISACTIVER.offset, 0x7F):
            return self._bitmap_read(self.active, off, GICD_ISACTIVER.offset)
        if _in(off, GICD_ICACTIVER.offset, 0x7F):
            return self._bitmap_read(self.active, off, GICD_ICACTIVER.offset)
        if _in(off, GICD_IPRIORITYR.offset, 0x3FF):
            irq = off - GICD_IPRIORITYR.offset
            v = 0
            for i in range(irq + 3, irq - 1, -1):
                v = (v << 8) | (self.priority[i] if self._valid_word(i) else 0)
            return v
        if _in(off, _GICD_ITARGETSR, 0x3FF):
            return 0
        if _in(off, GICD_ICFGR.offset, 0xFF):
            irq = (off - GICD_ICFGR.offset) * 4
            if not self._valid_word(irq):
                return 0
            word = self._word(self.edge_trigger, irq & ~0x1F)
            half = (word >> (16 if irq & 0x1F else 0)) & 0xFFFF
            return half_shuffle32(half) << 1
        if _in(off, GICD_IGRPMODR.offset, 0xFF) or _in(off, GICD_NSACR.offset, 0xFF):
            return 0  # RAZ/WI with security disabled
        if _in(off, _GICD_CPENDSGIR, 0xF) or _in(off, _GICD_SPENDSGIR, 0xF):
            return 0
        if _in(off, GICD_IROUTER.offset, _GICD_IROUTER_SPAN):
            irq = (off - GICD_IROUTER.offset) // 8
            r = self.irouter[irq] if self._valid_word(irq) else 0
            return (r >> 32) if off & 7 else (r & 0xFFFFFFFF)
        if _in(off, GICD_IDREGS, 0x2F):
            return gicv3_idreg(off - GICD_IDREGS, GICV3_PIDR0_DIST)
        if off == _GICD_SGIR:
            self._bad(off, 4, False, "GICD_SGIR is write-only (reads 0)")
            return 0
        # QEMU 7.2 does not implement GICD_TYPER2 or GICD_{SET,CLR}SPI_*: RAZ and logged.
        return None

    def _set_word(self, name: str, irq: int, val: int, mode: str) -> None:
        bmp: int = getattr(self, name)
        word = 0xFFFFFFFF << irq
        if mode == "set":
            bmp |= val << irq
        elif mode == "clear":
            bmp &= ~(val << irq)
        else:
            bmp = (bmp & ~word) | (val << irq)
        setattr(self, name, bmp)

    def _writel(self, off: int, value: int) -> bool:  # noqa: C901 - a register switch
        if off == GICD_CTLR.offset:
            # DS = 1: E1NWF RAZ/WI, DS and ARE RAO/WI, only the two group enables are writable.
            mask = GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1NS
            self.ctlr = (self.ctlr & ~mask) | (value & mask)
            return True
        if off == GICD_STATUSR.offset:
            return True
        sets = (
            (GICD_IGROUPR, "group", "replace"),
            (GICD_ISENABLER, "enabled", "set"),
            (GICD_ICENABLER, "enabled", "clear"),
            (GICD_ISPENDR, "pending", "set"),
            (GICD_ICPENDR, "pending", "clear"),
            (GICD_ISACTIVER, "active", "set"),
            (GICD_ICACTIVER, "active", "clear"),
        )
        for layout, name, mode in sets:
            if _in(off, layout.offset, 0x7F):
                irq = (off - layout.offset) * 8
                if self._valid_word(irq):
                    self._set_word(name, irq, value, mode)
                return True
        if _in(off, GICD_IPRIORITYR.offset, 0x3FF):
            irq = off - GICD_IPRIORITYR.offset
            if irq < GIC_INTERNAL or irq + 3 >= self.num_irq:
                return True
            for i in range(4):
                self.priority[irq + i] = (value >> (8 * i)) & 0xFF
            return True
        if _in(off, _GICD_ITARGETSR, 0x3FF):
            return True
        if _in(off, GICD_ICFGR.offset, 0xFF):
            irq = (off - GICD_ICFGR.offset) * 4
            if not self._valid_word(irq):
                return True
            half = half_unshuffle32(value >> 1)
            base = irq & ~0x1F
            if irq & 0x1F:
                half, mask = half << 16, 0xFFFF0000
            else:
                mask = 0xFFFF
            old = self._word(self.edge_trigger, base)
            self._set_word("edge_trigger", base, (old & ~mask) | (half & mask), "replace")
            return True
        if _in(off, GICD_IGRPMODR.offset, 0xFF) or _in(off, GICD_NSACR.offset, 0xFF):
            return True
        if off == _GICD_SGIR or _in(off, _GICD_CPENDSGIR, 0xF) or _in(off, _GICD_SPENDSGIR, 0xF):
            return True
        if _in(off, GICD_IROUTER.offset, _GICD_IROUTER_SPAN):
            irq = (off - GICD_IROUTER.offset) // 8
            if self._valid_word(irq):
                shift = 32 if off & 7 else 0
                r = self.irouter[irq] & ~(0xFFFFFFFF << shift)
                self.irouter[irq] = r | (value << shift)
            return True
        if off in (GICD_TYPER.offset, GICD_IIDR.offset) or _in(off, GICD_IDREGS, 0x2F):
            self._bad(off, 4, True, "read-only register (write ignored)")
            return True
        # GICD_TYPER2, GICD_SETSPI_* / CLRSPI_*: not implemented by QEMU 7.2 (WI, logged).
        return False

    def _readq(self, off: int) -> int | None:
        if _in(off, GICD_IROUTER.offset, _GICD_IROUTER_SPAN):
            irq = (off - GICD_IROUTER.offset) // 8
            return self.irouter[irq] if self._valid_word(irq) else 0
        return None

    def _writeq(self, off: int, value: int) -> bool:
        if _in(off, GICD_IROUTER.offset, _GICD_IROUTER_SPAN):
            irq = (off - GICD_IROUTER.offset) // 8
            if self._valid_word(irq):
                self.irouter[irq] = value
            return True
        return False


__all__ = [
    "Distributor",
    "GuestError",
    "Hppi",
    "best_of",
    "better",
    "gicv3_idreg",
    "half_shuffle32",
    "half_unshuffle32",
]
