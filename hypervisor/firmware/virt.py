"""QEMU 7.2 ``virt`` (GICv3 + ITS) firmware blobs, and what Xen 4.17 builds for its dom0.

Three boot paths are modelled, each returning a frozen :class:`BootBlobs`:

* :func:`qemu_virt_dtb` / :func:`qemu_virt_dt_blobs`: the device tree QEMU generates
  (``hw/arm/virt.c``: ``create_fdt``, ``fdt_add_cpu_nodes``, ``fdt_add_gic_node``,
  ``fdt_add_its_gic_node``, ``fdt_add_psci_node``, ``fdt_add_timer_nodes``,
  ``create_pcie``; memory and /chosen from ``hw/arm/boot.c``), booted without UEFI.
* :func:`qemu_virt_acpi_tables` / :func:`qemu_virt_uefi_blobs`: QEMU's ACPI tables
  (``hw/arm/virt-acpi-build.c``) and EDK II's SMBIOS 3.0 and memory attributes tables,
  handed through EDK II to the Linux EFI stub, which generates an empty DTB with the
  ``linux,uefi-*`` /chosen properties (built here) and installs its own configuration
  tables (INITRD, RNG, MEMRESERVE: the guest's stub model).
* :func:`xen_acpi_dom0_blobs` (``prepare_acpi``, ``create_acpi_dtb``,
  ``acpi_create_efi_system_table``, ``acpi_create_efi_mmap_table``) and
  :func:`xen_dt_dom0_dtb` (``handle_node``, ``make_hypervisor_node``, ``make_gic_node``).

Not modelled (documented gaps): flash, fw-cfg, pl031, pl061, gpio-keys, platform bus and
virtio-mmio nodes; PPTT, SPCR and DBG2 tables; QEMU's DSDT AML (an empty DSDT stands in);
the node and property order libfdt's insert-first semantics give QEMU's tree; the
exact phandle numbers (allocated in QEMU's order from 0x8000, not checked against a dump).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from hypervisor.firmware import acpi, efi
from hypervisor.firmware.fdt import Node, build_dtb, reg, u32, u64

_V = TypeVar("_V")

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# hw/arm/virt.c base_memmap / extended_memmap (QEMU 7.2, highmem on).
VIRT_GIC_DIST = (0x0800_0000, 0x1_0000)
VIRT_GIC_ITS = (0x0808_0000, 0x2_0000)
VIRT_GIC_REDIST = (0x080A_0000, 0xF6_0000)
VIRT_HIGH_GIC_REDIST2 = (0x40_0000_0000, 64 * MiB)
VIRT_UART = (0x0900_0000, 0x1000)
VIRT_PCIE_MMIO = (0x1000_0000, 0x2EFF_0000)
VIRT_PCIE_PIO = (0x3EFF_0000, 0x1_0000)
VIRT_HIGH_PCIE_ECAM = (0x40_1000_0000, 256 * MiB)
VIRT_HIGH_PCIE_MMIO = (0x80_0000_0000, 512 * GiB)
VIRT_MEM_BASE = 0x4000_0000
VIRT_UART_SPI = 1
VIRT_PCIE_SPI = 3  # ... to 6
GICV3_REDIST_SIZE = 0x2_0000  # RD_base + SGI_base frames per redistributor
ARCH_GIC_MAINT_IRQ = 25  # PPI 9
VIRTUAL_PMU_IRQ = 23  # PPI 7
QEMU_PHANDLE_START = 0x8000

# Device-tree interrupt specifier values (GIC binding).
GIC_FDT_IRQ_TYPE_SPI = 0
GIC_FDT_IRQ_TYPE_PPI = 1
GIC_FDT_IRQ_FLAGS_LEVEL_HI = 4
DT_IRQ_TYPE_LEVEL_LOW = 8

# PSCI 0.2+ function IDs QEMU writes into /psci (SMC64 where an address is passed).
QEMU_PSCI_0_2_FN64_CPU_SUSPEND = 0xC400_0001
QEMU_PSCI_0_2_FN_CPU_OFF = 0x8400_0002
QEMU_PSCI_0_2_FN64_CPU_ON = 0xC400_0003
QEMU_PSCI_0_2_FN64_MIGRATE = 0xC400_0005
# Xen's PSCI 0.1 IDs for dom0 (xen/include/public/arch-arm.h).
XEN_PSCI_cpu_off = 1
XEN_PSCI_cpu_on = 2

# FDT PCI ranges space codes.
FDT_PCI_RANGE_IOPORT = 0x0100_0000
FDT_PCI_RANGE_MMIO = 0x0200_0000
FDT_PCI_RANGE_MMIO_64BIT = 0x0300_0000

#: Where EDK II left QEMU's ACPI tables in native-uefi-acpi.log (-m 2048, 4 CPUs);
#: reused as the host's table addresses under Xen, which maps them 1:1 into dom0.
HOST_ACPI_ADDRESSES: Mapping[str, int] = MappingProxyType(
    {
        "RSDP": 0xBC43_0018,
        "XSDT": 0xBC43_FE98,
        "FACP": 0xBC43_FA98,
        "DSDT": 0xBC43_7518,
        "APIC": 0xBC43_FC18,
        "GTDT": 0xBC43_E818,
        "MCFG": 0xBC43_E918,
        "IORT": 0xBC43_E718,
    }
)
#: The firmware's ACPI reclaim region holding those tables ("bc430000-bc43ffff : reserved").
HOST_ACPI_REGION = (0xBC43_0000, 0x1_0000)
#: The MEMRESERVE table v6.1's EFI stub installed in native-uefi-acpi.log (the second
#: EfiLoaderData pool block the stub kept; v5.15's stub, which installs no INITRD table
#: first, gets the first one, NATIVE_POOL_LOADER_DATA).
NATIVE_MEMRESERVE_ADDR = 0xBC42_FF98
#: EDK II's SMBIOS 3.0 entry point in native-uefi-acpi.log ("SMBIOS 3.0=0xbfed0000",
#: sysfs "SMBIOS3=0xbfed0000"): page-allocated EfiRuntimeServicesData.
NATIVE_SMBIOS3_ADDR = 0xBFED_0000
#: EDK II's EFI_MEMORY_ATTRIBUTES_TABLE ("MEMATTR=0xbcc31518"; "bcc31000-bcc31fff :
#: reserved" inside System RAM: a boot-services-data pool block efi_memattr_init reserves).
NATIVE_MEMATTR_ADDR = 0xBCC3_1518
#: Where the stub's efi_allocate_pages put the initrd it read through LoadFile2
#: (native-uefi-acpi.log /proc/iomem "bc320000-bc417fff : reserved", 0xf8000 bytes).
NATIVE_INITRD_ADDR = 0xBC32_0000
#: First free block (POOL_HEAD) of each EDK II pool the stub allocates from: the stub's
#: first EfiLoaderData block held INITRD=0xbc42ff18 and its RNG seed (EfiACPIReclaimMemory
#: in v6.1) RNG=0xbc43e498 in native-uefi-acpi.log; the EfiRuntimeServicesData pool
#: (v5.15's RNG seed, not in any log) is a model choice in the runtime region after the
#: system table.
NATIVE_POOL_LOADER_DATA = 0xBC42_FF00
NATIVE_POOL_ACPI_RECLAIM = 0xBC43_E480
NATIVE_POOL_RUNTIME_DATA = 0xBFBE_1000


@dataclass(frozen=True)
class BootBlobs:
    """Everything a kernel is handed, and where each piece sits in guest-physical memory.

    ``acpi`` is keyed by signature ("RSDP" for the RSDP); ``efi_tables`` holds the other
    configuration tables the firmware installed, keyed by name ("SMBIOS3" entry point,
    "SMBIOS3_TABLE" structure table, "MEMATTR"); ``addresses`` has one key per blob: "dtb",
    each ACPI signature, each ``efi_tables`` name, "EFI_SYSTEM_TABLE", "EFI_MEMMAP",
    "MEMRESERVE", "initrd" (start; "initrd_end" too). Empty bytes mean "not present on this
    path". On the UEFI path ``addresses`` also carries the boot-services facts the EFI stub
    uses (``efi.EFI_POOL_KEYS``, ``efi.EFI_CONFIG_TABLE_SLOTS``, ``efi.EFI_RNG_PROTOCOL``);
    "initrd" there is the file EDK II's LoadFile2 device path serves, where the stub
    loads it.
    """

    dtb: bytes
    acpi: Mapping[str, bytes] = field(default_factory=dict)
    efi_system_table: bytes = b""
    memmap: bytes = b""
    memreserve: bytes = b""
    addresses: Mapping[str, int] = field(default_factory=dict)
    efi_tables: Mapping[str, bytes] = field(default_factory=dict)

    def placements(self) -> list[tuple[int, bytes]]:
        """(address, bytes) for every blob, sorted by address, to copy into guest RAM."""
        out: list[tuple[int, bytes]] = [(self.addresses["dtb"], self.dtb)]
        out += [(self.addresses[sig], data) for sig, data in self.acpi.items()]
        out += [(self.addresses[name], data) for name, data in self.efi_tables.items()]
        for key, data in (
            ("EFI_SYSTEM_TABLE", self.efi_system_table),
            ("EFI_MEMMAP", self.memmap),
            ("MEMRESERVE", self.memreserve),
        ):
            if data:
                out.append((self.addresses[key], data))
        return sorted(out, key=lambda p: p[0])


def _frozen(d: Mapping[str, _V]) -> Mapping[str, _V]:
    """A read-only copy, so a frozen BootBlobs cannot be changed through its dicts."""
    return MappingProxyType(dict(d))


# --- CPU identities ------------------------------------------------------------------


def qemu_mpidr(cpu: int) -> int:
    """``virt_cpu_mp_affinity`` for GICv3 (clusters of GICV3_TARGETLIST_BITS = 16):
    Aff0 = cpu % 16, Aff1 = cpu / 16 (``arm_cpu_mp_affinity``)."""
    return ((cpu // 16) << 8) | (cpu % 16)


def xen_vaffinity(vcpu: int) -> int:
    """Xen ``vcpuid_to_vaffinity``: Aff0 = vcpuid & 0xf, Aff1 = vcpuid >> 4."""
    return (((vcpu >> 4) & 0xFF) << 8) | (vcpu & 0xF)


def redist_regions(cpus: int) -> list[tuple[int, int]]:
    """``virt_gicv3_redist_region_count``: a second region above 4 GiB past 123 CPUs."""
    if cpus <= VIRT_GIC_REDIST[1] // GICV3_REDIST_SIZE:
        return [VIRT_GIC_REDIST]
    return [VIRT_GIC_REDIST, VIRT_HIGH_GIC_REDIST2]


def _seed_bytes(seed: int, n: int) -> bytes:
    """Deterministic stand-in for ``qemu_guest_getrandom`` (kaslr-seed, rng-seed)."""
    return hashlib.sha256(seed.to_bytes(8, "little")).digest()[:n]


@dataclass(frozen=True, slots=True)
class QemuPhandles:
    """QEMU allocates phandles from 0x8000: clock, CPUs (highest first), GIC, ITS."""

    clock: int
    cpus: tuple[int, ...]
    gic: int
    its: int

    @classmethod
    def for_cpus(cls, cpus: int) -> QemuPhandles:
        p = QEMU_PHANDLE_START
        cpu_ph = tuple(p + cpus - i for i in range(cpus))  # cpu@N-1 gets p+1
        return cls(clock=p, cpus=cpu_ph, gic=p + cpus + 1, its=p + cpus + 2)


# --- QEMU virt device tree ---------------------------------------------------------------


def _virt_root(ph: QemuPhandles, chosen: Node) -> Node:
    """The root of QEMU virt's tree up to its first devices (create_fdt): identity, cells,
    the GIC as interrupt parent, /chosen and the APB clock; Xen's DT dom0 keeps them as is."""
    return (
        Node("")
        .prop("compatible", "linux,dummy-virt")
        .prop("#address-cells", u32(2))
        .prop("#size-cells", u32(2))
        .prop("model", "linux,dummy-virt")
        .prop("interrupt-parent", u32(ph.gic))
        .child(chosen)
        .child(
            Node("apb-pclk")
            .prop("compatible", "fixed-clock")
            .prop("#clock-cells", u32(0))
            .prop("clock-frequency", u32(24_000_000))
            .prop("clock-output-names", "clk24mhz")
            .prop("phandle", u32(ph.clock))
        )
    )


