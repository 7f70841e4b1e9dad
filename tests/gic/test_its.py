"""The QEMU 7.2 ITS model driven through its memory port with a local RAM.

Expected values come from the fact sheet (E1-E7), QEMU's reset values and QEMU's
in-memory entry layouts (gicv3_internal.h: DTE Valid [0] Size [5:1] ITT_addr>>8 [49:6];
CTE Valid [0] RDbase [16:1]; ITE_L Valid [0] IntType [1] INTID [25:2] ICID [47:32],
ITE_H Doorbell [23:0]), worked out by hand below.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gic import its_commands as c
from gic.its import (
    QEMU_GITS_TYPER,
    BadAccess,
    CommandError,
    InvAllLpis,
    InvLpi,
    Its,
    MoveAllLpis,
    MoveLpi,
    MsiDropped,
    SetLpi,
    Sync,
    actions,
)
from gic.port import MemRead, MemWrite, Ram, run_sync

ITS_BASE = 0x08080000
GITS_CTLR = 0x0000
GITS_IIDR = 0x0004
GITS_TYPER = 0x0008
GITS_CBASER = 0x0080
GITS_CWRITER = 0x0088
GITS_CREADR = 0x0090
GITS_BASER0 = 0x0100
GITS_BASER1 = 0x0108
GITS_TRANSLATER = 0x10040

CMDQ = 0x80C00000
CBASER_E6 = 0xB8000000_80C0040F  # E6: 64 KiB queue at 0x80C00000 (16 pages, 2048 entries)
DT = 0x80D00000
CT = 0x80E00000
# Linux its_setup_baser, 64 KiB pages, one page, flat: Valid | RaWaWb << 59 | Type | Entry_Size
# (read-only, as QEMU resets them) | PA | InnerShareable << 10 | Page_Size 64K << 8.
BASER0_LINUX = 0xB907_0000_80D0_0600
BASER1_LINUX = 0xBC07_0000_80E0_0600
ITT = 0x80B00000


class Bus:
    """Answers the ITS's memory requests from a RAM and records them."""

    def __init__(self, ram: Ram | None = None) -> None:
        self.ram = ram or Ram(size=1 << 52)
        self.log: list[Any] = []

    def answer(self, req: Any) -> Any:
        self.log.append(req)
        try:
            return self.ram.answer(req)
        except ValueError as e:  # no RAM there: a memory transaction error
            return e


class Rig:
    """An ITS, its RAM, and a software-side command queue writer like Linux's."""

    def __init__(self, num_processors: int = 4, ram: Ram | None = None, **kw: Any) -> None:
        self.its = Its(ITS_BASE, num_processors=num_processors, **kw)
        self.bus = Bus(ram)
        self.next = 0  # byte offset of the next command (software's write pointer)

    def read(self, offset: int, size: int = 4) -> int:
        return run_sync(self.its.mmio_read(offset, size), self.bus.answer)

    def write(self, offset: int, size: int, value: int, devid: int = 0) -> list[Any]:
        return run_sync(self.its.mmio_write(offset, size, value, devid), self.bus.answer)

    def msi(self, devid: int, eventid: int) -> list[Any]:
        return run_sync(self.its.translate(devid, eventid), self.bus.answer)

    def linux_probe(self) -> None:
        """its_probe_one / its_alloc_tables / its_enable, as Linux v5.15 programs them."""
        assert self.write(GITS_BASER0, 8, BASER0_LINUX) == []
        assert self.write(GITS_BASER1, 8, BASER1_LINUX) == []
        assert self.write(GITS_CBASER, 8, CBASER_E6) == []
        assert self.write(GITS_CWRITER, 8, 0) == []
        ctlr = self.read(GITS_CTLR)
        assert self.write(GITS_CTLR, 4, ctlr | 1) == []

    def queue(self, *commands: c.ItsCommand | bytes) -> None:
        for cmd in commands:
            raw = cmd if isinstance(cmd, bytes) else cmd.encode()
            self.bus.ram.write(CMDQ + self.next, raw)
            self.next = (self.next + 32) % 0x10000

    def send(self, *commands: c.ItsCommand | bytes) -> list[Any]:
        self.queue(*commands)
        return self.write(GITS_CWRITER, 8, self.next)

    def creadr(self) -> int:
        return self.read(GITS_CREADR, 8)


def mapped_rig() -> Rig:
    """E2 MAPD, E3 MAPC (PTA = 0, processor 2), E1 MAPTI."""
    rig = Rig()
    rig.linux_probe()
    assert (
        rig.send(
            c.Mapd(DeviceID=0x10, Size=4, ITT_addr=ITT, V=1),
            c.Mapc(ICID=2, RDbase=2, V=1),
            c.Mapti(DeviceID=0x10, EventID=3, pINTID=8195, ICID=2),
        )
        == []
    )
    return rig


