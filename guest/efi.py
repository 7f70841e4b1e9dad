"""The kernel's EFI paths: the stub, ``efi_init``, the configuration tables and their users.

* :func:`efi_stub` — drivers/firmware/efi/libstub, as the variant's ``efi_stub`` says:
  v5.15 ``efi_pe_entry`` ("Generating empty DTB", ``efi_load_initrd``,
  ``efi_random_get_seed``, ``install_memreserve_table``, ``allocate_new_fdt_and_exit_boot``
  -> ``update_fdt`` with linux,initrd-start/end); v6.1 ``efi_pe_entry`` ->
  ``efi_stub_common`` (``efi_load_initrd`` installing the LINUX_EFI_INITRD_MEDIA_GUID
  table, f4dc7fffa987; ``efi_random_get_seed``; ``install_memreserve_table``) ->
  ``efi_boot_kernel`` ("Generating empty DTB"). The empty DTB itself is built by the
  firmware side (``hypervisor.firmware.virt.efi_stub_dtb``); the stub adds the initrd.
* :class:`BootServices` — the EDK II boot services the stub calls (AllocatePool,
  LocateProtocol, InstallConfigurationTable), from the facts the firmware side put in
  ``BootInfo.addresses`` (pool heads, config-table slots, EFI_RNG_PROTOCOL).
* :func:`efi_init` — drivers/firmware/efi/efi-init.c ``efi_init`` (``efi_get_fdt_params``,
  ``efi_memmap_init_early``, the "EFI v2.70 by EDK II" banner, ``efi_config_parse_tables``
  with its "efi: SMBIOS 3.0=0x... MEMRESERVE=0x..." line, the random seed,
  ``efi_memattr_init``, the memblock reservation of every MEMRESERVE node and entry, the
  v6.1 INITRD table, then ``reserve_regions`` from the memory map).
* :func:`efi_mem_reserve_persistent`, :func:`efi_memreserve_map_root`,
  :func:`efi_memreserve_root_init` — drivers/firmware/efi/efi.c (sheet §3.3/§3.4), with the
  -ENODEV semantics: NULL root before the early initcall, ULONG_MAX sentinel after it.

Parsing goes through guest.firmware.efi / guest.firmware.fdt (helper F's parsers).
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING
from uuid import UUID

from guest.dtb_edit import set_chosen, u64_prop
from guest.firmware import FirmwareError
from guest.firmware.efi import (
    ACPI_20_TABLE_GUID,
    LINUX_EFI_MEMRESERVE_TABLE_GUID,
    config_tables,
    efi_fdt_params,
    parse_memory_map,
    walk_memreserve,
)
from guest.firmware.fdt import Fdt

if TYPE_CHECKING:
    from guest.kernel import Kernel
    from guest.regions import Owner

ENODEV = 19
ENOMEM = 12
ULONG_MAX = (1 << 64) - 1
SZ_4K = 0x1000
EFI_MEMRESERVE_HEADER = 16
EFI_MEMRESERVE_ENTRY = 16
#: EFI_MEMRESERVE_COUNT(SZ_4K): entries in one 4 KiB node.
EFI_MEMRESERVE_COUNT_4K = (SZ_4K - EFI_MEMRESERVE_HEADER) // EFI_MEMRESERVE_ENTRY

# GUIDs, include/linux/efi.h (EFI_GUID(a, b, c, d0..d7) is ``UUID(...).bytes_le`` in memory).
SMBIOS_TABLE_GUID = UUID("eb9d2d31-2d88-11d3-9a16-0090273fc14d")
SMBIOS3_TABLE_GUID = UUID("f2fd1544-9794-4a2c-992e-e5bbcf20e394")
ACPI_TABLE_GUID = UUID("eb9d2d30-2d88-11d3-9a16-0090273fc14d")
EFI_SYSTEM_RESOURCE_TABLE_GUID = UUID("b122a263-3661-4f68-9929-78f8b0d62180")
EFI_MEMORY_ATTRIBUTES_TABLE_GUID = UUID("dcfa911d-26eb-469f-a220-38b7dc461220")
LINUX_EFI_RANDOM_SEED_TABLE_GUID = UUID("1ce1e5bc-7ceb-42f2-81e5-8aadf180f57b")
LINUX_EFI_TPM_EVENT_LOG_GUID = UUID("b7799cb0-eca2-4943-9667-1fae07b747fa")
LINUX_EFI_TPM_FINAL_LOG_GUID = UUID("1e2ed096-30e2-4254-bd89-863bbef82325")
LINUX_EFI_INITRD_MEDIA_GUID = UUID("5568e427-68fc-4f3d-ac74-ca555231cc68")
EFI_RT_PROPERTIES_TABLE_GUID = UUID("eb66918a-7eef-402a-842e-931d21c38ae9")
LINUX_EFI_MOK_VARIABLE_TABLE_GUID = UUID("c451ed2b-9694-45d3-baba-ed9f8988a389")

#: drivers/firmware/efi/efi.c ``common_tables`` of v5.15 (arm64 passes no arch_tables): the
#: GUID -> the name ``match_config_table`` prints ("%s=0x%lx ").
COMMON_TABLES_5_15: dict[UUID, str] = {
    ACPI_20_TABLE_GUID: "ACPI 2.0",
    ACPI_TABLE_GUID: "ACPI",
    SMBIOS_TABLE_GUID: "SMBIOS",
    SMBIOS3_TABLE_GUID: "SMBIOS 3.0",
    EFI_SYSTEM_RESOURCE_TABLE_GUID: "ESRT",
    EFI_MEMORY_ATTRIBUTES_TABLE_GUID: "MEMATTR",
    LINUX_EFI_RANDOM_SEED_TABLE_GUID: "RNG",
    LINUX_EFI_TPM_EVENT_LOG_GUID: "TPMEventLog",
    LINUX_EFI_TPM_FINAL_LOG_GUID: "TPMFinalLog",
    LINUX_EFI_MEMRESERVE_TABLE_GUID: "MEMRESERVE",
    EFI_RT_PROPERTIES_TABLE_GUID: "RTPROP",
    LINUX_EFI_MOK_VARIABLE_TABLE_GUID: "MOKvar",
}
#: v6.1 adds {LINUX_EFI_INITRD_MEDIA_GUID, &initrd, "INITRD"} after MEMRESERVE (f4dc7fffa987).
COMMON_TABLES_6_1: dict[UUID, str] = COMMON_TABLES_5_15 | {LINUX_EFI_INITRD_MEDIA_GUID: "INITRD"}
#: Every name either kernel prints (kept for callers of the old single table).
EFI_TABLE_NAMES: dict[UUID, str] = COMMON_TABLES_6_1

#: EFI memory types Linux's ``is_usable_memory`` treats as RAM it may allocate.
EFI_USABLE_TYPES = frozenset({1, 2, 3, 4, 7})  # Loader code/data, Boot services, Conventional
EFI_LOADER_DATA = 2
EFI_RUNTIME_SERVICES_DATA = 6
EFI_ACPI_RECLAIM_MEMORY = 9
EFI_MEMORY_TYPE_NAMES = {
    EFI_LOADER_DATA: "EfiLoaderData",
    EFI_RUNTIME_SERVICES_DATA: "EfiRuntimeServicesData",
    EFI_ACPI_RECLAIM_MEMORY: "EfiACPIReclaimMemory",
}

#: What the firmware side says about its boot services, as keys of ``BootInfo.addresses``
#: (the same strings as hypervisor.firmware.efi.EFI_POOL_KEYS etc.; the guest cannot import
#: the host side): first free pool block per memory type, config-table array slots,
#: EFI_RNG_PROTOCOL present.
EFI_POOL_KEYS: dict[int, str] = {
    EFI_LOADER_DATA: "EFI_POOL_LOADER_DATA",
    EFI_RUNTIME_SERVICES_DATA: "EFI_POOL_RUNTIME_SERVICES_DATA",
    EFI_ACPI_RECLAIM_MEMORY: "EFI_POOL_ACPI_RECLAIM_MEMORY",
}
EFI_CONFIG_TABLE_SLOTS = "EFI_CONFIG_TABLE_SLOTS"
EFI_RNG_PROTOCOL = "EFI_RNG_PROTOCOL"

#: EDK II pool (MdeModulePkg/Core/Dxe/Mem/Pool.c): POOL_HEAD before the data, POOL_TAIL
#: after it, blocks of ``mPoolSizeTable`` sizes; CoreInstallConfigurationTable grows the
#: array CONFIG_TABLE_SIZE_INCREASED entries at a time from the runtime pool.
POOL_HEAD_SIZE = 24
POOL_OVERHEAD = 24 + 16
POOL_SIZE_TABLE = (128, 256, 384, 640, 1024, 1664, 2688, 4352, 7040, 11392, 18432, 29824)
CONFIG_TABLE_SIZE_INCREASED = 0x10
EFI_CONFIG_TABLE_SIZE = 24

#: include/linux/efi.h EFI_RANDOM_SEED_SIZE: 64U in v5.15, 32U in v6.1 ("efi: random:
#: reduce seed size to 32 bytes"); the seed table is ``struct linux_efi_random_seed``
#: {u32 size; u8 bits[]}.
EFI_RANDOM_SEED_SIZE = {"5.15": 64, "6.1": 32}
#: efi_random_get_seed's pool: EFI_RUNTIME_SERVICES_DATA in v5.15, EFI_ACPI_RECLAIM_MEMORY
#: in v6.1 ("efi: random: Use ACPI reclaim memory for random seed").
EFI_RANDOM_SEED_POOL = {"5.15": EFI_RUNTIME_SERVICES_DATA, "6.1": EFI_ACPI_RECLAIM_MEMORY}
EFI_MEMORY_ATTRIBUTES_HEADER = 16

EFI_BOOT = "EFI_BOOT"
EFI_CONFIG_TABLES = "EFI_CONFIG_TABLES"
EFI_MEMMAP = "EFI_MEMMAP"
EFI_MEM_ATTR = "EFI_MEM_ATTR"

STUB_INITRD_LOADED = "EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path"


def efi_enabled(k: Kernel, flag: str) -> bool:
    return flag in k.efi["enabled"]


class EfiStubError(Exception):
    """A boot service failed (the EFI_STATUS the stub sees)."""


class BootServices:
    """The EDK II boot services the stub calls, over guest RAM.

    ``allocate_pool`` hands out consecutive blocks of the type's pool (the bucket
    ``size + POOL_OVERHEAD`` fits, data at +0x18): the stub's tables that outlive it took
    consecutive 128-byte blocks in native-uefi-acpi.log (INITRD=0xbc42ff18,
    MEMRESERVE=0xbc42ff98); EDK II's free lists and the blocks the stub frees again
    (command line, memory-map buffers) are not modelled. ``install_configuration_table``
    is ``CoreInstallConfigurationTable``: replace the entry of a known GUID, else append,
    growing the array from the runtime pool when its slots are used up, then recompute the
    system table's CRC32.
    """

    def __init__(self, k: Kernel) -> None:
        self.k = k
        boot = k.guest.boot
        self.systab = boot.efi_systab
        addrs = boot.addresses
        self.pool_next = {t: addrs[key] for t, key in EFI_POOL_KEYS.items() if key in addrs}
        self.slots: int | None = addrs.get(EFI_CONFIG_TABLE_SLOTS)
        self.protocols = {"EFI_RNG_PROTOCOL"} if addrs.get(EFI_RNG_PROTOCOL) else set()

    def allocate_pool(self, mem_type: int, size: int, what: str) -> int:
        """``AllocatePool(mem_type, size)``: the data address (EFI_OUT_OF_RESOURCES raises)."""
        block = self.pool_next.get(mem_type)
        need = size + POOL_OVERHEAD
        bucket = next((b for b in POOL_SIZE_TABLE if need <= b), None)
        if block is None or bucket is None:
            raise EfiStubError("EFI_OUT_OF_RESOURCES")
        self.pool_next[mem_type] = block + bucket
        name = EFI_MEMORY_TYPE_NAMES.get(mem_type, f"type {mem_type}")
        self.k.guest.regions.claim(block, bucket, self.owner(name, what))
        return block + POOL_HEAD_SIZE

    def owner(self, mem: str, what: str) -> Owner:
        return self.k.owner("efi", f"{mem} pool: {what}")

    def locate_protocol(self, name: str) -> bool:
        return name in self.protocols

    def install_configuration_table(self, guid: UUID, table: int, what: str) -> None:
        """``CoreInstallConfigurationTable(guid, table)`` (table != NULL)."""
        k, st = self.k, self.systab
        if not st:
            raise EfiStubError("EFI_NOT_FOUND")
        read = k.guest.ram.read
        count, array = struct.unpack("<QQ", read(st + 104, 16))
        raw = bytearray(read(array, EFI_CONFIG_TABLE_SIZE * count)) if count else bytearray()
        entry = guid.bytes_le + struct.pack("<Q", table)
        for i in range(count):
            if raw[24 * i : 24 * i + 16] == guid.bytes_le:
                self._write(array + 24 * i, entry, array, what)
                self._fix_crc()
                return
        slots = count if self.slots is None else self.slots
        if count >= slots:
            new_slots = slots + CONFIG_TABLE_SIZE_INCREASED
            new = self.allocate_pool(
                EFI_RUNTIME_SERVICES_DATA, EFI_CONFIG_TABLE_SIZE * new_slots, "config tables"
            )
            k.ram_write(new, bytes(raw), self._owner_at(new), "CoreInstallConfigurationTable")
            array, self.slots = new, new_slots
        self._write(array + 24 * count, entry, array, what)
        self._write(st + 104, struct.pack("<QQ", count + 1, array), st, what)
        self._fix_crc()

    def _owner_at(self, addr: int) -> Owner:
        return self.k.guest.regions.owner_at(addr)

    def _write(self, addr: int, data: bytes, base: int, what: str) -> None:
        owner = self._owner_at(base)
        self.k.ram_write(addr, data, owner, f"CoreInstallConfigurationTable ({what})")

    def _fix_crc(self) -> None:
        """``CalculateEfiHdrCrc``: CRC32 over HeaderSize bytes with the CRC field zero."""
        st, read = self.systab, self.k.guest.ram.read
        hsize = struct.unpack("<I", read(st + 12, 4))[0]
        raw = bytearray(read(st, hsize))
        raw[16:20] = bytes(4)
        crc = struct.pack("<I", zlib.crc32(bytes(raw)) & 0xFFFF_FFFF)
        self.k.ram_write(st + 16, crc, self._owner_at(st), "CalculateEfiHdrCrc")


def efi_stub(k: Kernel) -> None:
    """The stub's path from ``efi_pe_entry`` to the kernel, in the variant's order.

    The firmware's LoadFile2 initrd (``k.spec.initrd`` as the runner filled it) reaches the
    kernel only through what the stub passes on: /chosen linux,initrd-* (v5.15) or the
    LINUX_EFI_INITRD_MEDIA_GUID table (v6.1).
    """
    p = k.guest.printk
    bs = BootServices(k)
    offered, k.spec.initrd = k.spec.initrd, None
    p.raw("EFI stub: Booting Linux Kernel...")
    if k.variant.efi_stub == "5.15":
        p.raw("EFI stub: Generating empty DTB")
        initrd = efi_load_initrd(k, bs, offered)
        efi_random_get_seed(k, bs)
        install_memreserve_table(k, bs)
        if initrd is not None:
            update_fdt_initrd(k, initrd)
    else:
        efi_load_initrd(k, bs, offered)
        efi_random_get_seed(k, bs)
        install_memreserve_table(k, bs)
        p.raw("EFI stub: Generating empty DTB")
    p.raw("EFI stub: Exiting boot services...")


def _efi_err(k: Kernel, msg: str) -> None:
    k.guest.printk.raw(f"EFI stub: ERROR: {msg}")


def efi_load_initrd(
    k: Kernel, bs: BootServices, offered: tuple[int, int] | None
) -> tuple[int, int] | None:
    """``efi_load_initrd`` -> ``efi_load_initrd_dev_path``: LocateDevicePath finds EDK II's
    LoadFile2 LINUX_EFI_INITRD_MEDIA_GUID path (QEMU -initrd), efi_allocate_pages and
    LoadFile put the file at ``offered``. v6.1 then installs a ``struct linux_efi_initrd``
    {base, size} table (EFI_LOADER_DATA pool). No device path: EFI_NOT_FOUND, and the
    initrd= command-line loader finds no initrd= either (not modelled further)."""
    if offered is None or offered[1] <= 0:
        return None
    k.guest.printk.raw(STUB_INITRD_LOADED)
    if k.variant.efi_stub == "5.15":
        return offered
    try:
        tbl = bs.allocate_pool(EFI_LOADER_DATA, 16, "struct linux_efi_initrd")
        k.ram_write(tbl, struct.pack("<QQ", *offered), bs._owner_at(tbl), "efi_load_initrd")
        bs.install_configuration_table(LINUX_EFI_INITRD_MEDIA_GUID, tbl, "INITRD")
    except EfiStubError as e:
        _efi_err(k, f"Failed to load initrd: {e}")
        return None
    return offered


def efi_random_get_seed(k: Kernel, bs: BootServices) -> None:
    """``efi_random_get_seed``: with EFI_RNG_PROTOCOL, a ``struct linux_efi_random_seed``
    of EFI_RANDOM_SEED_SIZE bytes from GetRNG in the variant's pool, installed as the
    LINUX_EFI_RANDOM_SEED_TABLE_GUID table; silent on failure (v5.15)."""
    if not bs.locate_protocol("EFI_RNG_PROTOCOL"):
        return
    gen = k.variant.efi_stub
    size = EFI_RANDOM_SEED_SIZE[gen]
    try:
        seed = bs.allocate_pool(EFI_RANDOM_SEED_POOL[gen], 4 + size, "linux_efi_random_seed")
        bits = b"".join(k.guest.rng_u64().to_bytes(8, "little") for _ in range(size // 8))
        owner = bs._owner_at(seed)
        k.ram_write(seed, struct.pack("<I", size) + bits, owner, "efi_random_get_seed")
        bs.install_configuration_table(LINUX_EFI_RANDOM_SEED_TABLE_GUID, seed, "RNG")
    except EfiStubError:
        return


def install_memreserve_table(k: Kernel, bs: BootServices | None = None) -> None:
    """``install_memreserve_table``: a bare ``struct linux_efi_memreserve`` header (size 0,
    count 0, next 0) from the EFI_LOADER_DATA pool, installed as a configuration table."""
    bs = bs or BootServices(k)
    try:
        rsv = bs.allocate_pool(EFI_LOADER_DATA, EFI_MEMRESERVE_HEADER, "linux_efi_memreserve")
    except EfiStubError:
        _efi_err(k, "Failed to allocate memreserve entry!")
        return
    k.ram_write(rsv, bytes(EFI_MEMRESERVE_HEADER), bs._owner_at(rsv), "install_memreserve_table")
    try:
        bs.install_configuration_table(LINUX_EFI_MEMRESERVE_TABLE_GUID, rsv, "MEMRESERVE")
    except EfiStubError:
        _efi_err(k, "Failed to install memreserve config table!")


def update_fdt_initrd(k: Kernel, initrd: tuple[int, int]) -> None:
    """v5.15 ``update_fdt``: /chosen linux,initrd-start and linux,initrd-end (u64) in the
    DTB the stub hands the kernel (removed in v6.1 by f4dc7fffa987)."""
    read, addr = k.guest.ram.read, k.spec.dtb_addr
    try:
        total = struct.unpack(">I", read(addr + 4, 4))[0]
        dtb = set_chosen(
            read(addr, total),
            {
                "linux,initrd-start": u64_prop(initrd[0]),
                "linux,initrd-end": u64_prop(initrd[0] + initrd[1]),
            },
        )
    except (FirmwareError, ValueError) as e:
        _efi_err(k, f"Unable to update the DTB: {e}")
        return
    owner = k.owner("firmware", "firmware blob dtb")
    k.guest.regions.claim(addr, len(dtb), owner)
    k.ram_write(addr, dtb, owner, "update_fdt")


def _fdt(k: Kernel) -> Fdt:
    return k.drivers["fdt"]


def efi_init(k: Kernel) -> None:
    """``efi_init`` (arm64 efi-init.c): ``efi_get_fdt_params``, ``efi_memmap_init_early``
    (EFI_MEMMAP), ``uefi_init`` (banner, ``efi_config_parse_tables``), ``reserve_regions``,
    the memory map's own reservation."""
    try:
        params = efi_fdt_params(_fdt(k))
    except FirmwareError as e:
        k.log(f"efi: {e}", level="err")
        return
    if params is None:
        k.log("efi: UEFI not found.")
        return
    k.efi["params"] = params
    read = k.guest.ram.read
    try:
        raw = read(params.mmap_start, params.mmap_size)
        descs = parse_memory_map(raw, params.mmap_desc_size, params.mmap_desc_ver)
    except (FirmwareError, ValueError) as e:
        k.log(f"efi: memory map unusable: {e}", level="err")
        descs = None
    if descs is not None:
        k.efi["enabled"].add(EFI_MEMMAP)
        k.efi["memmap"] = descs
    try:
        cfg = config_tables(read, params.system_table)
    except FirmwareError as e:
        k.log(f"efi: {e}", level="err")
        k.efi["enabled"].discard(EFI_MEMMAP)
        return
    k.efi["enabled"].add(EFI_BOOT)
    k.log(f"efi: {cfg.banner()}")
    efi_config_parse_tables(k, cfg)
    if descs is None:
        return
    # reserve_regions: RAM from the memory map, the rest reserved (nomap)
    for d in descs:
        if d.type in EFI_USABLE_TYPES:
            k.memblock.add(d.physical_start, d.size)
        else:
            k.memblock.add(d.physical_start, d.size)
            k.memblock.reserve(
                d.physical_start, d.size, k.owner("efi", f"EFI memory type {d.type}")
            )
    # the memory map itself (efi_memmap_init_early: memblock_reserve)
    k.memblock.reserve(params.mmap_start, params.mmap_size, k.owner("efi", "EFI memory map"))


