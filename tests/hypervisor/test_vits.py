"""Xen 4.17's virtual ITS (hypervisor/vits.py): register frame, commands, guest-RAM accesses.

Commands are built with gic/its_commands.py (the architectural encodings); the expected memory
accesses follow xen-arm-vgic.md §4.4 (which Xen function reads or writes which table entry)
and Xen's table formats of §4.2, worked out by hand from the command fields.
"""

from __future__ import annotations

import struct
from typing import Any

from gic.its_commands import Clear, Discard, Int, Inv, Invall, Mapc, Mapd, Mapti, Movi, Sync
from gic.port import Driver, MemRead, MemWrite, Ram, run_sync
from hypervisor.vgic import GIC_IRQ_GUEST_ENABLED, MmioResult
from hypervisor.vgic_v3 import HostItsInfo, RdistRegion, VgicV3
from hypervisor.vits import FakeHostIts
from transport.messages import GicContext

ITS = 0x0808_0000
GICR = 0x080A_0000
RAM = 0x4000_0000
PROP = 0x4010_0000
DT = 0x4030_0000  # device table: one 4 KiB page of 8-byte DTEs -> 512 devices
CT = 0x4031_0000  # collection table: one 4 KiB page of 2-byte CTEs -> 2048 collections
CQ = 0x4032_0000  # command queue: one 4 KiB page -> 128 commands
ITT5 = 0x4040_0000
ITT6 = 0x4041_0000
VALID = 1 << 63


class Rig:
    """dom0 with 4 vCPUs, one vITS (16 DeviceID / EventID bits), guest RAM at 1 GiB."""

    def __init__(
        self,
        *,
        enable_lpis: bool = True,
        debug: bool = False,
        idbits: int = 15,
        tables: bool = True,
    ) -> None:
        self.ram = Ram(RAM, 0x4000_0000)
        self.host = FakeHostIts()
        self.lines: list[str] = []
        self.g = VgicV3(
            0,
            vcpus=4,
            has_its=True,
            nr_spis=224,
            intid_bits=16,
            vits_bases=[HostItsInfo(ITS, 16, 16)],
            redist_regions=[RdistRegion(GICR, 0xF6_0000)],
            lr_count=4,
            host=self.host,
            log=lambda line: self.lines.append(line.text),
            debug_build=debug,
        )
        self.its = self.g.its[0]
        self.reqs: list[Any] = []
        self.wp = 0
        for v in range(1, 4):
            self.g.vgic.set_vcpu_online(v, True)
        self.mmio(0, GICR + 0x70, 8, True, PROP | (3 << 7) | (1 << 10) | idbits)
        if enable_lpis:
            self.mmio(0, GICR, 4, True, 1)
        if tables:
            self.mmio(0, ITS + 0x100, 8, True, VALID | DT)
            self.mmio(0, ITS + 0x108, 8, True, VALID | CT)
            self.mmio(0, ITS + 0x80, 8, True, VALID | CQ)
            self.mmio(0, ITS, 4, True, 1)
        self.reqs.clear()

    def answer(self, req: Any) -> Any:
        self.reqs.append(req)
        if isinstance(req, MemRead):
            return (
                self.ram.read(req.addr, req.size) if self.ram.contains(req.addr, req.size) else b""
            )
        if not self.ram.contains(req.addr, len(req.data)):
            return ValueError("not RAM")
        self.ram.write(req.addr, req.data)
        return None

    def mmio(self, vcpu: int, addr: int, size: int, write: bool, value: int = 0) -> MmioResult:
        return run_sync(self.g.mmio(vcpu, addr, size, write, value), self.answer)

    def read(self, off: int, size: int = 8) -> int:
        res = self.mmio(0, ITS + off, size, False)
        assert not res.abort
        return res.value

    def send(self, *cmds: Any, vcpu: int = 0) -> MmioResult:
        for c in cmds:
            raw = c if isinstance(c, bytes) else c.encode()
            self.ram.write(CQ + self.wp, raw)
            self.wp = (self.wp + 32) % 0x1000
        self.reqs.clear()
        return self.mmio(vcpu, ITS + 0x88, 8, True, self.wp)

    def trace(self) -> list[tuple[str, int, Any, str]]:
        out = []
        for r in self.reqs:
            if isinstance(r, MemRead):
                out.append(("R", r.addr, r.size, r.why))
            else:
                out.append(("W", r.addr, r.data.hex(), r.why))
        return out

    def setup_lpi(self, prop: int = 0xA1) -> None:
        """Collections 0 -> vCPU 0 and 1 -> vCPU 1, device 5 (32 events), event 0 -> vLPI 8208."""
        self.ram.write(PROP + 0x10, bytes([prop]))
        self.send(
            Mapc(ICID=0, RDbase=0, V=1),
            Mapc(ICID=1, RDbase=1, V=1),
            Mapd(DeviceID=5, Size=4, ITT_addr=ITT5, V=1),
            Mapti(DeviceID=5, EventID=0, pINTID=8208, ICID=0),
        )


