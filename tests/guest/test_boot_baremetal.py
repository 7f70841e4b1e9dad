"""The guest booting on the bare-metal host (hypervisor.baremetal + gic.gic) against the real
logs of reference/real-boot/. Expected lines are copied verbatim from those logs (stamps
dropped, file:line cited); the only allowed differences are DIFFERENCES_5_15_VS_6_1."""

from __future__ import annotations

import re

import pytest

from gic import its_commands as C
from guest.guest import DIFFERENCES_5_15_VS_6_1
from tests.guest.harness import DEV_RID, boot

RELEVANT = re.compile(
    r"efi|EFI|ACPI: (RSDP|APIC|IORT|FACP|MCFG|GTDT)|GIC|ITS|LPI|psci|smp|SMP|Booted|MSI|Machine model|"
    r"Root IRQ|I-cache|kexec|Bye|Oops|BUG|panic|pc :|lr :|Call trace|^ [_a-z]"
)

# native-dt-noefi.log:4-8,19-23,61-70,90-109 (GIC/ITS/LPI/EFI/psci/SMP lines, stamps dropped)
REAL_NATIVE_DT = """\
Machine model: linux,dummy-virt
efi: UEFI not found.
psci: probing for conduit method from DT.
psci: PSCIv1.1 detected in firmware.
psci: Using standard PSCI v0.2 function IDs
psci: Trusted OS migration not required
psci: SMC Calling Convention v1.0
GICv3: 224 SPIs implemented
GICv3: 0 Extended SPIs implemented
Root IRQ handler: gic_handle_irq
GICv3: GICv3 features: 16 PPIs
GICv3: CPU0: found redistributor 0 region 0:0x00000000080a0000
ITS [mem 0x08080000-0x0809ffff]
ITS@0x0000000008080000: allocated 8192 Devices @425a0000 (indirect, esz 8, psz 64K, shr 1)
ITS@0x0000000008080000: allocated 8192 Interrupt Collections @425b0000 (flat, esz 8, psz 64K, shr 1)
GICv3: using LPI property table @0x00000000425c0000
GICv3: CPU0: using allocated LPI pending table @0x00000000425d0000
Platform MSI: its@8080000 domain created
PCI/MSI: /intc@8000000/its@8080000 domain created
fsl-mc MSI: its@8080000 domain created
EFI services will not be available.
smp: Bringing up secondary CPUs ...
Detected PIPT I-cache on CPU1
GICv3: CPU1: found redistributor 1 region 0:0x00000000080c0000
GICv3: CPU1: using allocated LPI pending table @0x00000000425e0000
CPU1: Booted secondary processor 0x0000000001 [0x411fd070]
Detected PIPT I-cache on CPU2
GICv3: CPU2: found redistributor 2 region 0:0x00000000080e0000
GICv3: CPU2: using allocated LPI pending table @0x00000000425f0000
CPU2: Booted secondary processor 0x0000000002 [0x411fd070]
Detected PIPT I-cache on CPU3
GICv3: CPU3: found redistributor 3 region 0:0x0000000008100000
GICv3: CPU3: using allocated LPI pending table @0x0000000042600000
CPU3: Booted secondary processor 0x0000000003 [0x411fd070]
smp: Brought up 1 node, 4 CPUs
SMP: Total of 4 processors activated."""

