"""The physical ITS of QEMU 7.2's ``virt`` machine as a synchronous state machine.

Modelled on QEMU ``hw/intc/arm_gicv3_its.c`` and ``hw/intc/gicv3_internal.h`` for
everything the architecture leaves IMPLEMENTATION DEFINED (gicv3-architecture.md §5.5):
the 8-byte DTE/CTE and 12-byte ITE formats, the walk of two-level tables, the range
checks and what a bad command does. Source read: the stored ``qemu/qemu`` copy predates
7.0, so the code followed is a later copy (lzw29107/qemu at bc9c78ff) whose physical-LPI
paths were introduced by the 7.0 clean-up and the 7.1 GICv4 series (``lookup_ite``,
``lookup_cte``, ``CMD_CONTINUE_OK``, the ITE with ICID in [47:32]) and are, as far as the
patches read show, unchanged in 7.2; only trace/log formatting and the reset API differ.

Command errors follow QEMU exactly: a bad *parameter* (DeviceID or ICID out of range,
no valid DTE/ITE/CTE, EventID beyond the DTE's Size, pINTID not an LPI, a target beyond
the last CPU) makes the command a no-op and processing continues (``CMD_CONTINUE``:
CREADR advances); only a *memory* error (a table or queue read or write the memory port
fails) stalls the queue (``CMD_STALL``: GITS_CREADR.Stalled = 1, CREADR stays on the
failing command, the next CWRITER write retries it). Unknown command numbers and the
GICv4 commands (GITS_TYPER.Virtual = 0 on a GICv3 ``virt``) are ignored and skipped.
Every error is also returned as a :class:`CommandError` record so a trace shows why a
command did nothing; the guest itself sees nothing (QEMU only logs LOG_GUEST_ERROR).

Memory: every table or queue access is a generator request,
``data = yield MemRead(addr, size, why=...)`` / ``yield MemWrite(addr, data, why=...)``
with ``why`` the QEMU function modelled. Whoever answers reports a failed access (QEMU's
MEMTX error: an address with no RAM behind it) by answering with an exception instance
(e.g. the ``ValueError`` :meth:`gic.port.Ram.read` raises) or, for a read, anything that
is not ``size`` bytes. Run one core at a time per :class:`Its` (QEMU holds the BQL).

PTA = 0: collections and MOVALL/SYNC name their target by Processor_Number, so effects
carry processor numbers. Only physical LPIs are modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from gic import its_commands as cmds
from gic.bits import F, Layout
from gic.fastinit import fast_init
from gic.port import Core, MemRead, MemWrite
from gic.registers import (
    GICV3_ITS_SIZE,
    GITS_BASER,
    GITS_BASER_NR_REGS,
    GITS_BASER_TYPE_COLLECTION,
    GITS_BASER_TYPE_DEVICE,
    GITS_CBASER,
    GITS_CREADR,
    GITS_CTLR,
    GITS_CWRITER,
    GITS_IIDR,
    GITS_TRANSLATER_OFFSET,
    GITS_TYPER,
    INTID_SPURIOUS,
    ITS_CONTROL_SIZE,
    LPI_INTID_BASE,
    baser_base_addr,
)

# --------------------------------------------------------------------------------------------
# QEMU constants (hw/intc/gicv3_internal.h, arm_gicv3_its.c)

#: GITS_TYPER of QEMU's GICv3 ITS (gicv3_arm_its_realize): Physical, ITT_entry_size 11
#: (12 bytes), ID_bits 15, Devbits 15, CIDbits 15, CIL 1, PTA 0 (sheet E7).
QEMU_GITS_TYPER = 0x1F_0001_EFB1
#: QEMU's gicv3_iidr(): Arm, r0p0, ProductID 0 (as a GIC-500 r0p0).
QEMU_GITS_IIDR = 0x43B
#: Reset values (gicv3_its_reset_hold): GITS_CTLR.Quiescent; BASER0 Devices and BASER1
#: Collections, 64 KiB pages, 8-byte entries; BASER2..7 unimplemented (0, RAZ/WI).
GITS_CTLR_RESET = 0x8000_0000
GITS_BASER0_RESET = 0x0107_0000_0000_0200
GITS_BASER1_RESET = 0x0407_0000_0000_0200
#: GITS_BASER_RO_MASK: Entry_Size and Type are read-only.
GITS_BASER_RO_MASK = GITS_BASER["Entry_Size"].mask | GITS_BASER["Type"].mask
GITS_IDREGS = 0xFFD0
GICV3_PIDR0_ITS = 0x94
#: gicv3_idreg(): PIDR4..7, PIDR0..3, CIDR0..3 at 0xFFD0.. (PIDR0 replaced by 0x94 for the
#: ITS, PIDR2 ORed with the architecture revision << 4, giving 0x3B).
_GICD_IDS = (0x44, 0x00, 0x00, 0x00, 0x92, 0xB4, 0x0B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
GIC_REVISION = 3

ITS_ITT_ENTRY_SIZE = 0xC
GITS_DTE_SIZE = 8
GITS_CTE_SIZE = 8
L1TABLE_ENTRY_SIZE = 8
L2_TABLE_VALID_MASK = 1 << 63
GITS_CMDQ_ENTRY_SIZE = 32
GITS_PAGE_SIZE_4K = 0x1000
GITS_PAGE_SIZES = {0: 0x1000, 1: 0x4000, 2: 0x10000, 3: 0x10000}  # 0b11: QEMU uses 64 KiB
ITE_INTTYPE_VIRTUAL = 0
ITE_INTTYPE_PHYSICAL = 1
RDBASE_PROCNUM_MASK = 0xFFFF
#: QEMU's GICD_TYPER_IDBITS (0xF): 16 INTID bits, so LPIs are 8192..65535.
QEMU_INTID_BITS = 16

#: QEMU in-memory entry formats (IMPLEMENTATION DEFINED; sheet §5.5). DTE.ITT_addr and
#: VTE fields hold shifted values as QEMU stores them (ITT address >> 8).
QEMU_DTE = Layout("QEMU_DTE", 64, (F("Valid", 0), F("Size", 5, 1), F("ITT_addr", 49, 6)))
QEMU_CTE = Layout("QEMU_CTE", 64, (F("Valid", 0), F("RDbase", 16, 1)))
QEMU_ITE_L = Layout(
    "QEMU_ITE_L",
    64,
    (F("Valid", 0), F("IntType", 1), F("INTID", 25, 2), F("ICID", 47, 32), F("vPEID", 63, 48)),
)
QEMU_ITE_H = Layout("QEMU_ITE_H", 32, (F("Doorbell", 23, 0),))

_GITS_CWRITER_RETRY = GITS_CWRITER["Retry"].mask
_GITS_CREADR_STALLED = GITS_CREADR["Stalled"].mask
_GITS_CTLR_ENABLED = GITS_CTLR["Enabled"].mask

_M32 = 0xFFFF_FFFF
_M64 = (1 << 64) - 1


# --------------------------------------------------------------------------------------------
# Effects (what the caller applies to redistributors) and events (records for the trace)


@fast_init
@dataclass(frozen=True, slots=True)
class SetLpi:
    """Set (MSI, INT) or clear (CLEAR, DISCARD) the pending state of LPI ``intid`` on
    ``processor`` (QEMU gicv3_redist_process_lpi)."""

    processor: int
    intid: int
    level: bool


@dataclass(frozen=True, slots=True)
class InvLpi:
    """Re-read the property byte of ``intid`` (INV; QEMU gicv3_redist_inv_lpi)."""

    processor: int
    intid: int


@dataclass(frozen=True, slots=True)
class InvAllLpis:
    """Re-read every LPI property of ``processor`` (INVALL; QEMU gicv3_redist_update_lpi)."""

    processor: int


@dataclass(frozen=True, slots=True)
class MoveLpi:
    """Move the pending state of ``intid`` between redistributors (MOVI;
    QEMU gicv3_redist_mov_lpi)."""

    src_processor: int
    dst_processor: int
    intid: int


@dataclass(frozen=True, slots=True)
class MoveAllLpis:
    """Move every pending LPI of ``src`` to ``dst`` (MOVALL; QEMU gicv3_redist_movall_lpis)."""

    src: int
    dst: int


@dataclass(frozen=True, slots=True)
class Sync:
    """SYNC reached ``processor``: earlier effects are complete (a no-op in QEMU, whose ITS
    is always in sync). Emitted only for a processor that exists."""

    processor: int


@dataclass(frozen=True, slots=True)
class CommandError:
    """A command that did nothing, and why. ``offset`` is its byte offset in the queue;
    ``stalled`` is True when it stalled the queue (QEMU CMD_STALL), else it was skipped."""

    offset: int
    command: str
    reason: str
    stalled: bool = False


@dataclass(frozen=True, slots=True)
class MsiDropped:
    """An MSI (GITS_TRANSLATER write) the ITS ignored, silently for the device (§7)."""

    devid: int
    eventid: int
    reason: str


@dataclass(frozen=True, slots=True)
class BadAccess:
    """An MMIO access to a reserved offset or with a bad size/alignment: RAZ/WI."""

    offset: int
    size: int
    write: bool
    reason: str


ItsAction = SetLpi | InvLpi | InvAllLpis | MoveLpi | MoveAllLpis | Sync
ItsEvent = CommandError | MsiDropped | BadAccess
ItsEffect = ItsAction | ItsEvent
ACTIONS = (SetLpi, InvLpi, InvAllLpis, MoveLpi, MoveAllLpis, Sync)


def actions(effects: list[ItsEffect]) -> list[ItsAction]:
    """Only the effects a caller applies to redistributors (drops the records)."""
    return [e for e in effects if isinstance(e, ACTIONS)]


# --------------------------------------------------------------------------------------------
# In-memory entries (QEMU DTEntry, CTEntry, ITEntry)


@fast_init
@dataclass(frozen=True, slots=True)
class DTEntry:
    """A Device Table entry; ``ittaddr`` is the ITT address (QEMU get_dte shifts it back)."""

    valid: bool = False
    size: int = 0
    ittaddr: int = 0

    def encode(self) -> int:
        """update_dte: an invalid entry is written as 0."""
        if not self.valid:
            return 0
        return QEMU_DTE.encode(Valid=1, Size=self.size, ITT_addr=self.ittaddr >> 8)

    @classmethod
    def decode(cls, value: int) -> DTEntry:
        d = QEMU_DTE.decode(value)
        return cls(bool(d["Valid"]), d["Size"], d["ITT_addr"] << 8)


@fast_init
@dataclass(frozen=True, slots=True)
class CTEntry:
    """A Collection Table entry: the target processor number (PTA = 0)."""

    valid: bool = False
    rdbase: int = 0

    def encode(self) -> int:
        if not self.valid:
            return 0
        return QEMU_CTE.encode(Valid=1, RDbase=self.rdbase)

    @classmethod
    def decode(cls, value: int) -> CTEntry:
        d = QEMU_CTE.decode(value)
        return cls(bool(d["Valid"]), d["RDbase"])


@fast_init
@dataclass(frozen=True, slots=True)
class ITEntry:
    """An Interrupt Translation Table entry (12 bytes: ITE_L then ITE_H)."""

    valid: bool = False
    inttype: int = ITE_INTTYPE_PHYSICAL
    intid: int = 0
    icid: int = 0
    vpeid: int = 0
    doorbell: int = 0

    def encode(self) -> bytes:
        """update_ite: an invalid entry is written as twelve zero bytes."""
        itel = iteh = 0
        if self.valid:
            itel = QEMU_ITE_L.encode(
                Valid=1, IntType=self.inttype, INTID=self.intid, ICID=self.icid, vPEID=self.vpeid
            )
            iteh = QEMU_ITE_H.encode(Doorbell=self.doorbell)
        return itel.to_bytes(8, "little") + iteh.to_bytes(4, "little")

    @classmethod
    def decode(cls, itel: int, iteh: int) -> ITEntry:
        lo = QEMU_ITE_L.decode(itel)
        return cls(
            bool(lo["Valid"]),
            lo["IntType"],
            lo["INTID"],
            lo["ICID"],
            lo["vPEID"],
            QEMU_ITE_H.get(iteh, "Doorbell"),
        )


@dataclass(slots=True)
class TableDesc:
    """QEMU TableDesc: one in-memory table as extract_table_params found it."""

    page_sz: int = 0
    indirect: bool = False
    entry_sz: int = 0
    base_addr: int = 0
    num_entries: int = 0


@dataclass(slots=True)
class CmdQDesc:
    """QEMU CmdQDesc: the command queue as extract_cmdq_params found it."""

    base_addr: int = 0
    num_entries: int = 0


class _Res(IntEnum):
    """QEMU ItsCmdResult."""

    CMD_STALL = 0
    CMD_CONTINUE = 1
    CMD_CONTINUE_OK = 2


_Report = Callable[[str], None]


def _deposit(reg: int, lo: int, width: int, value: int) -> int:
    mask = ((1 << width) - 1) << lo
    return (reg & ~mask & _M64) | ((value << lo) & mask)


# --------------------------------------------------------------------------------------------


class Its:
    """One ITS: the GITS_* register frame, GITS_TRANSLATER and command processing."""

    SIZE = GICV3_ITS_SIZE

    def __init__(
        self,
        base: int = 0x08080000,
        *,
        typer: int = QEMU_GITS_TYPER,
        num_processors: int,
        gicd_ctlr_ds: bool = True,
    ) -> None:
        """``gicd_ctlr_ds`` is GICD_CTLR.DS: 1 on ``virt`` without EL3 (one Security
        state), which in QEMU makes GITS_CREADR writable."""
        if not isinstance(num_processors, int) or not 1 <= num_processors <= 1 << 16:
            raise ValueError(f"Its: num_processors {num_processors!r} not in 1..65536")
        if not isinstance(typer, int) or not 0 <= typer < 1 << 64:
            raise ValueError(f"Its: typer {typer!r} is not a 64-bit value")
        t = GITS_TYPER.decode(typer)
        if not t["Physical"] or t["Virtual"] or t["PTA"]:
            raise ValueError(
                f"Its: typer {typer:#x}: only Physical = 1, Virtual = 0, PTA = 0 is modelled "
                "(QEMU 7.2 GICv3 ITS)"
            )
        if t["ITT_entry_size"] != ITS_ITT_ENTRY_SIZE - 1:
            raise ValueError(
                f"Its: typer {typer:#x}: ITT_entry_size must be {ITS_ITT_ENTRY_SIZE - 1} "
                "(QEMU's 12-byte ITE)"
            )
        if base < 0 or base % 0x10000:
            raise ValueError(f"Its: base {base:#x} is not 64 KiB aligned")
        self.base = base
        self.typer = typer
        self.num_processors = num_processors
        self.gicd_ctlr_ds = gicd_ctlr_ds
        self.reset()

    def reset(self) -> None:
        """gicv3_its_common_reset_hold + gicv3_its_reset_hold."""
        self.ctlr = GITS_CTLR_RESET
        self.cbaser = 0
        self.cwriter = 0
        self.creadr = 0
        self.baser = [0] * GITS_BASER_NR_REGS
        self.baser[0] = GITS_BASER0_RESET
        self.baser[1] = GITS_BASER1_RESET
        self.dt = TableDesc()
        self.ct = TableDesc()
        self.cq = CmdQDesc()

    # ---------------------------------------------------------------- properties

    @property
    def enabled(self) -> bool:
        return bool(self.ctlr & _GITS_CTLR_ENABLED)

    @property
    def stalled(self) -> bool:
        return bool(self.creadr & _GITS_CREADR_STALLED)

    @property
    def doorbell(self) -> int:
        """The MSI doorbell address: ITS_base + GITS_TRANSLATER (0x10040)."""
        return self.base + GITS_TRANSLATER_OFFSET

    # ---------------------------------------------------------------- MMIO

    def mmio_read(self, offset: int, size: int) -> Core[int]:
        """A read of the ITS frame at ``offset`` from ITS_base (gicv3_its_read and
        gicv3_its_translation_read). Reserved offsets and bad accesses read as zero."""
        yield from ()
        return self._read(offset, size)

    def mmio_write(
        self, offset: int, size: int, value: int, devid: int = 0
    ) -> Core[list[ItsEffect]]:
        """A write of the ITS frame (gicv3_its_write, gicv3_its_translation_write).

        Writing GITS_CTLR.Enabled or GITS_CWRITER processes the queue up to CWRITER and
        returns the commands' effects; writing GITS_TRANSLATER translates an MSI from
        ``devid``, the DeviceID the bus supplies with the write.
        """
        bad = self._check(offset, size, True)
        if bad is not None:
            return [bad]
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
            return [BadAccess(offset, size, True, f"value {value!r} does not fit {size} bytes")]
        if offset >= ITS_CONTROL_SIZE:
            # gicv3_its_translation_write: only GITS_TRANSLATER does anything.
            if offset != GITS_TRANSLATER_OFFSET:
                return [BadAccess(offset, size, True, "translation frame: RES0 offset, WI")]
            return (yield from self.translate(devid, value))
        if size == 4:
            return (yield from self._writel(offset, value))
        return (yield from self._writell(offset, value))

    def translate(self, devid: int, eventid: int) -> Core[list[ItsEffect]]:
        """An MSI: (DeviceID, EventID) through DTE, ITE and CTE to SetLpi on the target
        processor (gicv3_its_translation_write -> do_process_its_cmd, cmd NONE). Dropped,
        silently for the device, when the ITS is disabled or any lookup fails."""
        if not self.enabled:
            return [MsiDropped(devid, eventid, "GITS_CTLR.Enabled = 0")]
        if not isinstance(devid, int) or not 0 <= devid < 1 << 32:
            return [MsiDropped(devid, eventid, "DeviceID is not a 32-bit value")]
        if not isinstance(eventid, int) or not 0 <= eventid < 1 << 32:
            return [MsiDropped(devid, eventid, "EventID is not a 32-bit value")]
        reasons: list[str] = []
        out: list[ItsEffect] = []
        res = yield from self._do_process_its_cmd(devid, eventid, "NONE", out, reasons.append)
        if res == _Res.CMD_STALL:
            reasons.append("memory error: QEMU answers the write with MEMTX_ERROR")
        if not out:
            return [MsiDropped(devid, eventid, "; ".join(reasons) or "no effect")]
        return out

    # ---------------------------------------------------------------- register access

    def _check(self, offset: int, size: int, write: bool) -> BadAccess | None:
        if not isinstance(offset, int) or not 0 <= offset < GICV3_ITS_SIZE:
            return BadAccess(offset, size, write, "outside the 128 KiB ITS frame")
        allowed = (2, 4) if offset >= ITS_CONTROL_SIZE else (4, 8)
        if size not in allowed:
            return BadAccess(offset, size, write, f"access size {size} not in {allowed}: RAZ/WI")
        if offset % size:
            return BadAccess(offset, size, write, "unaligned access: RAZ/WI")
        return None

    def _read(self, offset: int, size: int) -> int:
        if self._check(offset, size, False) is not None:
            return 0
        if offset >= ITS_CONTROL_SIZE:
            return 0  # gicv3_its_translation_read: GITS_TRANSLATER is WO, the rest RES0
        value = self._readl(offset) if size == 4 else self._readll(offset)
        return 0 if value is None else value

    def _readl(self, offset: int) -> int | None:
        """its_readl: 32-bit reads; 64-bit registers read as two halves."""
        if offset == GITS_CTLR.offset:
            return self.ctlr
        if offset == GITS_IIDR.offset:
            return QEMU_GITS_IIDR
        if GITS_IDREGS <= offset < GITS_IDREGS + 0x30:
            return self._idreg(offset - GITS_IDREGS)
        for reg, value in self._regs64():
            if offset == reg:
                return value & _M32
            if offset == reg + 4:
                return value >> 32
        return None

    def _readll(self, offset: int) -> int | None:
        """its_readll: 64-bit reads of the 64-bit registers only."""
        for reg, value in self._regs64():
            if offset == reg:
                return value
        return None

    def _regs64(self) -> list[tuple[int, int]]:
        regs = [
            (GITS_TYPER.offset, self.typer),
            (GITS_CBASER.offset, self.cbaser),
            (GITS_CREADR.offset, self.creadr),
            (GITS_CWRITER.offset, self.cwriter),
        ]
        regs += [(GITS_BASER.offset + 8 * n, v) for n, v in enumerate(self.baser)]
        return regs

    @staticmethod
    def _idreg(regoffset: int) -> int:
        """gicv3_idreg(s, offset - GITS_IDREGS, GICV3_PIDR0_ITS)."""
        index = regoffset // 4
        if index == 4:
            return GICV3_PIDR0_ITS
        value = _GICD_IDS[index]
        if index == 6:
            value |= GIC_REVISION << 4
        return value

    def _baser_write(self, offset: int, value: int, lo: int, width: int) -> None:
        """GITS_BASER<n> write (its_writel/its_writell): read-only while enabled, RAZ/WI if
        unimplemented, Type and Entry_Size read-only."""
        if self.enabled:
            return
        index = (offset - GITS_BASER.offset) // 8
        if self.baser[index] == 0:
            return
        keep = GITS_BASER_RO_MASK | (_M64 & ~(((1 << width) - 1) << lo))
        self.baser[index] = (self.baser[index] & keep) | ((value << lo) & ~keep & _M64)

    def _writel(self, offset: int, value: int) -> Core[list[ItsEffect]]:
        """its_writel: 32-bit writes."""
        base_lo = GITS_BASER.offset
        if offset == GITS_CTLR.offset:
            return (yield from self._write_ctlr(value))
        if offset in (GITS_CBASER.offset, GITS_CBASER.offset + 4):
            # IMPDEF choice: GITS_CBASER is RO while the ITS is enabled.
            if not self.enabled:
                lo = 32 if offset & 4 else 0
                self.cbaser = _deposit(self.cbaser, lo, 32, value)
                self.creadr = 0
            return []
        if offset == GITS_CWRITER.offset:
            self.cwriter = _deposit(self.cwriter, 0, 32, value & ~_GITS_CWRITER_RETRY)
            if self.cwriter != self.creadr:
                return (yield from self._process_cmdq())
            return []
        if offset == GITS_CWRITER.offset + 4:
            self.cwriter = _deposit(self.cwriter, 32, 32, value)
            return []
        if offset in (GITS_CREADR.offset, GITS_CREADR.offset + 4):
            if self.gicd_ctlr_ds:
                if offset & 4:
                    self.creadr = _deposit(self.creadr, 32, 32, value)
                else:
                    self.creadr = _deposit(self.creadr, 0, 32, value & ~_GITS_CREADR_STALLED)
                return []
            return [BadAccess(offset, 4, True, "GITS_CREADR is read-only (GICD_CTLR.DS = 0)")]
        if base_lo <= offset < base_lo + 8 * GITS_BASER_NR_REGS:
            self._baser_write(offset & ~7, value, 32 if offset & 4 else 0, 32)
            return []
        if offset == GITS_IIDR.offset or GITS_IDREGS <= offset < GITS_IDREGS + 0x30:
            return [BadAccess(offset, 4, True, "read-only register, write ignored")]
        return [BadAccess(offset, 4, True, "reserved offset: RAZ/WI")]

    def _writell(self, offset: int, value: int) -> Core[list[ItsEffect]]:
        """its_writell: 64-bit writes (GITS_CTLR is not among them: a 64-bit write is WI)."""
        base_lo = GITS_BASER.offset
        if base_lo <= offset < base_lo + 8 * GITS_BASER_NR_REGS:
            self._baser_write(offset, value, 0, 64)
            return []
        if offset == GITS_CBASER.offset:
            if not self.enabled:
                self.cbaser = value
                self.creadr = 0
            return []
        if offset == GITS_CWRITER.offset:
            self.cwriter = value & ~_GITS_CWRITER_RETRY
            if self.cwriter != self.creadr:
                return (yield from self._process_cmdq())
            return []
        if offset == GITS_CREADR.offset:
            if self.gicd_ctlr_ds:
                self.creadr = value & ~_GITS_CREADR_STALLED
                return []
            return [BadAccess(offset, 8, True, "GITS_CREADR is read-only (GICD_CTLR.DS = 0)")]
        if offset == GITS_TYPER.offset:
            return [BadAccess(offset, 8, True, "read-only register, write ignored")]
        return [BadAccess(offset, 8, True, "reserved offset or 32-bit register: RAZ/WI")]

    def _write_ctlr(self, value: int) -> Core[list[ItsEffect]]:
        """GITS_CTLR: setting Enabled reads the tables and queue registers and processes
        the queue; clearing it stops translation. Quiescent stays 1 (QEMU never clears it)."""
        if value & _GITS_CTLR_ENABLED:
            self.ctlr |= _GITS_CTLR_ENABLED
            self._extract_table_params()
            self._extract_cmdq_params()
            return (yield from self._process_cmdq())
        self.ctlr &= ~_GITS_CTLR_ENABLED
        return []

    # ---------------------------------------------------------------- table parameters

    def _extract_table_params(self) -> None:
        """extract_table_params: DT/CT base, page size, entry size, entry count from
        GITS_BASER<n>; an invalid table has 0 entries so every lookup fails its range check."""
        t = GITS_TYPER.decode(self.typer)
        for value in self.baser:
            if not value:
                continue
            page_sz = GITS_PAGE_SIZES[GITS_BASER.get(value, "Page_Size")]
            num_pages = GITS_BASER.get(value, "Size") + 1
            kind = GITS_BASER.get(value, "Type")
            if kind == GITS_BASER_TYPE_DEVICE:
                td = self.dt = TableDesc()
                idbits = t["Devbits"] + 1
            elif kind == GITS_BASER_TYPE_COLLECTION:
                td = self.ct = TableDesc()
                idbits = t["CIDbits"] + 1 if t["CIL"] else 16
            else:  # Type is read-only: cannot happen (QEMU g_assert_not_reached)
                continue
            if not GITS_BASER.get(value, "Valid"):
                continue
            td.page_sz = page_sz
            td.indirect = bool(GITS_BASER.get(value, "Indirect"))
            td.entry_sz = GITS_BASER.get(value, "Entry_Size") + 1
            td.base_addr = baser_base_addr(value)
            if not td.indirect:
                n = (num_pages * page_sz) // td.entry_sz
            else:
                n = ((num_pages * page_sz) // L1TABLE_ENTRY_SIZE) * (page_sz // td.entry_sz)
            td.num_entries = min(n, 1 << idbits)

    def _extract_cmdq_params(self) -> None:
        """extract_cmdq_params: queue base [51:12] and (Size + 1) 4 KiB pages, if Valid."""
        self.cq = CmdQDesc()
        if GITS_CBASER.get(self.cbaser, "Valid"):
            pages = GITS_CBASER.get(self.cbaser, "Size") + 1
            self.cq.num_entries = pages * GITS_PAGE_SIZE_4K // GITS_CMDQ_ENTRY_SIZE
            self.cq.base_addr = GITS_CBASER.get(self.cbaser, "Physical_Address")

    # ---------------------------------------------------------------- memory helpers

    @staticmethod
    def _ldq(addr: int, why: str) -> Core[int | None]:
        data = yield MemRead(addr, 8, why)
        if isinstance(data, (bytes, bytearray)) and len(data) == 8:
            return int.from_bytes(data, "little")
        return None

    @staticmethod
    def _ldl(addr: int, why: str) -> Core[int | None]:
        data = yield MemRead(addr, 4, why)
        if isinstance(data, (bytes, bytearray)) and len(data) == 4:
            return int.from_bytes(data, "little")
        return None

    @staticmethod
    def _store(addr: int, data: bytes, why: str) -> Core[bool]:
        answer: Any = yield MemWrite(addr, data, why)
        return not isinstance(answer, BaseException)

    def _table_entry_addr(self, td: TableDesc, idx: int, why: str) -> Core[tuple[bool, int]]:
        """table_entry_addr: (memory ok, address or -1). A two-level table reads the
        level-1 descriptor (Valid [63]); QEMU takes the level-2 address as bits [50:0]."""
        if not td.indirect:
            return True, td.base_addr + idx * td.entry_sz
        l2idx = idx // (td.page_sz // L1TABLE_ENTRY_SIZE)
        l2 = yield from self._ldq(td.base_addr + l2idx * L1TABLE_ENTRY_SIZE, why)
        if l2 is None:
            return False, -1
        if not l2 & L2_TABLE_VALID_MASK:
            return True, -1
        num_l2_entries = td.page_sz // td.entry_sz
        return True, (l2 & ((1 << 51) - 1)) + (idx % num_l2_entries) * td.entry_sz

    def _get_dte(self, devid: int) -> Core[DTEntry | None]:
        """get_dte: None on a memory error; an invalid entry when no level-2 page."""
        ok, addr = yield from self._table_entry_addr(self.dt, devid, "get_dte")
        if not ok:
            return None
        if addr == -1:
            return DTEntry()
        value = yield from self._ldq(addr, "get_dte")
        return None if value is None else DTEntry.decode(value)

    def _get_cte(self, icid: int) -> Core[CTEntry | None]:
        """get_cte."""
        ok, addr = yield from self._table_entry_addr(self.ct, icid, "get_cte")
        if not ok:
            return None
        if addr == -1:
            return CTEntry()
        value = yield from self._ldq(addr, "get_cte")
        return None if value is None else CTEntry.decode(value)

    def _get_ite(self, eventid: int, dte: DTEntry) -> Core[ITEntry | None]:
        """get_ite: ITE_L (8 bytes) then ITE_H (4 bytes) at ITT + EventID * 12."""
        addr = dte.ittaddr + eventid * ITS_ITT_ENTRY_SIZE
        itel = yield from self._ldq(addr, "get_ite")
        if itel is None:
            return None
        iteh = yield from self._ldl(addr + 8, "get_ite")
        if iteh is None:
            return None
        return ITEntry.decode(itel, iteh)

    def _update_ite(self, eventid: int, dte: DTEntry, ite: ITEntry) -> Core[bool]:
        """update_ite: two stores, ITE_L then ITE_H; False on a memory error."""
        addr = dte.ittaddr + eventid * ITS_ITT_ENTRY_SIZE
        data = ite.encode()
        if not (yield from self._store(addr, data[:8], "update_ite")):
            return False
        return (yield from self._store(addr + 8, data[8:], "update_ite"))

    def _update_entry(self, td: TableDesc, idx: int, value: int, why: str) -> Core[bool]:
        """update_dte / update_cte: no level-2 page means the write is discarded (True)."""
        ok, addr = yield from self._table_entry_addr(td, idx, why)
        if not ok:
            return False
        if addr == -1:
            return True
        return (yield from self._store(addr, value.to_bytes(8, "little"), why))

    # ---------------------------------------------------------------- lookups

    def _lookup_ite(
        self, devid: int, eventid: int, report: _Report
    ) -> Core[tuple[_Res, ITEntry, DTEntry]]:
        """lookup_ite: DeviceID range, valid DTE, EventID < 2^(Size+1), valid ITE."""
        if devid >= self.dt.num_entries:
            report(f"DeviceID {devid:#x} >= {self.dt.num_entries:#x} device table entries")
            return (_Res.CMD_CONTINUE, ITEntry(), DTEntry())
        dte = yield from self._get_dte(devid)
        if dte is None:
            report(f"memory error reading the DTE of DeviceID {devid:#x}")
            return (_Res.CMD_STALL, ITEntry(), DTEntry())
        if not dte.valid:
            report(f"no valid DTE for DeviceID {devid:#x}")
            return (_Res.CMD_CONTINUE, ITEntry(), DTEntry())
        num_eventids = 1 << (dte.size + 1)
        if eventid >= num_eventids:
            report(
                f"EventID {eventid:#x} >= {num_eventids:#x} (DeviceID {devid:#x} Size {dte.size})"
            )
            return (_Res.CMD_CONTINUE, ITEntry(), DTEntry())
        ite = yield from self._get_ite(eventid, dte)
        if ite is None:
            report(f"memory error reading the ITE of DeviceID {devid:#x} EventID {eventid:#x}")
            return (_Res.CMD_STALL, ITEntry(), DTEntry())
        if not ite.valid:
            report(f"no valid ITE for DeviceID {devid:#x} EventID {eventid:#x}")
            return (_Res.CMD_CONTINUE, ite, dte)
        return (_Res.CMD_CONTINUE_OK, ite, dte)

    def _lookup_cte(self, icid: int, report: _Report) -> Core[tuple[_Res, CTEntry]]:
        """lookup_cte: ICID range, valid CTE, target below the number of CPUs."""
        if icid >= self.ct.num_entries:
            report(f"ICID {icid:#x} >= {self.ct.num_entries:#x} collection table entries")
            return _Res.CMD_CONTINUE, CTEntry()
        cte = yield from self._get_cte(icid)
        if cte is None:
            report(f"memory error reading the CTE of ICID {icid:#x}")
            return _Res.CMD_STALL, CTEntry()
        if not cte.valid:
            report(f"no valid CTE for ICID {icid:#x}")
            return _Res.CMD_CONTINUE, cte
        if cte.rdbase >= self.num_processors:
            report(f"CTE of ICID {icid:#x} targets processor {cte.rdbase} >= {self.num_processors}")
            return _Res.CMD_CONTINUE, cte
        return _Res.CMD_CONTINUE_OK, cte

    # ---------------------------------------------------------------- commands

    def _do_process_its_cmd(
        self, devid: int, eventid: int, kind: str, out: list[ItsEffect], report: _Report
    ) -> Core[_Res]:
        """do_process_its_cmd for INT, CLEAR, DISCARD and MSIs (kind "NONE").

        As in QEMU, once the ITE is found the result is CMD_CONTINUE_OK even if the CTE
        lookup fails (even on a memory error), and DISCARD removes the ITE only when the
        CTE lookup succeeded.
        """
        res, ite, dte = yield from self._lookup_ite(devid, eventid, report)
        if res != _Res.CMD_CONTINUE_OK:
            return res
        level = kind not in ("CLEAR", "DISCARD")
        if ite.inttype != ITE_INTTYPE_PHYSICAL:
            report(f"ITE of DeviceID {devid:#x} EventID {eventid:#x} is virtual (table corrupted?)")
            return _Res.CMD_CONTINUE
        # process_its_cmd_phys
        cres, cte = yield from self._lookup_cte(ite.icid, report)
        if cres == _Res.CMD_CONTINUE_OK:
            out.append(SetLpi(cte.rdbase, ite.intid, level))
            if kind == "DISCARD":
                ok = yield from self._update_ite(eventid, dte, ITEntry())
                if not ok:
                    report("memory error writing the ITE")
                    return _Res.CMD_STALL
        elif cres == _Res.CMD_STALL:
            report("ignored: do_process_its_cmd returns CMD_CONTINUE_OK regardless")
        return _Res.CMD_CONTINUE_OK

    def _process_mapti(self, c: cmds.Mapti | cmds.Mapi, report: _Report) -> Core[_Res]:
        """process_mapti (MAPI: ignore_pInt, pINTID = EventID)."""
        devid, eventid, icid = c.DeviceID, c.EventID, c.ICID
        pintid = c.pINTID if isinstance(c, cmds.Mapti) else eventid
        if devid >= self.dt.num_entries:
            report(f"DeviceID {devid:#x} >= {self.dt.num_entries:#x} device table entries")
            return _Res.CMD_CONTINUE
        dte = yield from self._get_dte(devid)
        if dte is None:
            report(f"memory error reading the DTE of DeviceID {devid:#x}")
            return _Res.CMD_STALL
        num_eventids = 1 << (dte.size + 1)
        if icid >= self.ct.num_entries:
            report(f"ICID {icid:#x} >= {self.ct.num_entries:#x} collection table entries")
            return _Res.CMD_CONTINUE
        if not dte.valid:
            report(f"no valid DTE for DeviceID {devid:#x}")
            return _Res.CMD_CONTINUE
        if eventid >= num_eventids:
            report(
                f"EventID {eventid:#x} >= {num_eventids:#x} (DeviceID {devid:#x} Size {dte.size})"
            )
            return _Res.CMD_CONTINUE
        if not LPI_INTID_BASE <= pintid < 1 << QEMU_INTID_BITS:
            report(
                f"pINTID {pintid} is not an LPI ({LPI_INTID_BASE}..{(1 << QEMU_INTID_BITS) - 1})"
            )
            return _Res.CMD_CONTINUE
        ite = ITEntry(True, ITE_INTTYPE_PHYSICAL, pintid, icid, 0, INTID_SPURIOUS)
        ok = yield from self._update_ite(eventid, dte, ite)
        if not ok:
            report("memory error writing the ITE")
            return _Res.CMD_STALL
        return _Res.CMD_CONTINUE_OK

    def _process_mapc(self, c: cmds.Mapc, report: _Report) -> Core[_Res]:
        """process_mapc: RDbase is a processor number; QEMU keeps bits [31:16] of DW2."""
        cte = CTEntry(bool(c.V), c.RDbase & RDBASE_PROCNUM_MASK if c.V else 0)
        if self.ct.num_entries <= c.ICID:
            report(f"ICID {c.ICID:#x} >= {self.ct.num_entries:#x} collection table entries")
            return _Res.CMD_CONTINUE
        if cte.valid and cte.rdbase >= self.num_processors:
            report(f"RDbase {cte.rdbase} >= {self.num_processors} processors")
            return _Res.CMD_CONTINUE
        ok = yield from self._update_entry(self.ct, c.ICID, cte.encode(), "update_cte")
        if not ok:
            report("memory error writing the CTE")
            return _Res.CMD_STALL
        return _Res.CMD_CONTINUE_OK

    def _process_mapd(self, c: cmds.Mapd, report: _Report) -> Core[_Res]:
        """process_mapd: DeviceID range and Size <= GITS_TYPER.ID_bits."""
        dte = DTEntry(bool(c.V), c.Size, c.ITT_addr)
        if c.DeviceID >= self.dt.num_entries:
            report(f"DeviceID {c.DeviceID:#x} >= {self.dt.num_entries:#x} device table entries")
            return _Res.CMD_CONTINUE
        id_bits = GITS_TYPER.get(self.typer, "ID_bits")
        if c.Size > id_bits:
            report(f"Size {c.Size} > GITS_TYPER.ID_bits {id_bits}")
            return _Res.CMD_CONTINUE
        ok = yield from self._update_entry(self.dt, c.DeviceID, dte.encode(), "update_dte")
        if not ok:
            report("memory error writing the DTE")
            return _Res.CMD_STALL
        return _Res.CMD_CONTINUE_OK

    def _process_movall(self, c: cmds.Movall, out: list[ItsEffect], report: _Report) -> _Res:
        """process_movall: both targets must exist; moving to itself is a no-op."""
        rd1, rd2 = c.RDbase1, c.RDbase2
        if rd1 >= self.num_processors:
            report(f"RDbase1 {rd1} >= {self.num_processors} processors")
            return _Res.CMD_CONTINUE
        if rd2 >= self.num_processors:
            report(f"RDbase2 {rd2} >= {self.num_processors} processors")
            return _Res.CMD_CONTINUE
        if rd1 != rd2:
            out.append(MoveAllLpis(rd1, rd2))
        return _Res.CMD_CONTINUE_OK

    def _process_movi(self, c: cmds.Movi, out: list[ItsEffect], report: _Report) -> Core[_Res]:
        """process_movi: move the pending state if the target changes, then rewrite the
        ITE with the new ICID (other ITE fields as read)."""
        res, ite, dte = yield from self._lookup_ite(c.DeviceID, c.EventID, report)
        if res != _Res.CMD_CONTINUE_OK:
            return res
        if ite.inttype != ITE_INTTYPE_PHYSICAL:
            report("ITE is not for a physical interrupt")
            return _Res.CMD_CONTINUE
        res, old = yield from self._lookup_cte(ite.icid, report)
        if res != _Res.CMD_CONTINUE_OK:
            return res
        res, new = yield from self._lookup_cte(c.ICID, report)
        if res != _Res.CMD_CONTINUE_OK:
            return res
        if old.rdbase != new.rdbase:
            out.append(MoveLpi(old.rdbase, new.rdbase, ite.intid))
        moved = ITEntry(ite.valid, ite.inttype, ite.intid, c.ICID, ite.vpeid, ite.doorbell)
        ok = yield from self._update_ite(c.EventID, dte, moved)
        if not ok:
            report("memory error writing the ITE")
            return _Res.CMD_STALL
        return _Res.CMD_CONTINUE_OK

    def _process_inv(self, c: cmds.Inv, out: list[ItsEffect], report: _Report) -> Core[_Res]:
        """process_inv: the redistributor of the ITE's collection re-reads the LPI's config."""
        res, ite, _ = yield from self._lookup_ite(c.DeviceID, c.EventID, report)
        if res != _Res.CMD_CONTINUE_OK:
            return res
        if ite.inttype != ITE_INTTYPE_PHYSICAL:
            report("ITE is virtual (table corrupted?)")
            return _Res.CMD_CONTINUE
        res, cte = yield from self._lookup_cte(ite.icid, report)
        if res != _Res.CMD_CONTINUE_OK:
            return res
        out.append(InvLpi(cte.rdbase, ite.intid))
        return _Res.CMD_CONTINUE_OK

    def _execute(self, c: cmds.ItsCommand, out: list[ItsEffect], report: _Report) -> Core[_Res]:
        """The switch of process_cmdq."""
        if isinstance(c, cmds.Int):
            return (yield from self._do_process_its_cmd(c.DeviceID, c.EventID, "INT", out, report))
        if isinstance(c, cmds.Clear):
            return (
                yield from self._do_process_its_cmd(c.DeviceID, c.EventID, "CLEAR", out, report)
            )
        if isinstance(c, cmds.Discard):
            return (
                yield from self._do_process_its_cmd(c.DeviceID, c.EventID, "DISCARD", out, report)
            )
        if isinstance(c, cmds.Sync):
            # Always in sync: nothing to do in QEMU.
            if c.RDbase < self.num_processors:
                out.append(Sync(c.RDbase))
            return _Res.CMD_CONTINUE_OK
        if isinstance(c, cmds.Mapd):
            return (yield from self._process_mapd(c, report))
        if isinstance(c, cmds.Mapc):
            return (yield from self._process_mapc(c, report))
        if isinstance(c, cmds.Mapti | cmds.Mapi):
            return (yield from self._process_mapti(c, report))
        if isinstance(c, cmds.Inv):
            return (yield from self._process_inv(c, out, report))
        if isinstance(c, cmds.Invall):
            # QEMU ignores the ICID: every redistributor recomputes its LPIs.
            out.extend(InvAllLpis(p) for p in range(self.num_processors))
            return _Res.CMD_CONTINUE_OK
        if isinstance(c, cmds.Movi):
            return (yield from self._process_movi(c, out, report))
        if isinstance(c, cmds.Movall):
            return self._process_movall(c, out, report)
        if c.number in cmds.GICV4_COMMAND_NAMES:
            report("GICv4 command ignored: GITS_TYPER.Virtual = 0")
            return _Res.CMD_CONTINUE
        report(f"unknown command {c.number:#04x} ignored")
        return _Res.CMD_CONTINUE_OK

    def _process_cmdq(self) -> Core[list[ItsEffect]]:
        """process_cmdq: run commands from CREADR up to CWRITER, advancing CREADR after
        each that does not stall; a stall sets CREADR.Stalled and stops."""
        out: list[ItsEffect] = []
        if not self.enabled:
            return out
        wr = GITS_CWRITER.get(self.cwriter, "Offset")
        rd = GITS_CREADR.get(self.creadr, "Offset")
        n = self.cq.num_entries
        if wr >= n:
            out.append(CommandError(wr * 32, "", f"CWRITER offset {wr * 32:#x} outside the queue"))
            return out
        if rd >= n:
            out.append(CommandError(rd * 32, "", f"CREADR offset {rd * 32:#x} outside the queue"))
            return out
        while wr != rd:
            offset = rd * GITS_CMDQ_ENTRY_SIZE
            raw = yield MemRead(self.cq.base_addr + offset, GITS_CMDQ_ENTRY_SIZE, "process_cmdq")
            if not isinstance(raw, bytes | bytearray) or len(raw) != GITS_CMDQ_ENTRY_SIZE:
                self.creadr |= _GITS_CREADR_STALLED
                out.append(
                    CommandError(
                        offset,
                        "",
                        f"could not read command at {self.cq.base_addr + offset:#x}",
                        stalled=True,
                    )
                )
                break
            c = cmds.decode(bytes(raw))
            reasons: list[str] = []
            res = yield from self._execute(c, out, reasons.append)
            if res != _Res.CMD_STALL:
                for reason in reasons:
                    out.append(CommandError(offset, c.name, reason))
                rd = (rd + 1) % n
                self.creadr = GITS_CREADR.replace(self.creadr, Offset=rd)
            else:
                self.creadr |= _GITS_CREADR_STALLED
                out.append(CommandError(offset, c.name, "; ".join(reasons), stalled=True))
                break
        return out


__all__ = [
    "ACTIONS",
    "QEMU_CTE",
    "QEMU_DTE",
    "QEMU_GITS_TYPER",
    "QEMU_ITE_H",
    "QEMU_ITE_L",
    "BadAccess",
    "CTEntry",
    "CommandError",
    "DTEntry",
    "ITEntry",
    "InvAllLpis",
    "InvLpi",
    "Its",
    "ItsAction",
    "ItsEffect",
    "ItsEvent",
    "MoveAllLpis",
    "MoveLpi",
    "MsiDropped",
    "SetLpi",
    "Sync",
    "actions",
]
