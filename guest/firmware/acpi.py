"""ACPI parsers of the guest kernel: RSDP, XSDT walk, FADT, MADT (GIC subtables), IORT, STAO.

Follows ACPICA / Linux: ``acpi_tb_parse_root_table`` reads the RSDP and XSDT,
``acpi_tb_verify_checksum`` checks each table, ``acpi_fadt_sanity_check`` (arm64) wants
FADT >= 5.1 and HW_REDUCED, ``acpi_parse_entries_array`` walks MADT subtables
(``gic_acpi_parse_madt_*``, ``gic_acpi_parse_madt_its``), ``iort_scan_node`` the IORT.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from guest.firmware import FirmwareError

ACPI_HEADER_SIZE = 36
ACPI_SIG_RSDP = b"RSD PTR "
ACPI_FADT_HW_REDUCED = 1 << 20
ACPI_FADT_PSCI_COMPLIANT = 1 << 0
ACPI_FADT_PSCI_USE_HVC = 1 << 1
ACPI_MADT_TYPE_GENERIC_INTERRUPT = 0x0B
ACPI_MADT_TYPE_GENERIC_DISTRIBUTOR = 0x0C
ACPI_MADT_TYPE_GENERIC_REDISTRIBUTOR = 0x0E
ACPI_MADT_TYPE_GENERIC_TRANSLATOR = 0x0F
ACPI_MADT_ENABLED = 1
ACPI_IORT_NODE_ITS_GROUP = 0
ACPI_IORT_NODE_PCI_ROOT_COMPLEX = 2

#: read(address, size) -> bytes: the guest's view of physical memory.
Reader = Callable[[int, int], bytes]


class AcpiError(FirmwareError):
    """A malformed ACPI table: truncated, wrong signature, bad length or checksum."""


def _unpack(fmt: str, data: bytes, off: int, what: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    if off < 0 or off + size > len(data):
        raise AcpiError(
            f"{what}: truncated at offset {off:#x} (need {size} bytes, have "
            f"{max(0, len(data) - off)})"
        )
    return struct.unpack_from(fmt, data, off)


def _sum8(data: bytes) -> int:
    return sum(data) & 0xFF


@dataclass(frozen=True, slots=True)
class TableHeader:
    """The 36-byte ``struct acpi_table_header``."""

    signature: str
    length: int
    revision: int
    checksum: int
    oem_id: str
    oem_table_id: str
    oem_revision: int
    creator_id: str
    creator_revision: int


def parse_header(data: bytes, what: str = "ACPI table") -> TableHeader:
    sig, length, rev, csum, oem, oem_tab, oem_rev, creator, creator_rev = _unpack(
        "<4sIBB6s8sI4sI", data, 0, what
    )
    return TableHeader(
        sig.decode("latin-1"),
        length,
        rev,
        csum,
        oem.decode("latin-1"),
        oem_tab.decode("latin-1"),
        oem_rev,
        creator.decode("latin-1"),
        creator_rev,
    )


def check_table(data: bytes, signature: str | None = None) -> TableHeader:
    """Header, length and checksum of a whole table (``acpi_tb_verify_checksum``)."""
    what = f"ACPI {signature or 'table'}"
    hdr = parse_header(data, what)
    if signature is not None and hdr.signature != signature:
        raise AcpiError(f"{what}: signature {hdr.signature!r} at offset 0x0")
    if hdr.length < ACPI_HEADER_SIZE:
        raise AcpiError(f"ACPI {hdr.signature}: length {hdr.length} < header size (offset 0x4)")
    if hdr.length > len(data):
        raise AcpiError(f"ACPI {hdr.signature}: truncated, length {hdr.length} > {len(data)} bytes")
    if _sum8(data[: hdr.length]):
        raise AcpiError(
            f"ACPI {hdr.signature}: bad checksum {hdr.checksum:#04x} (offset 0x9), "
            f"bytes sum to {_sum8(data[: hdr.length]):#04x}"
        )
    return hdr


# --- RSDP / XSDT ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rsdp:
    revision: int
    oem_id: str
    rsdt_address: int
    length: int
    xsdt_address: int
    checksum_ok: bool  # ACPI 1.0 checksum over the first 20 bytes
    xchecksum_ok: bool  # extended checksum over ``length`` bytes


def parse_rsdp(data: bytes, strict: bool = True) -> Rsdp:
    """An ACPI 2.0+ RSDP. ``strict`` requires both checksums (``acpi_tb_validate_rsdp``);
    Linux on the EFI path does not validate it (``acpi_tb_parse_root_table``), so the
    walk below reads it with ``strict=False``, which still checks the signature,
    revision and length."""
    sig, csum, oem, rev, rsdt, length, xsdt = _unpack("<8sB6sBIIQ", data, 0, "ACPI RSDP")
    if sig != ACPI_SIG_RSDP:
        raise AcpiError(f"ACPI RSDP: bad signature {sig!r} at offset 0x0")
    if rev < 2:
        raise AcpiError(f"ACPI RSDP: revision {rev} has no XSDT (offset 0xf)")
    if length < 36 or length > len(data):
        raise AcpiError(f"ACPI RSDP: length {length} invalid for {len(data)} bytes (offset 0x14)")
    ok1 = _sum8(data[:20]) == 0
    ok2 = _sum8(data[:length]) == 0
    if strict and not ok1:
        raise AcpiError(f"ACPI RSDP: bad checksum {csum:#04x} over 20 bytes (offset 0x8)")
    if strict and not ok2:
        raise AcpiError(f"ACPI RSDP: bad extended checksum over {length} bytes (offset 0x20)")
    if xsdt == 0:
        raise AcpiError("ACPI RSDP: XSDT address is 0 (offset 0x18)")
    return Rsdp(rev, oem.decode("latin-1"), rsdt, length, xsdt, ok1, ok2)


def parse_xsdt(data: bytes) -> tuple[int, ...]:
    """The table addresses listed in an XSDT."""
    hdr = check_table(data, "XSDT")
    n, rem = divmod(hdr.length - ACPI_HEADER_SIZE, 8)
    if rem:
        raise AcpiError(f"ACPI XSDT: length {hdr.length} leaves a partial entry")
    return struct.unpack_from(f"<{n}Q", data, ACPI_HEADER_SIZE)


def _read(read: Reader, addr: int, size: int, what: str) -> bytes:
    data = read(addr, size)
    if len(data) != size:
        raise AcpiError(f"{what} at {addr:#x}: read {len(data)} of {size} bytes")
    return data


@dataclass(frozen=True, slots=True)
class AcpiTables:
    """Tables found from an RSDP: ``tables[sig] = (address, bytes)`` (first of each)."""

    rsdp_address: int
    rsdp: Rsdp
    xsdt: tuple[int, ...]
    tables: Mapping[str, tuple[int, bytes]]

    def get(self, sig: str) -> bytes | None:
        t = self.tables.get(sig)
        return t[1] if t else None


def walk_tables(read: Reader, rsdp_address: int, strict_rsdp: bool = False) -> AcpiTables:
    """RSDP -> XSDT -> each table, every table's checksum verified; the DSDT comes from
    FADT.X_DSDT (``acpi_tb_parse_fadt``)."""
    rsdp = parse_rsdp(_read(read, rsdp_address, 36, "ACPI RSDP"), strict=strict_rsdp)
    xhdr = parse_header(_read(read, rsdp.xsdt_address, ACPI_HEADER_SIZE, "ACPI XSDT"), "ACPI XSDT")
    entries = parse_xsdt(_read(read, rsdp.xsdt_address, xhdr.length, "ACPI XSDT"))
    tables: dict[str, tuple[int, bytes]] = {}
    for addr in entries:
        hdr = parse_header(_read(read, addr, ACPI_HEADER_SIZE, "ACPI table"))
        data = _read(read, addr, hdr.length, f"ACPI {hdr.signature}")
        check_table(data)
        tables.setdefault(hdr.signature, (addr, data))
    if "FACP" in tables:
        x_dsdt = parse_fadt(tables["FACP"][1]).x_dsdt
        if x_dsdt:
            hdr = parse_header(_read(read, x_dsdt, ACPI_HEADER_SIZE, "ACPI DSDT"), "ACPI DSDT")
            data = _read(read, x_dsdt, hdr.length, "ACPI DSDT")
            check_table(data, "DSDT")
            tables.setdefault("DSDT", (x_dsdt, data))
    return AcpiTables(rsdp_address, rsdp, entries, MappingProxyType(tables))


# --- FADT --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fadt:
    revision: int
    minor_revision: int
    flags: int
    arm_boot_flags: int
    x_dsdt: int
    hypervisor_id: bytes

    @property
    def hw_reduced(self) -> bool:
        return bool(self.flags & ACPI_FADT_HW_REDUCED)

    @property
    def psci_compliant(self) -> bool:
        return bool(self.arm_boot_flags & ACPI_FADT_PSCI_COMPLIANT)

    @property
    def psci_use_hvc(self) -> bool:
        return bool(self.arm_boot_flags & ACPI_FADT_PSCI_USE_HVC)

    def arm64_acceptable(self) -> bool:
        """arm64 ``acpi_fadt_sanity_check``: revision >= 5.1 and HW_REDUCED_ACPI."""
        rev_ok = self.revision > 5 or (self.revision == 5 and self.minor_revision >= 1)
        return rev_ok and self.hw_reduced


def parse_fadt(data: bytes) -> Fadt:
    hdr = check_table(data, "FACP")
    if hdr.length < 148:
        raise AcpiError(f"ACPI FACP: length {hdr.length} too short for X_DSDT (offset 0x8c)")
    (flags,) = _unpack("<I", data, 112, "ACPI FACP")
    arm, minor = _unpack("<HB", data, 129, "ACPI FACP")
    (x_dsdt,) = _unpack("<Q", data, 140, "ACPI FACP")
    hyp = data[268:276] if hdr.length >= 276 else b""
    return Fadt(hdr.revision, minor, flags, arm, x_dsdt, bytes(hyp))


# --- MADT --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GicC:
    """GICC (type 0x0B): 76 (ACPI 5.1), 80 (6.0-6.4) or 82 (6.5) bytes."""

    cpu_interface_number: int
    uid: int
    flags: int
    parking_version: int
    performance_interrupt: int
    parked_address: int
    base_address: int
    gicv_base_address: int
    gich_base_address: int
    vgic_interrupt: int
    gicr_base_address: int
    arm_mpidr: int
    efficiency_class: int
    spe_interrupt: int

    @property
    def enabled(self) -> bool:
        return bool(self.flags & ACPI_MADT_ENABLED)


@dataclass(frozen=True, slots=True)
class GicD:
    gic_id: int
    base_address: int
    global_irq_base: int
    version: int


@dataclass(frozen=True, slots=True)
class GicR:
    base_address: int
    length: int


@dataclass(frozen=True, slots=True)
class GicIts:
    translation_id: int
    base_address: int


@dataclass(frozen=True, slots=True)
class Madt:
    header: TableHeader
    local_interrupt_controller_address: int
    flags: int
    gicc: tuple[GicC, ...]
    gicd: tuple[GicD, ...]
    gicr: tuple[GicR, ...]
    its: tuple[GicIts, ...]
    other: tuple[tuple[int, bytes], ...]  # (type, raw) of subtables not decoded here
    order: tuple[int, ...]  # subtable types in table order


_SUBTABLE_MIN = {
    ACPI_MADT_TYPE_GENERIC_INTERRUPT: 76,
    ACPI_MADT_TYPE_GENERIC_DISTRIBUTOR: 24,
    ACPI_MADT_TYPE_GENERIC_REDISTRIBUTOR: 16,
    ACPI_MADT_TYPE_GENERIC_TRANSLATOR: 20,
}


def parse_madt(data: bytes) -> Madt:
    hdr = check_table(data, "APIC")
    lica, flags = _unpack("<II", data, 36, "ACPI APIC")
    gicc: list[GicC] = []
    gicd: list[GicD] = []
    gicr: list[GicR] = []
    its: list[GicIts] = []
    other: list[tuple[int, bytes]] = []
    order: list[int] = []
    off = 44
    while off < hdr.length:
        typ, length = _unpack("<BB", data, off, "ACPI APIC subtable")
        if length < 2 or off + length > hdr.length:
            raise AcpiError(
                f"ACPI APIC: subtable type {typ:#x} at offset {off:#x} has bad length {length}"
            )
        if length < _SUBTABLE_MIN.get(typ, 2):
            raise AcpiError(
                f"ACPI APIC: subtable type {typ:#x} at offset {off:#x} is {length} "
                f"bytes, shorter than {_SUBTABLE_MIN[typ]}"
            )
        sub = data[off : off + length]
        order.append(typ)
        if typ == ACPI_MADT_TYPE_GENERIC_INTERRUPT:
            f = struct.unpack_from("<IIIIIQQQQIQQ", sub, 4)
            eff = sub[76] if length >= 77 else 0
            spe = struct.unpack_from("<H", sub, 78)[0] if length >= 80 else 0
            gicc.append(GicC(*f, efficiency_class=eff, spe_interrupt=spe))
        elif typ == ACPI_MADT_TYPE_GENERIC_DISTRIBUTOR:
            gid, base, gsi, ver = struct.unpack_from("<IQIB", sub, 4)
            gicd.append(GicD(gid, base, gsi, ver))
        elif typ == ACPI_MADT_TYPE_GENERIC_REDISTRIBUTOR:
            base, size = struct.unpack_from("<QI", sub, 4)
            gicr.append(GicR(base, size))
        elif typ == ACPI_MADT_TYPE_GENERIC_TRANSLATOR:
            tid, base = struct.unpack_from("<IQ", sub, 4)
            its.append(GicIts(tid, base))
        else:
            other.append((typ, bytes(sub)))
        off += length
    return Madt(
        hdr,
        lica,
        flags,
        tuple(gicc),
        tuple(gicd),
        tuple(gicr),
        tuple(its),
        tuple(other),
        tuple(order),
    )


# --- STAO ----------------------------------------------------------------------------------


def parse_stao(data: bytes) -> bool:
    """STAO ``ignore_uart`` (Xen's status override table)."""
    hdr = check_table(data, "STAO")
    if hdr.length < 37:
        raise AcpiError(f"ACPI STAO: length {hdr.length} < 37 (no ignore_uart at offset 0x24)")
    return bool(data[36])


# --- IORT ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IortIdMapping:
    input_base: int
    id_count: int  # number of IDs minus one
    output_base: int
    output_reference: int
    flags: int

    def map(self, rid: int) -> int | None:
        """``iort_id_map``: the output ID for ``rid``, or None when outside the range."""
        if self.input_base <= rid <= self.input_base + self.id_count:
            return self.output_base + rid - self.input_base
        return None


@dataclass(frozen=True, slots=True)
class IortNode:
    offset: int
    type: int
    revision: int
    identifier: int
    mappings: tuple[IortIdMapping, ...]
    its_ids: tuple[int, ...] = ()  # ITS group nodes
    pci_segment: int | None = None  # root complex nodes


@dataclass(frozen=True, slots=True)
class Iort:
    header: TableHeader
    nodes: tuple[IortNode, ...]

    def node_at(self, offset: int) -> IortNode | None:
        return next((n for n in self.nodes if n.offset == offset), None)

    def msi_translation(self, segment: int, rid: int) -> tuple[int, tuple[int, ...]] | None:
        """RID of a PCI function -> (DeviceID, ITS IDs), following a root complex's mapping
        to an ITS group (``iort_msi_map_id``). None when nothing maps it."""
        for n in self.nodes:
            if n.type != ACPI_IORT_NODE_PCI_ROOT_COMPLEX or n.pci_segment != segment:
                continue
            for m in n.mappings:
                out = m.map(rid)
                target = self.node_at(m.output_reference)
                if out is not None and target and target.type == ACPI_IORT_NODE_ITS_GROUP:
                    return out, target.its_ids
        return None


def parse_iort(data: bytes) -> Iort:
    hdr = check_table(data, "IORT")
    count, node_off = _unpack("<II", data, 36, "ACPI IORT")
    nodes: list[IortNode] = []
    off = node_off
    for i in range(count):
        typ, length, rev, ident, nmap, map_off = _unpack(
            "<BHBIII", data, off, f"ACPI IORT node {i}"
        )
        if length < 16 or off + length > hdr.length:
            raise AcpiError(f"ACPI IORT: node {i} at offset {off:#x} has bad length {length}")
        if nmap and (map_off < 16 or map_off + 20 * nmap > length):
            raise AcpiError(
                f"ACPI IORT: node {i} at offset {off:#x}: ID mappings at +{map_off:#x} "
                f"x{nmap} overrun the node"
            )
        maps = tuple(
            IortIdMapping(*struct.unpack_from("<IIIII", data, off + map_off + 20 * k))
            for k in range(nmap)
        )
        its_ids: tuple[int, ...] = ()
        segment: int | None = None
        if typ == ACPI_IORT_NODE_ITS_GROUP:
            (n_its,) = _unpack("<I", data, off + 16, f"ACPI IORT ITS group at {off:#x}")
            if 20 + 4 * n_its > length:
                raise AcpiError(
                    f"ACPI IORT: ITS group at offset {off:#x} lists {n_its} ITSes "
                    f"beyond its length {length}"
                )
            its_ids = struct.unpack_from(f"<{n_its}I", data, off + 20)
        elif typ == ACPI_IORT_NODE_PCI_ROOT_COMPLEX:
            if length < 36:
                raise AcpiError(
                    f"ACPI IORT: root complex at offset {off:#x} is {length} < 36 bytes"
                )
            (segment,) = struct.unpack_from("<I", data, off + 28)
        nodes.append(IortNode(off, typ, rev, ident, maps, its_ids, segment))
        off += length
    return Iort(hdr, tuple(nodes))
