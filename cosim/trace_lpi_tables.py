"""``cosim trace lpi-tables TRACE [--json]``: who touched each of the guest's LPI and ITS tables.

The verdict of the question "who ever touches the guest's LPI tables": for every table the
guest ever programmed (the LPI property table, each CPU's pending table, the ITS device and
collection tables, each device's ITT, the command queue) and for each agent (``hw``: the
physical GIC; ``xen``: Xen's software; ``guest``: the kernel's own stores), the reads,
writes, bytes, first and last simulated time and the modelled functions (``why``).

Where the tables are comes only from what the trace recorded of the programming
(cosim.trace_check.TableMap: GICR_PROPBASER, GICR_PENDBASER, GITS_BASER<n>, GITS_CBASER,
MAPD), never from the guest's log. The accesses are the ``mem`` records: ``hw`` and ``xen``
requests (messages), and the guest's own stores into its tables (events the guest records,
guest/kernel.py ``Kernel.ram_write``).

Entries. Every table ever programmed is its own entry, with the time and the component
(``src``) of the record that first programmed it. The same (table, base, size) programmed
from several redistributors (Linux writes the same PROPBASER to each) is one entry listing
the CPUs; a kexec (a ``kexec-load`` record) starts a new generation, so a second kernel's
tables are new entries even at the same address. The redistributor index of a GICR frame
is taken as the CPU (vCPU n has redistributor n on QEMU virt and under Xen). An access is
attributed, per table kind, to one entry: among the entries it overlaps, a live one (the
current programming of some redistributor, BASER, queue or DeviceID) before a retired
one, the most recently programmed first. So after a kexec, reads of the first kernel's
table stay with the first kernel's entry unless the second kernel's live table overlaps
them. ``bytes`` counts the bytes of an access that fall inside the entry.

The guest prepares a table before it programs it (alloc_pages zeroes it,
gic_reset_prop_table writes the defaults). A guest store that no table of the current
generation covers yet is held: the first table of that generation programmed (or, for a
level-2 page, found) over it takes it; at the end of the generation (or of the trace) a
store still held goes to the table it overlapped when it was made, if any.

Frozen programming (``"frozen": true``: the entry was programmed but that never took
effect), from what the trace shows:

* Under Xen (the write is a data-abort ``exit``): GICR_PROPBASER is one value per domain,
  ignored once any redistributor has EnableLPIs (``rdists_enabled``); GICR_PENDBASER is
  ignored once that vCPU wrote EnableLPIs; EnableLPIs cannot be cleared (write-once). A
  MAPD V=1 of a DeviceID already mapped (V=1 with no V=0 since) is refused
  (gicv3_its_map_guest_device: -EBUSY), so the old ITT stays.
* On both hosts: GITS_BASER<n> and GITS_CBASER are read-only while GITS_CTLR.Enabled
  (QEMU its_writel/its_writell, Xen vgic_v3_its_mmio_write). Bare-metal QEMU accepts
  PROPBASER/PENDBASER writes at any time.

A frozen write leaves the previous programming live. Not inferred: a write Xen drops for
another reason (a GITS_CTLR enable Xen refuses because a table is not Valid, registers
written without HAS_ITS: then the guest never programs them anyway).

An indirect ITS device table: its level-2 pages are learned from the level-1 entries read
back (the reply to an 8-byte read of the level-1 table, Valid bit 63, QEMU's address bits
[50:0]) and belong to the device table's entry (``level2``) from then on.

A trace cut short gives the verdict of its readable prefix, marked ``partial``, with the
problem on stderr; exit 0 (1 only when the file is not a trace).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, TextIO

from cosim.trace_check import TableMap, register_write
from cosim.trace_conventions import CONV, open_trace
from cosim.trace_decode import Decoder, format_time
from gic.registers import GITS_BASER, GITS_BASER_PAGE_BYTES
from transport.trace import TraceReader, TraceRecord

AGENTS = ("hw", "xen", "guest")
#: The guest's event when ``kexec -l`` loaded the next kernel: later programming is that kernel's.
K_KEXEC_LOAD = "kexec-load"
#: GICR_CTLR.EnableLPIs, GITS_CTLR.Enabled.
GICR_CTLR_ENABLE_LPIS = 1 << 0
GITS_CTLR_ENABLED = 1 << 0
#: GITS_BASER<n>.Indirect and Page_Size; the level-1 entry's Valid bit and address (QEMU).
GITS_BASER_INDIRECT = 1 << 62
L1_ENTRY_SIZE = 8
L1_VALID = 1 << 63
L1_ADDR_MASK = (1 << 51) - 1
#: Outstanding level-1 reads remembered until their replies.
MAX_PENDING_READS = 4096
#: Guest stores held for a table not programmed yet (the oldest is dropped past this).
MAX_HELD = 65536
#: GITS_TYPER.ITT_entry_size, bits [7:4]: bytes per ITT entry minus one.
GITS_TYPER_ITT_ENTRY_SIZE_SHIFT = 4


@dataclass
class AgentUse:
    """One agent's accesses to one table."""

    reads: int = 0
    writes: int = 0
    bytes: int = 0
    first: int | None = None
    last: int | None = None
    functions: Counter[str] = field(default_factory=Counter)

    def add(self, t: int, write: bool, nbytes: int, why: str) -> None:
        if write:
            self.writes += 1
        else:
            self.reads += 1
        self.bytes += nbytes
        self.first = t if self.first is None else min(self.first, t)
        self.last = t if self.last is None else max(self.last, t)
        self.functions[why or "?"] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "reads": self.reads,
            "writes": self.writes,
            "bytes": self.bytes,
            "first": self.first,
            "last": self.last,
            "functions": dict(sorted(self.functions.items())),
        }


