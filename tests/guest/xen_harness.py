"""Runs the guest as dom0 on Xen (hypervisor/xen.py) on the scheduler, with the blobs Xen builds
(hypervisor/firmware/virt.py through ``Xen.boot_blobs``) and an MSI device behind the host ITS:
the same device as tests/guest/harness.py (RID 0x100, two vectors), raising to ``xen``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cosim.scheduler import MS, Scheduler
from guest.bootinfo import XEN_DOM0_KERNEL_LOAD, BootInfo, Device
from guest.guest import Guest
from hypervisor.devices import MsiDevice
from hypervisor.machine import VirtMachine
from hypervisor.xen import Xen
from transport.messages import Envelope

DEV_WINDOW = 0x1000_0000
DEV_RID = 0x100
#: Guest-physical space the dom0 model backs: dom0's banks, Xen's ACPI/EFI blob (at the grant
#: table region, 0x40200000) and the host ACPI tables (0xbc43....), all below 3 GiB.
GUEST_SPACE = (0x4000_0000, 0x8000_0000)
STAMP = re.compile(r"^\[\s*\d+\.\d{6}\] ")


@dataclass
class XenRun:
    guest: Guest
    xen: Xen
    device: MsiDevice
    scheduler: Scheduler
    sent: list[Envelope] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        return self.guest.result()

    def lines(self) -> list[str]:
        return [STAMP.sub("", ln) for ln in self.guest.printk.text()]

    def run(self, until: int) -> None:
        self.scheduler.run(until=until)

    def accounting(self) -> dict[str, int]:
        c = self.xen.counters
        return {
            "raised": self.device.raised,
            "delivered": self.guest.result()["lpis_delivered_total"],
            # coalesced in the physical redistributor or in Xen's pending_irq
            "coalesced": c["lpis_coalesced"] + c.get("lpis_coalesced_physical", 0),
            "dropped": c["lpis_dropped_unmapped"]
            + c["lpis_dropped_vgic"]
            + c.get("msis_dropped", 0),
        }


def xen_boot(
    vcpus: int = 4,
    *,
    has_its: bool = True,
    dom0_boot: str = "acpi",
    kernel: str = "v5.15",
    efi_memreserve: bool = False,
    bootargs: str | None = None,
    until: int | None = 400 * MS,
    msis: int = 0,
    msi_rate: float = 20_000,
    list_registers: int = 4,
    timer_period_ns: int = 0,
    seed: int = 1,
    actions: list[tuple[int, Any]] | None = None,
    record: bool = False,
) -> XenRun:
    m = VirtMachine(cpus=vcpus, list_registers=list_registers, timer_period_ns=timer_period_ns)
    xen = Xen(m, vcpus=vcpus, has_its=has_its, dom0_boot=dom0_boot,
              efi_memreserve=efi_memreserve, bootargs=bootargs)  # fmt: skip
    dev = MsiDevice("virtio-rng", devid=DEV_RID, events=2, msi_rate=msi_rate,
                    window_base=DEV_WINDOW, host="xen", jitter="none", limit=msis)  # fmt: skip
    info = BootInfo.from_blobs(
        xen.boot_blobs,
        firmware="efi" if dom0_boot == "acpi" else "dt",
        ram_base=GUEST_SPACE[0],
        ram_size=GUEST_SPACE[1],
        cpus=vcpus,
        kernel_addr=XEN_DOM0_KERNEL_LOAD,
        devices=(Device("virtio-rng", DEV_RID, 2, DEV_WINDOW),),
        kernel=kernel,
        efi_stub=False,
        list_registers=list_registers,
    )
    g = Guest(info, name="dom0", host="xen")
    sched = Scheduler(seed=seed)
    run = XenRun(g, xen, dev, sched)
    if record:
        sched.observers.append(run.sent.append)
    sched.add(xen)
    sched.add(g)
    sched.add(dev)
    sched.start()
    for t, token in actions or ():
        sched.call_later("dom0", t, token)
    if until is not None:
        sched.run(until=until)
    return run