def snapshot(rig: Rig) -> list[int]:
    offs = [GITS_CTLR, GITS_CBASER, GITS_CWRITER, GITS_CREADR] + [0x100 + 8 * n for n in range(8)]
    return [rig.read(o, 8 if o else 4) for o in offs]


# --- register frame ------------------------------------------------------------------------


def test_reset_values() -> None:
    rig = Rig()
    assert rig.read(GITS_CTLR) == 0x80000000  # Quiescent
    assert rig.read(GITS_IIDR) == 0x43B
    assert rig.read(GITS_TYPER, 8) == 0x1F0001EFB1 == QEMU_GITS_TYPER  # E7
    assert rig.read(GITS_TYPER) == 0x0001EFB1
    assert rig.read(GITS_TYPER + 4) == 0x1F
    assert rig.read(GITS_BASER0, 8) == 0x0107000000000200  # E7 (QEMU)
    assert rig.read(GITS_BASER1, 8) == 0x0407000000000200
    for n in range(2, 8):
        assert rig.read(0x100 + 8 * n, 8) == 0
    assert rig.read(GITS_CBASER, 8) == rig.read(GITS_CWRITER, 8) == rig.read(GITS_CREADR, 8) == 0
    assert rig.read(0xFFE8) == 0x3B  # PIDR2, E7: ArchRev 3
    assert rig.read(0xFFE0) == 0x94  # PIDR0 of QEMU's ITS
    assert [rig.read(0xFFF0 + 4 * i) for i in range(4)] == [0x0D, 0xF0, 0x05, 0xB1]
    assert rig.bus.log == []


@pytest.mark.parametrize("offset", [0x0010, 0x0014, 0x0018, 0x0040, 0x0098, 0x0140, 0x0200, 0x8000])
def test_reserved_offsets_raz_wi(offset: int) -> None:
    rig = Rig()
    before = snapshot(rig)
    assert rig.read(offset) == 0
    assert rig.read(offset & ~7, 8) == 0
    effects = rig.write(offset, 4, 0xFFFFFFFF)
    assert effects == [BadAccess(offset, 4, True, "reserved offset: RAZ/WI")]
    assert rig.read(offset) == 0
    assert snapshot(rig) == before


def test_bad_sizes_and_alignment_raz_wi() -> None:
    rig = Rig()
    before = snapshot(rig)
    assert rig.read(GITS_CTLR, 8) == 0  # its_readll has no GITS_CTLR
    assert rig.read(GITS_CTLR, 2) == 0
    assert rig.read(GITS_CTLR, 1) == 0
    assert rig.read(GITS_BASER0 + 2, 4) == 0
    assert rig.read(0x20000, 4) == 0
    assert rig.read(-4, 4) == 0
    assert isinstance(rig.write(GITS_CTLR, 1, 1)[0], BadAccess)
    assert isinstance(rig.write(GITS_CTLR, 8, 1)[0], BadAccess)
    assert isinstance(rig.write(GITS_BASER0 + 2, 4, 1)[0], BadAccess)
    assert isinstance(rig.write(0x30000, 4, 1)[0], BadAccess)
    assert isinstance(rig.write(GITS_CWRITER, 4, 1 << 32)[0], BadAccess)
    assert snapshot(rig) == before


def test_ro_registers_ignore_writes() -> None:
    rig = Rig()
    rig.write(GITS_TYPER, 8, 0)
    rig.write(GITS_TYPER, 4, 0)
    rig.write(GITS_IIDR, 4, 0)
    rig.write(0xFFE8, 4, 0)
    assert rig.read(GITS_TYPER, 8) == 0x1F0001EFB1
    assert rig.read(GITS_IIDR) == 0x43B
    assert rig.read(0xFFE8) == 0x3B


def test_baser_type_and_entry_size_are_read_only() -> None:
    rig = Rig()
    rig.write(GITS_BASER0, 8, 0xFFFFFFFF_FFFFFFFF)
    # ~RO mask 0xF8E0FFFFFFFFFFFF | reset RO bits 0x0107000000000000
    assert rig.read(GITS_BASER0, 8) == 0xF9E7FFFF_FFFFFFFF
    rig.write(GITS_BASER1, 8, 0)
    assert rig.read(GITS_BASER1, 8) == 0x0407000000000000


def test_baser_as_two_32bit_halves() -> None:
    rig = Rig()
    rig.write(GITS_BASER0, 4, 0x80D00600)
    assert rig.read(GITS_BASER0, 8) == 0x0107000080D00600
    rig.write(GITS_BASER0 + 4, 4, 0xB9070000)
    assert rig.read(GITS_BASER0, 8) == BASER0_LINUX
    assert rig.read(GITS_BASER0) == 0x80D00600
    assert rig.read(GITS_BASER0 + 4) == 0xB9070000
    rig.write(GITS_BASER0 + 4, 4, 0)  # the high half keeps Type and Entry_Size
    assert rig.read(GITS_BASER0, 8) == 0x0107000080D00600