@dataclass
class TableEntry:
    """One table as programmed (see the module docstring)."""

    index: int
    table: str
    cpu: int | None
    devid: int | None
    base: int
    size: int
    programmed_at: int
    programmed_by: str
    frozen: bool
    generation: int
    cpus: list[int] = field(default_factory=list)
    indirect_page: int = 0  # page size of an indirect device table, else 0
    level2: list[tuple[int, int]] = field(default_factory=list)
    live: int = 0  # how many programming keys currently point here
    agents: dict[str, AgentUse] = field(default_factory=lambda: {a: AgentUse() for a in AGENTS})

    def overlap(self, addr: int, size: int) -> int:
        """Bytes of [addr, addr+size) inside the table (its level-2 pages included)."""
        end = addr + max(size, 1)
        n = 0
        for lo, hi in [(self.base, self.base + self.size), *self.level2]:
            a, b = max(addr, lo), min(end, hi)
            if a < b:
                n += b - a
        return n

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "cpu": self.cpu,
            "cpus": list(self.cpus),
            "devid": self.devid,
            "base": self.base,
            "size": self.size,
            "level2": [[lo, hi - lo] for lo, hi in self.level2],
            "programmed_at": self.programmed_at,
            "programmed_by": self.programmed_by,
            "frozen": self.frozen,
            "agents": {a: self.agents[a].as_dict() for a in AGENTS},
        }


