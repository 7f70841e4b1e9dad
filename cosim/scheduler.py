"""The scheduler: one queue of events ordered by a key every process can compute.

Components are synchronous state machines. The scheduler hands them one event
at a time (a delivered :class:`~transport.messages.Envelope` or a timer) through
a :class:`Port`, which is all they see of the world: the simulated clock, their
own seeded random stream, and ``send``. Nothing depends on trio's task order,
the wall clock or hash order, so the same scenario and seed give the same
trace byte for byte.

Event keys (no global sequence number, so that a scheduler holding only some
of the components orders their events exactly as one holding all of them):

* an item the component ranked ``r`` (its place in add order) creates for a
  later time ``t`` (or outside any event, e.g. in ``start``) is keyed
  ``(t, 0, r, n)``, ``n`` counting the items ``r`` has created (a delivery
  belongs to its sender, a timer to its owner, a delayed send's emission to its
  sender);
* an item created for the *current* time (a zero-latency reply, a zero delay
  timer) by the event keyed ``(t, d, *rest)`` is keyed ``(t, d + 1, *rest, r, n)``.
  Within one instant the order is breadth first, as a FIFO queue would have it:
  what was queued before the instant began, then what those events caused, and
  so on; every key taken from the queue is larger than the one before, so
  processing order is key order.

Request ids are per component too: ``(k << 8) | (r + 1)`` for its k-th request.
The trace is written in processing order, i.e. by (cause key, index within the
event); cosim.distributed runs components in separate processes on these keys
and reproduces that order.

Lookahead: no message between components arrives sooner than ``lookahead`` ns
after it was sent (the fastest link), so the events of different components
below ``(t + lookahead,)`` cannot affect each other once everything sent
before ``t`` is queued, and a component that sends to another at ``t`` hears
back at ``t + latency + lookahead`` at the earliest (:attr:`Scheduler.horizon`):
cosim.distributed runs processes in parallel on these bounds. A stop
obeys the same rule: the component that calls it runs nothing more, the others
run on until ``lookahead`` after it (the stop reaches them over a link), in one
process as across processes.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from transport.messages import Envelope, Message
from transport.trace import TraceWriter

NS = 1
US = 1_000
MS = 1_000_000
S = 1_000_000_000


class Component(Protocol):
    """A synchronous model: it reacts to one event at a time and sends through its port."""

    name: str

    def start(self, port: Port) -> None: ...

    def receive(self, env: Envelope, port: Port) -> None: ...

    def timer(self, token: Any, port: Port) -> None: ...


def component_rng(seed: int, name: str) -> random.Random:
    """A component's own random stream, derived from the scenario seed and its name only.

    ``random.Random`` seeded with a str hashes it with SHA-512, so the stream does
    not depend on PYTHONHASHSEED.
    """
    return random.Random(f"xen-gic-cosim:{seed}:{name}")


@dataclass(slots=True)
class Port:
    """A component's view of the scheduler while it handles one event."""

    scheduler: Scheduler
    name: str
    rng: random.Random

    @property
    def now(self) -> int:
        return self.scheduler.now

    def send(
        self,
        dst: str,
        msg: Message,
        *,
        delay: int = 0,
        why: str = "",
        reply_to: int = 0,
        request: bool = False,
    ) -> int:
        """Send ``msg`` to ``dst``; it arrives after ``delay`` plus the link latency.

        Returns the envelope id when ``request`` is true (the reply carries it in
        ``reply_to``), else 0.
        """
        return self.scheduler.send(
            self.name, dst, msg, delay=delay, why=why, reply_to=reply_to, request=request
        )

    def reply(self, to: Envelope, msg: Message, *, delay: int = 0, why: str = "") -> None:
        self.scheduler.send(self.name, to.src, msg, delay=delay, why=why, reply_to=to.id)

    def call_later(self, delay: int, token: Any) -> None:
        """Deliver ``token`` to this component's ``timer`` after ``delay`` ns."""
        self.scheduler.call_later(self.name, delay, token)

    def record(self, kind: str, body: dict[str, Any], *, why: str = "", dst: str = "") -> None:
        """Put a non-message event (printk, a warning, a fault injection) in the trace."""
        self.scheduler.record_event(self.name, kind, body, why=why, dst=dst)

    def stop(self, reason: str) -> None:
        self.scheduler.stop(reason, by=self.name)


Latency = Callable[[Envelope], int]
#: A link filter: (envelope, scheduler) -> the deliveries to make, each (envelope, extra delay).
LinkFilter = Callable[[Envelope, "Scheduler"], list[tuple[Envelope, int]]]


def no_latency(env: Envelope) -> int:
    return 0


@dataclass(slots=True)
class RunResult:
    now: int
    events: int
    stopped: str = ""
    pending: int = 0


#: An event key: (time, depth, rank, count, ...): see the module doc.
Key = tuple[int, ...]
#: Largest number of components one scheduler orders (ranks are packed in request ids).
MAX_COMPONENTS = 255


#: A queued item: (key, dst, envelope or None, timer token or None). Keys are unique, so heapq
#: orders items by key alone (in C) and never compares the other fields.
_Item = tuple[Key, str, "Envelope | None", Any]

