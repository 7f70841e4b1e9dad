"""Xen 4.17's driver of the physical GICv3 (xen/arch/arm/gic-v3.c) on QEMU virt: bring-up of
the distributor, every pCPU's redistributor and CPU interface, the host ITS and LPIs
(hypervisor/host_its.py), the boot console lines Xen prints about them, and the accessors the
interrupt path uses (``gicv3_read_irq``, ``gicv3_eoi_irq``, ``gicv3_dir_irq``).

All accesses go through ``gic.gic.Gic`` cores; the GIC's memory requests only ever name Xen
heap addresses and are answered from :attr:`HostGic.heap` (this module runs them with
``gic.port.run_sync``: the physical GIC never waits for a guest).

The boot lines follow real-boot/xen-dom0-dt.log (lines 29..37 and the per-CPU "Found
redistributor" lines) and, with HAS_ITS, the ITS and LPI lines of gic-v3-its.c /
gic-v3-lpi.c. "@000000004001c000" in "Found redistributor" is the virtual address of Xen's
ioremap of the redistributor; this model places those mappings where the real log shows
them: VA 0x4001c000 + CPU * 0x20000 (a documented reproduction of the log, not a model of
Xen's vmap allocator).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gic.port import run_sync
from gic.registers import (
    GICD_CTLR,
    GICD_IIDR,
    GICD_TYPER,
    GICR_WAKER,
)
from hypervisor.host_its import HostIts, XenHeap
from hypervisor.machine import VIRT_HIGH_GIC_REDIST2, VIRT_HIGH_GIC_REDIST2_SIZE, VirtMachine

#: asm/gic.h priorities: GIC_PRI_LOWEST 0xf0, GIC_PRI_IRQ 0xa0, GIC_PRI_IPI 0x90.
GIC_PRI_IRQ = 0xA0
GIC_PRI_IPI = 0x90
#: gic-v3.c DEFAULT_PMR_VALUE.
DEFAULT_PMR_VALUE = 0xFF
#: ICC_CTLR_EL1.EOImode (drop / deactivate split), as gicv3_cpu_init programs it.
GICC_CTLR_EL1_EOImode_drop = 1 << 1
#: GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1 (gicv3_dist_init).
GICD_CTLR_XEN = (1 << 4) | (1 << 1) | (1 << 0)
NR_GIC_LOCAL_IRQS = 32
#: The real log's VA of CPU0's redistributor mapping and the per-CPU stride.
XEN_GICR_VA_BASE = 0x4001_C000
XEN_GICR_VA_STRIDE = 0x2_0000

# Redistributor SGI_base frame offsets (RD_base + 0x10000).
SGI_BASE = 0x1_0000
GICR_IGROUPR0 = SGI_BASE + 0x080
GICR_ISENABLER0 = SGI_BASE + 0x100
GICR_ICENABLER0 = SGI_BASE + 0x180
GICR_ICACTIVER0 = SGI_BASE + 0x380
GICR_IPRIORITYR0 = SGI_BASE + 0x400
# Distributor offsets.
GICD_IGROUPR = 0x080
GICD_ICENABLER = 0x180
GICD_ICACTIVER = 0x380
GICD_IPRIORITYR = 0x400
GICD_ICFGR = 0xC00
GICD_IROUTER = 0x6000


def _paddr(v: int) -> str:
    """Xen's ``%#"PRIpaddr`` (``%#016lx``): 0x and 14 more digits for small values."""
    return f"{v:#016x}"


