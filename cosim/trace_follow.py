"""``cosim trace follow``: the records of one interrupt, from the device's MSI to the guest's EOI.

``--msi DEVID:EVENTID`` picks the K-th MSI of that pair (``--nth K``, from 1);
``--lpi N`` the K-th interrupt that the physical ITS translated to LPI N. The chain is
built by cosim.trace_chains; each record is printed with format_line, after the time
since the chain's first record and since the previous one. Reading stops once the chain
has ended, so following an early interrupt of a long trace is quick.
"""

from __future__ import annotations

import sys
from typing import TextIO

from cosim.trace_chains import Chain, ChainTracker
from cosim.trace_conventions import open_trace
from cosim.trace_decode import Decoder, format_line


def parse_msi(text: str) -> tuple[int, int]:
    """``DEVID:EVENTID`` (each decimal or 0x-hex) -> (devid, eventid); ValueError if bad."""
    devid, sep, eventid = text.partition(":")
    if not sep:
        raise ValueError(f"--msi {text!r}: expected DEVID:EVENTID, e.g. 0x10:3")
    try:
        return int(devid, 0), int(eventid, 0)
    except ValueError:
        raise ValueError(f"--msi {text!r}: DEVID and EVENTID must be integers") from None


def _delta(ns: int) -> str:
    return f"+{ns / 1000:.3f}us"


def _outcome(chain: Chain | None, ended: bool) -> str:
    if chain is None:
        return ""
    if chain.outcome == "delivered":
        total = chain.times["eoi"] - chain.times[min(chain.times, key=chain.times.__getitem__)]
        return f"delivered: {_delta(total)} from the first record to the EOI"
    if chain.outcome == "dropped":
        rule = f" by fault rule {chain.rule}" if chain.rule else ""
        return f"dropped{rule}: {chain.reason or 'no reason recorded'}"
    if chain.outcome == "coalesced":
        return f"coalesced: {chain.reason or 'with an interrupt still pending'}"
    if chain.evicted:
        return f"lost track: {chain.reason}"
    return f"incomplete: the trace ends after the {chain.last_stage}" if ended else ""


def main(
    path: str,
    *,
    lpi: int | None = None,
    msi: tuple[int, int] | None = None,
    nth: int = 1,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the chain; exit 0 if found, 1 if not found or the trace is torn, 2 if unreadable."""
    out = out or sys.stdout
    err = err or sys.stderr
    prog = "cosim trace follow"
    if (lpi is None) == (msi is None):
        print(f"{prog}: give exactly one of --lpi N and --msi DEVID:EVENTID", file=err)
        return 2
    if nth < 1:
        print(f"{prog}: --nth must be at least 1, not {nth}", file=err)
        return 2
    reader = open_trace(prog, path, err)
    if reader is None:
        return 2
    header = reader.header
    tracker = ChainTracker(keep_records=True)
    target: Chain | None = None
    seen = 0
    done = False
    for rec in reader:
        finished = tracker.feed(rec)
        if target is None:
            for chain in tracker.touched:
                stage, first = chain.records[-1]
                if (
                    msi is not None
                    and stage == "msi"
                    and (chain.devid, chain.eventid) == msi
                    or lpi is not None
                    and stage == "lpi"
                    and chain.intid == lpi
                ):
                    seen += 1
                else:
                    continue
                if seen == nth:
                    target = chain
                    break
        if target is not None and any(c is target for c in finished):
            done = True
            break
    if target is None:
        what = f"MSI {msi[0]:#x}:{msi[1]}" if msi is not None else f"LPI {lpi}"
        print(f"{prog}: {path}: {what} #{nth} not found ({seen} seen)", file=err)
        if reader.problem is not None:
            print(f"{prog}: {path}: {reader.problem.message}", file=err)
        return 1
    fmt = Decoder(header)  # names registers; the chain's kinds need no command-queue history
    t0 = target.records[0][1].t
    prev = t0
    for _, rec in target.records:
        out.write(f"{_delta(rec.t - t0):>14} {_delta(rec.t - prev):>14}  ")
        out.write(format_line(rec, fmt.fields(rec)) + "\n")
        prev = rec.t
    summary = _outcome(target, ended=not done)
    if summary:
        out.write(summary + "\n")
    if not done and reader.problem is not None:
        print(f"{prog}: {path}: {reader.problem.message}", file=err)
        return 1
    return 0
