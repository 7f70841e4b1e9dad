"""SMP on arm64 v5.15: CPU discovery, PSCI CPU_ON bring-up, the secondary's boot, CPU_OFF.

* ``smp_init_cpus`` (arch/arm64/kernel/smp.c): possible CPUs from the DT /cpus nodes or the
  MADT GICC entries (boot CPU first), ``maxcpus=`` limiting how many ``smp_init`` brings up.
* ``smp_init`` -> ``bringup_nonboot_cpus`` -> ``cpu_up`` -> ``__cpu_up`` ->
  ``boot_secondary`` -> ``cpu_psci_cpu_boot`` (PSCI CPU_ON, 64-bit id, target MPIDR, entry =
  the physical address of secondary_entry) -> ``wait_for_completion_timeout(&cpu_running)``.
* The secondary: ``__secondary_switched`` -> ``secondary_start_kernel`` (cpuinfo "Detected PIPT
  I-cache", ``notify_cpu_starting`` -> ``cpuhp_invoke_callback_range`` ->
  ``cpuhp_invoke_callback`` -> ``gic_starting_cpu``, "CPU%u: Booted secondary processor
  0x%010lx [0x%08x]", ``complete(&cpu_running)``, idle with IRQs on).
* ``cpu_die`` -> ``cpu_psci_cpu_die`` (PSCI CPU_OFF, never returns) on the dying CPU and
  ``cpu_psci_cpu_kill`` (AFFINITY_INFO polls, "psci: CPU%d killed (polled %d ms)") on the
  CPU taking it down (``smp_shutdown_nonboot_cpus`` from ``machine_shutdown``).
* CPU hotplug (sysfs ``online``): :func:`cpu_down` (``_cpu_down`` -> ``takedown_cpu`` ->
  stop_machine: ``take_cpu_down`` on the dying CPU = ``__cpu_disable`` (``ipi_teardown``,
  ``irq_migrate_all_off_this_cpu`` -> ``its_set_affinity`` MOVI) and the STARTING teardowns
  (``xen_dying_cpu``, ``arch_timer_dying_cpu``), then ``cpu_die``; the controlling CPU's
  ``__cpu_die`` -> ``op_cpu_kill``) and :func:`cpu_up` again (the same bring-up:
  ``gic_starting_cpu`` -> ``its_cpu_init``, which finds ``lpi_enabled`` set and returns early).
* Under Xen, the PREPARE state ``xen_evtchn_cpu_prepare`` runs before CPU_ON, the STARTING
  state ``xen_starting_cpu`` after the arch timer's, ``ipi_setup`` enables the SGIs, and a
  CPU wakes another with an SGI (``smp_cross_call``) because a vCPU idle in WFI is blocked in
  Xen until an interrupt arrives. v5.17+ (the v6.x variants) run the CPUHP_AP_ONLINE_DYN
  callbacks (``its_cpu_memreserve_lpi``) in the new CPU's hotplug thread ``cpuhp/N`` after it
  is online, while the bringing-up CPU waits.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from guest.costs import HZ
from guest.cpu import Cost, Psci, WaitEvent, Wfi
from guest.firmware.acpi import parse_madt
from guest.firmware.fdt import Fdt
from transport.abi import PSCI_0_2_FN64_AFFINITY_INFO, PSCI_0_2_FN64_CPU_ON, PSCI_0_2_FN_CPU_OFF

if TYPE_CHECKING:
    from guest.kernel import Kernel

Gen = Generator[Any, Any, Any]

MIDR_CORTEX_A57 = 0x411FD070
PSCI_0_2_AFFINITY_LEVEL_OFF = 1
MPIDR_HWID_BITMASK = 0xFF00FFFFFF


def smp_init_cpus(k: Kernel, fdt: Fdt) -> None:
    """``smp_init_cpus``: logical CPU n -> MPIDR (``cpu_logical_map``), boot CPU = 0."""
    mpidrs: list[int] = []
    if not k.acpi_disabled:
        madt = parse_madt(k.drivers["acpi"].get("APIC"))
        mpidrs = [c.arm_mpidr & MPIDR_HWID_BITMASK for c in madt.gicc if c.enabled]
    else:
        cpus = fdt.find("/cpus")
        if cpus is not None:
            ac = cpus.u32("#address-cells") if cpus.getprop("#address-cells") else 1
            for node in cpus.children:
                dt = node.getprop("device_type")
                if dt is None or dt.rstrip(b"\0") != b"cpu":
                    continue
                cells = node.cells("reg")
                v = 0
                for c in cells[:ac]:
                    v = v << 32 | c
                mpidrs.append(v & MPIDR_HWID_BITMASK)
    boot = 0  # QEMU boots CPU 0 (MPIDR 0)
    if boot in mpidrs:
        mpidrs.remove(boot)
    limit = len(k.guest.cpus)
    k.possible_cpus = ([boot] + mpidrs)[:limit]


def secondary_entry(k: Kernel) -> int:
    """``__pa_symbol(secondary_entry)``: modelled at __secondary_switched's address."""
    return k.image.addr("__secondary_switched")