def test_unimplemented_basers_are_raz_wi() -> None:
    rig = Rig()
    for n in range(2, 8):
        rig.write(0x100 + 8 * n, 8, 0xB907000080D00600)
        rig.write(0x100 + 8 * n + 4, 4, 0xFFFFFFFF)
        assert rig.read(0x100 + 8 * n, 8) == 0


def test_cbaser_halves_and_read_back() -> None:
    rig = Rig()
    rig.write(GITS_CBASER, 4, 0x80C0040F)
    rig.write(GITS_CBASER + 4, 4, 0xB8000000)
    assert rig.read(GITS_CBASER, 8) == CBASER_E6


def test_registers_frozen_while_enabled() -> None:
    rig = Rig()
    rig.linux_probe()
    assert rig.read(GITS_CTLR) == 0x80000001
    rig.write(GITS_BASER0, 8, 0x8107000090000200)
    rig.write(GITS_CBASER, 8, 0x8000000090000000)
    rig.write(GITS_CBASER + 4, 4, 0)
    assert rig.read(GITS_BASER0, 8) == BASER0_LINUX
    assert rig.read(GITS_CBASER, 8) == CBASER_E6


def test_cbaser_write_resets_creadr_and_stall() -> None:
    rig = mapped_rig()
    assert rig.creadr() == 0x60
    rig.write(GITS_CTLR, 4, 0)
    assert rig.read(GITS_CTLR) == 0x80000000
    rig.write(GITS_CBASER, 4, 0x80C0040F)  # one 32-bit half is enough
    assert rig.creadr() == 0
    assert rig.read(GITS_CWRITER, 8) == 0x60  # QEMU keeps CWRITER


def test_creadr_writable_when_gicd_ctlr_ds() -> None:
    rig = Rig()
    rig.write(GITS_CREADR, 8, 0x61)  # Stalled is not writable
    assert rig.creadr() == 0x60
    rig.write(GITS_CREADR, 4, 0x41)
    assert rig.creadr() == 0x40
    secure = Rig(gicd_ctlr_ds=False)
    assert isinstance(secure.write(GITS_CREADR, 8, 0x60)[0], BadAccess)
    assert secure.creadr() == 0


def test_cwriter_retry_bit_reads_zero_and_high_half_does_not_process() -> None:
    rig = Rig()
    rig.linux_probe()
    rig.queue(c.Mapc(ICID=0, RDbase=0, V=1))
    assert rig.write(GITS_CWRITER + 4, 4, 0) == []
    assert rig.creadr() == 0
    rig.write(GITS_CWRITER, 4, 0x21)
    assert rig.read(GITS_CWRITER, 8) == 0x20
    assert rig.creadr() == 0x20


def test_constructor_rejects_what_is_not_modelled() -> None:
    with pytest.raises(ValueError, match="PTA"):
        Its(num_processors=1, typer=QEMU_GITS_TYPER | 1 << 19)
    with pytest.raises(ValueError, match="ITT_entry_size"):
        Its(num_processors=1, typer=0x1EF71)  # KVM's 8-byte ITE (E7)
    with pytest.raises(ValueError, match="num_processors"):
        Its(num_processors=0)


# --- commands and in-memory tables -----------------------------------------------------------


def test_linux_sequence_writes_exact_table_bytes() -> None:
    rig = mapped_rig()
    ram = rig.bus.ram
    assert rig.creadr() == 0x60  # E6: after three commands
    # DTE of DeviceID 0x10: Valid | Size 4 << 1 | (0x80B00000 >> 8) << 6 = 0x202C0009
    assert ram.read(DT + 0x10 * 8, 8) == bytes.fromhex("09002c2000000000")
    # CTE of ICID 2: Valid | processor 2 << 1 = 5
    assert ram.read(CT + 2 * 8, 8) == bytes.fromhex("0500000000000000")
    # ITE of EventID 3 at ITT + 3 * 12: Valid | IntType physical << 1 | 8195 << 2 | ICID 2 << 32,
    # then Doorbell 1023 (QEMU writes INTID_SPURIOUS for physical ITEs)
    assert ram.read(ITT + 36, 12) == bytes.fromhex("0f80000002000000ff030000")
    # nothing else written in the tables
    assert ram.read(DT, 0x80) == bytes(0x80)
    assert ram.read(CT, 0x10) == bytes(0x10)
    assert ram.read(ITT, 36) == bytes(36)