class TableLedger(TableMap):
    """TableMap that keeps every programming as an entry and attributes ``mem`` accesses."""

    def __init__(self, header: dict[str, Any]) -> None:
        super().__init__(header)
        self.entries: list[TableEntry] = []
        self.generation = 0
        self.virtualised = False  # a data-abort exit was seen: the guest runs under Xen
        self.lpis_on: dict[Any, bool] = {}  # rdist -> GICR_CTLR.EnableLPIs as the host keeps it
        self.its_on = False  # GITS_CTLR.Enabled
        self.mapped: set[Any] = set()  # DeviceIDs with a MAPD V=1 (and no V=0 since)
        self._live: dict[tuple[str, Any], TableEntry] = {}
        self._by_ident: dict[tuple[Any, ...], TableEntry] = {}
        self._l1_reads: OrderedDict[int, TableEntry] = OrderedDict()
        self._rec: TraceRecord | None = None
        self._frozen_now = False
        self._reg_value: int | None = None
        self._lo = 1 << 64  # bounds of every range, to skip most accesses at once
        self._hi = 0
        #: the ITT entry size comes from the header, else from a GITS_TYPER read back
        self._ite_from_header = isinstance(header, dict) and isinstance(
            header.get(CONV.h_itt_entry_size), int
        )
        self._typer_reads: set[int] = set()
        #: guest stores that no table of the current generation holds yet (module docstring)
        self._held: list[_Held] = []

    # -- programming ---------------------------------------------------------------------

    def feed(self, rec: TraceRecord, fields: dict[str, Any]) -> None:
        """One record, in trace order: an access is judged by the programming before it."""
        kind = rec.kind
        body = rec.body if isinstance(rec.body, dict) else {}
        if kind == K_KEXEC_LOAD:
            self.flush()
            self.generation += 1
        elif kind == CONV.k_exit:
            self.virtualised = True
        elif kind == CONV.k_mem:
            self._access(rec, body)
            return
        elif kind in (CONV.k_reply, CONV.k_entry) and rec.reply_to:
            if rec.reply_to in self._l1_reads:
                self._level2(self._l1_reads.pop(rec.reply_to), body.get(CONV.data))
                return
            if rec.reply_to in self._typer_reads:
                self._typer_reads.discard(rec.reply_to)
                self._gits_typer(body)
                return
        if fields.get("reg") == "GITS_TYPER" and not body.get(CONV.write) and rec.id:
            self._typer_reads.add(rec.id)
        self._rec = rec
        w = register_write(rec, fields)
        self._frozen_now = False
        saved: int | None = None
        if w is not None:
            self._frozen_now = self._write_frozen(w.name, w.rdist, rec)
            saved = self.regs.get((w.rdist, w.name))
        mapd = fields.get("its_cmd") == "MAPD"
        if mapd and fields.get("V") and self.virtualised and fields.get("DeviceID") in self.mapped:
            self._frozen_now = True  # Xen: "tried to remap guest ITS device"
        super().feed(rec, fields)
        if w is not None:
            key = (w.rdist, w.name)
            if self._frozen_now:
                if saved is None:
                    self.regs.pop(key, None)
                else:
                    self.regs[key] = saved
            self._control(w.name, w.rdist, self.regs.get(key, 0), rec)
        if mapd and not self._frozen_now:
            if fields.get("V"):
                self.mapped.add(fields.get("DeviceID"))
            else:
                self.mapped.discard(fields.get("DeviceID"))
        self._frozen_now = False

    def _gits_typer(self, body: dict[str, Any]) -> None:
        """GITS_TYPER read back (``reply.value``, or ``entry.regs[0]`` under Xen): the
        ITT_entry_size the MAPD ranges use, unless the trace header names it."""
        regs = body.get("regs")
        value = regs[0] if isinstance(regs, (list, tuple)) and regs else body.get(CONV.value)
        if isinstance(value, int) and not self._ite_from_header:
            self.ite_size = ((value >> GITS_TYPER_ITT_ENTRY_SIZE_SHIFT) & 0xF) + 1

    def _write_frozen(self, name: str, rdist: Any, rec: TraceRecord) -> bool:
        """Whether the host ignores this write (module docstring)."""
        under_xen = rec.kind == CONV.k_exit
        if name == "GICR_PROPBASER":
            return under_xen and any(self.lpis_on.values())
        if name == "GICR_PENDBASER":
            return under_xen and self.lpis_on.get(rdist, False)
        if name == "GITS_CBASER" or (name.startswith("GITS_BASER") and name[10:].isdigit()):
            return self.its_on
        return False

    def _control(self, name: str, rdist: Any, value: int, rec: TraceRecord) -> None:
        """GICR_CTLR.EnableLPIs (write-once under Xen) and GITS_CTLR.Enabled."""
        if name == "GICR_CTLR":
            on = bool(value & GICR_CTLR_ENABLE_LPIS)
            if rec.kind == CONV.k_exit:
                on = on or self.lpis_on.get(rdist, False)
            self.lpis_on[rdist] = on
        elif name == "GITS_CTLR":
            self.its_on = bool(value & GITS_CTLR_ENABLED)

    def _register(self, name: str, rdist: Any, value: int) -> None:
        self._reg_value = value
        try:
            super()._register(name, rdist, value)
        finally:
            self._reg_value = None

    def _range(self, table: str, key: Any, base: int, size: int, on: bool = True) -> None:
        programs = on and size > 0
        if self._frozen_now:
            if programs:
                self._program(table, key, base, size, frozen=True)
            return
        super()._range(table, key, base, size, on)
        old = self._live.pop((table, key), None)
        if old is not None:
            old.live -= 1
        if programs:
            entry = self._program(table, key, base, size, frozen=False)
            self._live[(table, key)] = entry
            entry.live += 1

    def _program(self, table: str, key: Any, base: int, size: int, frozen: bool) -> TableEntry:
        rec = self._rec
        assert rec is not None
        ident = None if table in ("property", "cmdq") else key
        k = (self.generation, table, ident, base, size)
        entry = self._by_ident.get(k)
        if entry is None:
            entry = TableEntry(
                index=len(self.entries),
                table=table,
                cpu=key if table == "pending" and isinstance(key, int) else None,
                devid=key if table == "itt" and isinstance(key, int) else None,
                base=base,
                size=size,
                programmed_at=rec.t,
                programmed_by=rec.src,
                frozen=frozen,
                generation=self.generation,
            )
            value = self._reg_value
            if table == "device" and value is not None and value & GITS_BASER_INDIRECT:
                psz = GITS_BASER.get(value, "Page_Size")
                entry.indirect_page = GITS_BASER_PAGE_BYTES.get(psz, 0x10000)
            self.entries.append(entry)
            self._by_ident[k] = entry
            self._widen(base, base + size)
        elif not frozen:
            entry.frozen = False
        if table in ("property", "pending") and isinstance(key, int) and key not in entry.cpus:
            entry.cpus.append(key)
        self._claim(entry)
        return entry

    def _claim(self, entry: TableEntry) -> None:
        """Give ``entry`` the held guest stores of its generation that it covers."""
        if entry.generation != self.generation:
            return
        for h in self._held:
            if entry.table in h.claimed:
                continue
            n = entry.overlap(h.addr, h.size)
            if n:
                h.claimed.add(entry.table)
                h.fallback.pop(entry.table, None)
                entry.agents["guest"].add(h.t, True, n, h.why)

    def flush(self) -> None:
        """End of a generation (or of the trace): held guest stores that no table of their
        generation covered go to the table they overlapped when they were made."""
        for h in self._held:
            for e, n in h.fallback.values():
                e.agents["guest"].add(h.t, True, n, h.why)
        self._held.clear()

    def _widen(self, lo: int, hi: int) -> None:
        self._lo = min(self._lo, lo)
        self._hi = max(self._hi, hi)

    def _level2(self, entry: TableEntry, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray)) or len(data) != L1_ENTRY_SIZE:
            return
        l1 = int.from_bytes(data, "little")
        if not l1 & L1_VALID:
            return
        lo = l1 & L1_ADDR_MASK
        page = (lo, lo + entry.indirect_page)
        if page not in entry.level2:
            entry.level2.append(page)
            self._widen(*page)
            self._claim(entry)  # its_alloc_table_entry zeroed the page before it linked it

    # -- accesses ------------------------------------------------------------------------

    def _access(self, rec: TraceRecord, body: dict[str, Any]) -> None:
        agent = body.get(CONV.agent)
        addr, size = body.get(CONV.addr), body.get(CONV.size)
        if agent not in AGENTS or not isinstance(addr, int) or isinstance(addr, bool):
            return
        size = size if isinstance(size, int) and size > 0 else 1
        write = bool(body.get(CONV.write))
        if agent == "guest" and write:
            self._guest_store(rec, addr, size)
            return
        if addr >= self._hi or addr + size <= self._lo:
            return
        for e, n in self._best(addr, size).values():
            e.agents[agent].add(rec.t, write, n, rec.why)
            if (
                e.indirect_page
                and not write
                and size == L1_ENTRY_SIZE
                and e.base <= addr < e.base + e.size
                and rec.id
            ):
                self._l1_reads[rec.id] = e
                while len(self._l1_reads) > MAX_PENDING_READS:
                    self._l1_reads.popitem(last=False)

    def _best(
        self, addr: int, size: int, generation: int | None = None
    ) -> dict[str, tuple[TableEntry, int]]:
        """Per table kind, the entry an access is attributed to, and the bytes inside it:
        a live entry before a retired one, the most recent first."""
        best: dict[str, tuple[tuple[bool, int], TableEntry, int]] = {}
        if addr >= self._hi or addr + size <= self._lo:
            return {}
        for e in self.entries:
            if generation is not None and e.generation != generation:
                continue
            n = e.overlap(addr, size)
            if not n:
                continue
            rank = (e.live > 0, e.index)
            cur = best.get(e.table)
            if cur is None or rank > cur[0]:
                best[e.table] = (rank, e, n)
        return {t: (e, n) for t, (_, e, n) in best.items()}

    def _guest_store(self, rec: TraceRecord, addr: int, size: int) -> None:
        """The kernel prepares a table before it programs it (zeroing, the property
        defaults, commands before CWRITER): a store no table of the current generation
        holds yet is held until one is programmed over it or the generation ends."""
        mine = self._best(addr, size, self.generation)
        for e, n in mine.values():
            e.agents["guest"].add(rec.t, True, n, rec.why)
        if mine:
            return
        held = _Held(rec.t, addr, size, rec.why, self._best(addr, size))
        self._held.append(held)
        if len(self._held) > MAX_HELD:
            old = self._held.pop(0)
            for e, n in old.fallback.values():
                e.agents["guest"].add(old.t, True, n, old.why)


