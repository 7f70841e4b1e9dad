"""``cosim trace stats``: what a trace contains, counted, and how long interrupts took.

Counts per kind, per component (``src``), per hypercall and per ITS command (decoded
from command-queue reads, see cosim.trace_decode); latencies in simulated time of every
interrupt followed by cosim.trace_chains: MSI to injection (``inject`` under Xen, the
physical ``lpi`` set on bare metal), injection to IAR (``ack``), IAR to EOI; the number
of valid list registers per ``entry`` (ICH_LR<n>_EL2.State != 0 in the entry's context),
list-register overflows (entries with ICH_HCR_EL2.UIE set: Xen asks for an underflow
maintenance interrupt because more interrupts are pending than LRs hold) and kicks.

Latencies go into a :class:`LogHistogram`: exact below 256 ns; above, buckets whose width
is at most 1/128 of their lower bound, each with its exact count, min and max. A
percentile (nearest rank) that is the first or last value of its bucket is exact;
otherwise it is the bucket's midpoint clamped to the bucket's min and max, within 1/256
(0.4 %) of the true value. min and max are exact.
Memory is constant in the trace's length: a few thousand buckets at most, plus the
interrupts in flight.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any, TextIO

from cosim.trace_chains import COALESCED, DELIVERED, DROPPED, Chain, ChainTracker
from cosim.trace_conventions import CONV, open_trace
from cosim.trace_decode import Decoder

#: Values below 2**EXACT_BITS are kept exactly; above, 2**(EXACT_BITS - 1) buckets per octave.
EXACT_BITS = 8

ICH_LR_STATE_SHIFT = 62  # ICH_LR<n>_EL2.State, bits [63:62]
ICH_HCR_UIE = 1 << 1  # ICH_HCR_EL2.UIE


class LogHistogram:
    """A streaming histogram of non-negative integers with bounded relative error."""

    def __init__(self) -> None:
        self.buckets: dict[int, list[int]] = {}  # bucket lower bound -> [count, min, max]
        self.count = 0
        self.min: int | None = None
        self.max: int | None = None
        self.total = 0

    @staticmethod
    def bucket(v: int) -> tuple[int, int]:
        """(lower bound, width) of the bucket holding ``v``."""
        if v < (1 << EXACT_BITS):
            return v, 1
        shift = v.bit_length() - EXACT_BITS
        return (v >> shift) << shift, 1 << shift

    def add(self, v: int) -> None:
        v = max(0, int(v))
        b = self.buckets.get(self.bucket(v)[0])
        if b is None:
            self.buckets[self.bucket(v)[0]] = [1, v, v]
        else:
            b[0] += 1
            b[1] = min(b[1], v)
            b[2] = max(b[2], v)
        self.count += 1
        self.total += v
        self.min = v if self.min is None else min(self.min, v)
        self.max = v if self.max is None else max(self.max, v)

    def percentile(self, p: float) -> int | None:
        """The nearest-rank ``p``-th percentile (0 < p <= 100), within the documented error."""
        if not self.count:
            return None
        assert self.min is not None and self.max is not None
        rank = max(1, -(-round(p * 1000) * self.count // 100_000))  # ceil(p/100 * count)
        seen = 0
        for lo in sorted(self.buckets):
            count, bmin, bmax = self.buckets[lo]
            if seen + count >= rank:
                if rank == seen + 1:
                    return bmin  # the smallest value of its bucket: known exactly
                if rank == seen + count:
                    return bmax
                _, width = self.bucket(lo)
                return min(max(lo + (width - 1) // 2, bmin), bmax)
            seen += count
        return self.max

    def summary(self) -> dict[str, int | None]:
        return {
            "count": self.count,
            "min": self.min,
            "median": self.percentile(50),
            "p99": self.percentile(99),
            "max": self.max,
        }


LATENCIES = ("msi_to_inject", "inject_to_ack", "ack_to_eoi")


class TraceStats:
    """Accumulates the statistics of records fed in order."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.decoder = Decoder(header)
        self.tracker = ChainTracker()
        self.records = 0
        self.first_t: int | None = None
        self.last_t: int | None = None
        self.kinds: Counter[str] = Counter()
        self.components: Counter[str] = Counter()
        self.hypercalls: Counter[str] = Counter()
        self.its_commands: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.latency = {name: LogHistogram() for name in LATENCIES}
        self.lr_occupancy: Counter[int] = Counter()
        self.lr_overflows = 0
        self.kicks = 0

    def feed(self, rec: Any) -> None:
        self.records += 1
        if self.first_t is None:
            self.first_t = rec.t
        self.last_t = rec.t
        self.kinds[rec.kind] += 1
        self.components[rec.src] += 1
        fields = self.decoder.fields(rec)
        if "hypercall" in fields:
            self.hypercalls[fields["hypercall"]] += 1
        if "its_cmd" in fields:
            for name in str(fields["its_cmd"]).split(","):
                self.its_commands[name] += 1
        if rec.kind == CONV.k_entry:
            self._entry(rec.body)
        elif rec.kind == CONV.k_kick:
            self.kicks += 1
        for chain in self.tracker.feed(rec):
            self._chain(chain)

    def _entry(self, body: Any) -> None:
        ctx = body.get(CONV.ctx) if isinstance(body, dict) else None
        lrs: Any = ()
        hcr: Any = 0
        if isinstance(ctx, (list, tuple)):
            lrs = ctx[0] if len(ctx) > 0 else ()
            hcr = ctx[1] if len(ctx) > 1 else 0
        elif isinstance(ctx, dict):
            lrs, hcr = ctx.get("lrs", ()), ctx.get("hcr", 0)
        if not isinstance(lrs, (list, tuple)):
            lrs = ()
        valid = sum(1 for lr in lrs if isinstance(lr, int) and (lr >> ICH_LR_STATE_SHIFT) & 3)
        self.lr_occupancy[valid] += 1
        if isinstance(hcr, int) and hcr & ICH_HCR_UIE:
            self.lr_overflows += 1

    def _chain(self, chain: Chain) -> None:
        self.outcomes[chain.outcome or ("evicted" if chain.evicted else "in flight")] += 1
        t = chain.times
        inj = chain.injected_at
        if "msi" in t and inj is not None:
            self.latency["msi_to_inject"].add(inj - t["msi"])
        if inj is not None and "ack" in t:
            self.latency["inject_to_ack"].add(t["ack"] - inj)
        if "ack" in t and "eoi" in t:
            self.latency["ack_to_eoi"].add(t["eoi"] - t["ack"])

    def finish(self) -> None:
        for chain in self.tracker.finish():
            self._chain(chain)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "first_t": self.first_t,
            "last_t": self.last_t,
            "kinds": dict(self.kinds.most_common()),
            "components": dict(self.components.most_common()),
            "hypercalls": dict(self.hypercalls.most_common()),
            "its_commands": dict(self.its_commands.most_common()),
            "interrupts": {
                k: self.outcomes.get(k, 0)
                for k in (DELIVERED, COALESCED, DROPPED, "in flight", "evicted")
            },
            "latency_ns": {name: h.summary() for name, h in self.latency.items()},
            "lr_occupancy": {str(k): v for k, v in sorted(self.lr_occupancy.items())},
            "lr_overflows": self.lr_overflows,
            "kicks": self.kicks,
        }


