"""EFI memory contents a kernel is handed: system table, configuration tables, memory map.

A model of bytes in guest memory (64-bit, little-endian, natural alignment, as UEFI
2.x on AArch64):

EFI_SYSTEM_TABLE (120 bytes)::

    0   EFI_TABLE_HEADER: u64 Signature (0x5453595320494249 "IBI SYST"), u32 Revision,
        u32 HeaderSize, u32 CRC32, u32 Reserved
    24  CHAR16 *FirmwareVendor        32  u32 FirmwareRevision (+4 pad)
    40  ConsoleInHandle, ConIn, ConsoleOutHandle, ConOut, StandardErrorHandle, StdErr,
        RuntimeServices, BootServices (8 x u64)
    104 UINTN NumberOfTableEntries    112 EFI_CONFIGURATION_TABLE *ConfigurationTable

EFI_CONFIGURATION_TABLE (24 bytes): EFI_GUID VendorGuid (mixed-endian, ``uuid.bytes_le``),
u64 VendorTable. EFI_MEMORY_DESCRIPTOR (40 bytes, version 1): u32 Type, u32 pad,
u64 PhysicalStart, u64 VirtualStart, u64 NumberOfPages, u64 Attribute.

``struct linux_efi_memreserve`` (include/linux/efi.h; linux-gicv3-its.md §3.1):
int size, atomic count, phys next, then entries {phys base, phys size}; 16 + 16n bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

EFI_SYSTEM_TABLE_SIGNATURE = 0x5453595320494249
EFI_SYSTEM_TABLE_SIZE = 120
EFI_CONFIGURATION_TABLE_SIZE = 24
EFI_MEMORY_DESCRIPTOR_SIZE = 40
EFI_MEMORY_DESCRIPTOR_VERSION = 1
EFI_PAGE_SIZE = 4096

#: EFI_ACPI_20_TABLE_GUID (UEFI spec; Linux ACPI_20_TABLE_GUID): the RSDP.
ACPI_20_TABLE_GUID = UUID("8868e871-e4f1-11d3-bc22-0080c73c8881")
#: LINUX_EFI_MEMRESERVE_TABLE_GUID, include/linux/efi.h:
#: EFI_GUID(0x888eb0c6, 0x8ede, 0x4ff5, 0xa8, 0xf0, 0x9a, 0xee, 0x5c, 0xb9, 0x77, 0xc2).
#: (A task brief gave ...-9a0b13ac7b1a; the kernel header says ...-9aee5cb977c2.)
LINUX_EFI_MEMRESERVE_TABLE_GUID = UUID("888eb0c6-8ede-4ff5-a8f0-9aee5cb977c2")

# EFI_MEMORY_TYPE and attributes (UEFI spec).
EfiReservedMemoryType = 0
EfiLoaderData = 2
EfiBootServicesData = 4
EfiRuntimeServicesData = 6
EfiConventionalMemory = 7
EfiACPIReclaimMemory = 9
EFI_MEMORY_WB = 0x8

MEMRESERVE_HEADER_SIZE = 16
MEMRESERVE_ENTRY_SIZE = 16


class EfiBuildError(ValueError):
    """Contents that cannot be encoded (unaligned region, value out of range)."""


def guid_bytes(guid: UUID) -> bytes:
    """EFI_GUID in memory: Data1..Data3 little-endian, Data4 as bytes."""
    return guid.bytes_le


def ucs2(s: str) -> bytes:
    """A NUL-terminated CHAR16 string ("Xen" is {0x58, 0x65, 0x6e, 0} in Xen's efi-dom0.c)."""
    return (s + "\0").encode("utf-16-le")


def efi_revision(major: int, minor: int) -> int:
    """EFI_TABLE_HEADER.Revision: major << 16 | minor (Xen writes 2 << 16 | 50 for "2.50")."""
    return (major << 16) | minor


@dataclass(frozen=True, slots=True)
class SystemTableLayout:
    """Where the pieces of an :func:`system_table` blob sit, as offsets from its start."""

    vendor_offset: int
    config_offset: int
    size: int


def system_table(
    address: int,
    config: Sequence[tuple[UUID, int]],
    fw_vendor: str = "Xen",
    revision: int = efi_revision(2, 50),
    fw_revision: int = 1,
    header_size_covers_all: bool = True,
) -> tuple[bytes, SystemTableLayout]:
    """An EFI system table placed at ``address`` with its vendor string and config array.

    Layout of Xen's ``acpi_create_efi_system_table``: the 120-byte table, then the UCS-2
    vendor string, then the configuration table array; pointers are guest-physical.
    Xen sets HeaderSize to the size of all three (``header_size_covers_all``) and computes
    the CRC32 (``xz_crc32``, i.e. the zlib CRC-32) over HeaderSize bytes with the CRC
    field zero. Boot/runtime service and console pointers are zero.
    """
    vendor = ucs2(fw_vendor)
    vendor_off = EFI_SYSTEM_TABLE_SIZE
    config_off = vendor_off + len(vendor)
    total = config_off + EFI_CONFIGURATION_TABLE_SIZE * len(config)
    hdr_size = total if header_size_covers_all else EFI_SYSTEM_TABLE_SIZE
    raw = bytearray(total)
    struct.pack_into("<QIIII", raw, 0, EFI_SYSTEM_TABLE_SIGNATURE, revision, hdr_size, 0, 0)
    struct.pack_into("<QI", raw, 24, address + vendor_off, fw_revision)
    struct.pack_into("<QQ", raw, 104, len(config), address + config_off if config else 0)
    raw[vendor_off:config_off] = vendor
    for i, (guid, ptr) in enumerate(config):
        off = config_off + i * EFI_CONFIGURATION_TABLE_SIZE
        raw[off : off + EFI_CONFIGURATION_TABLE_SIZE] = guid_bytes(guid) + struct.pack("<Q", ptr)
    struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw[:hdr_size])) & 0xFFFF_FFFF)
    return bytes(raw), SystemTableLayout(vendor_off, config_off, total)


