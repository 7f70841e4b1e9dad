"""Runs the guest on the scheduler with the bare-metal host (hypervisor.baremetal + gic.gic)
and QEMU virt's firmware blobs, as the real boots of reference/real-boot/ were run:
4 CPUs, 2 GiB, the real initrd size, a virtio-rng-like device (RID 01:00.0 = 0x100, two
MSI vectors) behind the ITS. Captures every bus message for the tests."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from cosim.scheduler import MS, Scheduler
from guest.bootinfo import REAL_INITRD_SIZE, BootInfo, Device
from guest.guest import Guest
from hypervisor.baremetal import BareMetalHost
from hypervisor.devices import MsiDevice
from hypervisor.firmware import efi as hefi
from hypervisor.firmware.virt import (
    HOST_ACPI_ADDRESSES,
    NATIVE_UEFI_SYSTAB,
    qemu_virt_dt_blobs,
    qemu_virt_uefi_blobs,
)
from hypervisor.machine import VirtMachine
from transport.messages import Envelope, Mmio

DEV_WINDOW = 0x1000_0000
DEV_RID = 0x100
STAMP = re.compile(r"^\[\s*\d+\.\d{6}\] ")


@dataclass
class Run:
    guest: Guest
    host: BareMetalHost
    device: MsiDevice
    sent: list[Envelope] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        return self.guest.result()

    def lines(self, gen: int | None = None) -> list[str]:
        """Log lines without their time stamps."""
        return [STAMP.sub("", ln) for ln in self.guest.printk.text(gen)]

    def mmio_writes(self, addr: int) -> list[int]:
        return [
            e.msg.value
            for e in self.sent
            if isinstance(e.msg, Mmio) and e.msg.write and e.msg.addr == addr and e.src == "guest"
        ]

    def mmio_reads(self, addr: int, cpu: int | None = None) -> int:
        return sum(
            1
            for e in self.sent
            if isinstance(e.msg, Mmio)
            and not e.msg.write
            and e.msg.addr == addr
            and (cpu is None or e.msg.cpu == cpu)
        )


def efi_blobs_without_memreserve() -> Any:
    """EFI config tables without MEMRESERVE (what Xen hands an ACPI dom0: no stub ran)."""
    blobs = qemu_virt_uefi_blobs(cpus=4)
    systab, _ = hefi.system_table(
        NATIVE_UEFI_SYSTAB,
        [(hefi.ACPI_20_TABLE_GUID, HOST_ACPI_ADDRESSES["RSDP"])],
        fw_vendor="EDK II",
        revision=hefi.efi_revision(2, 70),
        fw_revision=0x10000,
        header_size_covers_all=False,
    )
    return dataclasses.replace(blobs, efi_system_table=systab, memreserve=b"")


def boot(
    firmware: str = "dt",
    *,
    kexec_at: int | None = None,
    until: int = 400 * MS,
    msis: int = 40,
    bootargs: str = "",
    no_memreserve: bool = False,
    seed: int = 1,
    kernel: str = "v5.15",
    blobs: Any = None,
    extra_placements: tuple[tuple[str, int, bytes], ...] = (),
) -> Run:
    """Boot the guest; ``blobs`` replaces the firmware blobs of ``firmware``, and
    ``extra_placements`` (name, address, bytes) are copied into RAM besides them."""
    m = VirtMachine()
    dev = MsiDevice(
        "virtio-rng",
        devid=DEV_RID,
        events=2,
        msi_rate=20_000,
        window_base=DEV_WINDOW,
        jitter="none",
        limit=msis,
    )
    if blobs is not None:
        pass
    elif firmware == "dt":
        blobs = qemu_virt_dt_blobs(
            cpus=4, initrd_size=REAL_INITRD_SIZE, bootargs="console=ttyAMA0 ignore_loglevel"
        )
    elif no_memreserve:
        blobs = efi_blobs_without_memreserve()
    else:
        blobs = qemu_virt_uefi_blobs(cpus=4, initrd_size=REAL_INITRD_SIZE)
    info = BootInfo.from_blobs(
        blobs,
        firmware=firmware,  # type: ignore[arg-type]
        ram_base=m.ram_base,
        ram_size=m.ram_size,
        cpus=4,
        devices=(Device("virtio-rng", DEV_RID, 2, DEV_WINDOW),),
        bootargs=bootargs,
        efi_stub=not no_memreserve,
        kernel=kernel,
    )
    if extra_placements:
        placed = sorted(info.placements + extra_placements, key=lambda p: p[1])
        info = dataclasses.replace(info, placements=tuple(placed))
    g = Guest(info, actions=[(kexec_at, "kexec")] if kexec_at is not None else [])
    host = BareMetalHost(m, devices=[dev.window])
    sched = Scheduler(seed=seed)
    run = Run(g, host, dev)
    sched.observers.append(run.sent.append)
    sched.add(host)
    sched.add(g)
    sched.add(dev)
    sched.start()
    sched.run(until=until)
    return run