def test_memory_requests_name_the_qemu_function() -> None:
    rig = Rig()
    rig.linux_probe()
    rig.bus.log.clear()
    rig.send(
        c.Mapd(DeviceID=0x10, Size=4, ITT_addr=ITT, V=1),
        c.Mapc(ICID=2, RDbase=2, V=1),
        c.Mapti(DeviceID=0x10, EventID=3, pINTID=8195, ICID=2),
    )
    assert rig.bus.log == [
        MemRead(CMDQ, 32, "process_cmdq"),
        MemWrite(DT + 0x80, bytes.fromhex("09002c2000000000"), "update_dte"),
        MemRead(CMDQ + 0x20, 32, "process_cmdq"),
        MemWrite(CT + 0x10, bytes.fromhex("0500000000000000"), "update_cte"),
        MemRead(CMDQ + 0x40, 32, "process_cmdq"),
        MemRead(DT + 0x80, 8, "get_dte"),
        MemWrite(ITT + 36, bytes.fromhex("0f80000002000000"), "update_ite"),
        MemWrite(ITT + 44, bytes.fromhex("ff030000"), "update_ite"),
    ]
    rig.bus.log.clear()
    assert rig.msi(0x10, 3) == [SetLpi(2, 8195, True)]
    assert rig.bus.log == [
        MemRead(DT + 0x80, 8, "get_dte"),
        MemRead(ITT + 36, 8, "get_ite"),
        MemRead(ITT + 44, 4, "get_ite"),
        MemRead(CT + 0x10, 8, "get_cte"),
    ]


def test_int_clear_inv_sync() -> None:
    rig = mapped_rig()
    assert rig.send(c.Int(DeviceID=0x10, EventID=3)) == [SetLpi(2, 8195, True)]
    assert rig.send(c.Clear(DeviceID=0x10, EventID=3)) == [SetLpi(2, 8195, False)]
    assert rig.send(c.Inv(DeviceID=0x10, EventID=3)) == [InvLpi(2, 8195)]
    assert rig.send(c.Sync(RDbase=2)) == [Sync(2)]
    assert rig.send(c.Sync(RDbase=7)) == []  # no processor 7; QEMU does nothing either way
    assert rig.creadr() == 0x100  # 3 + 5 commands


def test_invall_touches_every_redistributor() -> None:
    # QEMU's INVALL ignores the ICID and recomputes LPIs on every CPU.
    rig = mapped_rig()
    assert rig.send(c.Invall(ICID=2)) == [InvAllLpis(p) for p in range(4)]
    assert rig.send(c.Invall(ICID=0xFFFF)) == [InvAllLpis(p) for p in range(4)]


def test_mapi_uses_eventid_as_pintid() -> None:
    rig = Rig()
    rig.linux_probe()
    rig.send(
        c.Mapd(DeviceID=1, Size=15, ITT_addr=ITT, V=1),
        c.Mapc(ICID=0, RDbase=1, V=1),
        c.Mapi(DeviceID=1, EventID=8200, ICID=0),
    )
    # 8200 << 2 = 0x8020; | Valid | IntType = 0x8023
    assert rig.bus.ram.read(ITT + 8200 * 12, 12) == bytes.fromhex("2380000000000000ff030000")
    assert rig.msi(1, 8200) == [SetLpi(1, 8200, True)]


def test_movi_moves_pending_state_and_rewrites_ite() -> None:
    rig = mapped_rig()
    rig.send(c.Mapc(ICID=5, RDbase=3, V=1))
    assert rig.send(c.Movi(DeviceID=0x10, EventID=3, ICID=5)) == [MoveLpi(2, 3, 8195)]
    assert rig.bus.ram.read(ITT + 36, 12) == bytes.fromhex("0f80000005000000ff030000")
    assert rig.msi(0x10, 3) == [SetLpi(3, 8195, True)]
    # same target processor: only the ITE changes
    rig.send(c.Mapc(ICID=6, RDbase=3, V=1))
    assert rig.send(c.Movi(DeviceID=0x10, EventID=3, ICID=6)) == []
    assert rig.bus.ram.read(ITT + 36, 8) == bytes.fromhex("0f80000006000000")


def test_movall() -> None:
    rig = mapped_rig()
    assert rig.send(c.Movall(RDbase1=1, RDbase2=3)) == [MoveAllLpis(1, 3)]
    assert rig.send(c.Movall(RDbase1=2, RDbase2=2)) == []
    errs = rig.send(c.Movall(RDbase1=1, RDbase2=4))
    assert errs == [CommandError(0xA0, "MOVALL", "RDbase2 4 >= 4 processors")]


def test_discard_clears_and_unmaps() -> None:
    rig = mapped_rig()
    assert rig.send(c.Discard(DeviceID=0x10, EventID=3)) == [SetLpi(2, 8195, False)]
    assert rig.bus.ram.read(ITT + 36, 12) == bytes(12)
    assert rig.msi(0x10, 3) == [MsiDropped(0x10, 3, "no valid ITE for DeviceID 0x10 EventID 0x3")]