def collect(records: Iterable[Any], header: dict[str, Any]) -> TraceStats:
    stats = TraceStats(header)
    for rec in records:
        stats.feed(rec)
    stats.finish()
    return stats


def _ns(v: int | None) -> str:
    if v is None:
        return "-"
    if v < 10_000:
        return f"{v} ns"
    if v < 10_000_000:
        return f"{v / 1000:.3f} µs"
    return f"{v / 1_000_000:.3f} ms"


def render(stats: TraceStats, out: TextIO) -> None:
    """Rich tables for people."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=100, highlight=False, color_system=None)
    d = stats.as_dict()
    span = (
        f", simulated {_ns(d['first_t'])} .. {_ns(d['last_t'])}" if d["first_t"] is not None else ""
    )
    console.print(f"{d['records']} records{span}")

    def counts(title: str, what: str, data: dict[str, int]) -> None:
        if not data:
            return
        table = Table(title=title, title_justify="left")
        table.add_column(what)
        table.add_column("count", justify="right")
        for k, v in data.items():
            table.add_row(str(k), str(v))
        console.print(table)

    counts("Records per kind", "kind", d["kinds"])
    counts("Records per component", "component", d["components"])
    counts("Hypercalls", "hypercall", d["hypercalls"])
    counts("ITS commands", "command", d["its_commands"])
    counts("Interrupts", "outcome", {k: v for k, v in d["interrupts"].items() if v})

    lat = Table(title="Latency (simulated time)", title_justify="left")
    for col in ("interval", "count", "min", "median", "p99", "max"):
        lat.add_column(col, justify="left" if col == "interval" else "right")
    names = {
        "msi_to_inject": "MSI -> injection",
        "inject_to_ack": "injection -> IAR",
        "ack_to_eoi": "IAR -> EOI",
    }
    for key, s in d["latency_ns"].items():
        lat.add_row(
            names[key],
            str(s["count"]),
            _ns(s["min"]),
            _ns(s["median"]),
            _ns(s["p99"]),
            _ns(s["max"]),
        )
    console.print(lat)

    if d["lr_occupancy"]:
        occ = Table(title="Valid list registers per entry", title_justify="left")
        occ.add_column("valid LRs", justify="right")
        occ.add_column("entries", justify="right")
        for k, v in d["lr_occupancy"].items():
            occ.add_row(k, str(v))
        console.print(occ)
    console.print(f"list-register overflows (UIE set on entry): {d['lr_overflows']}")
    console.print(f"kicks: {d['kicks']}")


def main(
    path: str, *, as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Print the statistics of every readable record; a torn or corrupt tail: stderr, exit 1."""
    out = out or sys.stdout
    err = err or sys.stderr
    reader = open_trace("cosim trace stats", path, err)
    if reader is None:
        return 2
    stats = collect(reader, reader.header)
    if as_json:
        out.write(json.dumps(stats.as_dict(), separators=(",", ":")) + "\n")
    else:
        render(stats, out)
    if reader.problem is not None:
        print(f"cosim trace stats: {path}: {reader.problem.message}", file=err)
        return 1
    return 0