def cmd_read(at: int) -> tuple[str, int, int, str]:
    return ("R", CQ + at, 32, "vgic_its_handle_cmds")


def itte(vlpi: int, coll: int) -> str:
    return struct.pack("<IHH", vlpi, coll, 0).hex()


def dte(addr: int, bits: int) -> str:
    return struct.pack("<Q", addr | (bits - 1)).hex()


# ---------------------------------------------------------------------------- register frame


def test_register_frame_reset_values() -> None:
    r = Rig(tables=False)
    assert r.read(0x4, 4) == 0x5800034C  # GITS_IIDR
    assert r.read(0xFFE8, 4) == 0x30  # GITS_PIDR2: GICv3
    # Physical, ITT entry 8 bytes, 16 EventID bits, 16 DeviceID bits, PTA = 0, HCC = 0.
    assert r.read(0x8) == 1 | (7 << 4) | (15 << 8) | (15 << 13) == 0x1EF71
    # BASER0: Device, 8-byte entries, Inner RaWaWb, Inner Shareable; BASER1: Collection, 2 B.
    assert r.read(0x100) == 0x3907_0000_0000_0400
    assert r.read(0x108) == 0x3C01_0000_0000_0400
    assert r.read(0x80) == 0x3800_0000_0000_0400
    assert r.read(0x110) == 0 and r.read(0x138) == 0  # BASER2..7 RAZ
    assert r.read(0x0, 4) == 0x8000_0000  # disabled, quiescent


def test_baser_read_only_fields_flat_only_and_entries() -> None:
    r = Rig(tables=False)
    # Indirect, Type 7, Entry_Size 31, 64 KiB pages, 2 pages, inner nC, outer RaWb.
    raw = VALID | (1 << 62) | (7 << 56) | (0x1F << 48) | (1 << 59) | (3 << 53) | (2 << 8) | 1
    r.mmio(0, ITS + 0x100, 8, True, raw | DT)
    assert (
        r.read(0x100) == VALID | (3 << 59) | (1 << 53) | (1 << 56) | (7 << 48) | (2 << 8) | 1 | DT
    )
    assert r.its.max_devices == 2 * 0x10000 // 8
    r.mmio(0, ITS + 0x108, 8, True, raw | CT)
    assert r.its.max_collections == 2 * 0x10000 // 2
    # 64 KiB pages keep PA[51:48] in bits [15:12] (get_baser_phys_addr).
    r.mmio(0, ITS + 0x108, 8, True, VALID | (2 << 8) | CT | (0x3 << 12))
    assert r.its.max_collections == 0x10000 // 2


def test_enable_requires_all_three_valid() -> None:
    r = Rig(tables=False)
    r.mmio(0, ITS + 0x100, 8, True, VALID | DT)
    r.mmio(0, ITS + 0x80, 8, True, VALID | CQ)
    res = r.mmio(0, ITS, 4, True, 1)
    assert not res.abort and r.read(0, 4) == 0x8000_0000
    assert [x.text for x in res.log] == [
        "d0 tried to enable ITS without having the tables configured."
    ]
    r.mmio(0, ITS + 0x108, 8, True, VALID | CT)
    r.mmio(0, ITS, 4, True, 1)
    assert r.read(0, 4) == 0x8000_0001


def test_cbaser_and_basers_only_writable_while_disabled() -> None:
    r = Rig(debug=True)
    res = r.mmio(0, ITS + 0x80, 8, True, VALID | 0x4050_0000)
    assert r.read(0x80) & 0xFFFF_F000 == CQ
    assert [x.text for x in res.log] == [
        "arch/arm/vgic-v3-its.c:?:d0v0 vGITS: tried to change CBASER with the ITS enabled."
    ]
    r.mmio(0, ITS + 0x100, 8, True, VALID | 0x4060_0000)
    assert r.read(0x100) & 0xFFFF_F000 == DT
    r.send(Sync(RDbase=0))
    assert r.read(0x90) == 32
    r.mmio(0, ITS, 4, True, 0)  # disable: now CBASER is writable and resets CREADR
    r.mmio(0, ITS + 0x80, 8, True, VALID | CQ)
    assert r.read(0x90) == 0