def test_unmap_device_and_collection() -> None:
    rig = mapped_rig()
    rig.send(c.Mapc(ICID=2, RDbase=0xFFFF, V=0))  # RDbase not checked when V = 0
    assert rig.bus.ram.read(CT + 16, 8) == bytes(8)
    assert rig.msi(0x10, 3) == [MsiDropped(0x10, 3, "no valid CTE for ICID 0x2")]
    rig.send(c.Mapd(DeviceID=0x10, Size=4, ITT_addr=ITT, V=0))
    assert rig.bus.ram.read(DT + 0x80, 8) == bytes(8)
    assert rig.msi(0x10, 3) == [MsiDropped(0x10, 3, "no valid DTE for DeviceID 0x10")]


# --- MSIs --------------------------------------------------------------------------------------


def test_msi_through_gits_translater() -> None:
    rig = mapped_rig()
    assert rig.write(GITS_TRANSLATER, 4, 3, devid=0x10) == [SetLpi(2, 8195, True)]
    assert rig.write(GITS_TRANSLATER, 2, 3, devid=0x10) == [SetLpi(2, 8195, True)]
    assert rig.msi(0x10, 3) == [SetLpi(2, 8195, True)]
    assert rig.read(GITS_TRANSLATER) == 0  # write-only
    assert rig.read(0x10000) == 0
    assert rig.write(GITS_TRANSLATER + 4, 4, 3, devid=0x10) == [
        BadAccess(GITS_TRANSLATER + 4, 4, True, "translation frame: RES0 offset, WI")
    ]


@pytest.mark.parametrize(
    "devid,eventid,reason",
    [
        (0x11, 3, "no valid DTE for DeviceID 0x11"),
        (0x10, 4, "no valid ITE for DeviceID 0x10 EventID 0x4"),
        (0x10, 32, "EventID 0x20 >= 0x20 (DeviceID 0x10 Size 4)"),
        (0x10, 0xFFFFFFFF, "EventID 0xffffffff >= 0x20 (DeviceID 0x10 Size 4)"),
        (0x10000, 3, "DeviceID 0x10000 >= 0x2000 device table entries"),
    ],
)
def test_msi_dropped_without_effect(devid: int, eventid: int, reason: str) -> None:
    rig = mapped_rig()
    effects = rig.msi(devid, eventid)
    assert actions(effects) == []
    assert effects == [MsiDropped(devid, eventid, reason)]


def test_msi_dropped_while_disabled() -> None:
    rig = mapped_rig()
    rig.write(GITS_CTLR, 4, 0)
    assert rig.msi(0x10, 3) == [MsiDropped(0x10, 3, "GITS_CTLR.Enabled = 0")]
    assert actions(rig.write(GITS_TRANSLATER, 4, 3, devid=0x10)) == []
    rig.write(GITS_CTLR, 4, 1)
    assert rig.msi(0x10, 3) == [SetLpi(2, 8195, True)]


def test_msi_to_a_collection_beyond_the_cpus_is_dropped() -> None:
    rig = Rig(num_processors=2)
    rig.linux_probe()
    rig.bus.ram.write(CT + 8, (1 | 5 << 1).to_bytes(8, "little"))  # a CTE naming CPU 5
    rig.send(
        c.Mapd(DeviceID=0, Size=0, ITT_addr=ITT, V=1),
        c.Mapti(DeviceID=0, EventID=0, pINTID=9000, ICID=1),
    )
    assert rig.msi(0, 0) == [MsiDropped(0, 0, "CTE of ICID 0x1 targets processor 5 >= 2")]


# --- table layouts -------------------------------------------------------------------------------


def test_indirect_device_table_as_in_the_real_boot() -> None:
    # native-dt-noefi.log: "allocated 8192 Devices @425a0000 (indirect, esz 8, psz 64K, shr 1)"
    rig = Rig()
    ram = rig.bus.ram
    rig.write(GITS_BASER0, 8, 0xF907_0000_425A_0600)  # Valid | Indirect | RaWaWb | 0x425a0000
    rig.write(GITS_BASER1, 8, 0xBC07_0000_425B_0600)
    rig.write(GITS_CBASER, 8, CBASER_E6)
    rig.write(GITS_CTLR, 4, 1)
    # DeviceID 0x10008 is in level-2 page 8 (8192 entries per 64 KiB page), which Linux
    # has not allocated yet: MAPD is discarded silently, as in QEMU update_dte.
    assert rig.send(c.Mapd(DeviceID=0x2008, Size=1, ITT_addr=ITT, V=1)) == []
    assert rig.creadr() == 0x20
    ram.write(0x425A0000 + 8, (0x8000000042600000).to_bytes(8, "little"))  # L1[1] valid
    assert rig.send(c.Mapd(DeviceID=0x2008, Size=1, ITT_addr=ITT, V=1)) == []
    # DTE at L2 page + (0x2008 % 8192) * 8: Valid | Size 1 << 1 | 0x80B000 << 6 = 0x202C0003
    assert ram.read(0x42600000 + 0x40, 8) == bytes.fromhex("03002c2000000000")
    rig.send(
        c.Mapc(ICID=0, RDbase=0, V=1), c.Mapti(DeviceID=0x2008, EventID=1, pINTID=8192, ICID=0)
    )
    assert rig.msi(0x2008, 1) == [SetLpi(0, 8192, True)]
    assert rig.msi(0x0008, 1) == [MsiDropped(8, 1, "no valid DTE for DeviceID 0x8")]


