"""The kernel's EFI paths: the stub, ``efi_init``, the MEMRESERVE table and its users.

* :func:`efi_stub` — drivers/firmware/efi/libstub (``efi_pe_entry`` -> ``efi_stub_common``):
  its efi_printk lines, ``install_memreserve_table`` (only if the system table has no
  MEMRESERVE entry yet: the stub of a previous boot anchors it, sheet §3.5), the empty DTB
  (built by the firmware side here: ``hypervisor.firmware.virt.efi_stub_dtb``).
* :func:`efi_init` — drivers/firmware/efi/efi-init.c ``efi_init`` (``efi_get_fdt_params``,
  the "EFI v2.70 by EDK II" banner, ``efi_config_parse_tables`` with its
  "ACPI 2.0=0x... MEMRESERVE=0x..." line and the memblock reservation of every MEMRESERVE
  node and entry, ``reserve_regions`` from the memory map).
* :func:`efi_mem_reserve_persistent`, :func:`efi_memreserve_map_root`,
  :func:`efi_memreserve_root_init` — drivers/firmware/efi/efi.c (sheet §3.3/§3.4), with the
  -ENODEV semantics: NULL root before the early initcall, ULONG_MAX sentinel after it.

Parsing goes through guest.firmware.efi / guest.firmware.fdt (helper F's parsers).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING
from uuid import UUID

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

ENODEV = 19
ENOMEM = 12
ULONG_MAX = (1 << 64) - 1
SZ_4K = 0x1000
EFI_MEMRESERVE_HEADER = 16
EFI_MEMRESERVE_ENTRY = 16
#: EFI_MEMRESERVE_COUNT(SZ_4K): entries in one 4 KiB node.
EFI_MEMRESERVE_COUNT_4K = (SZ_4K - EFI_MEMRESERVE_HEADER) // EFI_MEMRESERVE_ENTRY

#: drivers/firmware/efi/efi.c common_tables (+ arm's arch tables): GUID -> name printed.
EFI_TABLE_NAMES: dict[UUID, str] = {
    ACPI_20_TABLE_GUID: "ACPI 2.0",
    UUID("eb9d2d30-2d88-11d3-9a16-0090273fc14d"): "ACPI",
    UUID("eb9d2d31-2d88-11d3-9a16-0090273fc14d"): "SMBIOS",
    UUID("f2fd1544-9794-4a2c-992e-e5bbcf20e394"): "SMBIOS 3.0",
    UUID("dcfa911d-26eb-469f-a220-38b7dc461220"): "MEMATTR",
    UUID("5568e427-68fc-4f3d-ac74-ca555231cc68"): "INITRD",
    UUID("1ce1e5bc-7ceb-42f2-81e5-8aadf180f57b"): "RNG",
    LINUX_EFI_MEMRESERVE_TABLE_GUID: "MEMRESERVE",
    UUID("b122a263-3661-4f68-9929-78f8b0ce61b5"): "ESRT",
}

#: EFI memory types Linux's ``is_usable_memory`` treats as RAM it may allocate.
EFI_USABLE_TYPES = frozenset({1, 2, 3, 4, 7})  # Loader code/data, Boot services, Conventional
EFI_LOADER_DATA = 2

EFI_BOOT = "EFI_BOOT"
EFI_CONFIG_TABLES = "EFI_CONFIG_TABLES"
EFI_MEMMAP = "EFI_MEMMAP"


def efi_enabled(k: Kernel, flag: str) -> bool:
    return flag in k.efi["enabled"]


def efi_stub(k: Kernel) -> None:
    """``efi_pe_entry``: the stub's console lines and ``install_memreserve_table``."""
    p = k.guest.printk
    p.raw("EFI stub: Booting Linux Kernel...")
    if k.spec.initrd is not None:
        p.raw("EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path")
    install_memreserve_table(k)
    p.raw("EFI stub: Generating empty DTB")
    p.raw("EFI stub: Exiting boot services...")


