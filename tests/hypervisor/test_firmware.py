"""Firmware builders checked against dtc, iasl, the fact sheets and the real boot logs;
and against the guest's independent parsers (round trips)."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guest.firmware import acpi as gacpi
from guest.firmware import efi as gefi
from guest.firmware import fdt as gfdt
from hypervisor.firmware import acpi, efi, virt
from hypervisor.firmware.fdt import FdtBuildError, Node, build_dtb, u32, u64

DTC = "/usr/bin/dtc"
IASL = "/usr/bin/iasl"


def dtc_decompile(tmp_path: Path, blob: bytes, name: str = "t") -> tuple[str, str]:
    p = tmp_path / f"{name}.dtb"
    p.write_bytes(blob)
    r = subprocess.run([DTC, "-I", "dtb", "-O", "dts", str(p)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


def iasl_disassemble(tmp_path: Path, sig: str, data: bytes) -> tuple[str, str]:
    d = tmp_path / sig
    d.mkdir(exist_ok=True)
    (d / f"{sig}.dat").write_bytes(data)
    r = subprocess.run([IASL, "-d", f"{sig}.dat"], capture_output=True, text=True, cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    return (d / f"{sig}.dsl").read_text(), r.stdout + r.stderr


def field(dsl: str, name: str) -> list[str]:
    """Values of every ``name : value`` line of an iasl listing."""
    return re.findall(rf"^\[[0-9A-F]+h [0-9]+ +\d+\] +{re.escape(name)} : (\S+)", dsl, re.M)


def assert_clean_iasl(dsl: str, out: str) -> None:
    for bad in ("Invalid", "Incorrect checksum", "Error", "Warning"):
        assert bad not in dsl and bad not in out, bad


def ram_reader(blobs: virt.BootBlobs):
    mem = blobs.placements()

    def read(addr: int, size: int) -> bytes:
        for a, d in mem:
            if a <= addr and addr + size <= a + len(d):
                return d[addr - a : addr - a + size]
        return b""

    return read


# --- FDT writer ---------------------------------------------------------------------------


def test_fdt_header_fields_and_dtc_roundtrip(tmp_path: Path) -> None:
    root = Node("").prop("#address-cells", u32(2)).prop("#size-cells", u32(1))
    root.child(Node("chosen").prop("bootargs", "a b").prop("x", u64(0x1_2345_6789)))
    blob = build_dtb(root, mem_reserve=[(0x8000_0000, 0x1000)])
    magic, total, off_struct, off_strings, off_rsv, ver, last = struct.unpack_from(">7I", blob)
    assert (magic, total, ver, last, off_rsv) == (0xD00DFEED, len(blob), 17, 16, 40)
    assert blob[off_rsv : off_rsv + 32] == struct.pack(">4Q", 0x8000_0000, 0x1000, 0, 0)
    assert off_struct == 72 and blob[off_strings:].startswith(b"#address-cells\0")
    dts, err = dtc_decompile(tmp_path, blob)
    assert err == ""
    assert "/memreserve/\t0x0000000080000000 0x0000000000001000;" in dts
    assert 'bootargs = "a b";' in dts and "x = <0x01 0x23456789>;" in dts
    assert "#size-cells = <0x01>;" in dts


def test_fdt_writer_rejects_bad_input() -> None:
    with pytest.raises(FdtBuildError):
        Node("a").prop("p", b"").prop("p", b"")
    with pytest.raises(FdtBuildError):
        u32(1 << 32)
    with pytest.raises(FdtBuildError):
        build_dtb(Node("notroot"))
    with pytest.raises(FdtBuildError):
        build_dtb(Node("").child(Node("a/b")))


names = st.text("abcdefghijklmnopqrstuvwxyz0123456789,-", min_size=1, max_size=12)


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> Node:
    n = Node("" if depth == 0 else draw(names))
    for pname in draw(st.lists(names, unique=True, max_size=4)):
        n.prop(pname, draw(st.binary(max_size=20)))
    if depth < 3:
        for c in draw(st.lists(trees(depth + 1), max_size=3, unique_by=lambda c: c.name)):
            n.child(c)
    return n


def _same(built: Node, parsed: gfdt.FdtNode) -> None:
    assert parsed.name == built.name
    assert dict(parsed.props) == dict(built.props)
    assert [c.name for c in parsed.children] == [c.name for c in built.children]
    for b, p in zip(built.children, parsed.children, strict=True):
        _same(b, p)


@settings(max_examples=200, deadline=None)
@given(trees())
def test_fdt_roundtrip_through_guest_parser(root: Node) -> None:
    _same(root, gfdt.parse_dtb(build_dtb(root)).root)


# --- QEMU virt device tree ---------------------------------------------------------------


def test_qemu_virt_dtb_dtc_clean_and_gic_its_nodes(tmp_path: Path) -> None:
    dts, err = dtc_decompile(tmp_path, virt.qemu_virt_dtb(4, initrd=(0x4800_0000, 0x4810_0000)))
    assert err == ""
    intc = dts[dts.index("intc@8000000 {") :]
    assert 'compatible = "arm,gic-v3";' in intc
    assert "#redistributor-regions = <0x01>;" in intc
    assert "reg = <0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0xf60000>;" in intc
    its = intc[intc.index("its@8080000 {") :]
    assert 'compatible = "arm,gic-v3-its";' in its and "msi-controller;" in its
    assert "#msi-cells = <0x01>;" in its and "reg = <0x00 0x8080000 0x00 0x20000>;" in its
    # QEMU without virtualization=on: PSCI conduit HVC (machvirt_init), PSCI 1.1 CPUs.
    assert 'method = "hvc";' in dts
    assert re.search(r'compatible = "arm,psci-1\.0(\\0|", ")arm,psci-0\.2', dts)
    assert dts.count('enable-method = "psci";') == 4
    assert "linux,initrd-start = <0x00 0x48000000>;" in dts


def test_qemu_virt_dtb_property_sets_match_native_dt_log() -> None:
    """native-dt-noefi.log lists the live nodes' properties (sorted, with "name")."""
    fdt = gfdt.parse_dtb(virt.qemu_virt_dtb(4, bootargs="console=ttyAMA0", initrd=(1, 2)))
    intc = fdt.find("/intc@8000000")
    assert intc is not None
    assert sorted(intc.props) == [
        "#address-cells",
        "#interrupt-cells",
        "#redistributor-regions",
        "#size-cells",
        "compatible",
        "interrupt-controller",
        "phandle",
        "ranges",
        "reg",
    ]
    assert [c.name for c in intc.children] == ["its@8080000"]
    pcie = fdt.find("/pcie@10000000")
    assert pcie is not None
    assert sorted(pcie.props) == [
        "#address-cells",
        "#interrupt-cells",
        "#size-cells",
        "bus-range",
        "compatible",
        "device_type",
        "dma-coherent",
        "interrupt-map",
        "interrupt-map-mask",
        "linux,pci-domain",
        "msi-map",
        "ranges",
        "reg",
    ]
    # Linux nops rng-seed out of /chosen after using it (early_init_dt_scan_chosen).
    chosen = fdt.find("/chosen")
    assert chosen is not None
    assert sorted(set(chosen.props) - {"rng-seed"}) == [
        "bootargs",
        "kaslr-seed",
        "linux,initrd-end",
        "linux,initrd-start",
        "stdout-path",
    ]
    assert pcie.cells("msi-map") == (0, intc.child("its@8080000").u32("phandle"), 0, 0x10000)
    assert fdt.find("/memory@40000000").cells("reg") == (0, 0x4000_0000, 0, 0x8000_0000)