# native-uefi-acpi.log:2-5,9-10,14,16,18,20-21,24,44-48,84-93,117-133
REAL_NATIVE_UEFI = """\
EFI stub: Booting Linux Kernel...
EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path
EFI stub: Generating empty DTB
EFI stub: Exiting boot services...
efi: EFI v2.70 by EDK II
efi: SMBIOS 3.0=0xbfed0000 MEMATTR=0xbcc31518 ACPI 2.0=0xbc430018 INITRD=0xbc42ff18 \
RNG=0xbc43e498 MEMRESERVE=0xbc42ff98
ACPI: RSDP 0x00000000BC430018 000024 (v02 BOCHS )
ACPI: FACP 0x00000000BC43FA98 000114 (v06 BOCHS  BXPC     00000001 BXPC 00000001)
ACPI: APIC 0x00000000BC43FC18 0001A8 (v04 BOCHS  BXPC     00000001 BXPC 00000001)
ACPI: GTDT 0x00000000BC43E818 000060 (v02 BOCHS  BXPC     00000001 BXPC 00000001)
ACPI: MCFG 0x00000000BC43E918 00003C (v01 BOCHS  BXPC     00000001 BXPC 00000001)
ACPI: IORT 0x00000000BC43E718 000080 (v03 BOCHS  BXPC     00000001 BXPC 00000001)
psci: probing for conduit method from ACPI.
psci: PSCIv1.1 detected in firmware.
psci: Using standard PSCI v0.2 function IDs
psci: Trusted OS migration not required
psci: SMC Calling Convention v1.0
GICv3: 224 SPIs implemented
GICv3: 0 Extended SPIs implemented
Root IRQ handler: gic_handle_irq
GICv3: GICv3 features: 16 PPIs
GICv3: CPU0: found redistributor 0 region 0:0x00000000080a0000
ITS [mem 0x08080000-0x0809ffff]
ITS@0x0000000008080000: allocated 8192 Devices @401a0000 (indirect, esz 8, psz 64K, shr 1)
ITS@0x0000000008080000: allocated 8192 Interrupt Collections @401b0000 (flat, esz 8, psz 64K, shr 1)
GICv3: using LPI property table @0x00000000401c0000
GICv3: CPU0: using allocated LPI pending table @0x00000000401d0000
Platform MSI: ITS@0x8080000 domain created
PCI/MSI: ITS@0x8080000 domain created
fsl-mc MSI: ITS@0x8080000 domain created
Remapping and enabling EFI services.
smp: Bringing up secondary CPUs ...
Detected PIPT I-cache on CPU1
GICv3: CPU1: found redistributor 1 region 0:0x00000000080c0000
GICv3: CPU1: using allocated LPI pending table @0x00000000401e0000
CPU1: Booted secondary processor 0x0000000001 [0x411fd070]
Detected PIPT I-cache on CPU2
GICv3: CPU2: found redistributor 2 region 0:0x00000000080e0000
GICv3: CPU2: using allocated LPI pending table @0x00000000401f0000
CPU2: Booted secondary processor 0x0000000002 [0x411fd070]
Detected PIPT I-cache on CPU3
GICv3: CPU3: found redistributor 3 region 0:0x0000000008100000
GICv3: CPU3: using allocated LPI pending table @0x0000000040200000
CPU3: Booted secondary processor 0x0000000003 [0x411fd070]
smp: Brought up 1 node, 4 CPUs
SMP: Total of 4 processors activated."""
# efi_config_parse_tables prints "%s=0x%lx " per table: the real line ends with a space
REAL_NATIVE_UEFI = REAL_NATIVE_UEFI.replace("MEMRESERVE=0xbc42ff98\n", "MEMRESERVE=0xbc42ff98 \n")


def _allowed(lines: list[str], side: str) -> list[str]:
    """Drop exactly the lines DIFFERENCES_5_15_VS_6_1 lists for that side."""
    drop: set[str] = set()
    for d in DIFFERENCES_5_15_VS_6_1:
        v = d[side]
        if v is None:
            continue
        drop.update([v] if isinstance(v, str) else v)
    return [ln for ln in lines if ln not in drop]


def _relevant(lines: list[str]) -> list[str]:
    return [ln for ln in lines if RELEVANT.search(ln) and not ln.startswith("ACPI: DSDT")]


def test_native_dt_lines_equal_the_real_log() -> None:
    run = boot("dt")
    ours = _allowed(_relevant(run.lines()), "ours")
    real = _allowed(REAL_NATIVE_DT.splitlines(), "real")
    assert ours == real


def test_native_uefi_lines_equal_the_real_log() -> None:
    run = boot("efi")
    ours = _allowed(
        [ln for ln in _relevant(run.lines()) if not ln.startswith("ACPI: XSDT")], "ours"
    )
    real = _allowed(REAL_NATIVE_UEFI.splitlines(), "real")
    assert ours == real
    assert run.guest.printk.text()[0] == "EFI stub: Booting Linux Kernel..."


