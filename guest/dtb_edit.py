"""Rewrite a DTB the way kexec-tools does for the next kernel (``setup_2nd_dtb``).

kexec-tools reads the running kernel's /sys/firmware/fdt, sets /chosen/bootargs
(``dtb_set_bootargs``) and linux,initrd-start/-end (``dtb_set_initrd``, 64-bit cells as
the root's #address-cells = 2 asks), then ``fdt_pack``. Parsing is helper F's
guest.firmware.fdt; the writer below emits FDT v17 (header, reservation map, structure
block, strings block, tightly packed as after fdt_pack).
"""

from __future__ import annotations

import struct

from guest.firmware.fdt import Fdt, FdtNode, parse_dtb

FDT_MAGIC = 0xD00DFEED


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def serialize(fdt: Fdt, root: FdtNode | None = None) -> bytes:
    """An FDT v17 blob of ``root`` (default: the parsed tree) with ``fdt``'s header fields."""
    root = root or fdt.root
    strings: dict[str, int] = {}
    strtab = bytearray()
    struct_blk = bytearray()

    def name_off(n: str) -> int:
        if n not in strings:
            strings[n] = len(strtab)
            strtab.extend(n.encode() + b"\0")
        return strings[n]

    def emit(node: FdtNode) -> None:
        struct_blk.extend(struct.pack(">I", 1))
        struct_blk.extend(_pad4(node.name.encode() + b"\0"))
        for pname, val in node.props.items():
            struct_blk.extend(struct.pack(">III", 3, len(val), name_off(pname)))
            struct_blk.extend(_pad4(bytes(val)))
        for c in node.children:
            emit(c)
        struct_blk.extend(struct.pack(">I", 2))

    emit(root)
    struct_blk.extend(struct.pack(">I", 9))
    rsv = b"".join(struct.pack(">QQ", a, s) for a, s in fdt.mem_reserve) + struct.pack(">QQ", 0, 0)
    off_rsv = 40
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
        17,
        16,
        fdt.boot_cpuid_phys,
        len(strtab),
        len(struct_blk),
    )
    return header + rsv + bytes(struct_blk) + bytes(strtab)


def set_chosen(dtb: bytes, props: dict[str, bytes | None]) -> bytes:
    """The blob with /chosen's properties set (None deletes), packed."""
    fdt = parse_dtb(dtb)

    def rebuild(node: FdtNode) -> FdtNode:
        children = tuple(rebuild(c) for c in node.children)
        p = dict(node.props)
        if node.path == "/chosen":
            for k, v in props.items():
                if v is None:
                    p.pop(k, None)
                else:
                    p[k] = v
        return FdtNode(node.name, node.path, p, children)

    root = rebuild(fdt.root)
    if not any(c.name == "chosen" for c in root.children):
        chosen = FdtNode("chosen", "/chosen", {k: v for k, v in props.items() if v is not None}, ())
        root = FdtNode(root.name, root.path, dict(root.props), root.children + (chosen,))
    return serialize(fdt, root)


def string_prop(s: str) -> bytes:
    return s.encode() + b"\0"


def u64_prop(v: int) -> bytes:
    return struct.pack(">Q", v)
