"""The kernel Image: its section layout, its symbols, and the instruction words the model keeps.

Layout (arch/arm64/kernel/vmlinux.lds.S, SEGMENT_ALIGN = 64 KiB) from the real logs'
"Memory: ... (13248K kernel code, 2806K rwdata, 9504K rodata, 6464K init, 627K bss ...)"
(``mem_init_print_info``) and /proc/iomem ("Kernel code" = _stext..__init_begin-1,
"Kernel data" = _sdata.._end-1)::

    _text            load address (the Image header, 64 KiB)
    _stext           _text + 0x10000
    _etext           _stext + code                     (13248K)
    __start_rodata   _etext;  __end_rodata = + rodata   (9504K)
    __init_begin     align64K(__end_rodata + 96K)       (page tables, .rodata.text: iomem)
    __init_end       __init_begin + init               (6464K)
    _sdata           __init_end; _edata = + rwdata      (2806K)
    _end             align64K(_edata + bss)             (627K)

This reproduces native-dt-noefi.log's /proc/iomem exactly for a load at 0x40200000
(40210000-4185ffff Kernel code, 41860000-41eaffff reserved, 41eb0000-4220ffff Kernel data)
and the kexec'd image of kexec-uefi-acpi.log at 0x40400000.

Symbols. :data:`SYMBOLS` is the modelled kernel's symbol layout: the functions the model
"executes" with their section, offset and size. Sizes are from the real logs where they
show them (``%pS``: free_lpi_range 0xf0, __list_add_valid 0xb4, its_init 0x70c,
gic_init_bases 0x5b4, gic_of_init 0x274, of_irq_init 0x398, irqchip_init 0x48, init_IRQ 0xcc,
start_kernel 0x790, __primary_switched 0xc4 from the 6.1 crash; its_cpu_init 0xae0 and the
secondary bring-up path (gic_starting_cpu 0x90, cpuhp_invoke_callback 0x5b0,
cpuhp_invoke_callback_range 0xf0, notify_cpu_starting 0xdc, secondary_start_kernel 0x170,
__secondary_switched 0x98, and the call-site offsets of that path) from the 5.15.23 splat of the
2022 report, the build the WARN sites belong to); offsets are estimates in link order (init/ kernel/ mm/
drivers/ lib/, __init code in .init.text). The one placement the logs constrain is
__list_add_valid: kexec-dt-noefi.log's second kernel, loaded at 0x42000000, died on its first
instruction after the property table at 0x425c0000 was reset, so it lies in image offsets
[0x5c0000, 0x5d0000). Call-site offsets (:data:`CALL_SITES`, the return address a caller's
frame record holds) likewise come from those splats where shown, else are estimates.

Instruction words. RAM holds the image only at the modelled symbols (:func:`text_words`):
four words before and eight from each entry, a fixed AArch64 prologue pattern. A CPU that
"executes" a symbol fetches its entry word from RAM; any word other than the one loaded is
treated as an UNDEFINED instruction (0xa2a2a2a2 and 0x00000000 are both unallocated
encodings in A64), the documented simplification of decoding.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

KiB = 1024
SZ_64K = 0x10000

#: The real logs' Memory line (identical in every real-boot log of this kernel build).
MEMORY_LINE_SIZES = {
    "code": 13248 * KiB,
    "rwdata": 2806 * KiB,
    "rodata": 9504 * KiB,
    "init": 6464 * KiB,
    "bss": 627 * KiB,
}
#: Bytes between __end_rodata and __init_begin (idmap/swapper page tables, .rodata.text).
RODATA_TO_INIT_GAP = 96 * KiB
HEAD_SIZE = 0x10000

Section = Literal["text", "inittext"]


def _align(x: int, a: int = SZ_64K) -> int:
    return -(-x // a) * a


@dataclass(frozen=True)
class ImageLayout:
    """Physical addresses of the sections of an Image loaded at ``text``."""

    text: int
    code: int = MEMORY_LINE_SIZES["code"]
    rwdata: int = MEMORY_LINE_SIZES["rwdata"]
    rodata: int = MEMORY_LINE_SIZES["rodata"]
    init: int = MEMORY_LINE_SIZES["init"]
    bss: int = MEMORY_LINE_SIZES["bss"]

    @property
    def stext(self) -> int:
        return self.text + HEAD_SIZE

    @property
    def etext(self) -> int:
        return self.stext + self.code

    @property
    def end_rodata(self) -> int:
        return self.etext + self.rodata

    @property
    def init_begin(self) -> int:
        return _align(self.end_rodata + RODATA_TO_INIT_GAP)

    @property
    def init_end(self) -> int:
        return self.init_begin + self.init

    @property
    def sdata(self) -> int:
        return self.init_end

    @property
    def edata(self) -> int:
        return self.sdata + self.rwdata

    @property
    def end(self) -> int:
        return _align(self.edata + self.bss)

    @property
    def image_size(self) -> int:
        """The arm64 Image header's image_size (``_end - _text``), which kexec-tools reads."""
        return self.end - self.text

    def memory_line(self, available_k: int, total_k: int, reserved_k: int, cma_k: int) -> str:
        """``mem_init_print_info``'s line."""
        return (
            f"Memory: {available_k}K/{total_k}K available ({self.code // KiB}K kernel code, "
            f"{self.rwdata // KiB}K rwdata, {self.rodata // KiB}K rodata, {self.init // KiB}K init, "
            f"{self.bss // KiB}K bss, {reserved_k}K reserved, {cma_k}K cma-reserved)"
        )


