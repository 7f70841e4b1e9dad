"""A PCIe function's driver that takes its interrupts as MSIs through the ITS.

What ``pci_alloc_irq_vectors`` + ``request_irq`` do for an MSI-X device on v5.15, as far as
the GIC sees it: ``its_pci_msi_prepare`` (DeviceID from the firmware's msi-map / IORT,
vector count rounded up to a power of two, at least 32 for DeviceID 0) ->
``its_msi_prepare`` (``its_create_device``: L2 device table page, ITT, LPIs from
``its_lpi_alloc``, MAPD) -> per vector ``its_irq_domain_alloc`` and
``its_irq_domain_activate`` (MAPTI + SYNC to the least loaded online CPU) -> ``request_irq``
-> ``its_unmask_irq`` (property byte |= enabled, INV + SYNC) -> the driver sets MSI Enable in
its register window (the device's MSI_CTRL, hypervisor/devices.py). The handler counts
per vector. ``shutdown`` (``device_shutdown`` before kexec) clears MSI Enable.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from guest.bootinfo import Device

if TYPE_CHECKING:
    from guest.irq_gic_v3_its import ItsDevice
    from guest.kernel import Kernel

Gen = Generator[Any, Any, Any]

MSI_CTRL = 0x000
MSI_CTRL_ENABLE = 1


def _roundup_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


class MsiDriver:
    """One bound device: its ITS device, its hwirqs, and the per-vector counts."""

    def __init__(self, k: Kernel, dev: Device) -> None:
        self.k = k
        self.dev = dev
        self.its_dev: ItsDevice | None = None
        self.hwirqs: list[int] = []
        self.targets: list[int] = []
        self.enabled = False

    @property
    def name(self) -> str:
        return self.dev.name

    def msi_devid(self) -> int | None:
        """``pci_msi_domain_get_msi_rid`` -> ``of_msi_map_id`` / ``iort_msi_map_id``."""
        k, rid = self.k, self.dev.devid
        iort = k.drivers.get("iort")
        if not k.acpi_disabled:
            if iort is None:
                return None
            got = iort.msi_translation(0, rid)
            return None if got is None else got[0]
        fdt = k.drivers["fdt"]
        for node in fdt.compatible_nodes("pci-host-ecam-generic"):
            if node.getprop("msi-map") is None:
                continue
            cells = node.cells("msi-map")
            for i in range(0, len(cells) - 3, 4):
                rid_base, _ph, out_base, length = cells[i : i + 4]
                if rid_base <= rid < rid_base + length:
                    return out_base + rid - rid_base
        return None

    def probe(self, cpu: int) -> Gen:
        """``pci_alloc_irq_vectors`` + ``request_irq`` for every vector, then MSI Enable."""
        k = self.k
        its = k.drivers.get("its")
        if its is None or not its.nodes:
            k.log(f"{self.name}: no MSI domain, interrupts not mapped", cpu, "warn")
            return
        devid = self.msi_devid()
        if devid is None:
            k.log(f"{self.name}: no MSI mapping for RID {self.dev.devid:#x}", cpu, "warn")
            return
        nvec = max(32 if devid == 0 else 1, _roundup_pow2(self.dev.nvec))
        node = its.nodes[0]
        dev = yield from k.call(cpu, "its_msi_prepare", its.its_msi_prepare(cpu, node, devid, nvec))
        if dev is None:
            k.log(f"{self.name}: its_msi_prepare failed", cpu, "err")
            return
        self.its_dev = dev
        for _ in range(self.dev.nvec):
            hwirq = its.its_irq_domain_alloc(dev, 1)
            if hwirq is None:
                k.log(f"{self.name}: no LPI left", cpu, "err")
                break
            self.hwirqs.append(hwirq)
            target = yield from k.call(
                cpu,
                "its_irq_domain_activate",
                its.its_irq_domain_activate(cpu, dev, hwirq, self.name),
            )
            self.targets.append(target)
        for hwirq in self.hwirqs:
            yield from its.its_unmask_irq(cpu, dev, hwirq)
        yield from k.writel(self.dev.window + MSI_CTRL, MSI_CTRL_ENABLE, "msi_driver_probe")
        self.enabled = True
        k.guest.port_record(
            "msi-mapped",
            {
                "device": self.name,
                "devid": devid,
                "lpis": list(self.hwirqs),
                "cpus": list(self.targets),
                "gen": k.gen,
            },
        )

    def handle(self, cpu: int, hwirq: int) -> None:
        """The vector's handler: count it."""
        event = hwirq - self.its_dev.lpi_base if self.its_dev else -1
        self.k.guest.count_delivered(self.k.gen, self.name, event, cpu)

    def shutdown(self, cpu: int) -> Gen:
        """``.shutdown`` from ``device_shutdown``: the function stops signalling."""
        if self.enabled:
            yield from self.k.writel(self.dev.window + MSI_CTRL, 0, "msi_driver_shutdown")
            self.enabled = False
