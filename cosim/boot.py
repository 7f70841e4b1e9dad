"""What a scenario's guest is handed at power-on, and ``cosim boot-blobs`` to write it out.

The blobs come from the host side's builders (hypervisor/firmware/virt.py): QEMU
virt's device tree, or EDK II's ACPI tables and the EFI stub's system table on
bare metal; Xen's dom0 DTB, EFI system table, memory map and ACPI tables under
Xen (create_acpi_dtb, acpi_create_efi_system_table, prepare_acpi), or Xen's DT
for a DT dom0 (handle_node, make_hypervisor_node).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from cosim.scenario import Scenario, ScenarioError, load
from hypervisor.firmware import virt
from hypervisor.firmware.virt import BootBlobs

#: Where Xen 4.17 loaded dom0's DTB in xen-dom0-dt.log ("Loading d0 DTB to 0x0000000068000000").
XEN_DT_DOM0_DTB_ADDR = 0x6800_0000


def blobs_for(sc: Scenario, *, initrd_size: int = 0) -> BootBlobs:
    """The firmware blobs the scenario's kernel boots from (``initrd_size``: a -initrd of that size)."""
    ram = sc.machine.ram_mb << 20
    its = sc.machine.its
    if sc.host.kind == "baremetal":
        if sc.host.boot == "efi":
            args = sc.guest.bootargs or "console=ttyAMA0 acpi=force"
            # QEMU -initrd: EDK II serves it through the LoadFile2 initrd device path; the
            # real boots' virtio-rng-pci gives EDK II its EFI_RNG_PROTOCOL (rng=True default)
            return virt.qemu_virt_uefi_blobs(
                cpus=sc.machine.pcpus,
                ram_size=ram,
                bootargs=args,
                its=its,
                initrd_size=initrd_size,
            )
        args = sc.guest.bootargs or "console=ttyAMA0"
        return virt.qemu_virt_dt_blobs(
            cpus=sc.machine.pcpus, ram_size=ram, bootargs=args, its=its, seed=sc.run.seed
        )
    has_its = sc.host.has_its and its
    if sc.host.dom0_boot == "acpi":
        return virt.xen_acpi_dom0_blobs(
            sc.guest.vcpus,
            has_its,
            sc.host.efi_memreserve,
            bootargs=sc.guest.bootargs or "console=hvc0",
            pcpus=sc.machine.pcpus,
        )
    dtb = virt.xen_dt_dom0_dtb(
        sc.guest.vcpus,
        has_its,
        bootargs=sc.guest.bootargs or "console=hvc0 earlycon=xen ignore_loglevel",
        pcpus=sc.machine.pcpus,
        seed=sc.run.seed,
    )
    return BootBlobs(dtb=dtb, addresses={"dtb": XEN_DT_DOM0_DTB_ADDR})


def blob_files(sc: Scenario, blobs: BootBlobs) -> dict[str, tuple[str, bytes]]:
    """File name -> (the blob's key in ``blobs.addresses``, bytes), as ``cosim boot-blobs`` writes them."""
    if sc.host.kind == "xen":
        dtb_name = "dom0.dtb"
    else:
        dtb_name = "efi-stub.dtb" if sc.host.boot == "efi" else "virt.dtb"
    files = {dtb_name: ("dtb", blobs.dtb)}
    for sig, data in blobs.acpi.items():
        files[f"{sig}.dat"] = (sig, data)
    for key, data in blobs.efi_tables.items():
        files[f"efi-{key.lower()}.bin"] = (key, data)
    for name, key, data in (
        ("efi-system-table.bin", "EFI_SYSTEM_TABLE", blobs.efi_system_table),
        ("efi-memmap.bin", "EFI_MEMMAP", blobs.memmap),
        ("efi-memreserve.bin", "MEMRESERVE", blobs.memreserve),
    ):
        if data:
            files[name] = (key, data)
    return files


def main(scenario: str, out_dir: str, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        sc = load(scenario)
    except ScenarioError as exc:
        err.write(f"cosim boot-blobs: {exc}\n")
        return 2
    blobs = blobs_for(sc)
    dest = Path(out_dir)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for name, (key, data) in blob_files(sc, blobs).items():
            (dest / name).write_bytes(data)
            addr = blobs.addresses.get(key)
            where = f" @ {addr:#x}" if addr is not None else ""
            out.write(f"{dest / name}: {len(data)} bytes{where}\n")
    except OSError as exc:
        err.write(f"cosim boot-blobs: {dest}: {exc.strerror or exc}\n")
        return 2
    return 0