def smp_init(k: Kernel, cpu: int) -> Gen:
    """``smp_init``: bring up CPUs 1..max_cpus-1, then the summary lines."""
    k.log("smp: Bringing up secondary CPUs ...", cpu)
    n = len(k.possible_cpus)
    if k.max_cpus is not None:
        n = min(n, max(1, k.max_cpus))
    for c in range(1, n):
        yield from cpu_up(k, cpu, c)
        yield from k.cost("between_secondaries")
    k.log(f"smp: Brought up 1 node, {len(k.online)} CPU{'s' if len(k.online) != 1 else ''}", cpu)
    k.log(f"SMP: Total of {len(k.online)} processors activated.", cpu)
    k.log("CPU: All CPU(s) started at EL1", cpu)


#: PIDs of the hotplug threads in a 6.x boot: cpuhp/N is the first of the smpboot threads
#: (cpuhp, migration, ksoftirqd, kworker/N:0, kworker/N:0H) created when CPU N first comes up.
#: A documented prediction (no real 6.x dom0 log shows one).
CPUHP_PID_BASE = 14
KTHREADS_PER_CPU = 5


def cpuhp_pid(cpu: int) -> int:
    return CPUHP_PID_BASE + KTHREADS_PER_CPU * cpu


def _event(k: Kernel, name: str, target: int) -> str:
    """The completion a bring-up waits for; a later bring-up of the same CPU gets its own."""
    n = k.boots.get(target, 0)
    base = f"cpu{target}-{name}"
    return k.guest.event_key(k, base if n <= 1 else f"{base}#{n}")


def cpu_up(k: Kernel, cpu: int, target: int) -> Gen:
    """``__cpu_up`` -> ``boot_secondary`` -> PSCI CPU_ON, then wait for cpu_running (and, for
    v5.17+ memreserve, for the AP online states the new CPU's cpuhp thread runs)."""
    from guest import xen_enlighten

    if target in k.online or not 0 <= target < len(k.possible_cpus):
        return
    if k.xen is not None:  # CPUHP_XEN_EVTCHN_PREPARE on this CPU
        yield from xen_enlighten.xen_evtchn_cpu_prepare(k, cpu, target)
    mpidr = k.possible_cpus[target]
    ret = yield Psci(PSCI_0_2_FN64_CPU_ON, (mpidr, secondary_entry(k), 0), "cpu_psci_cpu_boot")
    ret = ret - (1 << 64) if ret >> 63 else ret
    if ret:
        k.log(f"psci: failed to boot CPU{target} ({ret})", cpu, "err")
        k.log(f"CPU{target}: failed to boot: {ret}", cpu, "err")
        return
    k.boots[target] = k.boots.get(target, 0) + 1
    k.guest.start_secondary(k, target)
    yield WaitEvent(_event(k, "running", target))
    its = k.drivers.get("its")
    if its is not None and its.memreserve_state is not None:
        yield WaitEvent(_event(k, "online", target))


