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

Firmware-installed configuration tables EDK II hands a kernel on QEMU virt (what Linux names
"SMBIOS 3.0" and "MEMATTR" in its "efi: ..." line): the SMBIOS 3.0 entry point (SMBIOS spec
DSP0134 §5.2.2, 24 bytes, anchor "_SM3_") and the EFI_MEMORY_ATTRIBUTES_TABLE (UEFI §4.6.4,
``efi_memory_attributes_table_t`` in include/linux/efi.h: u32 version, num_entries,
desc_size, flags, then descriptors).

EDK II's boot-services pool (MdeModulePkg/Core/Dxe/Mem/Pool.c): every AllocatePool block
starts with a 24-byte POOL_HEAD (u32 Signature, u32 Reserved, EFI_MEMORY_TYPE Type, UINTN
Size) and ends with a 16-byte POOL_TAIL, rounded up to a bucket of ``mPoolSizeTable``
(128, 256, 384, ...); the caller's data starts at +0x18, which is why every pool address
in native-uefi-acpi.log ends in ...18 (ACPI 2.0=0xbc430018, MEMATTR=0xbcc31518, ...).
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
#: SMBIOS3_TABLE_GUID, include/linux/efi.h:
#: EFI_GUID(0xf2fd1544, 0x9794, 0x4a2c, 0x99, 0x2e, 0xe5, 0xbb, 0xcf, 0x20, 0xe3, 0x94).
SMBIOS3_TABLE_GUID = UUID("f2fd1544-9794-4a2c-992e-e5bbcf20e394")
#: EFI_MEMORY_ATTRIBUTES_TABLE_GUID, include/linux/efi.h:
#: EFI_GUID(0xdcfa911d, 0x26eb, 0x469f, 0xa2, 0x20, 0x38, 0xb7, 0xdc, 0x46, 0x12, 0x20).
EFI_MEMORY_ATTRIBUTES_TABLE_GUID = UUID("dcfa911d-26eb-469f-a220-38b7dc461220")
#: LINUX_EFI_INITRD_MEDIA_GUID, include/linux/efi.h (the LoadFile2 vendor media device path
#: EDK II's QemuKernelLoaderFsDxe installs for -initrd; a config table from v6.1's stub):
#: EFI_GUID(0x5568e427, 0x68fc, 0x4f3d, 0xac, 0x74, 0xca, 0x55, 0x52, 0x31, 0xcc, 0x68).
LINUX_EFI_INITRD_MEDIA_GUID = UUID("5568e427-68fc-4f3d-ac74-ca555231cc68")
#: LINUX_EFI_RANDOM_SEED_TABLE_GUID, include/linux/efi.h:
#: EFI_GUID(0x1ce1e5bc, 0x7ceb, 0x42f2, 0x81, 0xe5, 0x8a, 0xad, 0xf1, 0x80, 0xf5, 0x7b).
LINUX_EFI_RANDOM_SEED_TABLE_GUID = UUID("1ce1e5bc-7ceb-42f2-81e5-8aadf180f57b")

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

#: EDK II CoreInstallConfigurationTable grows the array by this many entries at a time.
CONFIG_TABLE_SIZE_INCREASED = 0x10
#: EDK II pool (MdeModulePkg/Core/Dxe/Mem/Pool.c): OFFSET_OF(POOL_HEAD, Data) on 64-bit,
#: sizeof(POOL_TAIL), and the bucket sizes ``mPoolSizeTable``.
POOL_HEAD_SIZE = 24
POOL_TAIL_SIZE = 16
POOL_OVERHEAD = POOL_HEAD_SIZE + POOL_TAIL_SIZE
POOL_SIZE_TABLE = (128, 256, 384, 640, 1024, 1664, 2688, 4352, 7040, 11392, 18432, 29824)

SMBIOS3_ANCHOR = b"_SM3_"
SMBIOS3_ENTRY_POINT_LENGTH = 0x18
SMBIOS_TYPE_END_OF_TABLE = 127
EFI_MEMORY_ATTRIBUTES_TABLE_VERSION = 1
EFI_MEMORY_ATTRIBUTES_TABLE_HEADER_SIZE = 16

