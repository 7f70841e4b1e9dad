"""Xen 4.17's host side of the ITS and LPIs: xen/arch/arm/gic-v3-its.c and gic-v3-lpi.c.

Xen owns the physical ITS and every physical LPI. Its tables live in Xen's own memory (the
Xen heap, :class:`XenHeap`), never in a guest's: the host LPI property table (one, shared by
all redistributors), one pending table per pCPU, the ITS device and collection tables, the
1 MiB command queue and one ITT per mapped device. The physical GIC (``gic.gic.Gic``) reads
and writes them through its memory port; whoever runs these cores answers those requests from
:attr:`HostIts.heap` (``heap.answer``): they never become ``mem`` messages to a guest.

Every function that touches the GIC is a core (a generator): it yields the GIC's MemRead /
MemWrite requests for Xen heap addresses and returns Xen's C return value (0 or a negative
errno). Host ITS commands are written into the command queue in Xen memory, then GITS_CWRITER
is written and GITS_CREADR polled (``its_send_command``, ``gicv3_its_wait_commands``); the
polling deadline of the C code is modelled as a number of polls.

Host LPIs are allocated in blocks of 32 (``LPI_BLOCK``), each entry tagged with the domain
and ``INVALID_LPI``, and their property bytes are enabled at once and for good, so Xen never
issues host ITS commands at guest run time except on MAPD. All host LPIs go to collection 0,
i.e. pCPU 0 ("For now we map every host LPI to host CPU 0").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gic import its_commands as cmds
from gic.port import Core, MemRead, MemWrite, Ram
from gic.registers import (
    GICR_CTLR,
    GICR_PENDBASER,
    GICR_PROPBASER,
    GICR_TYPER,
    GITS_BASER,
    GITS_BASER_NR_REGS,
    GITS_BASER_TYPE_COLLECTION,
    GITS_BASER_TYPE_DEVICE,
    GITS_BASER_TYPE_NONE,
    GITS_BASER_TYPE_VCPU,
    GITS_CBASER,
    GITS_CREADR,
    GITS_CTLR,
    GITS_CWRITER,
    GITS_TYPER,
)
from transport.abi import XEN_EBUSY, XEN_EINVAL, XEN_ENODEV, XEN_ENOENT, XEN_ENOMEM, XEN_ENOSPC

# --- Xen constants ----------------------------------------------------------------------------

LPI_OFFSET = 8192
#: gic-v3-lpi.c: host LPIs are allocated (and guest events rounded up) in blocks of 32.
LPI_BLOCK = 32
#: asm/gic_v3_its.h: "virt_lpi == INVALID_LPI" marks an unmapped event.
INVALID_LPI = 0
#: public/xen.h DOMID_INVALID: a free host_lpi slot.
DOMID_INVALID = 0x7FF4
#: asm/gic.h GIC_PRI_IRQ and LPI_PROP_RES1 / LPI_PROP_ENABLED.
GIC_PRI_IRQ = 0xA0
LPI_PROP_RES1 = 1 << 1
LPI_PROP_ENABLED = 1 << 0
#: PAGE_SIZE / sizeof(union host_lpi): 512 entries per second-level page.
HOST_LPIS_PER_PAGE = 4096 // 8
#: gic-v3-its.c ITS_CMD_QUEUE_SZ.
ITS_CMD_QUEUE_SZ = 1 << 20
ITS_CMD_SIZE = 32
#: ``max_lpi_bits`` command-line default (docs/misc/xen-command-line.pandoc).
MAX_LPI_BITS_DEFAULT = 20
#: gicv3_its_wait_commands' 100 ms and its_send_command's 1 ms deadlines, as poll counts.
WAIT_COMMANDS_POLLS = 100
SEND_COMMAND_POLLS = 10
XEN_ETIMEDOUT = 110  # xen/include/xen/errno.h ETIMEDOUT (not in the public errno list)
XEN_ERANGE = 34

SZ_4K = 0x1000
SZ_64K = 0x10000

# GIC_BASER_* attribute encodings (asm/gic_v3_defs.h).
GIC_BASER_CACHE_nC = 1
GIC_BASER_CACHE_RaWaWb = 7
GIC_BASER_CACHE_SameAsInner = 0
GIC_BASER_InnerShareable = 1
GIC_BASER_NonShareable = 0

#: The Xen heap of this model: the top 256 MiB of QEMU virt's 2 GiB of RAM, which the dom0
#: banks of xen-dom0-dt.log (0x60000000 + 512 MiB, 0xa0000000 + 256 MiB) leave to Xen.
XEN_HEAP_BASE = 0xB000_0000
XEN_HEAP_SIZE = 0x1000_0000

_BUFPTR_MASK = 0xF_FFE0  # GENMASK(19, 5)
_VALID = 1 << 63


def _fls(x: int) -> int:
    """Xen fls(): 1-based index of the most significant set bit, 0 for 0."""
    return x.bit_length()


class XenHeap:
    """Xen's own memory: ``_xzalloc``/``_xmalloc`` as a bump allocator over a local Ram.

    Freed memory is not reused (nothing in the modelled paths frees and reallocates at a rate
    that matters). ``on_access`` sees every GIC access, for counters or ``hostmem`` records.
    """

    def __init__(self, base: int = XEN_HEAP_BASE, size: int = XEN_HEAP_SIZE) -> None:
        self.base = base
        self.size = size
        self.ram = Ram(base, size)
        self._next = base
        self.reads = 0
        self.writes = 0
        self.on_access: Callable[[MemRead | MemWrite], None] | None = None

    def contains(self, addr: int, size: int = 1) -> bool:
        return self.base <= addr and addr + max(size, 1) <= self.base + self.size

    def xzalloc(self, size: int, align: int = 8) -> int | None:
        """_xzalloc(size, align): zeroed memory (the Ram is zero where never written)."""
        if size <= 0 or align <= 0:
            return None
        addr = -(-self._next // align) * align
        if addr + size > self.base + self.size:
            return None
        self._next = addr + size
        return addr

    def xfree(self, addr: int | None) -> None:
        """xfree(): nothing is reused, so nothing to do."""

    def answer(self, req: Any) -> Any:
        """Answer the physical GIC's memory request; a failure is an exception instance."""
        if self.on_access is not None and isinstance(req, (MemRead, MemWrite)):
            self.on_access(req)
        try:
            if isinstance(req, MemRead):
                self.reads += 1
                return self.ram.read(req.addr, req.size)
            if isinstance(req, MemWrite):
                self.writes += 1
                self.ram.write(req.addr, bytes(req.data))
                return None
        except ValueError as exc:
            return exc
        return TypeError(f"Xen heap cannot answer {req!r}")


