"""Xen's virtual ITS for dom0 (xen/arch/arm/vgic-v3-its.c, Xen 4.17) as a synchronous core.

One :class:`Vits` per host ITS, at the host ITS address with the host's DeviceID/EventID
widths (``vgic_v3_its_init_domain``). Only the 64 KiB control frame is trapped; the doorbell
page is not emulated. The register frame follows ``vgic_v3_its_mmio_read`` / ``_write``;
commands are executed synchronously inside the trapped GITS_CWRITER write
(``vgic_its_handle_cmds``) with Xen's own field masks (``its_cmd_get_*``), and Xen's table
formats in guest RAM: DTE = ITT address [51:8] | (bits - 1) [4:0]; CTE = u16 vCPU ID, 0xFFFF
unmapped; ITTE = u32 vLPI (0 unmapped) + u16 collection + u16 pad (written as 0: Xen leaves
the stack garbage there).

Contract (used with ``yield from`` by the Xen component's driver):

* Every guest-RAM access is ``yield MemRead(addr, size, why)`` / ``yield MemWrite(addr, data,
  why)`` with ``why`` the Xen function of xen-arm-vgic.md §4.4 (vgic_its_handle_cmds,
  its_set_collection, get_vcpu_from_collection, its_set_itt_address, its_get_itt, read_itte,
  write_itte, update_lpi_property); nothing else touches guest RAM, never the pending table.
  A read answered with short data, a non-bytes value, or an exception thrown into the core
  (``Driver.throw``), and a write answered with an exception instance or thrown into, is an
  ``access_guest_memory_by_ipa`` failure (-EINVAL): the command is abandoned, as in Xen.
* Host work goes through :class:`HostItsOps` (implemented by hypervisor/host_its.py), each
  method a core returning 0 or a negative errno. The ``doorbell`` argument (vITS base +
  0x10040) names which host ITS, as Xen's ``gicv3_its_map_guest_device`` does.
* Xen's console lines go through :class:`~hypervisor.xen_log.XenLog` (the vITS failure lines are
  ``gdprintk``: printed by debug builds only). Real Xen crash sites (the NULL vCPU in
  ``its_handle_invall``, list operations on a never-initialised ``pending_irq``) raise
  :class:`~hypervisor.vgic.XenCrashed`, turned into a typed result by the caller.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

from gic.its_commands import (
    GITS_CMD_CLEAR,
    GITS_CMD_DISCARD,
    GITS_CMD_INT,
    GITS_CMD_INV,
    GITS_CMD_INVALL,
    GITS_CMD_MAPC,
    GITS_CMD_MAPD,
    GITS_CMD_MAPI,
    GITS_CMD_MAPTI,
    GITS_CMD_MOVALL,
    GITS_CMD_MOVI,
    GITS_CMD_SYNC,
)
from gic.port import Core, MemRead, MemWrite
from hypervisor.vgic import (
    DABT_WORD,
    GIC_IRQ_GUEST_ENABLED,
    GIC_IRQ_GUEST_PRISTINE_LPI,
    GIC_IRQ_GUEST_VISIBLE,
    INVALID_LPI,
    LPI_OFFSET,
    Dabt,
    PendingIrq,
    VcpuVgic,
    Vgic,
    XenCrash,
    XenCrashed,
    vgic_reg64_check_access,
    vreg_reg_extract,
    vreg_reg_update,
)
from hypervisor.xen_log import XenLog

ITS_DOORBELL_OFFSET = 0x10040
ITS_CMD_SIZE = 32
GITS_IIDR_VALUE = 0x5800034C
GIC_PIDR2_ARCH_GICv3 = 0x30
GITS_CTLR_ENABLE = 1 << 0
GITS_CTLR_QUIESCENT = 1 << 31
GITS_VALID_BIT = 1 << 63
GITS_BASER_INDIRECT = 1 << 62
GITS_BASER_TYPE_SHIFT = 56
GITS_BASER_TYPE_MASK = 7 << 56
GITS_BASER_ENTRY_SIZE_SHIFT = 48
GITS_BASER_RO_MASK = GITS_BASER_TYPE_MASK | (0x1F << GITS_BASER_ENTRY_SIZE_SHIFT)
GITS_BASER_PAGE_SIZE_SHIFT = 8
GITS_BASER_SHAREABILITY_SHIFT = 10
GITS_BASER_OUTER_CACHEABILITY_SHIFT = 53
GITS_BASER_INNER_CACHEABILITY_SHIFT = 59
GITS_BASER_TYPE_DEVICE = 1
GITS_BASER_TYPE_COLLECTION = 4
GIC_BASER_InnerShareable = 1
GIC_BASER_OuterShareable = 2
GIC_BASER_CACHE_SameAsInner = 0
GIC_BASER_CACHE_nC = 1
GIC_BASER_CACHE_RaWb = 3
GIC_BASER_CACHE_RaWaWb = 7
GITS_TYPER_PHYSICAL = 1 << 0
GITS_TYPER_ITT_SIZE_SHIFT = 4
GITS_TYPER_IDBITS_SHIFT = 8
GITS_TYPER_DEVIDS_SHIFT = 13


UNMAPPED_COLLECTION = 0xFFFF
INVALID_PADDR = (1 << 64) - 1
DTE_SIZE = 8
CTE_SIZE = 2
ITTE_SIZE = 8
LPI_BLOCK = 32
ENOENT = 2
EINVAL = 22
EEXIST = 17
M64 = (1 << 64) - 1
#: An unmap loops over every event of the DTE; beyond this many Xen spins for hours.
UNMAP_HANG_EVENTS = 1 << 20


def GENMASK(h: int, lo: int) -> int:
    return ((1 << (h - lo + 1)) - 1) << lo


def get_baser_phys_addr(reg: int) -> int:
    """64 KiB pages (bit 9 set) keep PA[51:48] in bits [15:12]."""
    if reg & (1 << 9):
        return (reg & GENMASK(47, 16)) | ((reg & GENMASK(15, 12)) << 36)
    return reg & GENMASK(47, 12)


def dev_table_entry(addr: int, bits: int) -> int:
    """DEV_TABLE_ENTRY(addr, bits)."""
    return (addr & GENMASK(51, 8)) | ((bits - 1) & 0x1F)


def dev_table_itt_size(dte: int) -> int:
    return 1 << ((dte & 0x1F) + 1)


def its_baser_nr_entries(baser: int) -> int:
    page = (0x1000, 0x4000, 0x10000, 0x10000)[(baser >> GITS_BASER_PAGE_SIZE_SHIFT) & 3]
    entry = ((baser >> GITS_BASER_ENTRY_SIZE_SHIFT) & 0x1F) + 1
    return page * ((baser & 0xFF) + 1) // entry


def sanitize_its_base_reg(r: int) -> int:
    """``sanitize_its_base_reg``: no outer shareable, no inner non-cacheable, outer nC/same."""
    if (r >> GITS_BASER_SHAREABILITY_SHIFT) & 3 == GIC_BASER_OuterShareable:
        r = (r & ~(3 << 10)) | (GIC_BASER_InnerShareable << 10)
    if (r >> GITS_BASER_INNER_CACHEABILITY_SHIFT) & 7 in (0, GIC_BASER_CACHE_nC):
        r = (r & ~(7 << 59)) | (GIC_BASER_CACHE_RaWb << 59)
    if (r >> GITS_BASER_OUTER_CACHEABILITY_SHIFT) & 7 not in (0, GIC_BASER_CACHE_nC):
        r = (r & ~(7 << 53)) | (GIC_BASER_CACHE_nC << 53)
    return r


def its_device_nr_events(nr_events: int) -> int:
    """``gicv3_its_map_guest_device``: events rounded up to a power of two, at least LPI_BLOCK."""
    return max(LPI_BLOCK, 1 << max(nr_events - 1, 0).bit_length())


def cmd_field(cmd: tuple[int, int, int, int], word: int, shift: int, size: int) -> int:
    """``its_cmd_mask_field``."""
    return (cmd[word] >> shift) & ((1 << size) - 1)


class HostItsOps(Protocol):
    """Host ITS work the vITS delegates (Xen's gic-v3-its.c), implemented by the Xen component."""

    def map_guest_device(self, d: int, doorbell: int, devid: int, nr_events: int) -> Core[int]:
        """``gicv3_its_map_guest_device(valid=true)``: 0, -EBUSY if mapped, -EINVAL, ..."""
        ...

    def unmap_guest_device(self, d: int, doorbell: int, devid: int, nr_events: int) -> Core[int]:
        """``gicv3_its_map_guest_device(valid=false)`` (the size is still checked first)."""
        ...

    def assign_guest_event(
        self, d: int, doorbell: int, devid: int, eventid: int, vlpi: int
    ) -> Core[int]:
        """``gicv3_assign_guest_event``: write (d, vlpi) into the host LPI entry."""
        ...

    def remove_guest_event(self, d: int, doorbell: int, devid: int, eventid: int) -> Core[int]:
        """``gicv3_remove_guest_event``: host LPI entry back to INVALID_LPI."""
        ...


class Vits:
    """``struct virt_its``: one virtual ITS of a domain, with its command queue and tables."""

    def __init__(
        self,
        vgic: Vgic,
        *,
        base: int,
        devid_bits: int,
        evid_bits: int,
        host: HostItsOps | None,
        log: XenLog | None = None,
        hardware_domain: bool = True,
    ) -> None:
        if not 1 <= devid_bits <= 32 or not 1 <= evid_bits <= 32:
            raise ValueError(f"devid_bits={devid_bits}, evid_bits={evid_bits}: must be 1..32")
        if base % 0x10000:
            raise ValueError(f"vITS base {base:#x} is not 64 KiB aligned")
        if hardware_domain and host is None:
            raise ValueError("the hardware domain's vITS needs the host ITS operations")
        self.vgic = vgic
        self.d = vgic.domid
        self.base = base
        self.doorbell_address = base + ITS_DOORBELL_OFFSET
        self.devid_bits = devid_bits
        self.evid_bits = evid_bits
        self.host = host
        self.log = log or vgic.log
        self.hwdom = hardware_domain
        # vgic_v3_its_init_virtual
        base_attr = GIC_BASER_InnerShareable << GITS_BASER_SHAREABILITY_SHIFT
        base_attr |= GIC_BASER_CACHE_SameAsInner << GITS_BASER_OUTER_CACHEABILITY_SHIFT
        base_attr |= GIC_BASER_CACHE_RaWaWb << GITS_BASER_INNER_CACHEABILITY_SHIFT
        self.cbaser = base_attr
        self.baser_dev = (
            (GITS_BASER_TYPE_DEVICE << GITS_BASER_TYPE_SHIFT)
            | ((DTE_SIZE - 1) << GITS_BASER_ENTRY_SIZE_SHIFT)
            | base_attr
        )
        self.baser_coll = (
            (GITS_BASER_TYPE_COLLECTION << GITS_BASER_TYPE_SHIFT)
            | ((CTE_SIZE - 1) << GITS_BASER_ENTRY_SIZE_SHIFT)
            | base_attr
        )
        self.cwriter = 0
        self.creadr = 0
        self.enabled = False
        self.max_devices = 0
        self.max_collections = 0
        self._cur = "d?v?"

    # ------------------------------------------------------------------ register values

    @property
    def typer(self) -> int:
        reg = GITS_TYPER_PHYSICAL
        reg |= (ITTE_SIZE - 1) << GITS_TYPER_ITT_SIZE_SHIFT
        reg |= (self.evid_bits - 1) << GITS_TYPER_IDBITS_SHIFT
        reg |= (self.devid_bits - 1) << GITS_TYPER_DEVIDS_SHIFT
        return reg

    @property
    def ctlr(self) -> int:
        reg = GITS_CTLR_ENABLE if self.enabled else 0
        if self.cwriter == self.creadr:
            reg |= GITS_CTLR_QUIESCENT
        return reg

    # ------------------------------------------------------------------ guest memory

    def _read(self, addr: int, size: int, why: str) -> Core[bytes | None]:
        """access_guest_memory_by_ipa(..., false): the bytes, or None on failure."""
        try:
            data: Any = yield MemRead(addr & M64, size, why)
        except Exception:
            return None
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) != size:
            return None
        return bytes(data)

    def _write(self, addr: int, data: bytes, why: str) -> Core[bool]:
        try:
            ans: Any = yield MemWrite(addr & M64, data, why)
        except Exception:
            return False
        return not isinstance(ans, BaseException)

    # ------------------------------------------------------------------ table helpers

    def its_set_collection(self, collid: int, vcpu_id: int) -> Core[int]:
        if collid >= self.max_collections:
            return -ENOENT
        addr = get_baser_phys_addr(self.baser_coll) + collid * CTE_SIZE
        ok = yield from self._write(addr, struct.pack("<H", vcpu_id & 0xFFFF), "its_set_collection")
        return 0 if ok else -EINVAL

    def get_vcpu_from_collection(self, collid: int) -> Core[VcpuVgic | None]:
        if collid >= self.max_collections:
            return None
        addr = get_baser_phys_addr(self.baser_coll) + collid * CTE_SIZE
        data = yield from self._read(addr, CTE_SIZE, "get_vcpu_from_collection")
        if data is None:
            return None
        vcpu_id = struct.unpack("<H", data)[0]
        if vcpu_id == UNMAPPED_COLLECTION or vcpu_id >= self.vgic.max_vcpus:
            return None
        return self.vgic.vcpus[vcpu_id]

    def its_set_itt_address(self, devid: int, itt_address: int, nr_bits: int) -> Core[int]:
        if devid >= self.max_devices:
            return -ENOENT
        addr = get_baser_phys_addr(self.baser_dev) + devid * DTE_SIZE
        entry = dev_table_entry(itt_address, nr_bits)
        ok = yield from self._write(addr, struct.pack("<Q", entry), "its_set_itt_address")
        return 0 if ok else -EINVAL

    def its_get_itt(self, devid: int) -> Core[int | None]:
        if devid >= self.max_devices:
            return None
        addr = get_baser_phys_addr(self.baser_dev) + devid * DTE_SIZE
        data = yield from self._read(addr, DTE_SIZE, "its_get_itt")
        return None if data is None else struct.unpack("<Q", data)[0]

    def its_get_itte_address(self, devid: int, evid: int) -> Core[int | None]:
        itt = yield from self.its_get_itt(devid)
        if itt is None:
            return None
        # (DEV_TABLE_ITT_ADDR(itt) == INVALID_PADDR can never hold: the mask drops bits.)
        if evid >= dev_table_itt_size(itt):
            return None
        return (itt & GENMASK(51, 8)) + evid * ITTE_SIZE

    def read_itte(self, devid: int, evid: int) -> Core[tuple[VcpuVgic, int] | None]:
        addr = yield from self.its_get_itte_address(devid, evid)
        if addr is None:
            return None
        data = yield from self._read(addr, ITTE_SIZE, "read_itte")
        if data is None:
            return None
        vlpi, collection, _pad = struct.unpack("<IHH", data)
        vcpu = yield from self.get_vcpu_from_collection(collection)
        if vcpu is None:
            return None
        return vcpu, vlpi

    def write_itte(self, devid: int, evid: int, collid: int, vlpi: int) -> Core[bool]:
        addr = yield from self.its_get_itte_address(devid, evid)
        if addr is None:
            return False
        data = struct.pack("<IHH", vlpi & 0xFFFFFFFF, collid & 0xFFFF, 0)
        return (yield from self._write(addr, data, "write_itte"))

    def get_event_pending_irq(self, devid: int, eventid: int) -> PendingIrq | None:
        """``gicv3_its_get_event_pending_irq``: the device's preallocated pending_irq."""
        pirqs = self.vgic.its_devices.get((self.doorbell_address, devid))
        if pirqs is None or eventid >= len(pirqs):
            return None
        return pirqs[eventid]

    # ------------------------------------------------------------------ LPI properties

    def update_lpi_property(self, p: PendingIrq) -> Core[int]:
        """Read the guest's property byte: priority = byte & 0xfc, enabled = bit 0. Only once
        some redistributor of the domain has LPIs enabled (rdists_enabled)."""
        d = self.vgic
        if not d.rdists_enabled:
            return 0
        addr = d.rdist_propbase & GENMASK(51, 12)
        data = yield from self._read(addr + p.irq - LPI_OFFSET, 1, "update_lpi_property")
        if data is None:
            return -EINVAL
        p.lpi_priority = data[0] & 0xFC
        if data[0] & 1:
            p.set(GIC_IRQ_GUEST_ENABLED)
        else:
            p.clear(GIC_IRQ_GUEST_ENABLED)
        return 0

    def _check_listed(self, p: PendingIrq, site: str) -> None:
        if not p.listed:
            raise XenCrashed(
                XenCrash(
                    site,
                    "list_del_init on a pending_irq never initialised (xzalloc'd by "
                    "gicv3_its_map_guest_device, no MAPTI yet): NULL list pointers",
                )
            )

    def update_lpi_vgic_status(self, v: VcpuVgic, p: PendingIrq) -> None:
        d = self.vgic
        if p.test(GIC_IRQ_GUEST_ENABLED):
            # list_empty() on never-initialised (zeroed) links reads "not empty".
            inflight = p.inflight_on is not None or not p.listed
            if inflight and not p.test(GIC_IRQ_GUEST_VISIBLE):
                d.gic_raise_guest_irq(v, p.irq, p.lpi_priority)
        else:
            self._check_listed(p, "update_lpi_vgic_status")
            d.gic_remove_from_lr_pending(p)

    # ------------------------------------------------------------------ command handlers

    def its_handle_int(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        devid, eventid = cmd_field(cmd, 0, 32, 32), cmd_field(cmd, 1, 0, 32)
        r = yield from self.read_itte(devid, eventid)
        if r is None or r[1] == INVALID_LPI:
            return -1
        self.vgic.vgic_vcpu_inject_lpi(r[1])
        return 0

    def its_handle_mapc(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        collid = cmd_field(cmd, 2, 0, 16)
        rdbase = cmd_field(cmd, 2, 16, 44)
        if collid >= self.max_collections or rdbase >= self.vgic.max_vcpus:
            return -1
        vcpu_id = rdbase if cmd_field(cmd, 2, 63, 1) else UNMAPPED_COLLECTION
        yield from self.its_set_collection(collid, vcpu_id)  # return value ignored by Xen
        return 0

    def its_handle_clear(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        devid, eventid = cmd_field(cmd, 0, 32, 32), cmd_field(cmd, 1, 0, 32)
        r = yield from self.read_itte(devid, eventid)
        if r is None:
            return -1
        p = self.get_event_pending_irq(devid, eventid)
        if p is None:
            return -1
        if not p.test(GIC_IRQ_GUEST_VISIBLE):
            self._check_listed(p, "vgic_remove_irq_from_queues")
            self.vgic.vgic_remove_irq_from_queues(p)
        return 0

    def its_handle_inv(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        if not self.vgic.rdists_enabled:
            return 0
        devid, eventid = cmd_field(cmd, 0, 32, 32), cmd_field(cmd, 1, 0, 32)
        r = yield from self.read_itte(devid, eventid)
        if r is None or r[1] == INVALID_LPI:
            return -1
        p = self.get_event_pending_irq(devid, eventid)
        if p is None:
            return -1
        if (yield from self.update_lpi_property(p)):
            return -1
        self.update_lpi_vgic_status(r[0], p)
        return 0

    def its_handle_invall(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        collid = cmd_field(cmd, 2, 0, 16)
        d = self.vgic
        if not d.rdists_enabled:
            return 0
        vcpu = yield from self.get_vcpu_from_collection(collid)
        if vcpu is None:
            raise XenCrashed(
                XenCrash(
                    "its_handle_invall",
                    f"get_vcpu_from_collection({collid}) returned NULL and Xen takes "
                    "vcpu->arch.vgic.lock: NULL pointer dereference",
                )
            )
        ret = 0
        vlpi = 0
        while True:  # radix_tree_gang_lookup in gangs of 16, restarting after the last match
            keys = sorted(k for k in d.lpi_tree if k >= vlpi)[:16]
            pirqs = [d.lpi_tree[k] for k in keys]
            for p in pirqs:
                if p.lpi_vcpu_id != vcpu.id:
                    continue
                vlpi = p.irq
                err = yield from self.update_lpi_property(p)
                if not err:
                    self.update_lpi_vgic_status(vcpu, p)
                else:
                    ret = err
            vlpi += 1
            if not (vlpi < d.nr_lpis and len(pirqs) == 16):
                break
        return ret

    def its_discard_event(self, devid: int, evid: int) -> Core[int]:
        r = yield from self.read_itte(devid, evid)
        if r is None or r[1] == INVALID_LPI:
            return -ENOENT
        p = self.vgic.lpi_tree.pop(r[1], None)
        if p is None:
            return -ENOENT
        self.vgic.vgic_remove_irq_from_queues(p)
        self.vgic.vgic_init_pending_irq(p, INVALID_LPI)
        assert self.host is not None
        return (yield from self.host.remove_guest_event(self.d, self.doorbell_address, devid, evid))

    def its_unmap_device(self, devid: int) -> Core[None]:
        itt = yield from self.its_get_itt(devid)
        if itt is None:
            return
        n = dev_table_itt_size(itt)
        if n > UNMAP_HANG_EVENTS:
            raise XenCrashed(
                XenCrash(
                    "its_unmap_device",
                    f"DTE {itt:#x} of device {devid:#x} claims {n} events: Xen loops over all "
                    "of them in the trapped CWRITER write",
                    "hang",
                )
            )
        for evid in range(n):
            yield from self.its_discard_event(devid, evid)

    def its_handle_mapd(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        devid = cmd_field(cmd, 0, 32, 32)
        size = cmd_field(cmd, 1, 0, 5) + 1
        valid = bool(cmd_field(cmd, 2, 63, 1))
        itt_addr = cmd_field(cmd, 2, 8, 44) << 8
        if valid and size > self.evid_bits:
            return -1
        if not valid:
            yield from self.its_unmap_device(devid)
        ret = 0
        if self.hwdom:
            assert self.host is not None
            key = (self.doorbell_address, devid)
            if valid:
                ret = yield from self.host.map_guest_device(
                    self.d, self.doorbell_address, devid, 1 << size
                )
                if ret:
                    return ret
                n = its_device_nr_events(1 << size)
                self.vgic.its_devices[key] = [
                    PendingIrq(0, lpi_vcpu_id=0, listed=False) for _ in range(n)
                ]
            else:
                ret = yield from self.host.unmap_guest_device(
                    self.d, self.doorbell_address, devid, 1 << size
                )
                if ret == 0:
                    self.vgic.its_devices.pop(key, None)
        if valid:
            ret = yield from self.its_set_itt_address(devid, itt_addr, size)
        else:
            ret = yield from self.its_set_itt_address(devid, INVALID_PADDR, 1)
        return ret

    def its_handle_mapti(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        d = self.vgic
        devid, eventid = cmd_field(cmd, 0, 32, 32), cmd_field(cmd, 1, 0, 32)
        intid = cmd_field(cmd, 1, 32, 32)
        collid = cmd_field(cmd, 2, 0, 16)
        if cmd_field(cmd, 0, 0, 8) == GITS_CMD_MAPI:
            intid = eventid
        r = yield from self.read_itte(devid, eventid)
        if r is not None and r[1] != INVALID_LPI:
            return -1
        vcpu = yield from self.get_vcpu_from_collection(collid)
        if vcpu is None or intid >= d.nr_lpis:
            return -1
        if not (yield from self.write_itte(devid, eventid, collid, intid)):
            return -1
        ret = -1
        assert self.host is not None
        pirq = self.get_event_pending_irq(devid, eventid)
        if pirq is not None:
            hret = yield from self.host.assign_guest_event(
                self.d, self.doorbell_address, devid, eventid, intid
            )
            if hret:
                pirq = None
        if pirq is not None:
            d.vgic_init_pending_irq(pirq, intid)
            ret = yield from self.update_lpi_property(pirq)
            if not ret:
                pirq.lpi_vcpu_id = vcpu.id
                pirq.set(GIC_IRQ_GUEST_PRISTINE_LPI)
                if intid not in d.lpi_tree:
                    d.lpi_tree[intid] = pirq
                    return 0
                ret = -EEXIST
            # out_remove_host_entry
            yield from self.host.remove_guest_event(self.d, self.doorbell_address, devid, eventid)
        # out_remove_mapping
        yield from self.write_itte(devid, eventid, UNMAPPED_COLLECTION, INVALID_LPI)
        return ret

    def its_handle_movi(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        devid, eventid = cmd_field(cmd, 0, 32, 32), cmd_field(cmd, 1, 0, 32)
        collid = cmd_field(cmd, 2, 0, 16)
        r = yield from self.read_itte(devid, eventid)
        if r is None or r[1] == INVALID_LPI:
            return -1
        nvcpu = yield from self.get_vcpu_from_collection(collid)
        if nvcpu is None:
            return -1
        p = self.get_event_pending_irq(devid, eventid)
        if p is None:
            return -1
        p.lpi_vcpu_id = nvcpu.id  # an already pending LPI is not migrated
        if not (yield from self.write_itte(devid, eventid, collid, r[1])):
            return -1
        return 0

    def its_handle_discard(self, cmd: tuple[int, int, int, int]) -> Core[int]:
        devid, eventid = cmd_field(cmd, 0, 32, 32), cmd_field(cmd, 1, 0, 32)
        ret = yield from self.its_discard_event(devid, eventid)
        if ret:
            return ret
        if not (yield from self.write_itte(devid, eventid, UNMAPPED_COLLECTION, INVALID_LPI)):
            return -1
        return 0

    def _dump(self, cmd: tuple[int, int, int, int]) -> None:
        self.log.emit("gits.cmd_dump", self._cur, cmd[0] & 0xFF, *cmd)

    def vgic_its_handle_cmds(self) -> Core[int]:
        """Execute every command between CREADR and CWRITER; CREADR advances even on error."""
        addr = self.cbaser & GENMASK(51, 12)
        bufsize = ((self.cbaser & 0xFF) + 1) << 12
        if self.cwriter >= bufsize:
            return -1
        handlers = {
            GITS_CMD_CLEAR: self.its_handle_clear,
            GITS_CMD_DISCARD: self.its_handle_discard,
            GITS_CMD_INT: self.its_handle_int,
            GITS_CMD_INV: self.its_handle_inv,
            GITS_CMD_INVALL: self.its_handle_invall,
            GITS_CMD_MAPC: self.its_handle_mapc,
            GITS_CMD_MAPD: self.its_handle_mapd,
            GITS_CMD_MAPI: self.its_handle_mapti,
            GITS_CMD_MAPTI: self.its_handle_mapti,
            GITS_CMD_MOVI: self.its_handle_movi,
        }
        while self.creadr != self.cwriter:
            raw = yield from self._read(addr + self.creadr, ITS_CMD_SIZE, "vgic_its_handle_cmds")
            if raw is None:
                return -EINVAL
            cmd: tuple[int, int, int, int] = struct.unpack("<4Q", raw)  # type: ignore[assignment]
            number = cmd[0] & 0xFF
            ret = 0
            handler = handlers.get(number)
            if handler is not None:
                ret = yield from handler(cmd)
            elif number == GITS_CMD_MOVALL:
                self.log.emit("gits.cmd_movall", self._cur)
            elif number != GITS_CMD_SYNC:
                self.log.emit("gits.cmd_unhandled", self._cur)
                self._dump(cmd)
            self.creadr = (self.creadr + ITS_CMD_SIZE) % bufsize
            if ret:
                self.log.emit("gits.cmd_error", self._cur, ret)
                self._dump(cmd)
        return 0

    # ------------------------------------------------------------------ MMIO

    def vgic_v3_verify_its_status(self, status: bool) -> bool:
        if not status:
            return False
        if not (
            self.cbaser & GITS_VALID_BIT
            and self.baser_dev & GITS_VALID_BIT
            and self.baser_coll & GITS_VALID_BIT
        ):
            self.log.emit("gits.enable_without_tables", self._cur, self.d)
            return False
        return True

    def mmio(self, vcpu: str, dabt: Dabt, r: int) -> Core[tuple[bool, int]]:
        """One trapped access to the vITS control frame: (handler result, read value).
        ``vcpu`` is the trapping vCPU's name (%pv). A False result makes Xen inject a data
        abort."""
        self._cur = vcpu
        off = dabt.gpa & 0xFFFF
        if dabt.write:
            ok = yield from self._mmio_write(vcpu, dabt, off, r)
            return ok, 0
        return self._mmio_read(vcpu, dabt, off)

    def _mmio_read(self, v: str, dabt: Dabt, off: int) -> tuple[bool, int]:
        def bad_width() -> tuple[bool, int]:
            self.log.emit("gits.bad_read_width", v, dabt.size, dabt.reg, off)
            return False, 0

        def ext(reg: int, width: int) -> tuple[bool, int]:
            return True, vreg_reg_extract(reg, dabt, width)

        word = dabt.size == DABT_WORD
        if 0x0000 <= off <= 0x0003:
            return ext(self.ctlr, 32) if word else bad_width()
        if 0x0004 <= off <= 0x0007:
            return ext(GITS_IIDR_VALUE, 32) if word else bad_width()
        if 0x0008 <= off <= 0x000F:
            return ext(self.typer, 64) if vgic_reg64_check_access(dabt) else bad_width()
        if 0x0018 <= off <= 0x001F or 0x0040 <= off <= 0x007F or 0x0098 <= off <= 0x00FF:
            self.log.emit("gits.raz_reserved", v, off)
            return True, 0
        if 0x0020 <= off <= 0x003F:
            self.log.emit("gits.raz_impl", v, off)
            return True, 0
        regs64 = {0x80: self.cbaser, 0x88: self.cwriter, 0x90: self.creadr}
        regs64 |= {0x100: self.baser_dev, 0x108: self.baser_coll}
        if off & ~7 in regs64:
            if not vgic_reg64_check_access(dabt):
                return bad_width()
            return ext(regs64[off & ~7], 64)
        if 0x0110 <= off <= 0x013F:  # GITS_BASER2..7
            return (True, 0) if vgic_reg64_check_access(dabt) else bad_width()
        if 0x0140 <= off <= 0xBFFF:
            self.log.emit("gits.raz_reserved", v, off)
            return True, 0
        if 0xC000 <= off <= 0xFFE7 or 0xFFEC <= off <= 0xFFFF:
            self.log.emit("gits.raz_impl", v, off)
            return True, 0
        if 0xFFE8 <= off <= 0xFFEB:
            return ext(GIC_PIDR2_ARCH_GICv3, 32) if word else bad_width()
        self.log.emit("gits.unhandled_read", v, dabt.reg, off)
        return False, 0

    def _mmio_write(self, v: str, dabt: Dabt, off: int, r: int) -> Core[bool]:
        def bad_width() -> bool:
            self.log.emit("gits.bad_write_width", v, dabt.size, dabt.reg, off)
            return False

        word = dabt.size == DABT_WORD
        ok64 = vgic_reg64_check_access(dabt)
        if 0x0000 <= off <= 0x0003:  # GITS_CTLR
            if not word:
                return bad_width()
            ctlr = GITS_CTLR_ENABLE if self.enabled else 0
            reg32 = vreg_reg_update(ctlr, r, dabt, 32)
            if ctlr ^ reg32:
                self.enabled = self.vgic_v3_verify_its_status(bool(reg32 & GITS_CTLR_ENABLE))
            return True
        if 0x0004 <= off <= 0x000B:  # GITS_IIDR, low word of GITS_TYPER: write_ignore_32
            return True if word else bad_width()
        if 0x0018 <= off <= 0x001F or 0x0040 <= off <= 0x007F or 0x0098 <= off <= 0x00FF:
            self.log.emit("gits.wi_reserved", v, off)
            return True
        if 0x0020 <= off <= 0x003F:
            self.log.emit("gits.wi_impl", v, off)
            return True
        if 0x0080 <= off <= 0x0087:  # GITS_CBASER
            if not ok64:
                return bad_width()
            if self.enabled:
                self.log.emit("gits.cbaser_while_enabled", v)
                return True
            self.cbaser = sanitize_its_base_reg(vreg_reg_update(self.cbaser, r, dabt, 64))
            self.creadr = 0
            return True
        if 0x0088 <= off <= 0x008F:  # GITS_CWRITER
            if not ok64:
                return bad_width()
            reg = vreg_reg_update(self.cwriter & GENMASK(19, 5), r, dabt, 64)
            self.cwriter = reg & GENMASK(19, 5)
            if self.enabled and (yield from self.vgic_its_handle_cmds()):
                self.log.emit("gits.cmds_error", v)
            return True
        if 0x0090 <= off <= 0x0097:  # GITS_CREADR: write_ignore_64
            return True if ok64 else bad_width()
        if 0x0100 <= off <= 0x010F:  # GITS_BASER0 / GITS_BASER1
            if not ok64:
                return bad_width()
            dev = off < 0x108
            if self.enabled:
                self.log.emit(
                    "gits.baser0_while_enabled" if dev else "gits.baser1_while_enabled", v
                )
                return True
            reg = vreg_reg_update(self.baser_dev if dev else self.baser_coll, r, dabt, 64)
            reg &= ~(GITS_BASER_RO_MASK | GITS_BASER_INDIRECT)
            esize, etype = (DTE_SIZE, GITS_BASER_TYPE_DEVICE) if dev else (CTE_SIZE, 4)
            reg |= (esize - 1) << GITS_BASER_ENTRY_SIZE_SHIFT
            reg |= etype << GITS_BASER_TYPE_SHIFT
            reg = sanitize_its_base_reg(reg)
            n = its_baser_nr_entries(reg) if reg & GITS_VALID_BIT else 0
            if dev:
                self.max_devices = min(n, 1 << self.devid_bits)
                self.baser_dev = reg
            else:
                self.max_collections = n
                self.baser_coll = reg
            return True
        if 0x0110 <= off <= 0x013F:  # GITS_BASER2..7: write_ignore_64
            return True if ok64 else bad_width()
        if 0x0140 <= off <= 0xBFFF:
            self.log.emit("gits.wi_reserved", v, off)
            return True
        if 0xC000 <= off <= 0xFFE7 or 0xFFEC <= off <= 0xFFFF:
            self.log.emit("gits.wi_impl", v, off)
            return True
        if 0xFFE8 <= off <= 0xFFEB:  # GITS_PIDR2
            return True if word else bad_width()
        self.log.emit("gits.unhandled_write", v, dabt.reg, off)
        return False


EBUSY = 16


class FakeHostIts:
    """A test double of :class:`HostItsOps` that applies Xen's host-side checks
    (``gicv3_its_map_guest_device``: DeviceID width, events rounded to a power of two >= 32
    and below 2^evid_bits, -EBUSY on a remap, -ENOENT when unmapping an unknown device;
    ``gicv3_assign_guest_event`` / ``gicv3_remove_guest_event``: -EINVAL without the event).
    It records every call in :attr:`calls` and the host LPI map in :attr:`events`."""

    def __init__(self, *, devid_bits: int = 16, evid_bits: int = 16) -> None:
        self.devid_bits = devid_bits
        self.evid_bits = evid_bits
        self.devices: dict[tuple[int, int], int] = {}
        self.events: dict[tuple[int, int, int], tuple[int, int]] = {}
        self.calls: list[tuple[object, ...]] = []

    def _check(self, devid: int, nr_events: int) -> int:
        if devid >= 1 << self.devid_bits:
            return -EINVAL
        if its_device_nr_events(nr_events) >= 1 << self.evid_bits:
            return -EINVAL
        return 0

    def map_guest_device(self, d: int, doorbell: int, devid: int, nr_events: int) -> Core[int]:
        self.calls.append(("map_guest_device", d, devid, nr_events))
        ret = self._check(devid, nr_events)
        if ret == 0 and (doorbell, devid) in self.devices:
            ret = -EBUSY
        if ret == 0:
            self.devices[(doorbell, devid)] = its_device_nr_events(nr_events)
        return ret
        yield  # a core

    def unmap_guest_device(self, d: int, doorbell: int, devid: int, nr_events: int) -> Core[int]:
        self.calls.append(("unmap_guest_device", d, devid, nr_events))
        ret = self._check(devid, nr_events)
        if ret == 0:
            if self.devices.pop((doorbell, devid), None) is None:
                ret = -ENOENT
            else:
                for key in [k for k in self.events if k[:2] == (doorbell, devid)]:
                    del self.events[key]
        return ret
        yield

    def assign_guest_event(
        self, d: int, doorbell: int, devid: int, eventid: int, vlpi: int
    ) -> Core[int]:
        self.calls.append(("assign_guest_event", d, devid, eventid, vlpi))
        if eventid >= self.devices.get((doorbell, devid), 0):
            return -EINVAL
        self.events[(doorbell, devid, eventid)] = (d, vlpi)
        return 0
        yield

    def remove_guest_event(self, d: int, doorbell: int, devid: int, eventid: int) -> Core[int]:
        self.calls.append(("remove_guest_event", d, devid, eventid))
        if eventid >= self.devices.get((doorbell, devid), 0):
            return -EINVAL
        self.events[(doorbell, devid, eventid)] = (d, INVALID_LPI)
        return 0
        yield