def secondary_start_kernel(k: Kernel, cpu: int) -> Gen:
    """``__secondary_switched`` -> ``secondary_start_kernel`` on the new CPU."""
    body = k.call(cpu, "secondary_start_kernel", _secondary(k, cpu))
    yield from k.call(cpu, "__secondary_switched", body)


def _secondary(k: Kernel, cpu: int) -> Gen:
    yield from k.cost("cpu_on_to_secondary")
    k.log(f"Detected PIPT I-cache on CPU{cpu}", cpu)
    yield from k.cost("secondary_cpuinfo_to_gic")
    gic = k.drivers.get("gic")
    chain = None
    if gic is not None:
        chain = k.call(cpu, "gic_starting_cpu", gic.gic_starting_cpu(cpu))
        for fn in ("cpuhp_invoke_callback", "cpuhp_invoke_callback_range", "notify_cpu_starting"):
            chain = k.call(cpu, fn, chain)
        yield from chain
        yield from k.guest.arch_timer_starting_cpu(k, cpu)
        if k.xen is not None and k.xen.starting_state:  # CPUHP_AP_ARM_XEN_STARTING
            from guest.xen_enlighten import xen_starting_cpu

            chain = k.call(cpu, "xen_starting_cpu", xen_starting_cpu(k, cpu))
            for fn in ("cpuhp_invoke_callback", "cpuhp_invoke_callback_range",
                       "notify_cpu_starting"):  # fmt: skip
                chain = k.call(cpu, fn, chain)
            yield from chain
        if k.guest.virt:
            yield from gic.ipi_setup(cpu)
    yield from k.cost("secondary_gic_to_online")
    k.log(
        f"CPU{cpu}: Booted secondary processor 0x{k.possible_cpus[cpu]:010x} [0x{MIDR_CORTEX_A57:08x}]",
        cpu,
    )
    k.online.add(cpu)
    k.guest.signal(_event(k, "running", cpu))
    its = k.drivers.get("its")
    if its is not None and its.memreserve_state is not None:
        k.guest.run_on(cpu, lambda: cpuhp_thread(k, cpu))
    while True:  # cpu_startup_entry(CPUHP_AP_ONLINE_IDLE)
        yield Wfi()


def cpuhp_thread(k: Kernel, cpu: int) -> Gen:
    """The new CPU's ``cpuhp/N`` thread running the AP online states (v5.17+:
    ``its_cpu_memreserve_lpi``), then completing the bring-up the boot CPU waits for."""
    its = k.drivers["its"]
    rt = k.guest.cpus[cpu]
    saved, rt.frames = rt.frames, []
    k.current[cpu] = (cpuhp_pid(cpu), f"cpuhp/{cpu}")
    try:
        if its.memreserve_state is not None:
            body = k.call(cpu, "its_cpu_memreserve_lpi", its.its_cpu_memreserve_lpi(cpu))
            for fn in ("cpuhp_invoke_callback", "cpuhp_thread_fun", "smpboot_thread_fn",
                       "kthread", "ret_from_fork"):  # fmt: skip
                body = k.call(cpu, fn, body)
            yield from body
    finally:
        k.current.pop(cpu, None)
        rt.frames = saved
    k.guest.signal(_event(k, "online", cpu))


def cpu_die(k: Kernel, cpu: int) -> Gen:
    """``cpu_die`` -> ``cpu_psci_cpu_die``: PSCI CPU_OFF (does not return)."""
    k.online.discard(cpu)
    yield Psci(PSCI_0_2_FN_CPU_OFF, (0,), "cpu_psci_cpu_die", wait=False)