def _gic_node_qemu(cpus: int, its: bool, virtualization: bool, ph: QemuPhandles) -> Node:
    """``fdt_add_gic_node`` + ``fdt_add_its_gic_node``."""
    regions = redist_regions(cpus)
    gic = (
        Node(f"intc@{VIRT_GIC_DIST[0]:x}")
        .prop("#interrupt-cells", u32(3))
        .prop("interrupt-controller")
        .prop("#address-cells", u32(2))
        .prop("#size-cells", u32(2))
        .prop("ranges")
        .prop("compatible", "arm,gic-v3")
        .prop("#redistributor-regions", u32(len(regions)))
        .prop("reg", reg(2, 2, VIRT_GIC_DIST, *regions))
    )
    if virtualization:
        gic.prop(
            "interrupts",
            u32(GIC_FDT_IRQ_TYPE_PPI, ARCH_GIC_MAINT_IRQ - 16, GIC_FDT_IRQ_FLAGS_LEVEL_HI),
        )
    gic.prop("phandle", u32(ph.gic))
    if its:
        gic.child(
            Node(f"its@{VIRT_GIC_ITS[0]:x}")
            .prop("compatible", "arm,gic-v3-its")
            .prop("msi-controller")
            .prop("#msi-cells", u32(1))
            .prop("reg", reg(2, 2, VIRT_GIC_ITS))
            .prop("phandle", u32(ph.its))
        )
    return gic


