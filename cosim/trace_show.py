"""``cosim trace show``: a trace, one record per line (or one JSON object per line).

``--filter EXPR`` keeps the records an expression of cosim.trace_filter matches; it
sees the top-level fields, the body and the decoded fields (reg, hypercall, its_cmd, ...);
``id`` and ``reply_to`` are absent when 0 (the trace format's "none"), so a bare
``reply_to`` keeps the replies.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from cosim.trace_conventions import open_trace
from cosim.trace_decode import Decoder, format_line
from cosim.trace_filter import MISSING, Filter, FilterError, compile_filter
from transport.trace import FIELDS, TraceRecord


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _field(rec: TraceRecord, body: dict[str, Any], fields: dict[str, Any], name: str) -> Any:
    head, dot, rest = name.partition(".")
    if head in FIELDS:
        v = getattr(rec, head)
        if v == 0 and head in ("id", "reply_to"):  # 0 = none
            return MISSING
    elif head in body:
        v = body[head]
    elif head in fields:
        v = fields[head]
    else:
        return MISSING
    if dot:
        for part in rest.split("."):
            if not isinstance(v, dict) or part not in v:
                return MISSING
            v = v[part]
    return MISSING if v is None else v


def matches(flt: Filter, rec: TraceRecord, fields: dict[str, Any]) -> bool:
    """Does ``rec`` (with its decoded ``fields``) pass the filter? Top-level fields first,
    then the body, then the decoded fields."""
    body = rec.body if isinstance(rec.body, dict) else {}
    # not a closure that calls itself: that would be a reference cycle per record
    return flt.matches(lambda name: _field(rec, body, fields, name))


def main(
    path: str,
    *,
    as_json: bool = False,
    filter_expr: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print every readable record (that the filter keeps); a bad filter: the expression, a
    caret and the message, exit 2; a torn or corrupt tail: one line on stderr, exit 1."""
    out = out or sys.stdout
    err = err or sys.stderr
    flt: Filter | None = None
    if filter_expr is not None:
        try:
            flt = compile_filter(filter_expr)
        except FilterError as exc:
            expr, caret, _ = exc.lines()
            print(expr, file=err)
            print(caret, file=err)
            print(f"cosim trace show: bad filter at column {exc.column}: {exc.message}", file=err)
            return 2
    reader = open_trace("cosim trace show", path, err)
    if reader is None:
        return 2
    dec = Decoder(reader.header)
    for rec in reader:
        fields = dec.fields(rec)
        if flt is not None and not matches(flt, rec, fields):
            continue
        if as_json:
            obj = {"seq": rec.seq, "t": rec.t, "src": rec.src, "dst": rec.dst, "kind": rec.kind}
            obj.update(
                _jsonable(rec.body) if isinstance(rec.body, dict) else {"body": _jsonable(rec.body)}
            )
            obj.update(fields)
            if rec.why:
                obj["why"] = rec.why
            if rec.id:
                obj["id"] = rec.id
            if rec.reply_to:
                obj["reply_to"] = rec.reply_to
            out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        else:
            out.write(format_line(rec, fields) + "\n")
    if reader.problem is not None:
        print(f"cosim trace show: {path}: {reader.problem.message}", file=err)
        return 1
    return 0
