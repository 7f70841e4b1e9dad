"""``cosim trace check TRACE RULE...``: named invariants for CI; exit 0, or 1 with the first violation.

Rules (all checked in one streaming pass; the first violation found stops it):

* ``no-lost-lpi``: every MSI ends delivered (ack and EOI), coalesced, or dropped by a
  named fault rule (cosim.trace_chains). An interrupt still in flight when the trace ends
  is a violation, reported at the end with the seq of its first record.
* ``no-foreign-access=TABLE``: no ``mem`` record by an agent other than the guest (hw,
  xen) touches TABLE, one of property, pending, device, collection, itt, cmdq. The tables
  are where the guest put them as the trace recorded it: writes (``mmio``, or an ``exit``
  for a data abort) to GICR_PROPBASER (2**(IDbits+1) - 8192 bytes), GICR_PENDBASER
  (2**(IDbits+1) / 8 bytes, IDbits from that redistributor's PROPBASER, else 16 bits),
  GITS_BASER<n> with Valid (Type Devices or Collections, BASER0/1 if the Type reads 0;
  (Size+1) pages), GITS_CBASER with Valid ((Size+1) x 4 KiB) and MAPD commands with V = 1
  (2**(Size+1) entries of the header's ``itt_entry_size``, else 12 bytes, QEMU's; V = 0
  unmaps). 32-bit halves (``+4``) are merged into the 64-bit register. An access is
  checked against the tables as programmed at its time.
* ``warnings=N``: at most N ``warning`` records.
* ``max-lr-overflow=N``: at most N entries with ICH_HCR_EL2.UIE set (more pending
  interrupts than list registers).

A torn or corrupt trace is a violation too (after the rules have seen its readable
prefix). An unknown or malformed rule: one line, exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from cosim.trace_chains import COALESCED, DELIVERED, DROPPED, Chain, ChainTracker
from cosim.trace_conventions import CONV, open_trace
from cosim.trace_decode import Decoder, format_line
from cosim.trace_stats import ICH_HCR_UIE
from gic.its import ITS_ITT_ENTRY_SIZE
from gic.registers import (
    GICR_PENDBASER,
    GICR_PROPBASER,
    GITS_BASER,
    GITS_BASER_PAGE_BYTES,
    GITS_BASER_TYPE_COLLECTION,
    GITS_BASER_TYPE_DEVICE,
    GITS_CBASER,
    baser_base_addr,
)
from transport.trace import TraceReader, TraceRecord

TABLES = ("property", "pending", "device", "collection", "itt", "cmdq")
RULES = ("no-lost-lpi", "no-foreign-access=TABLE", "warnings=N", "max-lr-overflow=N")
LPI_INTID_BASE = 8192
CMDQ_PAGE = 0x1000
#: LPI ID bits assumed for a pending table whose redistributor's PROPBASER was not seen.
DEFAULT_ID_BITS = 16


class RuleError(ValueError):
    """A rule that does not parse; the message is one line."""


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    seq: int  # -1: not tied to a record
    message: str
    record: TraceRecord | None = None


class Rule:
    """One invariant: ``feed`` each record, then ``finish``; either returns a violation."""

    name = ""

    def feed(self, rec: TraceRecord, fields: dict[str, Any]) -> Violation | None:
        return None

    def finish(self) -> Violation | None:
        return None


class NoLostLpi(Rule):
    name = "no-lost-lpi"

    def __init__(self) -> None:
        self.tracker = ChainTracker(keep_records=True)  # to show the MSI of a lost interrupt

    def _judge(self, chain: Chain) -> Violation | None:
        if chain.outcome in (DELIVERED, COALESCED):
            return None
        if chain.outcome == DROPPED and chain.rule:
            return None
        if chain.outcome == DROPPED:
            why = f"dropped without a fault rule ({chain.reason or 'no reason recorded'})"
        elif chain.evicted:
            why = f"lost: {chain.reason}"
        else:
            why = f"not delivered: last seen at its {chain.last_stage or 'start'}"
        first = chain.records[0][1] if chain.records else None
        return Violation(self.name, chain.first_seq, f"{chain.describe()} {why}", first)

    def feed(self, rec: TraceRecord, fields: dict[str, Any]) -> Violation | None:
        for chain in self.tracker.feed(rec):
            v = self._judge(chain)
            if v is not None:
                return v
        return None

    def finish(self) -> Violation | None:
        for chain in self.tracker.finish():
            v = self._judge(chain)
            if v is not None:
                return v
        return None


class CountAtMost(Rule):
    """At most ``limit`` records for which ``hit`` is true."""

    def __init__(self, name: str, limit: int, hit: Callable[[TraceRecord], bool], what: str):
        self.name = name
        self.limit = limit
        self.hit = hit
        self.what = what
        self.count = 0

    def feed(self, rec: TraceRecord, fields: dict[str, Any]) -> Violation | None:
        if self.hit(rec):
            self.count += 1
            if self.count > self.limit:
                return Violation(
                    self.name, rec.seq, f"{self.what} number {self.count}, more than {self.limit}"
                )
        return None


def _is_warning(rec: TraceRecord) -> bool:
    return rec.kind == CONV.k_warning


def _is_overflow(rec: TraceRecord) -> bool:
    if rec.kind != CONV.k_entry or not isinstance(rec.body, dict):
        return False
    ctx = rec.body.get(CONV.ctx)
    hcr: Any = 0
    if isinstance(ctx, (list, tuple)) and len(ctx) > 1:
        hcr = ctx[1]
    elif isinstance(ctx, dict):
        hcr = ctx.get("hcr", 0)
    return isinstance(hcr, int) and bool(hcr & ICH_HCR_UIE)


def _merge_half(regs: dict[Any, int], key: Any, half: int, value: int, size: int) -> int:
    """The 64-bit register after a write of ``size`` bytes at byte ``half`` (0 or 4)."""
    old = regs.get(key, 0)
    if size >= 8:
        new = value & (2**64 - 1)
    elif half == 4:
        new = (old & 0xFFFF_FFFF) | ((value & 0xFFFF_FFFF) << 32)
    else:
        new = (old & ~0xFFFF_FFFF & (2**64 - 1)) | (value & 0xFFFF_FFFF)
    regs[key] = new
    return new


@dataclass(frozen=True, slots=True)
class RegisterWrite:
    """A write to a named GIC register (or to the high half, ``half`` = 4, of a 64-bit one)."""

    name: str
    rdist: Any  # the redistributor index for a GICR register, else None
    half: int
    value: int
    size: int


def register_write(rec: TraceRecord, fields: dict[str, Any]) -> RegisterWrite | None:
    """The register write ``rec`` makes: an ``mmio`` write, or an ``exit`` for a data-abort
    write; ``fields`` are its decoded fields (cosim.trace_decode.Decoder.fields)."""
    body = rec.body if isinstance(rec.body, dict) else {}
    reg = fields.get("reg")
    is_write = (rec.kind == CONV.k_mmio and body.get(CONV.write)) or (
        rec.kind == CONV.k_exit and body.get(CONV.reason_exit) == "dabt" and body.get(CONV.write)
    )
    if not (isinstance(reg, str) and is_write and isinstance(body.get(CONV.value), int)):
        return None
    name, plus, off = reg.partition("+")
    if plus and off != "4":  # only the register, or the high half of a 64-bit one
        return None
    size = body.get(CONV.size) if isinstance(body.get(CONV.size), int) else 8
    return RegisterWrite(name, fields.get("rdist"), 4 if plus else 0, body[CONV.value], size)


class TableMap:
    """Where the guest put its GIC tables, as the trace recorded the programming."""

    def __init__(self, header: dict[str, Any]) -> None:
        ite = header.get(CONV.h_itt_entry_size) if isinstance(header, dict) else None
        self.ite_size = ite if isinstance(ite, int) and ite > 0 else ITS_ITT_ENTRY_SIZE
        self.regs: dict[Any, int] = {}  # (rdist or None, register name) -> 64-bit value
        self.ranges: dict[str, dict[Any, tuple[int, int]]] = {t: {} for t in TABLES}

    def _range(self, table: str, key: Any, base: int, size: int, on: bool = True) -> None:
        if on and size > 0:
            self.ranges[table][key] = (base, base + size)
        else:
            self.ranges[table].pop(key, None)

    def feed(self, rec: TraceRecord, fields: dict[str, Any]) -> None:
        w = register_write(rec, fields)
        if w is not None:
            value = _merge_half(self.regs, (w.rdist, w.name), w.half, w.value, w.size)
            self._register(w.name, w.rdist, value)
        if "its_cmd" in fields and fields["its_cmd"] == "MAPD":
            devid = fields.get("DeviceID")
            if fields.get("V"):
                entries = 1 << (int(fields.get("Size", 0)) + 1)
                self._range("itt", devid, int(fields.get("ITT_addr", 0)), entries * self.ite_size)
            else:
                self._range("itt", devid, 0, 0, on=False)

    def _register(self, name: str, rdist: Any, value: int) -> None:
        if name == "GICR_PROPBASER":
            bits = GICR_PROPBASER.get(value, "IDbits") + 1
            base = GICR_PROPBASER.get(value, "Physical_Address")
            self._range("property", rdist, base, (1 << bits) - LPI_INTID_BASE)
        elif name == "GICR_PENDBASER":
            prop = self.regs.get((rdist, "GICR_PROPBASER"))
            bits = GICR_PROPBASER.get(prop, "IDbits") + 1 if prop is not None else DEFAULT_ID_BITS
            base = GICR_PENDBASER.get(value, "Physical_Address")
            self._range("pending", rdist, base, (1 << bits) // 8)
        elif name == "GITS_CBASER":
            valid = GITS_CBASER.get(value, "Valid")
            size = (GITS_CBASER.get(value, "Size") + 1) * CMDQ_PAGE
            self._range("cmdq", None, GITS_CBASER.get(value, "Physical_Address"), size, bool(valid))
        elif name.startswith("GITS_BASER") and name[10:].isdigit():
            n = int(name[10:])
            typ = GITS_BASER.get(value, "Type") or {
                0: GITS_BASER_TYPE_DEVICE,
                1: GITS_BASER_TYPE_COLLECTION,
            }.get(n, 0)
            table = {GITS_BASER_TYPE_DEVICE: "device", GITS_BASER_TYPE_COLLECTION: "collection"}
            if typ not in table:
                return
            page = GITS_BASER_PAGE_BYTES.get(GITS_BASER.get(value, "Page_Size"), 0x10000)
            size = (GITS_BASER.get(value, "Size") + 1) * page
            valid = bool(GITS_BASER.get(value, "Valid"))
            self._range(table[typ], n, baser_base_addr(value), size, valid)

    def hit(self, table: str, addr: int, size: int) -> tuple[int, int] | None:
        """The programmed range of ``table`` that [addr, addr+size) overlaps, if any."""
        for lo, hi in self.ranges[table].values():
            if addr < hi and lo < addr + max(size, 1):
                return lo, hi
        return None


class NoForeignAccess(Rule):
    def __init__(self, table: str, tables: TableMap) -> None:
        self.name = f"no-foreign-access={table}"
        self.table = table
        self.tables = tables

    def feed(self, rec: TraceRecord, fields: dict[str, Any]) -> Violation | None:
        if rec.kind != CONV.k_mem or not isinstance(rec.body, dict):
            return None
        agent = rec.body.get(CONV.agent)
        addr, size = rec.body.get(CONV.addr), rec.body.get(CONV.size)
        if agent not in CONV.foreign_agents or not isinstance(addr, int):
            return None
        size = size if isinstance(size, int) else 1
        r = self.tables.hit(self.table, addr, size)
        if r is None:
            return None
        rw = "writes" if rec.body.get(CONV.write) else "reads"
        who = f" in {rec.why}" if rec.why else ""
        return Violation(
            self.name,
            rec.seq,
            f"{agent}{who} {rw} [{addr:#x}, {addr + size:#x}) inside the {self.table} table "
            f"[{r[0]:#x}, {r[1]:#x})",
        )


def parse_rules(texts: list[str], tables: TableMap) -> list[Rule]:
    """Rules from their names; raises RuleError (one line) for a bad one."""
    rules: list[Rule] = []
    for text in texts:
        name, eq, arg = text.partition("=")
        if name == "no-lost-lpi" and not eq:
            rules.append(NoLostLpi())
        elif name == "no-foreign-access" and eq:
            if arg not in TABLES:
                raise RuleError(f"rule {text!r}: TABLE must be one of {', '.join(TABLES)}")
            rules.append(NoForeignAccess(arg, tables))
        elif name in ("warnings", "max-lr-overflow") and eq:
            try:
                limit = int(arg, 0)
            except ValueError:
                limit = -1
            if limit < 0:
                raise RuleError(f"rule {text!r}: N must be a non-negative integer")
            if name == "warnings":
                rules.append(CountAtMost(text, limit, _is_warning, "warning"))
            else:
                rules.append(CountAtMost(text, limit, _is_overflow, "list-register overflow"))
        else:
            raise RuleError(f"unknown rule {text!r}: rules are {', '.join(RULES)}")
    return rules


def run(reader: TraceReader, header: dict[str, Any], rule_texts: list[str]) -> Violation | None:
    """The first violation of the rules over the readable records (raises RuleError)."""
    tables = TableMap(header)
    rules = parse_rules(rule_texts, tables)
    need_tables = any(isinstance(r, NoForeignAccess) for r in rules)
    dec = Decoder(header)
    for rec in reader:
        fields = dec.fields(rec)
        for rule in rules:
            v = rule.feed(rec, fields)
            if v is not None:
                return v if v.record is not None else Violation(v.rule, v.seq, v.message, rec)
        if need_tables:
            tables.feed(rec, fields)  # after the rules: an access is judged by the earlier state
    for rule in rules:
        v = rule.finish()
        if v is not None:
            return v
    if reader.problem is not None:
        return Violation("readable", reader.problem.record, reader.problem.message)
    return None


def main(
    path: str, rules: list[str], *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Exit 0 if every rule holds, 1 with the first violation, 2 for a bad rule or file."""
    out = out or sys.stdout
    err = err or sys.stderr
    prog = "cosim trace check"
    if not rules:
        print(f"{prog}: give at least one rule: {', '.join(RULES)}", file=err)
        return 2
    try:
        parse_rules(rules, TableMap({}))
    except RuleError as exc:
        print(f"{prog}: {exc}", file=err)
        return 2
    reader = open_trace(prog, path, err)
    if reader is None:
        return 2
    v = run(reader, reader.header, rules)
    if v is None:
        out.write(f"ok: {reader.records_read} records, {len(rules)} rules hold\n")
        return 0
    where = f"record #{v.seq}" if v.seq >= 0 else "trace"
    out.write(f"FAIL {v.rule}: {where}: {v.message}\n")
    if v.record is not None:
        out.write(f"  {format_line(v.record, Decoder(reader.header).fields(v.record))}\n")
    return 1
