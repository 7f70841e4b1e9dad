"""Xen 4.17 on QEMU virt as the component ``xen``: physical CPUs, dom0's vCPUs, the exit/entry
protocol, hypercalls and PSCI, the physical GIC with the host ITS and LPIs, and injection.

The machine (hypervisor/machine.py ``VirtMachine``) gives the physical CPUs and the physical
GICv3 (``gic.gic.Gic``), which Xen owns: hypervisor/host_gic.py brings it up at :meth:`start`
and its memory (LPI tables, ITS tables, command queue, ITTs) is Xen's heap, answered locally
(hypervisor/host_its.py ``XenHeap``), never a guest's. dom0's vCPU *n* runs on pCPU *n*
(``dom0_vcpus_pin``; ``vcpus`` may not exceed the pCPUs). dom0's vGIC is hypervisor/vgic.py
(``Vgic``), its GICD/GICR/GITS frames hypervisor/vgic_v3.py and hypervisor/vits.py; the vITS
calls back into :class:`~hypervisor.host_its.HostIts` for the host mapping.

Protocol with dom0 (transport/messages.py):

* A vCPU sends ``Exit(vcpu, reason, ..., ctx)`` as a request. Xen runs ``vgic_sync_from_lrs``
  on the exit's context, handles the exit (traps.c ``do_trap_guest_sync`` style), runs
  ``vgic_sync_to_lrs`` and answers ``Entry(vcpu, regs, value, ctx)`` (reply_to = the exit).
  ``Entry.value`` is a status: :data:`ENTRY_OK` (0), :data:`ENTRY_UNDEF` (-1, Xen injected an
  undefined-instruction exception) or :data:`ENTRY_DABT` (-2, Xen injected a data abort).
  ``Entry.regs`` carries results as 64-bit register values: ``hvc``: x0..x7 after the call
  (x0 the sign-extended result); ``dabt`` read: ``(data,)``; ``sysreg`` read: ``(value,)``.
* ``hvc``: imm 0xEA1 is a hypercall (hypervisor/hypercalls.py), imm 0 SMCCC/PSCI
  (hypervisor/vpsci.py), any other imm is ``Invalid HVC imm`` and an undefined instruction.
  PSCI CPU_ON marks the target up and answers PSCI_SUCCESS; the guest starts the target at
  the entry point it passed. CPU_OFF: no Entry (the vCPU is down). SYSTEM_OFF/RESET and
  SCHEDOP_shutdown: ``hwdom_shutdown``'s line, no Entry, the run stops.
* ``dabt``: the vGIC frames; an address nothing handles gets a data abort (for dom0 real Xen
  would first try ``try_map_mmio`` for a device region; not modelled).
* ``sysreg``: ICC_SGI1R_EL1 writes are vGIC SGIs; CNTV_CTL/CVAL/TVAL/CNTVCT/CNTFRQ are the
  vCPU's virtual timer (they do not trap on hardware; the co-simulation reports them so that
  the timer can fire: see below); everything else is an undefined instruction as in
  vsysreg.c ``do_sysreg``'s default.
* ``wfi``: ``vcpu_block_unless_event_pending``; the Entry goes out when ``vcpu_kick`` wakes
  the vCPU. ``irq``: the pCPU took a physical interrupt (Xen asked with ``Kick``) or the
  maintenance interrupt (an ``irq`` exit with no physical interrupt pending: the LRs live in
  the guest model, so the underflow interrupt arrives this way; ``maintenance_interrupt``
  does nothing but the exit's sync).
* ``Kick(vcpu)`` (``vcpu_kick``'s event-check SGI) asks a running vCPU to exit; a kick that
  crosses an exit is harmless; Xen sends at most one until the next exit.

Physical interrupts: every host LPI targets collection 0, so pCPU 0. When a pCPU's IRQ line
is high Xen takes the interrupt on that pCPU: if its vCPU runs in the guest, Kick it and take
the interrupt at the ``irq`` (or any) exit; if the pCPU is in Xen (the vCPU's exit is being
handled) or idle, take it at once. ``gic_interrupt`` reads ICC_IAR1_EL1; LPIs go to
``gicv3_do_LPI`` (EOI at once, host LPI map, silent drop when unmapped, else
``vgic_vcpu_inject_lpi``); the virtual timer PPI 27 to ``vtimer_interrupt``.

Virtual timer (a documented simplification of the generic timer, as hypervisor/baremetal.py):
with ``machine.timer_period_ns`` > 0 an enabled CNTV fires every period. While the vCPU is
loaded on its pCPU the output drives the physical PPI 27 and Xen's ``vtimer_interrupt`` masks
the timer (CNTV_CTL.IMASK) and injects vIRQ 27 with ``vgic_inject_irq``; while the vCPU is
blocked Xen's software timer does the same (``virt_timer_expired``). Xen 4.17 links no host
IRQ to vIRQ 27, so its list register has HW = 0 (time.c; vgic.py documents it).

Traces: ``xen-console`` (``{"line": "(XEN) ..."}``), ``inject`` (vcpu, virq, devid, eventid,
host_lpi; why vgic_inject_irq), ``lr`` (vcpu, lr, value, virq; why gic_set_lr), ``Kick``
messages (why vcpu_kick), ``lpi-dropped``, ``psci``, ``hypercall``, ``undef``, ``dabt``,
``block``/``unblock``, ``lr-overflow``, ``maintenance``, ``xen_crash``;
``hostmem`` for every access of the physical GIC to Xen's heap only with ``trace_hostmem``
(otherwise counted). Where real Xen would BUG/ASSERT, :attr:`Xen.crash` holds a typed
:class:`XenCrashOutcome` naming the site and the run stops; nothing raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gic.port import MemRead, MemWrite
from hypervisor.firmware.virt import (
    XEN_DOM0_BANKS,
    XEN_EVTCHN_IRQ,
    BootBlobs,
    xen_acpi_dom0_blobs,
    xen_dt_dom0_dtb,
    xen_hwdom_rdist_regions,
    xen_place_modules,
)
from hypervisor.generic_timer import (
    CNTV_CTL_ENABLE,
    CNTV_CTL_IMASK,
    CNTV_CTL_ISTATUS,
    TIMER_REGS,
    VirtualTimer,
)
from hypervisor.gic_runner import CoreQueue, Job
from hypervisor.host_gic import HostGic
from hypervisor.host_its import INVALID_LPI, HostIts, XenHeap
from hypervisor.hypercalls import HypercallResult, Hypercalls, hwdom_shutdown_line
from hypervisor.machine import VirtMachine
from hypervisor.vgic import (
    GICH_HCR_UIE,
    ICH_LR_VIRTUAL_MASK,
    Injection,
    Vgic,
    XenCrash,
)
from hypervisor.vgic_v3 import HostItsInfo, VgicV3
from hypervisor.vpsci import SmcccResult, vsmccc_handle_call
from hypervisor.xen_log import XenLog, XenLogLine
from transport.abi import ENTRY_DABT, ENTRY_OK, ENTRY_UNDEF, SMCCC_IMM, XEN_HYPERCALL_TAG, u64
from transport.messages import Entry, Envelope, Exit, GicContext, Kick, Mem, Msi, Reply
from transport.port import HostPort

U64 = (1 << 64) - 1
LPI_OFFSET = 8192
NS_PER_S = 1_000_000_000
MMIO_SIZES = (1, 2, 4, 8)
DOM0_BOOTS = ("acpi", "dt")

VCPU_DOWN = "down"
VCPU_RUNNING = "running"  # in guest mode (Xen waits for an exit)
VCPU_IN_XEN = "in_xen"  # an exit is being handled: its LRs are live in Xen
VCPU_BLOCKED = "blocked"  # WFI / SCHEDOP_block / CPU_SUSPEND, waiting for vcpu_kick


@dataclass(frozen=True, slots=True)
class XenCrashOutcome:
    """The run ended where real Xen would have crashed (or hung): the site and why."""

    site: str
    reason: str
    t: int = 0
    kind: str = "crash"

    def __str__(self) -> str:
        return f"xen_crash at {self.site}: {self.reason}"


@dataclass(slots=True)
class XenCounters:
    """Interrupt accounting and exit statistics."""

    msis: int = 0
    msis_dropped: int = 0
    lpis_coalesced_physical: int = 0
    lpis_injected: int = 0
    lpis_dropped_unmapped: int = 0
    lpis_coalesced: int = 0
    lpis_dropped_vgic: int = 0
    kicks: int = 0
    lr_overflows: int = 0
    maintenance_irqs: int = 0
    vtimer_irqs: int = 0
    evtchn_injections: int = 0
    hostmem_reads: int = 0
    hostmem_writes: int = 0
    bad_requests: int = 0
    exits: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "msis": self.msis,
            "msis_dropped": self.msis_dropped,
            "lpis_coalesced_physical": self.lpis_coalesced_physical,
            "lpis_injected": self.lpis_injected,
            "lpis_dropped_unmapped": self.lpis_dropped_unmapped,
            "lpis_coalesced": self.lpis_coalesced,
            "lpis_dropped_vgic": self.lpis_dropped_vgic,
            "kicks": self.kicks,
            "lr_overflows": self.lr_overflows,
            "maintenance_irqs": self.maintenance_irqs,
            "vtimer_irqs": self.vtimer_irqs,
            "evtchn_injections": self.evtchn_injections,
            "hostmem_reads": self.hostmem_reads,
            "hostmem_writes": self.hostmem_writes,
            "bad_requests": self.bad_requests,
            "exits": dict(sorted(self.exits.items())),
        }


@dataclass(slots=True)
class VcpuCtl:
    """``struct vcpu`` as far as scheduling goes: state, pCPU, the exit awaiting its Entry."""

    id: int
    pcpu: int
    state: str
    exit_env: Envelope | None = None
    kick_pending: bool = False
    timer: VirtualTimer = field(default_factory=VirtualTimer)
    entry: int = 0
    context_id: int = 0
    resume_regs: tuple[int, ...] = ()


class Xen:
    """Component ``xen``: Xen 4.17 with dom0 on a QEMU virt machine."""

    def __init__(
        self,
        machine: VirtMachine | None = None,
        *,
        vcpus: int | None = None,
        has_its: bool = True,
        dom0_boot: str = "acpi",
        efi_memreserve: bool = False,
        bootargs: str | None = None,
        guest: str = "dom0",
        name: str = "xen",
        gic: Any = None,
        stop_on_shutdown: bool = True,
        trace_hostmem: bool = False,
        evtchn_irq: int = XEN_EVTCHN_IRQ,
    ) -> None:
        self.machine = machine or VirtMachine()
        m = self.machine
        nv = m.cpus if vcpus is None else vcpus
        if not isinstance(nv, int) or isinstance(nv, bool) or not 1 <= nv <= m.cpus:
            raise ValueError(
                f"guest.vcpus = {nv!r}: dom0's vCPUs are pinned 1:1 to pCPUs, so 1..{m.cpus}"
            )
        if dom0_boot not in DOM0_BOOTS:
            raise ValueError(f"host.dom0_boot = {dom0_boot!r}: must be one of {DOM0_BOOTS}")
        if not isinstance(has_its, bool):
            raise ValueError(f"host.has_its = {has_its!r}: must be true or false")
        self.name = name
        self.guest = guest
        self.nr_vcpus = nv
        self.has_its = has_its and m.its
        self.dom0_boot = dom0_boot
        self.stop_on_shutdown = stop_on_shutdown
        self.trace_hostmem = trace_hostmem
        self.evtchn_irq = evtchn_irq
        self.stats = XenCounters()
        self.crash: XenCrashOutcome | None = None
        self.shutdown = ""
        self.console: list[str] = []
        self.heap = XenHeap()
        self.heap.on_access = self._hostmem
        if gic is None:
            from hypervisor.baremetal import make_gic

            gic = make_gic(m)
        self.gic = gic
        self._boot_lines: list[str] = []
        self._port: HostPort | None = None
        self.xen_log = XenLog(self._xen_log_line)
        # start_xen: the timer, gicv3_init (boot lines are kept until start() has a port).
        self._log(
            f"Generic Timer IRQ: phys={m.timer_phys_ppi} hyp={m.timer_hyp_ppi} "
            f"virt={m.timer_virt_ppi} Freq: {m.timer_freq_hz // 1000} KHz"
        )
        self.host_gic = HostGic(gic, m, has_its=self.has_its, heap=self.heap, log=self._log)
        self.boot_error = self.host_gic.gicv3_init()
        for cpu in range(m.cpus):
            self.host_gic.enable_ppi(cpu, m.timer_virt_ppi)
            self.host_gic.enable_ppi(cpu, m.maintenance_ppi)
        self.host_its: HostIts | None = self.host_gic.its
        self.dom0_banks = tuple(XEN_DOM0_BANKS)
        # construct_dom0: the domain's vGICv3 (+ one vITS per host ITS with HAS_ITS).
        its = self.host_its
        vits = [HostItsInfo(its.addr, its.devid_bits, its.evid_bits)] if its is not None else []
        self.vgic_v3 = VgicV3(
            0,
            vcpus=nv,
            has_its=self.has_its,
            nr_spis=m.spis,
            intid_bits=m.lpi_id_bits,
            vits_bases=vits,
            redist_regions=xen_hwdom_rdist_regions(m.cpus, nv),
            lr_count=m.list_registers,
            log=self._xen_log_line,
            dist_base=m.gicd_base,
            host=its,
        )
        self.vgic: Vgic = self.vgic_v3.vgic
        self.vcpus = [VcpuCtl(i, i, VCPU_RUNNING if i == 0 else VCPU_DOWN) for i in range(nv)]
        self.hypercalls = Hypercalls(
            max_vcpus=nv, is_ram=self.is_ram, services=self, evtchn_irq=evtchn_irq
        )
        self._log("*** LOADING DOMAIN 0 ***")
        self._log(f"Allocating PPI {evtchn_irq} for event channel interrupt")
        default_args = "console=hvc0" if dom0_boot == "acpi" else "console=hvc0 earlycon=xen"
        args = bootargs if bootargs is not None else default_args
        self.boot_blobs: BootBlobs = self._build_blobs(args, efi_memreserve)
        self._current: int | None = None
        self._handling_irq: set[int] = set()
        self._queue = CoreQueue(local=self._local_mem, remote=self._remote_mem,
                                mem_error=self._mem_error)  # fmt: skip

    # -- public --------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, Any]:
        d = self.stats.as_dict()
        # vLPIs merged into one still waiting, counted by the vGIC where it loses them.
        d["lpis_coalesced"] = self.vgic.lpi_merges
        return d

    @property
    def max_vcpus(self) -> int:
        """vpsci.VcpuTable."""
        return self.nr_vcpus

    def is_down(self, vcpu: int) -> bool:
        """vpsci.VcpuTable: ``_VPF_down``."""
        return self.vcpus[vcpu].state == VCPU_DOWN

    def is_ram(self, addr: int, size: int) -> bool:
        """dom0's p2m RAM: the banks Xen allocated (the 1:1 mappings of the real log)."""
        if not isinstance(addr, int) or not isinstance(size, int) or addr < 0 or size < 0:
            return False
        return any(b <= addr and addr + size <= b + n for b, n in self.dom0_banks)

    # -- boot ----------------------------------------------------------------------------------

    def _build_blobs(self, bootargs: str, efi_memreserve: bool) -> BootBlobs:
        """construct_dom0's device tree (DT dom0) or create_acpi_dtb + prepare_acpi (ACPI)."""
        m = self.machine
        if self.dom0_boot == "acpi":
            return xen_acpi_dom0_blobs(
                self.nr_vcpus, self.has_its, efi_memreserve, bootargs=bootargs, pcpus=m.cpus
            )
        dtb = xen_dt_dom0_dtb(self.nr_vcpus, self.has_its, bootargs=bootargs, pcpus=m.cpus,
                              evtchn_irq=self.evtchn_irq)  # fmt: skip
        dtb_addr, _ = xen_place_modules(XEN_DOM0_BANKS[0], len(dtb), 0)
        return BootBlobs(dtb, addresses={"dtb": dtb_addr})

    def start(self, port: HostPort) -> None:
        """Flush the boot console lines; a failed GIC bring-up is Xen's panic."""
        self._port = port
        for line in self._boot_lines:
            self._record_line(line)
        self._boot_lines.clear()
        if self.boot_error:
            self._crash("gicv3_init", f"GIC initialisation failed: {self.boot_error}")

    # -- component -----------------------------------------------------------------------------

    def timer(self, token: Any, port: HostPort) -> None:
        self._port = port
        if self.crash is not None or self.shutdown:
            return
        if isinstance(token, tuple) and len(token) == 3 and token[0] == "cntv":
            saved = self._save_vgic()
            try:
                self._timer_tick(token[1], token[2])
            finally:
                self._restore_vgic(saved)

    def _save_vgic(self) -> tuple[Any, ...] | None:
        """While a core waits for guest memory, anything else Xen does nests in it (another
        pCPU, or an interrupt taken in the middle): keep the core's vGIC bookkeeping (the
        current vCPU and the injections/actions it has collected) across it."""
        if not self._queue.waiting_for:
            return None
        vg = self.vgic
        return (self._current, vg._cur, list(vg._injections), list(vg._actions))

    def _restore_vgic(self, saved: tuple[Any, ...] | None) -> None:
        if saved is None:
            return
        vg = self.vgic
        self._current, vg._cur, vg._injections, vg._actions = saved

    def receive(self, env: Envelope, port: HostPort) -> None:
        self._port = port
        msg = env.msg
        if self.crash is not None or self.shutdown:
            if isinstance(msg, Mem | Exit) and env.id:
                port.reply(env, Reply(status=-1, error="Xen is down"), why="xen")
            return
        if isinstance(msg, Reply):
            if not self._queue.on_reply(env.reply_to, msg):
                port.record("bad-reply", {"src": env.src, "reply_to": env.reply_to}, why="xen")
            return
        saved = self._save_vgic()
        try:
            if isinstance(msg, Exit):
                self._on_exit(env, msg)
            elif isinstance(msg, Msi):
                self._on_msi(env, msg)
            else:
                self._refuse(env, f"xen does not accept {msg.kind} messages")
        except Exception as exc:  # a model bug must not take the run down: say what happened
            self._refuse(env, f"xen failed on {msg.kind}: {type(exc).__name__}: {exc}")
        finally:
            self._restore_vgic(saved)

    def _refuse(self, env: Envelope, error: str) -> None:
        self.stats.bad_requests += 1
        assert self._port is not None
        self._port.record("bad-request", {"src": env.src, "kind": env.msg.kind, "error": error},
                          why="xen")  # fmt: skip
        if env.id:
            self._port.reply(env, Reply(status=-1, error=error), why="xen")

    # -- logging and records -------------------------------------------------------------------

    def _log(self, line: str) -> None:
        """printk: one ``(XEN) `` console line."""
        if self._port is None:
            self._boot_lines.append(line)
            return
        self._record_line(line)

    def _record_line(self, line: str) -> None:
        text = f"(XEN) {line}"
        self.console.append(text)
        assert self._port is not None
        self._port.record("xen-console", {"line": text}, why="printk")

    def _xen_log_line(self, line: XenLogLine) -> None:
        self._log(line.text)

    def _gprintk(self, vcpu: int | None, text: str) -> None:
        name = f"d0v{vcpu}" if vcpu is not None else "d[IDLE]v0"
        self._log(f"{name} {text}")

    def record(self, kind: str, body: dict[str, Any], why: str = "") -> None:
        """hypercalls.XenServices.record."""
        if self._port is not None:
            self._port.record(kind, body, why=why)

    def log(self, line: str) -> None:
        """hypercalls.XenServices.log."""
        self._log(line)

    def console_write(self, domid: int, text: str) -> None:
        """hypercalls.XenServices.console_write: the hardware domain's text, unprefixed."""
        self.console.append(text)
        if self._port is not None:
            self._port.record("xen-console", {"line": text, "domid": domid},
                              why="guest_console_write")  # fmt: skip

    def _hostmem(self, req: MemRead | MemWrite) -> None:
        if isinstance(req, MemRead):
            self.stats.hostmem_reads += 1
        else:
            self.stats.hostmem_writes += 1
        if self.trace_hostmem and self._port is not None:
            size = req.size if isinstance(req, MemRead) else len(req.data)
            self._port.record(
                "hostmem",
                {"addr": req.addr, "size": size, "write": isinstance(req, MemWrite)},
                why=req.why,
            )

    def _crash(self, site: str, reason: str, kind: str = "crash") -> None:
        if self.crash is not None:
            return
        now = self._port.now if self._port is not None else 0
        self.crash = XenCrashOutcome(site, reason, now, kind)
        if self._port is not None:
            self._port.record("xen_crash", {"site": site, "reason": reason, "kind": kind},
                              why=site)  # fmt: skip
            self._port.stop(str(self.crash))

    def _check_vgic_crash(self) -> bool:
        c = self.vgic.crashed
        if c is not None and self.crash is None:
            self._crash(c.site, c.reason, c.kind)
        return self.crash is not None

    # -- memory for cores ----------------------------------------------------------------------

    def _local_mem(self, req: Any) -> tuple[bool, Any]:
        """The physical GIC's accesses to Xen's heap are answered here, at once."""
        if isinstance(req, (MemRead, MemWrite)):
            size = req.size if isinstance(req, MemRead) else len(req.data)
            if self.heap.contains(req.addr, size):
                return True, self.heap.answer(req)
        return False, None

    def _remote_mem(self, req: MemRead | MemWrite) -> int:
        """Xen's software reading or writing guest RAM: a ``mem`` request, agent xen."""
        assert self._port is not None
        if isinstance(req, MemRead):
            mem = Mem(agent="xen", addr=req.addr, size=req.size, write=False)
        else:
            mem = Mem(agent="xen", addr=req.addr, size=len(req.data), write=True,
                      data=bytes(req.data))  # fmt: skip
        return self._port.send(self.guest, mem, why=req.why, request=True)

    def _mem_error(self, req: MemRead | MemWrite, error: str) -> None:
        if self._port is not None:
            self._port.record("mem-error", {"addr": req.addr, "error": error}, why=req.why)

    # -- physical interrupts -------------------------------------------------------------------

    def _after_gic_op(self) -> None:
        """Look at every pCPU's IRQ line (gicv3 CPU interface output) and take interrupts."""
        for cpu in self.gic.raised_lines():  # ascending, as of now (before any is taken)
            self._irq_line_high(cpu)

    def _irq_line_high(self, cpu: int) -> None:
        """pCPU ``cpu`` has its IRQ line up: take it now if in Xen or idle, else kick."""
        if cpu in self._handling_irq or self.crash is not None:
            return
        v = self.vcpus[cpu] if cpu < self.nr_vcpus else None
        if v is not None and v.state == VCPU_RUNNING:
            self._send_kick(v)
            return
        current = cpu if v is not None and v.state == VCPU_IN_XEN else None
        self.gic_interrupt(cpu, current)

    def gic_interrupt(self, cpu: int, current: int | None) -> None:
        """gic.c gic_interrupt: acknowledge and dispatch until the IAR reads spurious."""
        self._handling_irq.add(cpu)
        try:
            for _ in range(4096):  # a storm bound; each read acknowledges one interrupt
                irq = self.host_gic.gicv3_read_irq(cpu)
                if irq >= LPI_OFFSET:
                    self.gicv3_do_LPI(cpu, irq, current)
                elif 16 <= irq < 1020:
                    self.do_IRQ(cpu, irq, current)
                elif irq < 16:
                    self.host_gic.gicv3_eoi_irq(cpu, irq)  # do_sgi
                    self.host_gic.gicv3_dir_irq(cpu, irq)
                else:
                    break
                if self._check_vgic_crash():
                    break
        finally:
            self._handling_irq.discard(cpu)

    def do_IRQ(self, cpu: int, irq: int, current: int | None) -> None:
        """irq.c do_IRQ for the interrupts Xen handles itself; EOI + DIR (gicv3_host_irq_end)."""
        m = self.machine
        if irq == m.timer_virt_ppi:
            self.vtimer_interrupt(cpu, current)
        elif irq == m.maintenance_ppi:
            self.stats.maintenance_irqs += 1
        else:
            self.record("unexpected-irq", {"pcpu": cpu, "irq": irq}, why="do_IRQ")
        self.host_gic.gicv3_eoi_irq(cpu, irq)
        self.host_gic.gicv3_dir_irq(cpu, irq)

    def gicv3_do_LPI(self, cpu: int, lpi: int, current: int | None) -> None:
        """gic-v3-lpi.c gicv3_do_LPI: EOI at once, look up the host LPI, inject or drop."""
        self.host_gic.gicv3_eoi_irq(cpu, lpi)
        its = self.host_its
        hlpi = its.gic_get_host_lpi(lpi) if its is not None else None
        devid, eventid = self._event_of(lpi)
        if hlpi is None or hlpi.virt_lpi == INVALID_LPI or hlpi.dom_id != 0:
            self.stats.lpis_dropped_unmapped += 1
            self.record("lpi-dropped", {"pcpu": cpu, "host_lpi": lpi, "devid": devid,
                                        "eventid": eventid}, why="gicv3_do_LPI")  # fmt: skip
            return
        virq = hlpi.virt_lpi
        merges = self.vgic.lpi_merges
        res = self.vgic.inject_lpi(virq, current=current)
        coalesced = self.vgic.lpi_merges > merges
        if isinstance(res, XenCrash):
            self._check_vgic_crash()
            return
        if res.outcome.startswith("dropped"):
            self.stats.lpis_dropped_vgic += 1
            self.record("lpi-dropped", {"pcpu": cpu, "host_lpi": lpi, "virq": virq,
                                        "reason": res.outcome}, why="vgic_vcpu_inject_lpi")  # fmt: skip
            return
        self.stats.lpis_injected += 1
        self.record(
            "inject",
            {"vcpu": res.vcpu, "virq": virq, "devid": devid, "eventid": eventid,
             "host_lpi": lpi, "outcome": res.outcome, "coalesced": coalesced,
             "via": "gicv3_do_LPI"},
            why="vgic_inject_irq",
        )  # fmt: skip
        self._after_injection(res)

    def _event_of(self, lpi: int) -> tuple[int | None, int | None]:
        its = self.host_its
        if its is None:
            return None, None
        for dev in its.devices.values():
            for b, first in enumerate(dev.host_lpi_blocks):
                if first <= lpi < first + 32:
                    return dev.guest_devid, b * 32 + lpi - first
        return None, None

    def _after_injection(self, inj: Injection) -> None:
        """Trace a direct LR write and do vcpu_kick."""
        if inj.vcpu is None:
            return
        if inj.outcome == "lr" and inj.current and inj.lr is not None:
            value = self.vgic.vcpus[inj.vcpu].lrs[inj.lr]
            self.record("lr", {"vcpu": inj.vcpu, "lr": inj.lr, "value": value,
                               "virq": value & ICH_LR_VIRTUAL_MASK}, why="gic_set_lr")  # fmt: skip
        if inj.kick:
            self.vcpu_kick(inj.vcpu)

    def _after_injections(self, injections: Any, via: str = "") -> None:
        """Injections an emulated access caused (vITS INT/INV, ISPENDR, SGIs): trace, kick."""
        for inj in injections or ():
            if isinstance(inj, Injection):
                self.record("inject", {"vcpu": inj.vcpu, "virq": inj.virq, "devid": None,
                                       "eventid": None, "host_lpi": None,
                                       "outcome": inj.outcome, "via": via},
                            why="vgic_inject_irq")  # fmt: skip
                self._after_injection(inj)

    def vcpu_kick(self, vcpu: int) -> None:
        """vcpu_kick: unblock; if the vCPU runs in guest mode, the event-check SGI (Kick)."""
        v = self.vcpus[vcpu]
        if v.state == VCPU_BLOCKED:
            self.record("unblock", {"vcpu": v.id}, why="vcpu_unblock")
            self._enter_guest(v, ENTRY_OK, v.resume_regs)
        elif v.state == VCPU_RUNNING:
            self._send_kick(v)

    def _send_kick(self, v: VcpuCtl) -> None:
        if v.kick_pending:
            return
        v.kick_pending = True
        self.stats.kicks += 1
        assert self._port is not None
        self._port.send(self.guest, Kick(vcpu=v.id), why="vcpu_kick")

    def inject_evtchn(self, vcpu: int) -> None:
        """arch_evtchn_inject: vgic_inject_irq of the event-channel PPI."""
        if not 0 <= vcpu < self.nr_vcpus:
            return
        self._inject_ppi(vcpu, self.evtchn_irq, "arch_evtchn_inject")
        self.stats.evtchn_injections += 1

    def _inject_ppi(self, vcpu: int, virq: int, why: str) -> None:
        res = self.vgic.inject_irq(vcpu, virq, current=self._current)
        if isinstance(res, XenCrash):
            self._check_vgic_crash()
            return
        self.record("inject", {"vcpu": vcpu, "virq": virq, "devid": None, "eventid": None,
                               "host_lpi": None, "outcome": res.outcome, "via": why},
                    why="vgic_inject_irq")  # fmt: skip
        self._after_injection(res)

    # -- fault injection (cosim/faults.py) ---------------------------------------------------

    def fault_set_lpi(self, intid: int, pcpu: int, done: Callable[[str], None]) -> None:
        """An injected physical LPI: the redistributor of ``pcpu`` sets it pending as if an ITS
        had translated to it; Xen then takes it like any other (gicv3_do_LPI). ``done`` gets
        "set", "coalesced" or "ignored" (EnableLPIs 0 or INTID beyond IDbits)."""
        if self.crash is not None or self.shutdown or not 0 <= pcpu < self.machine.cpus:
            done("ignored")
            return
        changed = self.host_gic.run(self.gic.redists[pcpu].set_lpi(intid, True))
        done("ignored" if changed is None else "set" if changed else "coalesced")
        self._after_gic_op()

    # -- MSIs ----------------------------------------------------------------------------------

    def _on_msi(self, env: Envelope, msg: Msi) -> None:
        """A device wrote GITS_TRANSLATER of the physical ITS (the doorbell dom0's vITS shares)."""
        self.stats.msis += 1
        if self.host_its is None:
            self.record("msi-dropped", {"src": env.src, "devid": msg.devid,
                                        "eventid": msg.eventid, "reason": "no host ITS"},
                        why="gicv3_its_translation_write")  # fmt: skip
            return
        out = self.host_gic.run(self.gic.msi(msg.devid, msg.eventid))
        self.gic.take_errors()
        if out.action == "coalesced":
            self.stats.lpis_coalesced_physical += 1
        elif out.action == "dropped":
            self.stats.msis_dropped += 1
        self.record(
            "lpi",
            {"devid": msg.devid, "eventid": msg.eventid, "intid": out.intid,
             "processor": out.processor, "action": out.action, "reason": out.reason},
            why="gicv3_its_translation_write",
        )  # fmt: skip
        self._after_gic_op()

    # -- exits ---------------------------------------------------------------------------------

    def _on_exit(self, env: Envelope, msg: Exit) -> None:
        vcpu = msg.vcpu
        if not isinstance(vcpu, int) or isinstance(vcpu, bool) or not 0 <= vcpu < self.nr_vcpus:
            self._refuse(env, f"exit from vcpu {vcpu!r}: dom0 has vCPUs 0..{self.nr_vcpus - 1}")
            return
        v = self.vcpus[vcpu]
        if v.state != VCPU_RUNNING:
            self._refuse(env, f"exit from d0v{vcpu} while it is {v.state}")
            return
        if not env.id:
            self._refuse(env, "an exit must be a request (the Entry is its reply)")
            return
        err = _check_ctx(msg.ctx)
        if err:
            self._refuse(env, err)
            return
        self.stats.exits[msg.reason] = self.stats.exits.get(msg.reason, 0) + 1
        v.state = VCPU_IN_XEN
        v.exit_env = env
        v.kick_pending = False
        before = msg.ctx.lrs
        ctx = self.vgic.sync_from_lrs(vcpu, msg.ctx)
        self._trace_lr_changes(vcpu, before, ctx.lrs, "gic_update_one_lr")
        if self._check_vgic_crash():
            return
        self._timer_sync(v)
        self._current = vcpu
        try:
            self._dispatch(v, msg)
        finally:
            self._current = None

    def _dispatch(self, v: VcpuCtl, msg: Exit) -> None:
        """do_trap_guest_sync / do_trap_irq."""
        reason = msg.reason
        if reason == "hvc":
            self._on_hvc(v, msg)
        elif reason == "dabt":
            self._on_dabt(v, msg)
        elif reason == "sysreg":
            self._on_sysreg(v, msg)
        elif reason == "wfi":
            self._block_unless_event_pending(v, ())
        elif reason == "irq":
            self._on_irq_exit(v, msg)
        else:
            self._undef(v, f"exit reason {reason!r}")

    def _finish(self, v: VcpuCtl, status: int, regs: tuple[int, ...]) -> None:
        """The exit is handled: take a pending physical interrupt of this pCPU, then enter."""
        if v.state != VCPU_IN_XEN:
            return
        if self.gic.irq_line(v.pcpu):
            self._current = v.id
            try:
                self.gic_interrupt(v.pcpu, v.id)
            finally:
                self._current = None
            if self._check_vgic_crash():
                return
        self._enter_guest(v, status, regs)

    def _enter_guest(self, v: VcpuCtl, status: int, regs: tuple[int, ...]) -> None:
        """leave_hypervisor_to_guest: vgic_sync_to_lrs, then the Entry."""
        if self.crash is not None or self.shutdown:
            return
        env = v.exit_env
        before = tuple(self.vgic.vcpus[v.id].lrs)
        ctx = self.vgic.sync_to_lrs(v.id)
        if self._check_vgic_crash():
            return
        self._trace_lr_changes(v.id, before, ctx.lrs, "gic_set_lr")
        if ctx.hcr & GICH_HCR_UIE:
            self.stats.lr_overflows += 1
            self.record("lr-overflow", {"vcpu": v.id, "hcr": ctx.hcr}, why="vgic_sync_to_lrs")
        v.state = VCPU_RUNNING
        v.exit_env = None
        self._timer_sync(v)
        if env is not None and self._port is not None:
            entry = Entry(vcpu=v.id, regs=tuple(r & U64 for r in regs), value=status, ctx=ctx)
            self._port.reply(env, entry, why="leave_hypervisor_to_guest")
        self._after_gic_op()

    def _trace_lr_changes(
        self, vcpu: int, before: tuple[int, ...], after: tuple[int, ...], why: str
    ) -> None:
        for i, value in enumerate(after):
            old = before[i] if i < len(before) else 0
            if value != old and value >> 62 & 1:
                self.record("lr", {"vcpu": vcpu, "lr": i, "value": value,
                                   "virq": value & ICH_LR_VIRTUAL_MASK}, why=why)  # fmt: skip

    def _undef(self, v: VcpuCtl, what: str) -> None:
        """inject_undef_exception."""
        self.record("undef", {"vcpu": v.id, "what": what}, why="inject_undef_exception")
        self._finish(v, ENTRY_UNDEF, ())

    def _block_unless_event_pending(self, v: VcpuCtl, regs: tuple[int, ...]) -> None:
        """vcpu_block_unless_event_pending: resume at once if an interrupt is deliverable."""
        if self.gic.irq_line(v.pcpu):  # take what is already pending on this pCPU first
            self.gic_interrupt(v.pcpu, v.id)
            if self._check_vgic_crash():
                return
        if self.vgic.vcpu_pending_irq(v.id) or v.state != VCPU_IN_XEN:
            self._finish(v, ENTRY_OK, regs)
            return
        v.state = VCPU_BLOCKED
        v.resume_regs = regs
        self.record("block", {"vcpu": v.id}, why="vcpu_block_unless_event_pending")
        self._timer_sync(v)

    # -- hvc -----------------------------------------------------------------------------------

    def _on_hvc(self, v: VcpuCtl, msg: Exit) -> None:
        regs = _regs(msg.regs)
        imm = msg.imm if isinstance(msg.imm, int) else -1
        if imm == SMCCC_IMM:
            self._on_smccc(v, regs)
        elif imm == XEN_HYPERCALL_TAG:
            nr = msg.x16 if isinstance(msg.x16, int) else U64

            def done(result: HypercallResult) -> None:
                self._hypercall_done(v, nr, regs, result)

            def fail(error: str) -> None:
                self.record("hypercall-error", {"vcpu": v.id, "nr": nr, "error": error},
                            why="do_trap_hypercall")  # fmt: skip
                self._finish(v, ENTRY_OK, _set_x0(regs, -38))

            def start() -> Any:
                return self._hypercall_core(v, nr, regs)

            self._queue.submit(Job(f"hypercall {nr} d0v{v.id}", start, done, fail))
        else:
            self._gprintk(v.id, f"Invalid HVC imm {imm & 0xFFFF:#x}")
            self._undef(v, f"HVC #{imm:#x}")

    def _hypercall_core(self, v: VcpuCtl, nr: int, regs: tuple[int, ...]) -> Any:
        prev = self._current
        self._current = v.id
        try:
            gen = self.hypercalls.do_trap_hypercall(v.id, nr, regs)
            answer = None
            while True:
                try:
                    req = gen.send(answer)
                except StopIteration as stop:
                    return stop.value
                self._current = prev
                answer = yield req
                self._current = v.id
        finally:
            self._current = prev

    def _hypercall_done(
        self, v: VcpuCtl, nr: int, regs: tuple[int, ...], result: HypercallResult
    ) -> None:
        self.record("hypercall", {"vcpu": v.id, "nr": nr, "args": list(regs[:5]),
                                  "ret": result.ret}, why="do_trap_hypercall")  # fmt: skip
        out = _set_x0(regs, result.ret)
        if result.shutdown:
            self._domain_shutdown(v, result.shutdown_reason)
        elif result.block:
            self._current = v.id
            try:
                self._block_unless_event_pending(v, out)
            finally:
                self._current = None
        else:
            self._current = v.id
            try:
                self._finish(v, ENTRY_OK, out)
            finally:
                self._current = None

    def _on_smccc(self, v: VcpuCtl, regs: tuple[int, ...]) -> None:
        res: SmcccResult = vsmccc_handle_call(self, v.id, regs)
        out = tuple(res.regs[:4]) + regs[4:]
        if res.unhandled:
            self._gprintk(v.id, f"Unhandled SMC/HVC: {regs[0] & 0xFFFF_FFFF:#x}")
        if self._port is not None and not res.unhandled:
            body: dict[str, Any] = {"vcpu": v.id, "call": res.call, "ret": res.regs[0]}
            if res.cpu_on is not None:
                body |= {"target": res.cpu_on, "entry": res.entry, "context_id": res.context_id}
            self._port.record("psci", body, why="do_vpsci_0_2_call")
        if res.cpu_on is not None:
            t = self.vcpus[res.cpu_on]
            self.vgic.vgic_clear_pending_irqs(t.id)
            self.vgic.set_vcpu_online(t.id, True)
            t.state, t.entry, t.context_id = VCPU_RUNNING, res.entry, res.context_id
            t.kick_pending = False
        if res.shutdown:
            reason = 0 if res.shutdown == "poweroff" else 1
            self._domain_shutdown(v, reason)
            return
        if res.off:
            # do_psci_cpu_off: _VPF_down, vcpu_sleep_nosync: the vCPU never resumes.
            self.vgic.sync_to_lrs(v.id)
            self.vgic.set_vcpu_online(v.id, False)
            v.state, v.exit_env = VCPU_DOWN, None
            self._timer_sync(v)
            return
        if res.block:
            self._block_unless_event_pending(v, out)
            return
        self._finish(v, ENTRY_OK, out)

    def _domain_shutdown(self, v: VcpuCtl, reason: int) -> None:
        """domain_shutdown(dom0) -> hwdom_shutdown: the line, then the machine stops."""
        self._log(hwdom_shutdown_line(reason))
        self.shutdown = {0: "poweroff", 1: "reboot"}.get(reason, f"reason {reason}")
        self.record("shutdown", {"vcpu": v.id, "reason": reason}, why="hwdom_shutdown")
        if self.stop_on_shutdown and self._port is not None:
            self._port.stop(f"dom0 shutdown ({self.shutdown})")

    # -- dabt ----------------------------------------------------------------------------------

    def _on_dabt(self, v: VcpuCtl, msg: Exit) -> None:
        addr, size, write, value = msg.addr, msg.size, msg.write, msg.value
        ok = (
            isinstance(addr, int) and 0 <= addr <= U64 and size in MMIO_SIZES
            and isinstance(value, int) and 0 <= value <= U64 and isinstance(write, bool)
        )  # fmt: skip
        if not ok or self.vgic_v3 is None:
            self._dabt(v, addr, size, write, "no handler" if ok else "malformed access")
            return
        value &= (1 << (8 * size)) - 1

        def start() -> Any:
            return self._mmio_core(v, addr, size, write, value)

        def done(res: Any) -> None:
            self._mmio_done(v, addr, size, write, res)

        def fail(error: str) -> None:
            self.record("mmio-error", {"vcpu": v.id, "addr": addr, "error": error},
                        why="try_handle_mmio")  # fmt: skip
            self._dabt(v, addr, size, write, "handler failed")

        self._queue.submit(Job(f"mmio {addr:#x} d0v{v.id}", start, done, fail))

    def _mmio_core(self, v: VcpuCtl, addr: int, size: int, write: bool, value: int) -> Any:
        """try_handle_mmio: the vGIC handler core, with ``current`` set while it runs."""
        prev = self._current
        self._current = v.id
        try:
            gen = self.vgic_v3.mmio(v.id, addr, size, write, value)
            answer = None
            while True:
                try:
                    req = gen.send(answer)
                except StopIteration as stop:
                    return stop.value
                self._current = prev
                answer = yield req
                self._current = v.id
        finally:
            self._current = prev

    def _mmio_done(self, v: VcpuCtl, addr: int, size: int, write: bool, res: Any) -> None:
        self._current = v.id
        try:
            crash = getattr(res, "crash", None)
            if crash is not None:
                self._crash(crash.site, crash.reason, getattr(crash, "kind", "crash"))
                return
            if self._check_vgic_crash():
                return
            self._apply_host_actions(getattr(res, "actions", ()))
            self._after_injections(getattr(res, "injections", ()), via="try_handle_mmio")
            if not getattr(res, "handled", False):
                self._dabt(v, addr, size, write, "no handler")
                return
            if getattr(res, "abort", False) or getattr(res, "error", ""):
                self._dabt(v, addr, size, write, getattr(res, "error", "") or "handler refused")
                return
            data = int(getattr(res, "value", 0) or 0) & ((1 << (8 * size)) - 1)
            self._finish(v, ENTRY_OK, () if write else (data,))
        finally:
            self._current = None

    def _dabt(self, v: VcpuCtl, addr: Any, size: Any, write: Any, why: str) -> None:
        """inject_dabt_exception."""
        self.record("dabt", {"vcpu": v.id, "addr": addr, "size": size, "write": write,
                             "reason": why}, why="inject_dabt_exception")  # fmt: skip
        self._finish(v, ENTRY_DABT, ())

    def _apply_host_actions(self, actions: Any) -> None:
        """HostAction for hardware-linked vIRQs: act on the physical distributor."""
        d = self.machine.gicd_base
        for a in actions or ():
            kind, pintid = getattr(a, "kind", ""), getattr(a, "pintid", -1)
            if not isinstance(pintid, int) or not 32 <= pintid < self.machine.num_irqs:
                continue
            n, bit = divmod(pintid, 32)
            if kind == "enable":
                self.host_gic.mmio(0, d + 0x100 + 4 * n, 4, True, 1 << bit)
            elif kind == "disable":
                self.host_gic.mmio(0, d + 0x180 + 4 * n, 4, True, 1 << bit)
            elif kind == "set_pending":
                self.host_gic.mmio(0, d + 0x200 + 4 * n, 4, True, 1 << bit)
            elif kind == "set_affinity" and isinstance(a.vcpu, int):
                self.host_gic.mmio(0, d + 0x6000 + 8 * pintid, 8, True,
                                   self.machine.mpidr(self.vcpus[a.vcpu].pcpu))  # fmt: skip
        self._after_gic_op()

    # -- sysreg --------------------------------------------------------------------------------

    def _on_sysreg(self, v: VcpuCtl, msg: Exit) -> None:
        reg, write, value = msg.reg, msg.write, msg.value
        if not isinstance(value, int) or not 0 <= value <= U64 or not isinstance(write, bool):
            self._undef(v, f"malformed sysreg access {reg!r}")
            return
        if reg == "ICC_SGI1R_EL1":
            res = self.vgic.emulate_sgi1r(v.id, value, write=write)
            if isinstance(res, XenCrash):
                self._check_vgic_crash()
                return
            handled, injections = res
            self._after_injections(injections, via="vgic_to_sgi")
            if not handled:
                self._undef(v, "read of ICC_SGI1R_EL1")
                return
            self._finish(v, ENTRY_OK, ())
            return
        if reg in TIMER_REGS:
            out = self._timer_sysreg(v, reg, write, value)
            if out is None:
                self._undef(v, f"write to {reg}")
                return
            self._finish(v, ENTRY_OK, () if write else (out,))
            return
        self._undef(v, f"sysreg {reg!r}")

    # -- irq exits -----------------------------------------------------------------------------

    def _on_irq_exit(self, v: VcpuCtl, msg: Exit) -> None:
        """do_trap_irq: the physical interrupt Xen kicked for, else the maintenance IRQ."""
        if self.gic.irq_line(v.pcpu):
            self.gic_interrupt(v.pcpu, v.id)
            if self._check_vgic_crash():
                return
        elif msg.ctx.hcr & GICH_HCR_UIE:
            self.stats.maintenance_irqs += 1
            self.record("maintenance", {"vcpu": v.id}, why="maintenance_interrupt")
        self._finish(v, ENTRY_OK, ())

    # -- the virtual timer ---------------------------------------------------------------------

    def _counter(self) -> int:
        now = self._port.now if self._port is not None else 0
        return now * self.machine.timer_freq_hz // NS_PER_S

    def _timer_sysreg(self, v: VcpuCtl, reg: str, write: bool, value: int) -> int | None:
        t = v.timer
        if not write:
            if reg == "CNTV_CTL_EL0":
                return t.ctl | (CNTV_CTL_ISTATUS if t.istatus and t.ctl & CNTV_CTL_ENABLE else 0)
            if reg == "CNTV_CVAL_EL0":
                return t.cval
            if reg == "CNTV_TVAL_EL0":
                return (t.cval - self._counter()) & 0xFFFF_FFFF
            if reg == "CNTVCT_EL0":
                return self._counter()
            return self.machine.timer_freq_hz
        period = self.machine.timer_period_ns
        if reg == "CNTV_CTL_EL0":
            was = t.ctl & CNTV_CTL_ENABLE
            t.ctl = value & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK)
            if not t.ctl & CNTV_CTL_ENABLE:
                t.istatus = False
                t.generation += 1
            elif not was and period > 0 and self._port is not None:
                t.generation += 1
                self._port.call_later(period, ("cntv", v.id, t.generation))
        elif reg == "CNTV_CVAL_EL0":
            t.cval, t.istatus = value, False
        elif reg == "CNTV_TVAL_EL0":
            tval = value & 0xFFFF_FFFF
            tval -= (tval & 0x8000_0000) << 1
            t.cval, t.istatus = (self._counter() + tval) & U64, False
        else:
            return None
        self._timer_sync(v)
        return 0

    def _timer_tick(self, vcpu: int, generation: int) -> None:
        if not 0 <= vcpu < self.nr_vcpus:
            return
        v = self.vcpus[vcpu]
        t = v.timer
        if generation != t.generation or not t.ctl & CNTV_CTL_ENABLE:
            return
        t.istatus = True
        if self._port is not None and self.machine.timer_period_ns > 0:
            self._port.call_later(self.machine.timer_period_ns, ("cntv", vcpu, generation))
        if t.output and v.state == VCPU_BLOCKED:
            self.virt_timer_expired(v)
        else:
            self._timer_sync(v)

    def _timer_sync(self, v: VcpuCtl) -> None:
        """The physical PPI 27 of the vCPU's pCPU follows the timer output while the vCPU is
        loaded (running or in Xen); a blocked or down vCPU's timer is off the hardware."""
        loaded = v.state in (VCPU_RUNNING, VCPU_IN_XEN)
        level = loaded and v.timer.output
        self.gic.set_ppi(v.pcpu, self.machine.timer_virt_ppi, level)
        if (
            level
            and self._port is not None
            and v.pcpu not in self._handling_irq
            and v.state == VCPU_RUNNING
            and self.gic.irq_line(v.pcpu)
        ):
            self._send_kick(v)

    def vtimer_interrupt(self, cpu: int, current: int | None) -> None:
        """time.c vtimer_interrupt: ignore on idle, else mask CNTV and inject vIRQ 27."""
        if current is None:
            return
        v = self.vcpus[current]
        v.timer.ctl |= CNTV_CTL_IMASK
        self.gic.set_ppi(cpu, self.machine.timer_virt_ppi, False)
        self.stats.vtimer_irqs += 1
        self._inject_ppi(current, self.machine.timer_virt_ppi, "vtimer_interrupt")

    def virt_timer_expired(self, v: VcpuCtl) -> None:
        """vtimer.c virt_timer_expired: Xen's software timer for a descheduled vCPU."""
        v.timer.ctl |= CNTV_CTL_IMASK
        self.stats.vtimer_irqs += 1
        self._inject_ppi(v.id, self.machine.timer_virt_ppi, "virt_timer_expired")


