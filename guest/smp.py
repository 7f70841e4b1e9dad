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
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from guest.costs import HZ
from guest.cpu import Psci, WaitEvent, Wfi
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


def cpu_up(k: Kernel, cpu: int, target: int) -> Gen:
    """``__cpu_up`` -> ``boot_secondary`` -> PSCI CPU_ON, then wait for cpu_running."""
    mpidr = k.possible_cpus[target]
    ret = yield Psci(PSCI_0_2_FN64_CPU_ON, (mpidr, secondary_entry(k), 0), "cpu_psci_cpu_boot")
    ret = ret - (1 << 64) if ret >> 63 else ret
    if ret:
        k.log(f"psci: failed to boot CPU{target} ({ret})", cpu, "err")
        k.log(f"CPU{target}: failed to boot: {ret}", cpu, "err")
        return
    k.guest.start_secondary(k, target)
    yield WaitEvent(k.guest.event_key(k, f"cpu{target}-running"))


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
    yield from k.cost("secondary_gic_to_online")
    k.log(
        f"CPU{cpu}: Booted secondary processor 0x{k.possible_cpus[cpu]:010x} [0x{MIDR_CORTEX_A57:08x}]",
        cpu,
    )
    k.online.add(cpu)
    k.guest.signal(k.guest.event_key(k, f"cpu{cpu}-running"))
    while True:  # cpu_startup_entry(CPUHP_AP_ONLINE_IDLE)
        yield Wfi()


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
        yield from cpu_psci_cpu_kill(k, cpu, target)