def install_memreserve_table(k: Kernel) -> None:
    """``install_memreserve_table``: a bare header installed as a configuration table.

    The firmware side (``qemu_virt_uefi_blobs``) already hands over the system table as the
    stub leaves it; when a system table without the entry is given, the stub adds it: a
    zeroed 16-byte pool allocation after the system table's config array, and a new
    config array with one more entry (InstallConfigurationTable), both in EFI loader data.
    """
    systab = k.guest.boot.efi_systab  # the stub gets it from the firmware (efi_pe_entry)
    if not systab:
        return
    read = k.guest.ram.read
    try:
        cfg = config_tables(read, systab)
    except FirmwareError as e:
        k.guest.printk.raw(f"EFI stub: ERROR: {e}")
        return
    if cfg.mem_reserve is not None:
        return
    st = cfg.systab
    old = read(st.tables, 24 * st.nr_tables)
    new_array = (st.tables + 24 * st.nr_tables + 0xFF) & ~0xFF
    rsv = new_array + 24 * (st.nr_tables + 1)
    owner = k.owner("efi", "EFI loader data (memreserve table)")
    k.memblock.reserve(new_array, rsv + EFI_MEMRESERVE_HEADER - new_array, owner)
    k.ram_write(rsv, bytes(EFI_MEMRESERVE_HEADER), owner, "install_memreserve_table")
    entry = LINUX_EFI_MEMRESERVE_TABLE_GUID.bytes_le + struct.pack("<Q", rsv)
    k.ram_write(new_array, old + entry, owner, "install_memreserve_table")
    k.ram_write(
        systab + 104,
        struct.pack("<QQ", st.nr_tables + 1, new_array),
        owner,
        "install_memreserve_table",
    )


def _fdt(k: Kernel) -> Fdt:
    return k.drivers["fdt"]


def efi_init(k: Kernel) -> None:
    """``efi_init`` (arm64 efi-init.c)."""
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
        cfg = config_tables(read, params.system_table)
    except FirmwareError as e:
        k.log(f"efi: {e}", level="err")
        return
    k.efi["enabled"].add(EFI_BOOT)
    k.log(f"efi: {cfg.banner()}")
    efi_config_parse_tables(k, cfg)
    # reserve_regions: RAM from the memory map, the rest reserved (nomap)
    try:
        raw = read(params.mmap_start, params.mmap_size)
        descs = parse_memory_map(raw, params.mmap_desc_size, params.mmap_desc_ver)
    except (FirmwareError, ValueError) as e:
        k.log(f"efi: memory map unusable: {e}", level="err")
        return
    k.efi["enabled"].add(EFI_MEMMAP)
    k.efi["memmap"] = descs
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
    """``efi_config_parse_tables``: the table line, EFI_CONFIG_TABLES, MEMRESERVE walk."""
    read = k.guest.ram.read
    names = []
    st = cfg.systab
    raw = read(st.tables, 24 * st.nr_tables)
    for i in range(st.nr_tables):
        guid = UUID(bytes_le=bytes(raw[24 * i : 24 * i + 16]))
        addr = struct.unpack_from("<Q", raw, 24 * i + 16)[0]
        name = EFI_TABLE_NAMES.get(guid)
        if name:
            names.append(f"{name}=0x{addr:x} ")
    k.log("efi: " + "".join(names))
    k.efi["tables"] = dict(cfg.tables)
    k.efi["enabled"].add(EFI_CONFIG_TABLES)
    rsv = cfg.mem_reserve
    k.efi["mem_reserve"] = rsv
    if rsv is None:
        return
    try:
        nodes = walk_memreserve(read, rsv)
    except FirmwareError as e:
        k.log(f"efi: MEMRESERVE list unusable: {e}", level="err")
        return
    for node in nodes:
        k.memblock.reserve(
            node.address,
            EFI_MEMRESERVE_HEADER + EFI_MEMRESERVE_ENTRY * node.size,
            k.owner("memreserve", "EFI MEMRESERVE node"),
        )
        for base, size in node.entries:
            k.memblock.reserve(base, size, k.owner("memreserve", "EFI MEMRESERVE entry"))


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
