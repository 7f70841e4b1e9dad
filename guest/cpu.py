"""The guest's CPUs: what kernel code yields, and the per-CPU runtime that serves it.

Kernel code is written as generators (h11/wsproto-style cores)::

    val = yield MmioRead(addr, 4, "gic_populate_rdist")
    yield MmioWrite(addr, 4, val, "its_cpu_init_lpis")
    irq = yield SysregRead("ICC_IAR1_EL1", "gic_handle_irq")
    x0 = yield Psci(PSCI_0_2_FN_PSCI_VERSION, (), "psci_0_2_get_version")
    yield Cost(ns)            # time spent computing
    yield Wfi()               # cpu_do_idle: sleep until the IRQ line rises, take it
    yield IrqWindow()         # local_irq_enable point: take a pending IRQ, then go on
    yield WaitEvent("cpu1-online")  # wait_for_completion on another CPU's signal

A :class:`CpuRuntime` turns each request into a message (Mmio/Sysreg/Smccc to the host, a
timer for Cost), resumes the generator on the answer, and takes IRQs only where the CPU has
them unmasked (WFI and IrqWindow): the IRQ handler (``gic_handle_irq``) is pushed as a new
generator frame and, when it returns, is run again while the line is still high (the CPU
re-enters the exception vector), else the interrupted code resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from transport.messages import Message, Mmio, Smccc, Sysreg

Gen = Generator[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class MmioRead:
    addr: int
    size: int
    why: str


@dataclass(frozen=True, slots=True)
class MmioWrite:
    addr: int
    size: int
    value: int
    why: str


@dataclass(frozen=True, slots=True)
class SysregRead:
    reg: str
    why: str


@dataclass(frozen=True, slots=True)
class SysregWrite:
    reg: str
    value: int
    why: str


@dataclass(frozen=True, slots=True)
class Psci:
    """An SMCCC call (PSCI). ``wait`` False: the call does not return (CPU_OFF)."""

    fid: int
    args: tuple[int, ...]
    why: str
    wait: bool = True


@dataclass(frozen=True, slots=True)
class Cost:
    ns: int


@dataclass(frozen=True, slots=True)
class Wfi:
    why: str = "cpu_do_idle"


@dataclass(frozen=True, slots=True)
class IrqWindow:
    why: str = "local_irq_enable"


@dataclass(frozen=True, slots=True)
class WaitEvent:
    key: str


class GuestPort(Protocol):
    """What the guest needs of the scheduler's port (cosim.scheduler.Port satisfies it)."""

    @property
    def now(self) -> int: ...

    def send(
        self,
        dst: str,
        msg: Message,
        *,
        delay: int = 0,
        why: str = "",
        reply_to: int = 0,
        request: bool = False,
    ) -> int: ...

    def reply(self, to: Any, msg: Message, *, delay: int = 0, why: str = "") -> None: ...

    def call_later(self, delay: int, token: Any) -> None: ...

    def record(self, kind: str, body: dict[str, Any], *, why: str = "", dst: str = "") -> None: ...

    def stop(self, reason: str) -> None: ...


class CpuHost(Protocol):
    """The guest side a runtime calls back into."""

    host: str
    conduit: str

    def register_request(self, env_id: int, cpu: int) -> None: ...

    def irq_entry(self, cpu: int) -> Gen: ...

    def on_exception(self, cpu: int, exc: BaseException) -> Gen | None: ...

    def event_set(self, key: str) -> bool: ...