#: Keys of ``BootBlobs.addresses`` that describe EDK II's boot services as the EFI stub sees
#: them (the guest reads them from ``BootInfo.addresses``; values are ints): the first free
#: pool block (its POOL_HEAD) of each memory type the stub allocates from, the number of
#: slots in the configuration table array, and whether EFI_RNG_PROTOCOL is installed.
EFI_POOL_KEYS: dict[int, str] = {
    EfiLoaderData: "EFI_POOL_LOADER_DATA",
    EfiRuntimeServicesData: "EFI_POOL_RUNTIME_SERVICES_DATA",
    EfiACPIReclaimMemory: "EFI_POOL_ACPI_RECLAIM_MEMORY",
}
EFI_CONFIG_TABLE_SLOTS = "EFI_CONFIG_TABLE_SLOTS"
EFI_RNG_PROTOCOL = "EFI_RNG_PROTOCOL"


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
    config_slots: int | None = None,
) -> tuple[bytes, SystemTableLayout]:
    """An EFI system table placed at ``address`` with its vendor string and config array.

    Layout of Xen's ``acpi_create_efi_system_table``: the 120-byte table, then the UCS-2
    vendor string, then the configuration table array; pointers are guest-physical.
    Xen sets HeaderSize to the size of all three (``header_size_covers_all``) and computes
    the CRC32 (``xz_crc32``, i.e. the zlib CRC-32) over HeaderSize bytes with the CRC
    field zero. Boot/runtime service and console pointers are zero.

    ``config_slots`` (default: exactly the entries) sizes the array as EDK II allocates it
    (``CoreInstallConfigurationTable``: multiples of CONFIG_TABLE_SIZE_INCREASED); the spare
    slots are zero and lie outside a HeaderSize that covers everything.
    """
    slots = len(config) if config_slots is None else config_slots
    if slots < len(config):
        raise EfiBuildError(f"config_slots {slots} < {len(config)} configuration tables")
    vendor = ucs2(fw_vendor)
    vendor_off = EFI_SYSTEM_TABLE_SIZE
    config_off = vendor_off + len(vendor)
    used = config_off + EFI_CONFIGURATION_TABLE_SIZE * len(config)
    total = config_off + EFI_CONFIGURATION_TABLE_SIZE * slots
    hdr_size = used if header_size_covers_all else EFI_SYSTEM_TABLE_SIZE
    raw = bytearray(total)
    struct.pack_into("<QIIII", raw, 0, EFI_SYSTEM_TABLE_SIGNATURE, revision, hdr_size, 0, 0)
    struct.pack_into("<QI", raw, 24, address + vendor_off, fw_revision)
    struct.pack_into("<QQ", raw, 104, len(config), address + config_off if slots else 0)
    raw[vendor_off:config_off] = vendor
    for i, (guid, ptr) in enumerate(config):
        off = config_off + i * EFI_CONFIGURATION_TABLE_SIZE
        raw[off : off + EFI_CONFIGURATION_TABLE_SIZE] = guid_bytes(guid) + struct.pack("<Q", ptr)
    struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw[:hdr_size])) & 0xFFFF_FFFF)
    return bytes(raw), SystemTableLayout(vendor_off, config_off, total)


def pool_block_size(size: int) -> int:
    """The pool bucket an ``AllocatePool(size)`` takes: size + POOL_OVERHEAD rounded up to an
    ``mPoolSizeTable`` entry (larger requests come from whole pages, not modelled)."""
    need = size + POOL_OVERHEAD
    for bucket in POOL_SIZE_TABLE:
        if need <= bucket:
            return bucket
    raise EfiBuildError(f"AllocatePool({size}) needs pages, not a pool bucket")


def pool_data(block: int) -> int:
    """The address AllocatePool returns for the block whose POOL_HEAD is at ``block``."""
    return block + POOL_HEAD_SIZE


def smbios3_entry_point(
    table_address: int,
    table_max_size: int,
    version: tuple[int, int, int] = (3, 0, 0),
    entry_point_revision: int = 1,
) -> bytes:
    """The 24-byte SMBIOS 3.0 (64-bit) entry point: "_SM3_", checksum (all 24 bytes sum to
    zero), length 0x18, major, minor, docrev ("SMBIOS 3.0.0 present." in the real log), entry
    point revision 1, reserved, u32 structure table maximum size, u64 structure table address.
    """
    major, minor, docrev = version
    raw = bytearray(
        SMBIOS3_ANCHOR
        + struct.pack(
            "<BBBBBBBIQ",
            0,
            SMBIOS3_ENTRY_POINT_LENGTH,
            major,
            minor,
            docrev,
            entry_point_revision,
            0,
            table_max_size,
            table_address,
        )
    )
    raw[5] = (-sum(raw)) & 0xFF
    return bytes(raw)


def smbios_end_of_table(handle: int = 0) -> bytes:
    """The minimal structure table: one type 127 End-of-Table structure (4-byte header:
    type, length 4, u16 handle) and its empty string set (two NUL bytes)."""
    return struct.pack("<BBH", SMBIOS_TYPE_END_OF_TABLE, 4, handle) + b"\0\0"


def memory_attributes_table(
    entries: Sequence[MemoryDescriptor] = (),
    version: int = EFI_MEMORY_ATTRIBUTES_TABLE_VERSION,
    flags: int = 0,
) -> bytes:
    """EFI_MEMORY_ATTRIBUTES_TABLE: u32 Version (1), u32 NumberOfEntries, u32
    DescriptorSize (40), u32 Flags (Reserved before UEFI 2.10), then the descriptors."""
    head = struct.pack("<IIII", version, len(entries), EFI_MEMORY_DESCRIPTOR_SIZE, flags)
    return head + b"".join(d.encode() for d in entries)


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
