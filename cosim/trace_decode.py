"""Decoding trace records for people: register names, hypercall names, PSCI functions.

A trace header may carry ``mmio_map``: the machine's GIC frames as
``[{"frame": "GICD"|"GICR"|"GITS", "base": int, "size": int}]``, so an MMIO
address can be named (``GICR_PROPBASER`` of redistributor 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gic.registers import mmio_register_name
from transport.abi import HYPERCALLS, PSCI_FUNCTIONS, XEN_HYPERCALL_TAG
from transport.trace import TraceRecord

GICR_STRIDE = 0x20000


@dataclass(frozen=True, slots=True)
class MmioFrame:
    frame: str
    base: int
    size: int


class Decoder:
    """Adds decoded fields (``reg``, ``hypercall``, ``psci``, ``rdist``) to a record's body."""

    def __init__(self, header: Mapping[str, Any]) -> None:
        self.frames = [
            MmioFrame(str(f["frame"]), int(f["base"]), int(f["size"]))
            for f in header.get("mmio_map", ())
            if isinstance(f, Mapping)
        ]

    def name_mmio(self, addr: int) -> tuple[str, int | None]:
        """The register at ``addr`` and the redistributor index, if any."""
        for f in self.frames:
            if f.base <= addr < f.base + f.size:
                off = addr - f.base
                if f.frame == "GICR":
                    idx, off = divmod(off, GICR_STRIDE)
                    return mmio_register_name("GICR", off), idx
                return mmio_register_name(f.frame, off), None
        return f"{addr:#x}", None

    def fields(self, rec: TraceRecord) -> dict[str, Any]:
        body = rec.body if isinstance(rec.body, Mapping) else {}
        out: dict[str, Any] = {}
        kind = rec.kind
        if kind == "mmio" or (kind == "exit" and body.get("reason") == "dabt"):
            addr = body.get("addr")
            if isinstance(addr, int):
                reg, idx = self.name_mmio(addr)
                out["reg"] = reg
                if idx is not None:
                    out["rdist"] = idx
        if kind == "exit" and body.get("reason") == "hvc":
            regs = body.get("regs") or ()
            if body.get("imm") == XEN_HYPERCALL_TAG:
                out["hypercall"] = HYPERCALLS.get(body.get("x16", -1), f"#{body.get('x16')}")
            elif regs:
                out["psci"] = PSCI_FUNCTIONS.get(regs[0], f"{regs[0]:#x}")
        if kind == "smccc":
            fid = body.get("fid")
            if isinstance(fid, int):
                out["psci"] = PSCI_FUNCTIONS.get(fid, f"{fid:#x}")
        return out


def _fmt_value(k: str, v: Any) -> str:
    if isinstance(v, bool):
        return f"{k}={int(v)}"
    if isinstance(v, int):
        hexed = k in {"addr", "value", "fid", "doorbell", "imm"} or v > 0xFFFF
        return f"{k}={v:#x}" if hexed else f"{k}={v}"
    if isinstance(v, bytes):
        shown = v[:16].hex()
        return f"{k}={shown}{'...' if len(v) > 16 else ''}"
    if isinstance(v, (list, tuple)):
        return f"{k}=[" + ",".join(f"{x:#x}" if isinstance(x, int) else str(x) for x in v) + "]"
    return f"{k}={v}"


def format_time(t: int) -> str:
    """Simulated ns as seconds with nanoseconds, like a printk stamp with more digits."""
    s, ns = divmod(t, 1_000_000_000)
    return f"{s:5d}.{ns:09d}"


#: The fields of an exit that matter for each reason.
EXIT_FIELDS: dict[str, tuple[str, ...]] = {
    "hvc": ("vcpu", "imm", "x16", "regs"),
    "dabt": ("vcpu", "addr", "size", "write", "value"),
    "sysreg": ("vcpu", "reg", "write", "value"),
    "wfi": ("vcpu",),
    "irq": ("vcpu",),
}


def shown_body(rec: TraceRecord) -> dict[str, Any]:
    """The body fields worth a column: empty values and the GIC context are left out."""
    body = rec.body if isinstance(rec.body, Mapping) else {"body": rec.body}
    keep = EXIT_FIELDS.get(body.get("reason", ""), ()) if rec.kind == "exit" else ()
    return {
        k: v
        for k, v in body.items()
        if k != "ctx"
        and not (isinstance(v, (list, tuple, bytes, str)) and len(v) == 0)
        and (not keep or k in keep)
    }


def format_line(rec: TraceRecord, decoded: Mapping[str, Any]) -> str:
    """One readable line: time, seq, src -> dst, kind, decoded and raw fields, the modelled function."""
    parts = [format_time(rec.t), f"#{rec.seq}", f"{rec.src} -> {rec.dst or '-'}", rec.kind]
    parts += [_fmt_value(k, v) for k, v in decoded.items()]
    parts += [_fmt_value(k, v) for k, v in shown_body(rec).items()]
    if rec.reply_to:
        parts.append(f"re=#{rec.reply_to}")
    if rec.why:
        parts.append(f"<{rec.why}>")
    return " ".join(parts)
