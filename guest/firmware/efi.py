"""EFI parsers of the guest kernel: system table, configuration tables, MEMRESERVE, memory map.

Follows drivers/firmware/efi: ``efi_systab_check_header`` (signature, revision major),
``efi_config_parse_tables`` (GUID -> table address; ACPI 2.0 and LINUX_EFI_MEMRESERVE),
the MEMRESERVE list walk in ``efi_config_parse_tables`` and the memory map that
``efi_get_fdt_params`` points at (``xen,uefi-*`` under /hypervisor/uefi, ``linux,uefi-*``
under /chosen). Layouts: 64-bit little-endian, as in the UEFI spec.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from uuid import UUID

from guest.firmware import FirmwareError
from guest.firmware.fdt import Fdt, FdtError

EFI_SYSTEM_TABLE_SIGNATURE = 0x5453595320494249
EFI_SYSTEM_TABLE_SIZE = 120
EFI_CONFIG_TABLE_SIZE = 24
ACPI_20_TABLE_GUID = UUID("8868e871-e4f1-11d3-bc22-0080c73c8881")
LINUX_EFI_MEMRESERVE_TABLE_GUID = UUID("888eb0c6-8ede-4ff5-a8f0-9aee5cb977c2")
EFI_PAGE_SIZE = 4096
EFI_MAX_CONFIG_TABLES = 1024  # sanity bound; real firmware has a handful
EFI_MAX_MEMRESERVE_NODES = 4096

Reader = Callable[[int, int], bytes]


class EfiError(FirmwareError):
    """Malformed EFI data: bad signature, truncated table, inconsistent sizes."""


def _read(read: Reader, addr: int, size: int, what: str) -> bytes:
    data = read(addr, size)
    if len(data) != size:
        raise EfiError(f"{what} at {addr:#x}: read {len(data)} of {size} bytes")
    return data


@dataclass(frozen=True, slots=True)
class SystemTable:
    revision: int
    header_size: int
    crc32: int
    fw_vendor: int
    fw_revision: int
    runtime_services: int
    boot_services: int
    nr_tables: int
    tables: int

    @property
    def revision_str(self) -> str:
        """ "2.50" for 2 << 16 | 50 (Linux prints "EFI v%u.%.02u")."""
        return f"{self.revision >> 16}.{self.revision & 0xFFFF:02d}"


def parse_system_table(data: bytes, check_crc: bool = False) -> SystemTable:
    """The 120-byte EFI_SYSTEM_TABLE. ``check_crc`` verifies CRC32 over HeaderSize bytes
    (``data`` must then hold them); Linux does not check it."""
    if len(data) < EFI_SYSTEM_TABLE_SIZE:
        raise EfiError(f"EFI system table truncated: {len(data)} < {EFI_SYSTEM_TABLE_SIZE} bytes")
    sig, rev, hsize, crc, _ = struct.unpack_from("<QIIII", data, 0)
    if sig != EFI_SYSTEM_TABLE_SIGNATURE:
        raise EfiError(f"EFI system table: bad signature {sig:#018x} at offset 0x0")
    if (rev >> 16) < 2:
        raise EfiError(f"EFI system table: revision {rev >> 16}.{rev & 0xFFFF} < 2 (offset 0x8)")
    vendor, fw_rev = struct.unpack_from("<QI", data, 24)
    rt, bs, nr, tables = struct.unpack_from("<QQQQ", data, 88)
    if check_crc:
        if hsize < EFI_SYSTEM_TABLE_SIZE or hsize > len(data):
            raise EfiError(f"EFI system table: HeaderSize {hsize} unusable for a CRC check")
        raw = bytearray(data[:hsize])
        raw[16:20] = b"\0\0\0\0"
        if zlib.crc32(bytes(raw)) != crc:
            raise EfiError(f"EFI system table: CRC32 {crc:#010x} mismatch (offset 0x10)")
    return SystemTable(rev, hsize, crc, vendor, fw_rev, rt, bs, nr, tables)


def read_ucs2(read: Reader, addr: int, max_chars: int = 64) -> str:
    """A NUL-terminated CHAR16 string (the firmware vendor)."""
    chars: list[bytes] = []
    for i in range(max_chars):
        c = _read(read, addr + 2 * i, 2, "EFI CHAR16 string")
        if c == b"\0\0":
            return b"".join(chars).decode("utf-16-le", errors="replace")
        chars.append(c)
    raise EfiError(f"EFI CHAR16 string at {addr:#x} unterminated within {max_chars} chars")


def parse_config_tables(data: bytes, count: int) -> list[tuple[UUID, int]]:
    """An EFI_CONFIGURATION_TABLE array of ``count`` entries."""
    if count > EFI_MAX_CONFIG_TABLES:
        raise EfiError(f"EFI config tables: NumberOfTableEntries {count} implausible")
    if len(data) < count * EFI_CONFIG_TABLE_SIZE:
        raise EfiError(f"EFI config tables truncated: {len(data)} bytes for {count} entries")
    out = []
    for i in range(count):
        off = i * EFI_CONFIG_TABLE_SIZE
        out.append(
            (
                UUID(bytes_le=bytes(data[off : off + 16])),
                struct.unpack_from("<Q", data, off + 16)[0],
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class EfiConfig:
    """What ``efi_init`` learns: the system table, vendor and {GUID: table address}."""

    systab_address: int
    systab: SystemTable
    vendor: str
    tables: Mapping[UUID, int]

    @property
    def acpi20(self) -> int | None:
        return self.tables.get(ACPI_20_TABLE_GUID)

    @property
    def mem_reserve(self) -> int | None:
        return self.tables.get(LINUX_EFI_MEMRESERVE_TABLE_GUID)

    def banner(self) -> str:
        """``efi_init``'s "EFI v2.50 by Xen" line (text as in v5.15/v6.1)."""
        return f"EFI v{self.systab.revision_str} by {self.vendor}"


