"""The QEMU 7.2 ``virt`` machine (gic-version=3, its=on) as data: addresses, CPUs, IRQs, PCIe.

This is the machine's description that the firmware builders (hypervisor/firmware/) and the
hosts take; it builds no blob. Every number comes from QEMU's hw/arm/virt.c (``base_memmap``,
``extended_memmap``, ``a15irqmap``, ``virt_cpu_mp_affinity``), include/hw/arm/virt.h (the
ARCH_TIMER_*_IRQ PPI numbers) or from the real boots in reference/real-boot/, as noted.

MSI DeviceIDs. QEMU virt's device tree says ``msi-map = <0 &its 0 0x10000>`` and its IORT
maps the root complex's RIDs 1:1 to the ITS (build_iort, ``id_mapping_array`` identity), so a
PCIe function's ITS DeviceID is its requester id ``bus << 8 | device << 3 | function``
(Linux ``pci_dev_id``): 0x0008 for the root port 00:01.0 and 0x0100 for the virtio-rng
function 01:00.0 behind it. Linux's PCI/MSI irq domain numbers its hwirqs
``msi_index | pci_dev_id << 11 | domain << 27`` (``pci_msi_domain_calc_hwirq``), which is
exactly what /proc/interrupts shows in the real logs: ``ITS-MSI 16384`` = 0x0008 << 11 for the
root port (PME/AER/pciehp) and ``ITS-MSI 524288`` / ``524289`` = 0x0100 << 11 | 0 / 1 for
virtio0-config / virtio0-input. :meth:`PciFunction.linux_msi_hwirq` computes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

MiB = 1 << 20
GiB = 1 << 30

# hw/arm/virt.c base_memmap[] (QEMU 7.2)
VIRT_GIC_DIST = 0x0800_0000
VIRT_GIC_DIST_SIZE = 0x0001_0000
VIRT_GIC_ITS = 0x0808_0000
VIRT_GIC_ITS_SIZE = 0x0002_0000
VIRT_GIC_REDIST = 0x080A_0000
VIRT_GIC_REDIST_SIZE = 0x00F6_0000  # room for 123 GICv3 redistributors of 128 KiB
VIRT_HIGH_GIC_REDIST2 = 0x40_0000_0000  # extended_memmap: CPUs 123.. (64 MiB, 512 more)
VIRT_HIGH_GIC_REDIST2_SIZE = 0x0400_0000
GICV3_REDIST_SIZE = 0x2_0000  # include/hw/intc/arm_gicv3_common.h: RD_base + SGI_base frames
VIRT_UART = 0x0900_0000
VIRT_UART_SIZE = 0x1000
VIRT_RTC = 0x0901_0000
VIRT_RTC_SIZE = 0x1000
VIRT_PCIE_MMIO = 0x1000_0000
VIRT_PCIE_MMIO_SIZE = 0x2EFF_0000
VIRT_PCIE_PIO = 0x3EFF_0000
VIRT_PCIE_PIO_SIZE = 0x0001_0000
VIRT_MEM = 0x4000_0000
# extended_memmap[] with highmem on: the high ECAM (the real log's "4010000000-401fffffff : PCI
# ECAM") and the 512 GiB high MMIO window ("BAR 4 [mem 0x8000000000-...]").
VIRT_HIGH_PCIE_ECAM = 0x40_1000_0000
VIRT_HIGH_PCIE_ECAM_SIZE = 0x1000_0000
VIRT_HIGH_PCIE_MMIO = 0x80_0000_0000
VIRT_HIGH_PCIE_MMIO_SIZE = 0x80_0000_0000

# a15irqmap[] (SPI numbers) and include/hw/arm/virt.h PPI numbers; INTID = SPI + 32, PPI + 16.
VIRT_UART_SPI = 1  # INTID 33: "GICv3  33 Level  uart-pl011"
VIRT_RTC_SPI = 2  # INTID 34: "GICv3  34 Level  rtc-pl031"
VIRT_PCIE_SPI = 3  # INTA..INTD on SPIs 3..6 (INTIDs 35..38); Xen's dom0 log shows INTID 36
ARCH_GIC_MAINT_IRQ = 9  # INTID 25: Xen "gic_maintenance_irq=25"
ARCH_TIMER_NS_EL2_IRQ = 10  # INTID 26
ARCH_TIMER_VIRT_IRQ = 11  # INTID 27: "GICv3  27 Level  arch_timer"
ARCH_TIMER_S_EL1_IRQ = 13  # INTID 29
ARCH_TIMER_NS_EL1_IRQ = 14  # INTID 30
VIRTUAL_PMU_IRQ = 7  # INTID 23: "GICv3  23 Level  arm-pmu"
NUM_IRQS = 256  # virt.c: 256 interrupt lines, 32 internal -> "GICv3: 224 SPIs implemented"

GICV3_TARGETLIST_BITS = 16  # virt_cpu_mp_affinity: 16 CPUs per Aff1 cluster with GICv3
MAX_CPUS_REDIST0 = VIRT_GIC_REDIST_SIZE // GICV3_REDIST_SIZE  # 123 in the low region
VIRT_MAX_CPUS = 512  # virt's mc->max_cpus

PsciConduit = Literal["hvc", "smc"]


class MachineConfigError(ValueError):
    """A bad [machine] value: the message names the key, the value and what is allowed."""


@dataclass(frozen=True, slots=True)
class PciFunction:
    """One PCIe function of the machine as Linux enumerates it (bus/device/function)."""

    bus: int
    device: int
    function: int
    vendor: int
    device_id: int
    name: str
    domain: int = 0

    @property
    def devfn(self) -> int:
        """Linux PCI_DEVFN(slot, func)."""
        return (self.device << 3) | self.function

    @property
    def rid(self) -> int:
        """The requester id, Linux ``pci_dev_id``: bus << 8 | devfn."""
        return (self.bus << 8) | self.devfn

    @property
    def devid(self) -> int:
        """The ITS DeviceID: the RID through QEMU virt's identity msi-map / IORT mapping."""
        return self.rid

    @property
    def bdf(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.device:02x}.{self.function}"

    def linux_msi_hwirq(self, msi_index: int) -> int:
        """Linux ``pci_msi_domain_calc_hwirq``: msi_index | pci_dev_id << 11 | domain << 27."""
        return msi_index | (self.rid << 11) | ((self.domain & 0xFFFF_FFFF) << 27)


