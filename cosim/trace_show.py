"""``cosim trace show``: a trace, one record per line (or one JSON object per line)."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from cosim.trace_decode import Decoder, format_line
from transport.trace import TraceError, TraceReader


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def main(
    path: str, *, as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Print every readable record; report a torn or corrupt tail on stderr (exit 1)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        reader = TraceReader(path)
        header = reader.header
    except (OSError, TraceError) as exc:
        print(f"cosim trace show: {path}: {exc}", file=err)
        return 2
    dec = Decoder(header)
    for rec in reader:
        fields = dec.fields(rec)
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