def test_enabling_does_not_drain_the_queue() -> None:
    r = Rig(tables=False)
    r.mmio(0, ITS + 0x100, 8, True, VALID | DT)
    r.mmio(0, ITS + 0x108, 8, True, VALID | CT)
    r.mmio(0, ITS + 0x80, 8, True, VALID | CQ)
    r.send(Sync(RDbase=0))
    assert r.reqs == [] and r.read(0x90) == 0 and r.read(0x88) == 32
    assert r.read(0, 4) == 0  # disabled and not quiescent: CREADR != CWRITER
    r.reqs.clear()
    r.mmio(0, ITS, 4, True, 1)
    assert r.reqs == [] and r.read(0x90) == 0
    r.mmio(0, ITS + 0x88, 8, True, 32)  # the next CWRITER write runs it
    assert r.trace() == [cmd_read(0)] and r.read(0x90) == 32
    assert r.read(0, 4) == 0x8000_0001


def test_creadr_wraps_around_the_queue() -> None:
    r = Rig()
    r.send(*[Sync(RDbase=0)] * 127)
    assert r.read(0x90) == 127 * 32
    r.send(Sync(RDbase=0), Sync(RDbase=0))
    assert r.trace() == [cmd_read(0xFE0), cmd_read(0)]
    assert r.read(0x90) == 32 == r.read(0x88)


# ---------------------------------------------------------------------------- commands


def test_exact_memory_accesses_of_each_command() -> None:
    r = Rig()
    r.ram.write(PROP + 0x11, bytes([0xA1]))
    r.send(Mapc(ICID=1, RDbase=1, V=1))
    assert r.trace() == [cmd_read(0), ("W", CT + 2, "0100", "its_set_collection")]
    r.send(Mapc(ICID=0, RDbase=0, V=1))
    r.send(Mapd(DeviceID=5, Size=4, ITT_addr=ITT5, V=1))
    assert r.trace() == [cmd_read(0x40), ("W", DT + 5 * 8, dte(ITT5, 5), "its_set_itt_address")]
    assert r.host.calls[-1] == ("map_guest_device", 0, 5, 32)
    r.send(Mapti(DeviceID=5, EventID=1, pINTID=8209, ICID=1))
    assert r.trace() == [
        cmd_read(0x60),
        ("R", DT + 40, 8, "its_get_itt"),
        ("R", ITT5 + 8, 8, "read_itte"),
        ("R", CT + 0, 2, "get_vcpu_from_collection"),  # collection of the (empty) ITTE
        ("R", CT + 2, 2, "get_vcpu_from_collection"),  # the command's collection 1
        ("R", DT + 40, 8, "its_get_itt"),
        ("W", ITT5 + 8, itte(8209, 1), "write_itte"),
        ("R", PROP + 8209 - 8192, 1, "update_lpi_property"),
    ]
    assert r.host.calls[-1] == ("assign_guest_event", 0, 5, 1, 8209)
    itte_read = [("R", DT + 40, 8, "its_get_itt"), ("R", ITT5 + 8, 8, "read_itte")]
    r.send(Inv(DeviceID=5, EventID=1))
    assert r.trace() == [
        cmd_read(0x80),
        *itte_read,
        ("R", CT + 2, 2, "get_vcpu_from_collection"),
        ("R", PROP + 17, 1, "update_lpi_property"),
    ]
    r.send(Int(DeviceID=5, EventID=1))
    assert r.trace() == [cmd_read(0xA0), *itte_read, ("R", CT + 2, 2, "get_vcpu_from_collection")]
    r.send(Movi(DeviceID=5, EventID=1, ICID=0))
    assert r.trace() == [
        cmd_read(0xC0),
        *itte_read,
        ("R", CT + 2, 2, "get_vcpu_from_collection"),
        ("R", CT + 0, 2, "get_vcpu_from_collection"),
        ("R", DT + 40, 8, "its_get_itt"),
        ("W", ITT5 + 8, itte(8209, 0), "write_itte"),
    ]
    assert r.g.vgic.lpi_tree[8209].lpi_vcpu_id == 0
    r.send(Clear(DeviceID=5, EventID=1))
    assert r.trace() == [cmd_read(0xE0), *itte_read, ("R", CT, 2, "get_vcpu_from_collection")]
    r.send(Invall(ICID=0))
    assert r.trace() == [
        cmd_read(0x100),
        ("R", CT, 2, "get_vcpu_from_collection"),
        ("R", PROP + 17, 1, "update_lpi_property"),  # the one LPI now on vCPU 0
    ]
    r.send(Discard(DeviceID=5, EventID=1))
    assert r.trace() == [
        cmd_read(0x120),
        *itte_read,
        ("R", CT, 2, "get_vcpu_from_collection"),
        ("R", DT + 40, 8, "its_get_itt"),
        ("W", ITT5 + 8, itte(0, 0xFFFF), "write_itte"),
    ]
    assert r.host.calls[-1] == ("remove_guest_event", 0, 5, 1)
    assert 8209 not in r.g.vgic.lpi_tree
    r.send(Sync(RDbase=0), bytes([0x0E]) + bytes(31))  # SYNC, MOVALL: read and ignored
    assert r.trace() == [cmd_read(0x140), cmd_read(0x160)]
    assert r.read(0x90) == r.read(0x88) == 0x180


