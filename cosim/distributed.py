"""Multi-process runs, the synchronous part: one component per process, one order of events.

Every process runs the same :class:`~cosim.scheduler.Scheduler` with every
component of the scenario registered in the same order (so ranks, and with them
event keys and request ids, agree), but only its own component local; the
others are remote and what is sent to them leaves through the scheduler's
outbox under the key its sender gave it.

Synchronisation is conservative with a lookahead (DESIGN.md, "Time and
determinism"): no message between components arrives sooner than
cosim.run.LOOKAHEAD_NS after it was sent (the fastest link of
cosim.run.LINK_LATENCY_NS), so once every delivery sent so far is queued where
it goes, the events below ``(T + lookahead,)``, T the earliest pending time
anywhere, cannot affect one another across processes. The coordinator hands
that window to every process with work in it at once; they run in parallel,
send back what they sent to others (due in a later window) and their trace
records, each tagged with the key of the event that made it. Keys are unique
and processing order is key order (cosim.scheduler), so merging the windows'
records by key gives the in-process trace, record for record.

A stop (a Xen crash, a PSCI SYSTEM_OFF) follows the scheduler's rule in both
modes: the component that stops runs nothing more, the others run on until the
lookahead after it.

The wire: every frame is a transport Envelope (transport.framing). A link opens
with ``hello`` (version, role, scenario hash, shared secret; refused with an
``error``); then control messages of this module travel msgpack-encoded in the
``data`` of a ``reply`` envelope whose ``why`` is ``@ctl``; the simulated
messages between components travel inside them (as :class:`Delivery`).

Where this differs from the in-process run:

* the links form a star through the parent (it routes every delivery between
  windows and collects the records), not a mesh between components;
* fault plans (link filters, component hooks) run in process only;
* the trace header gains ``mode`` and ``transport`` (ignored by
  ``cosim trace diff --canonical``); the records are identical, ids included.

This module is sans-I/O: :class:`Node` is one component's process,
:class:`Coordinator` the parent's bookkeeping; cosim.serve and
cosim.supervisor move the bytes.
"""

from __future__ import annotations

import heapq
import hmac
import os
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

import msgpack
import msgspec

from cosim.run import DRAIN_NS, Simulation, UnsupportedScenario, build
from cosim.scenario import Scenario
from cosim.scheduler import Key, Scheduler
from hypervisor.devices import MsiDevice
from transport.messages import PROTOCOL_VERSION, Envelope, Error, Hello, Mem, Message, Reply
from transport.trace import envelope_body

#: The coordinator's name on a link.
RUN = "run"
#: ``why`` of an envelope that carries a control message.
CTL = "@ctl"
#: Largest frame on an established run link (records of one step can be large).
LINK_MAX_FRAME = 64 << 20
#: Records are sent in chunks of about this many bytes.
RECORD_CHUNK = 1 << 20


class DistributedError(Exception):
    """A run across processes cannot go on; the message is one line."""


# --- control messages --------------------------------------------------------------------


class Delivery(msgspec.Struct, frozen=True, array_like=True):
    """A simulated message on its way to a component in another process: its event key and
    ``at``, the key of the event that sent it (``()`` outside any)."""

    key: tuple[int, ...]
    env: Envelope
    at: tuple[int, ...] = ()


class Rec(msgspec.Struct, frozen=True, array_like=True):
    """A trace record made by a Node (msgpack [t, src, dst, kind, body, why, id, reply_to]),
    tagged with the key of the event that made it."""

    key: tuple[int, ...]
    raw: bytes


class Ready(msgspec.Struct, frozen=True, tag="ready"):
    """Node -> run after ``start``: what start recorded and the first pending key."""

    records: list[Rec]
    outbox: list[Delivery]
    next: tuple[int, ...] | None
    pid: int = 0


class Go(msgspec.Struct, frozen=True, tag="go"):
    """Run -> node: take the deliveries and process every event below ``bound`` (a window)."""

    bound: tuple[int, ...]
    inbox: list[Delivery] = []


