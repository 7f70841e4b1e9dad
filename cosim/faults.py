"""Fault plans: what to break, where and when, with the Linux fault-injection framework's knobs.

A plan is a list of :class:`FaultRule` (``[[faults]]`` in a scenario, or a TOML file given
with ``cosim run --faults PLAN``). A rule names a **target** (a link ``"src->dst"`` with
shell wildcards, ``"*"`` for every link, or a component site: ``xen``/``host``/``guest``), a
**match** (message ``kind`` and field equalities), an **action**, and the knobs of
Documentation/fault-injection/fault-injection.rst (``should_fail``):

* ``probability`` (percent), ``interval`` (fail every N-th match), ``times`` (at most; -1 =
  unlimited), ``space`` (a budget consumed before failures start: a link match consumes its
  frame's bytes, any other match 1), ``window`` ([start, end) in simulated time), and ``nth``
  (exactly the N-th match, like ``/proc/<pid>/fail-nth``: the basis of ``cosim faults sweep``).

Random draws come only from the scenario seed: each rule has its own ``random.Random`` derived
from the seed and its name. Every injection is a trace record of kind ``fault`` naming its rule
({rule, action, target, ...}). MSI accounting stays exact: an MSI a rule drops is counted in
``lpis_dropped_by_fault`` (and in ``lpis_dropped``); an interrupt a rule makes up (a duplicated
MSI, a spurious LPI, an MSI for an unmapped device, an LR kept pending) in
``lpis_raised_by_fault`` (and in ``lpis_raised``).

Sites (see :data:`ACTIONS`, printed by ``cosim faults list``): link actions run in the
scheduler's link filter as every envelope leaves; host and guest actions through small hooks
(``Xen.fault_set_lpi`` / ``BareMetalHost.fault_set_lpi``, ``Guest.fault_hook`` /
``Guest.fault_panic`` / ``Guest.fault_task``) that do nothing when no rule is active.
"""

from __future__ import annotations

import fnmatch
import random
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from transport.framing import FrameDecoder, FrameError, encode_frame
from transport.messages import MESSAGE_TYPES, Entry, Envelope, Exit, GicContext, Msi

#: The injector's component name (its own messages and records come from it).
FAULTS = "faults"

LINK_ACTIONS = ("drop", "delay", "duplicate", "reorder", "corrupt", "cut")
HOST_ACTIONS = ("lr_stuck", "maintenance_lost", "spurious_lpi", "unmapped_msi", "unmapped_host_lpi")
GUEST_ACTIONS = (
    "hostile_hypercall",
    "hostile_mmio",
    "hostile_sysreg",
    "hostile_its",
    "panic",
    "kexec",
)
PROCESS_ACTIONS = ("kill", "stop")
Action = Literal[
    "drop", "delay", "duplicate", "reorder", "corrupt", "cut",
    "lr_stuck", "maintenance_lost", "spurious_lpi", "unmapped_msi", "unmapped_host_lpi",
    "hostile_hypercall", "hostile_mmio", "hostile_sysreg", "hostile_its", "panic", "kexec",
    "kill", "stop",
]  # fmt: skip


@dataclass(frozen=True)
class ActionInfo:
    """One injectable action: where it applies, on which hosts, what it does."""

    site: str  # link | xen | host | guest | process
    hosts: tuple[str, ...]
    timed: bool  # injected at times (at/every) rather than on matching events
    what: str