_EMIT = object()


class UnknownComponent(KeyError):
    pass


#: Where deliveries to components held elsewhere go: (delivery key, envelope).
Outbox = Callable[[Key, Envelope], None]


class Scheduler:
    """Runs components on simulated time; records every message in the trace."""

    def __init__(
        self,
        *,
        seed: int,
        trace: TraceWriter | None = None,
        latency: Latency = no_latency,
        links: LinkFilter | None = None,
        lookahead: int = 0,
    ) -> None:
        self.seed = seed
        self.trace = trace
        self.latency = latency
        #: No delivery to another component arrives sooner than this after its sending (ns).
        self.lookahead = lookahead
        #: Sees every envelope as it leaves and says how it travels (fault injection's hook).
        self.links = links
        self.now = 0
        self._queue: list[_Item] = []
        self._components: dict[str, Component] = {}
        self._ports: dict[str, Port] = {}
        self._ranks: dict[str, int] = {}
        self._made: list[int] = []  # per rank: items created so far
        self._requests: list[int] = []  # per rank: request ids handed out so far
        self._cur: Key | None = None  # key of the event being handled
        self._stopped = ""
        #: Key of the event that called stop (None while running).
        self.stop_key: Key | None = None
        #: The component that called stop, and the time below which the others still run.
        self.stopped_by = ""
        self._stop_limit = 0
        #: No event at or past this key may run (None: no such limit): the earliest an answer
        #: to a delivery sent to a remote component could come back. Lowered by those sends.
        self.horizon: Key | None = None
        self.events = 0
        #: Time of the last item taken from the queue (events and delayed emissions).
        self.last_t = 0
        self.observers: list[Callable[[Envelope], None]] = []
        #: Components held by another scheduler (another process): name -> rank.
        self._remote: set[str] = set()
        #: Takes the deliveries to remote components (cosim.distributed sets it).
        self.outbox: Outbox | None = None

    def _rank(self, name: str) -> int:
        r = self._ranks.get(name)
        if r is None:  # an origin that is no component (a test driving the scheduler)
            if len(self._ranks) >= MAX_COMPONENTS:
                raise ValueError(f"more than {MAX_COMPONENTS} components")
            r = self._ranks[name] = len(self._ranks)
            self._made.append(0)
            self._requests.append(0)
        return r

    def add(self, component: Component) -> Port:
        if component.name in self._components or component.name in self._remote:
            raise ValueError(f"component {component.name!r} added twice")
        self._rank(component.name)
        self._components[component.name] = component
        port = Port(self, component.name, component_rng(self.seed, component.name))
        self._ports[component.name] = port
        return port

    def add_remote(self, name: str) -> None:
        """Name a component that another scheduler holds (it takes its rank here, in add order)."""
        if name in self._components or name in self._remote:
            raise ValueError(f"component {name!r} added twice")
        self._rank(name)
        self._remote.add(name)

    def component(self, name: str) -> Component:
        return self._components[name]

    @property
    def local(self) -> list[str]:
        """Names of the components this scheduler runs, in add order."""
        return list(self._components)

    def rank(self, name: str) -> int:
        return self._ranks[name]

    def key(self, origin: str, t: int) -> Key:
        """A fresh key for an item ``origin`` creates for time ``t`` (see the module doc)."""
        r = self._rank(origin)
        n = self._made[r]
        self._made[r] = n + 1
        cur = self._cur
        if cur is not None and t == cur[0]:
            return (t, cur[1] + 1, *cur[2:], r, n)
        return (t, 0, r, n)

    # -- used through Port ----------------------------------------------------

    def send(
        self,
        src: str,
        dst: str,
        msg: Message,
        *,
        delay: int = 0,
        why: str = "",
        reply_to: int = 0,
        request: bool = False,
    ) -> int:
        if dst not in self._components and dst not in self._remote:
            raise UnknownComponent(f"{src} sent {msg.kind} to unknown component {dst!r}")
        env_id = 0
        if request:
            r = self._rank(src)
            self._requests[r] += 1
            env_id = (self._requests[r] << 8) | (r + 1)
        env = Envelope(self.now + delay, src, dst, msg, env_id, reply_to, why)
        if delay:
            # Sent later (the sender is busy until then): emit at that time so the
            # trace stays in time order.
            self._push(env.t, "", env=env, token=_EMIT)
        else:
            self._emit(env)
        return env_id

    def _emit(self, env: Envelope) -> None:
        trace = self.trace
        if trace is not None:
            trace.envelope(env)
        for observe in self.observers:
            observe(env)
        if self.links is None:
            # _push(env.t + latency, env.dst, env=env), inlined: every message comes here.
            t = env.t + self.latency(env)
            dst = env.dst
            if t < self.now:
                raise ValueError(f"event for {dst} scheduled in the past ({t} < {self.now})")
            src = env.src
            r = self._ranks.get(src)
            if r is None:
                r = self._rank(src)
            made = self._made
            n = made[r]
            made[r] = n + 1
            cur = self._cur
            if cur is not None and t == cur[0]:
                key: Key = (t, cur[1] + 1, *cur[2:], r, n)
            else:
                key = (t, 0, r, n)
            if dst in self._remote:
                self._to_remote(t, dst, key, env)
                return
            heapq.heappush(self._queue, (key, dst, env, None))
            return
        # A link filter may drop, delay, duplicate or replace the envelope; each delivery it
        # returns is (envelope, extra delay in ns). It records its own injections.
        for out, extra in self.links(env, self):
            self._push(env.t + self.latency(env) + max(0, extra), out.dst, env=out)

    def call_later(self, name: str, delay: int, token: Any) -> None:
        self._push(self.now + delay, name, token=token)

    def record_event(
        self, src: str, kind: str, body: dict[str, Any], *, why: str = "", dst: str = ""
    ) -> None:
        if self.trace is not None:
            self.trace.record(t=self.now, src=src, dst=dst, kind=kind, body=body, why=why)

    def stop(self, reason: str, by: str = "") -> None:
        """End the run: ``by`` runs nothing more, the others run until ``lookahead`` after now."""
        if not self._stopped:
            self._stopped = reason
            self.stop_key = self._cur
            self.stopped_by = by
            self._stop_limit = self.now + self.lookahead

    @property
    def current(self) -> Key | None:
        """Key of the event being handled (None outside events)."""
        return self._cur

    def _push(
        self,
        t: int,
        dst: str,
        *,
        env: Envelope | None = None,
        token: Any = None,
        origin: str | None = None,
    ) -> None:
        """Queue an item for ``t``: a delivery of ``env`` to ``dst``, a timer, or an emission.

        The item belongs to ``origin`` (default: the envelope's sender, else ``dst``, the
        timer's owner). A delivery to a remote component goes to :attr:`outbox`.
        """
        if t < self.now:
            raise ValueError(f"event for {dst} scheduled in the past ({t} < {self.now})")
        if origin is None:
            origin = env.src if env is not None else dst
        key = self.key(origin, t)
        if token is None and dst in self._remote:
            self._to_remote(t, dst, key, env)
            return
        heapq.heappush(self._queue, (key, dst, env, token))

    def _to_remote(self, t: int, dst: str, key: Key, env: Envelope | None) -> None:
        """A delivery at ``t`` to a component another scheduler holds: to the outbox."""
        assert env is not None and self.outbox is not None, f"no outbox for remote {dst!r}"
        if t < self.now + self.lookahead:
            raise ValueError(
                f"{env.kind} from {env.src} to {dst} arrives {t - self.now} ns after its "
                f"sending, under the lookahead of {self.lookahead} ns"
            )
        self.outbox(key, env)
        back = (t + self.lookahead,)
        if self.horizon is None or back < self.horizon:
            self.horizon = back

    def deliver(self, key: Key, env: Envelope) -> None:
        """Queue a delivery made by another scheduler, under the key its sender gave it."""
        if env.dst not in self._components:
            raise UnknownComponent(f"{env.src} sent {env.kind} to {env.dst!r}, not held here")
        heapq.heappush(self._queue, (tuple(key), env.dst, env, None))

    def next_key(self) -> Key | None:
        """Key of the next item in the queue (None if it is empty)."""
        return self._queue[0][0] if self._queue else None

    @property
    def stopped(self) -> str:
        """Why a component stopped the run ("" while it goes on)."""
        return self._stopped

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- running --------------------------------------------------------------

    def start(self) -> None:
        for name, comp in self._components.items():
            comp.start(self._ports[name])

    def run(
        self, until: int | None = None, max_events: int | None = None, *, below: Key | None = None
    ) -> RunResult:
        """Process events in key order until the queue empties, ``until`` or the end of a stop.

        ``below``: process only items whose key is below it and below :attr:`horizon`. After
        a stop, the items of the component that stopped stay queued and the others run until
        the stop's limit.
        """
        q = self._queue
        held: list[_Item] = []
        heappop = heapq.heappop
        components = self._components
        ports = self._ports
        emit = _EMIT
        try:
            while q:
                key = q[0][0]
                if until is not None and key[0] > until:
                    self.now = until
                    break
                if below is not None and not key < below:
                    break
                if self.horizon is not None and not key < self.horizon:
                    break
                if max_events is not None and self.events >= max_events:
                    break
                if self._stopped:
                    if key[0] >= self._stop_limit:
                        break
                    _, dst, env, token = q[0]
                    owner = env.src if token is emit else dst  # type: ignore[union-attr]
                    if owner == self.stopped_by:
                        held.append(heappop(q))
                        continue
                key, dst, env, token = heappop(q)
                self.now = self.last_t = key[0]
                self._cur = key
                if token is emit:
                    self._emit(env)  # type: ignore[arg-type]
                    continue
                self.events += 1
                if env is not None:
                    components[dst].receive(env, ports[dst])
                else:
                    components[dst].timer(token, ports[dst])
        finally:
            self._cur = None
            for item in held:
                heapq.heappush(q, item)
        return RunResult(self.now, self.events, self._stopped, len(q))