class Records(msgspec.Struct, frozen=True, tag="records"):
    """Node -> run: a chunk of a window's trace records."""

    records: list[Rec]


class Done(msgspec.Struct, frozen=True, tag="done"):
    """Node -> run: the window is over; what left for other processes, what is pending here,
    and the window's records (the last of them, if many; the others went ahead as Records)."""

    outbox: list[Delivery]
    next: tuple[int, ...] | None
    last_t: int
    stopped: str = ""
    stop_key: tuple[int, ...] | None = None
    records: list[Rec] = []


class Finish(msgspec.Struct, frozen=True, tag="finish"):
    """Run -> node: the run is over at simulated time ``now``; deliveries never processed."""

    now: int
    inbox: list[Delivery] = []


class Part(msgspec.Struct, frozen=True, tag="part"):
    """Node -> run: this component's part of the result object."""

    part: dict[str, Any]


class Failed(msgspec.Struct, frozen=True, tag="failed"):
    """Node -> run: the component crashed; one line."""

    text: str


Control = Ready | Go | Records | Done | Finish | Part | Failed
_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(Control)


def wrap(src: str, dst: str, ctl: Control) -> Envelope:
    """A control message as the envelope that carries it."""
    return Envelope(t=0, src=src, dst=dst, msg=Reply(data=_ENC.encode(ctl)), why=CTL)


def unwrap(env: Envelope) -> Control:
    """The control message in ``env``; DistributedError (one line) if it carries none."""
    if env.why != CTL or not isinstance(env.msg, Reply):
        if isinstance(env.msg, Error):
            raise DistributedError(f"{env.src}: {env.msg.code}: {env.msg.text}")
        raise DistributedError(f"{env.src} sent {env.kind} where a control message was due")
    try:
        return _DEC.decode(env.msg.data)
    except msgspec.DecodeError as exc:
        raise DistributedError(f"{env.src}: bad control message: {exc}") from None


# --- the handshake -----------------------------------------------------------------------


def hello(role: str, scenario_hash: str, secret: str) -> Envelope:
    return Envelope(
        t=0, src=role, dst=RUN, msg=Hello(role=role, scenario_hash=scenario_hash, secret=secret)
    )


def check_hello(
    env: Envelope, *, scenario_hash: str, secret: str, roles: Container[str]
) -> tuple[str, str] | None:
    """Why a peer's opening envelope is refused, as (error code, one line); None to accept.

    Checked in this order: it is a ``hello``, the protocol version, the shared secret
    (when this side has one), the scenario hash, the role.
    """
    msg = env.msg
    if not isinstance(msg, Hello):
        return "handshake", f"expected hello, got {env.kind}"
    if msg.version != PROTOCOL_VERSION:
        return (
            "version",
            f"{msg.role!r} speaks protocol version {msg.version}, expected {PROTOCOL_VERSION}",
        )
    if secret and not hmac.compare_digest(msg.secret.encode(), secret.encode()):
        what = "no shared secret" if not msg.secret else "a wrong shared secret"
        return "secret", f"{msg.role!r} presented {what}"
    if msg.scenario_hash != scenario_hash:
        return (
            "scenario",
            f"{msg.role!r} runs scenario {msg.scenario_hash[:12] or '<none>'}, "
            f"expected {scenario_hash[:12]}",
        )
    if msg.role not in roles:
        return "role", f"role {msg.role!r} is not expected here"
    return None


def refusal(code: str, text: str, dst: str) -> Envelope:
    return Envelope(t=0, src=RUN, dst=dst, msg=Error(code=code, text=text))


def blank_secret(msg: Message) -> Message:
    """A hello with its secret blanked (for logs; a secret is never recorded)."""
    if isinstance(msg, Hello) and msg.secret:
        return msgspec.structs.replace(msg, secret="*" * 8)
    return msg


# --- roles -------------------------------------------------------------------------------