def test_qemu_virt_dtb_without_its_and_with_virtualization(tmp_path: Path) -> None:
    fdt = gfdt.parse_dtb(virt.qemu_virt_dtb(2, its=False, virtualization=True))
    assert fdt.find("/intc@8000000").children == ()
    assert fdt.find("/pcie@10000000").getprop("msi-map") is None
    assert fdt.find("/psci").string("method") == "smc"
    assert fdt.find("/intc@8000000").cells("interrupts") == (1, 9, 4)
    assert dtc_decompile(tmp_path, virt.qemu_virt_dtb(2, its=False))[1] == ""


def test_qemu_mpidr_clusters_of_16() -> None:
    assert [virt.qemu_mpidr(c) for c in (0, 15, 16, 33)] == [0, 15, 0x100, 0x201]
    assert virt.xen_vaffinity(17) == 0x101
    assert len(virt.redist_regions(123)) == 1 and len(virt.redist_regions(124)) == 2


# --- QEMU virt ACPI tables ----------------------------------------------------------------

#: From native-uefi-acpi.log ("ACPI: APIC 0x00000000BC43FC18 0001A8 (v04 BOCHS  BXPC ...").
NATIVE_LOG_LINES = {
    "FACP": "000114 (v06 BOCHS  BXPC     00000001 BXPC 00000001)",
    "APIC": "0001A8 (v04 BOCHS  BXPC     00000001 BXPC 00000001)",
    "GTDT": "000060 (v02 BOCHS  BXPC     00000001 BXPC 00000001)",
    "MCFG": "00003C (v01 BOCHS  BXPC     00000001 BXPC 00000001)",
    "IORT": "000080 (v03 BOCHS  BXPC     00000001 BXPC 00000001)",
}