def test_mapti_rejects_vlpi_at_or_above_nr_lpis() -> None:
    """nr_lpis = 2^16 - 8192 = 57344 counts LPIs, but MAPTI compares the full INTID: the top
    8192 IDs of the configured range are refused."""
    r = Rig()
    r.setup_lpi()
    r.send(Mapti(DeviceID=5, EventID=1, pINTID=57343, ICID=0))
    assert r.host.calls[-1] == ("assign_guest_event", 0, 5, 1, 57343)
    calls = len(r.host.calls)
    r.send(Mapti(DeviceID=5, EventID=2, pINTID=57344, ICID=0))
    assert r.trace() == [
        cmd_read(0xA0),
        ("R", DT + 40, 8, "its_get_itt"),
        ("R", ITT5 + 16, 8, "read_itte"),
        ("R", CT, 2, "get_vcpu_from_collection"),
        ("R", CT, 2, "get_vcpu_from_collection"),
    ]
    assert len(r.host.calls) == calls and 57344 not in r.g.vgic.lpi_tree


def test_mapti_below_8192_reads_before_the_property_table() -> None:
    """Xen has no lower bound on the vLPI: pINTID 100 passes and update_lpi_property reads
    PROPBASER + 100 - 8192, 8092 bytes below the table."""
    r = Rig()
    r.setup_lpi()
    r.send(Mapti(DeviceID=5, EventID=3, pINTID=100, ICID=0))
    assert r.trace()[-1] == ("R", PROP - 8092, 1, "update_lpi_property")
    assert 100 in r.g.vgic.lpi_tree


def test_inv_and_mapti_before_any_enable_read_no_property() -> None:
    """Before the first EnableLPIs nr_lpis is 0, so MAPTI refuses every vLPI, and INV returns
    at once: no table and no property byte is read."""
    r = Rig(enable_lpis=False)
    r.setup_lpi()
    assert not any(t[3] in ("update_lpi_property", "write_itte") for t in r.trace())
    assert 8208 not in r.g.vgic.lpi_tree and r.g.vgic.nr_lpis == 0
    r.send(Inv(DeviceID=5, EventID=0))
    assert r.trace() == [cmd_read(0x80)]


def test_property_byte_reaches_the_lr_only_through_xen_reads() -> None:
    """LR priority follows the property byte only as Xen reads it: a changed byte without INV
    keeps the cached priority; after INV the next injection uses the new one."""
    r = Rig()
    r.setup_lpi(prop=0xA1)
    vg = r.g.vgic

    def fire() -> int:
        vg.sync_from_lrs(0, GicContext(lrs=tuple(vg.vcpus[0].lrs), hcr=1))
        inj = vg.inject_lpi(8208, current=0)
        assert inj.outcome == "lr"
        value = vg.vcpus[0].lrs[inj.lr]
        vg.sync_to_lrs(0)
        done = [x & ~(3 << 62) for x in vg.vcpus[0].lrs]  # the guest acks and EOIs it
        vg.sync_from_lrs(0, GicContext(lrs=tuple(done), hcr=1))
        vg.sync_to_lrs(0)
        return value

    assert fire() == 0x50A0_0000_0000_2010
    r.ram.write(PROP + 0x10, bytes([0x61]))  # priority 0x60, still enabled, no INV
    assert fire() == 0x50A0_0000_0000_2010
    r.send(Inv(DeviceID=5, EventID=0))
    assert fire() == 0x5060_0000_0000_2010
    r.ram.write(PROP + 0x10, bytes([0x60]))  # disabled
    r.send(Inv(DeviceID=5, EventID=0))
    assert not vg.lpi_tree[8208].test(GIC_IRQ_GUEST_ENABLED)
    vg.sync_from_lrs(0, GicContext(lrs=(0,) * 4, hcr=1))
    assert vg.inject_lpi(8208, current=0).outcome == "disabled"  # pending while disabled
    vg.sync_to_lrs(0)
    r.ram.write(PROP + 0x10, bytes([0x61]))
    vg.sync_from_lrs(0, GicContext(lrs=(0,) * 4, hcr=1))  # the CWRITER write traps vCPU 0
    r.send(Inv(DeviceID=5, EventID=0))  # the INV raises it into an LR of the trapping vCPU
    assert vg.vcpus[0].lrs[0] == 0x5060_0000_0000_2010