def _pcie_node_qemu(gic_phandle: int, its_phandle: int | None) -> Node:
    """``create_pcie`` + ``create_pcie_irq_map`` (highmem ECAM and MMIO)."""
    ecam_base, ecam_size = VIRT_HIGH_PCIE_ECAM
    nr_buses = ecam_size // MiB
    node = (
        Node(f"pcie@{VIRT_PCIE_MMIO[0]:x}")
        .prop("compatible", "pci-host-ecam-generic")
        .prop("device_type", "pci")
        .prop("#address-cells", u32(3))
        .prop("#size-cells", u32(2))
        .prop("linux,pci-domain", u32(0))
        .prop("bus-range", u32(0, nr_buses - 1))
        .prop("dma-coherent")
    )
    if its_phandle is not None:
        node.prop("msi-map", u32(0, its_phandle, 0, 0x10000))
    node.prop("reg", reg(2, 2, VIRT_HIGH_PCIE_ECAM))
    ranges = (
        u32(FDT_PCI_RANGE_IOPORT)
        + u64(0, VIRT_PCIE_PIO[0], VIRT_PCIE_PIO[1])
        + u32(FDT_PCI_RANGE_MMIO)
        + u64(VIRT_PCIE_MMIO[0], VIRT_PCIE_MMIO[0], VIRT_PCIE_MMIO[1])
        + u32(FDT_PCI_RANGE_MMIO_64BIT)
        + u64(VIRT_HIGH_PCIE_MMIO[0], VIRT_HIGH_PCIE_MMIO[0], VIRT_HIGH_PCIE_MMIO[1])
    )
    node.prop("ranges", ranges)
    node.prop("#interrupt-cells", u32(1))
    irq_map: list[int] = []
    for devfn in range(0, 0x20, 0x8):
        for pin in range(4):
            spi = VIRT_PCIE_SPI + (pin + (devfn >> 3)) % 4
            irq_map += [
                devfn << 8,
                0,
                0,
                pin + 1,
                gic_phandle,
                0,
                0,
                GIC_FDT_IRQ_TYPE_SPI,
                spi,
                GIC_FDT_IRQ_FLAGS_LEVEL_HI,
            ]
    node.prop("interrupt-map", u32(*irq_map))
    # QEMU writes cpu_to_be16(PCI_DEVFN(3, 0)) into a 32-bit cell: 0x1800 on a LE host.
    node.prop("interrupt-map-mask", u32(0x1800, 0, 0, 7))
    return node