def memreserve(
    entries: Sequence[tuple[int, int]] = (), capacity: int | None = None, next_node: int = 0
) -> bytes:
    """A ``struct linux_efi_memreserve`` node.

    The EFI stub's ``install_memreserve_table`` installs a bare header (size=0, count=0,
    next=0); nodes added by ``efi_mem_reserve_persistent`` carry entries.
    """
    cap = len(entries) if capacity is None else capacity
    if cap < len(entries):
        raise EfiBuildError(f"memreserve capacity {cap} < {len(entries)} entries")
    body = struct.pack("<iiQ", cap, len(entries), next_node)
    body += b"".join(struct.pack("<QQ", b, s) for b, s in entries)
    return body + b"\0" * (MEMRESERVE_ENTRY_SIZE * (cap - len(entries)))


@dataclass(frozen=True, slots=True)
class MemoryDescriptor:
    """One EFI_MEMORY_DESCRIPTOR."""

    type: int
    physical_start: int
    number_of_pages: int
    attribute: int = EFI_MEMORY_WB
    virtual_start: int = 0

    def encode(self) -> bytes:
        return struct.pack(
            "<IIQQQQ",
            self.type,
            0,
            self.physical_start,
            self.virtual_start,
            self.number_of_pages,
            self.attribute,
        )


def region(type_: int, start: int, size: int) -> MemoryDescriptor:
    """A descriptor for a page-aligned region (Xen BUG_ONs on a partial page)."""
    if start % EFI_PAGE_SIZE or size % EFI_PAGE_SIZE or size <= 0:
        raise EfiBuildError(f"EFI region {start:#x}+{size:#x} is not whole pages")
    return MemoryDescriptor(type_, start, size // EFI_PAGE_SIZE)


def memory_map(descs: Sequence[MemoryDescriptor]) -> bytes:
    """The memory map: descriptors back to back, 40 bytes each (desc_size = 40, desc_ver = 1)."""
    return b"".join(d.encode() for d in descs)
