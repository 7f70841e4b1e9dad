"""The guest's firmware parsers against blobs made by the real tools (dtc, iasl) and by
hand from the spec layouts; bad input gives one FirmwareError subclass, never IndexError."""

from __future__ import annotations

import contextlib
import re
import struct
import subprocess
import zlib
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guest.firmware import FirmwareError
from guest.firmware import acpi as gacpi
from guest.firmware import efi as gefi
from guest.firmware import fdt as gfdt

DTC = "/usr/bin/dtc"
IASL = "/usr/bin/iasl"

DTS = """/dts-v1/;
/memreserve/ 0x80000000 0x10000;
/ {
    #address-cells = <2>;
    #size-cells = <1>;
    chosen {
        bootargs = "console=hvc0";
        linux,initrd-start = /bits/ 64 <0x68200000>;
    };
    hypervisor {
        compatible = "xen,xen-4.17", "xen,xen";
        uefi {
            xen,uefi-system-table = /bits/ 64 <0x40200368>;
            xen,uefi-mmap-start = /bits/ 64 <0x40200400>;
            xen,uefi-mmap-size = <0xa0>;
            xen,uefi-mmap-desc-size = <0x28>;
            xen,uefi-mmap-desc-ver = <1>;
        };
    };
    intc@8000000 {
        compatible = "arm,gic-v3";
        its@8080000 { compatible = "arm,gic-v3-its"; msi-controller; };
    };
};
"""


@pytest.fixture(scope="module")
def dtb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("dts")
    (d / "t.dts").write_text(DTS)
    subprocess.run(
        [DTC, "-I", "dts", "-O", "dtb", "-o", str(d / "t.dtb"), str(d / "t.dts")],
        check=True,
        capture_output=True,
    )
    return (d / "t.dtb").read_bytes()


def test_parse_dtc_compiled_tree(dtb: bytes) -> None:
    fdt = gfdt.parse_dtb(dtb)
    assert fdt.version == 17 and fdt.mem_reserve == ((0x8000_0000, 0x1_0000),)
    assert fdt.root.u32("#size-cells") == 1
    assert fdt.find("/hypervisor").strings("compatible") == ("xen,xen-4.17", "xen,xen")
    assert fdt.find("/chosen").string("bootargs") == "console=hvc0"
    assert fdt.find("/chosen").u64("linux,initrd-start") == 0x6820_0000
    assert fdt.find("/intc").name == "intc@8000000"  # unit address optional (libfdt)
    assert fdt.find("/intc@8000000/its@8080000").getprop("msi-controller") == b""
    assert [n.path for n in fdt.compatible_nodes("arm,gic-v3-its")] == ["/intc@8000000/its@8080000"]
    p = gefi.efi_fdt_params(fdt)
    assert p == gefi.FdtEfiParams("/hypervisor/uefi", 0x4020_0368, 0x4020_0400, 0xA0, 40, 1)


def test_fdt_bad_input_is_fdt_error(dtb: bytes) -> None:
    with pytest.raises(gfdt.FdtError, match="bad magic"):
        gfdt.parse_dtb(b"\0" * 4 + dtb[4:])
    with pytest.raises(gfdt.FdtError, match="truncated"):
        gfdt.parse_dtb(dtb[:-8])
    with pytest.raises(gfdt.FdtError, match="truncated"):
        gfdt.parse_dtb(dtb[:20])
    fdt = gfdt.parse_dtb(dtb)
    with pytest.raises(gfdt.FdtError, match="expected 4"):
        fdt.find("/chosen").u32("linux,initrd-start")
    with pytest.raises(gfdt.FdtError, match="no property"):
        fdt.find("/chosen").u32("nope")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fdt_mutations_never_crash(dtb: bytes, data: st.DataObject) -> None:
    raw = bytearray(dtb)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(FirmwareError):
        gfdt.parse_dtb(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))


# --- ACPI via iasl's data-table compiler ------------------------------------------------------

HDR = """[0004]                          Signature : "{sig}"
[0004]                       Table Length : 00000000
[0001]                           Revision : {rev:02X}
[0001]                           Checksum : 00
[0006]                             Oem ID : "BOCHS "
[0008]                       Oem Table ID : "BXPC    "
[0004]                       Oem Revision : 00000001
[0004]                    Asl Compiler ID : "BXPC"
[0004]              Asl Compiler Revision : 00000001
"""