_BOTH = ("xen", "baremetal")
ACTIONS: dict[str, ActionInfo] = {
    "drop": ActionInfo("link", _BOTH, False, "the envelope never arrives"),
    "delay": ActionInfo("link", _BOTH, False, "arrives `delay` later"),
    "duplicate": ActionInfo("link", _BOTH, False, "arrives twice"),
    "reorder": ActionInfo(
        "link", _BOTH, False, "held until the next envelope on the link passes it (or `delay`)"
    ),
    "corrupt": ActionInfo(
        "link",
        _BOTH,
        False,
        "`bytes` random bytes of its frame flipped; a frame that no longer decodes cuts the link",
    ),  # fmt: skip
    "cut": ActionInfo("link", _BOTH, False, "this and every later envelope on the link dropped"),
    "lr_stuck": ActionInfo(
        "xen",
        ("xen",),
        False,
        "list register `lr` keeps the state Xen wrote at the last entry across an exit",
    ),  # fmt: skip
    "maintenance_lost": ActionInfo(
        "xen", ("xen",), False, "the vCPU's maintenance interrupt (LR underflow) is lost"
    ),
    "spurious_lpi": ActionInfo(
        "host", _BOTH, True, "an LPI nobody mapped (`intid`) made pending at a redistributor"
    ),
    "unmapped_msi": ActionInfo(
        "host", _BOTH, True, "an MSI for an unmapped device or event (`devid`, `eventid`)"
    ),
    "unmapped_host_lpi": ActionInfo(
        "xen", ("xen",), True, "a host LPI of dom0's device block with no virtual mapping"
    ),
    "hostile_hypercall": ActionInfo(
        "guest", ("xen",), True, "a random or edge-case hypercall from vCPU `cpu`"
    ),
    "hostile_mmio": ActionInfo(
        "guest", _BOTH, True, "a random access to a GICD/GICR/GITS register from `cpu`"
    ),
    "hostile_sysreg": ActionInfo(
        "guest", _BOTH, True, "a random ICC_*/CNTV_* system register access from `cpu`"
    ),
    "hostile_its": ActionInfo(
        "guest", _BOTH, True, "an ITS command with random fields through the guest's queue"
    ),
    "panic": ActionInfo("guest", _BOTH, True, "the kernel panics (`reason`)"),
    "kexec": ActionInfo("guest", _BOTH, True, "kexec -l + kexec -e at the time"),
    "kill": ActionInfo(
        "process", (), True, "multi-process runs (--processes): SIGKILL a component"
    ),
    "stop": ActionInfo(
        "process", (), True, "multi-process runs (--processes): SIGSTOP a component"
    ),
}

#: Fields a ``match`` may name: ``kind`` and any message field (transport/messages.py).
MATCH_KEYS = frozenset({"kind", "src", "dst", "why"}) | frozenset(
    f for t in MESSAGE_TYPES for f in t.__struct_fields__
)


class FaultPlanError(ValueError):
    """A fault plan is invalid; the message is one line naming the key."""


