"""The in-process scheduler: one queue of events keyed by (simulated time, sequence number).

Components are synchronous state machines. The scheduler hands them one event
at a time (a delivered :class:`~transport.messages.Envelope` or a timer) through
a :class:`Port`, which is all they see of the world: the simulated clock, their
own seeded random stream, and ``send``. Nothing depends on trio's task order,
the wall clock or hash order, so the same scenario and seed give the same
trace byte for byte.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
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
        self.scheduler.stop(reason)


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


@dataclass(order=True, slots=True)
class _Item:
    t: int
    seq: int
    dst: str = field(compare=False)
    env: Envelope | None = field(compare=False, default=None)
    token: Any = field(compare=False, default=None)


_EMIT = object()


class UnknownComponent(KeyError):
    pass


class Scheduler:
    """Runs components on simulated time; records every message in the trace."""

    def __init__(
        self,
        *,
        seed: int,
        trace: TraceWriter | None = None,
        latency: Latency = no_latency,
        links: LinkFilter | None = None,
    ) -> None:
        self.seed = seed
        self.trace = trace
        self.latency = latency
        #: Sees every envelope as it leaves and says how it travels (fault injection's hook).
        self.links = links
        self.now = 0
        self._queue: list[_Item] = []
        self._seq = 0
        self._next_id = 1
        self._components: dict[str, Component] = {}
        self._ports: dict[str, Port] = {}
        self._stopped = ""
        self.events = 0
        self.observers: list[Callable[[Envelope], None]] = []

    def add(self, component: Component) -> Port:
        if component.name in self._components:
            raise ValueError(f"component {component.name!r} added twice")
        self._components[component.name] = component
        port = Port(self, component.name, component_rng(self.seed, component.name))
        self._ports[component.name] = port
        return port

    def component(self, name: str) -> Component:
        return self._components[name]

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
        if dst not in self._components:
            raise UnknownComponent(f"{src} sent {msg.kind} to unknown component {dst!r}")
        env_id = 0
        if request:
            env_id = self._next_id
            self._next_id += 1
        env = Envelope(
            t=self.now + delay, src=src, dst=dst, msg=msg, id=env_id, reply_to=reply_to, why=why
        )
        if delay:
            # Sent later (the sender is busy until then): emit at that time so the
            # trace stays in time order.
            self._push(env.t, "", env=env, token=_EMIT)
        else:
            self._emit(env)
        return env_id

    def _emit(self, env: Envelope) -> None:
        if self.trace is not None:
            self.trace.envelope(env)
        for observe in self.observers:
            observe(env)
        if self.links is None:
            self._push(env.t + self.latency(env), env.dst, env=env)
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

    def stop(self, reason: str) -> None:
        if not self._stopped:
            self._stopped = reason

    def _push(self, t: int, dst: str, *, env: Envelope | None = None, token: Any = None) -> None:
        if t < self.now:
            raise ValueError(f"event for {dst} scheduled in the past ({t} < {self.now})")
        heapq.heappush(self._queue, _Item(t, self._seq, dst, env, token))
        self._seq += 1

    # -- running --------------------------------------------------------------

    def start(self) -> None:
        for name, comp in self._components.items():
            comp.start(self._ports[name])

    def run(self, until: int | None = None, max_events: int | None = None) -> RunResult:
        """Process events in (time, sequence) order until the queue empties, ``until`` or a stop."""
        q = self._queue
        while q and not self._stopped:
            if until is not None and q[0].t > until:
                self.now = until
                break
            if max_events is not None and self.events >= max_events:
                break
            item = heapq.heappop(q)
            self.now = item.t
            if item.token is _EMIT:
                self._emit(item.env)  # type: ignore[arg-type]
                continue
            self.events += 1
            comp = self._components[item.dst]
            port = self._ports[item.dst]
            if item.env is not None:
                comp.receive(item.env, port)
            else:
                comp.timer(item.token, port)
        return RunResult(self.now, self.events, self._stopped, len(q))