def test_v5_15_banner_lines_are_the_documented_difference() -> None:
    lines = boot("dt").lines()
    i = lines.index("GICv3: Distributor has no Range Selector support")
    assert lines[i + 1] == "Root IRQ handler: gic_handle_irq"
    assert lines[i + 2] == "GICv3: 16 PPIs implemented"


@pytest.mark.parametrize(
    ("firmware", "prop", "pend"),
    [("dt", 0x425C_0000, 0x425D_0000), ("efi", 0x401C_0000, 0x401D_0000)],
)
def test_redistributor_registers_written(firmware: str, prop: int, pend: int) -> None:
    """PROPBASER = PA | InnerShareable | RaWaWb | (16 - 1) = PA | 0x78f; PENDBASER = PA | 0x780
    (sheet §2.8), then EnableLPIs; one pending table per CPU, 64 KiB apart."""
    run = boot(firmware)
    for cpu in range(4):
        rd = 0x080A_0000 + cpu * 0x2_0000
        assert run.mmio_writes(rd + 0x70) == [prop | 0x78F]
        assert run.mmio_writes(rd + 0x78) == [(pend + cpu * 0x1_0000) | 0x780]
        assert run.mmio_writes(rd + 0x0) == [1]  # GICR_CTLR.EnableLPIs


def test_its_registers_and_command_queue() -> None:
    run = boot("dt")
    its = 0x0808_0000
    # GITS_BASER0: PA | Valid | Indirect | RaWaWb | Type 1 | Entry_Size 7 | 64K pages | InnerShareable
    assert run.mmio_writes(its + 0x100)[-1] == 0xF907_0000_425A_0600
    # GITS_BASER1: Collections, flat
    assert run.mmio_writes(its + 0x108)[-1] == 0xBC07_0000_425B_0600
    assert run.mmio_writes(its + 0x0)[-1] & 1 == 1  # GITS_CTLR.Enabled
    drv = run.guest.kernel.drivers["its"]
    node = drv.nodes[0]
    raw = run.guest.ram.read(node.cmd_base, node.cmd_write)
    cmds = [C.decode(raw[i : i + 32]) for i in range(0, len(raw), 32)]
    names = [c.name for c in cmds]
    # its_cpu_init_collection per CPU: MAPC + SYNC (builder returns the collection), INVALL
    assert names[:12] == ["MAPC", "SYNC", "INVALL"] * 4
    assert [(c.ICID, c.RDbase) for c in cmds[0:12:3]] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    # the device: MAPD, MAPTI + SYNC per vector (to the least loaded CPU), INV + SYNC per vector
    mapd = cmds[12]
    assert (mapd.name, mapd.DeviceID, mapd.Size, mapd.V) == ("MAPD", DEV_RID, 0, 1)
    assert [(c.name, getattr(c, "EventID", None)) for c in cmds[13:]] == [
        ("MAPTI", 0), ("SYNC", None), ("MAPTI", 1), ("SYNC", None),
        ("INV", 0), ("SYNC", None), ("INV", 1), ("SYNC", None),
    ]  # fmt: skip
    assert [(c.pINTID, c.ICID) for c in (cmds[13], cmds[15])] == [(8192, 0), (8193, 1)]
    prop = run.guest.ram.read(0x425C_0000, 4)
    assert prop == bytes([0xA3, 0xA3, 0xA2, 0xA2])  # lpi_write_config: enabled + group 1


def test_msis_accounted_for() -> None:
    run = boot("dt", msis=60)
    res = run.result()
    c = run.host.counters
    assert run.device.raised == 60
    assert c["lpis_dropped"] == 0
    assert c["lpis_set"] + c["lpis_coalesced"] + c["lpis_dropped"] == run.device.raised
    assert res["lpis_delivered_total"] == c["lpis_set"] > 0
    assert set(res["lpis_delivered"]["virtio-rng"]) == {"0", "1"}
    assert res["warnings"] == [] and res["corruption"] == [] and res["errors"] == []


def test_maxcpus_limits_the_bring_up() -> None:
    run = boot("dt", bootargs="maxcpus=2")
    lines = run.lines()
    assert "smp: Brought up 1 node, 2 CPUs" in lines
    assert not any("CPU2" in ln for ln in lines)
    assert run.result()["generations"][0]["cpus_online"] == [0, 1]