def cpu_psci_cpu_kill(k: Kernel, cpu: int, target: int) -> Gen:
    """``cpu_psci_cpu_kill``: poll AFFINITY_INFO for up to 100 ms."""
    start = k.guest.now
    end = start + 100_000_000
    while True:
        err = yield Psci(
            PSCI_0_2_FN64_AFFINITY_INFO, (k.possible_cpus[target], 0), "cpu_psci_cpu_kill"
        )
        if err == PSCI_0_2_AFFINITY_LEVEL_OFF:
            jiffy = 1_000_000_000 // HZ
            ms = (k.guest.now // jiffy - start // jiffy) * (1000 // HZ)
            k.log(f"psci: CPU{target} killed (polled {ms} ms)", cpu)
            return 0
        if k.guest.now >= end:
            k.log(
                f"psci: CPU{target} may not have shut down cleanly (AFFINITY_INFO reports {err})",
                cpu,
                "warn",
            )
            return -110
        yield from k.cost("psci_kill_poll")


def smp_shutdown_nonboot_cpus(k: Kernel, cpu: int) -> Gen:
    """``smp_shutdown_nonboot_cpus``: each online secondary dies, CPU0 kills it."""
    for target in sorted(c for c in k.online if c != cpu):
        k.guest.run_on(target, lambda t=target: cpu_die(k, t))
        yield from smp_cross_call(k, cpu, target)
        yield from cpu_psci_cpu_kill(k, cpu, target)


def smp_cross_call(k: Kernel, cpu: int, target: int, ipi: int = 0) -> Gen:
    """``smp_cross_call`` (IPI_RESCHEDULE by default: the stopper thread is woken on the
    target). Only modelled under Xen, where an idle vCPU is blocked until an interrupt."""
    gic = k.drivers.get("gic")
    if k.guest.virt and gic is not None:
        yield from gic.gic_send_sgi(cpu, target, ipi)


def cpu_down(k: Kernel, cpu: int, target: int) -> Gen:
    """sysfs ``online`` = 0 -> ``cpu_down`` -> ``_cpu_down`` on ``cpu``: the teardown runs on
    ``target`` (stop_machine's ``take_cpu_down``), then ``__cpu_die`` -> ``op_cpu_kill``."""
    if target not in k.online or target == cpu or len(k.online) < 2:
        return
    k.guest.run_on(target, lambda: take_cpu_down(k, target))
    yield from smp_cross_call(k, cpu, target)
    yield WaitEvent(_event(k, "dead", target))
    yield from cpu_psci_cpu_kill(k, cpu, target)


def take_cpu_down(k: Kernel, cpu: int) -> Gen:
    """``take_cpu_down`` (stopper thread, IRQs off): ``__cpu_disable`` then the STARTING
    teardowns, then the idle task's ``cpu_die``."""
    from guest.xen_enlighten import xen_dying_cpu

    # __cpu_disable: set_cpu_online(false), ipi_teardown, irq_migrate_all_off_this_cpu
    k.online.discard(cpu)
    gic = k.drivers.get("gic")
    its = k.drivers.get("its")
    if gic is not None and k.guest.virt:
        for i in range(7):  # ipi_teardown: disable_percpu_irq of each IPI
            yield from gic.disable_ppi(cpu, i)
    if its is not None and its.nodes:
        for hwirq in sorted(its.lpi_dev):
            dev = its.lpi_dev[hwirq]
            if dev.col_map[hwirq - dev.lpi_base] == cpu and k.online:
                target = its.its_select_cpu()
                yield from its.its_set_affinity(cpu, hwirq, target)
    # cpuhp_invoke teardown of the STARTING states, last registered first
    yield from xen_dying_cpu(k, cpu)
    if gic is not None and cpu in gic.rd_base:  # arch_timer_dying_cpu
        yield from gic.disable_ppi(cpu, k.guest.timer_ppi)
    yield Cost(1_000)
    k.guest.signal(_event(k, "dead", cpu))
    yield from cpu_die(k, cpu)
