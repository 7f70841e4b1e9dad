"""Decoding trace records for people: register names, hypercall names, PSCI functions,
ITS commands.

A trace header may carry ``mmio_map``: the machine's GIC frames as
``[{"frame": "GICD"|"GICR"|"GITS", "base": int, "size": int}]``, so an MMIO
address can be named (``GICR_PROPBASER`` of redistributor 3).

ITS commands are decoded from what the command queue held: the ``reply`` to a ``mem``
read whose ``why`` is a command-queue read (QEMU process_cmdq, Xen vgic_its_handle_cmds;
see cosim.trace_conventions), or an event carrying the 32 command bytes. The decoder
remembers the ids of outstanding command-queue reads until their replies (at most
:data:`MAX_PENDING_READS`), so feed it every record in order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cosim.trace_conventions import CONV
from gic import its_commands
from gic.its_commands import ITS_CMD_SIZE, ItsCommand
from gic.registers import mmio_register_name
from transport.abi import HYPERCALLS, PSCI_FUNCTIONS, XEN_HYPERCALL_TAG
from transport.trace import TraceRecord

GICR_STRIDE = 0x20000
#: Command-queue reads awaiting their reply that the decoder remembers (oldest forgotten).
MAX_PENDING_READS = 4096
#: Commands decoded from one read, at most (a read of a whole queue is not expanded further).
MAX_COMMANDS_PER_READ = 256


@dataclass(frozen=True, slots=True)
class MmioFrame:
    frame: str
    base: int
    size: int


def decode_commands(data: Any) -> list[ItsCommand]:
    """The ITS commands in ``data`` (whole 32-byte commands only; a partial tail is ignored)."""
    if not isinstance(data, bytes | bytearray):
        return []
    n = min(len(data) // ITS_CMD_SIZE, MAX_COMMANDS_PER_READ)
    return [
        its_commands.decode(bytes(data[i * ITS_CMD_SIZE : (i + 1) * ITS_CMD_SIZE]))
        for i in range(n)
    ]


class Decoder:
    """Adds decoded fields (``reg``, ``rdist``, ``hypercall``, ``psci``, ``its_cmd`` and the
    command's fields) to a record's body. Stateful: give it every record, in order."""

    def __init__(self, header: Mapping[str, Any]) -> None:
        self.frames = []
        for f in header.get("mmio_map", ()) if isinstance(header, Mapping) else ():
            try:
                self.frames.append(MmioFrame(str(f["frame"]), int(f["base"]), int(f["size"])))
            except (KeyError, TypeError, ValueError):
                continue  # a malformed frame entry names nothing
        self._cmdq_reads: OrderedDict[int, int] = OrderedDict()  # request id -> queue address

    def its_commands(self, rec: TraceRecord) -> list[ItsCommand]:
        """The ITS commands ``rec`` carries; also notes command-queue reads for their reply.

        Called by :meth:`fields`; call it directly (once per record, in order) when only
        the commands are wanted.
        """
        body = rec.body if isinstance(rec.body, Mapping) else {}
        kind = rec.kind
        if kind == CONV.k_mem:
            if rec.why in CONV.cmdq_read_whys and not body.get(CONV.write) and rec.id:
                self._cmdq_reads[rec.id] = int(body.get(CONV.addr) or 0)
                while len(self._cmdq_reads) > MAX_PENDING_READS:
                    self._cmdq_reads.popitem(last=False)
            elif rec.why in CONV.cmdq_read_whys and body.get(CONV.data):
                return decode_commands(body.get(CONV.data))
            return []
        if kind == CONV.k_reply and rec.reply_to:
            if self._cmdq_reads.pop(rec.reply_to, None) is not None:
                return decode_commands(body.get(CONV.data))
            return []
        if kind == CONV.k_its_cmd:
            return decode_commands(body.get(CONV.command))
        return []

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
            x16 = body.get("x16", -1)
            if body.get("imm") == XEN_HYPERCALL_TAG:
                known = HYPERCALLS.get(x16) if isinstance(x16, int) else None
                out["hypercall"] = known or f"#{x16}"
            elif isinstance(regs, (list, tuple)) and regs and isinstance(regs[0], int):
                out["psci"] = PSCI_FUNCTIONS.get(regs[0], f"{regs[0]:#x}")
        if kind == "smccc":
            fid = body.get("fid")
            if isinstance(fid, int):
                out["psci"] = PSCI_FUNCTIONS.get(fid, f"{fid:#x}")
        cmds = self.its_commands(rec)
        if cmds:
            out["its_cmd"] = ",".join(c.name for c in cmds)
            if len(cmds) == 1:
                out.update(cmds[0].fields())
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
