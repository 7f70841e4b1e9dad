"""The EFI stub's configuration tables and the kernel's "efi: ..." line, v5.15 and v6.1,
against native-uefi-acpi.log and the v5.15 / v6.1 libstub sources (efi-stub.c
efi_pe_entry / efi_stub_common, random.c efi_random_get_seed, efi.c common_tables)."""

from __future__ import annotations

import dataclasses
import struct
from functools import cache

import pytest

from guest import efi as gstub
from guest.bootinfo import REAL_INITRD_SIZE
from guest.firmware import efi as gefi
from guest.firmware.fdt import parse_dtb
from hypervisor.firmware import efi as hefi
from hypervisor.firmware import virt
from tests.guest.harness import Run, boot

# native-uefi-acpi.log:2-5 and :10 (Debian 6.1 on QEMU 7.2 + EDK II 2022.11)
REAL_STUB_6_1 = [
    "EFI stub: Booting Linux Kernel...",
    "EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path",
    "EFI stub: Generating empty DTB",
    "EFI stub: Exiting boot services...",
]
REAL_EFI_LINE = (
    "efi: SMBIOS 3.0=0xbfed0000 MEMATTR=0xbcc31518 ACPI 2.0=0xbc430018 INITRD=0xbc42ff18 "
    "RNG=0xbc43e498 MEMRESERVE=0xbc42ff98 "
)
INITRD = (0xBC32_0000, REAL_INITRD_SIZE)  # "bc320000-bc417fff : reserved"


@cache
def _boot(kernel: str) -> Run:
    return boot("efi", kernel=kernel, until=30_000_000)


def _systab(run: Run) -> tuple[gefi.SystemTable, list[tuple[object, int]]]:
    read = run.guest.ram.read
    st = gefi.parse_system_table(read(virt.NATIVE_UEFI_SYSTAB, 120))
    return st, gefi.parse_config_tables(read(st.tables, 24 * st.nr_tables), st.nr_tables)


def _efi_line(run: Run) -> str:
    return next(ln for ln in run.lines() if ln.startswith("efi: ") and "=0x" in ln)


def test_v6_1_efi_line_is_the_real_one() -> None:
    assert _efi_line(_boot("v6.1")) == REAL_EFI_LINE


def test_v5_15_efi_line() -> None:
    """v5.15 installs no INITRD table, so its MEMRESERVE takes the loader-data block 6.1's
    INITRD took; its seed comes from the EfiRuntimeServicesData pool (the model's choice)."""
    rng = hefi.pool_data(virt.NATIVE_POOL_RUNTIME_DATA)
    expected = (
        REAL_EFI_LINE.replace("INITRD=0xbc42ff18 ", "")
        .replace("RNG=0xbc43e498", f"RNG=0x{rng:x}")
        .replace("MEMRESERVE=0xbc42ff98", "MEMRESERVE=0xbc42ff18")
    )
    lines = _boot("v5.15").lines()
    i = lines.index(_efi_line(_boot("v5.15")))
    assert lines[i] == expected
    assert lines[i + 1] == "efi: seeding entropy pool"  # pr_notice in v5.15 efi.c
    assert "efi: seeding entropy pool" not in _boot("v6.1").lines()


def test_stub_lines_in_each_kernels_order() -> None:
    assert _boot("v6.1").guest.printk.text()[:4] == REAL_STUB_6_1
    # v5.15 efi_pe_entry: "Generating empty DTB" comes before efi_load_initrd
    assert _boot("v5.15").guest.printk.text()[:4] == [REAL_STUB_6_1[i] for i in (0, 2, 1, 3)]