@dataclass
class CpuRuntime:
    """One CPU: a stack of generator frames and what the top frame waits for."""

    cpu: int
    owner: CpuHost
    state: str = "off"  # off | running | wfi | dead
    stack: list[Gen] = field(default_factory=list)
    waiting: tuple[Any, ...] = ()
    line: bool = False
    irqs_taken: int = 0
    frames: list[str] = field(default_factory=list)  # modelled call path, outermost first
    _timer_seq: int = 0
    pending_tasks: list[Callable[[], Gen]] = field(default_factory=list)

    # -- control ---------------------------------------------------------------------------

    def start(self, gen: Gen, port: GuestPort) -> None:
        """Run ``gen`` as this CPU's main context from now (power-on or kexec entry)."""
        self.stack = [gen]
        self.frames = []
        self.state = "running"
        self.waiting = ()
        self._resume(None, port)

    def stop(self, state: str = "off") -> None:
        for g in self.stack:
            g.close()
        self.stack = []
        self.waiting = ()
        self.state = state

    # -- events ----------------------------------------------------------------------------

    def on_reply(self, value: Any, port: GuestPort) -> None:
        if self.waiting and self.waiting[0] == "reply":
            self.waiting = ()
            self._resume(value, port)

    def on_timer(self, seq: int, port: GuestPort) -> None:
        if self.waiting == ("timer", seq):
            self.waiting = ()
            self._resume(None, port)

    def on_event(self, key: str, port: GuestPort) -> None:
        if self.waiting == ("event", key):
            self.waiting = ()
            self._resume(None, port)

    def on_irq(self, level: bool, port: GuestPort) -> None:
        self.line = level
        if level and self.waiting and self.waiting[0] in ("wfi",):
            self._take_irq(port)

    def run_task(self, task: Callable[[], Gen], port: GuestPort) -> None:
        """Run ``task`` in this CPU's process context at its next idle point (an action)."""
        self.pending_tasks.append(task)
        if self.waiting and self.waiting[0] == "wfi":
            self._dispatch_tasks(port)

    # -- the engine ------------------------------------------------------------------------

    def _dispatch_tasks(self, port: GuestPort) -> None:
        task = self.pending_tasks.pop(0)
        self.waiting = ()
        self.state = "running"
        self.stack.append(task())
        self._resume(None, port)

    def _take_irq(self, port: GuestPort) -> None:
        self.waiting = ()
        self.state = "running"
        self.irqs_taken += 1
        self.stack.append(self.owner.irq_entry(self.cpu))
        self._resume(None, port)

    def _resume(self, value: Any, port: GuestPort) -> None:
        """Send ``value`` to the top frame and serve requests until one must wait."""
        while self.stack:
            gen = self.stack[-1]
            try:
                req = gen.send(value)
            except StopIteration:
                if self.stack and self.stack[-1] is gen:
                    self.stack.pop()
                if not self.stack:
                    self.state = "off" if self.state != "dead" else "dead"
                    return
                # the frame below waited at an IRQ/idle point
                if self.line:
                    self._take_irq(port)
                    return
                if self.pending_tasks:
                    self._dispatch_tasks(port)
                    return
                value = None
                continue
            except Exception as exc:  # an Oops in the modelled kernel, or a model bug
                self.stack = []
                handler = self.owner.on_exception(self.cpu, exc)
                if handler is None:
                    self.state = "dead"
                    return
                self.stack = [handler]
                value = None
                continue
            done, value = self._serve(req, port)
            if not done:
                return

    def abandon_below(self) -> None:
        """The running frame leaves this CPU's other contexts behind for good (kexec jumps
        to a new kernel from a task): close the suspended frames under it."""
        for g in self.stack[:-1]:
            g.close()
        self.stack = self.stack[-1:]

    def _serve(self, req: Any, port: GuestPort) -> tuple[bool, Any]:
        """Start serving ``req``; (True, answer) when answered at once."""
        o = self.owner
        if isinstance(req, MmioRead | MmioWrite):
            write = isinstance(req, MmioWrite)
            msg = Mmio(
                cpu=self.cpu,
                addr=req.addr,
                size=req.size,
                write=write,
                value=req.value if write else 0,
            )
            eid = port.send(o.host, msg, why=req.why, request=True)
            o.register_request(eid, self.cpu)
            self.waiting = ("reply", eid)
            return False, None
        if isinstance(req, SysregRead | SysregWrite):
            write = isinstance(req, SysregWrite)
            msg = Sysreg(cpu=self.cpu, reg=req.reg, write=write, value=req.value if write else 0)
            eid = port.send(o.host, msg, why=req.why, request=True)
            o.register_request(eid, self.cpu)
            self.waiting = ("reply", eid)
            return False, None
        if isinstance(req, Psci):
            msg = Smccc(cpu=self.cpu, fid=req.fid, args=tuple(req.args), conduit=o.conduit)  # type: ignore[arg-type]
            if not req.wait:
                port.send(o.host, msg, why=req.why)
                self.stop("off")
                return False, None
            eid = port.send(o.host, msg, why=req.why, request=True)
            o.register_request(eid, self.cpu)
            self.waiting = ("reply", eid)
            return False, None
        if isinstance(req, Cost):
            if req.ns <= 0:
                return True, None
            self._timer_seq += 1
            port.call_later(req.ns, ("cpu", self.cpu, self._timer_seq))
            self.waiting = ("timer", self._timer_seq)
            return False, None
        if isinstance(req, Wfi):
            if self.line:
                self._take_irq(port)
                return False, None
            if self.pending_tasks:
                self._dispatch_tasks(port)
                return False, None
            self.state = "wfi"
            self.waiting = ("wfi",)
            return False, None
        if isinstance(req, IrqWindow):
            if self.line:
                self._take_irq(port)
                return False, None
            return True, None
        if isinstance(req, WaitEvent):
            if o.event_set(req.key):
                return True, None
            self.waiting = ("event", req.key)
            return False, None
        raise TypeError(f"cpu{self.cpu}: kernel yielded an unknown request {req!r}")
