"""ACPI table builders (little-endian, packed), each returning the table's bytes.

Layouts follow ACPICA's ``include/acpi/actbl*.h`` and QEMU's ``hw/arm/virt-acpi-build.c``
/ ``hw/acpi/aml-build.c`` (QEMU 7.2). Every table gets the 36-byte header and a checksum
making its bytes sum to 0 mod 256. OEM identity (:class:`AcpiOem`): QEMU writes
OEM ID "BOCHS " (``ACPI_BUILD_APPNAME6``), OEM table ID "BXPC    "
(``ACPI_BUILD_APPNAME8``), OEM revision 1, creator ID "BXPC", creator revision 1, as
seen in real-boot/native-uefi-acpi.log ("APIC ... (v04 BOCHS  BXPC 00000001 BXPC
00000001)"). Xen copies these from the host tables it rewrites.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

ACPI_HEADER_SIZE = 36
ACPI_RSDP_CHECKSUM_LENGTH = 20
ACPI_RSDP_XCHECKSUM_LENGTH = 36

# FADT flags and ARM boot architecture flags (actbl.h).
ACPI_FADT_HW_REDUCED = 1 << 20
ACPI_FADT_PSCI_COMPLIANT = 1 << 0
ACPI_FADT_PSCI_USE_HVC = 1 << 1
ACPI_FADT_V6_SIZE = 276  # ACPI 6.0 FADT: ends with the 8-byte Hypervisor Vendor Identity

# MADT subtable types and lengths (actbl2.h; fact sheet linux-gicv3-its.md §5).
ACPI_MADT_TYPE_GENERIC_INTERRUPT = 0x0B
ACPI_MADT_TYPE_GENERIC_DISTRIBUTOR = 0x0C
ACPI_MADT_TYPE_GENERIC_MSI_FRAME = 0x0D
ACPI_MADT_TYPE_GENERIC_REDISTRIBUTOR = 0x0E
ACPI_MADT_TYPE_GENERIC_TRANSLATOR = 0x0F
ACPI_MADT_GICC_LENGTH = 80  # ACPI 6.0-6.4 (Xen: 80 when the host FADT revision >= 6)
ACPI_MADT_GICD_LENGTH = 24
ACPI_MADT_GICR_LENGTH = 16
ACPI_MADT_ITS_LENGTH = 20
ACPI_MADT_ENABLED = 1
ACPI_MADT_GIC_VERSION_V3 = 3

# IORT (ARM DEN 0049E.b, as QEMU 7.2 builds it).
ACPI_IORT_NODE_ITS_GROUP = 0
ACPI_IORT_NODE_PCI_ROOT_COMPLEX = 2
IORT_NODE_OFFSET = 48
ACPI_IORT_ID_MAPPING_SIZE = 20
ACPI_IORT_ROOT_COMPLEX_ENTRY_SIZE = 36

ACPI_STAO_SIZE = 37  # header + u8 ignore_uart (struct acpi_table_stao, no name list)


class AcpiBuildError(ValueError):
    """A table that cannot be encoded (field out of range, bad identifier)."""


@dataclass(frozen=True, slots=True)
class AcpiOem:
    """The identity fields of a table header."""

    oem_id: str = "BOCHS "
    oem_table_id: str = "BXPC    "
    oem_revision: int = 1
    creator_id: str = "BXPC"
    creator_revision: int = 1


QEMU_OEM = AcpiOem()


def _ascii(s: str, n: int, what: str) -> bytes:
    b = s.encode("ascii")
    if len(b) > n:
        raise AcpiBuildError(f"{what} {s!r} longer than {n} bytes")
    return b.ljust(n, b"\0")


def checksum8(data: bytes) -> int:
    """The byte that makes ``data`` (with that byte zero) sum to 0 mod 256."""
    return (-sum(data)) & 0xFF


def byte_sum(data: bytes) -> int:
    """Sum of ``data`` mod 256 (ACPICA ``acpi_tb_checksum``)."""
    return sum(data) & 0xFF


def table(signature: str, revision: int, body: bytes, oem: AcpiOem = QEMU_OEM) -> bytes:
    """Header + ``body`` with length and checksum filled in (QEMU ``acpi_table_end``)."""
    length = ACPI_HEADER_SIZE + len(body)
    hdr = (
        _ascii(signature, 4, "signature")
        + struct.pack("<IBB", length, revision, 0)
        + _ascii(oem.oem_id, 6, "OEM ID")
        + _ascii(oem.oem_table_id, 8, "OEM table ID")
        + struct.pack("<I", oem.oem_revision)
        + _ascii(oem.creator_id, 4, "creator ID")
        + struct.pack("<I", oem.creator_revision)
    )
    raw = bytearray(hdr + body)
    raw[9] = checksum8(raw)
    return bytes(raw)


def fix_checksum(data: bytes) -> bytes:
    """Re-checksum a table edited in place, the way Xen does (``checksum -= sum``)."""
    raw = bytearray(data)
    raw[9] = (raw[9] - byte_sum(raw)) & 0xFF
    return bytes(raw)


def oem_of(tbl: bytes) -> AcpiOem:
    """The identity fields of an existing table (Xen's STAO copies the MADT's)."""
    return AcpiOem(
        oem_id=tbl[10:16].decode("ascii"),
        oem_table_id=tbl[16:24].decode("ascii"),
        oem_revision=struct.unpack_from("<I", tbl, 24)[0],
        creator_id=tbl[28:32].decode("ascii"),
        creator_revision=struct.unpack_from("<I", tbl, 32)[0],
    )


# --- RSDP / XSDT -------------------------------------------------------------------


def rsdp(xsdt_address: int, oem_id: str = QEMU_OEM.oem_id) -> bytes:
    """ACPI 2.0 RSDP (36 bytes, revision 2, RSDT address 0), both checksums (QEMU ``build_rsdp``)."""
    raw = bytearray(
        b"RSD PTR "
        + b"\0"
        + _ascii(oem_id, 6, "OEM ID")
        + struct.pack("<BIIQ", 2, 0, ACPI_RSDP_XCHECKSUM_LENGTH, xsdt_address)
        + b"\0\0\0\0"
    )
    raw[8] = checksum8(raw[:ACPI_RSDP_CHECKSUM_LENGTH])
    raw[32] = checksum8(raw)
    return bytes(raw)


def xsdt(entries: Sequence[int], oem: AcpiOem = QEMU_OEM) -> bytes:
    """XSDT: header + one u64 physical address per table."""
    return table("XSDT", 1, struct.pack(f"<{len(entries)}Q", *entries), oem)


# --- FADT --------------------------------------------------------------------------


def fadt(
    arm_boot_flags: int,
    x_dsdt: int,
    oem: AcpiOem = QEMU_OEM,
    hypervisor_vendor: bytes = b"QEMU",
) -> bytes:
    """ACPI 6.0 FADT, HW_REDUCED_ACPI, as QEMU's ``build_fadt_rev6`` (rev 6, minor 0, 276 bytes).

    arm64 Linux (``acpi_fadt_sanity_check``) needs revision >= 5.1 and HW_REDUCED;
    ``arm_boot_flags`` carries PSCI_COMPLIANT / PSCI_USE_HVC. All PM blocks are zero.
    """
    body = bytearray(ACPI_FADT_V6_SIZE - ACPI_HEADER_SIZE)

    def put(off: int, fmt: str, *v: int) -> None:
        struct.pack_into(fmt, body, off - ACPI_HEADER_SIZE, *v)

    put(112, "<I", ACPI_FADT_HW_REDUCED)  # Flags
    put(129, "<H", arm_boot_flags)  # ARM_BOOT_ARCH
    put(131, "<B", 0)  # FADT minor version (6.0)
    put(140, "<Q", x_dsdt)  # X_DSDT
    body[268 - ACPI_HEADER_SIZE : 276 - ACPI_HEADER_SIZE] = hypervisor_vendor.ljust(8, b"\0")[:8]
    return table("FACP", 6, bytes(body), oem)


def fadt_set_arm_boot_flags(fadt_bytes: bytes, flags: int) -> bytes:
    """Xen ``acpi_create_fadt``: copy the host FADT, OR in ``flags``, re-checksum."""
    raw = bytearray(fadt_bytes)
    old = struct.unpack_from("<H", raw, 129)[0]
    struct.pack_into("<H", raw, 129, old | flags)
    return fix_checksum(bytes(raw))


# --- MADT --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gicc:
    """GIC CPU interface structure (type 0x0B, 80 bytes; actbl2.h acpi_madt_generic_interrupt)."""

    cpu_interface_number: int
    uid: int
    arm_mpidr: int
    flags: int = ACPI_MADT_ENABLED
    parking_version: int = 0
    performance_interrupt: int = 0
    parked_address: int = 0
    base_address: int = 0
    gicv_base_address: int = 0
    gich_base_address: int = 0
    vgic_interrupt: int = 0
    gicr_base_address: int = 0
    efficiency_class: int = 0
    spe_interrupt: int = 0

    def encode(self) -> bytes:
        return struct.pack(
            "<BBHIIIIIQQQQIQQBBH",
            ACPI_MADT_TYPE_GENERIC_INTERRUPT,
            ACPI_MADT_GICC_LENGTH,
            0,
            self.cpu_interface_number,
            self.uid,
            self.flags,
            self.parking_version,
            self.performance_interrupt,
            self.parked_address,
            self.base_address,
            self.gicv_base_address,
            self.gich_base_address,
            self.vgic_interrupt,
            self.gicr_base_address,
            self.arm_mpidr,
            self.efficiency_class,
            0,
            self.spe_interrupt,
        )


@dataclass(frozen=True, slots=True)
class Gicd:
    """GIC distributor structure (type 0x0C, 24 bytes)."""

    base_address: int
    gic_id: int = 0
    global_irq_base: int = 0
    version: int = ACPI_MADT_GIC_VERSION_V3

    def encode(self) -> bytes:
        return struct.pack(
            "<BBHIQIB3x",
            ACPI_MADT_TYPE_GENERIC_DISTRIBUTOR,
            ACPI_MADT_GICD_LENGTH,
            0,
            self.gic_id,
            self.base_address,
            self.global_irq_base,
            self.version,
        )


@dataclass(frozen=True, slots=True)
class Gicr:
    """GIC redistributor discovery range (type 0x0E, 16 bytes)."""

    base_address: int
    length: int

    def encode(self) -> bytes:
        return struct.pack(
            "<BBHQI",
            ACPI_MADT_TYPE_GENERIC_REDISTRIBUTOR,
            ACPI_MADT_GICR_LENGTH,
            0,
            self.base_address,
            self.length,
        )


@dataclass(frozen=True, slots=True)
class GicIts:
    """GIC ITS (translator) structure (type 0x0F, 20 bytes)."""

    translation_id: int
    base_address: int

    def encode(self) -> bytes:
        return struct.pack(
            "<BBHIQI",
            ACPI_MADT_TYPE_GENERIC_TRANSLATOR,
            ACPI_MADT_ITS_LENGTH,
            0,
            self.translation_id,
            self.base_address,
            0,
        )


MadtEntry = Gicc | Gicd | Gicr | GicIts


def madt(entries: Sequence[MadtEntry], oem: AcpiOem = QEMU_OEM, revision: int = 4) -> bytes:
    """MADT ("APIC"): local interrupt controller address 0, flags 0, then ``entries`` in order.

    QEMU's ``build_madt`` order is GICD, one GICC per CPU, GICR(s), ITS; Xen's
    ``acpi_create_madt`` keeps that order (GICD, then ``gicv3_make_hwdom_madt``).
    """
    return table(
        "APIC", revision, struct.pack("<II", 0, 0) + b"".join(e.encode() for e in entries), oem
    )


# --- STAO ---------------------------------------------------------------------------


def stao(madt_bytes: bytes, ignore_uart: bool = True) -> bytes:
    """Xen ``acpi_create_stao``: header copied from the host MADT, signature STAO, revision 1,
    37 bytes, ``ignore_uart`` = 1 (the UART described by SPCR belongs to Xen)."""
    return table("STAO", 1, bytes([1 if ignore_uart else 0]), oem_of(madt_bytes))


# --- IORT ---------------------------------------------------------------------------


def _iort_id_mapping(input_base: int, id_count: int, output_base: int, output_ref: int) -> bytes:
    """QEMU ``build_iort_id_mapping``: flags 0 (not a single mapping)."""
    return struct.pack("<IIIII", input_base, id_count, output_base, output_ref, 0)


def iort_qemu_virt(its_ids: Sequence[int] = (0,), oem: AcpiOem = QEMU_OEM) -> bytes:
    """QEMU 7.2 virt ``build_iort`` without SMMU: IORT rev 3 (DEN 0049E.b), two nodes.

    * ITS group node (offset 48, revision 1, identifier 0): ``its_ids`` = MADT ITS
      translation IDs.
    * PCI root complex node (revision 3, identifier 1): coherent (CCA=1, flags
      CCA|CPM|DACS), segment 0, memory address limit 64, one ID mapping: RIDs
      0..0xFFFF (id_count is "number of IDs minus one") to DeviceIDs 0.. of the ITS group.
    With one ITS this is 48 + 24 + 56 = 128 = 0x80 bytes, as in native-uefi-acpi.log.
    """
    its_size = 20 + 4 * len(its_ids)
    its_node = struct.pack(
        "<BHBIIII", ACPI_IORT_NODE_ITS_GROUP, its_size, 1, 0, 0, 0, len(its_ids)
    ) + struct.pack(f"<{len(its_ids)}I", *its_ids)
    rc_size = ACPI_IORT_ROOT_COMPLEX_ENTRY_SIZE + ACPI_IORT_ID_MAPPING_SIZE
    rc_node = (
        struct.pack(
            "<BHBIII",
            ACPI_IORT_NODE_PCI_ROOT_COMPLEX,
            rc_size,
            3,
            1,
            1,
            ACPI_IORT_ROOT_COMPLEX_ENTRY_SIZE,
        )
        + struct.pack("<IBHB", 1, 0, 0, 0x3)  # cache coherency, hints, reserved, mem flags
        + struct.pack("<IIB3x", 0, 0, 64)  # ATS attribute, segment, address size limit
        + _iort_id_mapping(0, 0xFFFF, 0, IORT_NODE_OFFSET)
    )
    body = struct.pack("<III", 2, IORT_NODE_OFFSET, 0) + its_node + rc_node
    return table("IORT", 3, body, oem)


# --- GTDT, MCFG, DSDT (passed through to an ACPI dom0; needed by Linux) ---------------

ARCH_TIMER_S_EL1_GSIV = 29
ARCH_TIMER_NS_EL1_GSIV = 30
ARCH_TIMER_VIRT_GSIV = 27
ARCH_TIMER_NS_EL2_GSIV = 26
ACPI_GTDT_ALWAYS_ON = 1 << 2


def gtdt(oem: AcpiOem = QEMU_OEM) -> bytes:
    """QEMU ``build_gtdt`` (rev 2, 96 bytes): level-triggered timer PPIs, no platform timers.

    Linux needs it on the ACPI path: the arch timer is probed from the GTDT
    (``TIMER_ACPI_DECLARE(arch_timer, ACPI_SIG_GTDT, arch_timer_acpi_init)``); Xen passes
    the host GTDT through unchanged (``acpi_map_other_tables``).
    """
    body = struct.pack(
        "<QIIIIIIIIIQII",
        0xFFFF_FFFF_FFFF_FFFF,
        0,
        ARCH_TIMER_S_EL1_GSIV,
        0,
        ARCH_TIMER_NS_EL1_GSIV,
        ACPI_GTDT_ALWAYS_ON,
        ARCH_TIMER_VIRT_GSIV,
        0,
        ARCH_TIMER_NS_EL2_GSIV,
        0,
        0xFFFF_FFFF_FFFF_FFFF,
        0,
        0,
    )
    return table("GTDT", 2, body, oem)


def mcfg(
    ecam_base: int,
    segment: int = 0,
    start_bus: int = 0,
    end_bus: int = 255,
    oem: AcpiOem = QEMU_OEM,
) -> bytes:
    """QEMU ``build_mcfg`` (rev 1, 60 bytes): one ECAM allocation (Linux ``pci_mcfg_init``)."""
    body = b"\0" * 8 + struct.pack("<QHBBI", ecam_base, segment, start_bus, end_bus, 0)
    return table("MCFG", 1, body, oem)


def dsdt_empty(oem: AcpiOem = QEMU_OEM) -> bytes:
    """A DSDT with no AML (36 bytes). QEMU's real DSDT (0x14A2 bytes of AML) is not modelled."""
    return table("DSDT", 2, b"", oem)