# -- helpers ------------------------------------------------------------------------------------


def _regs(regs: Any) -> tuple[int, ...]:
    """x0..x7 as 64-bit values; anything missing or malformed reads as 0."""
    out = [int(r) & U64 if isinstance(r, int) and not isinstance(r, bool) else 0
           for r in tuple(regs or ())[:8]]  # fmt: skip
    return tuple(out + [0] * (8 - len(out)))


def _set_x0(regs: tuple[int, ...], ret: int) -> tuple[int, ...]:
    return (u64(ret),) + tuple(regs[1:8])


def _check_ctx(ctx: Any) -> str:
    if not isinstance(ctx, GicContext):
        return "exit without a GicContext"
    if not all(isinstance(x, int) and 0 <= x <= U64 for x in ctx.lrs):
        return "GicContext.lrs must be 64-bit values"
    if not isinstance(ctx.hcr, int) or not isinstance(ctx.vmcr, int):
        return "GicContext.hcr/vmcr must be integers"
    if not all(isinstance(x, int) for x in ctx.ap1r):
        return "GicContext.ap1r must be integers"
    return ""


__all__ = [
    "ENTRY_DABT",
    "ENTRY_OK",
    "ENTRY_UNDEF",
    "VCPU_BLOCKED",
    "VCPU_DOWN",
    "VCPU_IN_XEN",
    "VCPU_RUNNING",
    "Xen",
    "XenCounters",
    "XenCrashOutcome",
]
