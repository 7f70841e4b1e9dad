"""One physical GICv3 Redistributor (RD_base + SGI_base frames) as QEMU 7.2 models it.

Follows hw/intc/arm_gicv3_redist.c of QEMU 7.2 (the GICv4-era file with update_for_one_lpi /
update_for_all_lpis, read from the qemu/qemu history). Where the architecture leaves LPI
handling IMPLEMENTATION DEFINED, QEMU 7.2 does this, and so does this model:

* Property bytes are **not cached**. The only cached LPI state is ``hpplpi`` (the highest
  priority pending enabled LPI): a property byte is read from RAM when an LPI becomes pending
  (update_for_one_lpi) and during a full rescan. A property change without INV/INVALL (or
  another rescan) is therefore not seen for an LPI that is already pending.
* Pending state is **not cached** either: every set/clear is a read-modify-write of the one
  byte of the RAM pending table (set_pending_table_bit: read, and write only if the bit
  changes). There is no write-back.
* The pending table is scanned (update_for_all_lpis) when GICR_CTLR is written with
  EnableLPIs = 1 (every such write, PTZ is ignored), on INV / INVALL (gicv3_redist_inv_lpi
  always rescans), when the LPI that was hpplpi stops being pending (acknowledge, CLEAR,
  MOVI source), and on MOVALL. QEMU loops over the table one byte at a time; here the scan is
  ONE MemRead of the whole range it covers (bytes 1024 .. 2^(IDbits+1)/8), then one 1-byte
  property read per set bit, in INTID order, as QEMU's inner loop does.
* GICR_CTLR.EnableLPIs can be cleared again (QEMU 7.2 is not RES1/write-once; CES reads 0).
* GICR_PROPBASER / GICR_PENDBASER writes are accepted at any time, also with EnableLPIs = 1,
  and stored raw (no RES0 masking, PTZ reads back as written).
* IDbits is clamped to GICD_TYPER.IDbits (QEMU: MIN(PROPBASER.IDbits, GICD_TYPER_IDBITS)).
* GICR_TYPER: CommonLPIAff = 1, DirectLPI = 0, so GICR_SETLPIR/CLRLPIR/INVLPIR/INVALLR/SYNCR
  are reserved (RAZ/WI, logged) unless the model is built with ``direct_lpi=True``.

Every RAM access is a generator request (``data = yield MemRead(...)``) named after the QEMU
function that makes it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from gic.distributor import (
    GICD_CTLR_EN_GRP0,
    GICD_CTLR_EN_GRP1NS,
    GICV3_IIDR,
    GICV3_PIDR0_REDIST,
    GuestError,
    Hppi,
    better,
    gicv3_idreg,
    half_shuffle32,
    half_unshuffle32,
)
from gic.lpi import LPI_PROP_ENABLED, LPI_PROP_PRIO_MASK
from gic.port import Core, MemRead, MemWrite
from gic.registers import (
    GIC_V3_REDIST_SIZE,
    GICR_CLRLPIR,
    GICR_CTLR,
    GICR_ICACTIVER0,
    GICR_ICENABLER0,
    GICR_ICFGR0,
    GICR_ICFGR1,
    GICR_ICPENDR0,
    GICR_IGROUPR0,
    GICR_IGRPMODR0,
    GICR_IIDR,
    GICR_INVALLR,
    GICR_INVLPIR,
    GICR_IPRIORITYR,
    GICR_ISACTIVER0,
    GICR_ISENABLER0,
    GICR_ISPENDR0,
    GICR_NSACR,
    GICR_PENDBASER,
    GICR_PROPBASER,
    GICR_SETLPIR,
    GICR_SGI_OFFSET,
    GICR_STATUSR,
    GICR_SYNCR,
    GICR_TYPER,
    GICR_WAKER,
    INTID_SPURIOUS,
    LPI_INTID_BASE,
)

GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_WAKER_ProcessorSleep = 1 << 1
GICR_WAKER_ChildrenAsleep = 1 << 2
GICR_IDREGS = 0xFFD0
_PROPBASER_PHYADDR = GICR_PROPBASER["Physical_Address"].mask  # R_GICR_PROPBASER_PHYADDR_MASK
_PENDBASER_PHYADDR = GICR_PENDBASER["Physical_Address"].mask  # R_GICR_PENDBASER_PHYADDR_MASK
_SGI = GICR_SGI_OFFSET


def _sgi(layout_offset: int | None) -> int:
    """RD_base-relative offset of an SGI_base frame register."""
    assert layout_offset is not None
    return _SGI + layout_offset


_O_IGROUPR0 = _sgi(GICR_IGROUPR0.offset)
_O_ISENABLER0 = _sgi(GICR_ISENABLER0.offset)
_O_ICENABLER0 = _sgi(GICR_ICENABLER0.offset)
_O_ISPENDR0 = _sgi(GICR_ISPENDR0.offset)
_O_ICPENDR0 = _sgi(GICR_ICPENDR0.offset)
_O_ISACTIVER0 = _sgi(GICR_ISACTIVER0.offset)
_O_ICACTIVER0 = _sgi(GICR_ICACTIVER0.offset)
_O_IPRIORITYR = _sgi(GICR_IPRIORITYR.offset)
_O_ICFGR0 = _sgi(GICR_ICFGR0.offset)
_O_ICFGR1 = _sgi(GICR_ICFGR1.offset)
_O_IGRPMODR0 = _sgi(GICR_IGRPMODR0.offset)
_O_NSACR = _sgi(GICR_NSACR.offset)


#: Bytes of the pending table _update_for_all_lpis turns into one integer at a time.
_SCAN_BLOCK = 1024


@functools.cache
def _zeros(n: int) -> bytes:
    """``n`` zero bytes (one object per length: a table's, a block's)."""
    return bytes(n)


def _byte(data: bytes, i: int) -> int:
    """Byte ``i`` of a RAM answer; a short answer reads as zero past its end."""
    return data[i] if 0 <= i < len(data) else 0


def _deposit(reg: int, lo: int, value: int) -> int:
    """deposit64(reg, lo, 32, value)."""
    return (reg & ~(0xFFFFFFFF << lo)) | ((value & 0xFFFFFFFF) << lo)


class Redistributor:
    """GICR of one PE: ``processor`` is GICR_TYPER.Processor_Number (the CPU index on QEMU
    virt), ``affinity`` the packed Aff3.Aff2.Aff1.Aff0 of GICR_TYPER.Affinity_Value, ``last``
    the Last bit. ``lpi_id_bits`` is GICD_TYPER.IDbits + 1 (QEMU: 16)."""

    def __init__(
        self,
        processor: int,
        affinity: int,
        last: bool,
        *,
        lpi_id_bits: int = 16,
        plpis: bool = True,
        direct_lpi: bool = False,
    ) -> None:
        if not 0 <= processor <= 0xFFFF:
            raise ValueError(f"processor {processor}: Processor_Number is 16 bits")
        if not 0 <= affinity <= 0xFFFFFFFF:
            raise ValueError(f"affinity {affinity:#x}: Affinity_Value is 32 bits")
        if not 14 <= lpi_id_bits <= 24:
            raise ValueError(f"lpi_id_bits {lpi_id_bits}: must be 14..24")
        self.processor = processor
        self.affinity = affinity
        self.last = last
        self.lpi_id_bits = lpi_id_bits
        self.plpis = plpis
        self.direct_lpi = direct_lpi
        self.ds = True  # GICD_CTLR.DS = 1 on QEMU virt: LPI priority byte used unshifted
        self.errors: list[GuestError] = []
        self.reset()

    def reset(self) -> None:
        """arm_gicv3_common_reset() for one CPU."""
        self.ctlr = 0
        self.waker = GICR_WAKER_ProcessorSleep | GICR_WAKER_ChildrenAsleep
        self.propbaser = 0
        self.pendbaser = 0
        self.igroupr0 = 0
        self.ienabler0 = 0
        self.ipendr0 = 0
        self.iactiver0 = 0
        self.edge_trigger = 0xFFFF  # SGIs are always edge-triggered
        self.level = 0
        self.ipriorityr = [0] * 32
        self.hpplpi_irq = INTID_SPURIOUS
        self.hpplpi_prio = 0xFF

    # --- identification -----------------------------------------------------------------

    @property
    def typer(self) -> int:
        """GICR_TYPER as arm_gicv3_common_realize composes it (CommonLPIAff = 1)."""
        return GICR_TYPER.encode(
            PLPIS=int(self.plpis),
            DirectLPI=int(self.direct_lpi),
            Last=int(self.last),
            Processor_Number=self.processor,
            CommonLPIAff=1,
            Affinity_Value=self.affinity,
        )

    @property
    def lpis_enabled(self) -> bool:
        return bool(self.ctlr & GICR_CTLR_ENABLE_LPIS)

    def _idbits(self) -> int:
        """MIN(GICR_PROPBASER.IDbits, GICD_TYPER_IDBITS) (QEMU)."""
        return min(GICR_PROPBASER.get(self.propbaser, "IDbits"), self.lpi_id_bits - 1)

    @property
    def prop_base(self) -> int:
        return self.propbaser & _PROPBASER_PHYADDR

    @property
    def pend_base(self) -> int:
        return self.pendbaser & _PENDBASER_PHYADDR

    # --- SGIs and PPIs ----------------------------------------------------------------------

    def set_ppi(self, intid: int, level: bool) -> None:
        """gicv3_redist_set_irq(): a PPI input line (e.g. the timer, INTID 27) changes."""
        if not 16 <= intid < 32:
            self.errors.append(GuestError("GICR", intid, 0, True, f"INTID {intid} is not a PPI"))
            return
        bit = 1 << intid
        if bool(self.level & bit) == bool(level):
            return
        if level:
            self.level |= bit
            if self.edge_trigger & bit:
                self.ipendr0 |= bit
        else:
            self.level &= ~bit

    def send_sgi(self, intid: int, group1: bool = True) -> bool:
        """gicv3_redist_send_sgi() with DS = 1: accepted only if the SGI's group matches."""
        if not 0 <= intid < 16:
            return False
        irq_group1 = bool(self.igroupr0 >> intid & 1)
        if irq_group1 != group1:
            return False
        self.ipendr0 |= 1 << intid
        return True

    def private_hppi(self, gicd_ctlr: int) -> Hppi | None:
        """Best SGI/PPI (gicr_int_pending + gicv3_redist_update_noirqset's loop)."""
        pend = (self.ipendr0 | (~self.edge_trigger & self.level)) & self.ienabler0
        pend &= ~self.iactiver0
        if not pend:
            return None
        grpmask = 0
        if gicd_ctlr & GICD_CTLR_EN_GRP1NS:
            grpmask |= self.igroupr0
        if gicd_ctlr & GICD_CTLR_EN_GRP0:
            grpmask |= ~self.igroupr0
        pend &= grpmask & 0xFFFFFFFF
        best: Hppi | None = None
        while pend:  # the set bits, lowest INTID first (QEMU's loop order)
            low = pend & -pend
            pend ^= low
            i = low.bit_length() - 1
            cand = Hppi(i, self.ipriorityr[i], bool(self.igroupr0 & low))
            if better(cand, best):
                best = cand
        return best

    def lpi_hppi(self) -> Hppi | None:
        """The cached hpplpi, if it counts (EnableLPIs, LPIs present, something pending)."""
        if self.lpis_enabled and self.plpis and self.hpplpi_prio != 0xFF:
            return Hppi(self.hpplpi_irq, self.hpplpi_prio, True)  # LPIs are always G1NS
        return None

    def activate_private(self, irq: int) -> None:
        """icc_activate_irq() for an SGI/PPI: active set, pending latch cleared."""
        self.iactiver0 |= 1 << irq
        self.ipendr0 &= ~(1 << irq)

    def deactivate_private(self, irq: int) -> None:
        """icc_deactivate_irq() for an SGI/PPI."""
        self.iactiver0 &= ~(1 << irq)

    # --- LPIs (generators: they read and write guest RAM) ----------------------------------

    def _update_for_one_lpi(self, irq: int, ctbase: int) -> Core[None]:
        """update_for_one_lpi(): read the property byte; if enabled and better, it is hpplpi."""
        data = yield MemRead(ctbase + (irq - LPI_INTID_BASE), 1, why="update_for_one_lpi")
        lpite = _byte(data, 0)
        if not lpite & LPI_PROP_ENABLED:
            return
        prio = lpite & LPI_PROP_PRIO_MASK if self.ds else ((lpite & 0xFC) >> 1) | 0x80
        if prio < self.hpplpi_prio or (prio == self.hpplpi_prio and irq <= self.hpplpi_irq):
            self.hpplpi_irq = irq
            self.hpplpi_prio = prio

    def _update_for_all_lpis(self, ptbase: int, ctbase: int, idbits: int) -> Core[None]:
        """update_for_all_lpis(): ONE read of pending-table bytes 1024 .. 2^(idbits+1)/8, then
        a property read for each set bit in INTID order (QEMU reads byte by byte)."""
        self.hpplpi_prio = 0xFF
        first = LPI_INTID_BASE // 8
        end = (1 << (idbits + 1)) // 8
        if end <= first:
            return
        data = yield MemRead(ptbase + first, end - first, why="update_for_all_lpis")
        # The table a block at a time as an integer: bit k is INTID (first + off)*8 + k.
        # Walking the set bits lowest first, block after block, visits them in QEMU's
        # byte-then-bit order without a Python loop per byte; all-zero blocks (most of the
        # table) are skipped by a comparison (a short answer reads as zero past its end, as
        # _byte does).
        table = data[: end - first]
        if table == _zeros(len(table)):
            return
        for off in range(0, len(table), _SCAN_BLOCK):
            block = table[off : off + _SCAN_BLOCK]
            if block == _zeros(len(block)):
                continue
            pend = int.from_bytes(block, "little")
            base = (first + off) * 8
            while pend:
                low = pend & -pend
                yield from self._update_for_one_lpi(base + low.bit_length() - 1, ctbase)
                pend ^= low

    def _set_pending_table_bit(self, ptbase: int, irq: int, level: bool) -> Core[bool]:
        """set_pending_table_bit(): read the byte; write it back only if the bit changes."""
        addr = ptbase + irq // 8
        data = yield MemRead(addr, 1, why="set_pending_table_bit")
        pend = _byte(data, 0)
        if bool(pend >> (irq % 8) & 1) == bool(level):
            return False
        pend = pend | (1 << irq % 8) if level else pend & ~(1 << irq % 8)
        yield MemWrite(addr, bytes([pend]), why="set_pending_table_bit")
        return True

    def update_lpi(self) -> Core[None]:
        """gicv3_redist_update_lpi_only(): full rescan, only while EnableLPIs = 1."""
        idbits = self._idbits()
        if not self.lpis_enabled:
            return
        yield from self._update_for_all_lpis(self.pend_base, self.prop_base, idbits)

    def lpi_pending(self, intid: int, level: bool) -> Core[bool]:
        """gicv3_redist_lpi_pending(): set/clear the RAM bit; keep hpplpi up to date.

        Returns whether the bit changed (False: it already had that value)."""
        changed = yield from self._set_pending_table_bit(self.pend_base, intid, level)
        if not changed:
            return False
        if level:
            yield from self._update_for_one_lpi(intid, self.prop_base)
        elif intid == self.hpplpi_irq:
            yield from self.update_lpi()
        return True

    def set_lpi(self, intid: int, level: bool) -> Core[bool | None]:
        """gicv3_redist_process_lpi(): ignored (no RAM access) when EnableLPIs = 0 or the INTID
        is below 8192 or above 2^(IDbits+1) - 1 with IDbits clamped to GICD_TYPER.IDbits.

        Returns None when ignored, else whether the pending bit changed."""
        idbits = self._idbits()
        if not self.lpis_enabled or intid > (1 << (idbits + 1)) - 1 or intid < LPI_INTID_BASE:
            return None
        return (yield from self.lpi_pending(intid, level))

    def inv_lpi(self, intid: int) -> Core[None]:
        """gicv3_redist_inv_lpi(): hpplpi is the only cache, so always rescan."""
        yield from self.update_lpi()

    def inv_all(self) -> Core[None]:
        """INVALL: the same full rescan (gicv3_redist_update_lpi)."""
        yield from self.update_lpi()

    def move_lpi(self, dest: Redistributor, intid: int) -> Core[None]:
        """gicv3_redist_mov_lpi(): clear the bit in this (source) table; if it was pending, set
        it in ``dest``'s. NOP unless both have EnableLPIs = 1 (CONSTRAINED UNPREDICTABLE)."""
        if not (self.lpis_enabled and dest.lpis_enabled):
            return
        idbits = min(self._idbits(), GICR_PROPBASER.get(dest.propbaser, "IDbits"))
        # QEMU compares the byte index with the size in bits (sic); kept as QEMU does it.
        if intid // 8 >= (1 << (idbits + 1)):
            return
        changed = yield from self._set_pending_table_bit(self.pend_base, intid, False)
        if not changed:
            return
        if intid == self.hpplpi_irq:
            yield from self.update_lpi()
        yield from dest.lpi_pending(intid, True)

    def move_all_lpis(self, dest: Redistributor) -> Core[None]:
        """gicv3_redist_movall_lpis(): OR this table's pending bytes into ``dest``'s and zero
        them here; then rescan both. One read per table range and one write per run of
        non-zero bytes (QEMU: read/read/write/write per non-zero byte)."""
        if dest is self or not (self.lpis_enabled and dest.lpis_enabled):
            return
        idbits = min(self._idbits(), GICR_PROPBASER.get(dest.propbaser, "IDbits"))
        first = LPI_INTID_BASE // 8
        end = (1 << (idbits + 1)) // 8
        if end > first:
            n = end - first
            why = "gicv3_redist_movall_lpis"
            src = yield MemRead(self.pend_base + first, n, why=why)
            if any(_byte(src, i) for i in range(n)):
                dst = yield MemRead(dest.pend_base + first, n, why=why)
                i = 0
                while i < n:
                    if not _byte(src, i):
                        i += 1
                        continue
                    j = i
                    while j < n and _byte(src, j):
                        j += 1
                    yield MemWrite(self.pend_base + first + i, bytes(j - i), why=why)
                    merged = bytes(_byte(dst, k) | _byte(src, k) for k in range(i, j))
                    yield MemWrite(dest.pend_base + first + i, merged, why=why)
                    i = j
        yield from self.update_lpi()
        yield from dest.update_lpi()

    # --- MMIO --------------------------------------------------------------------------------

    def _bad(self, offset: int, size: int, write: bool, reason: str) -> None:
        self.errors.append(GuestError(f"GICR{self.processor}", offset, size, write, reason))

    def mmio_read(self, offset: int, size: int) -> Core[int]:
        """gicv3_redist_read(): offset within this redistributor's 128 KiB (RD_base + SGI_base).
        Reserved offsets and bad sizes read as zero and are logged (never a data abort)."""
        return self.read_now(offset, size)
        yield  # pragma: no cover - makes this a generator (no RAM access on reads)

    def read_now(self, offset: int, size: int) -> int:
        """The synchronous body of :meth:`mmio_read` (no register read touches RAM)."""
        if size not in (1, 2, 4, 8) or not 0 <= offset < GIC_V3_REDIST_SIZE or offset % size:
            self._bad(offset, size, False, "bad size, alignment or offset")
            return 0
        value: int | None = None
        if size == 1:
            if _O_IPRIORITYR <= offset < _O_IPRIORITYR + 32:
                value = self.ipriorityr[offset - _O_IPRIORITYR]
        elif size == 4:
            value = self._readl(offset)
        elif size == 8:
            value = self._readll(offset)
        if value is None:
            self._bad(offset, size, False, "reserved register (RAZ)")
            return 0
        return value & ((1 << (8 * size)) - 1)

    def _readl(self, off: int) -> int | None:  # noqa: C901 - a register switch
        if off == GICR_CTLR.offset:
            return self.ctlr
        if off == GICR_IIDR.offset:
            return GICV3_IIDR
        if off == GICR_TYPER.offset:
            return self.typer & 0xFFFFFFFF
        if off == GICR_TYPER.offset + 4:
            return self.typer >> 32
        if off == GICR_STATUSR.offset:
            return 0
        if off == GICR_WAKER.offset:
            return self.waker
        for layout, reg in ((GICR_PROPBASER, self.propbaser), (GICR_PENDBASER, self.pendbaser)):
            if off == layout.offset:
                return reg & 0xFFFFFFFF
            if off == layout.offset + 4:
                return reg >> 32
        if off == _O_IGROUPR0:
            return self.igroupr0
        if off in (_O_ISENABLER0, _O_ICENABLER0):
            return self.ienabler0
        if off in (_O_ISPENDR0, _O_ICPENDR0):
            return (self.ipendr0 | (~self.edge_trigger & self.level)) & 0xFFFFFFFF
        if off in (_O_ISACTIVER0, _O_ICACTIVER0):
            return self.iactiver0
        if _O_IPRIORITYR <= off < _O_IPRIORITYR + 32:
            irq = off - _O_IPRIORITYR
            return int.from_bytes(bytes(self.ipriorityr[irq : irq + 4]), "little")
        if off in (_O_ICFGR0, _O_ICFGR1):
            half = (self.edge_trigger >> (16 if off == _O_ICFGR1 else 0)) & 0xFFFF
            return half_shuffle32(half) << 1
        if off in (_O_IGRPMODR0, _O_NSACR):
            return 0  # RAZ/WI with security disabled
        if GICR_IDREGS <= off <= GICR_IDREGS + 0x2F:
            return gicv3_idreg(off - GICR_IDREGS, GICV3_PIDR0_REDIST)
        if self.direct_lpi and off == GICR_SYNCR.offset:
            return 0  # never busy: everything here is synchronous
        return None

    def _readll(self, off: int) -> int | None:
        if off == GICR_TYPER.offset:
            return self.typer
        if off == GICR_PROPBASER.offset:
            return self.propbaser
        if off == GICR_PENDBASER.offset:
            return self.pendbaser
        return None

    def mmio_write(self, offset: int, size: int, value: int) -> Core[None]:
        """gicv3_redist_write(): may scan the pending table (GICR_CTLR.EnableLPIs = 1)."""
        if size not in (1, 2, 4, 8) or not 0 <= offset < GIC_V3_REDIST_SIZE or offset % size:
            self._bad(offset, size, True, "bad size, alignment or offset")
            return
        value &= (1 << (8 * size)) - 1
        ok = False
        if size == 1:
            if _O_IPRIORITYR <= offset < _O_IPRIORITYR + 32:
                self.ipriorityr[offset - _O_IPRIORITYR] = value
                ok = True
        elif size == 4:
            ok = yield from self._writel(offset, value)
        elif size == 8:
            ok = yield from self._writell(offset, value)
        if not ok:
            self._bad(offset, size, True, "reserved register (WI)")

    def _write_ctlr(self, value: int) -> Core[None]:
        """gicr_writel GICR_CTLR: only EnableLPIs is writable (when GICR_TYPER.PLPIS)."""
        if not self.plpis:
            return
        if value & GICR_CTLR_ENABLE_LPIS:
            self.ctlr |= GICR_CTLR_ENABLE_LPIS
            yield from self.update_lpi()  # "Check for any pending interr in pending table"
        else:
            self.ctlr &= ~GICR_CTLR_ENABLE_LPIS

    def _direct(self, off: int, value: int) -> Core[bool]:
        """GICR_SETLPIR/CLRLPIR/INVLPIR/INVALLR (only with ``direct_lpi``)."""
        if not self.direct_lpi:
            return False
        intid = value & 0xFFFFFFFF
        if off == GICR_SETLPIR.offset:
            yield from self.set_lpi(intid, True)
        elif off == GICR_CLRLPIR.offset:
            yield from self.set_lpi(intid, False)
        elif off == GICR_INVLPIR.offset:
            yield from self.inv_lpi(intid)
        elif off == GICR_INVALLR.offset:
            yield from self.inv_all()
        else:
            return False
        return True

    def _writel(self, off: int, value: int) -> Core[bool]:  # noqa: C901 - a register switch
        if off == GICR_CTLR.offset:
            yield from self._write_ctlr(value)
            return True
        if off == GICR_STATUSR.offset:
            return True
        if off == GICR_WAKER.offset:
            # Transitions complete instantly: ChildrenAsleep follows ProcessorSleep.
            value &= GICR_WAKER_ProcessorSleep
            if value:
                value |= GICR_WAKER_ChildrenAsleep
            self.waker = value
            return True
        for layout, name in ((GICR_PROPBASER, "propbaser"), (GICR_PENDBASER, "pendbaser")):
            if off in (layout.offset, layout.offset + 4):
                lo = 0 if off == layout.offset else 32
                setattr(self, name, _deposit(getattr(self, name), lo, value))
                return True
        simple: dict[int, tuple[str, Callable[[int, int], int]]] = {
            _O_IGROUPR0: ("igroupr0", lambda _old, v: v),
            _O_ISENABLER0: ("ienabler0", lambda old, v: old | v),
            _O_ICENABLER0: ("ienabler0", lambda old, v: old & ~v),
            _O_ISPENDR0: ("ipendr0", lambda old, v: old | v),
            _O_ICPENDR0: ("ipendr0", lambda old, v: old & ~v),
            _O_ISACTIVER0: ("iactiver0", lambda old, v: old | v),
            _O_ICACTIVER0: ("iactiver0", lambda old, v: old & ~v),
        }
        if off in simple:
            name, op = simple[off]
            setattr(self, name, op(getattr(self, name), value) & 0xFFFFFFFF)
            return True
        if _O_IPRIORITYR <= off < _O_IPRIORITYR + 32:
            irq = off - _O_IPRIORITYR
            for i in range(4):
                self.ipriorityr[irq + i] = (value >> (8 * i)) & 0xFF
            return True
        if off == _O_ICFGR0:
            return True  # all RAZ/WI or RAO/WI bits (SGIs are edge-triggered)
        if off == _O_ICFGR1:
            mask = 0xFFFF0000
            half = half_unshuffle32(value >> 1) << 16
            self.edge_trigger = (self.edge_trigger & ~mask) | (half & mask)
            return True
        if off in (_O_IGRPMODR0, _O_NSACR):
            return True
        if off in (GICR_IIDR.offset, GICR_TYPER.offset) or (
            GICR_IDREGS <= off <= GICR_IDREGS + 0x2F
        ):
            self._bad(off, 4, True, "read-only register (write ignored)")
            return True
        done = yield from self._direct(off, value)
        return done

    def _writell(self, off: int, value: int) -> Core[bool]:
        if off == GICR_PROPBASER.offset:
            self.propbaser = value
            return True
        if off == GICR_PENDBASER.offset:
            self.pendbaser = value
            return True
        if off == GICR_TYPER.offset:
            self._bad(off, 8, True, "read-only register (write ignored)")
            return True
        done = yield from self._direct(off, value)
        return done


__all__ = [
    "GICR_CTLR_ENABLE_LPIS",
    "GICR_IDREGS",
    "GICR_WAKER_ChildrenAsleep",
    "GICR_WAKER_ProcessorSleep",
    "Redistributor",
]