@dataclass(frozen=True)
class Symbol:
    name: str
    section: Section
    offset: int  # from the section start (_stext or __init_begin)
    size: int


#: The modelled symbol layout (see the module docstring for provenance).
SYMBOLS: dict[str, Symbol] = {
    s.name: s
    for s in (
        # .text (offsets from _stext)
        Symbol("do_undefinstr", "text", 0x02_6B40, 0x124),
        Symbol("el1_undef", "text", 0x03_4E10, 0x30),
        Symbol("el1h_64_sync_handler", "text", 0x03_5020, 0xA8),
        Symbol("el1h_64_sync", "text", 0x01_1400, 0x7C),
        Symbol("cpuhp_invoke_callback", "text", 0x05_A9C0, 0x5B0),
        Symbol("cpuhp_invoke_callback_range", "text", 0x05_AF70, 0xF0),
        Symbol("notify_cpu_starting", "text", 0x05_C260, 0xDC),
        Symbol("secondary_start_kernel", "text", 0x02_9D70, 0x170),
        Symbol("__secondary_switched", "text", 0x00_1A00, 0x98),
        Symbol("free_lpi_range", "text", 0x50_7E30, 0xF0),
        Symbol("gic_starting_cpu", "text", 0x50_5F90, 0x90),
        Symbol("its_cpu_init", "text", 0x50_9C10, 0xAE0),
        Symbol("its_msi_prepare", "text", 0x50_BD80, 0x140),
        Symbol("its_irq_domain_alloc", "text", 0x50_C5E0, 0x1D0),
        Symbol("its_irq_domain_activate", "text", 0x50_C7B0, 0xF8),
        Symbol("gic_handle_irq", "text", 0x00_2C40, 0x120),
        Symbol("__list_add_valid", "text", 0x5B_8F40, 0xB4),
        Symbol("efi_mem_reserve_persistent", "text", 0x8E_3A10, 0x2B4),
        # v5.17+ memreserve path and the hotplug thread (estimates; a prediction, see
        # guest/variants.py PREDICTIONS)
        Symbol("its_cpu_memreserve_lpi", "text", 0x50_A700, 0x120),
        Symbol("cpuhp_issue_call", "text", 0x05_B060, 0x1B0),
        Symbol("__cpuhp_setup_state_cpuslocked", "text", 0x05_B300, 0x2A0),
        Symbol("__cpuhp_setup_state", "text", 0x05_B5A0, 0x120),
        Symbol("cpuhp_thread_fun", "text", 0x05_B6C0, 0x1A0),
        Symbol("smpboot_thread_fn", "text", 0x08_6200, 0x290),
        Symbol("kthread", "text", 0x07_E4C0, 0x130),
        Symbol("ret_from_fork", "text", 0x01_1E80, 0x10),
        # arch/arm/xen/enlighten.c (estimates)
        Symbol("xen_starting_cpu", "text", 0x02_C6A0, 0x120),
        # .init.text (offsets from __init_begin)
        Symbol("__primary_switched", "inittext", 0x00_0400, 0xC4),
        Symbol("start_kernel", "inittext", 0x00_1200, 0x790),
        Symbol("init_IRQ", "inittext", 0x01_8A00, 0xCC),
        Symbol("irqchip_init", "inittext", 0x09_5C80, 0x48),
        Symbol("of_irq_init", "inittext", 0x09_7E40, 0x398),
        Symbol("acpi_match_madt", "inittext", 0x08_2B10, 0x5C),
        Symbol("acpi_table_parse_entries_array", "inittext", 0x08_2D00, 0xF4),
        Symbol("acpi_table_parse_entries", "inittext", 0x08_2E00, 0x44),
        Symbol("acpi_table_parse_madt", "inittext", 0x08_2E50, 0x2C),
        Symbol("__acpi_probe_device_table", "inittext", 0x08_3000, 0xB0),
        Symbol("gic_of_init", "inittext", 0x09_9A60, 0x274),
        Symbol("gic_acpi_init", "inittext", 0x09_9CF0, 0x2D0),
        Symbol("gic_init_bases", "inittext", 0x09_8E20, 0x5B4),
        Symbol("its_init", "inittext", 0x09_A9B0, 0x70C),
        Symbol("smp_init", "inittext", 0x01_F2E0, 0x98),
        Symbol("its_lpi_memreserve_init", "inittext", 0x09_B100, 0x6C),
        Symbol("xen_guest_init", "inittext", 0x02_3A40, 0x2C8),
    )
}