GICC = """[0001]                      Subtable Type : 0B [Generic Interrupt Controller]
[0001]                             Length : 50
[0002]                           Reserved : 0000
[0004]               CPU Interface Number : {n:08X}
[0004]                      Processor UID : {n:08X}
[0004]              Flags (decoded below) : 00000001
                        Processor Enabled : 1
       Performance Interrupt Trigger Mode : 0
       Virtual GIC Interrupt Trigger Mode : 0
[0004]           Parking Protocol Version : 00000000
[0004]              Performance Interrupt : 00000017
[0008]                     Parked Address : 0000000000000000
[0008]                       Base Address : 0000000000000000
[0008]           Virtual GIC Base Address : 0000000000000000
[0008]        Hypervisor GIC Base Address : 0000000000000000
[0004]              Virtual GIC Interrupt : 00000019
[0008]         Redistributor Base Address : 0000000000000000
[0008]                          ARM MPIDR : {mpidr:016X}
[0001]                   Efficiency Class : 00
[0001]                           Reserved : 00
[0002]             SPE Overflow Interrupt : 0000
"""

MADT_TAIL = """[0001]                      Subtable Type : 0E [Generic Interrupt Redistributor]
[0001]                             Length : 10
[0002]                           Reserved : 0000
[0008]                       Base Address : 00000000080A0000
[0004]                             Length : 00F60000

[0001]                      Subtable Type : 0F [Generic Interrupt Translator]
[0001]                             Length : 14
[0002]                           Reserved : 0000
[0004]                     Translation ID : 00000005
[0008]                       Base Address : 0000000008080000
[0004]                           Reserved : 00000000
"""

GICD = """[0004]                 Local Apic Address : 00000000
[0004]              Flags (decoded below) : 00000000
                      PC-AT Compatibility : 0

[0001]                      Subtable Type : 0C [Generic Interrupt Distributor]
[0001]                             Length : 18
[0002]                           Reserved : 0000
[0004]              Local GIC Hardware ID : 00000000
[0008]                       Base Address : 0000000008000000
[0004]                     Interrupt Base : 00000000
[0001]                            Version : 03
[0003]                           Reserved : 000000
"""