@pytest.mark.parametrize("sig", sorted(NATIVE_LOG_LINES))
def test_qemu_tables_match_native_log_header_lines(tmp_path: Path, sig: str) -> None:
    """iasl prints the same table line as Linux; size, revision and OEM fields must match
    the real boot (MADT 0x1A8 for 4 CPUs is 44 + 24 + 4*80 + 16 + 20, not padded)."""
    data = virt.qemu_virt_acpi_tables(4)[sig]
    dsl, out = iasl_disassemble(tmp_path, sig, data)
    assert_clean_iasl(dsl, out)
    assert f"ACPI: {sig} 0x0000000000000000 {NATIVE_LOG_LINES[sig]}" in out


def test_qemu_madt_subtables_via_iasl(tmp_path: Path) -> None:
    dsl, out = iasl_disassemble(tmp_path, "APIC", virt.qemu_virt_madt(4, virtualization=True))
    assert_clean_iasl(dsl, out)
    types = field(dsl, "Subtable Type")
    assert types == ["0C"] + ["0B"] * 4 + ["0E", "0F"]
    assert field(dsl, "ARM MPIDR") == [f"{i:016X}" for i in range(4)]
    assert field(dsl, "Performance Interrupt") == ["00000017"] * 4
    assert field(dsl, "Virtual GIC Interrupt") == ["00000019"] * 4
    assert field(dsl, "Translation ID") == ["00000000"]
    assert "Base Address : 0000000008080000" in dsl and "Length : 00F60000" in dsl


def test_qemu_madt_size_scales_without_padding() -> None:
    for n, its in ((1, False), (4, True), (8, True), (124, True)):
        regions = 2 if n > 123 else 1
        assert len(virt.qemu_virt_madt(n, its)) == 44 + 24 + 80 * n + 16 * regions + 20 * its


def test_qemu_fadt_psci_conduit_via_iasl(tmp_path: Path) -> None:
    hvc, out = iasl_disassemble(tmp_path, "FACP", virt.qemu_virt_acpi_tables(4)["FACP"])
    assert_clean_iasl(hvc, out)
    assert re.search(r"Hardware Reduced \((V5|ACPI v5)\) : 1", hvc)
    assert "PSCI Compliant : 1" in hvc and "Must use HVC for PSCI : 1" in hvc
    assert field(hvc, "Revision") == ["06"] and field(hvc, "FADT Minor Revision") == ["00"]
    assert field(hvc, "Hypervisor ID") == ["00000000554D4551"]  # "QEMU"
    assert field(hvc, "DSDT Address")[-1] == "00000000BC437518"
    smc = virt.qemu_virt_acpi_tables(4, virtualization=True)["FACP"]
    (tmp_path / "smc").mkdir()
    smc_dsl, _ = iasl_disassemble(tmp_path / "smc", "FACP", smc)
    assert "PSCI Compliant : 1" in smc_dsl and "Must use HVC for PSCI : 0" in smc_dsl


def test_qemu_iort_via_iasl(tmp_path: Path) -> None:
    dsl, out = iasl_disassemble(tmp_path, "IORT", acpi.iort_qemu_virt())
    assert_clean_iasl(dsl, out)
    assert field(dsl, "Node Count") == ["00000002"]
    assert field(dsl, "Type") == ["00", "02"]
    assert field(dsl, "ItsCount") == ["00000001"]
    assert field(dsl, "ID Count") == ["0000FFFF"]
    assert field(dsl, "Output Reference") == ["00000030"]
    assert field(dsl, "Memory Size Limit") == ["40"]


def test_iort_maps_rids_to_the_devids_of_the_log() -> None:
    """native-uefi-acpi.log: 00:01.0 gets ITS-MSI hwirq 16384, 01:00.0 gets 524288; Linux's
    PCI/MSI hwirq is DeviceID << 11, so the RC node must map RID -> DeviceID identically."""
    iort = gacpi.parse_iort(acpi.iort_qemu_virt())
    for rid, hwirq in ((0x0008, 16384), (0x0100, 524288)):
        devid, its_ids = iort.msi_translation(0, rid)
        assert (devid << 11, its_ids) == (hwirq, (0,))


def test_gtdt_and_mcfg_via_iasl(tmp_path: Path) -> None:
    dsl, out = iasl_disassemble(tmp_path, "GTDT", acpi.gtdt())
    assert_clean_iasl(dsl, out)
    assert field(dsl, "Non-Secure EL1 Interrupt") == ["0000001E"]
    assert field(dsl, "Virtual Timer Interrupt") == ["0000001B"]
    dsl, out = iasl_disassemble(tmp_path, "MCFG", acpi.mcfg(0x40_1000_0000))
    assert_clean_iasl(dsl, out)
    assert field(dsl, "Base Address") == ["0000004010000000"] and field(dsl, "End Bus Number") == [
        "FF"
    ]


