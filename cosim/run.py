"""``cosim run``: one scenario on simulated time, in process.

Builds the components a scenario names (the host, the guest, the device
models), puts them on one :class:`~cosim.scheduler.Scheduler`, runs for the
scenario's duration, lets MSIs still in flight drain, and reports the guest's
log and a result object (warnings, MSI accounting, kexec outcome).
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import msgspec

import cosim
from cosim import boot
from cosim.faults import FaultPlanError
from cosim.scenario import Scenario, ScenarioError, load, parse_duration
from cosim.scheduler import MS, Scheduler
from guest.bootinfo import REAL_INITRD_SIZE, XEN_DOM0_KERNEL_LOAD, BootInfo, Device
from guest.guest import Guest
from hypervisor.baremetal import BareMetalHost
from hypervisor.devices import MsiDevice
from hypervisor.machine import VirtMachine
from hypervisor.xen import Xen
from transport.messages import MESSAGE_TYPES, PROTOCOL_VERSION, Envelope, Mem
from transport.trace import TraceWriter

#: Device register windows: the first 64 KiB pages of QEMU virt's 32-bit PCIe MMIO window.
DEVICE_WINDOW_BASE = 0x1000_0000
DEVICE_WINDOW_STRIDE = 0x1_0000
#: Guest-physical space the dom0 model backs: its RAM banks, Xen's ACPI/EFI blob (at the grant
#: table region, 0x40200000) and the host ACPI tables Xen maps 1:1 (0xbc43....).
XEN_GUEST_SPACE = (0x4000_0000, 0x8000_0000)
#: After the scenario's duration, devices stop raising and in-flight MSIs get this long to land.
DRAIN_NS = 10 * MS
#: The scheduler's link latency per message kind (ns): a bus access, a trap, memory.
LINK_LATENCY_NS = {
    "mmio": 50,
    "sysreg": 5,
    "smccc": 200,
    "irq": 20,
    "mem": 30,
    "msi": 100,
    # a world switch each way (trap to EL2, eret), and the event-check SGI of a kick
    "exit": 500,
    "entry": 500,
    "kick": 200,
    # the answer of a read (data back over the bus), of a trap (the eret) or a completion
    "reply": 5,
}
#: The lookahead of conservative synchronisation: no message between components is faster.
LOOKAHEAD_NS = min(LINK_LATENCY_NS.values())


#: LINK_LATENCY_NS by message type: a message's kind is its type's tag (looked up per message).
_LATENCY_BY_TYPE = {
    t: LINK_LATENCY_NS.get(t.__struct_config__.tag, LOOKAHEAD_NS)  # type: ignore[attr-defined]
    for t in MESSAGE_TYPES
}


def link_latency(env: Envelope) -> int:
    """The scheduler's latency of ``env``'s link (a kind without an entry: the fastest link)."""
    latency = _LATENCY_BY_TYPE.get(type(env.msg))
    if latency is None:
        return LINK_LATENCY_NS.get(env.msg.kind, LOOKAHEAD_NS)
    return latency


MODELLED = [
    "GICv3 distributor, redistributors, ITS and CPU interfaces as QEMU 7.2 implements them",
    "Linux v5.15 GICv3/ITS driver boot path, SMP bring-up, MSI driver, kexec",
    "EFI stub MEMRESERVE, memblock, a calibrated page allocator",
]
NOT_MODELLED = [
    "instruction execution (kernel code is modelled function by function)",
    "caches and memory ordering",
    "devices other than the GIC, the PSCI firmware and MSI-raising PCIe functions",
]


#: Words that mark a kernel message about the GIC path (for the kexec summary).
_KEXEC_WORDS = ("GICv3", "ITS", "LPI", "BUG", "panic", "Oops", "WARNING", "Xen")


class UnsupportedScenario(ScenarioError):
    """The scenario asks for something this host or guest does not model (yet)."""


@dataclass
class Simulation:
    """A built scenario: the scheduler and its components, ready to run."""

    scenario: Scenario
    scheduler: Scheduler
    guest: Guest
    host: Any
    devices: list[MsiDevice]
    machine: VirtMachine
    trace: TraceWriter | None = None
    actions: list[tuple[int, Any]] = field(default_factory=list)

    foreign: list[tuple[int, str, int, int, bool, str]] = field(default_factory=list)
    #: The fault injector (cosim/faults.py) when the scenario or --faults has rules.
    faults: Any = None

    def _observe(self, env: Envelope) -> None:
        """Keep every hw/xen access to guest RAM made after a kexec began (for the verdict)."""
        msg = env.msg
        if isinstance(msg, Mem) and self.guest._kexec_log_start is not None:
            self.foreign.append((env.t, msg.agent, msg.addr, msg.size, msg.write, env.why))

    def start(self) -> None:
        # _observe keeps nothing before a kexec began, so it watches only from then on.
        observers = self.scheduler.observers

        def kexec_began() -> None:
            if self._observe not in observers:
                observers.append(self._observe)

        self.guest.kexec_listeners.append(kexec_began)
        self.scheduler.start()
        for t, token in self.actions:
            self.scheduler.call_later(self.guest.name, t, token)

    def run(self, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Run to the end of the duration, drain, and return the result object."""
        sc = self.scenario
        end = sc.duration_ns
        step = max(end // 100, 1)
        t = 0
        while t < end and not self.scheduler.stopped:
            t = min(t + step, end)
            self.scheduler.run(until=t)
            if progress:
                progress(t, end)
        self.scheduler.run(until=end)  # after a stop: the others run on for the lookahead
        for dev in self.devices:
            dev.limit = dev.arrivals  # no new MSIs; those already raised still travel
        self.scheduler.run(until=end + DRAIN_NS)
        if self.trace is not None:
            self.trace.flush()
        return self.result()

    def _kexec(self, g: dict[str, Any]) -> dict[str, Any]:
        """What followed a kexec: the GIC messages of the new kernel, which devices still deliver,
        what arrived unexpected, and what the hardware or Xen kept doing with the first kernel's
        LPI tables (accesses after kexec began that fall in them)."""
        k = dict(g["kexec"])
        if k.get("outcome", "none") == "none":
            return k
        k["gic_messages"] = [m for m in k.get("messages", []) if any(w in m for w in _KEXEC_WORDS)]
        gens = g.get("lpis_delivered_by_gen", {})
        names = [d.name.removeprefix("dev.") for d in self.devices]
        k["devices"] = {
            n: {"delivered_after_kexec": sum(v.get(n, 0) for gen, v in gens.items() if gen != "1")}
            for n in names
        }
        k["unexpected_irqs"] = g["unexpected_irqs"]
        first = self.guest.kernels[0] if self.guest.kernels else None
        its = first.drivers.get("its") if first is not None else None
        tables: list[tuple[str, int, int]] = []
        if its is not None and getattr(its, "prop_table_pa", 0):
            tables.append(("property", its.prop_table_pa, its.LPI_PROPBASE_SZ))
            for cpu, pa in sorted(getattr(its, "pend_pa", {}).items()):
                tables.append((f"pending CPU{cpu}", pa, its.LPI_PENDBASE_SZ))
        after: dict[str, dict[str, Any]] = {}
        for t, agent, addr, size, write, why in self.foreign:
            for name, base, length in tables:
                if addr < base + length and base < addr + max(size, 1):
                    key = f"{agent} {'writes' if write else 'reads'} {name}"
                    e = after.setdefault(key, {"count": 0, "first": t, "functions": {}})
                    e["count"] += 1
                    e["last"] = t
                    e["functions"][why] = e["functions"].get(why, 0) + 1
        k["first_kernel_tables_after_kexec"] = after
        return k

    def t_end(self) -> int:
        """When the run ended: at the stop, else where the scheduler's clock stands."""
        stop = self.scheduler.stop_key
        return stop[0] if stop is not None else self.scheduler.now

    def _exit(self, last_status: str) -> str:
        crash = getattr(self.host, "crash", None)
        if crash is not None:
            return "xen_crash"
        return "panic" if last_status == "panic" else "ok"

    def result(self) -> dict[str, Any]:
        g = self.guest.result()
        hc = self.host.counters
        raised = sum(d.raised for d in self.devices)
        delivered = g["lpis_delivered_total"]
        unexpected = len(g["unexpected_irqs"])
        # Physical coalescing (the redistributor merges) and, under Xen, virtual coalescing
        # (an LPI injected while still QUEUED or pending in an LR); drops by the ITS or Xen.
        coalesced = hc.get("lpis_coalesced", 0) + hc.get("lpis_coalesced_physical", 0)
        dropped = (
            hc.get("lpis_dropped", 0)
            + hc.get("msis_dropped", 0)
            + hc.get("lpis_dropped_unmapped", 0)
            + hc.get("lpis_dropped_vgic", 0)
        )
        gens = g["generations"]
        last = gens[-1]["status"] if gens else "none"
        r = {
            "scenario": self.scenario.name,
            "host": self.scenario.host.kind,
            "kernel": self.scenario.guest.kernel,
            "seed": self.scenario.run.seed,
            "t_end_ns": self.t_end(),
            "warnings": g["warnings"],
            "log": g["log"],
            "lpis_raised": raised,
            "lpis_delivered": delivered,
            "lpis_delivered_unexpected": unexpected,
            "lpis_coalesced": coalesced,
            "lpis_dropped": dropped,
            "lpis_pending": raised - delivered - unexpected - coalesced - dropped,
            "lpis_delivered_by_device": g["lpis_delivered"],
            "kexec": self._kexec(g),
            "corruption": g["corruption"],
            "taint": g["taint"],
            "generations": gens,
            "host_counters": dict(hc),
            "exit": self._exit(last),
            "errors": g["errors"],
        }
        if self.faults is not None:
            self.faults.account(r)  # lpis_raised/dropped_by_fault join the accounting
        return r


def trace_header(sc: Scenario, machine: VirtMachine) -> dict[str, Any]:
    return {
        "scenario": sc.name,
        "scenario_path": sc.path,
        "scenario_sha256": sc.sha256,
        "seed": sc.run.seed,
        "cosim_version": cosim.__version__,
        "protocol_version": PROTOCOL_VERSION,
        "python": platform.python_version(),
        "modelled": MODELLED,
        "not_modelled": NOT_MODELLED,
        "mmio_map": machine.mmio_map(),
        "time_unit": "ns",
    }


def _actions(sc: Scenario) -> list[tuple[int, Any]]:
    """The scenario's actions as (time, guest timer token)."""
    out: list[tuple[int, Any]] = []
    for i, a in enumerate(sc.actions):
        t = parse_duration(a.at)
        where = f"{sc.path}: actions[{i}]"
        if a.do == "kexec":
            out.append((t, ("kexec", {})))
        elif a.do in ("cpu_offline", "cpu_online"):
            if a.cpu is None or not 0 < a.cpu < sc.guest.vcpus:
                raise ScenarioError(
                    f"{where}.cpu = {a.cpu!r}: {a.do} needs a secondary CPU, 1..{sc.guest.vcpus - 1}"
                )
            out.append((t, (a.do, {"cpu": a.cpu})))
        elif a.do in ("set_lpi_priority", "set_lpi_enable"):
            if a.devid is None or a.event is None:
                raise ScenarioError(f"{where}: {a.do} needs devid and event")
            opts: dict[str, Any] = {"devid": a.devid, "event": a.event, "inv": a.inv}
            if a.do == "set_lpi_priority":
                if a.priority is None or not 0 <= a.priority <= 0xFF:
                    raise ScenarioError(f"{where}.priority = {a.priority!r}: needs 0..255")
                opts["priority"] = a.priority
            else:
                if a.enable is None:
                    raise ScenarioError(f"{where}.enable: set_lpi_enable needs enable = true|false")
                opts["enable"] = a.enable
            out.append((t, ("set_lpi_property", opts)))
        else:
            raise UnsupportedScenario(f"{where}.do = {a.do!r}: not modelled yet")
    return out


def _devices(sc: Scenario, host: str) -> tuple[list[MsiDevice], tuple[Device, ...]]:
    devices: list[MsiDevice] = []
    infos: list[Device] = []
    for i, d in enumerate(sc.devices):
        name = d.name or f"dev{d.devid:#x}"
        window = DEVICE_WINDOW_BASE + i * DEVICE_WINDOW_STRIDE
        devices.append(
            MsiDevice(
                name,
                devid=d.devid,
                events=d.events,
                msi_rate=d.msi_rate,
                window_base=window,
                host=host,
            )
        )
        infos.append(Device(name, d.devid, d.events, window))
    return devices, tuple(infos)


def build(
    sc: Scenario,
    trace_path: str | None = None,
    faults: Any = None,
    *,
    process_faults_allowed: bool = False,
) -> Simulation:
    """Components for the scenario, added to a fresh scheduler (not started)."""
    machine = VirtMachine.from_config(sc.machine)
    actions = _actions(sc)
    if sc.host.kind == "baremetal":
        if sc.guest.vcpus != machine.cpus:
            raise UnsupportedScenario(
                f"{sc.path}: guest.vcpus = {sc.guest.vcpus}: on bare metal the kernel runs on every pCPU "
                f"(machine.pcpus = {machine.cpus})"
            )
        devices, infos = _devices(sc, "host")
        blobs = boot.blobs_for(sc, initrd_size=REAL_INITRD_SIZE)
        info = BootInfo.from_blobs(
            blobs,
            firmware=sc.host.boot,
            ram_base=machine.ram_base,
            ram_size=machine.ram_size,
            cpus=machine.cpus,
            devices=infos,
            kernel=sc.guest.kernel,
        )
        guest = Guest(info)
        host: Any = BareMetalHost(machine, devices=[d.window for d in devices])
    else:
        if sc.guest.vcpus > machine.cpus:
            raise UnsupportedScenario(
                f"{sc.path}: guest.vcpus = {sc.guest.vcpus}: dom0's vCPUs are pinned one per pCPU "
                f"(machine.pcpus = {machine.cpus})"
            )
        devices, infos = _devices(sc, "xen")
        host = Xen(
            machine,
            vcpus=sc.guest.vcpus,
            has_its=sc.host.has_its,
            dom0_boot=sc.host.dom0_boot,
            efi_memreserve=sc.host.efi_memreserve,
            bootargs=sc.guest.bootargs or None,
        )
        info = BootInfo.from_blobs(
            host.boot_blobs,
            firmware="efi" if sc.host.dom0_boot == "acpi" else "dt",
            ram_base=XEN_GUEST_SPACE[0],
            ram_size=XEN_GUEST_SPACE[1],
            cpus=sc.guest.vcpus,
            kernel_addr=XEN_DOM0_KERNEL_LOAD,
            devices=infos,
            kernel=sc.guest.kernel,
            efi_stub=False,
            list_registers=machine.list_registers,
        )
        guest = Guest(info, name="dom0", host="xen")
    trace = TraceWriter(trace_path, trace_header(sc, machine)) if trace_path else None
    sched = Scheduler(seed=sc.run.seed, trace=trace, latency=link_latency, lookahead=LOOKAHEAD_NS)
    sched.add(host)
    sched.add(guest)
    for d in devices:
        sched.add(d)
    sim = Simulation(sc, sched, guest, host, devices, machine, trace, actions=actions)
    rules = list(sc.faults) + list(faults or ())
    if process_faults_allowed:  # kill/stop rules: the supervisor acts on those
        from cosim.faults import process_rules

        rules = [r for r in rules if r not in process_rules(rules)]
    if rules:
        from cosim.faults import install

        install(sim, rules, sc.path)  # kill/stop without --processes: a one-line error
    return sim


def execute(
    sc: Scenario, trace_path: str | None = None, progress: Any = None, faults: Any = None
) -> tuple[Simulation, dict[str, Any]]:
    sim = build(sc, trace_path, faults)
    try:
        sim.start()
        result = sim.run(progress)
    finally:
        if sim.trace is not None:
            sim.trace.close()
    return sim, result


def main(
    scenario: str,
    *,
    quiet: bool = False,
    as_json: bool = False,
    trace: str | None = None,
    faults: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    processes: bool = False,
    tcp: bool = False,
    **multi: Any,
) -> int:
    """``cosim run``; ``multi`` takes the multi-process options (cosim.supervisor.main_processes:
    remote, wait_for, listen, secret_file, deadline); any of them given means ``--processes``."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        sc = load(scenario)
        multi = {k: v for k, v in multi.items() if v is not None and v != []}
        if processes or tcp or multi:  # one OS process per component (cosim/supervisor.py)
            from cosim.supervisor import main_processes

            return main_processes(
                sc,
                quiet=quiet,
                as_json=as_json,
                trace=trace,
                faults=faults,
                tcp=tcp,
                out=out,
                err=err,
                **multi,
            )
        plan = None
        if faults:
            from cosim.faults import load_plan

            plan = load_plan(faults)
        from cosim.progress import sim_progress

        with sim_progress(err, sc.duration_ns, sc.name) as update:
            sim, result = execute(sc, trace, progress=update, faults=plan)
    except (ScenarioError, FaultPlanError) as exc:
        err.write(f"cosim run: {exc}\n")
        return 2
    except OSError as exc:
        err.write(f"cosim run: {exc.filename or trace}: {exc.strerror or exc}\n")
        return 2
    if not quiet and not as_json:
        for line in result_log(sim):
            out.write(line + "\n")
    if as_json:
        out.write(json.dumps(msgspec.to_builtins(result), indent=2, sort_keys=True) + "\n")
    else:
        out.write(summary(result) + "\n")
    return 0 if result["exit"] == "ok" else 1


def result_log(sim: Simulation) -> list[str]:
    return list(sim.guest.printk.text())


def summary(r: dict[str, Any]) -> str:
    k = r["kexec"]
    kx = f", kexec {k.get('outcome', 'none')}" if k.get("outcome", "none") != "none" else ""
    return (
        f"== {r['scenario']}: {len(r['warnings'])} warning(s), MSIs raised {r['lpis_raised']} = "
        f"delivered {r['lpis_delivered']} + unexpected {r['lpis_delivered_unexpected']} + coalesced "
        f"{r['lpis_coalesced']} + dropped {r['lpis_dropped']} + pending {r['lpis_pending']}{kx}, exit {r['exit']}"
    )