def components(sim: Simulation) -> list[str]:
    """The component names of a built scenario, in rank (add) order."""
    return sim.scheduler.local


def resolve_role(role: str, sim: Simulation) -> str:
    """A role as given on the command line ("host", "guest" or a component name) -> the name."""
    names = components(sim)
    if role in names:
        return role
    alias = {"host": sim.host.name, "guest": sim.guest.name}.get(role)
    if alias is not None:
        return alias
    if f"dev.{role}" in names:
        return f"dev.{role}"
    raise UnsupportedScenario(
        f"role {role!r} is not a component of this scenario: {', '.join(names)}"
    )


def check_distributable(sim: Simulation) -> None:
    if sim.faults is not None or sim.scheduler.links is not None:
        raise UnsupportedScenario(
            f"{sim.scenario.path}: fault plans run in process only (not with --processes)"
        )


def end_keys(sc: Scenario) -> tuple[Key, Key]:
    """(below this key the duration runs, below this one the drain runs)."""
    end = sc.duration_ns
    return (end + 1,), (end + DRAIN_NS + 1,)


# --- one component's process ---------------------------------------------------------------


class _Recorder:
    """Stands in for the TraceWriter: keeps each record msgpack-encoded with its event's key."""

    def __init__(self) -> None:
        self.records: list[Rec] = []
        self.sched: Scheduler | None = None

    def record(
        self,
        *,
        t: int,
        src: str,
        dst: str,
        kind: str,
        body: dict[str, Any],
        why: str = "",
        id: int = 0,
        reply_to: int = 0,
    ) -> int:
        key = self.sched.current if self.sched is not None else None
        raw = msgpack.packb([t, src, dst, kind, body, why, id, reply_to], use_bin_type=True)
        self.records.append(Rec(key or (), raw))
        return 0

    def envelope(self, env: Envelope) -> int:
        return self.record(
            t=env.t,
            src=env.src,
            dst=env.dst,
            kind=env.kind,
            body=envelope_body(env),
            why=env.why,
            id=env.id,
            reply_to=env.reply_to,
        )

    def take(self) -> list[Rec]:
        out, self.records = self.records, []
        return out

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def chunks(records: list[Rec], size: int = RECORD_CHUNK) -> list[list[Rec]]:
    """Records split into lists of about ``size`` bytes each (at least one record each)."""
    out: list[list[Rec]] = []
    cur: list[Rec] = []
    n = 0
    for r in records:
        if cur and n + len(r.raw) > size:
            out.append(cur)
            cur, n = [], 0
        cur.append(r)
        n += len(r.raw)
    if cur:
        out.append(cur)
    return out


#: A hw/xen access to guest RAM: (t, agent, addr, size, write, why).
Foreign = tuple[int, str, int, int, bool, str]