@dataclass
class _Held:
    """A guest store waiting for the table it prepares."""

    t: int
    addr: int
    size: int
    why: str
    fallback: dict[str, tuple[TableEntry, int]]
    claimed: set[str] = field(default_factory=set)


@dataclass
class Verdict:
    """The result: every table entry, and whether the trace was read to its end."""

    entries: list[TableEntry]
    problem: str | None
    records: int

    @property
    def partial(self) -> bool:
        return self.problem is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "partial": self.partial,
            "problem": self.problem,
            "tables": [e.as_dict() for e in self.entries],
        }


def collect(reader: TraceReader, header: dict[str, Any]) -> Verdict:
    """One streaming pass over the readable records."""
    dec = Decoder(header)
    ledger = TableLedger(header)
    for rec in reader:
        ledger.feed(rec, dec.fields(rec))
    ledger.flush()
    problem = reader.problem.message if reader.problem is not None else None
    return Verdict(ledger.entries, problem, reader.records_read)


def lpi_tables(path: str) -> Verdict:
    """The verdict for a trace file (raises TraceError if it is not a trace)."""
    reader = TraceReader(path)
    header = reader.header
    return collect(reader, header)


# -- output ---------------------------------------------------------------------------------


def _rw(u: AgentUse) -> str:
    return "-" if not (u.reads or u.writes) else f"{u.reads}/{u.writes}"