def efi_config_parse_tables(k: Kernel, cfg) -> None:  # type: ignore[no-untyped-def]
    """``efi_config_parse_tables``: "efi: " then "%s=0x%lx " for each entry, in array order,
    that ``common_tables`` names; EFI_CONFIG_TABLES; the random seed ("seeding entropy
    pool" in v5.15, dropped in v6.1 by 196dff2712ca); ``efi_memattr_init``; the MEMRESERVE
    walk; v6.1's INITRD table (``phys_initrd_start``/``phys_initrd_size``)."""
    read = k.guest.ram.read
    names = COMMON_TABLES_5_15 if k.variant.efi_stub == "5.15" else COMMON_TABLES_6_1
    found: dict[UUID, int] = {}
    line = []
    st = cfg.systab
    raw = read(st.tables, 24 * st.nr_tables)
    for i in range(st.nr_tables):
        guid = UUID(bytes_le=bytes(raw[24 * i : 24 * i + 16]))
        addr = struct.unpack_from("<Q", raw, 24 * i + 16)[0]
        name = names.get(guid)
        if name is not None:
            found[guid] = addr  # match_config_table: *(table_types[i].ptr) = table
            line.append(f"{name}=0x{addr:x} ")
    k.log("efi: " + "".join(line))
    k.efi["tables"] = dict(cfg.tables)
    k.efi["enabled"].add(EFI_CONFIG_TABLES)
    seed = found.get(LINUX_EFI_RANDOM_SEED_TABLE_GUID)
    if seed is not None:
        size = struct.unpack("<I", read(seed, 4))[0]
        k.efi["rng_seed"] = (seed, size)
        if size > 0 and k.variant.efi_stub == "5.15":
            k.log("efi: seeding entropy pool", level="notice")
    memattr = found.get(EFI_MEMORY_ATTRIBUTES_TABLE_GUID)
    if memattr is not None and efi_enabled(k, EFI_MEMMAP):
        efi_memattr_init(k, memattr)
    rsv = found.get(LINUX_EFI_MEMRESERVE_TABLE_GUID)
    k.efi["mem_reserve"] = rsv
    if rsv is not None:
        try:
            nodes = walk_memreserve(read, rsv)
        except FirmwareError as e:
            k.log(f"efi: MEMRESERVE list unusable: {e}", level="err")
            nodes = []
        for node in nodes:
            k.memblock.reserve(
                node.address,
                EFI_MEMRESERVE_HEADER + EFI_MEMRESERVE_ENTRY * node.size,
                k.owner("memreserve", "EFI MEMRESERVE node"),
            )
            for base, size in node.entries:
                k.memblock.reserve(base, size, k.owner("memreserve", "EFI MEMRESERVE entry"))
    initrd = found.get(LINUX_EFI_INITRD_MEDIA_GUID)
    if initrd is not None and not (k.spec.initrd and k.spec.initrd[1]):
        base, size = struct.unpack("<QQ", read(initrd, 16))
        k.spec.initrd = (base, size)