class Node:
    """One component of a scenario on its own scheduler, driven by Go/Finish from the run.

    Mirrors cosim.run.Simulation for that component: the guest gets the scenario's
    actions after ``start`` and keeps the accesses to its RAM sent after a kexec
    began (``foreign``, judged by event keys: the sender's event against the
    guest's event that began the kexec); a device stops raising once the duration
    is over.
    """

    def __init__(self, sc: Scenario, role: str) -> None:
        self.sc = sc
        sim = build(sc, process_faults_allowed=True)
        check_distributable(sim)
        self.sim = sim
        self.name = resolve_role(role, sim)
        self.component = sim.scheduler.component(self.name)
        self.recorder = _Recorder()
        sched = Scheduler(
            seed=sc.run.seed,
            trace=self.recorder,  # type: ignore[arg-type]
            latency=sim.scheduler.latency,
            lookahead=sim.scheduler.lookahead,
        )
        self.recorder.sched = sched
        for n in components(sim):
            if n == self.name:
                sched.add(self.component)
            else:
                sched.add_remote(n)
        self._outbox: list[Delivery] = []
        sched.outbox = lambda key, env: self._outbox.append(Delivery(key, env, sched.current or ()))
        self.sched = sched
        self.is_guest = self.component is sim.guest
        self.is_device = isinstance(self.component, MsiDevice)
        self.end_key, self.drain_key = end_keys(sc)
        self.limited = False
        self.foreign: list[tuple[Key, Foreign]] = []
        #: Key of the guest's event that began a kexec (None before one).
        self.kexec_key: Key | None = None
        if self.is_guest:
            sched.observers.append(self._observe)

            def kexec_began() -> None:
                if self.kexec_key is None:
                    self.kexec_key = sched.current

            sim.guest.kexec_listeners.append(kexec_began)

    def _observe(self, env: Envelope, at: Key | None = None) -> None:
        """Simulation._observe: hw/xen accesses to guest RAM sent once a kexec began.

        ``at``: the key of the remote event that sent ``env``; None for one sent here, now.
        """
        msg = env.msg
        if not isinstance(msg, Mem):
            return
        if at is None:
            if self.sim.guest._kexec_log_start is None:
                return
            at = self.sched.current or ()
        elif self.kexec_key is None or not at > self.kexec_key:
            return
        self.foreign.append((at, (env.t, msg.agent, msg.addr, msg.size, msg.write, env.why)))

    def _take(self, inbox: list[Delivery]) -> None:
        for d in inbox:
            if self.is_guest:
                self._observe(d.env, tuple(d.at))
            self.sched.deliver(d.key, d.env)

    def start(self) -> Ready:
        self.sched.start()
        if self.is_guest:
            for t, token in self.sim.actions:
                self.sched.call_later(self.name, t, token)
        out, self._outbox = self._outbox, []
        return Ready(self.recorder.take(), out, self.sched.next_key(), os.getpid())

    def _limit(self) -> None:
        """Simulation.run: once the duration is over, devices raise no new MSIs."""
        if self.is_device and not self.limited:
            dev = self.component
            dev.limit = dev.arrivals  # type: ignore[attr-defined]
        self.limited = True

    def go(self, go: Go) -> tuple[list[Rec], Done]:
        """Run every event here below ``go.bound``, and below the earliest answer to what this
        round sends to other processes (the scheduler's horizon)."""
        self._take(go.inbox)
        bound = tuple(go.bound)
        sched = self.sched
        sched.horizon = None
        if not self.limited and bound > self.end_key:
            sched.run(below=self.end_key)
            if sched.horizon is None or not sched.horizon < self.end_key:
                self._limit()  # every event of the duration ran here
        sched.run(below=bound)
        out, self._outbox = self._outbox, []
        return self.recorder.take(), Done(
            out, sched.next_key(), sched.last_t, sched.stopped, sched.stop_key
        )

    def finish(self, fin: Finish) -> Part:
        if self.is_guest:
            for d in fin.inbox:
                self._observe(d.env, tuple(d.at))
        self._limit()
        self.sched.now = fin.now
        return Part(self.part())

    def part(self) -> dict[str, Any]:
        c: Any = self.component
        if self.is_guest:
            first = c.kernels[0] if c.kernels else None
            its = first.drivers.get("its") if first is not None else None
            tables = None
            if its is not None:
                tables = {
                    "prop_table_pa": getattr(its, "prop_table_pa", 0),
                    "pend_pa": {int(k): v for k, v in getattr(its, "pend_pa", {}).items()},
                    "LPI_PROPBASE_SZ": its.LPI_PROPBASE_SZ,
                    "LPI_PENDBASE_SZ": its.LPI_PENDBASE_SZ,
                }
            # In sending order, as the in-process observer sees them.
            foreign = [list(f) for _, f in sorted(self.foreign, key=lambda kf: kf[0])]
            return {
                "kind": "guest",
                "result": c.result(),
                "log": list(c.printk.text()),
                "its": tables,
                "foreign": foreign,
            }
        if self.is_device:
            return {"kind": "device", "name": c.name, "raised": c.raised}
        crash = getattr(c, "crash", None)
        return {
            "kind": "host",
            "counters": dict(c.counters),
            "crash": None if crash is None else str(crash),
        }


