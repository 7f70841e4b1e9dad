"""Simulated time the modelled kernel spends, in ns per step.

Calibrated against native-dt-noefi.log's time stamps (QEMU TCG, so "real" means that
machine): sched_clock registers at ~0 and the early initcalls (the ITS MSI domains) print at
60.3 ms; "smp: Bringing up secondary CPUs" at 65.7 ms; each secondary prints its
redistributor about 4.4 ms after CPU_ON (70.7 ms for CPU1) and "Booted secondary processor"
0.5 ms later; consecutive secondaries ~7 ms apart. Costs are deliberately coarse: they make
stamps move the way real ones do, they are not a performance model. Every MMIO, system
register and PSCI access additionally takes whatever the scheduler's link latency adds.
"""

from __future__ import annotations

US = 1_000
MS = 1_000_000

COSTS: dict[str, int] = {
    # start_kernel: everything before time_init prints at 0.000000 anyway.
    "setup_arch": 200 * US,
    "mm_init": 300 * US,
    "printk": 30 * US,  # a console line at 9600 baud is slower; ignore_loglevel boots
    # time_init (sched_clock registration) -> console_init ... -> rest_init -> early initcalls
    "time_init_to_early_initcalls": 60 * MS,
    "early_initcall": 300 * US,
    "early_initcalls_to_smp": 5 * MS,
    # secondary bring-up (smp_init -> CPU_ON -> secondary_start_kernel -> gic_starting_cpu)
    "cpu_on_to_secondary": 3700 * US,
    "secondary_cpuinfo_to_gic": 700 * US,  # "Detected PIPT I-cache" -> gic_starting_cpu
    "secondary_gic_to_online": 300 * US,
    "between_secondaries": 2 * MS,
    "smp_to_initcalls": 40 * MS,
    "device_probe": 1 * MS,
    "memset_64k": 20 * US,
    "its_cmd_poll": 1 * US,  # udelay(1) between CREADR polls
    "psci_kill_poll": 100 * US,  # usleep_range(100, 1000)
    "kexec_load": 500 * US,
    "kexec_shutdown": 50 * MS,
    "irq_handler": 2 * US,
}

#: CONFIG_HZ of Debian's arm64 kernel (jiffies for "polled %d ms").
HZ = 250