def iasl_compile(tmp_path: Path, name: str, source: str) -> bytes:
    (tmp_path / f"{name}.asl").write_text(source)
    r = subprocess.run([IASL, f"{name}.asl"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "0 Errors" in r.stdout, r.stdout + r.stderr
    return (tmp_path / f"{name}.aml").read_bytes()


def iasl_template(tmp_path: Path, sig: str) -> tuple[str, bytes]:
    """iasl's own template for ``sig`` (-T), compiled."""
    r = subprocess.run([IASL, "-T", sig], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    src = (tmp_path / f"{sig.lower()}.asl").read_text()
    return src, iasl_compile(tmp_path, sig.lower(), src)


@pytest.fixture
def madt_bytes(tmp_path: Path) -> bytes:
    src = HDR.format(sig="APIC", rev=4) + GICD
    src += "".join(GICC.format(n=n, mpidr=m) for n, m in enumerate((0x0, 0x1, 0x100)))
    return iasl_compile(tmp_path, "apic", src + MADT_TAIL)


def test_madt_from_iasl(madt_bytes: bytes) -> None:
    assert len(madt_bytes) == 44 + 24 + 3 * 80 + 16 + 20
    m = gacpi.parse_madt(madt_bytes)
    assert m.header.revision == 4 and m.header.oem_id == "BOCHS "
    assert m.order == (0x0C, 0x0B, 0x0B, 0x0B, 0x0E, 0x0F)
    assert [c.arm_mpidr for c in m.gicc] == [0, 1, 0x100]
    assert [c.uid for c in m.gicc] == [0, 1, 2] and all(c.enabled for c in m.gicc)
    assert {(c.performance_interrupt, c.vgic_interrupt) for c in m.gicc} == {(23, 25)}
    assert m.gicd == (gacpi.GicD(0, 0x0800_0000, 0, 3),)
    assert m.gicr == (gacpi.GicR(0x080A_0000, 0xF6_0000),)
    assert m.its == (gacpi.GicIts(5, 0x0808_0000),)


def test_madt_template_with_every_subtable_type(tmp_path: Path) -> None:
    src, raw = iasl_template(tmp_path, "APIC")
    m = gacpi.parse_madt(raw)
    types = [int(t, 16) for t in re.findall(r"Subtable Type : ([0-9A-F]{2})", src)]
    assert list(m.order) == types
    assert (len(m.gicc), len(m.gicd), len(m.gicr), len(m.its)) == (1, 1, 1, 1)
    assert len(m.other) == len(types) - 4


def test_fadt_template_flags(tmp_path: Path) -> None:
    src, _ = iasl_template(tmp_path, "FACP")
    src = re.sub(r"(Hardware Reduced \(V5\) : )0", r"\g<1>1", src)
    src = re.sub(r"(PSCI Compliant : )0", r"\g<1>1", src)
    f = gacpi.parse_fadt(iasl_compile(tmp_path, "facp2", src))
    assert (f.revision, f.minor_revision) == (6, 1)
    assert f.hw_reduced and f.psci_compliant and not f.psci_use_hvc and f.arm64_acceptable()


def test_iort_template(tmp_path: Path) -> None:
    src, raw = iasl_template(tmp_path, "IORT")
    iort = gacpi.parse_iort(raw)
    assert [n.type for n in iort.nodes] == [
        int(t, 16) for t in re.findall(r"\] +Type : (\w\w)", src)
    ]
    assert iort.nodes[0].type == gacpi.ACPI_IORT_NODE_ITS_GROUP


def test_rsdp_xsdt_walk(tmp_path: Path, madt_bytes: bytes) -> None:
    xsdt_src = (
        HDR.format(sig="XSDT", rev=1)
        + "[0008]             ACPI Table Address   0 : 0000000000002000\n"
    )
    xsdt = iasl_compile(tmp_path, "xsdt", xsdt_src)
    rsdp = iasl_compile(
        tmp_path,
        "rsdp",
        """[0008] Signature : "RSD PTR "
[0001] Checksum : 00
[0006] Oem ID : "BOCHS "
[0001] Revision : 02
[0004] RSDT Address : 00000000
[0004] Length : 00000024
[0008] XSDT Address : 0000000000001000
[0001] Extended Checksum : 00
[0003] Reserved : 000000
""",
    )
    mem = {0x100: rsdp, 0x1000: xsdt, 0x2000: madt_bytes}

    def read(a: int, n: int) -> bytes:
        for base, d in mem.items():
            if base <= a and a + n <= base + len(d):
                return d[a - base : a - base + n]
        return b""

    t = gacpi.walk_tables(read, 0x100, strict_rsdp=True)
    assert t.rsdp.checksum_ok and t.rsdp.xchecksum_ok and t.xsdt == (0x2000,)
    assert t.tables["APIC"][0] == 0x2000
    bad = bytearray(madt_bytes)
    bad[60] ^= 1
    mem[0x2000] = bytes(bad)
    with pytest.raises(gacpi.AcpiError, match=r"APIC: bad checksum .* \(offset 0x9\)"):
        gacpi.walk_tables(read, 0x100)
    mem[0x2000] = madt_bytes[:100]
    with pytest.raises(gacpi.AcpiError, match="ACPI APIC at 0x2000: read 0 of 344 bytes"):
        gacpi.walk_tables(read, 0x100)
    with pytest.raises(gacpi.AcpiError, match="bad signature"):
        gacpi.parse_rsdp(b"RSD PTX " + rsdp[8:])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["APIC", "FACP", "IORT", "STAO", "XSDT"]))
def test_acpi_garbage_never_crashes(blob: bytes, sig: str) -> None:
    data = bytearray(sig.encode() + blob)
    if len(data) >= 10:
        struct.pack_into("<I", data, 4, min(len(data), struct.unpack_from("<I", data, 4)[0]))
        data[9] = (data[9] - sum(data)) & 0xFF  # valid checksum: exercise the subtable walk
    parse = {
        "APIC": gacpi.parse_madt,
        "FACP": gacpi.parse_fadt,
        "IORT": gacpi.parse_iort,
        "STAO": gacpi.parse_stao,
        "XSDT": gacpi.parse_xsdt,
    }[sig]
    with contextlib.suppress(FirmwareError):
        parse(bytes(data))


# --- EFI (bytes laid out by hand from the UEFI spec) ----------------------------------------

ACPI20 = UUID("8868e871-e4f1-11d3-bc22-0080c73c8881")


def systab(nr: int, cfg_ptr: int, vendor_ptr: int, rev: int = (2 << 16) | 50) -> bytes:
    raw = bytearray(120)
    struct.pack_into("<QIII", raw, 0, 0x5453595320494249, rev, 120, 0)
    struct.pack_into("<QI", raw, 24, vendor_ptr, 1)
    struct.pack_into("<QQ", raw, 104, nr, cfg_ptr)
    struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw)))
    return bytes(raw)


