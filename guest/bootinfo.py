"""What the guest is handed at power-on: blobs and where they sit, the Image, the devices.

The runner fills a :class:`BootInfo` from ``hypervisor.firmware.virt``'s ``BootBlobs``
(``dtb``, ``acpi`` by signature, ``efi_system_table``, ``memmap``, ``memreserve`` and their
``addresses``) with :meth:`BootInfo.from_blobs`; the guest copies every blob into its RAM at
start (``placements``) and boots from them. The guest never imports ``hypervisor``: this is
plain data.

``firmware`` says how the kernel is entered: ``"dt"`` (QEMU -kernel: x0 = the DTB) or
``"efi"`` (through the EFI stub: the stub's DTB carries the linux,uefi-* properties and the
system table holds the configuration tables, MEMRESERVE included when the stub installed it).
A Xen ACPI dom0 is ``"efi"`` with ``efi_stub=False``: Xen starts the raw Image with a DTB whose
/hypervisor/uefi node points at Xen's EFI system table (``xen_acpi_dom0_blobs``); a Xen DT
dom0 is ``"dt"`` (``xen_dt_dom0_dtb``). Under Xen the kernel is loaded at dom0's first bank
(``XEN_DOM0_KERNEL_LOAD``, "Loading zImage ... to 0000000060000000" in xen-dom0-dt.log).
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
#: Where Xen 4.17 loads dom0's Image on QEMU virt (xen-dom0-dt.log: bank 0 = 0x60000000).
XEN_DOM0_KERNEL_LOAD = 0x6000_0000
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
    window_size: int = 0x1000
    #: The device model's component name (hypervisor/devices.py names it "dev.<name>"). Under
    #: Xen dom0 reaches the window directly (mapped in its p2m), so the guest must know it.
    component: str = ""

    @property
    def component_name(self) -> str:
        if self.component:
            return self.component
        return self.name if self.name.startswith("dev.") else f"dev.{self.name}"


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
    #: ICH_VTR_EL2.ListRegs + 1 of the machine: the size of each vCPU's virtual CPU interface
    #: under Xen (the hardware's, not the guest's choice; adjusted to what Xen's Entry carries).
    list_registers: int = 4

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
        list_registers: int = 4,
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
        for name, data in dict(getattr(blobs, "efi_tables", {})).items():
            pl.append((name, addrs[name], bytes(data)))  # firmware config tables (SMBIOS3, ...)
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
            list_registers=list_registers,
        )