class FaultRule(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One rule of a fault plan (see the module docstring)."""

    name: str
    action: Action
    target: str = "*"
    match: dict[str, int | str | bool] = {}
    probability: Annotated[float, msgspec.Meta(ge=0, le=100)] = 100.0
    interval: Annotated[int, msgspec.Meta(ge=1)] = 1
    times: Annotated[int, msgspec.Meta(ge=-1)] = -1
    space: Annotated[int, msgspec.Meta(ge=0)] = 0
    nth: Annotated[int, msgspec.Meta(ge=0)] = 0
    window: list[str | int] = []
    at: str | int | None = None
    every: str | int | None = None
    delay: str | int = "1ms"
    bytes: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    lr: Annotated[int, msgspec.Meta(ge=0, le=15)] = 0
    cpu: Annotated[int, msgspec.Meta(ge=0)] = 0
    devid: Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)] | None = None
    eventid: Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)] | None = None
    intid: Annotated[int, msgspec.Meta(ge=8192)] | None = None
    reason: str = "fault injection"
    verbose: Annotated[int, msgspec.Meta(ge=0, le=2)] = 1


class _PlanFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    faults: list[FaultRule] = []


INF = 1 << 62


def _ns(value: str | int) -> int:
    from cosim.scenario import parse_duration

    if value in ("inf", "end"):
        return INF
    return parse_duration(value)


def check_rules(rules: Sequence[FaultRule], file: str, host: str | None = None) -> None:
    """Semantic checks msgspec cannot do; FaultPlanError with one line naming the key."""
    seen: set[str] = set()
    for i, r in enumerate(rules):
        where = f"{file}: faults[{i}]"
        if not r.name or r.name in seen:
            why = "must be a non-empty name" if not r.name else "names another rule too"
            raise FaultPlanError(f"{where}.name = {r.name!r}: {why}")
        seen.add(r.name)
        info = ACTIONS[r.action]
        if info.site == "process":
            if r.target == "*" or "->" in r.target:
                raise FaultPlanError(
                    f"{where}.target = {r.target!r}: {r.action} needs a component name "
                    "(host, guest, dom0, xen, dev.<name>)"
                )
            if r.at is None:
                raise FaultPlanError(f"{where}.at: {r.action} needs the simulated time to act at")
            continue
        if host is not None and host not in info.hosts:
            raise FaultPlanError(
                f"{where}.action = {r.action!r}: only on {', '.join(info.hosts)} "
                f"(this scenario's host is {host!r})"
            )
        if info.site == "link":
            if r.target != "*" and r.target.count("->") != 1:
                raise FaultPlanError(
                    f"{where}.target = {r.target!r}: a link action needs a link "
                    "'src->dst' (wildcards allowed) or '*'"
                )
        elif r.target not in ("*", info.site, "host", "xen", "guest", "dom0"):
            raise FaultPlanError(
                f"{where}.target = {r.target!r}: {r.action} acts in the {info.site}; "
                f"allowed: '*', {info.site!r}"
            )
        for k in r.match:
            if k not in MATCH_KEYS:
                raise FaultPlanError(
                    f"{where}.match.{k}: not a message field; allowed: kind or a field of "
                    "transport/messages.py (devid, eventid, vcpu, reason, addr, ...)"
                )
        if info.timed and r.match:
            raise FaultPlanError(f"{where}.match: {r.action} happens at times (at/every), not on "
                                 "messages; remove match")  # fmt: skip
        if r.window and len(r.window) != 2:
            raise FaultPlanError(f"{where}.window = {r.window!r}: needs [start, end]")
        for key, value in [(f"window[{j}]", w) for j, w in enumerate(r.window)] + [
            ("at", r.at),
            ("every", r.every),
            ("delay", r.delay),
        ]:
            if value is None:
                continue
            try:
                _ns(value)
            except ValueError as exc:
                raise FaultPlanError(f"{where}.{key} = {value!r}: {exc}") from None
        if r.window and _ns(r.window[0]) >= _ns(r.window[1]):
            raise FaultPlanError(f"{where}.window = {r.window!r}: start must be before end")
        if r.every is not None and _ns(r.every) <= 0:
            raise FaultPlanError(f"{where}.every = {r.every!r}: must be > 0")


def loads_plan(text: str, file: str = "<plan>") -> list[FaultRule]:
    """A fault plan file: ``[[faults]]`` tables only; one-line errors naming the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FaultPlanError(f"{file}: not valid TOML: {exc}") from None
    extra = sorted(k for k in raw if k != "faults")
    if extra:
        raise FaultPlanError(f"{file}: unknown key {extra[0]}; allowed: faults")
    try:
        plan = msgspec.convert(raw, type=_PlanFile, strict=True)
    except msgspec.ValidationError as exc:
        from cosim.scenario import _explain

        raise FaultPlanError(_explain(file, raw, exc)) from None
    check_rules(plan.faults, file)
    return list(plan.faults)


def load_plan(path: str | Path) -> list[FaultRule]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultPlanError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FaultPlanError(f"{p}: not UTF-8 text") from None
    return loads_plan(text, str(p))


def rule_rng(seed: int, name: str) -> random.Random:
    """A rule's own random stream: the scenario seed and the rule name only."""
    return random.Random(f"xen-gic-cosim:fault:{seed}:{name}")


# -- the knobs ------------------------------------------------------------------------------


@dataclass
class _State:
    """One rule's counters (fault_attr: count, space, times) and its random stream."""

    rule: FaultRule
    rng: random.Random
    start: int
    end: int
    matches: int = 0
    fired: int = 0
    space: int = 0

    def should_fail(self, now: int, size: int = 1) -> bool:
        """lib/fault-inject.c should_fail, plus the window and fail-nth."""
        r = self.rule
        if not self.start <= now < self.end:
            return False
        self.matches += 1
        if r.nth:
            if self.matches != r.nth:
                return False
        else:
            if r.times >= 0 and self.fired >= r.times:
                return False
            if self.space > size:  # the budget is consumed before failures start
                self.space -= size
                return False
            if self.matches % r.interval:
                return False
            if r.probability < 100 and self.rng.random() * 100 >= r.probability:
                return False
        self.fired += 1
        return True


def _lr_state(value: int) -> int:
    return (value >> 62) & 3


def _is_msi(env: Envelope) -> bool:
    return isinstance(env.msg, Msi)


@dataclass
class FaultCounters:
    lpis_raised_by_fault: int = 0
    lpis_dropped_by_fault: int = 0
    lpis_coalesced_by_fault: int = 0
    injections: dict[str, int] = field(default_factory=dict)


class FaultInjector:
    """Component ``faults``: the link filter, the timed injections and the hooks' answers."""

    def __init__(self, sim: Any, rules: Sequence[FaultRule]) -> None:
        self.sim = sim
        self.name = FAULTS
        self.rules = list(rules)
        seed = sim.scenario.run.seed
        self.host = sim.host.name
        self.guest = sim.guest.name
        self.kind = "xen" if self.host == "xen" else "baremetal"
        self.states = [
            _State(
                r, rule_rng(seed, r.name),
                _ns(r.window[0]) if r.window else 0,
                _ns(r.window[1]) if r.window else INF,
                space=r.space,
            )
            for r in self.rules
        ]  # fmt: skip
        self.counters = FaultCounters()
        self.cut: dict[tuple[str, str], str] = {}
        self._held: dict[tuple[str, str], tuple[Envelope, int, int]] = {}
        self._hold_seq = 0
        self._entry_lrs: dict[int, tuple[int, ...]] = {}
        self._port: Any = None
        self.log: list[dict[str, Any]] = []

    # -- install ---------------------------------------------------------------------------

    def install(self) -> None:
        sim = self.sim
        sched = sim.scheduler
        sched.add(self)
        sched.links = self.link_filter
        if any(ACTIONS[r.action].site in ("xen", "guest") for r in self.rules):
            sim.guest.fault_hook = self.guest_site

    # -- component -------------------------------------------------------------------------

    def start(self, port: Any) -> None:
        self._port = port
        for i, st in enumerate(self.states):
            r = st.rule
            if ACTIONS[r.action].timed:
                t = _ns(r.at) if r.at is not None else st.start
                port.call_later(max(t, st.start), ("tick", i))

    def receive(self, env: Envelope, port: Any) -> None:
        self._port = port  # replies to injected MSIs (none expected): ignore

    def timer(self, token: Any, port: Any) -> None:
        self._port = port
        if token[0] == "tick":
            i = token[1]
            st = self.states[i]
            r = st.rule
            if st.should_fail(port.now):
                self._timed(i, st)
            if r.every is not None:
                nxt = port.now + _ns(r.every)
                if nxt < st.end:
                    port.call_later(_ns(r.every), ("tick", i))
        elif token[0] == "release":
            link, seq = token[1], token[2]
            held = self._held.get(link)
            if held is not None and held[2] == seq:
                del self._held[link]
                env, extra, _ = held
                self._deliver(env)

    # -- records and accounting ------------------------------------------------------------

    def record(self, st: _State, target: str, **body: Any) -> None:
        r = st.rule
        rec = {"rule": r.name, "action": r.action, "target": target, "n": st.fired, **body}
        self.counters.injections[r.name] = self.counters.injections.get(r.name, 0) + 1
        self.log.append(rec)
        if r.verbose:
            self.sim.scheduler.record_event(FAULTS, "fault", rec, why="fault_injection")

    def account(self, result: dict[str, Any]) -> None:
        """Add the injections to the result's MSI accounting (called by Simulation.result)."""
        c = self.counters
        result["lpis_raised"] += c.lpis_raised_by_fault
        result["lpis_dropped"] += c.lpis_dropped_by_fault
        result["lpis_coalesced"] += c.lpis_coalesced_by_fault
        result["lpis_raised_by_fault"] = c.lpis_raised_by_fault
        result["lpis_dropped_by_fault"] = c.lpis_dropped_by_fault
        result["lpis_coalesced_by_fault"] = c.lpis_coalesced_by_fault
        result["lpis_pending"] = (
            result["lpis_raised"] - result["lpis_delivered"] - result["lpis_delivered_unexpected"]
            - result["lpis_coalesced"] - result["lpis_dropped"]
        )  # fmt: skip
        result["faults"] = {
            "rules": [r.name for r in self.rules],
            "injections": dict(c.injections),
            "matches": {st.rule.name: st.matches for st in self.states},
            "links_cut": {f"{a}->{b}": why for (a, b), why in self.cut.items()},
        }

    # -- links -----------------------------------------------------------------------------

    def _link_rules(self, env: Envelope) -> list[_State]:
        out = []
        for st in self.states:
            r = st.rule
            if ACTIONS[r.action].site != "link":
                continue
            if r.target != "*":
                src, _, dst = r.target.partition("->")
                if not (fnmatch.fnmatchcase(env.src, src.strip())
                        and fnmatch.fnmatchcase(env.dst, dst.strip())):  # fmt: skip
                    continue
            if _matches(r.match, env):
                out.append(st)
        return out

    def link_filter(self, env: Envelope, sched: Any) -> list[tuple[Envelope, int]]:
        """The scheduler's LinkFilter: how ``env`` travels (see cosim/scheduler.py)."""
        link = (env.src, env.dst)
        if link in self.cut:
            if _is_msi(env):
                self.counters.lpis_dropped_by_fault += 1
            return []
        self._observe_lrs(env)
        out: list[tuple[Envelope, int]] = [(env, 0)]
        held = self._held.pop(link, None)
        for st in self._link_rules(env):
            size = len(encode_frame(env)) if st.rule.space else 1
            if not st.should_fail(sched.now, size):
                continue
            out = self._apply(st, env, out, link)
            if not out:
                break
        if env.src != FAULTS and env.dst == self.host and isinstance(env.msg, Exit):
            out = [(self._lr_stuck(e), x) if isinstance(e.msg, Exit) else (e, x) for e, x in out]
        if held is not None:  # reorder: the held envelope goes right after this one
            h_env, _, _ = held
            out.append((h_env, 0))  # pushed after this one, at this one's time
        return out

    def _apply(
        self, st: _State, env: Envelope, out: list[tuple[Envelope, int]], link: tuple[str, str]
    ) -> list[tuple[Envelope, int]]:
        r = st.rule
        target = f"{env.src}->{env.dst}"
        base = {"kind": env.kind, "id": env.id, "reply_to": env.reply_to}
        a = r.action
        if a == "drop":
            self.record(st, target, **base)
            if _is_msi(env):
                self.counters.lpis_dropped_by_fault += 1
            return []
        if a == "delay":
            d = _ns(r.delay)
            self.record(st, target, **base, delay_ns=d)
            return [(e, x + d) for e, x in out]
        if a == "duplicate":
            self.record(st, target, **base)
            if _is_msi(env):
                self.counters.lpis_raised_by_fault += 1
            return out + [(env, 0)]
        if a == "reorder":
            self._hold_seq += 1
            self._held[link] = (env, 0, self._hold_seq)
            self.record(st, target, **base, hold_ns=_ns(r.delay))
            self._port.call_later(_ns(r.delay), ("release", link, self._hold_seq))
            return []
        if a == "cut":
            self.cut[link] = f"rule {r.name}"
            self.record(st, target, **base)
            if _is_msi(env):
                self.counters.lpis_dropped_by_fault += 1
            return []
        assert a == "corrupt"
        frame = bytearray(encode_frame(env))
        flips = []
        for _ in range(r.bytes):
            pos = st.rng.randrange(len(frame))
            mask = st.rng.randrange(1, 256)
            frame[pos] ^= mask
            flips.append([pos, mask])
        dec = FrameDecoder()
        try:
            dec.feed(bytes(frame))
            got = dec.next_envelope()
            dec.close()
            if got is None:
                raise FrameError("frame 0: truncated")
        except FrameError as exc:
            self.cut[link] = f"rule {r.name}: {exc.reason}"
            self.record(st, target, **base, flips=flips, error=exc.reason, link="cut")
            if _is_msi(env):
                self.counters.lpis_dropped_by_fault += 1
            return []
        # A link delivers to its peer whatever the payload says; the arrival time is the
        # sender's, the rest is what decoded.
        got = msgspec.structs.replace(got, src=env.src, dst=env.dst, t=env.t)
        self.record(st, target, **base, flips=flips, now=got.kind)
        if _is_msi(env) and not _is_msi(got):
            self.counters.lpis_dropped_by_fault += 1
        elif _is_msi(got) and not _is_msi(env):
            self.counters.lpis_raised_by_fault += 1
        return [(got, x) for _, x in out]

    def _deliver(self, env: Envelope) -> None:
        sched = self.sim.scheduler
        sched._push(sched.now + sched.latency(env), env.dst, env=env)

    # -- Xen: the list registers as they cross exits ---------------------------------------

    def _observe_lrs(self, env: Envelope) -> None:
        msg = env.msg
        if isinstance(msg, Entry) and env.src == self.host and isinstance(msg.ctx, GicContext):
            self._entry_lrs[msg.vcpu] = tuple(msg.ctx.lrs)

    def _lr_stuck(self, env: Envelope) -> Envelope:
        msg = env.msg
        assert isinstance(msg, Exit)
        for st in self.states:
            r = st.rule
            if r.action != "lr_stuck" or not _matches(r.match, env):
                continue
            kept = self._entry_lrs.get(msg.vcpu)
            lrs = tuple(msg.ctx.lrs) if isinstance(msg.ctx, GicContext) else ()
            if kept is None or r.lr >= len(lrs) or r.lr >= len(kept) or kept[r.lr] == lrs[r.lr]:
                continue
            if not st.should_fail(self.sim.scheduler.now):
                continue
            old, new = lrs[r.lr], kept[r.lr]
            virq = new & 0xFFFF_FFFF
            # The interrupt the guest already took is offered again: one made-up interrupt.
            if _lr_state(new) & 1 and not _lr_state(old) & 1 and virq >= 8192:
                self.counters.lpis_raised_by_fault += 1
            self.record(st, self.host, vcpu=msg.vcpu, lr=r.lr, was=old, kept=new, virq=virq)
            ctx = msgspec.structs.replace(msg.ctx, lrs=lrs[: r.lr] + (new,) + lrs[r.lr + 1 :])
            env = msgspec.structs.replace(env, msg=msgspec.structs.replace(msg, ctx=ctx))
        return env

    # -- guest-side sites (the hooks call these) -------------------------------------------

    def guest_site(self, site: str, body: dict[str, Any]) -> bool:
        """``Guest.fault_hook``: True when a rule fails this site (e.g. ``maintenance_irq``)."""
        if site != "maintenance_irq":
            return False
        hit = False
        for st in self.states:
            r = st.rule
            if r.action != "maintenance_lost":
                continue
            if any(body.get(k) != v for k, v in r.match.items() if k != "kind"):
                continue
            if st.should_fail(self.sim.scheduler.now):
                self.record(st, self.host, **body)
                hit = True
                break
        return hit

    # -- timed injections ------------------------------------------------------------------

    def _timed(self, i: int, st: _State) -> None:
        r = st.rule
        a = r.action
        sim = self.sim
        port = self._port
        if a == "unmapped_msi":
            known = {d.devid for d in sim.devices}
            devid = r.devid if r.devid is not None else _free_devid(known)
            eventid = r.eventid if r.eventid is not None else 0
            self.counters.lpis_raised_by_fault += 1
            self.record(st, self.host, devid=devid, eventid=eventid)
            port.send(self.host, Msi(devid=devid, eventid=eventid), why="fault_injection")
        elif a in ("spurious_lpi", "unmapped_host_lpi"):
            intid = r.intid
            if a == "unmapped_host_lpi":
                intid = _unmapped_host_lpi(sim.host)
                if intid is None:
                    self.record(st, self.host, skipped="no host LPI block without a mapping")
                    return
            elif intid is None:
                intid = (1 << sim.machine.lpi_id_bits) - 1
            self.counters.lpis_raised_by_fault += 1
            self.record(st, self.host, intid=intid, pcpu=0)

            def done(outcome: str, intid: int = intid) -> None:
                if outcome == "coalesced":
                    self.counters.lpis_coalesced_by_fault += 1
                elif outcome != "set":
                    self.counters.lpis_dropped_by_fault += 1

            sim.host.fault_set_lpi(intid, 0, done)
        elif a == "panic":
            self.record(st, self.guest, reason=r.reason)
            sim.guest.fault_panic(r.reason)
        elif a == "kexec":
            self.record(st, self.guest)
            sim.scheduler.call_later(self.guest, 0, ("kexec", {}))
        else:
            from cosim import fuzz

            kind = a.removeprefix("hostile_")
            ctx = fuzz.FuzzContext.of(sim)
            op = fuzz.gen_op(st.rng, ctx, kind)
            op["cpu"] = r.cpu
            self.record(st, self.guest, op=op)
            sim.guest.fault_task(r.cpu, lambda op=op: fuzz.op_task(sim, op, None))
            fuzz.wake(sim, r.cpu)


def _matches(match: dict[str, Any], env: Envelope) -> bool:
    msg = env.msg
    for k, v in match.items():
        if k == "kind":
            if env.kind != v:
                return False
        elif k in ("src", "dst", "why"):
            if getattr(env, k) != v:
                return False
        elif getattr(msg, k, _MISSING) != v:
            return False
    return True


_MISSING = object()


def _free_devid(known: set[int]) -> int:
    d = 0xBAD
    while d in known:
        d += 1
    return d


def _unmapped_host_lpi(host: Any) -> int | None:
    """A host LPI in one of dom0's device blocks whose entry has no virtual LPI."""
    its = getattr(host, "host_its", None)
    if its is None:
        return None
    from hypervisor.host_its import INVALID_LPI

    for dev in its.devices.values():
        for first in dev.host_lpi_blocks:
            for lpi in range(first, first + 32):
                h = its.gic_get_host_lpi(lpi)
                if h is None or h.virt_lpi == INVALID_LPI:
                    return lpi
    return None


def process_rules(rules: Sequence[FaultRule]) -> list[FaultRule]:
    """The rules that act on OS processes (kill, stop): only a multi-process run has them."""
    return [r for r in rules if ACTIONS[r.action].site == "process"]


class ProcessFaults:
    """Kill or stop component processes at a simulated time (the supervisor asks after every
    step which rules are due; each fires once)."""

    def __init__(self, rules: Sequence[FaultRule]) -> None:
        self.pending = sorted(process_rules(rules), key=lambda r: (_ns(r.at or 0), r.name))

    def due(self, t: int) -> list[FaultRule]:
        now = [r for r in self.pending if _ns(r.at or 0) <= t]
        self.pending = [r for r in self.pending if r not in now]
        return now


def install(sim: Any, rules: Sequence[FaultRule], file: str = "<plan>") -> FaultInjector:
    """Check the rules against the scenario's host and put an injector on the simulation."""
    check_rules(rules, file, host=sim.scenario.host.kind)
    if process_rules(rules):
        r = process_rules(rules)[0]
        raise FaultPlanError(
            f"{file}: rule {r.name!r}: {r.action} acts on a component's process: "
            "run with cosim run --processes"
        )
    inj = FaultInjector(sim, rules)
    inj.install()
    sim.faults = inj
    return inj


def sites_table() -> list[tuple[str, str, str, str, str]]:
    """(action, site, hosts, how it triggers, what it does) for ``cosim faults list``."""
    rows = []
    for name, a in ACTIONS.items():
        hosts = ", ".join(a.hosts) if a.hosts else "-"
        how = "at/every" if a.timed else ("each envelope" if a.site == "link" else "each event")
        if a.site == "process":
            how = "-"
        rows.append((name, a.site, hosts, how, a.what))
    return rows


def with_rule(
    rules: Sequence[FaultRule], name: str, change: Callable[[FaultRule], FaultRule]
) -> list[FaultRule]:
    """The plan with rule ``name`` replaced by ``change(rule)`` (sweep, tests)."""
    out = []
    found = False
    for r in rules:
        if r.name == name:
            r, found = change(r), True
        out.append(r)
    if not found:
        raise FaultPlanError(f"no rule named {name!r}; rules: {', '.join(r.name for r in rules)}")
    return out