def test_baser_64k_pages_reach_pa_51_48() -> None:
    # E7: table PA 0x000A000080000000 with 64 KiB pages gives address bits 0x8000A000.
    rig = Rig()
    rig.write(GITS_BASER1, 8, 0x8407_0000_8000_A200)
    rig.write(GITS_BASER0, 8, BASER0_LINUX)
    rig.write(GITS_CBASER, 8, CBASER_E6)
    rig.write(GITS_CTLR, 4, 1)
    rig.send(c.Mapc(ICID=3, RDbase=1, V=1))
    assert rig.bus.ram.read(0x000A000080000000 + 24, 8) == bytes.fromhex("0300000000000000")


def test_4k_pages_bound_the_table() -> None:
    # one 4 KiB page of 8-byte entries = 512 devices
    rig = Rig()
    rig.write(GITS_BASER0, 8, 0x8107_0000_80D0_0000)
    rig.write(GITS_BASER1, 8, BASER1_LINUX)
    rig.write(GITS_CBASER, 8, CBASER_E6)
    rig.write(GITS_CTLR, 4, 1)
    assert rig.send(c.Mapd(DeviceID=511, Size=0, ITT_addr=ITT, V=1)) == []
    assert rig.send(c.Mapd(DeviceID=512, Size=0, ITT_addr=ITT, V=1)) == [
        CommandError(0x20, "MAPD", "DeviceID 0x200 >= 0x200 device table entries")
    ]


# --- errors and CREADR ---------------------------------------------------------------------------


def test_creadr_advances_over_parameter_errors() -> None:
    rig = mapped_rig()
    bad = [
        c.Mapti(DeviceID=0x20, EventID=0, pINTID=8192, ICID=2),  # unmapped device
        bytes([0xFF]) + bytes(31),  # garbage command number
        bytes([0x2A]) + bytes(31),  # VMAPTI: GICv4, not on this ITS
        c.Mapd(DeviceID=0x10000, Size=4, ITT_addr=ITT, V=1),  # beyond Devbits (16 bits)
        c.Mapd(DeviceID=0x11, Size=16, ITT_addr=ITT, V=1),  # Size > ID_bits 15
        c.Mapc(ICID=3, RDbase=4, V=1),  # only processors 0..3
        c.Mapc(ICID=0xFFFF, RDbase=0, V=1),  # 16 CIDbits, but one 64 KiB page = 8192 CTEs
        c.Mapti(DeviceID=0x10, EventID=4, pINTID=8191, ICID=2),  # not an LPI
        c.Mapti(DeviceID=0x10, EventID=32, pINTID=8196, ICID=2),  # EventID beyond Size 4
        c.Mapti(DeviceID=0x10, EventID=4, pINTID=1 << 16, ICID=2),  # beyond 16 INTID bits
        c.Int(DeviceID=0x10, EventID=5),  # no ITE
        c.Mapd(DeviceID=0x11, Size=15, ITT_addr=ITT + 0x1000, V=1),  # fine
    ]
    effects = rig.send(*bad)
    assert rig.creadr() == 0x60 + 32 * len(bad)  # every one advanced CREADR, none stalled
    assert effects == [
        CommandError(0x60, "MAPTI", "no valid DTE for DeviceID 0x20"),
        CommandError(0x80, "UNKNOWN_0xff", "unknown command 0xff ignored"),
        CommandError(0xA0, "VMAPTI", "GICv4 command ignored: GITS_TYPER.Virtual = 0"),
        CommandError(0xC0, "MAPD", "DeviceID 0x10000 >= 0x2000 device table entries"),
        CommandError(0xE0, "MAPD", "Size 16 > GITS_TYPER.ID_bits 15"),
        CommandError(0x100, "MAPC", "RDbase 4 >= 4 processors"),
        CommandError(0x120, "MAPC", "ICID 0xffff >= 0x2000 collection table entries"),
        CommandError(0x140, "MAPTI", "pINTID 8191 is not an LPI (8192..65535)"),
        CommandError(0x160, "MAPTI", "EventID 0x20 >= 0x20 (DeviceID 0x10 Size 4)"),
        CommandError(0x180, "MAPTI", "pINTID 65536 is not an LPI (8192..65535)"),
        CommandError(0x1A0, "INT", "no valid ITE for DeviceID 0x10 EventID 0x5"),
    ]
    assert not rig.its.stalled
    # the mapping that was there is untouched
    assert rig.msi(0x10, 3) == [SetLpi(2, 8195, True)]


