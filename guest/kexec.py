"""kexec: ``kexec -l`` placement as kexec-tools 2.0.25 (arm64) does it, and ``kexec -e``.

Placement (horms/kexec-tools kexec/arch/arm64/kexec-arm64.c, kexec/kexec.c, read with the
search tool): ``get_memory_ranges`` takes every "System RAM" range of /proc/iomem and
excludes every child resource other than "Kernel code", "Kernel data" and "Crash kernel"
(so memblock-reserved ranges and ``efi_mem_reserve_iomem`` ranges are excluded, the running
kernel's code and data are not). ``arm64_locate_kernel_segment``: ``locate_hole(text_offset
+ image_size, 2 MiB, 0, ULONG_MAX, 1)`` — the lowest 2 MiB-aligned hole (hole_end > 0 picks
the first fit). ``arm64_load_other_segments``: initrd, then the DTB, then purgatory, each
first-fit above ``image_base + image_size`` (page aligned). text_offset is 0 for this Image;
image_size is the header's ``_end - _text`` (guest/image.py). Purgatory's size is an
estimate (:data:`PURGATORY_SIZE`).

Execution (kernel/kexec_core.c ``kernel_kexec``): ``kernel_restart_prepare`` ->
``device_shutdown`` (drivers stop their MSIs), "kexec_core: Starting new kernel",
``machine_shutdown`` -> ``smp_shutdown_nonboot_cpus`` (CPU_OFF + "psci: CPU%d killed"),
``machine_kexec`` ("Bye!", then ``cpu_soft_restart`` into the relocation code, which copies
the segments and jumps to the new Image with x0 = the DTB). The GIC is not reset: the
redistributors keep EnableLPIs, PROPBASER and PENDBASER, the ITS keeps running until the new
kernel's ``its_force_quiescent``. The relocation's copy is checked against what the hardware
still uses (the old LPI and ITS tables); RAM holds only the Image's modelled words, the new
DTB and nothing of the initrd's contents (its range is still checked).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guest.bootinfo import REAL_INITRD_SIZE
from guest.dtb_edit import set_chosen, string_prop, u64_prop
from guest.image import Image, ImageLayout
from guest.memblock import SZ_2M, SZ_4K, align_up, subtract
from guest.smp import smp_shutdown_nonboot_cpus

if TYPE_CHECKING:
    from guest.kernel import Kernel

Gen = Generator[Any, Any, Any]

MiB = 1 << 20
#: purgatory.ro loaded by elf_rel_build_load (text+data+bss of kexec-tools' arm64 purgatory,
#: estimated: a few KiB).
PURGATORY_SIZE = 0x4000
ULONG_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class Segment:
    name: str
    base: int
    size: int
    data: bytes = b""


class KexecError(Exception):
    pass


def iomem_ranges(k: Kernel) -> list[tuple[int, int]]:
    """/proc/iomem as kexec-tools' ``get_memory_ranges`` reads it: System RAM minus every
    child resource but Kernel code / Kernel data."""
    lay = k.image.layout
    ram = [(b, e) for b, e in k.memblock.memory]
    keep = [(lay.stext, lay.init_begin), (lay.sdata, lay.end)]  # "Kernel code", "Kernel data"
    reserved = subtract(k.memblock.reserved(), keep)
    reserved += [(a, a + s) for a, s in k.drivers.get("iomem_reserved", [])]
    return subtract(ram, reserved)


def locate_hole(
    ranges: list[tuple[int, int]], segments: list[Segment], size: int, align: int, hole_min: int
) -> int:
    """``locate_hole`` with hole_end = 1: the first (lowest) fitting start."""
    align = max(align, SZ_4K)
    free = subtract(ranges, [(s.base, s.base + s.size) for s in segments])
    for b, e in free:
        start = align_up(max(b, hole_min), align)
        end = e - 1  # kexec-tools' ranges are inclusive
        if start >= end:
            continue
        if end - start >= size - 1:
            return start
    raise KexecError(f"Could not find a free area of memory of {size:#x} bytes...")


def kexec_load(
    k: Kernel, append: str | None = None, initrd_size: int | None = REAL_INITRD_SIZE
) -> list[Segment]:
    """``kexec -l Image --initrd=... --append=...`` as kexec-tools places the segments."""
    ranges = iomem_ranges(k)
    layout = ImageLayout(0)
    image_size = layout.image_size
    segs: list[Segment] = []
    base = locate_hole(ranges, segs, image_size, SZ_2M, 0)
    segs.append(Segment("kernel", base, align_up(image_size, SZ_4K)))
    hole_min = base + image_size
    initrd = None
    if initrd_size:
        size = align_up(initrd_size, SZ_4K)
        ibase = locate_hole(ranges, segs, size, 0, hole_min)
        segs.append(Segment("initrd", ibase, size))
        initrd = (ibase, initrd_size)
    # setup_2nd_dtb: /sys/firmware/fdt with the new bootargs and initrd, fdt_pack'ed
    dtb = k.guest.ram.read(k.spec.dtb_addr, k.spec.dtb_size)
    props: dict[str, bytes | None] = {
        "bootargs": string_prop(k.cmdline if append is None else append)
    }
    if initrd is not None:
        props["linux,initrd-start"] = u64_prop(initrd[0])
        props["linux,initrd-end"] = u64_prop(initrd[0] + initrd[1])
    new_dtb = set_chosen(dtb, props)
    dbase = locate_hole(ranges, segs, align_up(len(new_dtb), SZ_4K), 0, hole_min)
    segs.append(Segment("dtb", dbase, align_up(len(new_dtb), SZ_4K), new_dtb))
    pbase = locate_hole(ranges, segs, PURGATORY_SIZE, 0, hole_min)
    segs.append(Segment("purgatory", pbase, PURGATORY_SIZE))
    return segs


def kernel_kexec(k: Kernel, cpu: int, segments: list[Segment]) -> Gen:
    """``kernel_kexec`` for a loaded image (``kexec -e``)."""
    g = k.guest
    g.kexec_started(k)
    # kernel_restart_prepare -> device_shutdown (reverse probe order)
    for drv in reversed(k.drivers.get("msi", [])):
        yield from drv.shutdown(cpu)
    k.log("kexec_core: Starting new kernel", cpu)
    yield from k.cost("kexec_shutdown")
    yield from smp_shutdown_nonboot_cpus(k, cpu)
    k.log("Bye!", cpu)
    # cpu_soft_restart -> arm64_relocate_new_kernel: copy the segments
    kernel_seg = next(s for s in segments if s.name == "kernel")
    new_image = Image(ImageLayout(kernel_seg.base))
    for s in segments:
        g.check_write(s.base, s.size, "guest", "arm64_relocate_new_kernel", None, only_dma=True)
        if s.data:
            g.ram.write(s.base, s.data)
    for addr, data in new_image.text_words():
        g.ram.write(addr, data)
    dtb = next(s for s in segments if s.name == "dtb")
    initrd = next((s for s in segments if s.name == "initrd"), None)
    g.boot_next_generation(
        k,
        kernel_addr=kernel_seg.base,
        dtb_addr=dtb.base,
        dtb_size=len(dtb.data),
        initrd=(initrd.base, initrd.size) if initrd else None,
    )