# --- the parent's bookkeeping ---------------------------------------------------------------


@dataclass
class Coordinator:
    """Which processes run the next window and how far; where deliveries wait; when the run
    is over."""

    roles: list[str]
    end_key: Key
    drain_key: Key
    lookahead: int
    next: dict[str, Key | None] = field(default_factory=dict)
    inbox: dict[str, list[Delivery]] = field(default_factory=dict)
    last_t: int = 0
    stopped: str = ""
    stop_key: Key | None = None
    stopped_by: str = ""
    #: Windows run so far.
    steps: int = 0

    def __post_init__(self) -> None:
        if self.lookahead <= 0:
            raise DistributedError(f"lookahead {self.lookahead} ns: conservative windows need > 0")
        for r in self.roles:
            self.next.setdefault(r, None)
            self.inbox.setdefault(r, [])

    def pending(self, role: str) -> Key | None:
        keys = [tuple(d.key) for d in self.inbox[role]]
        n = self.next[role]
        if n is not None:
            keys.append(tuple(n))
        return min(keys) if keys else None

    def limit(self) -> Key:
        """The end of the drain or, after a stop, the lookahead after it."""
        if self.stop_key is None:
            return self.drain_key
        return min(self.drain_key, (self.stop_key[0] + self.lookahead,))

    def window(self) -> dict[str, Go]:
        """The next round: a Go for every process that can safely run an event, with how far
        (no other process can reach it sooner than its earliest pending time plus the
        lookahead); empty when the run is over."""
        limit = self.limit()
        pend = self._running_pending()
        reach = sorted(((k[0] + self.lookahead,), r) for r, k in pend.items() if k is not None)
        gos: dict[str, Go] = {}
        for role, k in pend.items():
            if k is None:
                continue
            first = next((b for b, r in reach if r != role), None)
            bound = limit if first is None else min(limit, first)
            if k < bound:
                inbox, self.inbox[role] = self.inbox[role], []
                gos[role] = Go(bound, inbox)
        if gos:
            self.steps += 1
        return gos

    def horizon(self) -> Key | None:
        """Every record still to come has a key at least this (None: none is to come)."""
        limit = self.limit()
        live = [k for k in self._running_pending().values() if k is not None and k < limit]
        return min(live) if live else None

    def _running_pending(self) -> dict[str, Key | None]:
        """The earliest pending key of every process that may still run (not the stopper)."""
        return {r: self.pending(r) for r in self.roles if r != self.stopped_by}

    def ready(self, role: str, r: Ready) -> None:
        self.next[role] = r.next
        self._route(role, r.outbox)

    def done(self, role: str, d: Done) -> None:
        self.next[role] = d.next
        self.last_t = max(self.last_t, d.last_t)
        self._route(role, d.outbox)
        # One stop per run: the earliest (a later one would not have happened in process).
        if d.stop_key is not None and (self.stop_key is None or tuple(d.stop_key) < self.stop_key):
            self.stopped, self.stop_key, self.stopped_by = d.stopped, tuple(d.stop_key), role

    def _route(self, role: str, outbox: list[Delivery]) -> None:
        for dl in outbox:
            dst = dl.env.dst
            if dst not in self.inbox:
                raise DistributedError(f"{role} sent {dl.env.kind} to unknown component {dst!r}")
            self.inbox[dst].append(dl)

    def now(self) -> int:
        """The in-process scheduler's clock at the end (cosim.run.Simulation.t_end)."""
        if self.stop_key is not None:
            return self.stop_key[0]
        if any(self.pending(r) is not None for r in self.roles):
            return self.drain_key[0] - 1
        return self.last_t