def test_memory_error_stalls_and_cwriter_retries() -> None:
    # RAM ends at 4 GiB; the device table is put beyond it.
    rig = Rig(ram=Ram(size=1 << 32))
    rig.write(GITS_BASER0, 8, 0x8107_0001_0000_0200 | 0xB800000000000000)
    rig.write(GITS_BASER1, 8, BASER1_LINUX)
    rig.write(GITS_CBASER, 8, CBASER_E6)
    rig.write(GITS_CTLR, 4, 1)
    effects = rig.send(c.Mapc(ICID=1, RDbase=1, V=1), c.Mapd(DeviceID=1, Size=0, ITT_addr=ITT, V=1))
    assert effects == [CommandError(0x20, "MAPD", "memory error writing the DTE", stalled=True)]
    assert rig.creadr() == 0x21  # Offset stays on MAPD, Stalled = 1
    assert rig.its.stalled
    rig.bus.log.clear()
    effects = rig.write(GITS_CWRITER, 8, 0x40)  # a CWRITER write retries from CREADR
    assert effects[-1].stalled
    assert rig.bus.log[0] == MemRead(CMDQ + 0x20, 32, "process_cmdq")
    assert rig.creadr() == 0x21
    rig.write(GITS_CTLR, 4, 0)
    rig.write(GITS_CBASER, 8, CBASER_E6)
    assert rig.creadr() == 0


def test_itt_beyond_ram_stalls_mapti_and_drops_msi() -> None:
    rig = mapped_rig()
    rig.bus.ram.size = 1 << 32
    rig.send(c.Mapd(DeviceID=0x11, Size=4, ITT_addr=1 << 32, V=1))  # the DTE write is fine
    effects = rig.send(c.Mapti(DeviceID=0x11, EventID=0, pINTID=8200, ICID=2))
    assert effects == [CommandError(0x80, "MAPTI", "memory error writing the ITE", stalled=True)]
    assert rig.creadr() == 0x81
    assert rig.msi(0x11, 0) == [
        MsiDropped(
            0x11,
            0,
            "memory error reading the ITE of DeviceID 0x11 EventID 0x0; "
            "memory error: QEMU answers the write with MEMTX_ERROR",
        )
    ]


def test_queue_outside_ram_stalls() -> None:
    rig = Rig(ram=Ram(size=1 << 31))
    rig.write(GITS_BASER0, 8, 0xB907_0000_1000_0600)
    rig.write(GITS_BASER1, 8, 0xBC07_0000_1001_0600)
    rig.write(GITS_CBASER, 8, CBASER_E6)  # 0x80C00000 is beyond 2 GiB
    rig.write(GITS_CTLR, 4, 1)
    effects = rig.write(GITS_CWRITER, 8, 0x20)
    assert effects == [CommandError(0, "", "could not read command at 0x80c00000", stalled=True)]
    assert rig.creadr() == 1


def test_cwriter_beyond_the_queue_does_nothing() -> None:
    rig = Rig()
    rig.write(GITS_BASER0, 8, BASER0_LINUX)
    rig.write(GITS_BASER1, 8, BASER1_LINUX)
    rig.write(GITS_CBASER, 8, 0x8000000080C00000)  # one 4 KiB page: 128 commands
    rig.write(GITS_CTLR, 4, 1)
    rig.bus.log.clear()
    assert rig.write(GITS_CWRITER, 8, 0x1000) == [
        CommandError(0x1000, "", "CWRITER offset 0x1000 outside the queue")
    ]
    assert rig.bus.log == []
    assert rig.creadr() == 0


def test_queue_wraps_around() -> None:
    rig = Rig()
    rig.write(GITS_BASER0, 8, BASER0_LINUX)
    rig.write(GITS_BASER1, 8, BASER1_LINUX)
    rig.write(GITS_CBASER, 8, 0x8000000080C00000)  # 128 commands
    rig.write(GITS_CREADR, 8, 127 * 32)  # GICD_CTLR.DS = 1 lets software move CREADR
    rig.write(GITS_CWRITER, 8, 127 * 32)
    assert rig.write(GITS_CTLR, 4, 1) == []  # empty queue: CREADR == CWRITER
    rig.bus.ram.write(CMDQ + 127 * 32, c.Mapc(ICID=1, RDbase=1, V=1).encode())
    rig.bus.ram.write(CMDQ, c.Mapc(ICID=2, RDbase=2, V=1).encode())
    assert rig.write(GITS_CWRITER, 8, 32) == []
    assert rig.creadr() == 32
    assert rig.bus.ram.read(CT + 8, 16) == bytes.fromhex("03000000000000000500000000000000")


