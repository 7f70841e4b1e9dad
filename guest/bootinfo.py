"""What the guest is handed at power-on: blobs and where they sit, the Image, the devices.

The runner fills a :class:`BootInfo` from ``hypervisor.firmware.virt``'s ``BootBlobs``
(``dtb``, ``acpi`` by signature, ``efi_system_table``, ``memmap``, ``memreserve`` and their
``addresses``) with :meth:`BootInfo.from_blobs`; the guest copies every blob into its RAM at
start (``placements``) and boots from them. The guest never imports ``hypervisor``: this is
plain data.

``firmware`` says how the kernel is entered: ``"dt"`` (QEMU -kernel: x0 = the DTB) or
``"efi"`` (through the EFI stub: the stub's DTB carries the linux,uefi-* properties and the
system table holds the configuration tables, MEMRESERVE included when the stub installed it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Firmware = Literal["dt", "efi"]

#: Where QEMU's ``-kernel`` loader puts the Image on virt (RAM base + 2 MiB), as the real DT
#: boots show ("40210000-4185ffff : Kernel code" = _stext at load + 64 KiB).
QEMU_KERNEL_LOAD = 0x4020_0000
#: Where the EFI stub placed the Image in native-uefi-acpi.log (KASLR: "a6190000-a77dffff :
#: Kernel code"); the stub's placement is random on real hardware, so it is an input.
EFI_STUB_KERNEL_LOAD = 0xA618_0000
#: initrd.cpio.gz of the real boots: "48000000-480f7fff : reserved" in native-dt-noefi.log.
REAL_INITRD_SIZE = 0xF8000


@dataclass(frozen=True)
class Device:
    """A PCIe function with MSIs: its requester ID, vector count and register window.

    ``devid`` is the function's RID (``pci_dev_id``); the driver maps it to an ITS DeviceID
    through the firmware (DT ``msi-map``, ACPI IORT), the identity on QEMU virt.
    """

    name: str
    devid: int
    nvec: int
    window: int  # MMIO base of its register window (MSI_CTRL at +0, MSI_MASK at +0x100)


@dataclass(frozen=True)
class BootInfo:
    """The guest's power-on input (frozen; see the module docstring)."""

    firmware: Firmware
    ram_base: int
    ram_size: int
    cpus: int
    dtb_addr: int
    placements: tuple[tuple[str, int, bytes], ...] = ()
    kernel_addr: int = QEMU_KERNEL_LOAD
    initrd: tuple[int, int] | None = None  # (start, size)
    devices: tuple[Device, ...] = ()
    kernel: str = "v5.15"
    bootargs: str = ""  # appended to the DTB's /chosen/bootargs (e.g. "maxcpus=2")
    efi_systab: int = 0
    #: entered through the Linux EFI stub (native UEFI); False for a loader that starts the
    #: raw Image with EFI tables in the DT (Xen's ACPI dom0: no stub, no MEMRESERVE).
    efi_stub: bool = True
    addresses: Mapping[str, int] = field(default_factory=dict)

    def blob(self, name: str) -> bytes:
        for n, _, data in self.placements:
            if n == name:
                return data
        raise KeyError(name)

    @classmethod
    def from_blobs(
        cls,
        blobs: Any,
        *,
        firmware: Firmware,
        ram_base: int,
        ram_size: int,
        cpus: int,
        kernel_addr: int | None = None,
        devices: tuple[Device, ...] = (),
        kernel: str = "v5.15",
        bootargs: str = "",
        efi_stub: bool = True,
    ) -> BootInfo:
        """Build from a ``BootBlobs``-shaped object (attributes dtb, acpi, efi_system_table,
        memmap, memreserve, addresses)."""
        addrs = dict(blobs.addresses)
        pl: list[tuple[str, int, bytes]] = [("dtb", addrs["dtb"], bytes(blobs.dtb))]
        for sig, data in dict(blobs.acpi).items():
            pl.append((f"ACPI:{sig}", addrs[sig], bytes(data)))
        for key, data in (
            ("EFI_SYSTEM_TABLE", blobs.efi_system_table),
            ("EFI_MEMMAP", blobs.memmap),
            ("MEMRESERVE", blobs.memreserve),
        ):
            if data:
                pl.append((key, addrs[key], bytes(data)))
        initrd = None
        if "initrd" in addrs:
            initrd = (addrs["initrd"], addrs["initrd_end"] - addrs["initrd"])
        if kernel_addr is None:
            kernel_addr = EFI_STUB_KERNEL_LOAD if firmware == "efi" else QEMU_KERNEL_LOAD
        return cls(
            firmware=firmware,
            ram_base=ram_base,
            ram_size=ram_size,
            cpus=cpus,
            dtb_addr=addrs["dtb"],
            placements=tuple(sorted(pl, key=lambda p: p[1])),
            kernel_addr=kernel_addr,
            initrd=initrd,
            devices=devices,
            kernel=kernel,
            bootargs=bootargs,
            efi_systab=addrs.get("EFI_SYSTEM_TABLE", 0),
            efi_stub=efi_stub,
            addresses=addrs,
        )