class RecordMerge:
    """Records of every process, put back in the in-process order (by the key of the event
    that made each; records of one event keep their order)."""

    def __init__(self) -> None:
        self._heap: list[tuple[Key, int, str, bytes]] = []
        self._n = 0

    def add(self, role: str, records: list[Rec]) -> None:
        for r in records:
            heapq.heappush(self._heap, (tuple(r.key), self._n, role, r.raw))
            self._n += 1

    def take(self, below: Key | None) -> list[tuple[str, bytes]]:
        """(role, record) of every record whose key is below ``below`` (None: all), in order."""
        h = self._heap
        out: list[tuple[str, bytes]] = []
        while h and (below is None or h[0][0] < below):
            _, _, role, raw = heapq.heappop(h)
            out.append((role, raw))
        return out


# --- the result, from the parts ---------------------------------------------------------------


class _View:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def assemble(
    sc: Scenario, now: int, parts: dict[str, dict[str, Any]], roles: list[str]
) -> Simulation:
    """A Simulation whose components are views of the parts: result() and result_log() work on it."""
    guest = host = None
    devices = []
    for role in roles:
        p = parts[role]
        if p["kind"] == "guest":
            g = p["result"]
            kernels = []
            if p["its"] is not None:
                t = p["its"]
                its = _View(
                    prop_table_pa=t["prop_table_pa"],
                    pend_pa={int(k): v for k, v in t["pend_pa"].items()},
                    LPI_PROPBASE_SZ=t["LPI_PROPBASE_SZ"],
                    LPI_PENDBASE_SZ=t["LPI_PENDBASE_SZ"],
                )
                kernels = [_View(drivers={"its": its})]
            log = p["log"]
            guest = _View(
                name=role,
                result=lambda g=g: g,
                kernels=kernels,
                printk=_View(text=lambda log=log: log),
                foreign=p["foreign"],
            )
        elif p["kind"] == "device":
            devices.append(_View(name=p["name"], raised=p["raised"]))
        else:
            host = _View(name=role, counters=p["counters"], crash=p["crash"])
    if guest is None or host is None:
        raise DistributedError("the run's parts lack a guest or a host")
    sim = Simulation(
        sc,
        _View(now=now, stop_key=None),  # type: ignore[arg-type]
        guest,  # type: ignore[arg-type]
        host,
        devices,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
    )
    sim.foreign = [tuple(f) for f in guest.foreign]  # type: ignore[misc]
    return sim


def write_records(writer: Any, records: list[bytes]) -> None:
    """Append records made by a Node to the run's TraceWriter (it numbers them)."""
    for raw in records:
        writer.record_packed(raw)


def simulate(sc: Scenario, trace_path: str | None = None) -> tuple[Simulation, dict[str, Any]]:
    """Every component on its own Node in this process, driven window by window as the run
    drives processes: the synchronisation without the sockets (a check of the algorithm)."""
    from cosim.run import trace_header
    from hypervisor.machine import VirtMachine
    from transport.trace import TraceWriter

    probe = build(sc, process_faults_allowed=True)
    check_distributable(probe)
    roles = components(probe)
    nodes = {r: Node(sc, r) for r in roles}
    coord = Coordinator(roles, *end_keys(sc), probe.scheduler.lookahead)
    writer = (
        TraceWriter(trace_path, trace_header(sc, VirtMachine.from_config(sc.machine)))
        if trace_path
        else None
    )
    try:
        for r in roles:
            ready = nodes[r].start()
            coord.ready(r, ready)
            if writer is not None:
                write_records(writer, [rec.raw for rec in ready.records])
        merged = RecordMerge()
        while gos := coord.window():
            for role, go in gos.items():
                records, done = nodes[role].go(go)
                merged.add(role, records)
                coord.done(role, done)
            done_records = merged.take(coord.horizon())
            if writer is not None:
                write_records(writer, [raw for _, raw in done_records])
        now = coord.now()
        parts = {r: nodes[r].finish(Finish(now, coord.inbox[r])).part for r in roles}
    finally:
        if writer is not None:
            writer.close()
    sim = assemble(sc, now, parts, roles)
    return sim, sim.result()