@pytest.mark.parametrize(
    ("kernel", "guids"),
    [
        ("v5.15", ["SMBIOS3", "MEMATTR", "ACPI20", "RNG", "MEMRESERVE"]),
        ("v6.1", ["SMBIOS3", "MEMATTR", "ACPI20", "INITRD", "RNG", "MEMRESERVE"]),
    ],
)
def test_stub_appends_in_place_and_fixes_the_crc(kernel: str, guids: list[str]) -> None:
    run = _boot(kernel)
    st, tables = _systab(run)
    names = {
        gstub.SMBIOS3_TABLE_GUID: "SMBIOS3",
        gstub.EFI_MEMORY_ATTRIBUTES_TABLE_GUID: "MEMATTR",
        gefi.ACPI_20_TABLE_GUID: "ACPI20",
        gstub.LINUX_EFI_INITRD_MEDIA_GUID: "INITRD",
        gstub.LINUX_EFI_RANDOM_SEED_TABLE_GUID: "RNG",
        gefi.LINUX_EFI_MEMRESERVE_TABLE_GUID: "MEMRESERVE",
    }
    assert [names[g] for g, _ in tables] == guids
    # 16 slots: the stub's entries go into EDK II's array, which does not move
    vendor = len("EDK II\0".encode("utf-16-le"))
    assert st.tables == virt.NATIVE_UEFI_SYSTAB + 120 + vendor
    raw = run.guest.ram.read(virt.NATIVE_UEFI_SYSTAB, 120)
    assert gefi.parse_system_table(raw, check_crc=True).nr_tables == len(guids)


def test_v6_1_initrd_table_and_no_dt_initrd() -> None:
    run = _boot("v6.1")
    read = run.guest.ram.read
    assert struct.unpack("<QQ", read(0xBC42_FF18, 16)) == INITRD  # struct linux_efi_initrd
    chosen = parse_dtb(read(virt.NATIVE_UEFI_DTB, 0x1000)).find("/chosen")
    assert chosen.getprop("linux,initrd-start") is None
    k = run.guest.kernels[0]
    assert k.spec.initrd == INITRD  # phys_initrd_start/size from the table
    assert any(
        (r.base, r.size) == INITRD and r.owner.kind == "initrd" for r in k.memblock.reservations
    )


def test_v5_15_initrd_in_the_dt() -> None:
    run = _boot("v5.15")
    read = run.guest.ram.read
    chosen = parse_dtb(read(virt.NATIVE_UEFI_DTB, 0x1000)).find("/chosen")
    assert chosen.number("linux,initrd-start") == INITRD[0]
    assert chosen.number("linux,initrd-end") == INITRD[0] + INITRD[1]
    k = run.guest.kernels[0]
    assert k.spec.initrd == INITRD
    assert any(
        (r.base, r.size) == INITRD and r.owner.kind == "initrd" for r in k.memblock.reservations
    )
    assert run.result()["corruption"] == []  # the stub's writes land in memory it owns


@pytest.mark.parametrize(
    ("kernel", "addr", "size"), [("v5.15", None, 64), ("v6.1", 0xBC43_E498, 32)]
)
def test_random_seed_table(kernel: str, addr: int | None, size: int) -> None:
    """struct linux_efi_random_seed {u32 size; u8 bits[]}: EFI_RANDOM_SEED_SIZE is 64 in
    v5.15 and 32 in v6.1; v6.1's block is the one in the log (EfiACPIReclaimMemory)."""
    run = _boot(kernel)
    _, tables = _systab(run)
    seed = dict(tables)[gstub.LINUX_EFI_RANDOM_SEED_TABLE_GUID]
    if addr is not None:
        assert seed == addr
    read = run.guest.ram.read
    assert struct.unpack("<I", read(seed, 4))[0] == size
    assert read(seed + 4, size) != bytes(size)
    assert run.guest.kernels[0].efi["rng_seed"] == (seed, size)


def test_no_rng_protocol_no_rng_table() -> None:
    blobs = virt.qemu_virt_uefi_blobs(4, initrd_size=REAL_INITRD_SIZE, rng=False)
    line = _efi_line(boot("efi", blobs=blobs, until=30_000_000))
    assert "RNG=" not in line and line.endswith("MEMRESERVE=0xbc42ff18 ")


def test_memreserve_table_is_a_bare_header_the_kernel_reserves() -> None:
    run = _boot("v5.15")
    # size 0, count 0 as install_memreserve_table left it; next = the first node the kernel
    # linked in (kexec-uefi-acpi.log:1094 "40187000-40187fff : reserved")
    assert struct.unpack("<iiQ", run.guest.ram.read(0xBC42_FF18, 16)) == (0, 0, 0x4018_7000)
    k = run.guest.kernels[0]
    assert k.efi["mem_reserve"] == 0xBC42_FF18
    assert any(
        r.base == 0xBC42_FF18 and r.owner.label == "EFI MEMRESERVE node"
        for r in k.memblock.reservations
    )


