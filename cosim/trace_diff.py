"""``cosim trace diff A B [--canonical]``: the first differing record and field, streaming both.

Without ``--canonical`` everything is compared: the header, then every record field
(seq, t, src, dst, kind, body, why, id, reply_to), bodies key by key (``body.ctx[0][2]``).

``--canonical`` compares only what must not differ between an in-process and a
multi-process run of the same scenario. It ignores:

* header keys that describe the run rather than the scenario (:data:`RUN_HEADER_KEYS`:
  pid, wall-clock times, host name, command line, working directory, run mode, the
  scenario file's path (its hash is compared), ...);
* ``seq`` (records are compared in order; numbering is the writer's);
* the numbering of request ids: each trace's ``id`` values are renumbered 1, 2, ... in
  order of appearance and every ``reply_to`` is mapped through that renumbering (a
  ``reply_to`` naming no earlier request becomes -1); a request is forgotten once its
  reply is seen, and at most :data:`MAX_OPEN_REQUESTS` unanswered ones are remembered;
* the link handshake and teardown (``hello``, ``bye``), which exist only across processes.

Exit 0 if equal, 1 at the first difference (or a torn/corrupt trace, reported on
stderr after comparing the readable prefixes), 2 if a file is not a trace.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterator
from itertools import zip_longest
from typing import Any, TextIO

from cosim.trace_conventions import CONV, open_trace
from cosim.trace_decode import Decoder, format_line
from transport.trace import FIELDS, TraceRecord

#: Header keys that may differ between two runs of one scenario (ignored by --canonical).
RUN_HEADER_KEYS = frozenset(
    {
        "pid",
        "pids",
        "ppid",
        "wall_time",
        "wall_clock",
        "wall_start",
        "wall_end",
        "started",
        "start_time",
        "finished",
        "end_time",
        "elapsed",
        "elapsed_s",
        "date",
        "hostname",
        "node",
        "argv",
        "command_line",
        "cwd",
        "user",
        "mode",
        "run_mode",
        "processes",
        "transport",
        "link",
        "python",
        "run_id",
        # the scenario is its scenario_sha256; where its file was is the run's business
        "scenario_path",
    }
)
#: Requests without a reply yet that --canonical remembers per trace (oldest forgotten).
MAX_OPEN_REQUESTS = 65536
_NO_REQUEST = -1


class _Renumber:
    """Request ids renumbered in order of appearance, forgetting answered requests."""

    def __init__(self) -> None:
        self.next = 1
        self.open: OrderedDict[int, int] = OrderedDict()

    def id(self, raw: int) -> int:
        if not raw:
            return 0
        n = self.next
        self.next += 1
        self.open[raw] = n
        while len(self.open) > MAX_OPEN_REQUESTS:
            self.open.popitem(last=False)
        return n

    def reply_to(self, raw: int) -> int:
        if not raw:
            return 0
        return self.open.pop(raw, _NO_REQUEST)


def _canonical(records: Iterator[TraceRecord]) -> Iterator[TraceRecord]:
    ids = _Renumber()
    skip = {CONV.k_hello, CONV.k_bye}
    for rec in records:
        if rec.kind in skip:
            continue
        yield TraceRecord(
            rec.seq,  # kept for messages; not compared
            rec.t,
            rec.src,
            rec.dst,
            rec.kind,
            rec.body,
            rec.why,
            ids.id(rec.id),
            ids.reply_to(rec.reply_to),
        )


def first_difference(a: Any, b: Any, path: str) -> tuple[str, Any, Any] | None:
    """(path, value in A, value in B) of the first difference, depth first; None if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}.{k}", a.get(k, "<absent>"), b.get(k, "<absent>")
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d is not None:
                return d
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d is not None:
                return d
        if len(a) != len(b):
            return f"{path}.length", len(a), len(b)
        return None
    if type(a) is not type(b) or a != b:
        return path, a, b
    return None


def _show(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 9:
        return f"{v:#x}"
    if isinstance(v, bytes):
        return v[:32].hex() + ("..." if len(v) > 32 else "")
    text = repr(v)
    return text if len(text) <= 120 else text[:117] + "..."


def main(
    path_a: str,
    path_b: str,
    *,
    canonical: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    prog = "cosim trace diff"
    readers = []
    for path in (path_a, path_b):
        reader = open_trace(prog, path, err)
        if reader is None:
            return 2
        readers.append(reader)
    ra, rb = readers
    ha, hb = ra.header, rb.header
    if canonical:
        ha = {k: v for k, v in ha.items() if k not in RUN_HEADER_KEYS}
        hb = {k: v for k, v in hb.items() if k not in RUN_HEADER_KEYS}
    d = first_difference(ha, hb, "header")
    if d is not None:
        out.write(f"header differs at {d[0]}: A {_show(d[1])} != B {_show(d[2])}\n")
        return 1
    ia: Iterator[TraceRecord] = iter(ra)
    ib: Iterator[TraceRecord] = iter(rb)
    if canonical:
        ia, ib = _canonical(ia), _canonical(ib)
    fields = FIELDS[1:] if canonical else FIELDS
    result = 0
    for index, (x, y) in enumerate(zip_longest(ia, ib)):
        if x is None or y is None:
            longer, rec = ("A", x) if y is None else ("B", y)
            shorter = "B" if longer == "A" else "A"
            out.write(f"record {index}: {shorter} ends here; {longer} goes on with seq {rec.seq}\n")
            result = 1
            break
        for name in fields:
            d = first_difference(getattr(x, name), getattr(y, name), name)
            if d is not None:
                where = f"record {index} (A #{x.seq}, B #{y.seq})"
                out.write(f"{where}: {d[0]}: A {_show(d[1])} != B {_show(d[2])}\n")
                dec_a, dec_b = Decoder(ra.header), Decoder(rb.header)
                out.write(f"  A {format_line(x, dec_a.fields(x))}\n")
                out.write(f"  B {format_line(y, dec_b.fields(y))}\n")
                result = 1
                break
        if result:
            break
    problems = [(p, r.problem) for p, r in ((path_a, ra), (path_b, rb)) if r.problem is not None]
    for path, problem in problems:
        print(f"{prog}: {path}: {problem.message}", file=err)
    if result == 0 and problems:
        return 1
    return result
