"""drivers/irqchip/irq-gic-v3.c of Linux v5.15: probe, distributor, redistributors, CPU
interface, the IRQ entry.

Function by function (each a generator run on a CPU, ``why`` = the function name):
``gic_of_init`` / ``gic_acpi_init`` (firmware -> regions), ``gic_init_bases`` (banner,
``gic_update_rdist_properties``, ``gic_dist_init``, ``gic_cpu_init``, then ``its_init`` and
``its_cpu_init`` when GICD_TYPER.LPIS), ``gic_iterate_rdists`` / ``__gic_populate_rdist``
(the walk reading GICR_TYPER of every redistributor until the affinity matches — never
shortcut, so it costs what the real one costs), ``gic_enable_redist``, ``gic_cpu_config``,
``gic_cpu_sys_reg_init``, ``gic_starting_cpu`` (CPUHP_AP_IRQ_GIC_STARTING) and
``gic_handle_irq``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from gic.registers import (
    GICD_CTLR,
    GICD_TYPER,
    GICR_CTLR,
    GICR_TYPER,
    GICR_WAKER,
)

if TYPE_CHECKING:
    from guest.kernel import Kernel

Gen = Generator[Any, Any, Any]

# Offsets (include/linux/irqchip/arm-gic-v3.h, arm-gic.h)
GICD_CTLR_OFF = 0x0000
GICD_TYPER_OFF = 0x0004
GICD_IIDR_OFF = 0x0008
GICD_TYPER2_OFF = 0x000C
GICD_IGROUPR = 0x0080
GIC_DIST_ENABLE_CLEAR = 0x0180
GIC_DIST_ENABLE_SET = 0x0100
GIC_DIST_ACTIVE_CLEAR = 0x0380
GIC_DIST_PRI = 0x0400
GIC_DIST_CONFIG = 0x0C00
GICD_IROUTER = 0x6000
GICD_PIDR2 = 0xFFE8
GICR_CTLR_OFF = 0x0000
GICR_TYPER_OFF = 0x0008
GICR_WAKER_OFF = 0x0014
GICR_PIDR2 = 0xFFE8
GICR_SGI_BASE = 0x10000
GICR_IGROUPR0 = 0x0080
GIC_PIDR2_ARCH_MASK = 0xF0
GIC_PIDR2_ARCH_GICv3 = 0x30
GIC_PIDR2_ARCH_GICv4 = 0x40

GICD_CTLR_RWP = GICD_CTLR["RWP"].mask
GICD_CTLR_ENABLE_G1 = 1 << 0
GICD_CTLR_ENABLE_G1A = 1 << 1
GICD_CTLR_ARE_NS = 1 << 4
GICR_CTLR_RWP = GICR_CTLR["RWP"].mask
GICR_WAKER_ProcessorSleep = GICR_WAKER["ProcessorSleep"].mask
GICR_WAKER_ChildrenAsleep = GICR_WAKER["ChildrenAsleep"].mask
GICR_TYPER_VLPIS = GICR_TYPER["VLPIS"].mask
GICR_TYPER_LAST = GICR_TYPER["Last"].mask
GICD_TYPER_LPIS = GICD_TYPER["LPIS"].mask
GICD_TYPER_ESPI = GICD_TYPER["ESPI"].mask
GICD_TYPER_RSS = GICD_TYPER["RSS"].mask

GICD_INT_DEF_PRI = 0xA0
GICD_INT_DEF_PRI_X4 = 0xA0A0A0A0
GICD_INT_EN_CLR_X32 = 0xFFFFFFFF
GICD_INT_ACTLOW_LVL_TRIGGER = 0x0
DEFAULT_PMR_VALUE = 0xF0
ICC_CTLR_EL1_EOImode_drop_dir = 0
ICC_SRE_EL1_SRE = 1
ICC_CTLR_EL1_PRI_BITS_SHIFT = 8
ICC_CTLR_EL1_PRI_BITS_MASK = 0x7 << 8
INTID_SPURIOUS = 1023
#: arm64 NR_IPI in v5.15 (IPI_RESCHEDULE .. IPI_WAKEUP).
NR_IPI = 7
IPI_RESCHEDULE = 0
IPI_CALL_FUNC = 1
SZ_64K = 0x10000


def mpidr_to_affinity(mpidr: int) -> int:
    """``__gic_populate_rdist``: Aff3.Aff2.Aff1.Aff0 as GICR_TYPER[63:32]."""
    return (
        ((mpidr >> 32) & 0xFF) << 24
        | ((mpidr >> 16) & 0xFF) << 16
        | ((mpidr >> 8) & 0xFF) << 8
        | (mpidr & 0xFF)
    )


def gic_irouter_affinity(mpidr: int) -> int:
    """``gic_mpidr_to_affinity``: Aff3 << 32 | Aff2 << 16 | Aff1 << 8 | Aff0."""
    return ((mpidr >> 32) & 0xFF) << 32 | (mpidr & 0xFFFFFF)


class GicV3:
    """The driver's ``gic_data`` and per-CPU redistributor state (``gic_data_rdist()``)."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.dist_base = k.gic.dist_base
        self.regions = list(k.gic.redist_regions)
        self.stride = k.gic.redist_stride
        self.typer = 0
        self.typer2 = 0
        self.line_nr = 0
        self.espi_nr = 0
        self.ppi_nr = 0
        self.has_rss = False
        self.rd_base: dict[int, int] = {}  # cpu -> RD_base
        self.phys_base: dict[int, int] = {}
        self.lpis = False

    # -- probe ----------------------------------------------------------------------------

    def gic_validate_dist_version(self, cpu: int) -> Gen:
        reg = (
            yield from self.k.readl(self.dist_base + GICD_PIDR2, "gic_validate_dist_version")
        ) & GIC_PIDR2_ARCH_MASK
        return reg in (GIC_PIDR2_ARCH_GICv3, GIC_PIDR2_ARCH_GICv4)

    def gic_init_bases(self, cpu: int) -> Gen:
        """``gic_init_bases``."""
        k = self.k
        why = "gic_init_bases"
        self.typer = yield from k.readl(self.dist_base + GICD_TYPER_OFF, why)
        yield from k.readl(self.dist_base + GICD_IIDR_OFF, "gic_enable_quirks")
        spis = ((self.typer & 0x1F) + 1) * 32
        self.line_nr = min(spis, 1020)
        self.espi_nr = 0
        if self.typer & GICD_TYPER_ESPI:
            self.espi_nr = (((self.typer >> 27) & 0x1F) + 1) * 32
        k.log(f"GICv3: {self.line_nr - 32} SPIs implemented", cpu)
        k.log(f"GICv3: {self.espi_nr} Extended SPIs implemented", cpu)
        self.typer2 = yield from k.readl(self.dist_base + GICD_TYPER2_OFF, why)
        self.has_rss = bool(self.typer & GICD_TYPER_RSS)
        if k.variant.gicv3_banner == "5.15":
            k.log(
                f"GICv3: Distributor has {'' if self.has_rss else 'no '}Range Selector support", cpu
            )
        k.log("Root IRQ handler: gic_handle_irq", cpu)  # set_handle_irq
        yield from self.gic_update_rdist_properties(cpu)
        yield from self.gic_dist_init(cpu)
        yield from self.gic_cpu_init(cpu)
        # gic_smp_init: cpuhp_setup_state_nocalls(CPUHP_AP_IRQ_GIC_STARTING, gic_starting_cpu)
        if k.guest.virt:
            yield from self.ipi_setup(cpu)  # set_smp_ipi_range -> ipi_setup(boot CPU)
        self.lpis = yield from self.gic_dist_supports_lpis()
        if self.lpis:
            its = k.drivers["its"]
            yield from k.call(cpu, "its_init", its.its_init(cpu))
            yield from k.call(cpu, "its_cpu_init", its.its_cpu_init(cpu))
            if k.variant.pending_reserve_site == "its_cpu_memreserve_lpi":
                yield from k.call(cpu, "its_lpi_memreserve_init", its.its_lpi_memreserve_init(cpu))

    def gic_dist_supports_lpis(self) -> Gen:
        v = yield from self.k.readl(self.dist_base + GICD_TYPER_OFF, "gic_dist_supports_lpis")
        return bool(v & GICD_TYPER_LPIS)

    # -- redistributor walk ---------------------------------------------------------------

    def gic_iterate_rdists(self, cpu: int, fn: Any, why: str) -> Gen:
        """``gic_iterate_rdists``: every region, every frame until GICR_TYPER.Last, calling
        ``fn(region_index, ptr)`` (a generator returning 0 to stop)."""
        k = self.k
        ret = 1
        for i, (base, _size) in enumerate(self.regions):
            reg = (yield from k.readl(base + GICR_PIDR2, why)) & GIC_PIDR2_ARCH_MASK
            if reg not in (GIC_PIDR2_ARCH_GICv3, GIC_PIDR2_ARCH_GICv4):
                k.log(f"GICv3: No redistributor present @{base:#x}", cpu, "warn")
                break
            ptr = base
            while True:
                typer = yield from k.readq(ptr + GICR_TYPER_OFF, why)
                ret = yield from fn(i, ptr)
                if not ret:
                    return 0
                if self.stride:
                    ptr += self.stride
                else:
                    ptr += SZ_64K * 2
                    if typer & GICR_TYPER_VLPIS:
                        ptr += SZ_64K * 2
                if typer & GICR_TYPER_LAST:
                    break
        return -19 if ret else 0

    def gic_update_rdist_properties(self, cpu: int) -> Gen:
        """``gic_update_rdist_properties``: PPI count from every redistributor."""
        self.ppi_nr = 1 << 32

        def fn(_i: int, ptr: int) -> Gen:
            typer = yield from self.k.readq(ptr + GICR_TYPER_OFF, "__gic_update_rdist_properties")
            ppinum = (typer >> 27) & 0x1F
            nr = 16 + (ppinum * 32 if ppinum in (1, 2) else 0)
            self.ppi_nr = min(self.ppi_nr, nr)
            return 1

        yield from self.gic_iterate_rdists(cpu, fn, "gic_update_rdist_properties")
        if self.ppi_nr == 1 << 32:
            self.ppi_nr = 0
        if self.k.variant.gicv3_banner == "5.15":
            self.k.log(f"GICv3: {self.ppi_nr} PPIs implemented", cpu)
        else:
            self.k.log(
                f"GICv3: GICv3 features: {self.ppi_nr} PPIs{', RSS' if self.has_rss else ''}", cpu
            )

    def gic_populate_rdist(self, cpu: int) -> Gen:
        """``gic_populate_rdist`` / ``__gic_populate_rdist``."""
        k = self.k
        mpidr = k.possible_cpus[cpu]
        aff = mpidr_to_affinity(mpidr)

        def fn(i: int, ptr: int) -> Gen:
            typer = yield from k.readq(ptr + GICR_TYPER_OFF, "__gic_populate_rdist")
            if (typer >> 32) == aff:
                base, _ = self.regions[i]
                self.rd_base[cpu] = ptr
                self.phys_base[cpu] = ptr  # the region's phys_base + offset (identity-mapped)
                k.log(
                    f"GICv3: CPU{cpu}: found redistributor {mpidr:x} region {i}:0x{ptr:016x}", cpu
                )
                return 0
            return 1

        ret = yield from self.gic_iterate_rdists(cpu, fn, "gic_populate_rdist")
        if ret == 0:
            return 0
        k.log("------------[ cut here ]------------", cpu, "warn")
        k.log(f"CPU{cpu}: mpidr {mpidr:x} has no re-distributor!", cpu, "warn")
        return -19

    def gic_enable_redist(self, cpu: int, enable: bool) -> Gen:
        """``gic_enable_redist``: clear ProcessorSleep, wait for ChildrenAsleep to follow."""
        k = self.k
        rbase = self.rd_base[cpu]
        val = yield from k.readl(rbase + GICR_WAKER_OFF, "gic_enable_redist")
        val = val & ~GICR_WAKER_ProcessorSleep if enable else val | GICR_WAKER_ProcessorSleep
        yield from k.writel(rbase + GICR_WAKER_OFF, val, "gic_enable_redist")
        count = 1_000_000
        while count:
            count -= 1
            val = yield from k.readl(rbase + GICR_WAKER_OFF, "gic_enable_redist")
            if enable ^ bool(val & GICR_WAKER_ChildrenAsleep):
                return
            yield from k.cost("its_cmd_poll")
        k.log(f"GICv3: redistributor failed to {'wakeup' if enable else 'sleep'}...", cpu, "err")

    def gic_redist_wait_for_rwp(self, cpu: int) -> Gen:
        return (
            yield from self._wait_for_rwp(
                self.rd_base[cpu] + GICR_CTLR_OFF, GICR_CTLR_RWP, "gic_redist_wait_for_rwp"
            )
        )

    def gic_dist_wait_for_rwp(self) -> Gen:
        return (
            yield from self._wait_for_rwp(
                self.dist_base + GICD_CTLR_OFF, GICD_CTLR_RWP, "gic_dist_wait_for_rwp"
            )
        )

    def _wait_for_rwp(self, addr: int, bit: int, why: str) -> Gen:
        """``gic_do_wait_for_rwp``: 1 s of 1 us polls."""
        count = 1_000_000
        while (yield from self.k.readl(addr, why)) & bit:
            count -= 1
            if not count:
                self.k.log("GICv3: RWP timeout, gone fishing", 0, "err")
                return -110
            yield from self.k.cost("its_cmd_poll")
        return 0

    # -- distributor ----------------------------------------------------------------------

    def gic_dist_init(self, cpu: int) -> Gen:
        """``gic_dist_init`` + ``gic_dist_config``."""
        k, base, why = self.k, self.dist_base, "gic_dist_init"
        yield from k.writel(base + GICD_CTLR_OFF, 0, why)
        yield from self.gic_dist_wait_for_rwp()
        for i in range(32, self.line_nr, 32):
            yield from k.writel(base + GICD_IGROUPR + i // 8, 0xFFFFFFFF, why)
        # gic_dist_config
        for i in range(32, self.line_nr, 16):
            yield from k.writel(
                base + GIC_DIST_CONFIG + i // 4, GICD_INT_ACTLOW_LVL_TRIGGER, "gic_dist_config"
            )
        for i in range(32, self.line_nr, 4):
            yield from k.writel(base + GIC_DIST_PRI + i, GICD_INT_DEF_PRI_X4, "gic_dist_config")
        for i in range(32, self.line_nr, 32):
            yield from k.writel(
                base + GIC_DIST_ACTIVE_CLEAR + i // 8, GICD_INT_EN_CLR_X32, "gic_dist_config"
            )
            yield from k.writel(
                base + GIC_DIST_ENABLE_CLEAR + i // 8, GICD_INT_EN_CLR_X32, "gic_dist_config"
            )
        yield from self.gic_dist_wait_for_rwp()
        val = GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1
        yield from k.writel(base + GICD_CTLR_OFF, val, why)
        yield from self.gic_dist_wait_for_rwp()
        affinity = gic_irouter_affinity(k.possible_cpus[cpu])
        for i in range(32, self.line_nr):
            yield from k.writeq(base + GICD_IROUTER + i * 8, affinity, why)

    # -- CPU side -------------------------------------------------------------------------

    def gic_cpu_init(self, cpu: int) -> Gen:
        """``gic_cpu_init``."""
        k = self.k
        if (yield from k.call(cpu, "gic_populate_rdist", self.gic_populate_rdist(cpu))):
            return
        yield from self.gic_enable_redist(cpu, True)
        rbase = self.rd_base[cpu] + GICR_SGI_BASE
        for i in range(0, self.ppi_nr + 16, 32):
            yield from k.writel(rbase + GICR_IGROUPR0 + i // 8, 0xFFFFFFFF, "gic_cpu_init")
        # gic_cpu_config(rbase, ppi_nr + 16, gic_redist_wait_for_rwp)
        nr = self.ppi_nr + 16
        for i in range(0, nr, 32):
            yield from k.writel(
                rbase + GIC_DIST_ACTIVE_CLEAR + i // 8, GICD_INT_EN_CLR_X32, "gic_cpu_config"
            )
            yield from k.writel(
                rbase + GIC_DIST_ENABLE_CLEAR + i // 8, GICD_INT_EN_CLR_X32, "gic_cpu_config"
            )
        for i in range(0, nr, 4):
            yield from k.writel(rbase + GIC_DIST_PRI + i, GICD_INT_DEF_PRI_X4, "gic_cpu_config")
        yield from self.gic_redist_wait_for_rwp(cpu)
        yield from self.gic_cpu_sys_reg_init(cpu)

    def gic_cpu_sys_reg_init(self, cpu: int) -> Gen:
        """``gic_cpu_sys_reg_init`` (EOImode 0: QEMU virt boots the kernel at EL1, so
        supports_deactivate_key is off)."""
        k, why = self.k, "gic_cpu_sys_reg_init"
        sre = yield from k.read_sysreg("ICC_SRE_EL1", "gic_enable_sre")
        if not sre & ICC_SRE_EL1_SRE:
            yield from k.write_sysreg("ICC_SRE_EL1", sre | ICC_SRE_EL1_SRE, "gic_enable_sre")
            sre = yield from k.read_sysreg("ICC_SRE_EL1", "gic_enable_sre")
            if not sre & ICC_SRE_EL1_SRE:
                k.log("GIC: unable to set SRE (disabled at EL2), panic ahead", cpu, "err")
        ctlr = yield from k.read_sysreg("ICC_CTLR_EL1", "gic_get_pribits")
        pribits = ((ctlr & ICC_CTLR_EL1_PRI_BITS_MASK) >> ICC_CTLR_EL1_PRI_BITS_SHIFT) + 1
        yield from k.write_sysreg("ICC_PMR_EL1", DEFAULT_PMR_VALUE, why)
        yield from k.write_sysreg("ICC_BPR1_EL1", 0, why)
        yield from k.write_sysreg("ICC_CTLR_EL1", ICC_CTLR_EL1_EOImode_drop_dir, why)
        if pribits >= 4:
            yield from k.write_sysreg("ICC_AP1R0_EL1", 0, why)
        yield from k.write_sysreg("ICC_IGRPEN1_EL1", 1, why)
        yield from k.read_sysreg("ICC_CTLR_EL1", why)

    def gic_starting_cpu(self, cpu: int) -> Gen:
        """``gic_starting_cpu`` (CPUHP_AP_IRQ_GIC_STARTING, IRQs off)."""
        k = self.k
        yield from self.gic_cpu_init(cpu)
        if self.lpis:
            yield from k.call(cpu, "its_cpu_init", k.drivers["its"].its_cpu_init(cpu))
        return 0

    def enable_ppi(self, cpu: int, intid: int) -> Gen:
        """``gic_unmask_irq`` of a PPI: GICR_ISENABLER0 of this CPU's SGI frame."""
        rbase = self.rd_base[cpu] + GICR_SGI_BASE
        yield from self.k.writel(rbase + GIC_DIST_ENABLE_SET, 1 << intid, "gic_unmask_irq")

    def disable_ppi(self, cpu: int, intid: int) -> Gen:
        """``gic_mask_irq`` of a PPI: GICR_ICENABLER0, then wait for RWP."""
        rbase = self.rd_base[cpu] + GICR_SGI_BASE
        yield from self.k.writel(rbase + GIC_DIST_ENABLE_CLEAR, 1 << intid, "gic_mask_irq")
        yield from self.gic_redist_wait_for_rwp(cpu)

    def ipi_setup(self, cpu: int) -> Gen:
        """arm64 ``ipi_setup``: enable_percpu_irq of each of the NR_IPI (7) SGIs. Only the Xen
        path models IPIs (a vCPU blocked in Xen wakes only through an interrupt); the
        bare-metal model leaves SGIs as gic_cpu_config left them."""
        for i in range(NR_IPI):
            yield from self.enable_ppi(cpu, i)

    def gic_send_sgi(self, cpu: int, target: int, irq: int) -> Gen:
        """``gic_ipi_send_mask`` -> ``gic_send_sgi`` for one target CPU: ICC_SGI1R_EL1."""
        mpidr = self.k.possible_cpus[target]
        aff0 = mpidr & 0xFF
        val = (
            ((mpidr >> 32) & 0xFF) << 48  # Aff3
            | ((mpidr >> 16) & 0xFF) << 32  # Aff2
            | (irq & 0xF) << 24
            | ((mpidr >> 8) & 0xFF) << 16  # Aff1
            | ((aff0 >> 4) & 0xF) << 44  # RS
            | (1 << (aff0 & 0xF))  # TargetList
        )
        yield from self.k.write_sysreg("ICC_SGI1R_EL1", val, "gic_send_sgi")

    def gic_handle_irq(self, cpu: int) -> Gen:
        """``gic_handle_irq``: IAR, the handler, EOIR (one acknowledge per entry; the
        CPU re-enters while the line stays high)."""
        k = self.k
        irqnr = (yield from k.read_sysreg("ICC_IAR1_EL1", "gic_handle_irq")) & 0xFFFFFF
        if irqnr == INTID_SPURIOUS:
            return
        # The chain of one interrupt ends here in the trace: acknowledged, handled, EOIed.
        k.guest.port_record("ack", {"cpu": cpu, "intid": irqnr, "why": "gic_handle_irq"})
        yield from k.guest.dispatch_irq(k, cpu, irqnr)
        yield from k.write_sysreg("ICC_EOIR1_EL1", irqnr, "gic_handle_irq")
        k.guest.port_record("eoi", {"cpu": cpu, "intid": irqnr, "why": "gic_handle_irq"})
