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

Under Xen (``virt``) the same kernel code runs as a vCPU of dom0 and every request that traps
becomes an ``Exit`` to the host (transport/messages.py), sent as a request whose ``Entry``
reply resumes the vCPU; the vCPU's virtual CPU interface (gic/list_registers.py) travels in
every exit's ``ctx`` and is restored from every Entry's ``ctx``:

* MMIO -> ``dabt`` (the data is ``Entry.regs[0]``, or ``Entry.value`` when a host gives no
  regs); MMIO inside a passed-through device's window goes straight to the device (stage 2
  maps it for dom0: no trap);
* ``ICC_*`` accesses are served by the list registers with no trap (``icv_read`` /
  ``icv_write``), except ICC_SGI1R_EL1 (``sysreg`` exit, Xen's vgic_to_sgi); the generic
  timer registers CNTV_* are reported as ``sysreg`` exits so the host's timer model runs;
* PSCI -> ``hvc`` with imm 0 (x0 = function id), :class:`Hypercall` -> ``hvc`` imm 0xEA1
  (x16 = number, x0..x4 = arguments), the result in ``Entry.regs[0]``; CPU_OFF gets no Entry;
* ``Wfi`` -> a ``wfi`` exit only when no virtual IRQ is pending (the Entry comes when Xen
  wakes the vCPU); IRQs are taken from the LRs (``virq_level``) where the CPU has them
  unmasked, as on bare metal;
* ``Kick`` from Xen, or the LRs' maintenance interrupt rising (``maintenance_level``): an
  ``irq`` exit at the vCPU's next step (at once while it computes or waits for another CPU),
  never twice in a row without the vCPU making progress. Kicks that cross an exit are ignored.
  A "step" is a request that traps, computes or waits; ICC_* accesses served by the list
  registers are not steps (so an IRQ handler's IAR..EOI runs without an exit in between).
* hvc0 console output (hvc_console_print -> dom0_write_console): before serving a request, a
  CPU holding the console lock writes pending printk text with CONSOLEIO_write hypercalls.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gic.cpu_interface import SysregError
from gic.fastinit import fast_init
from gic.list_registers import ListRegisters
from transport.abi import ENTRY_DABT, ENTRY_UNDEF, SMCCC_IMM, XEN_HYPERCALL_TAG
from transport.messages import Entry, Envelope, Exit, GicContext, Mmio, Smccc, Sysreg
from transport.port import GuestPort

Gen = Generator[Any, Any, Any]


@fast_init
@dataclass(frozen=True, slots=True)
class MmioRead:
    addr: int
    size: int
    why: str


@fast_init
@dataclass(frozen=True, slots=True)
class MmioWrite:
    addr: int
    size: int
    value: int
    why: str


@fast_init
@dataclass(frozen=True, slots=True)
class SysregRead:
    reg: str
    why: str


@fast_init
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
class Hypercall:
    """``HYPERVISOR_*``: HVC #0xEA1 with the number in x16 and x0..x4 = ``args`` (Xen only).
    The answer is x0 as a 64-bit value (a negative XEN_E* sign-extended)."""

    nr: int
    args: tuple[int, ...]
    why: str


@fast_init
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


class CpuHost(Protocol):
    """The guest side a runtime calls back into."""

    host: str
    conduit: str

    def register_request(self, env_id: int, cpu: int) -> None: ...

    def irq_entry(self, cpu: int) -> Gen: ...

    def on_exception(self, cpu: int, exc: BaseException) -> Gen | None: ...

    def event_set(self, key: str) -> bool: ...

    def device_component(self, addr: int) -> str | None: ...

    def console_chunk(self, cpu: int) -> Hypercall | None: ...

    def vcpu_fault(self, cpu: int, what: str, body: dict[str, Any]) -> None: ...


#: Registers whose accesses trap to the host under Xen (everything else ICC_* is served by the
#: list registers): ICC_SGI1R_EL1 (ICH_HCR_EL2.TC off, but SGI generation always traps to
#: Xen's vgic), and the virtual timer, which the host models (hypervisor/xen.py).
TRAPPED_SYSREGS = frozenset(
    {"ICC_SGI1R_EL1", "ICC_ASGI1R_EL1", "ICC_SGI0R_EL1"}
    | {"CNTV_CTL_EL0", "CNTV_CVAL_EL0", "CNTV_TVAL_EL0", "CNTVCT_EL0", "CNTFRQ_EL0"}
)
#: A WFI the host answered at once with nothing the vCPU can take: the idle loop goes round
#: again after this long, so a wake-up the guest cannot act on never spins in zero time.
WFI_SPURIOUS_NS = 1_000
U64 = (1 << 64) - 1


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
    #: Xen mode: the vCPU's virtual CPU interface, the exit awaiting its Entry (id, kind),
    #: the request to serve after an asynchronous exit, a pending "irq" exit, and whether a
    #: guest-level wait completed while an asynchronous exit was out.
    virt: bool = False
    lr: ListRegisters | None = None
    exit_out: tuple[int, str] | None = None
    stash: Any = None
    exit_pending: str = ""
    deferred: bool = False
    exits: dict[str, int] = field(default_factory=dict)

    # -- control ---------------------------------------------------------------------------

    def start(self, gen: Gen, port: GuestPort, fresh_interface: bool = True) -> None:
        """Run ``gen`` as this CPU's main context from now (power-on or kexec entry). Under
        Xen a vCPU brought up (CPU_ON) starts with a reset virtual CPU interface; a kexec
        jump (``fresh_interface`` False) keeps the list registers Xen gave it."""
        self.stack = [gen]
        self.frames = []
        self.state = "running"
        self.waiting = ()
        if self.virt:
            if fresh_interface or self.lr is None:
                self.lr = ListRegisters(self.lr.num_lrs if self.lr is not None else 4)
            self.exit_out, self.stash, self.exit_pending, self.deferred = None, None, "", False
        self._resume(None, port)

    def stop(self, state: str = "off") -> None:
        for g in self.stack:
            g.close()
        self.stack = []
        self.waiting = ()
        self.state = state
        self.exit_out, self.stash, self.exit_pending, self.deferred = None, None, "", False

    # -- events ----------------------------------------------------------------------------

    def on_reply(self, value: Any, port: GuestPort) -> None:
        if self.waiting and self.waiting[0] == "reply":
            self.waiting = ()
            self._resume(value, port)

    def on_timer(self, seq: int, port: GuestPort) -> None:
        if self.waiting == ("timer", seq):
            if self.exit_out is not None:  # an irq exit is out: go on at its Entry
                self.deferred = True
                return
            self.waiting = ()
            self._resume(None, port)

    def on_event(self, key: str, port: GuestPort) -> None:
        if self.waiting == ("event", key):
            if self.exit_out is not None:
                self.deferred = True
                return
            self.waiting = ()
            self._resume(None, port)

    def on_irq(self, level: bool, port: GuestPort) -> None:
        self.line = level
        if level and self.waiting and self.waiting[0] in ("wfi",):
            self._take_irq(port)

    def run_task(self, task: Callable[[], Gen], port: GuestPort) -> None:
        """Run ``task`` in this CPU's process context at its next idle point (an action).
        Under Xen a vCPU blocked in a ``wfi`` exit runs it once Xen wakes it."""
        self.pending_tasks.append(task)
        if self.waiting and self.waiting[0] == "wfi":
            self._dispatch_tasks(port)

    # -- Xen mode: entries and kicks ----------------------------------------------------------

    def on_kick(self, port: GuestPort) -> None:
        """``Kick``: exit with reason ``irq`` (at once while computing or waiting for another
        CPU, else at the next step). A kick that crosses an exit is harmless."""
        if not self.virt or self.state in ("off", "dead") or self.exit_out is not None:
            return
        if self.waiting and self.waiting[0] in ("timer", "event"):
            self._send_exit(port, "irq", Exit(vcpu=self.cpu, reason="irq"), "kick")
            return
        self.exit_pending = self.exit_pending or "kick"

    def on_entry(self, env: Envelope, msg: Entry, port: GuestPort) -> None:
        """The host resumed this vCPU: restore its interface, then go on."""
        out = self.exit_out
        if out is None or out[0] != env.reply_to:
            port.record("bad-entry", {"vcpu": self.cpu, "reply_to": env.reply_to})
            return
        self.exit_out = None
        kind = out[1]
        self._restore(msg.ctx, port)
        if kind == "sync":
            value = self._result(msg, port)
            self._check_maintenance()
            self.state = "running"
            self._resume(value, port)
            return
        if kind == "console":
            nxt = self.owner.console_chunk(self.cpu)
            if nxt is not None:
                self._send_hypercall(port, "console", nxt)
                return
        self._check_maintenance()
        if kind == "wfi":
            self.state = "running"
            self.waiting = ()
            if self._irq_pending():
                self._take_irq(port)
            elif self.pending_tasks:
                self._dispatch_tasks(port)
            elif self.exit_pending:
                self._serve_virt(Wfi(), port, fresh=True)
            else:  # woken with nothing to take: round the idle loop after a moment
                self._timer_seq += 1
                port.call_later(WFI_SPURIOUS_NS, ("cpu", self.cpu, self._timer_seq))
                self.waiting = ("timer", self._timer_seq)
            return
        # an irq or console exit taken between two steps
        if self.stash is not None:
            req, self.stash = self.stash, None
            done, value = self._serve_virt(req, port, fresh=False)
            if done:
                self._resume(value, port)
        elif self.deferred:
            self.deferred = False
            self.waiting = ()
            self._resume(None, port)

    def _ctx(self) -> GicContext:
        lr = self.lr
        assert lr is not None
        return GicContext(lrs=tuple(lr.lrs), hcr=lr.hcr, vmcr=lr.vmcr, ap1r=tuple(lr.ap1r))

    def _restore(self, ctx: GicContext, port: GuestPort) -> None:
        """Write back what Xen wrote (``leave_hypervisor_to_guest``). An Entry without list
        registers leaves the interface as it was (a host that does not model it)."""
        lr = self.lr
        if lr is None or not ctx.lrs:
            return
        try:
            if len(ctx.lrs) != lr.num_lrs:
                self.lr = lr = ListRegisters(len(ctx.lrs))
            lr.restore(tuple(ctx.lrs), ctx.hcr, ctx.vmcr, tuple(ctx.ap1r))
        except (SysregError, ValueError, TypeError) as e:
            port.record("bad-entry", {"vcpu": self.cpu, "error": str(e)})

    def _result(self, msg: Entry, port: GuestPort) -> int:
        """The answer of a synchronous exit: x0 / the data (regs[0], else value)."""
        status = msg.value if isinstance(msg.value, int) else 0
        regs = tuple(msg.regs)
        if regs:
            if status in (ENTRY_UNDEF, ENTRY_DABT):
                self._fault(status, port)
            return int(regs[0]) & U64
        if status in (ENTRY_UNDEF, ENTRY_DABT):
            self._fault(status, port)
            return 0
        return status & U64

    def _fault(self, status: int, port: GuestPort) -> None:
        what = "undefined instruction" if status == ENTRY_UNDEF else "data abort"
        self.owner.vcpu_fault(self.cpu, what, {"frames": list(self.frames)})

    def _check_maintenance(self) -> None:
        if self.lr is not None and self.lr.maintenance_level:
            fault_at = getattr(self.owner, "fault_at", None)  # cosim/faults.py maintenance_lost
            if fault_at is not None and fault_at("maintenance_irq", {"vcpu": self.cpu}):
                return
            self.exit_pending = self.exit_pending or "maintenance"

    # -- the engine ------------------------------------------------------------------------

    def _dispatch_tasks(self, port: GuestPort) -> None:
        task = self.pending_tasks.pop(0)
        self.waiting = ()
        self.state = "running"
        self.stack.append(task())
        self._resume(None, port)

    def _irq_pending(self) -> bool:
        """The IRQ input of the CPU: the GIC's line (bare metal) or the virtual IRQ the list
        registers signal (Xen)."""
        if self.virt:
            return self.lr is not None and self.lr.virq_level
        return self.line

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
                if self._irq_pending():
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
        if self.virt:
            return self._serve_virt(req, port, fresh=True)
        o = self.owner
        if isinstance(req, (MmioRead, MmioWrite)):
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
        if isinstance(req, (SysregRead, SysregWrite)):
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

    # -- Xen mode: serving requests as exits ------------------------------------------------

    def _send_exit(self, port: GuestPort, kind: str, msg: Exit, why: str) -> None:
        msg = Exit(
            vcpu=self.cpu, reason=msg.reason, imm=msg.imm, x16=msg.x16, regs=msg.regs,
            addr=msg.addr, size=msg.size, write=msg.write, value=msg.value, reg=msg.reg,
            ctx=self._ctx(),
        )  # fmt: skip
        eid = port.send(self.owner.host, msg, why=why, request=True)
        self.owner.register_request(eid, self.cpu)
        self.exit_out = (eid, kind)
        self.exits[msg.reason] = self.exits.get(msg.reason, 0) + 1

    def _send_hypercall(self, port: GuestPort, kind: str, req: Hypercall) -> None:
        args = tuple(int(a) & U64 for a in req.args)
        self._send_exit(
            port, kind, Exit(vcpu=self.cpu, reason="hvc", imm=XEN_HYPERCALL_TAG, x16=req.nr,
                             regs=args), req.why,
        )  # fmt: skip

    def _prelude(self, req: Any, port: GuestPort) -> bool:
        """Before a fresh request: a pending irq exit, else the hvc0 console's writes."""
        if self.exit_pending:
            self.exit_pending = ""
            self.stash = req
            self._send_exit(port, "irq", Exit(vcpu=self.cpu, reason="irq"), "irq")
            return True
        chunk = self.owner.console_chunk(self.cpu)
        if chunk is not None:
            self.stash = req
            self._send_hypercall(port, "console", chunk)
            return True
        return False

    def _serve_virt(self, req: Any, port: GuestPort, fresh: bool) -> tuple[bool, Any]:
        """Serve ``req`` as dom0's vCPU (see the module docstring)."""
        o = self.owner
        local = isinstance(req, (SysregRead, SysregWrite)) and req.reg not in TRAPPED_SYSREGS
        if fresh and not local and self._prelude(req, port):  # ICC_* accesses run on
            return False, None
        if isinstance(req, (MmioRead, MmioWrite)):
            write = isinstance(req, MmioWrite)
            value = req.value if write else 0
            dev = o.device_component(req.addr)
            if dev is not None:  # mapped 1:1 in dom0's p2m: no trap
                msg = Mmio(cpu=self.cpu, addr=req.addr, size=req.size, write=write, value=value)
                eid = port.send(dev, msg, why=req.why, request=True)
                o.register_request(eid, self.cpu)
                self.waiting = ("reply", eid)
                return False, None
            self._send_exit(
                port, "sync", Exit(vcpu=self.cpu, reason="dabt", addr=req.addr, size=req.size,
                                   write=write, value=value), req.why,
            )  # fmt: skip
            return False, None
        if isinstance(req, (SysregRead, SysregWrite)):
            write = isinstance(req, SysregWrite)
            if req.reg in TRAPPED_SYSREGS:
                self._send_exit(
                    port, "sync", Exit(vcpu=self.cpu, reason="sysreg", reg=req.reg, write=write,
                                       value=req.value if write else 0), req.why,
                )  # fmt: skip
                return False, None
            lr = self.lr
            assert lr is not None
            try:
                if write:
                    lr.icv_write(req.reg, req.value)
                    value = 0
                else:
                    value = lr.icv_read(req.reg)
            except SysregError as e:
                o.vcpu_fault(self.cpu, "undefined instruction", {"reg": req.reg, "error": str(e)})
                value = 0
            self._check_maintenance()
            return True, value
        if isinstance(req, Psci):
            regs = (req.fid, *req.args)
            self._send_exit(
                port, "sync", Exit(vcpu=self.cpu, reason="hvc", imm=SMCCC_IMM, regs=regs), req.why
            )
            if not req.wait:  # CPU_OFF: Xen never answers
                self.stop("off")
            return False, None
        if isinstance(req, Hypercall):
            self._send_hypercall(port, "sync", req)
            return False, None
        if isinstance(req, Wfi):
            if self._irq_pending():
                self._take_irq(port)
                return False, None
            if self.pending_tasks:
                self._dispatch_tasks(port)
                return False, None
            self.state = "wfi"
            self.waiting = ("xen-wfi",)
            self._send_exit(port, "wfi", Exit(vcpu=self.cpu, reason="wfi"), req.why)
            return False, None
        if isinstance(req, IrqWindow):
            if self._irq_pending():
                self._take_irq(port)
                return False, None
            return True, None
        if isinstance(req, Cost):
            if req.ns <= 0:
                return True, None
            self._timer_seq += 1
            port.call_later(req.ns, ("cpu", self.cpu, self._timer_seq))
            self.waiting = ("timer", self._timer_seq)
            return False, None
        if isinstance(req, WaitEvent):
            if o.event_set(req.key):
                return True, None
            self.waiting = ("event", req.key)
            return False, None
        raise TypeError(f"cpu{self.cpu}: kernel yielded an unknown request {req!r}")
