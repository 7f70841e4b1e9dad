"""memblock, the page allocator calibration, the Image layout and kexec-tools' placement,
against the addresses of the real boots (reference/real-boot/, cited per test)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from guest.image import Image, ImageLayout
from guest.kexec import Segment, locate_hole
from guest.memblock import Memblock, PageAllocator, subtract
from guest.regions import Owner, RegionMap

RAM = (0x4000_0000, 0x8000_0000)
SZ_64K = 0x10000


def _alloc(reserved: list[tuple[int, int]]) -> PageAllocator:
    mb = Memblock(RegionMap(*RAM))
    mb.add(*RAM)
    for base, size in reserved:
        mb.reserve(base, size, Owner("rsv", "reserved", 1))
    return PageAllocator(mb, 1)


def _its_sequence(pa: PageAllocator) -> list[int]:
    """its_probe_one + allocate_lpi_tables: cmd queue, devices, collections, prop, 4 pending."""
    return [pa.alloc(SZ_64K, Owner("t", str(i), 1)) for i in range(8)]


def test_image_layout_matches_native_dt_iomem() -> None:
    # native-dt-noefi.log /proc/iomem: 40210000-4185ffff Kernel code, 41860000-41eaffff reserved,
    # 41eb0000-4220ffff Kernel data
    lay = ImageLayout(0x4020_0000)
    assert (lay.stext, lay.init_begin, lay.sdata, lay.end) == (
        0x4021_0000,
        0x4186_0000,
        0x41EB_0000,
        0x4221_0000,
    )


def test_image_layout_matches_the_kexeced_image_of_kexec_uefi() -> None:
    # kexec-uefi-acpi.log:1096-1098: 40410000-41a5ffff Kernel code, 420b0000-4240ffff Kernel data
    lay = ImageLayout(0x4040_0000)
    assert (lay.stext, lay.init_begin, lay.sdata, lay.end) == (
        0x4041_0000,
        0x41A6_0000,
        0x420B_0000,
        0x4241_0000,
    )
    assert lay.image_size == 0x201_0000


def test_memory_line_of_the_real_logs() -> None:
    line = ImageLayout(0).memory_line(98324, 2097152, 75412, 65536)
    assert line == (
        "Memory: 98324K/2097152K available (13248K kernel code, 2806K rwdata, 9504K rodata, "
        "6464K init, 627K bss, 75412K reserved, 65536K cma-reserved)"
    )  # native-dt-noefi.log:46


def test_calibration_native_dt() -> None:
    # image at 0x40200000 (_stext..._end reserved), initrd 0x48000000, DTB 0x48200000 (1 MiB)
    pa = _alloc([(0x4021_0000, 0x200_0000), (0x4800_0000, 0xF8000), (0x4820_0000, 0x10_0000)])
    cmdq, dev, coll, prop, *pend = _its_sequence(pa)
    # native-dt-noefi.log:67-70, 100-107
    assert (dev, coll, prop) == (0x425A_0000, 0x425B_0000, 0x425C_0000)
    assert pend == [0x425D_0000, 0x425E_0000, 0x425F_0000, 0x4260_0000]
    assert cmdq == 0x4259_0000  # not in any log: documented model choice


def test_calibration_native_uefi_and_the_memreserve_node_page() -> None:
    pa = _alloc([(0xA619_0000, 0x200_0000)])  # the stub put the Image high (KASLR)
    cmdq, dev, coll, prop, *pend = _its_sequence(pa)
    assert (dev, coll, prop, pend[0], pend[3]) == (
        0x401A_0000,
        0x401B_0000,
        0x401C_0000,
        0x401D_0000,
        0x4020_0000,
    )
    # kexec-uefi-acpi.log:1094 "40187000-40187fff : reserved": the MEMRESERVE node page
    assert pa.alloc(0x1000, Owner("n", "node", 1), align=0x1000) == 0x4018_7000


def test_calibration_kexec_uefi_second_kernel() -> None:
    # reserved by MEMRESERVE: node page and the five LPI tables; image at 0x40400000;
    # initrd + DTB right after it (kexec-uefi-acpi.log:1094-1099)
    pa = _alloc(
        [
            (0x4018_7000, 0x1000),
            (0x401C_0000, 0x5_0000),
            (0x4041_0000, 0x200_0000),
            (0x4241_0000, 0xF9000),
        ]
    )
    _, dev, coll, *_ = _its_sequence(pa)
    assert (dev, coll) == (0x429A_0000, 0x429B_0000)  # kexec-uefi-acpi.log:773-774


def test_calibration_kexec_dt_second_kernel() -> None:
    pa = _alloc([(0x4201_0000, 0x200_0000), (0x4401_0000, 0xF9000)])
    _, dev, coll, *_ = _its_sequence(pa)
    assert (dev, coll) == (0x401A_0000, 0x401B_0000)  # kexec-dt-noefi.log:664-665


def test_kexec_places_the_image_where_the_real_one_went() -> None:
    # kexec-uefi-acpi.log first kernel: System RAM 40000000-bc43ffff with the memreserve node
    # and the LPI tables reserved; the second kernel's "Kernel code" starts at 40410000.
    ranges = subtract(
        [(0x4000_0000, 0xBC44_0000)], [(0x4018_7000, 0x4018_8000), (0x401C_0000, 0x4021_0000)]
    )
    size = ImageLayout(0).image_size
    assert locate_hole(ranges, [], size, 0x20_0000, 0) == 0x4040_0000
    # native-dt: the init section, initrd and DTB are "reserved" children of System RAM
    ranges = subtract(
        [(0x4000_0000, 0xC000_0000)],
        [(0x4186_0000, 0x41EB_0000), (0x4800_0000, 0x480F_8000), (0x4820_0000, 0x4830_0000)],
    )
    base = locate_hole(ranges, [], size, 0x20_0000, 0)
    # the real crash: the old property table 0x425c0000 lay inside the new kernel's text
    lay = Image(ImageLayout(base)).layout
    assert lay.stext <= 0x425C_0000 < lay.etext
    seg = [Segment("kernel", base, size)]
    assert locate_hole(ranges, seg, 0xF8000, 0, base + size) == base + size


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 0x3FFF), st.integers(1, 0x40)), max_size=12))
def test_allocations_never_overlap_reservations(rsv: list[tuple[int, int]]) -> None:
    reserved = [(0x4000_0000 + a * SZ_64K, n * SZ_64K) for a, n in rsv]
    pa = _alloc(reserved)
    got = [pa.alloc(SZ_64K, Owner("x", "x", 1)) for _ in range(6)]
    for g in got:
        assert g % SZ_64K == 0
        assert all(not (b < g + SZ_64K and g < b + n) for b, n in reserved)
    assert len(set(got)) == len(got)