@dataclass(slots=True)
class HostLpi:
    """``union host_lpi``: the guest LPI a host LPI is connected to (read/written whole)."""

    virt_lpi: int = INVALID_LPI
    dom_id: int = DOMID_INVALID


@dataclass(slots=True)
class ItsDevice:
    """``struct its_device``: a host device mapped for a guest (key: doorbell, guest DeviceID)."""

    host_devid: int
    guest_devid: int
    guest_doorbell: int
    eventids: int
    itt_addr: int
    host_lpi_blocks: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Collection:
    """Host collection ``cpu`` -> redistributor ``cpu`` (PTA = 0: processor number)."""

    cpu: int
    mapped: bool = False


class HostIts:
    """One host ITS (``struct host_its``) plus Xen's global LPI data (``lpi_data``).

    ``gic`` is the physical ``gic.gic.Gic``; ``num_cpus`` the pCPUs. Nothing here raises on
    guest input: the guest-facing entry points return negative errnos as Xen does.
    """

    def __init__(
        self,
        gic: Any,
        num_cpus: int,
        *,
        heap: XenHeap | None = None,
        max_lpi_bits: int = MAX_LPI_BITS_DEFAULT,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.gic = gic
        self.num_cpus = num_cpus
        self.heap = heap if heap is not None else XenHeap()
        self.max_lpi_bits = max_lpi_bits
        self.log = log or (lambda _line: None)
        its = getattr(gic, "its", None)
        self.addr: int = its.base if its is not None else 0
        self.present = its is not None
        self.devid_bits = 0
        self.evid_bits = 0
        self.itte_size = 0
        self.uses_pta = False
        self.cmd_buf = 0
        self.flush_cmd_queue = False
        self.enabled = False
        # lpi_data
        self.max_host_lpi_ids = 0
        self.lpi_property = 0
        self.proptable_needs_flushing = False
        self.host_lpis: dict[int, list[HostLpi]] = {}
        self.next_free_lpi = 0
        self.pending_tables: dict[int, int] = {}
        self.collections: dict[int, Collection] = {}
        self.devices: dict[tuple[int, int], ItsDevice] = {}
        self.commands_sent = 0

    # -- small helpers -------------------------------------------------------------------------

    @property
    def doorbell(self) -> int:
        """ITS_DOORBELL_OFFSET (GITS_TRANSLATER) of this ITS."""
        return self.addr + 0x10040

    @property
    def max_nr_host_lpis(self) -> int:
        """MAX_NR_HOST_LPIS = max_host_lpi_ids - LPI_OFFSET."""
        return max(self.max_host_lpi_ids - LPI_OFFSET, 0)

    def _its_read(self, reg: int, size: int = 8) -> Core[int]:
        value = yield from self.gic.mmio(0, self.addr + reg, size, False)
        return int(value)

    def _its_write(self, reg: int, value: int, size: int = 8) -> Core[None]:
        yield from self.gic.mmio(0, self.addr + reg, size, True, value)

    def _rd_read(self, cpu: int, reg: int, size: int) -> Core[int]:
        value = yield from self.gic.mmio(cpu, self.gic.redistributor_base(cpu) + reg, size, False)
        return int(value)

    def _rd_write(self, cpu: int, reg: int, value: int, size: int) -> Core[None]:
        yield from self.gic.mmio(cpu, self.gic.redistributor_base(cpu) + reg, size, True, value)

    # -- command queue -------------------------------------------------------------------------

    def its_send_command(self, cmd: bytes) -> Core[int]:
        """its_send_command: copy 32 bytes to cmd_buf + CWRITER, advance GITS_CWRITER."""
        for _ in range(SEND_COMMAND_POLLS):
            readp = (yield from self._its_read(GITS_CREADR.offset)) & _BUFPTR_MASK
            writep = (yield from self._its_read(GITS_CWRITER.offset)) & _BUFPTR_MASK
            if (writep + ITS_CMD_SIZE) % ITS_CMD_QUEUE_SZ != readp:
                break
        else:
            self.log("host ITS: command queue full.")
            return -XEN_EBUSY
        self.heap.ram.write(self.cmd_buf + writep, bytes(cmd))
        writep = (writep + ITS_CMD_SIZE) % ITS_CMD_QUEUE_SZ
        yield from self._its_write(GITS_CWRITER.offset, writep & _BUFPTR_MASK)
        self.commands_sent += 1
        return 0

    def gicv3_its_wait_commands(self) -> Core[int]:
        """gicv3_its_wait_commands: poll until GITS_CREADR == GITS_CWRITER."""
        for _ in range(WAIT_COMMANDS_POLLS):
            readp = (yield from self._its_read(GITS_CREADR.offset)) & _BUFPTR_MASK
            writep = (yield from self._its_read(GITS_CWRITER.offset)) & _BUFPTR_MASK
            if readp == writep:
                return 0
        return -XEN_ETIMEDOUT

    def its_send_cmd_sync(self, cpu: int) -> Core[int]:
        return (yield from self.its_send_command(cmds.Sync(RDbase=self._rdbase(cpu)).encode()))

    def its_send_cmd_mapc(self, collection_id: int, cpu: int) -> Core[int]:
        cmd = cmds.Mapc(ICID=collection_id, RDbase=self._rdbase(cpu), V=1)
        return (yield from self.its_send_command(cmd.encode()))

    def its_send_cmd_mapti(self, devid: int, eventid: int, pintid: int, icid: int) -> Core[int]:
        cmd = cmds.Mapti(DeviceID=devid, EventID=eventid, pINTID=pintid, ICID=icid)
        return (yield from self.its_send_command(cmd.encode()))

    def its_send_cmd_mapd(
        self, devid: int, size_bits: int, itt_addr: int, valid: bool
    ) -> Core[int]:
        """MAPD; ``size_bits`` is the number of event ID bits (encoded minus one)."""
        size = size_bits - 1 if valid else size_bits
        cmd = cmds.Mapd(DeviceID=devid, Size=size, ITT_addr=itt_addr, V=int(valid))
        return (yield from self.its_send_command(cmd.encode()))

    def its_send_cmd_inv(self, devid: int, eventid: int) -> Core[int]:
        return (
            yield from self.its_send_command(cmds.Inv(DeviceID=devid, EventID=eventid).encode())
        )

    def _rdbase(self, cpu: int) -> int:
        """encode_rdbase / gicv3_get_redist_address: PTA = 0 -> the processor number."""
        if self.uses_pta:
            return self.gic.redistributor_base(cpu) >> 16
        return cpu

    # -- initialisation ------------------------------------------------------------------------

    def gicv3_its_init(self) -> Core[int]:
        """gicv3_its_init -> gicv3_its_init_single_its: disable, read GITS_TYPER, back every
        GITS_BASER<n> with Xen memory (its_map_baser), the 1 MiB queue (its_map_cbaser),
        CWRITER = 0, enable."""
        if not self.present:
            return -XEN_ENODEV
        ret = yield from self.gicv3_disable_its()
        if ret:
            return ret
        typer = yield from self._its_read(GITS_TYPER.offset)
        t = GITS_TYPER.decode(typer)
        self.devid_bits = t["Devbits"] + 1
        self.evid_bits = t["ID_bits"] + 1
        self.itte_size = t["ITT_entry_size"] + 1
        self.uses_pta = bool(t["PTA"])
        for i in range(GITS_BASER_NR_REGS):
            reg_off = GITS_BASER.offset + 8 * i
            reg = yield from self._its_read(reg_off)
            kind = GITS_BASER.get(reg, "Type")
            if kind == GITS_BASER_TYPE_NONE:
                continue
            if kind == GITS_BASER_TYPE_DEVICE:
                n = 1 << self.devid_bits
            elif kind == GITS_BASER_TYPE_COLLECTION:
                n = self.num_cpus
            elif kind == GITS_BASER_TYPE_VCPU:
                n = 1
            else:
                continue
            ret = yield from self.its_map_baser(reg_off, reg, n)
            if ret:
                return ret
        ret = yield from self.its_map_cbaser()
        if ret:
            return ret
        yield from self._its_write(GITS_CWRITER.offset, 0)
        ctlr = yield from self._its_read(GITS_CTLR.offset, 4)
        yield from self._its_write(GITS_CTLR.offset, ctlr | GITS_CTLR["Enabled"].mask, 4)
        self.enabled = True
        return 0

    def gicv3_disable_its(self) -> Core[int]:
        """gicv3_disable_its: clear Enabled and wait for Quiescent."""
        quiescent = GITS_CTLR["Quiescent"].mask
        enabled = GITS_CTLR["Enabled"].mask
        reg = yield from self._its_read(GITS_CTLR.offset, 4)
        if not reg & enabled and reg & quiescent:
            return 0
        yield from self._its_write(GITS_CTLR.offset, reg & ~enabled, 4)
        for _ in range(WAIT_COMMANDS_POLLS):
            reg = yield from self._its_read(GITS_CTLR.offset, 4)
            if reg & quiescent:
                return 0
        self.log(f"ITS@{self.addr:x} not quiescent.")
        return -XEN_ETIMEDOUT

    def its_map_baser(self, reg_off: int, regc: int, nr_items: int) -> Core[int]:
        """its_map_baser: try 64K pages first, then 16K and 4K, keep what the ITS accepts."""
        attr = GITS_BASER.encode(
            Shareability=GIC_BASER_InnerShareable,
            OuterCache=GIC_BASER_CACHE_SameAsInner,
            InnerCache=GIC_BASER_CACHE_RaWaWb,
        )
        attr_mask = GITS_BASER.encode(Shareability=3, OuterCache=7, InnerCache=7)
        ro_mask = GITS_BASER["Type"].mask | GITS_BASER["Entry_Size"].mask
        entry_size = GITS_BASER.get(regc, "Entry_Size") + 1
        for pagesz in (2, 1, 0):
            page_bits = pagesz * 2 + 12
            page = 1 << page_bits
            table_size = -(-nr_items * entry_size // page) * page
            table_size = min(table_size, 256 << page_bits)
            buffer = self.heap.xzalloc(table_size, page)
            if buffer is None:
                return -XEN_ENOMEM
            if buffer >> (48 if page_bits < 16 else 52):  # check_baser_phys_addr
                return -XEN_ERANGE
            pa = buffer & ((1 << 48) - (1 << page_bits))
            if page_bits >= 16:
                pa |= ((buffer >> 48) & 0xF) << 12
            reg = attr | (pagesz << 8) | ((table_size >> page_bits) - 1) | (regc & ro_mask)
            reg |= _VALID | pa
            yield from self._its_write(reg_off, reg)
            regc = yield from self._its_read(reg_off)
            if regc & attr_mask != attr:
                if GITS_BASER.get(regc, "Shareability") == GIC_BASER_NonShareable:
                    regc &= ~GITS_BASER["InnerCache"].mask
                    yield from self._its_write(reg_off, regc)
                attr = regc & attr_mask
            if GITS_BASER.get(regc, "Page_Size") == pagesz:
                return 0
            self.heap.xfree(buffer)
        return -XEN_EINVAL

    def its_map_cbaser(self) -> Core[int]:
        """its_map_cbaser: a zeroed 1 MiB queue, 64 KiB aligned, Valid, RaWaWb, inner shareable."""
        buffer = self.heap.xzalloc(ITS_CMD_QUEUE_SZ, SZ_64K)
        if buffer is None:
            return -XEN_ENOMEM
        reg = GITS_CBASER.encode(
            Shareability=GIC_BASER_InnerShareable,
            OuterCache=GIC_BASER_CACHE_SameAsInner,
            InnerCache=GIC_BASER_CACHE_RaWaWb,
            Valid=1,
            Size=ITS_CMD_QUEUE_SZ // SZ_4K - 1,
        )
        reg |= buffer
        yield from self._its_write(GITS_CBASER.offset, reg)
        reg = yield from self._its_read(GITS_CBASER.offset)
        if GITS_CBASER.get(reg, "Shareability") == 0:
            reg &= ~GITS_CBASER["InnerCache"].mask
            yield from self._its_write(GITS_CBASER.offset, reg)
        if not GITS_CBASER.get(reg, "InnerCache"):
            self.flush_cmd_queue = True
            self.log("using non-cacheable ITS command queue")
        self.cmd_buf = buffer
        return 0

    def gicv3_lpi_init_host_lpis(self, host_lpi_bits: int) -> int:
        """gicv3_lpi_init_host_lpis: 2^min(IDbits, max_lpi_bits) host LPI IDs; prints the count."""
        if not 14 <= self.max_lpi_bits <= 32:
            self.log("WARNING: max_lpi_bits must be between 14 and 32, adjusting.")
        self.max_lpi_bits = max(self.max_lpi_bits, 14)
        self.max_host_lpi_ids = 1 << min(host_lpi_bits, self.max_lpi_bits)
        self.next_free_lpi = 0
        self.host_lpis = {}
        self.log(f"GICv3: using at most {self.max_nr_host_lpis} LPIs on the host.")
        return 0

    def gicv3_lpi_allocate_pendtable(self, cpu: int) -> tuple[int, int]:
        """gicv3_lpi_allocate_pendtable: (errno, GICR_PENDBASER value with PTZ)."""
        if cpu in self.pending_tables:
            return -XEN_EBUSY, 0
        table = self.heap.xzalloc(max(self.max_host_lpi_ids // 8, 1), SZ_64K)
        if table is None:
            return -XEN_ENOMEM, 0
        self.pending_tables[cpu] = table
        val = GICR_PENDBASER.encode(
            InnerCache=GIC_BASER_CACHE_RaWaWb,
            OuterCache=GIC_BASER_CACHE_SameAsInner,
            Shareability=GIC_BASER_InnerShareable,
            PTZ=1,
        )
        return 0, val | table

    def gicv3_lpi_set_proptable(self, cpu: int) -> Core[int]:
        """gicv3_lpi_set_proptable: allocate the shared property table once (every byte
        GIC_PRI_IRQ | LPI_PROP_RES1 = 0xa2, disabled), program GICR_PROPBASER."""
        if not self.lpi_property:
            table = self.heap.xzalloc(self.max_host_lpi_ids, SZ_4K)
            if table is None:
                return -XEN_ENOMEM
            fill = GIC_PRI_IRQ | LPI_PROP_RES1
            self.heap.ram.write(table, bytes([fill]) * self.max_nr_host_lpis)
            self.lpi_property = table
        reg = GICR_PROPBASER.encode(
            InnerCache=GIC_BASER_CACHE_RaWaWb,
            OuterCache=GIC_BASER_CACHE_SameAsInner,
            Shareability=GIC_BASER_InnerShareable,
            IDbits=_fls(self.max_host_lpi_ids - 1) - 1,
        )
        reg |= self.lpi_property
        yield from self._rd_write(cpu, GICR_PROPBASER.offset, reg, 8)
        reg = yield from self._rd_read(cpu, GICR_PROPBASER.offset, 8)
        if not GICR_PROPBASER.get(reg, "Shareability"):
            reg = GICR_PROPBASER.replace(reg, InnerCache=GIC_BASER_CACHE_nC)
        if GICR_PROPBASER.get(reg, "InnerCache") <= GIC_BASER_CACHE_nC:
            self.proptable_needs_flushing = True
            yield from self._rd_write(cpu, GICR_PROPBASER.offset, reg, 8)
        return 0

    def gicv3_lpi_init_rdist(self, cpu: int) -> Core[int]:
        """gicv3_lpi_init_rdist: refuse if EnableLPIs is already set, then PENDBASER (PTZ)
        and PROPBASER."""
        if not self.present:
            return -XEN_ENODEV
        ctlr = yield from self._rd_read(cpu, GICR_CTLR.offset, 4)
        if ctlr & GICR_CTLR["EnableLPIs"].mask:
            return -XEN_EBUSY
        ret, table_reg = self.gicv3_lpi_allocate_pendtable(cpu)
        if ret:
            return ret
        yield from self._rd_write(cpu, GICR_PENDBASER.offset, table_reg, 8)
        table_reg = yield from self._rd_read(cpu, GICR_PENDBASER.offset, 8)
        if not GICR_PENDBASER.get(table_reg, "Shareability"):
            table_reg = GICR_PENDBASER.replace(table_reg, InnerCache=GIC_BASER_CACHE_nC)
            yield from self._rd_write(cpu, GICR_PENDBASER.offset, table_reg, 8)
        return (yield from self.gicv3_lpi_set_proptable(cpu))

    def gicv3_enable_lpis(self, cpu: int) -> Core[bool]:
        """gicv3_enable_lpis: set GICR_CTLR.EnableLPIs if the redistributor has PLPIS."""
        typer = yield from self._rd_read(cpu, GICR_TYPER.offset, 4)
        if not typer & GICR_TYPER["PLPIS"].mask:
            return False
        ctlr = yield from self._rd_read(cpu, GICR_CTLR.offset, 4)
        yield from self._rd_write(cpu, GICR_CTLR.offset, ctlr | GICR_CTLR["EnableLPIs"].mask, 4)
        return True

    def gicv3_its_setup_collection(self, cpu: int) -> Core[int]:
        """gicv3_its_setup_collection: MAPC cpu -> cpu, SYNC, wait."""
        ret = yield from self.its_send_cmd_mapc(cpu, cpu)
        if ret:
            return ret
        ret = yield from self.its_send_cmd_sync(cpu)
        if ret:
            return ret
        ret = yield from self.gicv3_its_wait_commands()
        if ret == 0:
            self.collections[cpu] = Collection(cpu, True)
        return ret

    # -- host LPI allocation -------------------------------------------------------------------

    def gic_get_host_lpi(self, plpi: int) -> HostLpi | None:
        """gic_get_host_lpi: the host_lpi entry of physical LPI ``plpi``, or None."""
        if not isinstance(plpi, int) or plpi < LPI_OFFSET:
            return None
        if plpi >= self.max_nr_host_lpis + LPI_OFFSET:
            return None
        idx = plpi - LPI_OFFSET
        block = self.host_lpis.get(idx // HOST_LPIS_PER_PAGE)
        if block is None:
            return None
        return block[idx % HOST_LPIS_PER_PAGE]

    def gicv3_lpi_update_host_entry(self, host_lpi: int, domain_id: int, virt_lpi: int) -> None:
        """gicv3_lpi_update_host_entry: one atomic write of (virt_lpi, dom_id)."""
        idx = host_lpi - LPI_OFFSET
        entry = self.host_lpis[idx // HOST_LPIS_PER_PAGE][idx % HOST_LPIS_PER_PAGE]
        entry.virt_lpi = virt_lpi
        entry.dom_id = domain_id

    def _find_unused_host_lpi(self, start: int, index: int) -> tuple[int, int]:
        """find_unused_host_lpi: (chunk, index) of a free block, chunk -1 when full."""
        i = index
        for chunk in range(start, self.max_nr_host_lpis // HOST_LPIS_PER_PAGE):
            page = self.host_lpis.get(chunk)
            if page is None:
                return chunk, 0
            while i < HOST_LPIS_PER_PAGE:
                if page[i].dom_id == DOMID_INVALID:
                    return chunk, i
                i += LPI_BLOCK
            i = 0
        return -1, 0

    def gicv3_allocate_host_lpi_block(self, domid: int) -> tuple[int, int]:
        """gicv3_allocate_host_lpi_block: (errno, first host LPI) of 32 LPIs tagged with
        ``domid`` and INVALID_LPI, their property bytes enabled for good."""
        lpi_idx = self.next_free_lpi % HOST_LPIS_PER_PAGE
        chunk, lpi_idx = self._find_unused_host_lpi(
            self.next_free_lpi // HOST_LPIS_PER_PAGE, lpi_idx
        )
        if chunk == -1:
            chunk, lpi_idx = self._find_unused_host_lpi(0, 0)
            if chunk == -1:
                return -XEN_ENOSPC, 0
        if chunk not in self.host_lpis:
            self.host_lpis[chunk] = [HostLpi() for _ in range(HOST_LPIS_PER_PAGE)]
            lpi_idx = 0
        lpi = chunk * HOST_LPIS_PER_PAGE + lpi_idx
        page = self.host_lpis[chunk]
        prop = bytearray(self.heap.ram.read(self.lpi_property + lpi, LPI_BLOCK))
        for i in range(LPI_BLOCK):
            page[lpi_idx + i] = HostLpi(INVALID_LPI, domid)
            prop[i] |= LPI_PROP_ENABLED
        self.heap.ram.write(self.lpi_property + lpi, bytes(prop))
        self.next_free_lpi = lpi + LPI_BLOCK
        return 0, lpi + LPI_OFFSET

    def gicv3_free_host_lpi_block(self, first_lpi: int) -> None:
        """gicv3_free_host_lpi_block: mark the 32 entries free. As in Xen the property bytes
        stay enabled, and ``next_free_lpi`` (an index) is compared with ``first_lpi`` (an
        INTID), so it only moves back when already beyond that INTID."""
        if self.gic_get_host_lpi(first_lpi) is None:
            return
        idx = first_lpi - LPI_OFFSET
        page = self.host_lpis[idx // HOST_LPIS_PER_PAGE]
        for i in range(LPI_BLOCK):
            page[idx % HOST_LPIS_PER_PAGE + i] = HostLpi(0, DOMID_INVALID)
        if self.next_free_lpi > first_lpi:
            self.next_free_lpi = first_lpi

    # -- guest devices -------------------------------------------------------------------------

    def gicv3_its_map_host_events(
        self, devid: int, eventid: int, lpi: int, nr_events: int
    ) -> Core[int]:
        """gicv3_its_map_host_events: MAPTI (collection 0) + INV per event, then SYNC, wait."""
        for i in range(nr_events):
            ret = yield from self.its_send_cmd_mapti(devid, eventid + i, lpi + i, 0)
            if ret:
                return ret
            ret = yield from self.its_send_cmd_inv(devid, eventid + i)
            if ret:
                return ret
        ret = yield from self.its_send_cmd_sync(0)
        if ret:
            return ret
        return (yield from self.gicv3_its_wait_commands())

    def gicv3_its_map_guest_device(
        self,
        domid: int,
        host_doorbell: int,
        host_devid: int,
        guest_doorbell: int,
        guest_devid: int,
        nr_events: int,
        valid: bool,
    ) -> Core[int]:
        """gicv3_its_map_guest_device: round the events up to a power of two >= 32, host ITT,
        host MAPD, then a block of 32 host LPIs per 32 events, each MAPTI'd to collection 0;
        -EBUSY if the guest device is already mapped; V=0 unmaps (MAPD V=0, free blocks)."""
        if not self.present or not self.enabled or host_doorbell != self.doorbell:
            return -XEN_ENOENT
        if not isinstance(host_devid, int) or not 0 <= host_devid < 1 << self.devid_bits:
            return -XEN_EINVAL
        if not isinstance(nr_events, int) or nr_events < 0:
            return -XEN_EINVAL
        # nr_events = BIT(fls(nr_events - 1)): with nr_events = 0, fls of the all-ones u64.
        nr_events = 1 << _fls((nr_events - 1) & ((1 << 64) - 1))
        nr_events = max(nr_events, LPI_BLOCK)
        if nr_events >= 1 << self.evid_bits:
            return -XEN_EINVAL
        key = (guest_doorbell, guest_devid)
        dev = self.devices.get(key)
        if dev is not None:
            if valid:
                self.log(
                    f"d{domid} tried to remap guest ITS device {guest_devid:#x} "
                    f"to host device {host_devid:#x}"
                )
                return -XEN_EBUSY
            del self.devices[key]
            return (yield from self.remove_mapped_guest_device(dev))
        if not valid:
            return -XEN_ENOENT
        itt = self.heap.xzalloc(nr_events * self.itte_size, 256)
        if itt is None:
            return -XEN_ENOMEM
        ret = yield from self.its_send_cmd_mapd(host_devid, _fls(nr_events - 1), itt, True)
        if ret:
            return ret
        dev = ItsDevice(host_devid, guest_devid, guest_doorbell, nr_events, itt)
        self.devices[key] = dev
        i = 0
        for i in range(nr_events // LPI_BLOCK):
            ret, first = self.gicv3_allocate_host_lpi_block(domid)
            if ret < 0:
                break
            dev.host_lpi_blocks.append(first)
            ret = yield from self.gicv3_its_map_host_events(
                host_devid, i * LPI_BLOCK, first, LPI_BLOCK
            )
            if ret < 0:
                break
        if ret:
            for first in dev.host_lpi_blocks:
                self.gicv3_free_host_lpi_block(first)
            yield from self.its_send_cmd_mapd(host_devid, 0, 0, False)
            del self.devices[key]
            self.heap.xfree(itt)
            return ret
        return 0

    def remove_mapped_guest_device(self, dev: ItsDevice) -> Core[int]:
        """remove_mapped_guest_device: MAPD V=0 (discards every event), free the blocks."""
        ret = yield from self.its_send_cmd_mapd(dev.host_devid, 0, 0, False)
        for first in dev.host_lpi_blocks:
            self.gicv3_free_host_lpi_block(first)
        if not ret:
            ret = yield from self.gicv3_its_wait_commands()
        if ret:
            self.log(f"Can't unmap host ITS device {dev.host_devid:#x}")
        self.heap.xfree(dev.itt_addr)
        return 0

    def _event_host_lpi(self, guest_doorbell: int, devid: int, eventid: int) -> int | None:
        """get_event_pending_irq's host LPI lookup, or None when there is no such event."""
        dev = self.devices.get((guest_doorbell, devid))
        if dev is None or not isinstance(eventid, int) or not 0 <= eventid < dev.eventids:
            return None
        block = eventid // LPI_BLOCK
        if block >= len(dev.host_lpi_blocks):
            return None
        return dev.host_lpi_blocks[block] + eventid % LPI_BLOCK

    def gicv3_assign_guest_event(
        self, domid: int, guest_doorbell: int, devid: int, eventid: int, virt_lpi: int
    ) -> int:
        """gicv3_assign_guest_event: connect the event's host LPI to (domid, virt_lpi).
        Returns the host LPI, or -EINVAL when the device or event does not exist (Xen: NULL)."""
        host_lpi = self._event_host_lpi(guest_doorbell, devid, eventid)
        if host_lpi is None:
            return -XEN_EINVAL
        self.gicv3_lpi_update_host_entry(host_lpi, domid, virt_lpi)
        return host_lpi

    def gicv3_remove_guest_event(
        self, domid: int, guest_doorbell: int, devid: int, eventid: int
    ) -> int:
        """gicv3_remove_guest_event: set the host entry back to INVALID_LPI."""
        host_lpi = self._event_host_lpi(guest_doorbell, devid, eventid)
        if host_lpi is None:
            return -XEN_EINVAL
        self.gicv3_lpi_update_host_entry(host_lpi, domid, INVALID_LPI)
        return 0

    def host_lpi_of(
        self, devid: int, eventid: int, guest_doorbell: int | None = None
    ) -> int | None:
        """The host LPI that (devid, eventid) of dom0's vITS is wired to, or None."""
        return self._event_host_lpi(self.doorbell if guest_doorbell is None else guest_doorbell,
                                    devid, eventid)  # fmt: skip

    # -- the protocol the vITS calls (hypervisor/vits.py HostItsOps) ----------------------------
    # dom0's vITS sits at the host ITS address and uses the host DeviceIDs, so its_handle_mapd
    # passes the vITS doorbell as both the host and the guest doorbell.

    def map_guest_device(self, d: int, doorbell: int, devid: int, nr_events: int) -> Core[int]:
        """its_handle_mapd V=1 for the hardware domain: 0, -EBUSY, -EINVAL, -ENOENT."""
        return (
            yield from self.gicv3_its_map_guest_device(
                d, doorbell, devid, doorbell, devid, nr_events, True
            )
        )

    def unmap_guest_device(self, d: int, doorbell: int, devid: int, nr_events: int) -> Core[int]:
        """its_handle_mapd V=0: gicv3_its_map_guest_device(valid=false) (size checked first)."""
        return (
            yield from self.gicv3_its_map_guest_device(
                d, doorbell, devid, doorbell, devid, nr_events, False
            )
        )

    def assign_guest_event(
        self, d: int, doorbell: int, devid: int, eventid: int, vlpi: int
    ) -> Core[int]:
        """its_handle_mapti: gicv3_assign_guest_event; 0, or -EINVAL (Xen: NULL pirq)."""
        ret = self.gicv3_assign_guest_event(d, doorbell, devid, eventid, vlpi)
        return ret if ret < 0 else 0
        yield  # pragma: no cover - a core without memory accesses

    def remove_guest_event(self, d: int, doorbell: int, devid: int, eventid: int) -> Core[int]:
        """its_discard_event / MAPTI failure: gicv3_remove_guest_event; 0 or -EINVAL."""
        return self.gicv3_remove_guest_event(d, doorbell, devid, eventid)
        yield  # pragma: no cover - a core without memory accesses


__all__ = [
    "DOMID_INVALID",
    "HOST_LPIS_PER_PAGE",
    "INVALID_LPI",
    "ITS_CMD_QUEUE_SZ",
    "LPI_BLOCK",
    "LPI_OFFSET",
    "XEN_HEAP_BASE",
    "XEN_HEAP_SIZE",
    "HostIts",
    "HostLpi",
    "ItsDevice",
    "XenHeap",
]