#: Return-address offsets: (caller, callee) -> offset in caller just after the call.
CALL_SITES: dict[tuple[str, str], int] = {
    ("__primary_switched", "start_kernel"): 0xBC,
    ("start_kernel", "init_IRQ"): 0x568,
    ("init_IRQ", "irqchip_init"): 0xB4,
    ("irqchip_init", "of_irq_init"): 0x20,
    ("irqchip_init", "__acpi_probe_device_table"): 0x34,
    ("of_irq_init", "gic_of_init"): 0x24C,
    ("__acpi_probe_device_table", "acpi_table_parse_madt"): 0x8C,
    ("acpi_table_parse_madt", "acpi_table_parse_entries"): 0x28,
    ("acpi_table_parse_entries", "acpi_table_parse_entries_array"): 0x40,
    ("acpi_table_parse_entries_array", "acpi_match_madt"): 0xB8,
    ("acpi_match_madt", "gic_acpi_init"): 0x4C,
    ("gic_of_init", "gic_init_bases"): 0x1C0,
    ("gic_acpi_init", "gic_init_bases"): 0x214,
    ("gic_init_bases", "its_init"): 0x55C,
    ("gic_init_bases", "its_cpu_init"): 0x564,
    ("its_init", "free_lpi_range"): 0x488,
    ("free_lpi_range", "__list_add_valid"): 0x94,
    ("its_cpu_init", "efi_mem_reserve_persistent"): 0x810,
    ("its_init", "efi_mem_reserve_persistent"): 0x2A4,
    ("__secondary_switched", "secondary_start_kernel"): 0x94,
    ("secondary_start_kernel", "notify_cpu_starting"): 0xE0,
    ("notify_cpu_starting", "cpuhp_invoke_callback_range"): 0xBC,
    ("cpuhp_invoke_callback_range", "cpuhp_invoke_callback"): 0x78,
    ("cpuhp_invoke_callback", "gic_starting_cpu"): 0x16C,
    ("gic_starting_cpu", "its_cpu_init"): 0x48,
    ("el1h_64_sync", "el1h_64_sync_handler"): 0x78,
    ("el1h_64_sync_handler", "el1_undef"): 0x64,
    ("el1_undef", "do_undefinstr"): 0x28,
    # v5.17+ (estimates)
    ("gic_init_bases", "its_lpi_memreserve_init"): 0x568,
    ("its_lpi_memreserve_init", "__cpuhp_setup_state"): 0x4C,
    ("__cpuhp_setup_state", "__cpuhp_setup_state_cpuslocked"): 0x84,
    ("__cpuhp_setup_state_cpuslocked", "cpuhp_issue_call"): 0x1E4,
    ("cpuhp_issue_call", "cpuhp_invoke_callback"): 0x138,
    ("cpuhp_invoke_callback", "its_cpu_memreserve_lpi"): 0x19C,
    ("ret_from_fork", "kthread"): 0x10,
    ("kthread", "smpboot_thread_fn"): 0x118,
    ("smpboot_thread_fn", "cpuhp_thread_fun"): 0x1A8,
    ("cpuhp_thread_fun", "cpuhp_invoke_callback"): 0x130,
    ("cpuhp_invoke_callback", "xen_starting_cpu"): 0x19C,
    ("cpuhp_issue_call", "xen_starting_cpu"): 0x138,
}