def test_int_and_physical_injection_target_the_collection_vcpu() -> None:
    r = Rig()
    r.setup_lpi()
    res = r.send(Movi(DeviceID=5, EventID=0, ICID=1), Int(DeviceID=5, EventID=0))
    assert [(i.virq, i.vcpu, i.outcome, i.kick) for i in res.injections] == [
        (8208, 1, "queued", True)
    ]


def test_discard_then_remap_reuses_the_stale_lr() -> None:
    r = Rig()
    r.setup_lpi()
    vg = r.g.vgic
    vg.sync_from_lrs(0, GicContext(lrs=(0,) * 4, hcr=1))
    assert vg.inject_lpi(8208, current=0).lr == 0
    r.send(Discard(DeviceID=5, EventID=0), Mapti(DeviceID=5, EventID=0, pINTID=8208, ICID=0))
    assert vg.inject_lpi(8208, current=0).lr == 0  # PRISTINE: found in LR0, not a second LR
    assert vg.vcpus[0].lr_mask == 1


def test_unmap_discards_every_event_and_writes_an_invalid_dte() -> None:
    r = Rig()
    r.setup_lpi()
    r.send(Mapd(DeviceID=5, Size=4, ITT_addr=0, V=0))
    t = r.trace()
    assert sum(1 for x in t if x[3] == "read_itte") == 32  # every event of the ITT
    assert t[-1] == (
        "W",
        DT + 40,
        struct.pack("<Q", 0x000F_FFFF_FFFF_FF00).hex(),
        "its_set_itt_address",
    )
    assert ("remove_guest_event", 0, 5, 0) in r.host.calls
    assert r.host.calls[-1] == ("unmap_guest_device", 0, 5, 32)
    assert 8208 not in r.g.vgic.lpi_tree
    assert r.g.vgic.inject_lpi(8208, current=None).outcome == "dropped-unmapped"


# ---------------------------------------------------------------------------- hostile input


def test_hostile_commands_get_xen_answers_and_other_devices_keep_working() -> None:
    r = Rig(debug=True)
    r.setup_lpi()
    r.send(Mapd(DeviceID=6, Size=4, ITT_addr=ITT6, V=1))
    dte5 = r.ram.read(DT + 40, 8)
    r.lines.clear()
    res = r.send(
        Mapd(DeviceID=0x10000, Size=4, ITT_addr=ITT6, V=1),  # DeviceID beyond the host's bits
        Mapd(DeviceID=7, Size=16, ITT_addr=ITT6, V=1),  # 17 EventID bits > 16
        Mapti(DeviceID=5, EventID=40, pINTID=9000, ICID=0),  # EventID beyond the ITT
        Mapti(DeviceID=600, EventID=0, pINTID=9001, ICID=0),  # DeviceID beyond BASER0
        Mapd(DeviceID=5, Size=4, ITT_addr=ITT6, V=1),  # remap a mapped device
        bytes([0xFF]) + bytes(31),  # garbage command number
        Int(DeviceID=5, EventID=0),
    )
    assert not res.abort and res.crash is None
    assert r.read(0x90) == r.read(0x88)  # CREADR advanced over every command
    assert r.ram.read(DT + 40, 8) == dte5  # -EBUSY returns before the DTE is written
    assert ("map_guest_device", 0, 5, 32) in r.host.calls[-4:]
    assert 9000 not in r.g.vgic.lpi_tree and 9001 not in r.g.vgic.lpi_tree
    assert [(i.virq, i.outcome) for i in res.injections] == [(8208, "queued")]
    err = "arch/arm/vgic-v3-its.c:?:d0v0 vGITS: ITS command error {} while handling command"
    dump = "arch/arm/vgic-v3-its.c:?:d0v0   cmd 0x{:02x}: "
    texts = res.log and [x.text for x in res.log]
    assert texts[0] == err.format(-22)
    assert texts[1].startswith(dump.format(8) + "0001000000000008 0000000000000004")
    assert [t for t in texts if "error" in t] == [err.format(n) for n in (-22, -1, -1, -1, -16)]
    assert "arch/arm/vgic-v3-its.c:?:d0v0 vGITS: unhandled ITS command" in texts


