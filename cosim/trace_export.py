"""``cosim trace export TRACE --chrome OUT.json``: Chrome trace-event JSON for ui.perfetto.dev.

Layout (https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU):

* a process per component (``src``; for ``entry`` and ``kick``, which Xen sends to a
  vCPU, the destination), with ``M`` process_name / thread_name metadata;
* a thread per CPU of that component: ``vCPU n`` for records with ``vcpu``, ``CPU n``
  for ``cpu`` or ``processor`` (a pCPU on a Xen host), ``device 0x..`` for an MSI's
  DeviceID, else ``main``;
* complete (``X``) slices for traps (``exit`` -> ``entry`` of the same vCPU, named by the
  exit reason and the hypercall or register) and for handlers (``ack`` -> ``eoi`` of the
  same INTID on that CPU). Slices on one thread always nest: closing a slice that is not
  the innermost open one closes the inner ones at the same time and reopens them
  (``args.split``), and slices still open at the end close at the last record's time
  (``args.unfinished``);
* instant (``i``, thread scope) events for msi, lpi, inject, lr, irq, kick, ack, eoi,
  warning and fault records;
* flow events per interrupt (cosim.trace_chains), ``s`` at its MSI, ``t`` at each of the
  physical LPI, the injection, the list register and the IAR, ``f`` at the EOI (or its last
  step), all with ``bp: "e"`` so they bind to the instant at the same time and thread,
  emitted only once the interrupt has at least two steps, so every start has its end;
* a counter (``C``) of valid list registers per vCPU at each ``entry``.

Timestamps are microseconds (float) from the simulated nanoseconds. The file is written
as records are read; state is the open slices and the interrupts in flight.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from cosim.trace_chains import Chain, ChainTracker
from cosim.trace_conventions import CONV, open_trace
from cosim.trace_decode import Decoder
from cosim.trace_stats import ICH_LR_STATE_SHIFT
from transport.trace import TraceRecord

INSTANT_KINDS = frozenset(
    {
        CONV.k_msi,
        CONV.k_lpi,
        CONV.k_inject,
        CONV.k_lr,
        CONV.k_irq,
        CONV.k_kick,
        CONV.k_ack,
        CONV.k_eoi,
        CONV.k_warning,
        CONV.k_fault,
    }
)
#: Stages of an interrupt that carry a flow step, in order.
FLOW_STAGES = ("msi", "lpi", "inject", "lr", "ack", "eoi")
#: Open slices kept per thread; a deeper one closes the outermost (args.unfinished).
MAX_DEPTH = 64


def _us(t: int) -> float:
    return t / 1000


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v[:64].hex()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _num(body: Any, key: str) -> int | None:
    v = body.get(key) if isinstance(body, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class _Open:
    __slots__ = ("key", "name", "start", "args")

    def __init__(self, key: Any, name: str, start: int, args: dict[str, Any]) -> None:
        self.key = key
        self.name = name
        self.start = start
        self.args = args


class ChromeExporter:
    """Writes Chrome trace-event JSON to ``out`` as records are fed."""

    def __init__(self, out: TextIO, header: dict[str, Any]) -> None:
        self.out = out
        self.decoder = Decoder(header)
        self.tracker = ChainTracker(keep_records=True)
        self.pids: dict[str, int] = {}
        self.tids: dict[tuple[int, Any], int] = {}
        self.open: dict[tuple[int, int], list[_Open]] = {}
        self.first = True
        self.last_t = 0
        self.events = 0
        out.write('{"traceEvents":[\n')

    # -- output --------------------------------------------------------------------------------

    def emit(self, ev: dict[str, Any]) -> None:
        self.out.write(("" if self.first else ",\n") + json.dumps(ev, separators=(",", ":")))
        self.first = False
        self.events += 1

    def pid(self, component: str) -> int:
        pid = self.pids.get(component)
        if pid is None:
            pid = self.pids[component] = len(self.pids) + 1
            self.emit({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": component}})
        return pid

    def tid(self, pid: int, track: tuple[str, int]) -> int:
        tid = self.tids.get((pid, track))
        if tid is None:
            tid = self.tids[(pid, track)] = len(self.tids) + 1
            what, n = track
            label = (
                "main"
                if what == "main"
                else f"{what} {n:#x}"
                if what == "device"
                else f"{what} {n}"
            )
            self.emit(
                {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": label}}
            )
        return tid

    def where(self, rec: TraceRecord) -> tuple[int, int]:
        """(pid, tid) of a record's track."""
        body = rec.body
        component = rec.dst if rec.kind in (CONV.k_entry, CONV.k_kick) and rec.dst else rec.src
        pid = self.pid(component)
        track: tuple[str, int] = ("main", 0)
        for key, what in ((CONV.vcpu, "vCPU"), (CONV.cpu, "CPU"), (CONV.processor, "CPU")):
            n = _num(body, key)
            if n is not None:
                track = (what, n)
                break
        else:
            devid = _num(body, CONV.devid)
            if rec.kind == CONV.k_msi and devid is not None:
                track = ("device", devid)
        return pid, self.tid(pid, track)

    # -- slices --------------------------------------------------------------------------------

    def _x(self, pid: int, tid: int, s: _Open, end: int, **extra: Any) -> None:
        args = dict(s.args, **extra)
        self.emit(
            {
                "ph": "X",
                "name": s.name,
                "cat": s.key[0],
                "ts": _us(s.start),
                "dur": _us(end - s.start),
                "pid": pid,
                "tid": tid,
                "args": args,
            }
        )

    def open_slice(self, pid: int, tid: int, s: _Open) -> None:
        stack = self.open.setdefault((pid, tid), [])
        if len(stack) >= MAX_DEPTH:
            self.close_slice(pid, tid, stack[0].key, s.start, unfinished=True)
            stack = self.open.setdefault((pid, tid), [])
        stack.append(s)

    def close_slice(self, pid: int, tid: int, key: Any, end: int, **extra: Any) -> bool:
        stack = self.open.get((pid, tid))
        if not stack:
            return False
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].key == key:
                break
        else:
            return False
        inner = stack[i + 1 :]
        for s in reversed(inner):  # innermost first: they end with the one being closed
            self._x(pid, tid, s, end, split=True)
        self._x(pid, tid, stack[i], end, **extra)
        del stack[i:]
        for s in inner:  # and go on from here
            stack.append(_Open(s.key, s.name, end, s.args))
        if not stack:
            del self.open[(pid, tid)]
        return True

    # -- records -------------------------------------------------------------------------------

    def feed(self, rec: TraceRecord) -> None:
        self.last_t = max(self.last_t, rec.t)
        fields = self.decoder.fields(rec)
        kind = rec.kind
        body = rec.body if isinstance(rec.body, dict) else {}
        if kind == CONV.k_exit:
            pid, tid = self.where(rec)
            vcpu = _num(body, CONV.vcpu)
            reason = str(body.get(CONV.reason_exit, "?"))
            detail = fields.get("hypercall") or fields.get("psci") or fields.get("reg") or ""
            detail = detail or (body.get("reg") if reason == "sysreg" else "")
            name = f"trap {reason}" + (f" {detail}" if detail else "")
            self.close_slice(pid, tid, ("trap", vcpu), rec.t, unfinished=True)
            self.open_slice(pid, tid, _Open(("trap", vcpu), name, rec.t, {"seq": rec.seq}))
        elif kind == CONV.k_entry:
            pid, tid = self.where(rec)
            self.close_slice(pid, tid, ("trap", _num(body, CONV.vcpu)), rec.t, entry=rec.seq)
            self._lr_counter(rec, pid, body)
        if kind in INSTANT_KINDS:
            pid, tid = self.where(rec)
            if kind == CONV.k_eoi:
                self.close_slice(pid, tid, ("irq", _num(body, CONV.intid)), rec.t, eoi=rec.seq)
            self.emit(
                {
                    "ph": "i",
                    "s": "t",
                    "name": self._instant_name(kind, body),
                    "cat": kind,
                    "ts": _us(rec.t),
                    "pid": pid,
                    "tid": tid,
                    "args": dict(_plain(body), seq=rec.seq, why=rec.why),
                }
            )
            if kind == CONV.k_ack:
                intid = _num(body, CONV.intid)
                self.open_slice(
                    pid, tid, _Open(("irq", intid), f"IRQ {intid}", rec.t, {"seq": rec.seq})
                )
        for chain in self.tracker.feed(rec):
            self._flow(chain)

    @staticmethod
    def _instant_name(kind: str, body: dict[str, Any]) -> str:
        c = CONV
        if kind == c.k_msi:
            return f"msi {body.get(c.devid, '?')}:{body.get(c.eventid, '?')}"
        if kind == c.k_lpi:
            return f"lpi {body.get(c.intid, '?')} {body.get(c.action, '')}".rstrip()
        if kind == c.k_inject:
            return f"inject virq {body.get(c.virq, '?')}"
        if kind == c.k_lr:
            return f"LR{body.get(c.lr_index, '?')} virq {body.get(c.virq, '?')}"
        if kind == c.k_irq:
            return "irq up" if body.get(c.level) else "irq down"
        if kind in (c.k_ack, c.k_eoi):
            return f"{kind} {body.get(c.intid, '?')}"
        if kind == c.k_fault:
            return f"fault {body.get(c.rule, '?')}"
        return kind

    def _lr_counter(self, rec: TraceRecord, pid: int, body: dict[str, Any]) -> None:
        ctx = body.get(CONV.ctx)
        lrs = ctx[0] if isinstance(ctx, (list, tuple)) and ctx else ()
        if not isinstance(lrs, (list, tuple)) or not lrs:
            return
        valid = sum(1 for lr in lrs if isinstance(lr, int) and (lr >> ICH_LR_STATE_SHIFT) & 3)
        self.emit(
            {
                "ph": "C",
                "name": f"valid LRs vCPU {body.get(CONV.vcpu, '?')}",
                "ts": _us(rec.t),
                "pid": pid,
                "args": {"valid": valid},
            }
        )

    def _flow(self, chain: Chain) -> None:
        steps: list[TraceRecord] = []
        for stage in FLOW_STAGES:
            for st, rec in chain.records:
                if st == stage:
                    steps.append(rec)
                    break
        if len(steps) < 2:
            return
        for i, rec in enumerate(steps):
            pid, tid = self.where(rec)
            ph = "s" if i == 0 else "f" if i == len(steps) - 1 else "t"
            self.emit(
                {
                    "ph": ph,
                    "id": chain.n,
                    "name": "interrupt",
                    "cat": "interrupt",
                    "ts": _us(rec.t),
                    "pid": pid,
                    "tid": tid,
                    "bp": "e",
                }
            )

    def close(self, other: dict[str, Any] | None = None) -> None:
        for chain in self.tracker.finish():
            self._flow(chain)
        for (pid, tid), stack in list(self.open.items()):
            while stack:
                self.close_slice(pid, tid, stack[-1].key, self.last_t, unfinished=True)
                stack = self.open.get((pid, tid), [])
        self.out.write('\n],"displayTimeUnit":"ns","otherData":')
        self.out.write(json.dumps(other or {}, default=str, separators=(",", ":")) + "}\n")


def main(path: str, chrome: str, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Write the Chrome JSON of every readable record; a torn trace: stderr, exit 1."""
    out = out or sys.stdout
    err = err or sys.stderr
    prog = "cosim trace export"
    reader = open_trace(prog, path, err)
    if reader is None:
        return 2
    header = reader.header
    try:
        f = open(chrome, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        print(f"{prog}: {chrome}: cannot write: {exc.strerror or exc}", file=err)
        return 2
    with f:
        exporter = ChromeExporter(f, header)
        for rec in reader:
            exporter.feed(rec)
        other = {"source": path, "records": reader.records_read}
        if reader.problem is not None:
            other["problem"] = reader.problem.message
        for key in ("scenario", "scenario_hash", "version", "versions"):
            if key in header:
                other[key] = _plain(header[key])
        exporter.close(other)
    out.write(f"{chrome}: {exporter.events} events from {reader.records_read} records\n")
    if reader.problem is not None:
        print(f"{prog}: {path}: {reader.problem.message}", file=err)
        return 1
    return 0