def efi_memattr_init(k: Kernel, table: int) -> None:
    """drivers/firmware/efi/memattr.c ``efi_memattr_init``: version > 1 is refused with a
    warning; otherwise the header and its descriptors are memblock-reserved (EDK II puts
    the table in boot-services data, which Linux would otherwise reuse)."""
    version, num, desc_size, _ = struct.unpack("<IIII", k.guest.ram.read(table, 16))
    if version > 1:
        k.log(f"efi: Unexpected EFI Memory Attributes table version {version}", level="warn")
        return
    size = EFI_MEMORY_ATTRIBUTES_HEADER + num * desc_size
    k.memblock.reserve(table, size, k.owner("efi", "EFI memory attributes table"))
    k.efi["enabled"].add(EFI_MEM_ATTR)


def efi_memreserve_map_root(k: Kernel) -> int:
    """``efi_memreserve_map_root``: -ENODEV without a MEMRESERVE table, else map it."""
    if k.efi.get("mem_reserve") is None:
        return -ENODEV
    k.efi["root"] = k.efi["mem_reserve"]
    return 0


def efi_memreserve_root_init(k: Kernel) -> None:
    """``early_initcall(efi_memreserve_root_init)``: failure leaves the ULONG_MAX sentinel."""
    if k.efi.get("root") is not None:
        return
    if efi_memreserve_map_root(k):
        k.efi["root"] = ULONG_MAX