#: WARN/BUG sites: (function, offset of the BRK). its_cpu_init+0x814 is the 5.15.23 splat.
BRK_SITES: dict[str, tuple[str, int]] = {
    "its_cpu_init:pending": ("its_cpu_init", 0x814),
    "its_init:prop": ("its_init", 0x2A8),
    "its_cpu_init:propbase-mismatch": ("its_cpu_init", 0x6F0),
    "its_cpu_init:pending-not-reserved": ("its_cpu_init", 0x74C),
    "do_undefinstr:bug": ("do_undefinstr", 0x114),
    "its_cpu_memreserve_lpi:pending": ("its_cpu_memreserve_lpi", 0xD8),
    "xen_starting_cpu:bug": ("xen_starting_cpu", 0xEC),
    "xen_guest_init:bug": ("xen_guest_init", 0x2C4),
}

# The words the loader puts at each symbol (AArch64 encodings).
NOP = 0xD503201F
PACIASP = 0xD503233F
STP_FP_LR = 0xA9BF7BFD  # stp x29, x30, [sp, #-16]!
MOV_FP_SP = 0x910003FD  # mov x29, sp
BL = 0x94000000
BRK_BUG = 0xD4210000  # brk #0x800 (BUG_BRK_IMM, used by BUG and WARN on arm64)
PROLOGUE = (PACIASP, STP_FP_LR, MOV_FP_SP, 0xF9000BF3, 0xAA0003F3, 0x2A0103F4, BL, 0xF9400BF3)
WORDS_BEFORE = 4


@dataclass(frozen=True)
class Image:
    """An Image at a physical load address: layout plus symbol addresses."""

    layout: ImageLayout

    def section_base(self, section: Section) -> int:
        return self.layout.stext if section == "text" else self.layout.init_begin

    def addr(self, name: str) -> int:
        s = SYMBOLS[name]
        return self.section_base(s.section) + s.offset

    def symbol_at(self, addr: int) -> tuple[str, int, int] | None:
        """(name, offset, size) of the symbol containing ``addr`` (``%pS``)."""
        for s in SYMBOLS.values():
            a = self.section_base(s.section) + s.offset
            if a <= addr < a + s.size:
                return s.name, addr - a, s.size
        return None

    def text_words(self) -> list[tuple[int, bytes]]:
        """(address, bytes) the loader writes: padding NOPs, then the prologue, per symbol;
        BRK words at the WARN/BUG sites."""
        return list(_text_words(self.layout))

    def expected_word(self, addr: int) -> int | None:
        """The word the loader put at ``addr`` (None where the model keeps no bytes)."""
        return _expected_words(self.layout).get(addr)


#: The words are fixed by the layout alone; a CPU "executes" a symbol on every modelled call,
#: so they are built once per layout (a handful per run: each kernel's load address).
_SYMBOL_WORDS = b"".join(NOP.to_bytes(4, "little") for _ in range(WORDS_BEFORE)) + b"".join(
    w.to_bytes(4, "little") for w in PROLOGUE
)
_BRK_WORDS = b"".join(
    w.to_bytes(4, "little") for w in (0xAA1303E0, 0x97FFF000, 0x2A0003E1, 0x34000040)
) + BRK_BUG.to_bytes(4, "little")


@functools.lru_cache(maxsize=64)
def _text_words(layout: ImageLayout) -> tuple[tuple[int, bytes], ...]:
    """Image.text_words for ``layout``, in the loader's order."""
    stext, init_begin = layout.stext, layout.init_begin

    def addr(name: str) -> int:
        s = SYMBOLS[name]
        return (stext if s.section == "text" else init_begin) + s.offset

    out = [(addr(name) - 4 * WORDS_BEFORE, _SYMBOL_WORDS) for name in SYMBOLS]
    out += [(addr(fn) + off - 16, _BRK_WORDS) for fn, off in BRK_SITES.values()]
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _expected_words(layout: ImageLayout) -> dict[int, int]:
    """Every address ``expected_word`` answers for, with its word: the first range (in
    text_words order) holding the 4 bytes at that address wins, as a linear search would."""
    words: dict[int, int] = {}
    for base, data in _text_words(layout):
        for off in range(len(data) - 3):
            words.setdefault(base + off, int.from_bytes(data[off : off + 4], "little"))
    return words