def test_memattr_reserved_and_a_bad_version_refused() -> None:
    k = _boot("v5.15").guest.kernels[0]
    assert any(
        (r.base, r.size) == (0xBCC3_1518, 16) and r.owner.label == "EFI memory attributes table"
        for r in k.memblock.reservations
    )
    v2 = hefi.memory_attributes_table(version=2)
    run = boot("efi", until=30_000_000, extra_placements=(("MEMATTR", 0xBCC3_1518, v2),))
    assert "efi: Unexpected EFI Memory Attributes table version 2" in run.lines()
    assert "EFI_MEM_ATTR" not in run.guest.kernels[0].efi["enabled"]


def test_full_config_array_grows_from_the_runtime_pool() -> None:
    """CoreInstallConfigurationTable with no free slot: a new array of count + 16 entries
    from the runtime pool, the old entries copied, the CRC recomputed."""
    blobs = virt.qemu_virt_uefi_blobs(4, initrd_size=REAL_INITRD_SIZE)
    addrs = {k: v for k, v in blobs.addresses.items() if k != "EFI_CONFIG_TABLE_SLOTS"}
    run = boot("efi", blobs=dataclasses.replace(blobs, addresses=addrs), until=30_000_000)
    st, tables = _systab(run)
    runtime = virt.NATIVE_POOL_RUNTIME_DATA
    # RNG seed (68 bytes: one 128-byte block) was allocated first, then the array (19 * 24)
    assert dict(tables)[gstub.LINUX_EFI_RANDOM_SEED_TABLE_GUID] == hefi.pool_data(runtime)
    assert st.tables == hefi.pool_data(runtime + 128)
    assert [a for _, a in tables][:3] == [0xBFED_0000, 0xBCC3_1518, 0xBC43_0018]
    raw = run.guest.ram.read(virt.NATIVE_UEFI_SYSTAB, 120)
    assert gefi.parse_system_table(raw, check_crc=True).nr_tables == 5
    assert run.result()["corruption"] == []


def test_guest_and_firmware_agree_on_boot_service_keys() -> None:
    assert gstub.EFI_POOL_KEYS == hefi.EFI_POOL_KEYS
    assert (gstub.EFI_CONFIG_TABLE_SLOTS, gstub.EFI_RNG_PROTOCOL) == (
        hefi.EFI_CONFIG_TABLE_SLOTS,
        hefi.EFI_RNG_PROTOCOL,
    )
    assert (gstub.POOL_SIZE_TABLE, gstub.POOL_HEAD_SIZE) == (
        hefi.POOL_SIZE_TABLE,
        hefi.POOL_HEAD_SIZE,
    )
    for name in ("SMBIOS3_TABLE_GUID", "EFI_MEMORY_ATTRIBUTES_TABLE_GUID"):
        assert getattr(gstub, name) == getattr(hefi, name)
    assert gstub.LINUX_EFI_INITRD_MEDIA_GUID == hefi.LINUX_EFI_INITRD_MEDIA_GUID
    assert gstub.LINUX_EFI_RANDOM_SEED_TABLE_GUID == hefi.LINUX_EFI_RANDOM_SEED_TABLE_GUID


def test_common_tables_names() -> None:
    """efi.c common_tables: INITRD only from v6.1; ESRT is EFI_SYSTEM_RESOURCE_TABLE_GUID,
    EFI_GUID(0xb122a263, 0x3661, 0x4f68, 0x99, 0x29, 0x78, 0xf8, 0xb0, 0xd6, 0x21, 0x80)."""
    assert gstub.LINUX_EFI_INITRD_MEDIA_GUID not in gstub.COMMON_TABLES_5_15
    assert gstub.COMMON_TABLES_6_1[gstub.LINUX_EFI_INITRD_MEDIA_GUID] == "INITRD"
    esrt = struct.pack(
        "<IHH8B", 0xB122A263, 0x3661, 0x4F68, 0x99, 0x29, 0x78, 0xF8, 0xB0, 0xD6, 0x21, 0x80
    )
    assert gstub.EFI_SYSTEM_RESOURCE_TABLE_GUID.bytes_le == esrt
    assert gstub.COMMON_TABLES_5_15[gstub.EFI_SYSTEM_RESOURCE_TABLE_GUID] == "ESRT"