def _which(e: TableEntry) -> str:
    if e.table == "pending" and e.cpu is not None:
        return f"CPU{e.cpu}"
    if e.table == "property":
        return _cpu_list(e.cpus)
    if e.table == "itt" and e.devid is not None:
        return f"dev {e.devid:#x}"
    return ""


def _cpu_list(cpus: list[int]) -> str:
    """CPUs as ranges: CPU0-3,5."""
    if not cpus:
        return ""
    out: list[str] = []
    s = sorted(cpus)
    start = prev = s[0]
    for c in [*s[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return "CPU" + ",".join(out)


def _functions(e: TableEntry) -> str:
    parts = []
    for a in AGENTS:
        fn = e.agents[a].functions
        if fn:
            parts.append(f"{a}: " + ", ".join(f"{w}×{n}" for w, n in sorted(fn.items())))
    return "; ".join(parts)


def render(v: Verdict, out: TextIO) -> None:
    """A rich table for people: one row per table."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=160, highlight=False, color_system=None)
    if not v.entries:
        console.print(f"no LPI or ITS table was programmed ({v.records} records read)")
        return
    table = Table(
        title=f"Guest LPI/ITS tables and who touched them ({v.records} records"
        f"{', partial' if v.partial else ''})",
        title_justify="left",
    )
    for col, just in (
        ("table", "left"),
        ("which", "left"),
        ("base", "right"),
        ("size", "right"),
        ("programmed", "left"),
        ("hw R/W", "right"),
        ("xen R/W", "right"),
        ("guest W", "right"),
        ("functions", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for e in v.entries:
        note = " (frozen)" if e.frozen else ""
        if e.level2:
            note += f" +{len(e.level2)} L2"
        table.add_row(
            e.table + note,
            _which(e),
            f"{e.base:#x}",
            f"{e.size:#x}",
            f"{format_time(e.programmed_at).strip()} {e.programmed_by}",
            _rw(e.agents["hw"]),
            _rw(e.agents["xen"]),
            str(e.agents["guest"].writes) if e.agents["guest"].writes else "-",
            _functions(e),
        )
    console.print(table)


def main(
    path: str, *, as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Print the verdict; exit 0 (also for a trace cut short), 1 if the file is not a trace."""
    out = out or sys.stdout
    err = err or sys.stderr
    reader = open_trace("cosim trace lpi-tables", path, err)
    if reader is None:
        return 1
    v = collect(reader, reader.header)
    if as_json:
        out.write(json.dumps(v.as_dict(), separators=(",", ":")) + "\n")
    else:
        render(v, out)
    if v.problem is not None:
        print(f"cosim trace lpi-tables: {path}: partial: {v.problem}", file=err)
    return 0
