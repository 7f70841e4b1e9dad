"""Flattened device tree parser (the guest's libfdt: ``fdt_check_header``, node walk, getprop).

Accepts FDT versions 16 and 17 (``last_comp_version`` <= 17). Structure-block tokens:
BEGIN_NODE 1, END_NODE 2, PROP 3, NOP 4, END 9, each 4-aligned, big-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from guest.firmware import FirmwareError

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE = 1
FDT_END_NODE = 2
FDT_PROP = 3
FDT_NOP = 4
FDT_END = 9
FDT_HEADER_SIZE = 40
FDT_MAX_DEPTH = 64


class FdtError(FirmwareError):
    """A DTB that libfdt would reject (``-FDT_ERR_BADMAGIC``, ``-FDT_ERR_TRUNCATED``, ...)."""


@dataclass(frozen=True, slots=True)
class FdtNode:
    """One node: its full name ("cpu@0"), path, properties (raw values) and children."""

    name: str
    path: str
    props: Mapping[str, bytes]
    children: tuple[FdtNode, ...]

    def child(self, name: str) -> FdtNode | None:
        """Child by full name, or by base name when exactly one child has it (libfdt rule)."""
        exact = [c for c in self.children if c.name == name]
        if exact:
            return exact[0]
        if "@" not in name:
            base = [c for c in self.children if c.name.split("@", 1)[0] == name]
            if len(base) == 1:
                return base[0]
        return None

    def getprop(self, name: str) -> bytes | None:
        return self.props.get(name)

    def _need(self, name: str) -> bytes:
        v = self.props.get(name)
        if v is None:
            raise FdtError(f"{self.path}: no property {name!r}")
        return v

    def cells(self, name: str) -> tuple[int, ...]:
        """The property as 32-bit big-endian cells."""
        v = self._need(name)
        if len(v) % 4:
            raise FdtError(f"{self.path}: {name} is {len(v)} bytes, not whole cells")
        return struct.unpack(f">{len(v) // 4}I", v)

    def u32(self, name: str) -> int:
        v = self._need(name)
        if len(v) != 4:
            raise FdtError(f"{self.path}: {name} is {len(v)} bytes, expected 4")
        return int.from_bytes(v, "big")

    def u64(self, name: str) -> int:
        v = self._need(name)
        if len(v) != 8:
            raise FdtError(f"{self.path}: {name} is {len(v)} bytes, expected 8")
        return int.from_bytes(v, "big")

    def number(self, name: str) -> int:
        """A 4- or 8-byte number (Linux ``efi_get_fdt_params`` accepts either)."""
        v = self._need(name)
        if len(v) not in (4, 8):
            raise FdtError(f"{self.path}: {name} is {len(v)} bytes, expected 4 or 8")
        return int.from_bytes(v, "big")

    def strings(self, name: str) -> tuple[str, ...]:
        """A string list ("a\\0b\\0")."""
        v = self._need(name)
        if not v or v[-1] != 0:
            raise FdtError(f"{self.path}: {name} is not NUL-terminated")
        try:
            return tuple(s.decode() for s in v[:-1].split(b"\0"))
        except UnicodeDecodeError as e:
            raise FdtError(f"{self.path}: {name} is not text") from e

    def string(self, name: str) -> str:
        return self.strings(name)[0]

    def walk(self) -> Iterator[FdtNode]:
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True, slots=True)
class Fdt:
    """A parsed blob: header values, reservation map and the tree."""

    version: int
    last_comp_version: int
    boot_cpuid_phys: int
    total_size: int
    mem_reserve: tuple[tuple[int, int], ...]
    root: FdtNode

    def find(self, path: str) -> FdtNode | None:
        """``fdt_path_offset``: "/a/b", unit addresses optional when unambiguous."""
        if not path.startswith("/"):
            raise FdtError(f"path {path!r} is not absolute")
        node: FdtNode | None = self.root
        for part in (p for p in path.split("/") if p):
            assert node is not None
            node = node.child(part)
            if node is None:
                return None
        return node

    def compatible_nodes(self, compat: str) -> list[FdtNode]:
        """Every node whose ``compatible`` list contains ``compat``."""
        out = []
        for n in self.root.walk():
            v = n.props.get("compatible")
            if v and compat.encode() in v.rstrip(b"\0").split(b"\0"):
                out.append(n)
        return out


def _u32(data: bytes, off: int, what: str) -> int:
    if off < 0 or off + 4 > len(data):
        raise FdtError(f"FDT truncated reading {what} at offset {off:#x}")
    return struct.unpack_from(">I", data, off)[0]


def parse_dtb(data: bytes) -> Fdt:
    """Parse and check a whole DTB; raises :class:`FdtError` naming what and where."""
    if len(data) < FDT_HEADER_SIZE:
        raise FdtError(f"FDT truncated: {len(data)} bytes < {FDT_HEADER_SIZE}-byte header")
    (
        magic,
        total,
        off_struct,
        off_strings,
        off_rsv,
        version,
        last_comp,
        cpuid,
        size_strings,
        size_struct,
    ) = struct.unpack_from(">10I", data, 0)
    if magic != FDT_MAGIC:
        raise FdtError(f"FDT bad magic {magic:#010x} at offset 0 (expected {FDT_MAGIC:#x})")
    if version < 16 or last_comp > 17:
        raise FdtError(f"FDT version {version} (last compatible {last_comp}) unsupported")
    if total > len(data):
        raise FdtError(f"FDT truncated: totalsize {total} > {len(data)} bytes available")
    if off_struct % 4 or off_rsv % 8:
        raise FdtError(f"FDT misaligned block (struct {off_struct:#x}, rsvmap {off_rsv:#x})")
    for name, off, size in (
        ("structure", off_struct, size_struct),
        ("strings", off_strings, size_strings),
    ):
        if off < FDT_HEADER_SIZE or off + size > total:
            raise FdtError(f"FDT {name} block {off:#x}+{size:#x} outside totalsize {total:#x}")
    blob = data[:total]

    rsv: list[tuple[int, int]] = []
    off = off_rsv
    while True:
        if off + 16 > total:
            raise FdtError(f"FDT memory reservation map unterminated at offset {off:#x}")
        addr, size = struct.unpack_from(">QQ", blob, off)
        off += 16
        if addr == 0 and size == 0:
            break
        rsv.append((addr, size))

    strings = blob[off_strings : off_strings + size_strings]
    end = off_struct + size_struct

    def name_at(nameoff: int, where: int) -> str:
        if nameoff >= len(strings):
            raise FdtError(f"FDT property name offset {nameoff:#x} outside strings (at {where:#x})")
        stop = strings.find(b"\0", nameoff)
        if stop < 0:
            raise FdtError(f"FDT property name at strings+{nameoff:#x} unterminated")
        return strings[nameoff:stop].decode(errors="replace")

    pos = off_struct

    def token() -> tuple[int, int]:
        nonlocal pos
        while True:
            if pos + 4 > end:
                raise FdtError(f"FDT structure block truncated at offset {pos:#x}")
            tag = _u32(blob, pos, "token")
            at = pos
            pos += 4
            if tag != FDT_NOP:
                return tag, at

    def node(path_prefix: str, depth: int) -> FdtNode:
        nonlocal pos
        stop = blob.find(b"\0", pos, end)
        if stop < 0:
            raise FdtError(f"FDT node name at offset {pos:#x} unterminated")
        name = blob[pos:stop].decode(errors="replace")
        pos = (stop + 1 + 3) & ~3
        path = "/" if depth == 0 else (path_prefix.rstrip("/") + "/" + name)
        props: dict[str, bytes] = {}
        children: list[FdtNode] = []
        while True:
            tag, at = token()
            if tag == FDT_PROP:
                length = _u32(blob, pos, "property length")
                nameoff = _u32(blob, pos + 4, "property name offset")
                pos += 8
                if pos + length > end:
                    raise FdtError(f"FDT property at offset {at:#x} overruns the structure block")
                pname = name_at(nameoff, at)
                if children:
                    raise FdtError(f"FDT {path}: property {pname!r} after a subnode (at {at:#x})")
                props[pname] = bytes(blob[pos : pos + length])
                pos = (pos + length + 3) & ~3
            elif tag == FDT_BEGIN_NODE:
                if depth + 1 >= FDT_MAX_DEPTH:
                    raise FdtError(f"FDT nesting deeper than {FDT_MAX_DEPTH} at offset {at:#x}")
                children.append(node(path, depth + 1))
            elif tag == FDT_END_NODE:
                return FdtNode(name, path, MappingProxyType(props), tuple(children))
            else:
                raise FdtError(f"FDT unexpected token {tag:#x} at offset {at:#x} in {path}")

    tag, at = token()
    if tag != FDT_BEGIN_NODE:
        raise FdtError(f"FDT structure block starts with token {tag:#x} at {at:#x}, not BEGIN_NODE")
    root = node("", 0)
    tag, at = token()
    if tag != FDT_END:
        raise FdtError(f"FDT expected END after the root node, got token {tag:#x} at {at:#x}")
    return Fdt(version, last_comp, cpuid, total, tuple(rsv), root)