def efi_mem_reserve_persistent(k: Kernel, addr: int, size: int) -> int:
    """``efi_mem_reserve_persistent`` (sheet §3.4)."""
    root = k.efi.get("root")
    if root == ULONG_MAX:
        return -ENODEV
    if root is None:
        rc = efi_memreserve_map_root(k)
        if rc:
            return rc
        root = k.efi["root"]
    read, owner_node = k.guest.ram.read, k.owner("memreserve", "EFI MEMRESERVE node", dma=False)
    # first try to find a slot in an existing linked list entry
    prsv = struct.unpack("<Q", read(root + 8, 8))[0]
    while prsv:
        rsize, count, nxt = struct.unpack("<iiQ", read(prsv, 16))
        if count < rsize:
            k.ram_write(
                prsv + 4, struct.pack("<i", count + 1), owner_node, "efi_mem_reserve_persistent"
            )
            k.ram_write(
                prsv + 16 + 16 * count,
                struct.pack("<QQ", addr, size),
                owner_node,
                "efi_mem_reserve_persistent",
            )
            return efi_mem_reserve_iomem(k, addr, size)
        prsv = nxt
    # no slot found - allocate a new linked list entry (__get_free_page(GFP_ATOMIC))
    assert k.alloc is not None
    page = k.alloc.alloc(SZ_4K, owner_node, align=SZ_4K)
    rc = efi_mem_reserve_iomem(k, page, SZ_4K)
    if rc:
        return rc
    head_next = struct.unpack("<Q", read(root + 8, 8))[0]
    node = struct.pack("<iiQ", EFI_MEMRESERVE_COUNT_4K, 1, head_next) + struct.pack(
        "<QQ", addr, size
    )
    k.ram_write(page, node, owner_node, "efi_mem_reserve_persistent")
    root_owner = k.guest.regions.owner_at(root)
    k.ram_write(root + 8, struct.pack("<Q", page), root_owner, "efi_mem_reserve_persistent")
    return efi_mem_reserve_iomem(k, addr, size)


def efi_mem_reserve_iomem(k: Kernel, addr: int, size: int) -> int:
    """``efi_mem_reserve_iomem``: a "reserved" /proc/iomem resource (what kexec-tools reads)."""
    k.drivers.setdefault("iomem_reserved", []).append((addr, size))
    return 0