#: The PCIe topology of the real boots: ``-device pcie-root-port,id=rp0,chassis=1
#: -device virtio-rng-pci,bus=rp0`` (lspci/dmesg: [1b36:0008], [1b36:000c], [1af4:1044]).
QEMU_VIRT_PCI_FUNCTIONS: tuple[PciFunction, ...] = (
    PciFunction(0, 0, 0, 0x1B36, 0x0008, "host bridge"),
    PciFunction(0, 1, 0, 0x1B36, 0x000C, "pcie-root-port"),
    PciFunction(1, 0, 0, 0x1AF4, 0x1044, "virtio-rng-pci"),
)


@dataclass(frozen=True, slots=True)
class VirtMachine:
    """QEMU 7.2 ``-M virt,gic-version=3,its=on`` (no EL3, no EL2 for bare metal).

    ``cpus`` is ``-smp``; ``ram_size`` is ``-m`` (the real boots use 2048 MiB). The PSCI
    conduit is HVC: virt.c picks QEMU_PSCI_CONDUIT_HVC when neither secure=on with firmware
    nor virtualization=on (then it is SMC). ``timer_period_ns`` is this model's simplification
    of the generic timer (0 = the timer never fires; see BareMetalHost); ``timer_freq_hz`` is
    the real log's "arch_timer: cp15 timer(s) running at 62.50MHz (virt)". ``lpi_id_bits``
    is the INTID width the GIC offers LPIs (GICD_TYPER.IDbits + 1; QEMU: 16);
    ``list_registers`` is ICH_VTR_EL2.ListRegs + 1 for a hypervisor (QEMU: 4). ``its`` is
    ``its=on``. CPUs beyond 123 get their redistributors in VIRT_HIGH_GIC_REDIST2.
    """

    cpus: int = 4
    ram_base: int = VIRT_MEM
    ram_size: int = 2 * GiB
    gicd_base: int = VIRT_GIC_DIST
    gicd_size: int = VIRT_GIC_DIST_SIZE
    gicr_base: int = VIRT_GIC_REDIST
    gicr_stride: int = GICV3_REDIST_SIZE
    gicr_region_size: int = VIRT_GIC_REDIST_SIZE
    its_base: int = VIRT_GIC_ITS
    its_size: int = VIRT_GIC_ITS_SIZE
    num_irqs: int = NUM_IRQS
    lpi_id_bits: int = 16
    list_registers: int = 4
    its: bool = True
    psci_conduit: PsciConduit = "hvc"
    uart_base: int = VIRT_UART
    uart_size: int = VIRT_UART_SIZE
    uart_intid: int = 32 + VIRT_UART_SPI
    rtc_base: int = VIRT_RTC
    rtc_intid: int = 32 + VIRT_RTC_SPI
    timer_virt_ppi: int = 16 + ARCH_TIMER_VIRT_IRQ
    timer_phys_ppi: int = 16 + ARCH_TIMER_NS_EL1_IRQ
    timer_sec_ppi: int = 16 + ARCH_TIMER_S_EL1_IRQ
    timer_hyp_ppi: int = 16 + ARCH_TIMER_NS_EL2_IRQ
    maintenance_ppi: int = 16 + ARCH_GIC_MAINT_IRQ
    pmu_ppi: int = 16 + VIRTUAL_PMU_IRQ
    timer_freq_hz: int = 62_500_000
    timer_period_ns: int = 0
    pcie_ecam_base: int = VIRT_HIGH_PCIE_ECAM
    pcie_ecam_size: int = VIRT_HIGH_PCIE_ECAM_SIZE
    pcie_mmio_base: int = VIRT_PCIE_MMIO
    pcie_mmio_size: int = VIRT_PCIE_MMIO_SIZE
    pcie_pio_base: int = VIRT_PCIE_PIO
    pcie_pio_size: int = VIRT_PCIE_PIO_SIZE
    pcie_mmio_high_base: int = VIRT_HIGH_PCIE_MMIO
    pcie_mmio_high_size: int = VIRT_HIGH_PCIE_MMIO_SIZE
    pcie_intx_intids: tuple[int, ...] = tuple(32 + VIRT_PCIE_SPI + i for i in range(4))
    pci_functions: tuple[PciFunction, ...] = field(default=QEMU_VIRT_PCI_FUNCTIONS)

    def __post_init__(self) -> None:
        def bad(key: str, value: object, allowed: str) -> MachineConfigError:
            return MachineConfigError(f"machine.{key} = {value!r}: {allowed}")

        def is_int(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int",) and not is_int(v):
                raise bad(f.name, v, "must be an integer")
        if not 1 <= self.cpus <= VIRT_MAX_CPUS:
            raise bad("cpus", self.cpus, f"must be 1..{VIRT_MAX_CPUS} (virt's max_cpus)")
        if not 14 <= self.lpi_id_bits <= 24:
            raise bad("lpi_id_bits", self.lpi_id_bits, "must be 14..24 (QEMU virt: 16)")
        if not isinstance(self.its, bool):
            raise bad("its", self.its, "must be true or false")
        if not 1 <= self.list_registers <= 16:
            raise bad("list_registers", self.list_registers, "must be 1..16 (ICH_VTR_EL2.ListRegs)")
        if self.psci_conduit not in ("hvc", "smc"):
            raise bad("psci_conduit", self.psci_conduit, 'must be "hvc" or "smc"')
        if self.ram_size <= 0 or self.ram_size % (64 * 1024) or self.ram_base % (64 * 1024):
            raise bad("ram_size", self.ram_size, "must be a positive multiple of 64 KiB")
        if self.timer_period_ns < 0:
            raise bad("timer_period_ns", self.timer_period_ns, "must be >= 0 (0 = timer off)")
        if self.timer_freq_hz <= 0:
            raise bad("timer_freq_hz", self.timer_freq_hz, "must be > 0")
        if not 32 < self.num_irqs <= 1020 or self.num_irqs % 32:
            raise bad("num_irqs", self.num_irqs, "must be a multiple of 32 in 64..1020")

    # -- CPUs -------------------------------------------------------------------------------

    def mpidr(self, cpu: int) -> int:
        """MPIDR affinity of ``cpu`` (virt_cpu_mp_affinity -> arm_cpu_mp_affinity, 16 per Aff1)."""
        if not 0 <= cpu < self.cpus:
            raise ValueError(f"cpu {cpu} out of range 0..{self.cpus - 1}")
        return ((cpu // GICV3_TARGETLIST_BITS) << 8) | (cpu % GICV3_TARGETLIST_BITS)

    def cpu_of_mpidr(self, mpidr: int) -> int | None:
        """The CPU whose affinity is exactly ``mpidr`` (QEMU arm_get_cpu_by_id), or None."""
        if not isinstance(mpidr, int) or mpidr < 0 or mpidr & ~0xFFFF:
            return None
        aff1, aff0 = mpidr >> 8, mpidr & 0xFF
        if aff0 >= GICV3_TARGETLIST_BITS:
            return None
        cpu = aff1 * GICV3_TARGETLIST_BITS + aff0
        return cpu if cpu < self.cpus else None

    # -- GIC frames ---------------------------------------------------------------------------

    def redistributor_base(self, cpu: int) -> int:
        """RD_base of ``cpu``'s redistributor (QEMU lays them out in CPU order, 128 KiB apart,
        the first 123 in VIRT_GIC_REDIST, the rest in VIRT_HIGH_GIC_REDIST2)."""
        if not 0 <= cpu < self.cpus:
            raise ValueError(f"cpu {cpu} out of range 0..{self.cpus - 1}")
        n0 = self.gicr_region_size // self.gicr_stride
        if cpu < n0:
            return self.gicr_base + cpu * self.gicr_stride
        return VIRT_HIGH_GIC_REDIST2 + (cpu - n0) * self.gicr_stride

    @property
    def gicr_size(self) -> int:
        """Bytes of the low GICR region that hold redistributors (the rest reads as nothing)."""
        return min(self.cpus, self.gicr_region_size // self.gicr_stride) * self.gicr_stride

    def gicr_frames(self) -> list[tuple[int, int]]:
        """(base, size) of each redistributor region in use (one, or two beyond 123 CPUs)."""
        out = [(self.gicr_base, self.gicr_size)]
        extra = self.cpus - self.gicr_region_size // self.gicr_stride
        if extra > 0:
            out.append((VIRT_HIGH_GIC_REDIST2, extra * self.gicr_stride))
        return out

    @property
    def its_translater(self) -> int:
        """The MSI doorbell: GITS_TRANSLATER at ITS_base + 0x10040 (its_irq_compose_msi_msg)."""
        return self.its_base + 0x10040

    @property
    def spis(self) -> int:
        """SPIs implemented (the real log's "GICv3: 224 SPIs implemented")."""
        return self.num_irqs - 32

    def mmio_map(self) -> list[dict[str, Any]]:
        """The GIC frames for trace headers (cosim.trace_decode): GICD, GICR (the redistributors
        in use, one entry per region), GITS (only with ``its``)."""
        out: list[dict[str, Any]] = [
            {"frame": "GICD", "base": self.gicd_base, "size": self.gicd_size}
        ]
        out += [{"frame": "GICR", "base": b, "size": n} for b, n in self.gicr_frames()]
        if self.its:
            out.append({"frame": "GITS", "base": self.its_base, "size": self.its_size})
        return out

    def regions(self) -> list[dict[str, Any]]:
        """Every MMIO region of the machine (GIC frames, UART, RTC, PCIe windows), by address."""
        out = self.mmio_map() + [
            {"frame": "UART", "base": self.uart_base, "size": self.uart_size},
            {"frame": "RTC", "base": self.rtc_base, "size": VIRT_RTC_SIZE},
            {"frame": "PCIE_MMIO", "base": self.pcie_mmio_base, "size": self.pcie_mmio_size},
            {"frame": "PCIE_PIO", "base": self.pcie_pio_base, "size": self.pcie_pio_size},
            {"frame": "PCIE_ECAM", "base": self.pcie_ecam_base, "size": self.pcie_ecam_size},
            {
                "frame": "PCIE_MMIO_HIGH",
                "base": self.pcie_mmio_high_base,
                "size": self.pcie_mmio_high_size,
            },
        ]
        return sorted(out, key=lambda r: r["base"])

    def is_ram(self, addr: int, size: int = 1) -> bool:
        return self.ram_base <= addr and addr + size <= self.ram_base + self.ram_size

    # -- PCIe ---------------------------------------------------------------------------------

    def pci_function(self, bdf: str) -> PciFunction:
        """The function named ``bus:dev.fn`` or ``dddd:bus:dev.fn``."""
        for fn in self.pci_functions:
            if bdf in (fn.bdf, fn.bdf[5:]):
                return fn
        known = ", ".join(f.bdf for f in self.pci_functions)
        raise KeyError(f"no PCI function {bdf!r}; this machine has {known}")

    def devid_of(self, bdf: str) -> int:
        """The ITS DeviceID of PCI function ``bdf`` (its requester id)."""
        return self.pci_function(bdf).devid

    # -- scenarios ----------------------------------------------------------------------------

    #: [machine] keys a scenario may set, and the field each one sets.
    CONFIG_KEYS = {
        "cpus": "cpus",
        "pcpus": "cpus",
        "ram_size": "ram_size",
        "ram_mb": "ram_size",
        "lpi_id_bits": "lpi_id_bits",
        "list_registers": "list_registers",
        "its": "its",
        "psci_conduit": "psci_conduit",
        "timer_period_ns": "timer_period_ns",
        "timer_freq_hz": "timer_freq_hz",
        "num_irqs": "num_irqs",
    }

    @classmethod
    def from_config(cls, table: Any = None, **overrides: Any) -> VirtMachine:
        """Build from a scenario's ``[machine]`` table, or an object with those attributes
        (cosim.scenario.Machine); unknown keys are an error naming the key and value.

        ``pcpus`` is an alias of ``cpus`` (the scenario's name), ``ram_mb`` sets ``ram_size``
        in MiB like ``-m``. ``kind = "qemu-virt"`` is accepted and ignored.
        """
        if table is None:
            merged: dict[str, Any] = {}
        elif isinstance(table, Mapping):
            merged = dict(table)
        else:
            names = getattr(table, "__struct_fields__", None) or getattr(
                table, "__dataclass_fields__", {}
            )
            merged = {n: getattr(table, n) for n in names}
        merged.update(overrides)
        kw: dict[str, Any] = {}
        for key, value in merged.items():
            if key in ("kind", "name") and value in ("qemu-virt", "virt"):
                continue
            target = cls.CONFIG_KEYS.get(key)
            if target is None:
                allowed = ", ".join(sorted(cls.CONFIG_KEYS))
                raise MachineConfigError(
                    f"machine.{key} = {value!r}: unknown key; allowed: {allowed}"
                )
            if target == "its":
                if not isinstance(value, bool):
                    raise MachineConfigError(f"machine.{key} = {value!r}: must be true or false")
            elif target != "psci_conduit" and (
                not isinstance(value, int) or isinstance(value, bool)
            ):
                raise MachineConfigError(f"machine.{key} = {value!r}: must be an integer")
            if target in kw:
                raise MachineConfigError(f"machine.{key} = {value!r}: {target} given twice")
            kw[target] = value * MiB if key == "ram_mb" else value
        return cls(**kw)

    def with_(self, **changes: Any) -> VirtMachine:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