class HostGic:
    """The physical GIC as Xen drives it: boot, per-CPU init, acknowledge and EOI."""

    def __init__(
        self,
        gic: Any,
        machine: VirtMachine,
        *,
        has_its: bool,
        heap: XenHeap | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.gic = gic
        self.machine = machine
        self.heap = heap if heap is not None else XenHeap()
        self.log = log or (lambda _line: None)
        self.has_its = has_its and getattr(gic, "its", None) is not None
        self.its: HostIts | None = (
            HostIts(gic, machine.cpus, heap=self.heap, log=self.log) if self.has_its else None
        )
        self.nr_lines = 0
        self.booted = False

    # -- plumbing ------------------------------------------------------------------------------

    def run(self, core: Any) -> Any:
        """Run a physical-GIC core to completion, answering its memory from the Xen heap."""
        return run_sync(core, self.heap.answer)

    def mmio(self, cpu: int, addr: int, size: int, write: bool, value: int = 0) -> int:
        return int(self.run(self.gic.mmio(cpu, addr, size, write, value)) or 0)

    def sysreg(self, cpu: int, reg: str, write: bool, value: int = 0) -> int:
        return int(self.run(self.gic.sysreg(cpu, reg, write, value)) or 0)

    # -- the interrupt path -------------------------------------------------------------------

    def gicv3_read_irq(self, cpu: int) -> int:
        """gicv3_read_irq: ICC_IAR1_EL1 of pCPU ``cpu`` (acknowledges)."""
        return self.sysreg(cpu, "ICC_IAR1_EL1", False) & 0xFF_FFFF

    def gicv3_eoi_irq(self, cpu: int, irq: int) -> None:
        """gicv3_eoi_irq: ICC_EOIR1_EL1 (priority drop; EOImode = 1)."""
        self.sysreg(cpu, "ICC_EOIR1_EL1", True, irq)

    def gicv3_dir_irq(self, cpu: int, irq: int) -> None:
        """gicv3_dir_irq: ICC_DIR_EL1 (deactivate)."""
        self.sysreg(cpu, "ICC_DIR_EL1", True, irq)

    # -- boot ----------------------------------------------------------------------------------

    def gicv3_init(self) -> int:
        """gicv3_init: find the ITS, print the GIC description, gicv3_dist_init, the ITS, then
        gicv3_cpu_init on every pCPU (the secondaries as they are brought up)."""
        m = self.machine
        if self.has_its:
            self.log(f"GICv3: Found ITS @{m.its_base:#x}")  # add_to_host_its_list
        regions = m.gicr_frames()
        self.log("GICv3 initialization:")
        self.log(f"      gic_dist_addr={_paddr(m.gicd_base)}")
        self.log(f"      gic_maintenance_irq={m.maintenance_ppi}")
        self.log("      gic_rdist_stride=0")
        self.log(f"      gic_rdist_regions={len(regions)}")
        self.log("      redistributor regions:")
        full = [(m.gicr_base, m.gicr_region_size)]  # as QEMU's DT/MADT describe them
        if len(regions) > 1:
            full.append((VIRT_HIGH_GIC_REDIST2, VIRT_HIGH_GIC_REDIST2_SIZE))
        for i, (base, size) in enumerate(full):
            self.log(f"        - region {i}: {_paddr(base)} - {_paddr(base + size)}")
        self.gicv3_dist_init()
        if self.its is not None:
            ret = self.run(self.its.gicv3_its_init())
            if ret:
                self.log(f"GICv3: ITS: initialization failed: {ret}")
                return int(ret)
        for cpu in range(m.cpus):
            ret = self.gicv3_cpu_init(cpu)
            if ret:
                return ret
        self.booted = True
        return 0

    def gicv3_dist_init(self) -> None:
        """gicv3_dist_init: host LPIs (with an ITS), "N lines", SPIs level / GIC_PRI_IRQ /
        disabled / inactive / Group 1, routed to CPU 0, then enable ARE_NS + Group 1."""
        d = self.machine.gicd_base
        self.mmio(0, d + GICD_CTLR.offset, 4, True, 0)
        typer = self.mmio(0, d + GICD_TYPER.offset, 4, False)
        nr_lines = 32 * ((typer & 0x1F) + 1)
        if self.its is not None and GICD_TYPER.get(typer, "LPIS"):
            self.its.gicv3_lpi_init_host_lpis(GICD_TYPER.get(typer, "IDbits") + 1)
        nr_lines = min(1020, nr_lines)
        self.nr_lines = nr_lines
        iidr = self.mmio(0, d + GICD_IIDR.offset, 4, False)
        self.log(f"GICv3: {nr_lines} lines, (IID {iidr:08x}).")
        for i in range(NR_GIC_LOCAL_IRQS, nr_lines, 16):
            self.mmio(0, d + GICD_ICFGR + (i // 16) * 4, 4, True, 0)
        prio = GIC_PRI_IRQ * 0x0101_0101
        for i in range(NR_GIC_LOCAL_IRQS, nr_lines, 4):
            self.mmio(0, d + GICD_IPRIORITYR + (i // 4) * 4, 4, True, prio)
        for i in range(NR_GIC_LOCAL_IRQS, nr_lines, 32):
            self.mmio(0, d + GICD_ICENABLER + (i // 32) * 4, 4, True, 0xFFFF_FFFF)
            self.mmio(0, d + GICD_ICACTIVER + (i // 32) * 4, 4, True, 0xFFFF_FFFF)
            self.mmio(0, d + GICD_IGROUPR + (i // 32) * 4, 4, True, 0xFFFF_FFFF)
        self.mmio(0, d + GICD_CTLR.offset, 4, True, GICD_CTLR_XEN)
        for i in range(NR_GIC_LOCAL_IRQS, nr_lines):
            self.mmio(0, d + GICD_IROUTER + i * 8, 8, True, 0)  # affinity of CPU 0

    def gicv3_cpu_init(self, cpu: int) -> int:
        """gicv3_cpu_init: gicv3_populate_rdist (LPI tables via gicv3_lpi_init_rdist, the
        "Found redistributor" line), wake the redistributor, SGIs/PPIs Group 1 with their
        priorities, the host collection and EnableLPIs with an ITS, then the CPU interface:
        SRE, PMR 0xff, BPR 0, EOImode = 1, Group 1 enabled."""
        rd = self.gic.redistributor_base(cpu)
        if self.its is not None:
            ret = self.run(self.its.gicv3_lpi_init_rdist(cpu))
            if ret and ret != -19:  # -ENODEV
                self.log(f"GICv3: CPU{cpu}: Cannot initialize LPIs: {ret & 0xFFFF_FFFF}")
        region = 0 if cpu < self.machine.gicr_region_size // self.machine.gicr_stride else 1
        va = XEN_GICR_VA_BASE + cpu * XEN_GICR_VA_STRIDE
        self.log(f"GICv3: CPU{cpu}: Found redistributor in region {region} @{va:016x}")
        waker = self.mmio(cpu, rd + GICR_WAKER.offset, 4, False)
        self.mmio(cpu, rd + GICR_WAKER.offset, 4, True, waker & ~GICR_WAKER["ProcessorSleep"].mask)
        self.mmio(cpu, rd + GICR_IGROUPR0, 4, True, 0xFFFF_FFFF)
        for i in range(0, 16, 4):
            self.mmio(cpu, rd + GICR_IPRIORITYR0 + i, 4, True, GIC_PRI_IPI * 0x0101_0101)
        for i in range(16, 32, 4):
            self.mmio(cpu, rd + GICR_IPRIORITYR0 + i, 4, True, GIC_PRI_IRQ * 0x0101_0101)
        self.mmio(cpu, rd + GICR_ICACTIVER0, 4, True, 0xFFFF_0000)
        self.mmio(cpu, rd + GICR_ICENABLER0, 4, True, 0xFFFF_0000)
        self.mmio(cpu, rd + GICR_ISENABLER0, 4, True, 0x0000_FFFF)
        if self.its is not None:
            ret = self.run(self.its.gicv3_its_setup_collection(cpu))
            if ret:
                return int(ret)
            if not self.run(self.its.gicv3_enable_lpis(cpu)):
                return -16  # -EBUSY
        self.sysreg(cpu, "ICC_PMR_EL1", True, DEFAULT_PMR_VALUE)
        self.sysreg(cpu, "ICC_BPR1_EL1", True, 0)
        self.sysreg(cpu, "ICC_CTLR_EL1", True, GICC_CTLR_EL1_EOImode_drop)
        self.sysreg(cpu, "ICC_IGRPEN1_EL1", True, 1)
        return 0

    def enable_ppi(self, cpu: int, intid: int) -> None:
        """request_irq of a per-CPU interrupt Xen handles itself (the timers, maintenance):
        set its GICR_ISENABLER0 bit (priority GIC_PRI_IRQ, set at cpu init)."""
        rd = self.gic.redistributor_base(cpu)
        self.mmio(cpu, rd + GICR_ISENABLER0, 4, True, 1 << intid)


__all__ = ["DEFAULT_PMR_VALUE", "GIC_PRI_IRQ", "HostGic"]