def test_efi_config_tables_and_memreserve() -> None:
    guid_le = bytes.fromhex("71e86888f1e4d311bc220080c73c8881")
    mres_le = bytes.fromhex("c6b08e88de8ef54fa8f09aee5cb977c2")
    cfg = guid_le + struct.pack("<Q", 0x5000) + mres_le + struct.pack("<Q", 0x6000)
    node2 = struct.pack("<iiQ", 255, 1, 0) + struct.pack("<QQ", 0x401C_0000, 0x1_0000)
    mem = {
        0x1000: systab(2, 0x2000, 0x3000),
        0x2000: cfg,
        0x3000: "Xen\0".encode("utf-16-le"),
        0x6000: struct.pack("<iiQ", 0, 0, 0x7000),
        0x7000: node2,
    }

    def read(a: int, n: int) -> bytes:
        for base, d in mem.items():
            if base <= a and a + n <= base + len(d):
                return d[a - base : a - base + n]
        return b""

    c = gefi.config_tables(read, 0x1000)
    assert c.banner() == "EFI v2.50 by Xen" and c.acpi20 == 0x5000 and c.mem_reserve == 0x6000
    assert list(c.tables) == [ACPI20, gefi.LINUX_EFI_MEMRESERVE_TABLE_GUID]
    nodes = gefi.walk_memreserve(read, c.mem_reserve)
    assert [n.entries for n in nodes] == [(), ((0x401C_0000, 0x1_0000),)]
    assert gefi.parse_system_table(mem[0x1000], check_crc=True).nr_tables == 2
    mem[0x7000] = struct.pack("<iiQ", 1, 1, 0x6000) + node2[16:]
    with pytest.raises(gefi.EfiError, match="loops"):
        gefi.walk_memreserve(read, 0x6000)


def test_efi_bad_input() -> None:
    with pytest.raises(gefi.EfiError, match="bad signature"):
        gefi.parse_system_table(b"\0" * 120)
    with pytest.raises(gefi.EfiError, match="truncated"):
        gefi.parse_system_table(systab(1, 0, 0)[:100])
    bad = bytearray(systab(1, 0, 0))
    bad[40] = 1
    with pytest.raises(gefi.EfiError, match="CRC32"):
        gefi.parse_system_table(bytes(bad), check_crc=True)
    with pytest.raises(gefi.EfiError, match="multiple of 40"):
        gefi.parse_memory_map(b"\0" * 50, 40)
    with pytest.raises(gefi.EfiError, match="count"):
        gefi.parse_memreserve(struct.pack("<iiQ", 1, 2, 0))


def test_memory_map_with_larger_descriptors() -> None:
    d = struct.pack("<IIQQQQ", 7, 0, 0x4000_0000, 0, 0x100, 8) + b"\xff" * 8
    (m,) = gefi.parse_memory_map(d, 48)
    assert (m.type, m.physical_start, m.size, m.attribute) == (7, 0x4000_0000, 0x10_0000, 8)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.integers(0, 8))
def test_efi_garbage_never_crashes(blob: bytes, n: int) -> None:
    for f in (
        lambda: gefi.parse_system_table(blob, check_crc=True),
        lambda: gefi.parse_config_tables(blob, n),
        lambda: gefi.parse_memreserve(blob),
        lambda: gefi.parse_memory_map(blob, 40),
    ):
        with contextlib.suppress(FirmwareError):
            f()