def _psci_node_qemu(virtualization: bool) -> Node:
    """``fdt_add_psci_node`` for PSCI 1.1 CPUs: conduit HVC, or SMC with virtualization=on
    (``machvirt_init``: EL2 present means EL1 guests' HVC would go to the hypervisor)."""
    return (
        Node("psci")
        .prop("compatible", ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
        .prop("method", "smc" if virtualization else "hvc")
        .prop("cpu_suspend", u32(QEMU_PSCI_0_2_FN64_CPU_SUSPEND))
        .prop("cpu_off", u32(QEMU_PSCI_0_2_FN_CPU_OFF))
        .prop("cpu_on", u32(QEMU_PSCI_0_2_FN64_CPU_ON))
        .prop("migrate", u32(QEMU_PSCI_0_2_FN64_MIGRATE))
    )


def _cpus_node_qemu(cpus: int, ph: QemuPhandles) -> Node:
    """``fdt_add_cpu_nodes`` (-smp N = 1 socket, 1 cluster, N cores, cortex-a57)."""
    node = Node("cpus").prop("#address-cells", u32(1)).prop("#size-cells", u32(0))
    for cpu in range(cpus):
        c = Node(f"cpu@{cpu}").prop("device_type", "cpu").prop("compatible", "arm,cortex-a57")
        if cpus > 1:
            c.prop("enable-method", "psci")
        c.prop("reg", u32(qemu_mpidr(cpu))).prop("phandle", u32(ph.cpus[cpu]))
        node.child(c)
    cluster = Node("cluster0")
    for cpu in range(cpus):
        cluster.child(Node(f"core{cpu}").prop("cpu", u32(ph.cpus[cpu])))
    node.child(Node("cpu-map").child(Node("socket0").child(cluster)))
    return node


def _timer_node_qemu() -> Node:
    """``fdt_add_timer_nodes``: secure, non-secure, virtual, hyp timer PPIs, level-high."""
    flags = GIC_FDT_IRQ_FLAGS_LEVEL_HI
    return (
        Node("timer")
        .prop("compatible", ["arm,armv8-timer", "arm,armv7-timer"])
        .prop("always-on")
        .prop("interrupts", u32(1, 13, flags, 1, 14, flags, 1, 11, flags, 1, 10, flags))
    )


def qemu_virt_dtb(
    cpus: int = 4,
    ram_size: int = 2 * GiB,
    bootargs: str = "",
    initrd: tuple[int, int] | None = None,
    its: bool = True,
    virtualization: bool = False,
    seed: int = 0,
) -> bytes:
    """The DTB QEMU 7.2 hands a ``-kernel`` guest on ``-M virt,gic-version=3,its=on``.

    ``initrd`` is (start, end); QEMU writes them as #address-cells (2) sized cells.
    """
    if cpus < 1:
        raise ValueError(f"cpus must be >= 1, not {cpus}")
    ph = QemuPhandles.for_cpus(cpus)
    chosen = Node("chosen")
    if bootargs:
        chosen.prop("bootargs", bootargs)
    chosen.prop("kaslr-seed", _seed_bytes(seed, 8)).prop("rng-seed", _seed_bytes(seed + 1, 32))
    chosen.prop("stdout-path", f"/pl011@{VIRT_UART[0]:x}")
    if initrd is not None:
        chosen.prop("linux,initrd-start", u64(initrd[0])).prop("linux,initrd-end", u64(initrd[1]))
    root = (
        _virt_root(ph, chosen)
        .child(_cpus_node_qemu(cpus, ph))
        .child(_timer_node_qemu())
        .child(_psci_node_qemu(virtualization))
        .child(
            Node("pmu")
            .prop("compatible", "arm,armv8-pmuv3")
            .prop("interrupts", u32(1, VIRTUAL_PMU_IRQ - 16, GIC_FDT_IRQ_FLAGS_LEVEL_HI))
        )
        .child(_gic_node_qemu(cpus, its, virtualization, ph))
        .child(
            Node(f"pl011@{VIRT_UART[0]:x}")
            .prop("compatible", ["arm,pl011", "arm,primecell"])
            .prop("reg", reg(2, 2, VIRT_UART))
            .prop(
                "interrupts", u32(GIC_FDT_IRQ_TYPE_SPI, VIRT_UART_SPI, GIC_FDT_IRQ_FLAGS_LEVEL_HI)
            )
            .prop("clock-names", ["uartclk", "apb_pclk"])
            .prop("clocks", u32(ph.clock, ph.clock))
        )
        .child(_pcie_node_qemu(ph.gic, ph.its if its else None))
        .child(
            Node(f"memory@{VIRT_MEM_BASE:x}")
            .prop("device_type", "memory")
            .prop("reg", reg(2, 2, (VIRT_MEM_BASE, ram_size)))
        )
    )
    return build_dtb(root)


def qemu_virt_dt_blobs(
    cpus: int = 4,
    ram_size: int = 2 * GiB,
    bootargs: str = "console=ttyAMA0",
    initrd_size: int = 0,
    its: bool = True,
    seed: int = 0,
) -> BootBlobs:
    """A ``-kernel`` boot without UEFI (native-dt-noefi.log). ``arm_setup_direct_kernel_boot``
    puts the initrd at RAM + min(ram/2, 128 MiB) and the DTB after it, 2 MiB aligned."""
    initrd_start = VIRT_MEM_BASE + min(ram_size // 2, 128 * MiB)
    initrd = (initrd_start, initrd_start + initrd_size) if initrd_size else None
    dtb_addr = -(-(initrd_start + initrd_size) // (2 * MiB)) * (2 * MiB)
    dtb = qemu_virt_dtb(cpus, ram_size, bootargs, initrd, its, False, seed)
    addrs = {"dtb": dtb_addr}
    if initrd:
        addrs |= {"initrd": initrd[0], "initrd_end": initrd[1]}
    return BootBlobs(dtb=dtb, addresses=_frozen(addrs))


# --- QEMU virt ACPI tables --------------------------------------------------------------


def qemu_virt_madt(cpus: int, its: bool = True, virtualization: bool = False) -> bytes:
    """``build_madt``: GICD, one 80-byte GICC per CPU (PMU PPI 23; VGIC maintenance 25 only
    with virtualization=on; GICC/GICR base 0), GICR region(s), ITS 0. 44 + 24 + 80n + 16 + 20
    bytes: 0x1A8 for 4 CPUs."""
    entries: list[acpi.MadtEntry] = [acpi.Gicd(VIRT_GIC_DIST[0])]
    entries += [
        acpi.Gicc(
            cpu_interface_number=i,
            uid=i,
            arm_mpidr=qemu_mpidr(i),
            performance_interrupt=VIRTUAL_PMU_IRQ,
            vgic_interrupt=ARCH_GIC_MAINT_IRQ if virtualization else 0,
        )
        for i in range(cpus)
    ]
    entries += [acpi.Gicr(b, s) for b, s in redist_regions(cpus)]
    if its:
        entries.append(acpi.GicIts(0, VIRT_GIC_ITS[0]))
    return acpi.madt(entries)


def qemu_virt_acpi_tables(
    cpus: int = 4,
    its: bool = True,
    virtualization: bool = False,
    addresses: Mapping[str, int] = HOST_ACPI_ADDRESSES,
) -> dict[str, bytes]:
    """``virt_acpi_build`` (+ EDK II's RSDP/XSDT): FACP, APIC, GTDT, MCFG, IORT (with ITS),
    an empty DSDT, XSDT and RSDP, keyed by signature and laid out at ``addresses``.

    FADT ARM boot flags follow the PSCI conduit: HVC (COMPLIANT | USE_HVC) without
    virtualization, SMC (COMPLIANT only) with virtualization=on, as ``build_fadt_rev6``.
    """
    flags = acpi.ACPI_FADT_PSCI_COMPLIANT | (0 if virtualization else acpi.ACPI_FADT_PSCI_USE_HVC)
    tables: dict[str, bytes] = {
        "DSDT": acpi.dsdt_empty(),
        "FACP": acpi.fadt(flags, addresses["DSDT"]),
        "APIC": qemu_virt_madt(cpus, its, virtualization),
        "GTDT": acpi.gtdt(),
        "MCFG": acpi.mcfg(VIRT_HIGH_PCIE_ECAM[0]),
    }
    if its:
        tables["IORT"] = acpi.iort_qemu_virt()
    xsdt_sigs = [s for s in ("FACP", "APIC", "GTDT", "MCFG", "IORT") if s in tables]
    tables["XSDT"] = acpi.xsdt([addresses[s] for s in xsdt_sigs])
    tables["RSDP"] = acpi.rsdp(addresses["XSDT"])
    return tables


def efi_stub_dtb(
    bootargs: str,
    systab: int,
    mmap_start: int,
    mmap_size: int,
    desc_size: int = efi.EFI_MEMORY_DESCRIPTOR_SIZE,
    desc_ver: int = efi.EFI_MEMORY_DESCRIPTOR_VERSION,
) -> bytes:
    """The Linux EFI stub's "empty DTB" (libstub/fdt.c ``update_fdt``): root cell sizes 2/2
    (``fdt_update_cell_size``) and /chosen with bootargs and the five linux,uefi-* properties."""
    chosen = Node("chosen")
    if bootargs:
        chosen.prop("bootargs", bootargs)
    chosen.prop("linux,uefi-system-table", u64(systab))
    chosen.prop("linux,uefi-mmap-start", u64(mmap_start))
    chosen.prop("linux,uefi-mmap-size", u32(mmap_size))
    chosen.prop("linux,uefi-mmap-desc-size", u32(desc_size))
    chosen.prop("linux,uefi-mmap-desc-ver", u32(desc_ver))
    root = Node("").prop("#address-cells", u32(2)).prop("#size-cells", u32(2)).child(chosen)
    return build_dtb(root)


#: Placements for the native UEFI model (EDK II's real choices are not all in the log).
NATIVE_UEFI_DTB = 0xBC42_0000
NATIVE_UEFI_MEMMAP = 0xBC42_E000
NATIVE_UEFI_SYSTAB = 0xBFBE_0018


def qemu_virt_uefi_blobs(
    cpus: int = 4,
    ram_size: int = 2 * GiB,
    bootargs: str = "console=ttyAMA0 acpi=force",
    its: bool = True,
    initrd_size: int = 0,
    rng: bool = True,
) -> BootBlobs:
    """QEMU + EDK II as the Linux EFI stub finds them (native-uefi-acpi.log).

    ACPI tables at the log's addresses; an EFI system table (vendor "EDK II", 2.70) whose
    configuration table array holds what EDK II installed, in the order Linux prints them:
    SMBIOS 3.0 (SmbiosDxe: a 3.0 entry point and a minimal structure table, End-of-Table
    only), MEMATTR (an EFI_MEMORY_ATTRIBUTES_TABLE header without entries) and ACPI 2.0
    (the RSDP), in an array of CONFIG_TABLE_SIZE_INCREASED slots with room for the stub's
    own tables. EDK II's other, unnamed tables (DXE services, HOB list, ...) are not
    modelled. The EFI stub installs INITRD (v6.1), RNG and MEMRESERVE itself
    (guest/efi.py), from the pools named in ``addresses``.

    ``initrd_size`` (-initrd): QemuKernelLoaderFsDxe serves the file through the LoadFile2
    LINUX_EFI_INITRD_MEDIA_GUID device path; "initrd" is where the stub's efi_allocate_pages
    puts it. ``rng``: VirtioRngDxe binds the virtio-rng-pci device, so EFI_RNG_PROTOCOL is
    there for efi_random_get_seed.

    The memory map is the one the stub passes on after ExitBootServices: the initrd and the
    stub's DTB/memory map/pool area as EfiLoaderData, the ACPI tables (and the ACPI reclaim
    pool) as EfiACPIReclaimMemory, the MEMATTR pool page as EfiBootServicesData, and the
    runtime region (system table, runtime pool, SMBIOS) as EfiRuntimeServicesData.
    """
    tables = qemu_virt_acpi_tables(cpus, its, False)
    addrs: dict[str, int] = {s: HOST_ACPI_ADDRESSES[s] for s in tables}
    smbios_table = efi.smbios_end_of_table()
    smbios_table_addr = NATIVE_SMBIOS3_ADDR + efi.SMBIOS3_ENTRY_POINT_LENGTH
    efi_tables = {
        "SMBIOS3": efi.smbios3_entry_point(smbios_table_addr, len(smbios_table)),
        "SMBIOS3_TABLE": smbios_table,
        "MEMATTR": efi.memory_attributes_table(),
    }
    addrs |= {
        "SMBIOS3": NATIVE_SMBIOS3_ADDR,
        "SMBIOS3_TABLE": smbios_table_addr,
        "MEMATTR": NATIVE_MEMATTR_ADDR,
    }
    systab, _ = efi.system_table(
        NATIVE_UEFI_SYSTAB,
        [
            (efi.SMBIOS3_TABLE_GUID, NATIVE_SMBIOS3_ADDR),
            (efi.EFI_MEMORY_ATTRIBUTES_TABLE_GUID, NATIVE_MEMATTR_ADDR),
            (efi.ACPI_20_TABLE_GUID, addrs["RSDP"]),
        ],
        fw_vendor="EDK II",
        revision=efi.efi_revision(2, 70),
        fw_revision=0x10000,
        header_size_covers_all=False,
        config_slots=efi.CONFIG_TABLE_SIZE_INCREASED,
    )
    ram_end = VIRT_MEM_BASE + ram_size
    acpi_start, acpi_len = HOST_ACPI_REGION
    runtime = NATIVE_UEFI_SYSTAB & ~0xFFF
    memattr_page = NATIVE_MEMATTR_ADDR & ~0xFFF
    initrd_pages = -(-initrd_size // efi.EFI_PAGE_SIZE) * efi.EFI_PAGE_SIZE
    spans: list[tuple[int, int, int]] = []  # (type, start, end)
    if initrd_size:
        spans += [
            (efi.EfiConventionalMemory, VIRT_MEM_BASE, NATIVE_INITRD_ADDR),
            (efi.EfiLoaderData, NATIVE_INITRD_ADDR, NATIVE_INITRD_ADDR + initrd_pages),
            (efi.EfiConventionalMemory, NATIVE_INITRD_ADDR + initrd_pages, NATIVE_UEFI_DTB),
        ]
    else:
        spans.append((efi.EfiConventionalMemory, VIRT_MEM_BASE, NATIVE_UEFI_DTB))
    spans += [
        (efi.EfiLoaderData, NATIVE_UEFI_DTB, acpi_start),
        (efi.EfiACPIReclaimMemory, acpi_start, acpi_start + acpi_len),
        (efi.EfiConventionalMemory, acpi_start + acpi_len, memattr_page),
        (efi.EfiBootServicesData, memattr_page, memattr_page + efi.EFI_PAGE_SIZE),
        (efi.EfiConventionalMemory, memattr_page + efi.EFI_PAGE_SIZE, runtime),
        (efi.EfiRuntimeServicesData, runtime, ram_end),
    ]
    descs = [efi.region(t, a, b - a) for t, a, b in spans if b > a]
    mmap = efi.memory_map(descs)
    dtb = efi_stub_dtb(bootargs, NATIVE_UEFI_SYSTAB, NATIVE_UEFI_MEMMAP, len(mmap))
    addrs |= {
        "dtb": NATIVE_UEFI_DTB,
        "EFI_SYSTEM_TABLE": NATIVE_UEFI_SYSTAB,
        "EFI_MEMMAP": NATIVE_UEFI_MEMMAP,
        efi.EFI_POOL_KEYS[efi.EfiLoaderData]: NATIVE_POOL_LOADER_DATA,
        efi.EFI_POOL_KEYS[efi.EfiACPIReclaimMemory]: NATIVE_POOL_ACPI_RECLAIM,
        efi.EFI_POOL_KEYS[efi.EfiRuntimeServicesData]: NATIVE_POOL_RUNTIME_DATA,
        efi.EFI_CONFIG_TABLE_SLOTS: efi.CONFIG_TABLE_SIZE_INCREASED,
        efi.EFI_RNG_PROTOCOL: int(rng),
    }
    if initrd_size:
        addrs |= {"initrd": NATIVE_INITRD_ADDR, "initrd_end": NATIVE_INITRD_ADDR + initrd_size}
    return BootBlobs(
        dtb, _frozen(tables), systab, mmap, b"", _frozen(addrs), efi_tables=_frozen(efi_tables)
    )


# --- Xen 4.17 dom0 ---------------------------------------------------------------------

XEN_VERSION = "4.17"
#: dom0 RAM banks for dom0_mem=768M on this machine (xen-dom0-dt.log: memory@60000000;
#: extended regions 0x40400000-0x60000000, 0x80000000-0xa0000000, 0xb0000000-0xc0000000).
XEN_DOM0_BANKS: tuple[tuple[int, int], ...] = ((0x6000_0000, 512 * MiB), (0xA000_0000, 256 * MiB))
XEN_EXT_REGIONS: tuple[tuple[int, int], ...] = (
    (0x4040_0000, 0x1C00_0000),
    (0x8000_0000, 0x2000_0000),
    (0xB000_0000, 0x1000_0000),
)
#: ``find_gnttab_region``: __pa(_stext), min(opt_max_grant_frames = 64, text pages) pages.
XEN_GNTTAB = (0x4020_0000, 64 * 4096)
#: "Allocating PPI 16 for event channel interrupt" (xen-dom0-dt.log).
XEN_EVTCHN_IRQ = 16


def xen_place_modules(bank0: tuple[int, int], dtb_size: int, initrd_size: int) -> tuple[int, int]:
    """Xen ``place_modules``: DTB at RAM + 128 MiB, initrd after ROUNDUP(dtb, 2 MiB)."""
    dtb_addr = bank0[0] + 128 * MiB
    return dtb_addr, dtb_addr + -(-max(dtb_size, 1) // (2 * MiB)) * (2 * MiB)


def _xen_chosen(bootargs: str, initrd: tuple[int, int] | None, extra: Node | None = None) -> Node:
    """``make_chosen_node``: bootargs and, with an initrd, u64 linux,initrd-start/end
    (placeholders patched in place by ``initrd_load``)."""
    chosen = extra if extra is not None else Node("chosen")
    if bootargs:
        chosen.prop("bootargs", bootargs)
    if initrd is not None:
        chosen.prop("linux,initrd-start", u64(initrd[0])).prop("linux,initrd-end", u64(initrd[1]))
    return chosen


def _xen_interrupt(irq: int, cpumask: int = 0xF, level: int = DT_IRQ_TYPE_LEVEL_LOW) -> list[int]:
    """Xen ``set_interrupt``: <is_ppi, irq - 16|32, cpumask << 8 | level>."""
    ppi = irq < 32
    return [1 if ppi else 0, irq - (16 if ppi else 32), (cpumask << 8) | level]


def xen_acpi_dom0_blobs(
    vcpus: int,
    has_its: bool,
    efi_memreserve: bool = False,
    *,
    bootargs: str = "console=hvc0",
    initrd_size: int = 0,
    pcpus: int = 4,
    banks: Sequence[tuple[int, int]] = XEN_DOM0_BANKS,
    gnttab: tuple[int, int] = XEN_GNTTAB,
    xen_version: str = XEN_VERSION,
) -> BootBlobs:
    """What Xen 4.17 (with CONFIG_ACPI) hands an ACPI dom0 on QEMU virt, virtualization=on.

    ``prepare_acpi`` places one blob at the grant-table region (Xen's text, not dom0 RAM),
    tables in ``EFI_MEM_RES`` order, each 8-aligned (``acpi_get_table_offset``): FADT (host
    copy | PSCI_COMPLIANT | PSCI_USE_HVC), MADT (host header + GICD, then
    ``gicv3_make_hwdom_madt``: one GICC per vCPU cloned from host GICC 0, UID = interface =
    i, MPIDR = ``vcpuid_to_vaffinity``, parking/PMU/GICV/GICH/GICR/VGIC zeroed; the GICR
    regions dom0 uses; the host ITS entries only with ``has_its``), STAO, XSDT (host copy,
    FACP/APIC replaced, STAO appended), RSDP (host copy, new XSDT address; see
    :func:`_xen_rsdp`), the EFI system table, the memory map. Host DSDT, GTDT, MCFG and
    IORT stay at their host addresses (``acpi_map_other_tables``).

    ``efi_memreserve=True`` models Leo Yan's rejected patch ("xen/arm: acpi: Support memory
    reserve configuration table", 2022-08-17): a second configuration entry
    (LINUX_EFI_MEMRESERVE_TABLE_GUID) pointing at a bare memreserve header placed after the
    memory map. That placement is ours; the patch's exact layout is not modelled.

    The DTB (``create_acpi_dtb``): root #address-cells 2 / #size-cells 1, /chosen,
    /hypervisor (compatible only) and /hypervisor/uefi (``acpi_make_efi_nodes``).
    """
    if vcpus < 1:
        raise ValueError(f"vcpus must be >= 1, not {vcpus}")
    host = qemu_virt_acpi_tables(pcpus, its=True, virtualization=True)
    host_addr = HOST_ACPI_ADDRESSES
    base = gnttab[0]

    def r8(n: int) -> int:
        return -(-n // 8) * 8

    fadt = acpi.fadt_set_arm_boot_flags(
        host["FACP"], acpi.ACPI_FADT_PSCI_COMPLIANT | acpi.ACPI_FADT_PSCI_USE_HVC
    )
    host_madt = host["APIC"]
    host_gicc0 = host_madt[44 + acpi.ACPI_MADT_GICD_LENGTH : 44 + acpi.ACPI_MADT_GICD_LENGTH + 80]
    g0 = _gicc_fields(host_gicc0)
    entries: list[acpi.MadtEntry] = [acpi.Gicd(VIRT_GIC_DIST[0])]
    entries += [
        acpi.Gicc(
            cpu_interface_number=i,
            uid=i,
            arm_mpidr=xen_vaffinity(i),
            parked_address=g0["parked_address"],
            base_address=g0["base_address"],
            efficiency_class=g0["efficiency_class"],
            spe_interrupt=g0["spe_interrupt"],
        )
        for i in range(vcpus)
    ]
    entries += [acpi.Gicr(b, s) for b, s in xen_hwdom_rdist_regions(pcpus, vcpus)]
    if has_its:
        entries.append(acpi.GicIts(0, VIRT_GIC_ITS[0]))
    madt = acpi.madt(entries, acpi.oem_of(host_madt), revision=host_madt[8])
    stao = acpi.stao(host_madt)

    off: dict[str, int] = {"FACP": 0}
    off["APIC"] = off["FACP"] + r8(len(fadt))
    off["STAO"] = off["APIC"] + r8(len(madt))
    off["XSDT"] = off["STAO"] + r8(len(stao))
    host_entries = _xsdt_entries(host["XSDT"])
    xsdt_size = len(host["XSDT"]) + 8
    off["RSDP"] = off["XSDT"] + r8(xsdt_size)
    off["EFI_SYSTEM_TABLE"] = off["RSDP"] + r8(36)

    rev_addr = {v: k for k, v in host_addr.items()}
    new_entries = [
        base + off[rev_addr[a]] if rev_addr.get(a) in ("FACP", "APIC") else a for a in host_entries
    ] + [base + off["STAO"]]
    xsdt = acpi.fix_checksum(
        host["XSDT"][:4]
        + (xsdt_size).to_bytes(4, "little")
        + host["XSDT"][8:36]
        + b"".join(e.to_bytes(8, "little") for e in new_entries)
    )
    rsdp = _xen_rsdp(host["RSDP"], base + off["XSDT"])

    n_cfg = 2 if efi_memreserve else 1
    systab_size = efi.EFI_SYSTEM_TABLE_SIZE + len(efi.ucs2("Xen")) + 24 * n_cfg
    off["EFI_MEMMAP"] = off["EFI_SYSTEM_TABLE"] + r8(systab_size)
    n_desc = len(banks) + 1 + 1  # dom0 banks, host ACPI bank, this blob
    mmap_size = n_desc * efi.EFI_MEMORY_DESCRIPTOR_SIZE
    end = off["EFI_MEMMAP"] + r8(mmap_size)
    memreserve = b""
    if efi_memreserve:
        off["MEMRESERVE"] = end
        memreserve = efi.memreserve()
        end += r8(len(memreserve))
    efi_acpi_len = -(-end // 4096) * 4096
    if efi_acpi_len > gnttab[1]:
        raise ValueError("The grant table region is not enough to fit the ACPI tables!")

    config = [(efi.ACPI_20_TABLE_GUID, base + off["RSDP"])]
    if efi_memreserve:
        config.append((efi.LINUX_EFI_MEMRESERVE_TABLE_GUID, base + off["MEMRESERVE"]))
    systab, _ = efi.system_table(base + off["EFI_SYSTEM_TABLE"], config)
    descs = [efi.region(efi.EfiConventionalMemory, s, n) for s, n in banks]
    descs.append(efi.region(efi.EfiACPIReclaimMemory, *HOST_ACPI_REGION))
    descs.append(efi.region(efi.EfiACPIReclaimMemory, base, efi_acpi_len))
    mmap = efi.memory_map(descs)

    addrs: dict[str, int] = {k: base + v for k, v in off.items()}
    addrs |= {s: host_addr[s] for s in ("DSDT", "GTDT", "MCFG", "IORT")}
    dtb_probe = _xen_acpi_dtb(
        bootargs, (0, 0) if initrd_size else None, addrs, mmap_size, xen_version
    )
    dtb_addr, initrd_addr = xen_place_modules(banks[0], len(dtb_probe), initrd_size)
    initrd = (initrd_addr, initrd_addr + initrd_size) if initrd_size else None
    dtb = _xen_acpi_dtb(bootargs, initrd, addrs, mmap_size, xen_version)
    addrs["dtb"] = dtb_addr
    if initrd:
        addrs |= {"initrd": initrd[0], "initrd_end": initrd[1]}
    tables = {
        "FACP": fadt,
        "APIC": madt,
        "STAO": stao,
        "XSDT": xsdt,
        "RSDP": rsdp,
        "DSDT": host["DSDT"],
        "GTDT": host["GTDT"],
        "MCFG": host["MCFG"],
        "IORT": host["IORT"],
    }
    return BootBlobs(dtb, _frozen(tables), systab, mmap, memreserve, _frozen(addrs))


def _gicc_fields(raw: bytes) -> dict[str, int]:
    """The host GICC 0 fields ``gicv3_make_hwdom_madt`` keeps when cloning it."""
    return {
        "parked_address": struct.unpack_from("<Q", raw, 24)[0],
        "base_address": struct.unpack_from("<Q", raw, 32)[0],
        "efficiency_class": raw[76],
        "spe_interrupt": struct.unpack_from("<H", raw, 78)[0],
    }


def _xsdt_entries(xsdt: bytes) -> list[int]:
    n = (len(xsdt) - acpi.ACPI_HEADER_SIZE) // 8
    return [int.from_bytes(xsdt[36 + 8 * i : 44 + 8 * i], "little") for i in range(n)]


def xen_hwdom_rdist_regions(pcpus: int, vcpus: int) -> list[tuple[int, int]]:
    """``vgic_v3_domain_init`` for the hardware domain: host regions, stopping at the one
    that covers ``max_vcpus``."""
    out: list[tuple[int, int]] = []
    first_cpu = 0
    for base, size in redist_regions(pcpus):
        out.append((base, size))
        first_cpu += size // GICV3_REDIST_SIZE
        if first_cpu >= vcpus:
            break
    return out


def _xen_rsdp(host_rsdp: bytes, xsdt_addr: int) -> bytes:
    """Xen ``acpi_create_rsdp``: copy the 36-byte host RSDP, write the new XSDT address, then
    ``rsdp->checksum -= acpi_tb_checksum(rsdp, 36)``. That fixes the sum over all 36 bytes
    (so the extended checksum holds again) by changing the ACPI 1.0 checksum byte, which
    leaves the 20-byte checksum wrong. Linux on the EFI path never checks it
    (``acpi_tb_parse_root_table`` maps the RSDP without ``acpi_tb_validate_rsdp``)."""
    raw = bytearray(host_rsdp)
    raw[24:32] = xsdt_addr.to_bytes(8, "little")
    raw[8] = (raw[8] - acpi.byte_sum(bytes(raw))) & 0xFF
    return bytes(raw)


def _xen_acpi_dtb(
    bootargs: str,
    initrd: tuple[int, int] | None,
    addrs: Mapping[str, int],
    mmap_size: int,
    xen_version: str,
) -> bytes:
    """``create_acpi_dtb`` + ``acpi_make_hypervisor_node`` + ``acpi_make_efi_nodes``."""
    uefi = (
        Node("uefi")
        .prop("xen,uefi-system-table", u64(addrs["EFI_SYSTEM_TABLE"]))
        .prop("xen,uefi-mmap-start", u64(addrs["EFI_MEMMAP"]))
        .prop("xen,uefi-mmap-size", u32(mmap_size))
        .prop("xen,uefi-mmap-desc-size", u32(efi.EFI_MEMORY_DESCRIPTOR_SIZE))
        .prop("xen,uefi-mmap-desc-ver", u32(efi.EFI_MEMORY_DESCRIPTOR_VERSION))
    )
    hyp = Node("hypervisor").prop("compatible", [f"xen,xen-{xen_version}", "xen,xen"]).child(uefi)
    root = (
        Node("")
        .prop("#address-cells", u32(2))
        .prop("#size-cells", u32(1))
        .child(_xen_chosen(bootargs, initrd))
        .child(hyp)
    )
    return build_dtb(root)


def xen_dt_dom0_dtb(
    vcpus: int,
    has_its: bool,
    *,
    bootargs: str = "console=hvc0 earlycon=xen ignore_loglevel",
    initrd: tuple[int, int] | None = None,
    pcpus: int = 4,
    banks: Sequence[tuple[int, int]] = XEN_DOM0_BANKS,
    gnttab: tuple[int, int] = XEN_GNTTAB,
    ext_regions: Sequence[tuple[int, int]] = XEN_EXT_REGIONS,
    evtchn_irq: int = XEN_EVTCHN_IRQ,
    xen_version: str = XEN_VERSION,
    seed: int = 0,
) -> bytes:
    """The DT Xen 4.17 builds for a DT dom0 from QEMU's tree (xen-dom0-dt.log).

    Root properties are copied from the host; /chosen keeps kaslr-seed and gets dom0's
    bootargs and initrd; ``make_cpus_node`` (cpu@<vaffinity>, enable-method psci),
    ``make_psci_node`` (HVC, Xen's PSCI 0.1 IDs), ``make_timer_node`` (three PPIs,
    active-low, all CPUs), ``make_memory_node``, ``make_hypervisor_node`` (reg = grant
    table + extended regions, interrupts = event-channel PPI), ``make_gic_node`` +
    ``gicv3_make_hwdom_dt_node`` (node "interrupt-controller", host phandle, reg = GICD
    64 KiB + the redistributor regions dom0 uses; with ``has_its`` a ``ranges`` property
    and ``gicv3_its_make_hwdom_dt_nodes`` children: compatible, msi-controller, phandle,
    reg, and no #msi-cells, which Xen added only in 2024). The PCIe node is passed
    through with its msi-map, which points at nothing without an ITS. Xen hides the
    UART it uses and the PMU. No /hypervisor/uefi.
    """
    if vcpus < 1:
        raise ValueError(f"vcpus must be >= 1, not {vcpus}")
    ph = QemuPhandles.for_cpus(pcpus)
    chosen = _xen_chosen(bootargs, initrd, Node("chosen").prop("kaslr-seed", _seed_bytes(seed, 8)))
    cpus = Node("cpus").prop("#address-cells", u32(1)).prop("#size-cells", u32(0))
    for v in range(vcpus):
        aff = xen_vaffinity(v)
        cpus.child(
            Node(f"cpu@{aff:x}")
            .prop("compatible", "arm,cortex-a57")
            .prop("device_type", "cpu")
            .prop("reg", u32(aff))
            .prop("enable-method", "psci")
        )
    gic = (
        Node("interrupt-controller")
        .prop("phandle", u32(ph.gic))
        .prop("#address-cells", u32(2))
        .prop("#size-cells", u32(2))
        .prop("#interrupt-cells", u32(3))
        .prop("interrupt-controller")
        .prop("compatible", "arm,gic-v3")
    )
    regions = xen_hwdom_rdist_regions(pcpus, vcpus)
    gic.prop("#redistributor-regions", u32(len(regions)))
    gic.prop("reg", reg(2, 2, (VIRT_GIC_DIST[0], 64 * KiB), *regions))
    if has_its:
        gic.prop("ranges")
        gic.child(
            Node(f"its@{VIRT_GIC_ITS[0]:x}")
            .prop("compatible", "arm,gic-v3-its")
            .prop("msi-controller")
            .prop("phandle", u32(ph.its))
            .prop("reg", reg(2, 2, VIRT_GIC_ITS))
        )
    hyp = (
        Node("hypervisor")
        .prop("compatible", [f"xen,xen-{xen_version}", "xen,xen"])
        .prop("reg", reg(2, 2, gnttab, *ext_regions))
        .prop("interrupts", u32(*_xen_interrupt(evtchn_irq)))
        .prop("interrupt-parent", u32(ph.gic))
    )
    timer_irqs = [c for irq in (29, 30, 27) for c in _xen_interrupt(irq)]
    root = (
        _virt_root(ph, chosen)
        .child(_pcie_node_qemu(ph.gic, ph.its))
        .child(cpus)
        .child(
            Node("psci")
            .prop("compatible", ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
            .prop("method", "hvc")
            .prop("cpu_off", u32(XEN_PSCI_cpu_off))
            .prop("cpu_on", u32(XEN_PSCI_cpu_on))
        )
        .child(
            Node("timer")
            .prop("compatible", ["arm,armv8-timer", "arm,armv7-timer"])
            .prop("interrupts", u32(*timer_irqs))
            .prop("interrupt-parent", u32(ph.gic))
        )
        .child(
            Node(f"memory@{banks[0][0]:x}")
            .prop("device_type", "memory")
            .prop("reg", reg(2, 2, *banks))
        )
        .child(hyp)
        .child(gic)
    )
    return build_dtb(root)
