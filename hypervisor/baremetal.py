"""The bare-metal host: QEMU virt's physical GICv3 and firmware serving a Linux kernel directly.

:class:`BareMetalHost` is the component ``host`` of a bare-metal run. It owns the physical
GIC (``gic.gic.Gic``: distributor, redistributors, ITS, CPU interfaces) and answers the bus:

* ``Mmio`` in a GIC frame is a GIC access (QEMU gicv3_dist_read/write, gicv3_redist_*,
  gicv3_its_*); in a device's register window it is forwarded to that device component and
  its ``Reply`` passed back; anywhere else it is RAZ/WI, recorded as ``bad-access``.
* ``Sysreg`` ICC_* goes to the CPU interface (QEMU arm_gicv3_cpuif.c); CNT* are the generic
  timer of this model (below).
* ``Smccc`` is PSCI as QEMU's built-in firmware answers it (target/arm/psci.c
  ``arm_handle_psci_call``, QEMU 7.2: PSCI 1.1).
* ``Msi`` from a device is a write to GITS_TRANSLATER (QEMU gicv3_its_translation_write)
  with the DeviceID of the device's bus slot, which the host supplies (the architecture
  requires it to be non-spoofable; a mismatching ``devid`` in the message is recorded).

GIC operations run one at a time, in arrival order (QEMU holds the BQL): each is a core
(generator) stepped by :class:`gic.port.Driver`; every RAM access it yields becomes a ``Mem``
request to the guest (agent ``hw``, ``why`` = the QEMU function) and the core resumes on the
guest's ``Reply``. After each operation the host compares every CPU's IRQ line with what it
last sent and sends ``Irq(cpu, level)`` on a change (QEMU gicv3_cpuif_update ->
qemu_set_irq).

Generic timer (a documented simplification of QEMU's target/arm gt_recalc_timer): when
``machine.timer_period_ns`` > 0 and a CPU's CNTV_CTL_EL0.ENABLE is 1, the virtual timer
"fires" every period (ISTATUS = 1); its output, PPI ``machine.timer_virt_ppi`` (27), is
ISTATUS & ENABLE & !IMASK, a level. Writing CNTV_TVAL_EL0 or CNTV_CVAL_EL0 reprograms the
compare value and clears ISTATUS until the next period tick, as Linux's
arch_timer_set_next_event_virt does; CNTV_CTL_EL0 writes change ENABLE/IMASK (Linux's
arch_timer_handler_virt masks with IMASK). The tick does not depend on the value written.

Bad input never raises: malformed requests get ``Reply(status=-1, error=...)`` and a record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gic.gic import Gic, MsiOutcome
from gic.port import MemRead, MemWrite
from hypervisor.devices import DeviceWindow
from hypervisor.generic_timer import (
    CNTV_CTL_ENABLE,
    CNTV_CTL_IMASK,
    CNTV_CTL_ISTATUS,
    TIMER_REGS,
    VirtualTimer,
)
from hypervisor.gic_runner import CoreQueue, Job
from hypervisor.machine import VirtMachine
from transport.abi import (
    ARM_SMCCC_VERSION_FUNC_ID,
    PSCI_0_2_FN64_AFFINITY_INFO,
    PSCI_0_2_FN64_CPU_ON,
    PSCI_0_2_FN_AFFINITY_INFO,
    PSCI_0_2_FN_CPU_OFF,
    PSCI_0_2_FN_CPU_ON,
    PSCI_0_2_FN_CPU_SUSPEND,
    PSCI_0_2_FN_MIGRATE_INFO_TYPE,
    PSCI_0_2_FN_PSCI_VERSION,
    PSCI_0_2_FN_SYSTEM_OFF,
    PSCI_0_2_FN_SYSTEM_RESET,
    PSCI_1_0_FN_PSCI_FEATURES,
    PSCI_RET_ALREADY_ON,
    PSCI_RET_INVALID_PARAMS,
    PSCI_RET_NOT_SUPPORTED,
    PSCI_RET_SUCCESS,
)
from transport.messages import Envelope, Irq, Mem, Mmio, Msi, Reply, Smccc, Sysreg
from transport.port import HostPort

# PSCI ids QEMU knows that transport.abi does not list (include/uapi/linux/psci.h).
PSCI_0_2_FN64_CPU_SUSPEND = 0xC400_0001
PSCI_0_2_FN_MIGRATE = 0x8400_0005
PSCI_0_2_FN64_MIGRATE = 0xC400_0005
PSCI_0_2_64BIT = 0x4000_0000
#: QEMU_PSCI_VERSION_1_1: what PSCI_VERSION returns ("psci: PSCIv1.1 detected in firmware.").
PSCI_VERSION_1_1 = 0x0001_0001
#: PSCI_0_2_TOS_MP: MIGRATE_INFO_TYPE 2, "Trusted OS migration not required".
PSCI_0_2_TOS_MP = 2
PSCI_AFFINITY_ON = 0
PSCI_AFFINITY_OFF = 1

#: The functions PSCI_FEATURES reports as implemented (QEMU 7.2 arm_handle_psci_call,
#: case QEMU_PSCI_1_0_FN_PSCI_FEATURES; the PSCI 0.1 ids are not modelled). SMCCC_VERSION is
#: not among them, so Linux's psci_init_smccc prints "SMC Calling Convention v1.0".
PSCI_FEATURES_SUPPORTED = frozenset(
    {
        PSCI_0_2_FN_PSCI_VERSION,
        PSCI_0_2_FN_MIGRATE_INFO_TYPE,
        PSCI_0_2_FN_AFFINITY_INFO,
        PSCI_0_2_FN64_AFFINITY_INFO,
        PSCI_0_2_FN_SYSTEM_RESET,
        PSCI_0_2_FN_SYSTEM_OFF,
        PSCI_0_2_FN_CPU_ON,
        PSCI_0_2_FN64_CPU_ON,
        PSCI_0_2_FN_CPU_OFF,
        PSCI_0_2_FN_CPU_SUSPEND,
        PSCI_0_2_FN64_CPU_SUSPEND,
        PSCI_1_0_FN_PSCI_FEATURES,
    }
)


MMIO_SIZES = (1, 2, 4, 8)
U64 = (1 << 64) - 1
NS_PER_S = 1_000_000_000


def _u64(ret: int) -> int:
    """x0 as the guest sees it: QEMU stores an int32 return sign-extended into xregs[0]."""
    return ret & U64


def _is_int(v: object, bits: int = 64) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << bits


@dataclass(slots=True)
class HostCounters:
    """MSI accounting: every MSI received is set, coalesced or dropped."""

    msis_received: int = 0
    lpis_set: int = 0
    lpis_coalesced: int = 0
    lpis_dropped: int = 0
    bad_requests: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "msis_received": self.msis_received,
            "lpis_set": self.lpis_set,
            "lpis_coalesced": self.lpis_coalesced,
            "lpis_dropped": self.lpis_dropped,
            "bad_requests": self.bad_requests,
            "drop_reasons": dict(sorted(self.drop_reasons.items())),
        }


def make_gic(machine: VirtMachine) -> Any:
    """The physical GIC of ``machine``: gic.gic.Gic (QEMU virt's GICv3 + ITS at virt's addresses)."""
    from gic import gic as pgic

    fixed = (pgic.VIRT_GIC_DIST, pgic.VIRT_GIC_REDIST, pgic.VIRT_GIC_ITS)
    if (machine.gicd_base, machine.gicr_base, machine.its_base) != fixed:
        raise ValueError("gic.gic.Gic models QEMU virt's GIC addresses only; machine moved them")
    return pgic.Gic(
        machine.cpus, num_spis=machine.spis, lpi_id_bits=machine.lpi_id_bits, its=machine.its
    )


class BareMetalHost:
    """Component ``host``: the physical GIC, PSCI firmware and the timer of QEMU virt."""

    def __init__(
        self,
        machine: VirtMachine | None = None,
        *,
        gic: Any = None,
        devices: Sequence[DeviceWindow] = (),
        guest: str = "guest",
        name: str = "host",
        stop_on_system_off: bool = True,
    ) -> None:
        self.machine = machine or VirtMachine()
        self.name = name
        self.guest = guest
        self.gic = gic if gic is not None else make_gic(self.machine)
        self.windows = sorted(devices, key=lambda w: w.base)
        self._by_component = {w.component: w for w in self.windows}
        self.stop_on_system_off = stop_on_system_off
        self.power = [c == 0 for c in range(self.machine.cpus)]  # secondaries start powered off
        self.stats = HostCounters()
        self.system_state = "running"
        #: GIC operations, one at a time; their memory requests go to the guest's RAM.
        self._cores = CoreQueue(
            local=lambda _req: (False, None), remote=self._remote_mem, mem_error=self._mem_error
        )
        self._lines = [False] * self.machine.cpus
        self._forwarded: dict[int, Envelope] = {}
        self._timers = [VirtualTimer() for _ in range(self.machine.cpus)]
        self._port: HostPort | None = None

    # -- public ------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, Any]:
        """msis_received, lpis_set, lpis_coalesced, lpis_dropped (+ bad_requests, reasons)."""
        return self.stats.as_dict()

    @property
    def busy(self) -> bool:
        """A GIC operation is running or queued."""
        return self._cores.busy

    # -- component ---------------------------------------------------------------------------

    def start(self, port: HostPort) -> None:
        self._port = port

    def receive(self, env: Envelope, port: HostPort) -> None:
        self._port = port
        msg = env.msg
        try:
            if isinstance(msg, Reply):
                self._on_reply(env, port)
            elif isinstance(msg, Mmio):
                self._on_mmio(env, msg, port)
            elif isinstance(msg, Sysreg):
                self._on_sysreg(env, msg, port)
            elif isinstance(msg, Smccc):
                self._on_smccc(env, msg, port)
            elif isinstance(msg, Msi):
                self._on_msi(env, msg, port)
            else:
                self._refuse(env, port, f"host does not accept {msg.kind} messages")
        except Exception as exc:  # a model bug must not take the run down; say what happened
            self._refuse(env, port, f"host failed on {msg.kind}: {type(exc).__name__}: {exc}")

    def timer(self, token: Any, port: HostPort) -> None:
        self._port = port
        if isinstance(token, tuple) and token and token[0] == "cntv":
            _, cpu, generation = token
            t = self._timers[cpu]
            if generation != t.generation or not t.ctl & CNTV_CTL_ENABLE:
                return
            t.istatus = True
            self._timer_line(cpu, port)
            port.call_later(self.machine.timer_period_ns, ("cntv", cpu, generation))

    # -- requests ----------------------------------------------------------------------------

    def _refuse(self, env: Envelope, port: HostPort, error: str, kind: str = "bad-request") -> None:
        """A malformed request: a record, and Reply(status=-1) if it expects an answer."""
        self.stats.bad_requests += 1
        port.record(kind, {"src": env.src, "kind": env.msg.kind, "error": error}, why="host")
        if env.id:
            port.reply(env, Reply(status=-1, error=error), why="host")

    def _check_cpu(self, cpu: object) -> str | None:
        if not _is_int(cpu, 32) or cpu >= self.machine.cpus:  # type: ignore[operator]
            return f"cpu {cpu!r} out of range 0..{self.machine.cpus - 1}"
        return None

    def _frame(self, addr: int, size: int) -> str | None:
        """The GIC frame an access falls in entirely (machine.mmio_map), or None."""
        for f in self.machine.mmio_map():
            if f["base"] <= addr and addr + size <= f["base"] + f["size"]:
                return str(f["frame"])
        return None

    def _on_mmio(self, env: Envelope, msg: Mmio, port: HostPort) -> None:
        err = self._check_cpu(msg.cpu)
        if err is None and not _is_int(msg.addr):
            err = f"address {msg.addr!r} is not a 64-bit address"
        if err is None and (not _is_int(msg.size) or msg.size not in MMIO_SIZES):
            err = f"access size {msg.size!r} is not 1, 2, 4 or 8 bytes"
        if err is None and not _is_int(msg.value):
            err = f"value {msg.value!r} is not a 64-bit value"
        if err is None and not isinstance(msg.write, bool):
            err = f"write {msg.write!r} is not a bool"
        if err is not None:
            self._refuse(env, port, err)
            return
        for w in self.windows:
            if w.contains(msg.addr, msg.size):
                fid = port.send(w.component, msg, why="host_forward_mmio", request=True)
                self._forwarded[fid] = env
                return
        if self._frame(msg.addr, msg.size) is None:
            port.record(
                "bad-access",
                {
                    "cpu": msg.cpu,
                    "addr": msg.addr,
                    "size": msg.size,
                    "write": msg.write,
                    "reason": "no device",
                },
                why="unassigned_mem_accepts",  # QEMU: no MemoryRegion there
            )
            if env.id:
                rw = "unassigned_mem_write" if msg.write else "unassigned_mem_read"
                port.reply(env, Reply(value=0), why=rw)
            return
        mask = (1 << (8 * msg.size)) - 1
        value = msg.value & mask
        frame = self._frame(msg.addr, msg.size) or ""
        prefix = {"GICD": "gicv3_dist_", "GICR": "gicv3_redist_", "GITS": "gicv3_its_"}[frame]
        why = prefix + ("write" if msg.write else "read")

        def done(result: Any) -> None:
            if env.id:
                v = 0 if msg.write else (int(result or 0) & mask)
                port.reply(env, Reply(value=v), why=why)

        self._submit(
            Job(
                f"mmio {msg.addr:#x}",
                lambda: self.gic.mmio(msg.cpu, msg.addr, msg.size, msg.write, value),
                done,
                lambda e: self._refuse(env, port, e, kind="gic-error"),
            ),
            port,
        )

    def _on_sysreg(self, env: Envelope, msg: Sysreg, port: HostPort) -> None:
        err = self._check_cpu(msg.cpu)
        if err is None and not isinstance(msg.reg, str):
            err = f"register {msg.reg!r} is not a name"
        if err is None and not _is_int(msg.value):
            err = f"value {msg.value!r} is not a 64-bit value"
        if err is not None:
            self._refuse(env, port, err)
            return
        if msg.reg in TIMER_REGS:
            value = self._timer_sysreg(msg, port)
            if env.id:
                port.reply(env, Reply(value=value), why="gt_virt_access")
            return
        if not msg.reg.startswith("ICC_"):
            self._refuse(env, port, f"{msg.reg}: not a system register of this machine (UNDEFINED)")
            return

        def done(result: Any) -> None:
            if env.id:
                port.reply(
                    env, Reply(value=0 if msg.write else int(result or 0) & U64), why="gicv3_cpuif"
                )

        self._submit(
            Job(
                f"sysreg {msg.reg}",
                lambda: self.gic.sysreg(msg.cpu, msg.reg, msg.write, msg.value),
                done,
                lambda e: self._refuse(env, port, e, kind="bad-sysreg"),
            ),
            port,
        )

    def _on_msi(self, env: Envelope, msg: Msi, port: HostPort) -> None:
        win = self._by_component.get(env.src)
        devid, eventid = msg.devid, msg.eventid
        if win is not None:
            if devid != win.devid:
                port.record(
                    "msi-devid-mismatch",
                    {"src": env.src, "claimed": devid, "devid": win.devid},
                    why="gicv3_its_translation_write",
                )
            devid = win.devid
        if not _is_int(devid, 32) or not _is_int(eventid, 32):
            self._refuse(env, port, f"MSI devid {devid!r} / eventid {eventid!r} not 32-bit values")
            return
        self.stats.msis_received += 1
        self._submit(
            Job(
                f"msi {devid:#x}/{eventid}",
                lambda: self._msi_core(devid, eventid),
                lambda outcome: self._count_msi(devid, eventid, outcome, port),
                lambda e: self._count_msi(devid, eventid, ("dropped", e), port),
            ),
            port,
        )

    def _msi_core(self, devid: int, eventid: int) -> Any:
        """gicv3_its_translation_write: the ITS translates, the redistributor sets the bit.

        Returns the Gic's MsiOutcome (set / coalesced / dropped with the reason)."""
        if getattr(self.gic, "its", True) is None:
            return MsiOutcome("dropped", reason="no ITS on this machine (its=off)")
        return (yield from self.gic.msi(devid, eventid))

    def _count_msi(self, devid: int, eventid: int, outcome: Any, port: HostPort) -> None:
        """Count the outcome and trace it as an ``lpi`` event (the chain's physical step)."""
        if not isinstance(outcome, MsiOutcome):  # the core failed: ("dropped", error)
            outcome = MsiOutcome("dropped", reason=str(outcome[1]))
        if outcome.action == "set":
            self.stats.lpis_set += 1
        elif outcome.action == "coalesced":
            self.stats.lpis_coalesced += 1
        else:
            self.stats.lpis_dropped += 1
            reasons = self.stats.drop_reasons
            reasons[outcome.reason] = reasons.get(outcome.reason, 0) + 1
        port.record(
            "lpi",
            {
                "devid": devid,
                "eventid": eventid,
                "intid": outcome.intid,
                "processor": outcome.processor,
                "action": outcome.action,
                "reason": outcome.reason,
            },
            why="gicv3_its_translation_write",
        )

    # -- fault injection (cosim/faults.py) ---------------------------------------------------

    def fault_set_lpi(self, intid: int, cpu: int, done: Callable[[str], None]) -> None:
        """An injected LPI: the redistributor of ``cpu`` sets it pending (pending table write
        in guest RAM) as if an ITS had translated to it, queued like any GIC operation.
        ``done`` gets "set", "coalesced" or "ignored"."""
        port = self._port
        if port is None or not 0 <= cpu < self.machine.cpus:
            done("ignored")
            return

        def finish(changed: Any) -> None:
            done("ignored" if changed is None else "set" if changed else "coalesced")

        self._submit(
            Job(f"fault lpi {intid}", lambda: self.gic.redists[cpu].set_lpi(intid, True),
                finish, lambda e: done("ignored")),
            port,
        )  # fmt: skip

    # -- the GIC operation queue -------------------------------------------------------------

    def _submit(self, job: Job, port: HostPort) -> None:
        """Queue a GIC operation; once it ends (done or failed), what the GIC logged goes in
        the trace and the IRQ lines follow the new state."""

        def after(callback: Callable[[Any], None]) -> Callable[[Any], None]:
            def then(value: Any) -> None:
                callback(value)
                self._drain_gic_records(port)
                self._sync_lines(port)

            return then

        self._cores.submit(
            Job(job.what, job.start, after(job.done), after(job.fail))  # type: ignore[arg-type]
        )

    def _remote_mem(self, req: MemRead | MemWrite) -> int:
        """A core's memory access: a ``mem`` request of agent ``hw`` to the guest's RAM."""
        assert self._port is not None
        if isinstance(req, MemRead):
            mem = Mem(agent="hw", addr=req.addr, size=req.size, write=False)
        else:
            mem = Mem(
                agent="hw", addr=req.addr, size=len(req.data), write=True, data=bytes(req.data)
            )
        return self._port.send(self.guest, mem, why=req.why, request=True)

    def _mem_error(self, req: MemRead | MemWrite, error: str) -> None:
        assert self._port is not None
        self._port.record("mem-error", {"addr": req.addr, "error": error}, why=req.why)

    def _on_reply(self, env: Envelope, port: HostPort) -> None:
        reply = env.msg
        assert isinstance(reply, Reply)
        fwd = self._forwarded.pop(env.reply_to, None)
        if fwd is not None:
            if fwd.id:
                port.reply(fwd, reply, why="host_forward_mmio")
            return
        if not self._cores.on_reply(env.reply_to, reply):
            port.record("bad-reply", {"src": env.src, "reply_to": env.reply_to}, why="host")

    def _drain_gic_records(self, port: HostPort) -> None:
        """Put what the GIC logged (QEMU LOG_GUEST_ERROR, ITS command errors) in the trace."""
        take = getattr(self.gic, "take_errors", None)
        if take is None:
            return
        for rec in take():
            name = type(rec).__name__
            if name == "MsiDropped":
                continue  # recorded with the MSI's outcome
            kind = {"CommandError": "its-command-error", "BadAccess": "bad-access"}.get(
                name, "guest-error"
            )
            body = {
                k: getattr(rec, k) for k in getattr(rec, "__slots__", ()) if not k.startswith("_")
            }
            port.record(kind, body or {"text": str(rec)}, why="qemu_log_mask(LOG_GUEST_ERROR)")

    def _sync_lines(self, port: HostPort) -> None:
        """Send Irq for every CPU whose IRQ line changed (QEMU gicv3_cpuif_update)."""
        for cpu, level in enumerate(_irq_lines(self.gic, self.machine.cpus)):
            if level != self._lines[cpu]:
                self._lines[cpu] = level
                port.send(self.guest, Irq(cpu=cpu, level=level), why="gicv3_cpuif_update")

    # -- the generic timer -------------------------------------------------------------------

    def _counter(self, port: HostPort) -> int:
        return port.now * self.machine.timer_freq_hz // NS_PER_S

    def _timer_sysreg(self, msg: Sysreg, port: HostPort) -> int:
        """gt_cntvoff/gt_virt_ctl/cval/tval accessors, simplified (module docstring)."""
        t = self._timers[msg.cpu]
        reg = msg.reg
        if not msg.write:
            if reg == "CNTV_CTL_EL0":
                return t.ctl | (CNTV_CTL_ISTATUS if t.istatus and t.ctl & CNTV_CTL_ENABLE else 0)
            if reg == "CNTV_CVAL_EL0":
                return t.cval
            if reg == "CNTV_TVAL_EL0":
                return (t.cval - self._counter(port)) & 0xFFFF_FFFF
            if reg == "CNTVCT_EL0":
                return self._counter(port)
            return self.machine.timer_freq_hz  # CNTFRQ_EL0
        if reg == "CNTV_CTL_EL0":
            was = t.ctl & CNTV_CTL_ENABLE
            t.ctl = msg.value & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)
            if not t.ctl & CNTV_CTL_ENABLE:
                t.istatus = False
                t.generation += 1
            elif not was and self.machine.timer_period_ns > 0:
                t.generation += 1
                port.call_later(self.machine.timer_period_ns, ("cntv", msg.cpu, t.generation))
        elif reg == "CNTV_CVAL_EL0":
            t.cval = msg.value
            t.istatus = False
        elif reg == "CNTV_TVAL_EL0":
            tval = msg.value & 0xFFFF_FFFF
            tval -= (tval & 0x8000_0000) << 1  # signed 32-bit
            t.cval = (self._counter(port) + tval) & U64
            t.istatus = False
        else:
            port.record(
                "bad-sysreg",
                {"cpu": msg.cpu, "reg": reg, "reason": "read-only"},
                why="gt_virt_access",
            )
            return 0
        self._timer_line(msg.cpu, port)
        return 0

    def _timer_line(self, cpu: int, port: HostPort) -> None:
        level = self._timers[cpu].output
        ppi = self.machine.timer_virt_ppi

        def core() -> Any:
            _set_ppi(self.gic, cpu, ppi, level)
            return None
            yield  # pragma: no cover

        self._submit(
            Job(f"ppi {ppi} cpu{cpu}", core, lambda _r: None, lambda e: self._gic_error(e, port)),
            port,
        )

    def _gic_error(self, error: str, port: HostPort) -> None:
        port.record("gic-error", {"error": error}, why="host")

    # -- PSCI --------------------------------------------------------------------------------

    def _on_smccc(self, env: Envelope, msg: Smccc, port: HostPort) -> None:
        err = self._check_cpu(msg.cpu)
        if err is None and not _is_int(msg.fid):
            err = f"function id {msg.fid!r} is not a 64-bit value"
        if err is None and (not isinstance(msg.args, tuple | list) or len(msg.args) > 7):
            err = f"args {msg.args!r}: at most 7 registers x1..x7"
        if err is None and not all(_is_int(a) for a in msg.args):
            err = f"args {msg.args!r}: every register is a 64-bit value"
        if err is None and msg.conduit != self.machine.psci_conduit:
            err = (
                f"{str(msg.conduit).upper()} is not the PSCI conduit of this machine "
                f"({self.machine.psci_conduit}): UNDEFINED"
            )
        if err is None and not self.power[msg.cpu]:
            err = f"cpu {msg.cpu} is powered off and cannot call PSCI"
        if err is not None:
            self._refuse(env, port, err, kind="bad-smccc")
            return
        args = tuple(msg.args) + (0,) * (3 - len(msg.args))
        ret = self._psci(msg.cpu, msg.fid, args, port)
        if env.id:
            x0 = _u64(ret)
            port.reply(
                env,
                Reply(value=x0, regs=(x0, args[0], args[1], args[2])),
                why="arm_handle_psci_call",
            )

    def _psci(self, cpu: int, fid: int, args: tuple[int, ...], port: HostPort) -> int:
        """QEMU 7.2 target/arm/psci.c arm_handle_psci_call (AArch64 caller)."""
        if fid == PSCI_0_2_FN_PSCI_VERSION:
            return PSCI_VERSION_1_1
        if fid == PSCI_0_2_FN_MIGRATE_INFO_TYPE:
            return PSCI_0_2_TOS_MP
        if fid in (PSCI_0_2_FN_AFFINITY_INFO, PSCI_0_2_FN64_AFFINITY_INFO):
            if args[1] != 0:
                return PSCI_AFFINITY_ON  # "Everything above affinity level 0 is always on."
            target = self.machine.cpu_of_mpidr(args[0])
            if target is None:
                return PSCI_RET_INVALID_PARAMS
            return PSCI_AFFINITY_ON if self.power[target] else PSCI_AFFINITY_OFF
        if fid in (PSCI_0_2_FN_CPU_ON, PSCI_0_2_FN64_CPU_ON):
            return self._cpu_on(cpu, args, port)
        if fid == PSCI_0_2_FN_CPU_OFF:
            self.power[cpu] = False
            port.record("psci", {"cpu": cpu, "call": "CPU_OFF"}, why="arm_set_cpu_off")
            return PSCI_RET_SUCCESS
        if fid in (PSCI_0_2_FN_CPU_SUSPEND, PSCI_0_2_FN64_CPU_SUSPEND):
            if args[0] & 0xFFFE_0000:
                return PSCI_RET_INVALID_PARAMS  # "Affinity levels are not supported in QEMU"
            return PSCI_RET_SUCCESS  # powerdown not supported: QEMU goes into WFI
        if fid in (PSCI_0_2_FN_SYSTEM_OFF, PSCI_0_2_FN_SYSTEM_RESET):
            what = "SYSTEM_OFF" if fid == PSCI_0_2_FN_SYSTEM_OFF else "SYSTEM_RESET"
            self.system_state = what.lower()
            self.power = [False] * self.machine.cpus
            port.record("psci", {"cpu": cpu, "call": what}, why="qemu_system_shutdown_request")
            if self.stop_on_system_off:
                port.stop(f"PSCI {what} from cpu {cpu}")
            return PSCI_RET_SUCCESS
        if fid == PSCI_1_0_FN_PSCI_FEATURES:
            return (
                PSCI_RET_SUCCESS if args[0] in PSCI_FEATURES_SUPPORTED else PSCI_RET_NOT_SUPPORTED
            )
        if fid == ARM_SMCCC_VERSION_FUNC_ID:
            # QEMU 7.2 does not implement SMCCC_VERSION (the HVC would UNDEF); NOT_SUPPORTED is
            # what an SMCCC v1.0 implementation answers, so the caller concludes v1.0.
            return PSCI_RET_NOT_SUPPORTED
        port.record(
            "psci",
            {"cpu": cpu, "call": f"{fid:#x}", "ret": "NOT_SUPPORTED"},
            why="arm_handle_psci_call",
        )
        return PSCI_RET_NOT_SUPPORTED

    def _cpu_on(self, cpu: int, args: tuple[int, ...], port: HostPort) -> int:
        """arm_set_cpu_on: target by exact MPIDR affinity; ALREADY_ON if it runs."""
        mpidr, entry, context_id = args[0], args[1], args[2]
        target = self.machine.cpu_of_mpidr(mpidr)
        if target is None:
            ret = PSCI_RET_INVALID_PARAMS
        elif self.power[target]:
            ret = PSCI_RET_ALREADY_ON
        else:
            self.power[target] = True
            ret = PSCI_RET_SUCCESS
        port.record(
            "psci",
            {"cpu": cpu, "call": "CPU_ON", "target": target, "mpidr": mpidr, "entry": entry,
             "context_id": context_id, "ret": ret},
            why="arm_set_cpu_on",
        )  # fmt: skip
        return ret


# -- adapters to gic.gic.Gic ------------------------------------------------------------------


def _irq_lines(gic: Any, cpus: int) -> list[bool]:
    if type(gic) is Gic:  # the model: irq_lines() is False but for the CPUs raised_lines() has
        levels = [False] * cpus
        for c in gic.raised_lines():
            if c < cpus:
                levels[c] = True
        return levels
    lines = gic.irq_lines()
    if isinstance(lines, dict):
        return [bool(lines.get(c, False)) for c in range(cpus)]
    return [bool(x) for x in list(lines)[:cpus]]


def _set_ppi(gic: Any, cpu: int, intid: int, level: bool) -> None:
    gic.set_ppi(cpu, intid, level)


__all__ = ["BareMetalHost", "HostCounters", "make_gic"]