def config_tables(read: Reader, systab_address: int) -> EfiConfig:
    """System table at ``systab_address`` -> {GUID: address} (first wins, as Linux)."""
    st = parse_system_table(_read(read, systab_address, EFI_SYSTEM_TABLE_SIZE, "EFI system table"))
    vendor = read_ucs2(read, st.fw_vendor) if st.fw_vendor else ""
    if st.nr_tables and not st.tables:
        raise EfiError(
            f"EFI system table at {systab_address:#x}: {st.nr_tables} config tables "
            f"but ConfigurationTable is NULL (offset 0x70)"
        )
    if st.nr_tables > EFI_MAX_CONFIG_TABLES:
        raise EfiError(f"EFI system table: NumberOfTableEntries {st.nr_tables} implausible (0x68)")
    raw = _read(read, st.tables, st.nr_tables * EFI_CONFIG_TABLE_SIZE, "EFI config tables")
    found: dict[UUID, int] = {}
    for guid, addr in parse_config_tables(raw, st.nr_tables):
        found.setdefault(guid, addr)
    return EfiConfig(systab_address, st, vendor, MappingProxyType(found))


# --- MEMRESERVE -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemReserve:
    """One ``struct linux_efi_memreserve`` node."""

    address: int
    size: int
    count: int
    next: int
    entries: tuple[tuple[int, int], ...]


def parse_memreserve(data: bytes, address: int = 0) -> MemReserve:
    if len(data) < 16:
        raise EfiError(f"EFI MEMRESERVE at {address:#x} truncated: {len(data)} < 16 bytes")
    size, count, nxt = struct.unpack_from("<iiQ", data, 0)
    if size < 0 or count < 0 or count > size:
        raise EfiError(f"EFI MEMRESERVE at {address:#x}: count {count} / size {size} invalid")
    if len(data) < 16 + 16 * count:
        raise EfiError(
            f"EFI MEMRESERVE at {address:#x} truncated: {count} entries need "
            f"{16 + 16 * count} bytes, have {len(data)}"
        )
    entries = tuple(struct.unpack_from("<QQ", data, 16 + 16 * i) for i in range(count))
    return MemReserve(address, size, count, nxt, entries)


def walk_memreserve(read: Reader, address: int) -> list[MemReserve]:
    """Follow ``next`` from the root (the walk in ``efi_config_parse_tables``)."""
    nodes: list[MemReserve] = []
    seen: set[int] = set()
    while address:
        if address in seen or len(nodes) >= EFI_MAX_MEMRESERVE_NODES:
            raise EfiError(f"EFI MEMRESERVE list loops at {address:#x}")
        seen.add(address)
        head = _read(read, address, 16, "EFI MEMRESERVE")
        count = struct.unpack_from("<i", head, 4)[0]
        if count < 0 or count > (EFI_PAGE_SIZE - 16) // 16:
            raise EfiError(f"EFI MEMRESERVE at {address:#x}: count {count} invalid (offset 0x4)")
        node = parse_memreserve(_read(read, address, 16 + 16 * count, "EFI MEMRESERVE"), address)
        nodes.append(node)
        address = node.next
    return nodes


# --- memory map ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryDescriptor:
    type: int
    physical_start: int
    virtual_start: int
    number_of_pages: int
    attribute: int

    @property
    def size(self) -> int:
        return self.number_of_pages * EFI_PAGE_SIZE


def parse_memory_map(data: bytes, desc_size: int, desc_ver: int = 1) -> list[MemoryDescriptor]:
    """Descriptors of ``desc_size`` bytes (>= 40; firmware may use larger ones)."""
    if desc_ver != 1:
        raise EfiError(f"EFI memory map: descriptor version {desc_ver} unsupported")
    if desc_size < 40:
        raise EfiError(f"EFI memory map: descriptor size {desc_size} < 40")
    if len(data) % desc_size:
        raise EfiError(f"EFI memory map: {len(data)} bytes is not a multiple of {desc_size}")
    out = []
    for off in range(0, len(data), desc_size):
        typ, _, phys, virt, pages, attr = struct.unpack_from("<IIQQQQ", data, off)
        out.append(MemoryDescriptor(typ, phys, virt, pages, attr))
    return out


@dataclass(frozen=True, slots=True)
class FdtEfiParams:
    """``efi_get_fdt_params``: the five values and which node they came from."""

    source: str  # "/hypervisor/uefi" (Xen) or "/chosen" (EFI stub)
    system_table: int
    mmap_start: int
    mmap_size: int
    mmap_desc_size: int
    mmap_desc_ver: int


def efi_fdt_params(fdt: Fdt) -> FdtEfiParams | None:
    """/hypervisor/uefi (``xen,`` prefix) then /chosen (``linux,`` prefix). None means
    "UEFI not found." (no system-table property); a missing other property raises."""
    for path, prefix in (("/hypervisor/uefi", "xen,uefi-"), ("/chosen", "linux,uefi-")):
        node = fdt.find(path)
        if node is None or node.getprop(prefix + "system-table") is None:
            continue
        try:
            vals = [
                node.number(prefix + n)
                for n in (
                    "system-table",
                    "mmap-start",
                    "mmap-size",
                    "mmap-desc-size",
                    "mmap-desc-ver",
                )
            ]
        except FdtError as e:
            raise EfiError(f"Can't find property in DT: {e}") from e
        return FdtEfiParams(path, *vals)
    return None