def test_commands_wait_while_disabled_and_run_on_enable() -> None:
    rig = Rig()
    rig.write(GITS_BASER0, 8, BASER0_LINUX)
    rig.write(GITS_BASER1, 8, BASER1_LINUX)
    rig.write(GITS_CBASER, 8, CBASER_E6)
    rig.queue(c.Mapc(ICID=1, RDbase=1, V=1), c.Sync(RDbase=1))
    assert rig.write(GITS_CWRITER, 8, 0x40) == []
    assert rig.creadr() == 0
    assert rig.write(GITS_CTLR, 4, 1) == [Sync(1)]
    assert rig.creadr() == 0x40


def test_tables_not_valid_make_every_command_fail() -> None:
    rig = Rig()
    rig.write(GITS_CBASER, 8, CBASER_E6)
    rig.write(GITS_CTLR, 4, 1)
    assert rig.send(c.Mapc(ICID=0, RDbase=0, V=1)) == [
        CommandError(0, "MAPC", "ICID 0x0 >= 0x0 collection table entries")
    ]
    assert rig.msi(0, 0) == [MsiDropped(0, 0, "DeviceID 0x0 >= 0x0 device table entries")]


def test_virtual_ite_in_memory_is_ignored() -> None:
    rig = mapped_rig()
    rig.bus.ram.write(ITT + 36, bytes.fromhex("0d80000002000000"))  # IntType 0 (virtual)
    assert rig.send(c.Int(DeviceID=0x10, EventID=3)) == [
        CommandError(0x60, "INT", "ITE of DeviceID 0x10 EventID 0x3 is virtual (table corrupted?)")
    ]


# --- hostile queues -------------------------------------------------------------------------------

_NUMBERS = st.sampled_from([*c.COMMANDS, 0x00, 0x2A, 0x29, 0xFF]) | st.integers(0, 255)


@st.composite
def _garbage(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.binary(min_size=32, max_size=32)))
    raw[0] = draw(_NUMBERS)
    return bytes(raw)


# Well-formed commands with values around the edges (mapped device 0x10, the ID limits,
# an ITT beyond the 4 GiB of RAM, an ITT on top of the command queue).
_FIELD_VALUES = {
    "DeviceID": st.sampled_from([0x10, 0x11] * 4 + [0, 0x1FFF, 0x2000, 0xFFFF, 0x10000, 1 << 31]),
    "EventID": st.integers(0, 4) | st.integers(0, 40) | st.just(0xFFFFFFFF),
    "pINTID": st.sampled_from([8191, 8192, 8195, 8200, 65535, 65536, 1023, 0]),
    "ICID": st.integers(0, 8) | st.just(0xFFFF),
    "Size": st.integers(0, 16) | st.just(31),
    "ITT_addr": st.sampled_from([ITT, ITT + 0x1000, 1 << 32, 1 << 32, CMDQ, DT]),
    "V": st.integers(0, 1),
    "RDbase": st.integers(0, 5) | st.just(1 << 16 | 1),
    "RDbase1": st.integers(0, 5),
    "RDbase2": st.integers(0, 5),
}
_WELL_FORMED = st.one_of(
    *[
        st.builds(cls, **{f.name: _FIELD_VALUES[f.name] for _, f in cls.LAYOUT}).map(
            lambda cmd: cmd.encode()
        )
        for cls in c.COMMANDS.values()
    ]
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_WELL_FORMED | _garbage(), min_size=1, max_size=12))
def test_hostile_queues_never_crash(commands: list[bytes]) -> None:
    rig = mapped_rig()
    rig.bus.ram.size = 1 << 32  # so that the addresses a guest makes up can fail
    before = rig.creadr()
    effects = rig.send(*commands)
    stalls = [e for e in effects if isinstance(e, CommandError) and e.stalled]
    if stalls:
        assert len(stalls) == 1 and effects[-1] is stalls[0]
        assert rig.its.stalled
        assert (rig.creadr() & ~1) == stalls[0].offset
    else:
        assert rig.creadr() == before + 32 * len(commands)
    for e in actions(effects):
        for proc in (
            getattr(e, f) for f in ("processor", "src", "dst", "src_processor") if hasattr(e, f)
        ):
            assert 0 <= proc < 4
    # MSIs after the storm do not crash either
    for devid, eventid in ((0x10, 3), (0, 0), (0x1F, 40)):
        rig.msi(devid, eventid)