def _iasl_compile_rsdp(tmp_path: Path, oem: str, xsdt: int) -> bytes:
    src = f"""[0008]                          Signature : "RSD PTR "
[0001]                           Checksum : 00
[0006]                             Oem ID : "{oem}"
[0001]                           Revision : 02
[0004]                       RSDT Address : 00000000
[0004]                             Length : 00000024
[0008]                       XSDT Address : {xsdt:016X}
[0001]                  Extended Checksum : 00
[0003]                           Reserved : 000000
"""
    (tmp_path / "rsdp.asl").write_text(src)
    r = subprocess.run([IASL, "rsdp.asl"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "0 Errors, 0 Warnings" in r.stdout, r.stdout
    return (tmp_path / "rsdp.aml").read_bytes()


def test_rsdp_equals_iasl_compiled_rsdp(tmp_path: Path) -> None:
    """iasl 20200925 cannot disassemble a raw RSDP ("does not contain a valid ACPI table":
    it reads "PTR " as a length), so compare with iasl's own data-table compile instead."""
    assert acpi.rsdp(0xBC43_FE98) == _iasl_compile_rsdp(tmp_path, "BOCHS ", 0xBC43_FE98)


def test_xen_rsdp_keeps_a_wrong_acpi1_checksum(tmp_path: Path) -> None:
    """acpi_create_rsdp fixes the 36-byte sum through the first checksum byte."""
    blobs = virt.xen_acpi_dom0_blobs(4, True)
    x, host = blobs.acpi["RSDP"], virt.qemu_virt_acpi_tables(4, virtualization=True)["RSDP"]
    ref = _iasl_compile_rsdp(tmp_path, "BOCHS ", blobs.addresses["XSDT"])
    assert [i for i in range(36) if x[i] != ref[i]] == [8, 32]
    assert x[32] == host[32] and sum(x) % 256 == 0 and sum(x[:20]) % 256 != 0
    with pytest.raises(gacpi.AcpiError, match="checksum"):
        gacpi.parse_rsdp(x)
    assert gacpi.parse_rsdp(x, strict=False).xsdt_address == blobs.addresses["XSDT"]


# --- EFI -----------------------------------------------------------------------------------


def test_efi_guids_in_memory() -> None:
    # include/linux/efi.h: EFI_GUID(0x888eb0c6, 0x8ede, 0x4ff5, 0xa8, 0xf0, 0x9a, 0xee, ...)
    memreserve = struct.pack(
        "<IHH8B", 0x888EB0C6, 0x8EDE, 0x4FF5, 0xA8, 0xF0, 0x9A, 0xEE, 0x5C, 0xB9, 0x77, 0xC2
    )
    acpi20 = struct.pack(
        "<IHH8B", 0x8868E871, 0xE4F1, 0x11D3, 0xBC, 0x22, 0x00, 0x80, 0xC7, 0x3C, 0x88, 0x81
    )
    assert efi.guid_bytes(efi.LINUX_EFI_MEMRESERVE_TABLE_GUID) == memreserve
    assert efi.guid_bytes(efi.ACPI_20_TABLE_GUID) == acpi20
    assert gefi.LINUX_EFI_MEMRESERVE_TABLE_GUID == efi.LINUX_EFI_MEMRESERVE_TABLE_GUID


def test_xen_system_table_layout() -> None:
    b = virt.xen_acpi_dom0_blobs(4, True)
    st_ = b.efi_system_table
    assert st_[:8] == b"IBI SYST" and len(st_) == 120 + 8 + 24
    sig, rev, hsize, crc = struct.unpack_from("<QIII", st_)
    assert (sig, rev, hsize) == (0x5453595320494249, (2 << 16) | 50, 152)
    assert crc == zlib.crc32(st_[:16] + b"\0\0\0\0" + st_[20:])
    base = b.addresses["EFI_SYSTEM_TABLE"]
    assert struct.unpack_from("<QI", st_, 24) == (base + 120, 1)
    assert st_[120:128] == "Xen\0".encode("utf-16-le")
    assert struct.unpack_from("<QQ", st_, 104) == (1, base + 128)
    assert st_[128:144] == efi.guid_bytes(efi.ACPI_20_TABLE_GUID)
    assert struct.unpack_from("<Q", st_, 144)[0] == b.addresses["RSDP"]
    assert st_[40:104] == bytes(64)  # console, runtime and boot services all NULL


def test_memreserve_and_memmap_encodings() -> None:
    assert efi.memreserve() == bytes(16)
    assert efi.memreserve([(0x401C_0000, 0x1_0000)], capacity=2) == struct.pack(
        "<iiQQQ", 2, 1, 0, 0x401C_0000, 0x1_0000
    ) + bytes(16)
    d = efi.region(efi.EfiConventionalMemory, 0x6000_0000, 512 * virt.MiB).encode()
    assert d == struct.pack("<IIQQQQ", 7, 0, 0x6000_0000, 0, 0x20000, 8)
    with pytest.raises(efi.EfiBuildError):
        efi.region(7, 0x1000, 0x800)


# --- Xen ACPI dom0 ------------------------------------------------------------------------


@pytest.mark.parametrize("memreserve", [False, True])
def test_xen_acpi_dom0_dtb_via_dtc(tmp_path: Path, memreserve: bool) -> None:
    b = virt.xen_acpi_dom0_blobs(4, True, memreserve, bootargs="console=hvc0", initrd_size=0x1000)
    dts, err = dtc_decompile(tmp_path, b.dtb)
    assert err == ""
    assert "#address-cells = <0x02>;" in dts and "#size-cells = <0x01>;" in dts
    assert re.search(r'compatible = "xen,xen-4\.17(\\0|", ")xen,xen";', dts)
    st_ = b.addresses["EFI_SYSTEM_TABLE"]
    mm = b.addresses["EFI_MEMMAP"]
    assert f"xen,uefi-system-table = <0x00 {st_:#x}>;" in dts
    assert f"xen,uefi-mmap-start = <0x00 {mm:#x}>;" in dts
    assert f"xen,uefi-mmap-size = <{len(b.memmap):#x}>;" in dts
    assert "xen,uefi-mmap-desc-size = <0x28>;" in dts
    assert "xen,uefi-mmap-desc-ver = <0x01>;" in dts
    assert f"linux,initrd-start = <0x00 {b.addresses['initrd']:#x}>;" in dts
    # acpi_boot_table_init keeps ACPI only for a stub DT: /chosen and /hypervisor only.
    root = gfdt.parse_dtb(b.dtb).root
    assert [c.name for c in root.children] == ["chosen", "hypervisor"]
    assert sorted(root.child("hypervisor").props) == ["compatible"]
    # Xen's place_modules: DTB at bank0 + 128 MiB, initrd 2 MiB later (xen-dom0-dt.log).
    assert (b.addresses["dtb"], b.addresses["initrd"]) == (0x6800_0000, 0x6820_0000)


@pytest.mark.parametrize("has_its", [False, True])
def test_xen_acpi_tables_via_iasl(tmp_path: Path, has_its: bool) -> None:
    b = virt.xen_acpi_dom0_blobs(4, has_its)
    for sig, data in b.acpi.items():
        if sig == "RSDP":
            continue  # see test_xen_rsdp_keeps_a_wrong_acpi1_checksum
        dsl, out = iasl_disassemble(tmp_path, sig, data)
        assert_clean_iasl(dsl, out)
        if sig == "APIC":
            assert field(dsl, "Subtable Type") == ["0C"] + ["0B"] * 4 + ["0E"] + ["0F"] * has_its
            for f in ("Performance Interrupt", "Virtual GIC Interrupt", "Parking Protocol Version"):
                assert set(field(dsl, f)) == {"00000000"}, f
            assert set(field(dsl, "Redistributor Base Address")) == {"0000000000000000"}
            assert field(dsl, "Processor UID") == [f"{i:08X}" for i in range(4)]
            assert len(data) == (0x1A8 if has_its else 0x1A8 - 20)
        if sig == "FACP":
            assert "PSCI Compliant : 1" in dsl and "Must use HVC for PSCI : 1" in dsl
            assert re.search(r"Hardware Reduced \((V5|ACPI v5)\) : 1", dsl)
        if sig == "STAO":
            assert field(dsl, "Ignore UART") == ["01"] and field(dsl, "Revision") == ["01"]
        if sig == "XSDT":
            want = [b.addresses[s] for s in ("FACP", "APIC", "GTDT", "MCFG", "IORT", "STAO")]
            got = re.findall(r"ACPI Table Address +\d+ : (\w+)", dsl)
            assert [int(x, 16) for x in got] == want


def test_xen_fadt_is_the_host_fadt_with_hvc() -> None:
    """Host = QEMU with virtualization=on (SMC); Xen ORs in USE_HVC: the result is byte for
    byte QEMU's HVC-conduit FADT."""
    xen = virt.xen_acpi_dom0_blobs(2, False).acpi["FACP"]
    assert xen == virt.qemu_virt_acpi_tables(4, virtualization=False)["FACP"]
    assert xen != virt.qemu_virt_acpi_tables(4, virtualization=True)["FACP"]


def test_xen_blob_layout() -> None:
    b = virt.xen_acpi_dom0_blobs(8, True, True)
    base, size = virt.XEN_GNTTAB
    order = ["FACP", "APIC", "STAO", "XSDT", "RSDP", "EFI_SYSTEM_TABLE", "EFI_MEMMAP", "MEMRESERVE"]
    addrs = [b.addresses[k] for k in order]
    assert addrs[0] == base and addrs == sorted(addrs) and all(a % 8 == 0 for a in addrs)
    assert addrs[-1] + 16 <= base + 4096 <= base + size
    descs = gefi.parse_memory_map(b.memmap, 40)
    assert [(d.type, d.physical_start, d.size) for d in descs] == [
        (7, 0x6000_0000, 512 * virt.MiB),
        (7, 0xA000_0000, 256 * virt.MiB),
        (9, 0xBC43_0000, 0x1_0000),
        (9, base, 4096),
    ]
    with pytest.raises(ValueError, match="grant table region"):
        virt.xen_acpi_dom0_blobs(8, True, gnttab=(base, 0))


@pytest.mark.parametrize("has_its,memreserve", [(False, False), (True, False), (True, True)])
def test_guest_boots_xen_acpi_blobs(has_its: bool, memreserve: bool) -> None:
    """The guest's path: DT -> efi_get_fdt_params -> config tables -> RSDP/XSDT -> MADT."""
    b = virt.xen_acpi_dom0_blobs(4, has_its, memreserve)
    read = ram_reader(b)
    params = gefi.efi_fdt_params(gfdt.parse_dtb(b.dtb))
    assert params.source == "/hypervisor/uefi"
    cfg = gefi.config_tables(read, params.system_table)
    assert cfg.banner() == "EFI v2.50 by Xen"
    assert (
        list(cfg.tables)
        == [gefi.ACPI_20_TABLE_GUID] + [gefi.LINUX_EFI_MEMRESERVE_TABLE_GUID] * memreserve
    )
    if memreserve:
        assert gefi.walk_memreserve(read, cfg.mem_reserve)[0].entries == ()
    tables = gacpi.walk_tables(read, cfg.acpi20)
    assert set(tables.tables) == {"FACP", "APIC", "GTDT", "MCFG", "IORT", "STAO", "DSDT"}
    madt = gacpi.parse_madt(tables.get("APIC"))
    assert [c.arm_mpidr for c in madt.gicc] == [0, 1, 2, 3]
    assert madt.gicd[0].base_address == 0x0800_0000 and madt.gicd[0].version == 3
    assert madt.gicr == (gacpi.GicR(0x080A_0000, 0xF6_0000),)
    assert madt.its == ((gacpi.GicIts(0, 0x0808_0000),) if has_its else ())
    fadt = gacpi.parse_fadt(tables.get("FACP"))
    assert fadt.arm64_acceptable() and fadt.psci_use_hvc
    assert gacpi.parse_stao(tables.get("STAO")) is True
    mm = gefi.parse_memory_map(read(params.mmap_start, params.mmap_size), params.mmap_desc_size)
    assert mm[0].physical_start == 0x6000_0000


# --- Xen DT dom0 ----------------------------------------------------------------------------


@pytest.mark.parametrize("has_its", [False, True])
def test_xen_dt_dom0_dtb(tmp_path: Path, has_its: bool) -> None:
    blob = virt.xen_dt_dom0_dtb(4, has_its, initrd=(0x6820_0000, 0x682F_7899))
    dts, err = dtc_decompile(tmp_path, blob)
    # Real Xen names these nodes without unit addresses (xen-dom0-dt.log), hence exactly
    # these two dtc warnings and no other.
    assert sorted(re.findall(r"Warning \((\w+)\): (\S+):", err)) == [
        ("unit_address_vs_reg", "/hypervisor"),
        ("unit_address_vs_reg", "/interrupt-controller"),
    ]
    assert re.search(r'compatible = "xen,xen-4\.17(\\0|", ")xen,xen";', dts)
    fdt = gfdt.parse_dtb(blob)
    hyp, gic = fdt.find("/hypervisor"), fdt.find("/interrupt-controller")
    assert sorted(hyp.props) == ["compatible", "interrupt-parent", "interrupts", "reg"]
    assert hyp.cells("interrupts") == (1, 0, 0xF08)  # PPI 16, active-low level, all CPUs
    assert hyp.cells("reg")[:4] == (0, 0x4020_0000, 0, 0x4_0000)
    assert fdt.find("/hypervisor/uefi") is None
    assert sorted(fdt.find("/chosen").props) == [
        "bootargs",
        "kaslr-seed",
        "linux,initrd-end",
        "linux,initrd-start",
    ]
    assert gic.cells("reg") == (0, 0x0800_0000, 0, 0x1_0000, 0, 0x080A_0000, 0, 0xF6_0000)
    log_props = [
        "#address-cells",
        "#interrupt-cells",
        "#redistributor-regions",
        "#size-cells",
        "compatible",
        "interrupt-controller",
        "phandle",
        "reg",
    ]
    if has_its:
        assert sorted(gic.props) == sorted(log_props + ["ranges"])
        its = gic.child("its@8080000")
        assert sorted(its.props) == ["compatible", "msi-controller", "phandle", "reg"]
        assert fdt.find("/pcie@10000000").cells("msi-map")[1] == its.u32("phandle")
    else:
        assert sorted(gic.props) == log_props and gic.children == ()
    assert [c.name for c in fdt.find("/cpus").children] == ["cpu@0", "cpu@1", "cpu@2", "cpu@3"]
    assert fdt.find("/psci").string("method") == "hvc"
    assert fdt.find("/memory@60000000").cells("reg") == (
        0,
        0x6000_0000,
        0,
        0x2000_0000,
        0,
        0xA000_0000,
        0,
        0x1000_0000,
    )
    assert gefi.efi_fdt_params(fdt) is None  # "efi: UEFI not found."


def test_xen_dt_dom0_cpu_names_follow_vaffinity() -> None:
    cpus = gfdt.parse_dtb(virt.xen_dt_dom0_dtb(18, False, pcpus=18)).find("/cpus")
    assert cpus.children[16].name == "cpu@100" and cpus.children[16].u32("reg") == 0x100


# --- native UEFI ---------------------------------------------------------------------------


def test_native_uefi_blobs(tmp_path: Path) -> None:
    b = virt.qemu_virt_uefi_blobs(4)
    dts, err = dtc_decompile(tmp_path, b.dtb)
    assert err == "" and "linux,uefi-mmap-desc-ver = <0x01>;" in dts
    read = ram_reader(b)
    params = gefi.efi_fdt_params(gfdt.parse_dtb(b.dtb))
    assert params.source == "/chosen"
    cfg = gefi.config_tables(read, params.system_table)
    assert cfg.banner() == "EFI v2.70 by EDK II"
    # native-uefi-acpi.log:10; MEMRESERVE is the stub's (guest/efi.py), not EDK II's
    assert (cfg.acpi20, cfg.mem_reserve) == (0xBC43_0018, None)
    tables = gacpi.walk_tables(read, cfg.acpi20, strict_rsdp=True)
    assert {s: a for s, (a, _) in tables.tables.items()} == {
        s: virt.HOST_ACPI_ADDRESSES[s] for s in ("FACP", "APIC", "GTDT", "MCFG", "IORT", "DSDT")
    }


def _efi_guid(d1: int, d2: int, d3: int, *d4: int) -> bytes:
    """include/linux/efi.h EFI_GUID(a, b, c, d0..d7) as it lies in memory."""
    return struct.pack("<IHH8B", d1, d2, d3, *d4)


# include/linux/efi.h
SMBIOS3_GUID = _efi_guid(0xF2FD1544, 0x9794, 0x4A2C, 0x99, 0x2E, 0xE5, 0xBB, 0xCF, 0x20, 0xE3, 0x94)
MEMATTR_GUID = _efi_guid(0xDCFA911D, 0x26EB, 0x469F, 0xA2, 0x20, 0x38, 0xB7, 0xDC, 0x46, 0x12, 0x20)
ACPI20_GUID = _efi_guid(0x8868E871, 0xE4F1, 0x11D3, 0xBC, 0x22, 0x00, 0x80, 0xC7, 0x3C, 0x88, 0x81)
INITRD_GUID = _efi_guid(0x5568E427, 0x68FC, 0x4F3D, 0xAC, 0x74, 0xCA, 0x55, 0x52, 0x31, 0xCC, 0x68)
RNG_GUID = _efi_guid(0x1CE1E5BC, 0x7CEB, 0x42F2, 0x81, 0xE5, 0x8A, 0xAD, 0xF1, 0x80, 0xF5, 0x7B)


def test_linux_efi_guids() -> None:
    assert efi.guid_bytes(efi.SMBIOS3_TABLE_GUID) == SMBIOS3_GUID
    assert efi.guid_bytes(efi.EFI_MEMORY_ATTRIBUTES_TABLE_GUID) == MEMATTR_GUID
    assert efi.guid_bytes(efi.LINUX_EFI_INITRD_MEDIA_GUID) == INITRD_GUID
    assert efi.guid_bytes(efi.LINUX_EFI_RANDOM_SEED_TABLE_GUID) == RNG_GUID


def test_native_uefi_config_table_bytes() -> None:
    """EDK II's array as Linux prints it (native-uefi-acpi.log:10): SMBIOS 3.0, MEMATTR,
    ACPI 2.0 at the log's addresses, in 16 slots (CONFIG_TABLE_SIZE_INCREASED), the rest 0."""
    b = virt.qemu_virt_uefi_blobs(4)
    st_, base = b.efi_system_table, b.addresses["EFI_SYSTEM_TABLE"]
    vendor = "EDK II\0".encode("utf-16-le")
    assert st_[120 : 120 + len(vendor)] == vendor
    arr = 120 + len(vendor)
    assert struct.unpack_from("<QQ", st_, 104) == (3, base + arr)
    assert st_[arr:] == (
        SMBIOS3_GUID
        + struct.pack("<Q", 0xBFED_0000)
        + MEMATTR_GUID
        + struct.pack("<Q", 0xBCC3_1518)
        + ACPI20_GUID
        + struct.pack("<Q", 0xBC43_0018)
        + bytes(13 * 24)
    )
    sig, rev, hsize, crc = struct.unpack_from("<QIII", st_)
    assert (sig, rev, hsize) == (0x5453595320494249, (2 << 16) | 70, 120)
    assert crc == zlib.crc32(st_[:16] + bytes(4) + st_[20:120])
    assert gefi.parse_system_table(st_, check_crc=True).nr_tables == 3


def test_native_uefi_smbios3_and_memattr() -> None:
    b = virt.qemu_virt_uefi_blobs(4)
    ep, table = b.efi_tables["SMBIOS3"], b.efi_tables["SMBIOS3_TABLE"]
    assert b.addresses["SMBIOS3"] == 0xBFED_0000  # "SMBIOS3=0xbfed0000" (sysfs, the log)
    # DSP0134 5.2.2: "_SM3_", checksum, length 0x18, 3.0.0 ("SMBIOS 3.0.0 present."), rev 1
    assert ep[:5] == b"_SM3_" and len(ep) == 0x18 and sum(ep) % 256 == 0
    assert ep[6:12] == bytes([0x18, 3, 0, 0, 1, 0])
    assert struct.unpack_from("<IQ", ep, 12) == (6, 0xBFED_0018)
    assert b.addresses["SMBIOS3_TABLE"] == 0xBFED_0018
    assert table == bytes([127, 4, 0, 0, 0, 0])  # End-of-Table, its empty string set
    memattr = b.efi_tables["MEMATTR"]
    assert memattr == struct.pack("<IIII", 1, 0, 40, 0)  # version 1, no entries, 40-byte desc
    assert b.addresses["MEMATTR"] == 0xBCC3_1518
    placed = dict(b.placements())
    assert placed[0xBFED_0000] == ep and placed[0xBCC3_1518] == memattr


def test_native_uefi_memory_map_and_boot_services() -> None:
    b = virt.qemu_virt_uefi_blobs(4, initrd_size=0xF8000)
    descs = gefi.parse_memory_map(b.memmap, 40)
    spans = [(d.type, d.physical_start, d.physical_start + d.size) for d in descs]
    assert spans == [
        (7, 0x4000_0000, 0xBC32_0000),
        (2, 0xBC32_0000, 0xBC41_8000),  # "bc320000-bc417fff : reserved": the initrd
        (7, 0xBC41_8000, 0xBC42_0000),
        (2, 0xBC42_0000, 0xBC43_0000),  # stub DTB, memory map, loader-data pool
        (9, 0xBC43_0000, 0xBC44_0000),  # "bc430000-bc43ffff : reserved": ACPI
        (7, 0xBC44_0000, 0xBCC3_1000),
        (4, 0xBCC3_1000, 0xBCC3_2000),  # "bcc31000-bcc31fff : reserved": MEMATTR
        (7, 0xBCC3_2000, 0xBFBE_0000),
        (6, 0xBFBE_0000, 0xC000_0000),  # system table, runtime pool, SMBIOS
    ]
    a = b.addresses
    assert (a["initrd"], a["initrd_end"]) == (0xBC32_0000, 0xBC32_0000 + 0xF8000)
    # the stub's first blocks hold INITRD=0xbc42ff18 and RNG=0xbc43e498 (data at +0x18)
    assert efi.pool_data(a["EFI_POOL_LOADER_DATA"]) == 0xBC42_FF18
    assert efi.pool_data(a["EFI_POOL_ACPI_RECLAIM_MEMORY"]) == 0xBC43_E498
    assert (a["EFI_CONFIG_TABLE_SLOTS"], a["EFI_RNG_PROTOCOL"]) == (16, 1)
    assert virt.qemu_virt_uefi_blobs(4, rng=False).addresses["EFI_RNG_PROTOCOL"] == 0
    assert "initrd" not in virt.qemu_virt_uefi_blobs(4).addresses


def test_edk2_pool_buckets() -> None:
    # 16-byte tables (MEMRESERVE, INITRD) and a 4+64-byte seed: 128-byte blocks, 0x80 apart
    # as INITRD=0xbc42ff18 / MEMRESERVE=0xbc42ff98 in native-uefi-acpi.log
    assert [efi.pool_block_size(n) for n in (16, 68, 88, 89, 216, 600)] == [
        128,
        128,
        128,
        256,
        256,
        640,
    ]
    with pytest.raises(efi.EfiBuildError, match="pages"):
        efi.pool_block_size(29824)


def test_system_table_slots_refused_below_entries() -> None:
    with pytest.raises(efi.EfiBuildError, match="config_slots 0 < 1"):
        efi.system_table(0x1000, [(efi.ACPI_20_TABLE_GUID, 0x2000)], config_slots=0)