def test_release_build_prints_nothing_for_command_errors() -> None:
    r = Rig()
    res = r.send(Mapd(DeviceID=7, Size=16, ITT_addr=ITT6, V=1), bytes([0x2A]) + bytes(31))
    assert res.log == () and r.read(0x90) == 64


def test_queue_outside_ram_abandons_the_command_and_keeps_creadr() -> None:
    r = Rig(tables=False)
    r.mmio(0, ITS + 0x100, 8, True, VALID | DT)
    r.mmio(0, ITS + 0x108, 8, True, VALID | CT)
    r.mmio(0, ITS + 0x80, 8, True, VALID | 0x1000_0000)  # not RAM
    r.mmio(0, ITS, 4, True, 1)
    res = r.mmio(0, ITS + 0x88, 8, True, 32)
    assert not res.abort and r.read(0x90) == 0 and r.read(0, 4) == 1  # not quiescent
    # The same through Driver.throw: an exception thrown into the core is a failed access.
    drv = Driver(r.g.mmio(0, ITS + 0x88, 8, True, 64))
    req = drv.start()
    assert isinstance(req, MemRead) and req.why == "vgic_its_handle_cmds"
    assert drv.throw(RuntimeError("bus error")) is None and drv.done
    assert r.read(0x90) == 0


def test_tables_outside_ram_fail_the_command_but_creadr_advances() -> None:
    r = Rig(tables=False)
    r.mmio(0, ITS + 0x100, 8, True, VALID | 0x1000_0000)  # device table not in RAM
    r.mmio(0, ITS + 0x108, 8, True, VALID | CT)
    r.mmio(0, ITS + 0x80, 8, True, VALID | CQ)
    r.mmio(0, ITS, 4, True, 1)
    r.send(Mapd(DeviceID=5, Size=4, ITT_addr=ITT5, V=1), Mapc(ICID=0, RDbase=0, V=1))
    assert [t[0] for t in r.trace()] == ["R", "W", "R", "W"]
    assert r.read(0x90) == 64 and r.ram.read(CT, 2) == b"\x00\x00"


def test_invall_on_an_unmapped_collection_is_a_xen_crash() -> None:
    r = Rig()
    r.setup_lpi()
    res = r.send(Invall(ICID=0xFFFF))  # beyond max_collections: NULL vCPU, then locked
    assert res.crash is not None and res.crash.site == "its_handle_invall"
    assert r.g.vgic.crashed is res.crash
    again = r.mmio(0, ITS, 4, False)
    assert again.crash is res.crash


def test_clear_of_a_never_mapped_event_is_a_xen_crash() -> None:
    """CLEAR does not check the vLPI: a zeroed ITTE of a mapped device reaches list_del_init
    on the device's xzalloc'd pending_irq, whose list heads were never initialised."""
    r = Rig()
    r.setup_lpi()
    res = r.send(Clear(DeviceID=5, EventID=7))
    assert res.crash is not None and res.crash.site == "vgic_remove_irq_from_queues"


def test_memwrite_requests_are_the_only_writes_and_never_touch_pending_tables() -> None:
    r = Rig()
    for v in range(4):
        r.mmio(v, GICR + v * 0x20000 + 0x78, 8, True, 0x4080_0000 + v * 0x10000)
    r.setup_lpi()
    r.send(Inv(DeviceID=5, EventID=0), Invall(ICID=0), Int(DeviceID=5, EventID=0))
    for req in r.reqs:
        assert not 0x4080_0000 <= req.addr < 0x40C0_0000
        assert req.why in {
            "vgic_its_handle_cmds", "its_set_collection", "get_vcpu_from_collection",
            "its_set_itt_address", "its_get_itt", "read_itte", "write_itte",
            "update_lpi_property",
        }  # fmt: skip
        assert isinstance(req, MemRead | MemWrite)
