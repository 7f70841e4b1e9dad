"""Following interrupts through a trace: from a device's MSI to the guest's EOI.

A :class:`ChainTracker` is fed records in order and groups them into one
:class:`Chain` per interrupt (the stages and kinds are in cosim.trace_conventions):

* ``msi`` starts a chain, queued per (DeviceID, EventID);
* ``lpi`` (the physical ITS translation) takes the oldest queued MSI of its
  (DeviceID, EventID): ``set`` makes the LPI pending on ``processor``; ``coalesced``
  and ``dropped`` end the chain;
* bare metal: ``irq`` (level up) on that CPU, then ``ack``/``eoi`` of (cpu, intid);
* Xen: ``inject`` takes the chain of its ``host_lpi`` (else the oldest MSI of its
  DeviceID/EventID), then ``kick``/``exit`` of the vCPU, ``lr`` of (vcpu, virq),
  ``entry`` of the vCPU, and ``ack``/``eoi`` of (cpu = vcpu, intid = virq).

An ``ack`` takes the oldest chain waiting for that (cpu, intid); any other chain waiting
for the same interrupt was pending at the same time and is merged into it, as the
architecture merges them (outcome ``coalesced``). A ``fault`` record whose action drops
a message and that names a DeviceID/EventID ends the oldest queued MSI of that pair as
``dropped`` by its rule.

State is O(interrupts in flight): finished chains are handed back and forgotten, and at
most ``max_live`` chains are kept (the oldest is evicted, outcome None, ``evicted``).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from cosim.trace_conventions import CONV
from transport.trace import TraceRecord

#: Chains kept in flight at most; more means the trace lacks the records that end them.
MAX_LIVE = 65536

DELIVERED = "delivered"
COALESCED = "coalesced"
DROPPED = "dropped"


def _int(body: Any, key: str) -> int | None:
    v = body.get(key) if isinstance(body, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass(eq=False, slots=True)
class Chain:
    """One interrupt: its records by stage, where it went and how it ended."""

    n: int  # 1-based, in order of creation
    devid: int | None = None
    eventid: int | None = None
    intid: int | None = None  # the physical LPI
    cpu: int | None = None  # the CPU that acknowledges it (bare metal: processor; Xen: vCPU)
    vcpu: int | None = None
    virq: int | None = None
    outcome: str | None = None  # delivered | coalesced | dropped | None (in flight, evicted)
    reason: str = ""
    rule: str = ""  # the fault rule that dropped it
    evicted: bool = False
    lpi_set_at: int | None = None  # when the physical LPI became pending (action set)
    times: dict[str, int] = field(default_factory=dict)  # stage -> t of its first record
    seqs: dict[str, int] = field(default_factory=dict)  # stage -> seq of its first record
    records: list[tuple[str, TraceRecord]] = field(default_factory=list)
    _links: list[tuple[str, Hashable]] = field(default_factory=list)  # (index name, key)

    def has(self, stage: str) -> bool:
        return stage in self.times

    @property
    def first_seq(self) -> int:
        return min(self.seqs.values()) if self.seqs else -1

    @property
    def last_stage(self) -> str:
        return max(self.seqs, key=self.seqs.__getitem__) if self.seqs else ""

    @property
    def injected_at(self) -> int | None:
        """When the interrupt was made pending for its CPU: ``inject`` under Xen, else the
        physical ``lpi`` set (bare metal)."""
        t = self.times.get("inject")
        return self.lpi_set_at if t is None else t

    def describe(self) -> str:
        dev = (
            f"devid {self.devid:#x} eventid {self.eventid}"
            if self.devid is not None and self.eventid is not None
            else "no MSI"
        )
        lpi = f" LPI {self.intid}" if self.intid is not None else ""
        return f"interrupt #{self.n} ({dev}{lpi})"


class ChainTracker:
    """Groups records into interrupt chains, streaming; see the module docstring."""

    def __init__(self, *, keep_records: bool = False, max_live: int = MAX_LIVE) -> None:
        self.keep_records = keep_records
        self.max_live = max_live
        self.live: OrderedDict[int, Chain] = OrderedDict()
        self.touched: list[Chain] = []  # chains the last fed record joined
        self.rules_seen: set[str] = set()
        self._n = 0
        # index name -> key -> chains, oldest first:
        #   msi: (devid, eventid) -> waiting for lpi/inject;  lpi: intid -> set, waiting for
        #   inject (Xen);  ack / eoi: (cpu, intid) -> waiting for ack / eoi;
        #   cpu: ("cpu"|"vcpu", n) -> chains that may take irq/kick/exit/entry steps there
        self._idx: dict[str, dict[Any, deque[Chain]]] = {
            n: {} for n in ("msi", "lpi", "ack", "eoi", "cpu")
        }

    # -- bookkeeping ---------------------------------------------------------------------------

    def _new(self, finished: list[Chain]) -> Chain:
        self._n += 1
        chain = Chain(self._n)
        self.live[chain.n] = chain
        while len(self.live) > self.max_live:
            _, old = self.live.popitem(last=False)
            self._unlink_all(old)
            old.evicted = True
            old.reason = f"still in flight after {self.max_live} newer interrupts"
            finished.append(old)
        return chain

    def _waiting(self, name: str, key: Hashable) -> list[Chain]:
        return list(self._idx[name].get(key, ()))

    def _link(self, name: str, key: Hashable, chain: Chain) -> None:
        self._idx[name].setdefault(key, deque()).append(chain)
        chain._links.append((name, key))

    def _unlink(self, name: str, key: Hashable, chain: Chain) -> None:
        index = self._idx[name]
        q = index.get(key)
        if q is not None:
            with contextlib.suppress(ValueError):
                q.remove(chain)
            if not q:
                del index[key]
        with contextlib.suppress(ValueError):
            chain._links.remove((name, key))

    def _unlink_all(self, chain: Chain) -> None:
        for name, key in list(chain._links):
            self._unlink(name, key, chain)

    def _take(self, name: str, key: Hashable) -> Chain | None:
        q = self._idx[name].get(key)
        if not q:
            return None
        chain = q[0]
        self._unlink(name, key, chain)
        return chain

    def _step(self, chain: Chain, stage: str, rec: TraceRecord) -> None:
        if stage not in chain.times:
            chain.times[stage] = rec.t
            chain.seqs[stage] = rec.seq
        if self.keep_records:
            chain.records.append((stage, rec))
        self.touched.append(chain)

    def _end(self, chain: Chain, outcome: str, finished: list[Chain], reason: str = "") -> None:
        chain.outcome = outcome
        if reason:
            chain.reason = reason
        self._unlink_all(chain)
        self.live.pop(chain.n, None)
        finished.append(chain)

    # -- feeding -------------------------------------------------------------------------------

    def feed(self, rec: TraceRecord) -> list[Chain]:
        """Take one record; returns the chains it ended (or evicted)."""
        self.touched = []
        finished: list[Chain] = []
        kind = rec.kind
        body = rec.body
        c = CONV
        if kind == c.k_msi:
            devid, eventid = _int(body, c.devid), _int(body, c.eventid)
            chain = self._new(finished)
            chain.devid, chain.eventid = devid, eventid
            self._link("msi", (devid, eventid), chain)
            self._step(chain, "msi", rec)
        elif kind == c.k_lpi:
            self._on_lpi(rec, body, finished)
        elif kind == c.k_inject:
            self._on_inject(rec, body, finished)
        elif kind in (c.k_kick, c.k_exit, c.k_entry):
            vcpu = _int(body, c.vcpu)
            for chain in self._waiting("cpu", ("vcpu", vcpu)):
                if kind == c.k_entry:
                    if chain.has("lr") and not chain.has("entry"):
                        self._step(chain, "entry", rec)
                elif not chain.has("lr") and not chain.has(kind):
                    self._step(chain, kind, rec)
        elif kind == c.k_lr:
            key = (_int(body, c.vcpu), _int(body, c.virq))
            for chain in self._waiting("ack", key):
                if chain.has("inject") and not chain.has("lr"):
                    self._step(chain, "lr", rec)
                    break
        elif kind == c.k_irq:
            if isinstance(body, dict) and body.get(c.level):
                for chain in self._waiting("cpu", ("cpu", _int(body, c.cpu))):
                    if not chain.has("irq"):
                        self._step(chain, "irq", rec)
        elif kind == c.k_ack:
            key = (_int(body, c.cpu), _int(body, c.intid))
            chain = self._take("ack", key)
            if chain is not None:
                for other in self._waiting("ack", key):
                    self._end(other, COALESCED, finished, f"merged with interrupt #{chain.n}")
                self._unlink_all(chain)
                self._step(chain, "ack", rec)
                self._link("eoi", key, chain)
        elif kind == c.k_eoi:
            chain = self._take("eoi", (_int(body, c.cpu), _int(body, c.intid)))
            if chain is not None:
                self._step(chain, "eoi", rec)
                self._end(chain, DELIVERED, finished)
        elif kind == c.k_fault:
            self._on_fault(rec, body, finished)
        return finished

    def _on_lpi(self, rec: TraceRecord, body: Any, finished: list[Chain]) -> None:
        c = CONV
        devid, eventid = _int(body, c.devid), _int(body, c.eventid)
        chain = self._take("msi", (devid, eventid))
        if chain is None:
            chain = self._new(finished)
            chain.devid, chain.eventid = devid, eventid
        chain.intid = _int(body, c.intid)
        self._step(chain, "lpi", rec)
        action = body.get(c.action) if isinstance(body, dict) else None
        if action == c.action_set:
            chain.lpi_set_at = rec.t
            chain.cpu = _int(body, c.processor)
            self._link("lpi", chain.intid, chain)
            self._link("ack", (chain.cpu, chain.intid), chain)
            self._link("cpu", ("cpu", chain.cpu), chain)
        elif action == c.action_coalesced:
            self._end(chain, COALESCED, finished, str(body.get(c.reason) or ""))
        else:
            reason = str(body.get(c.reason) or action or "")
            rule = body.get(c.rule)
            if isinstance(rule, str) and rule:
                chain.rule = rule
            elif reason in self.rules_seen:
                chain.rule = reason
            self._end(chain, DROPPED, finished, reason)

    def _on_inject(self, rec: TraceRecord, body: Any, finished: list[Chain]) -> None:
        c = CONV
        host_lpi = _int(body, c.host_lpi)
        devid, eventid = _int(body, c.devid), _int(body, c.eventid)
        chain = self._take("lpi", host_lpi) if host_lpi is not None else None
        if chain is None:
            chain = self._take("msi", (devid, eventid))
        if chain is None:
            chain = self._new(finished)
            chain.devid, chain.eventid, chain.intid = devid, eventid, host_lpi
        self._unlink_all(chain)  # no longer waiting on the physical CPU
        chain.vcpu = _int(body, c.vcpu)
        chain.virq = _int(body, c.virq)
        chain.cpu = chain.vcpu
        self._link("ack", (chain.vcpu, chain.virq), chain)
        self._link("cpu", ("vcpu", chain.vcpu), chain)
        self._step(chain, "inject", rec)

    def _on_fault(self, rec: TraceRecord, body: Any, finished: list[Chain]) -> None:
        c = CONV
        if not isinstance(body, dict):
            return
        rule = body.get(c.rule)
        if isinstance(rule, str) and rule:
            self.rules_seen.add(rule)
        if body.get(c.action) not in c.fault_drop_actions:
            return
        devid, eventid = _int(body, c.devid), _int(body, c.eventid)
        if devid is None or eventid is None:
            return
        chain = self._take("msi", (devid, eventid))
        if chain is not None:
            chain.rule = rule if isinstance(rule, str) else ""
            self._step(chain, "fault", rec)
            self._end(chain, DROPPED, finished, f"fault rule {chain.rule or '?'}")

    def finish(self) -> list[Chain]:
        """The chains still in flight at the end of the trace, oldest first (then forgotten)."""
        rest = list(self.live.values())
        for chain in rest:
            self._unlink_all(chain)
        self.live.clear()
        return rest
