"""Flattened device tree writer (FDT v17, the format of dtc, libfdt and the kernel).

Layout written by :func:`build_dtb`, all big-endian: a 40-byte header, the memory
reservation block (8-aligned, pairs of u64 ended by a zero pair), the structure
block (FDT_BEGIN_NODE name, FDT_PROP len nameoff value, FDT_END_NODE, FDT_END; every
token 4-aligned), then the strings block (property names, each once, NUL-ended).
This is what libfdt's sequential-write API (``fdt_create`` ... ``fdt_finish``, used by
Xen's ``create_acpi_dtb``) and QEMU's ``create_device_tree`` produce, modulo the order
of names in the strings block.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

FDT_MAGIC = 0xD00DFEED
FDT_VERSION = 17
FDT_LAST_COMP_VERSION = 16
FDT_BEGIN_NODE = 0x1
FDT_END_NODE = 0x2
FDT_PROP = 0x3
FDT_NOP = 0x4
FDT_END = 0x9
FDT_HEADER_SIZE = 40


class FdtBuildError(ValueError):
    """A tree that cannot be written (bad name, cell out of range, duplicate)."""


def u32(*cells: int) -> bytes:
    """Property value of 32-bit big-endian cells (``<a b c>`` in dts)."""
    for c in cells:
        if not 0 <= c <= 0xFFFF_FFFF:
            raise FdtBuildError(f"cell {c:#x} does not fit in 32 bits")
    return struct.pack(f">{len(cells)}I", *cells)


def u64(*values: int) -> bytes:
    """Property value of 64-bit big-endian numbers (``/bits/ 64`` or two cells each)."""
    for v in values:
        if not 0 <= v <= 0xFFFF_FFFF_FFFF_FFFF:
            raise FdtBuildError(f"value {v:#x} does not fit in 64 bits")
    return struct.pack(f">{len(values)}Q", *values)


def cells(n: int, value: int) -> bytes:
    """``value`` as ``n`` cells (n = #address-cells or #size-cells, 1 or 2)."""
    if n not in (1, 2):
        raise FdtBuildError(f"cell count {n} unsupported (1 or 2)")
    return u32(value) if n == 1 else u64(value)


def reg(addr_cells: int, size_cells: int, *ranges: tuple[int, int]) -> bytes:
    """A ``reg`` value: (address, size) pairs in the parent's cell sizes (``dt_child_set_range``)."""
    return b"".join(cells(addr_cells, a) + cells(size_cells, s) for a, s in ranges)


def string(s: str) -> bytes:
    """A NUL-terminated string property."""
    if "\0" in s:
        raise FdtBuildError(f"string {s!r} contains NUL; use strings()")
    return s.encode() + b"\0"


def strings(*ss: str) -> bytes:
    """A string list (``"a\\0b\\0"``), e.g. ``compatible = "xen,xen-4.17", "xen,xen"``."""
    return b"".join(string(s) for s in ss)


PropValue = bytes | str | Sequence[str]


def _encode(value: PropValue) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return string(value)
    return strings(*value)


@dataclass
class Node:
    """One device-tree node: a name, ordered properties and ordered children.

    Build with chaining: ``Node("hypervisor").prop("compatible", ["xen,xen-4.17", "xen,xen"])``;
    ``child`` appends a sub-node and returns the parent. Property values are bytes (use
    :func:`u32`, :func:`u64`, :func:`reg`), a ``str`` (one string) or a list of strings.
    """

    name: str
    props: list[tuple[str, bytes]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    def prop(self, name: str, value: PropValue = b"") -> Node:
        if not name or "\0" in name or len(name) > 31:
            raise FdtBuildError(f"node {self.name!r}: bad property name {name!r}")
        if any(n == name for n, _ in self.props):
            raise FdtBuildError(f"node {self.name!r}: duplicate property {name!r}")
        self.props.append((name, _encode(value)))
        return self

    def child(self, node: Node) -> Node:
        if any(c.name == node.name for c in self.children):
            raise FdtBuildError(f"node {self.name!r}: duplicate child {node.name!r}")
        self.children.append(node)
        return self

    def getprop(self, name: str) -> bytes | None:
        return next((v for n, v in self.props if n == name), None)

    def find(self, path: str) -> Node | None:
        """The node at ``path`` ("/" or "/a/b") below this one, by full node names."""
        node: Node | None = self
        for part in (p for p in path.split("/") if p):
            assert node is not None
            node = next((c for c in node.children if c.name == part), None)
            if node is None:
                return None
        return node


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def build_dtb(
    root: Node,
    mem_reserve: Iterable[tuple[int, int]] = (),
    boot_cpuid_phys: int = 0,
) -> bytes:
    """Serialise ``root`` (whose name must be "") as an FDT v17 blob."""
    if root.name != "":
        raise FdtBuildError(f"root node must have an empty name, not {root.name!r}")
    strtab = bytearray()
    offsets: dict[str, int] = {}

    def nameoff(name: str) -> int:
        if name not in offsets:
            offsets[name] = len(strtab)
            strtab.extend(name.encode() + b"\0")
        return offsets[name]

    struct_blk = bytearray()

    def emit(node: Node, depth: int) -> None:
        if depth and (not node.name or "/" in node.name or "\0" in node.name):
            raise FdtBuildError(f"bad node name {node.name!r}")
        struct_blk.extend(struct.pack(">I", FDT_BEGIN_NODE))
        struct_blk.extend(_pad4(node.name.encode() + b"\0"))
        for name, value in node.props:
            struct_blk.extend(struct.pack(">III", FDT_PROP, len(value), nameoff(name)))
            struct_blk.extend(_pad4(value))
        for c in node.children:
            emit(c, depth + 1)
        struct_blk.extend(struct.pack(">I", FDT_END_NODE))

    emit(root, 0)
    struct_blk.extend(struct.pack(">I", FDT_END))

    rsv = b"".join(u64(a, s) for a, s in mem_reserve) + u64(0, 0)
    off_rsv = FDT_HEADER_SIZE + (-FDT_HEADER_SIZE % 8)
    off_struct = off_rsv + len(rsv)
    off_strings = off_struct + len(struct_blk)
    total = off_strings + len(strtab)
    header = struct.pack(
        ">10I",
        FDT_MAGIC,
        total,
        off_struct,
        off_strings,
        off_rsv,
        FDT_VERSION,
        FDT_LAST_COMP_VERSION,
        boot_cpuid_phys,
        len(strtab),
        len(struct_blk),
    )
    out = header + b"\0" * (off_rsv - FDT_HEADER_SIZE) + rsv + bytes(struct_blk) + bytes(strtab)
    assert len(out) == total
    return out
