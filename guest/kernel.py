"""One generation of the modelled Linux kernel: its state and the helpers its code uses.

A :class:`Kernel` is what runs between a power-on (or kexec entry) and the next kexec or
panic. It owns its memblock, page allocator, taint and splat state, the firmware facts it
parsed, and the GIC/ITS driver state; RAM, the region map, the log and the CPUs belong to the
guest and outlive it. Kernel code is generators (see guest/cpu.py); the helpers here wrap
MMIO accessors (``readl_relaxed`` & co. with the modelled function as ``why``), the guest's
own RAM accesses (checked against the region map), the call path used for splats, and the
instruction-fetch check that makes a kernel die on overwritten text.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guest.cpu import Cost, MmioRead, MmioWrite, SysregRead, SysregWrite
from guest.image import CALL_SITES, SYMBOLS, Image, ImageLayout
from guest.memblock import Memblock, PageAllocator
from guest.printk import TAINT_FLAGS, TAINT_FLAGS_5_19, Frame, SplatRegs, Splats, Taint
from guest.regions import Owner
from guest.variants import KernelVariant

if TYPE_CHECKING:
    from guest.guest import Guest

Gen = Generator[Any, Any, Any]


#: Region kinds (guest/irq_gic_v3_its.py owners) of the tables the GIC or Xen reads:
#: LPI property and pending tables, ITS device and collection tables, ITTs, command queue.
GIC_TABLE_KINDS = frozenset(
    {"lpi-prop", "lpi-pend", "its-device-table", "its-collection-table", "itt", "its-cmdq"}
)

#: Who asks the allocator for a zeroed table: the zeroing happens inside ``alloc_pages``
#: (__GFP_ZERO) or ``kzalloc``, on behalf of these functions of irq-gic-v3-its.c.
ZEROED_FOR = {
    "lpi-prop": "its_setup_lpi_prop_table",
    "lpi-pend": "its_allocate_pending_table",
    "its-device-table": "its_setup_baser",
    "its-collection-table": "its_setup_baser",
    "itt": "its_create_device",
    "its-cmdq": "its_probe_one",
}
#: The level-2 page of an indirect Devices table (its_alloc_table_entry's alloc_pages).
LEVEL2_LABEL = "(level 2)"


def table_writer(intended: Owner, why: str) -> str:
    """The Linux function a store into a GIC table is recorded under: the caller of the
    allocator for the zeroing of a fresh table, else the function that made the store."""
    if why in ("alloc_pages", "kzalloc"):
        if intended.label.endswith(LEVEL2_LABEL):
            return "its_alloc_table_entry"
        return ZEROED_FOR.get(intended.kind, why)
    return why


class UndefinedInstruction(Exception):
    """The CPU fetched a word at a kernel symbol that is not what the Image had there."""

    def __init__(self, cpu: int, symbol: str, addr: int, word: int, frames: list[str]) -> None:
        super().__init__(f"cpu{cpu}: undefined instruction {word:08x} at {symbol} ({addr:#x})")
        self.cpu = cpu
        self.symbol = symbol
        self.addr = addr
        self.word = word
        self.frames = frames


class KernelPanic(Exception):
    """panic(): the CPU stops (after the message is printed)."""


class KernelBug(Exception):
    """``BUG()`` / ``BUG_ON()`` fired in modelled function ``function`` (file:line): the
    guest prints report_bug's lines and the Oops, then the task dies (guest.on_exception)."""

    def __init__(self, cpu: int, function: str, file: str, line: int, frames: list[str]) -> None:
        super().__init__(f"cpu{cpu}: kernel BUG at {file}:{line} in {function}")
        self.cpu = cpu
        self.function = function
        self.file = file
        self.line = line
        self.frames = frames


@dataclass
class BootSpec:
    """How this generation was entered (x0 = DTB) and where its pieces are."""

    firmware: str  # "dt" | "efi"
    dtb_addr: int
    kernel_addr: int
    initrd: tuple[int, int] | None = None
    via_stub: bool = False  # entered through the EFI stub (first boot on UEFI)
    kexec: bool = False  # entered from kexec (not the firmware)
    extra_bootargs: str = ""
    dtb_size: int = 0


@dataclass
class GicFacts:
    """What the firmware says about the GIC (DT intc node or ACPI MADT)."""

    dist_base: int = 0
    redist_regions: list[tuple[int, int]] = field(default_factory=list)
    redist_stride: int = 0
    its: list[dict[str, Any]] = field(default_factory=list)  # {base, size, name, id}
    fw: str = "dt"  # "dt" | "acpi"
    dt_path: str = ""


class Kernel:
    """State of one kernel generation (see the module docstring)."""

    PID_IDLE = 0

    def __init__(self, guest: Guest, gen: int, spec: BootSpec, variant: KernelVariant) -> None:
        self.guest = guest
        self.gen = gen
        self.spec = spec
        self.variant = variant
        self.image = Image(ImageLayout(spec.kernel_addr))
        self.memblock = Memblock(guest.regions)
        self.alloc: PageAllocator | None = None
        self.taint = Taint(table=TAINT_FLAGS_5_19 if variant.taint_flags == 19 else TAINT_FLAGS)
        self.splats = Splats(
            guest.printk,
            self.taint,
            variant.release,
            variant.version,
            oops_id_seed=lambda: guest.rng_u64(),
            oops_id_style=variant.oops_id,
        )
        self.status = "booting"
        self.cmdline = ""
        self.max_cpus: int | None = None
        self.possible_cpus: list[int] = []  # MPIDR of each logical CPU
        self.online: set[int] = set()
        self.gic = GicFacts()
        self.psci_conduit = "hvc"
        self.psci_fw = "dt"
        self.psci_version = 0
        self.efi: dict[str, Any] = {
            "enabled": set(),
            "tables": {},
            "mem_reserve": None,
            "root": None,
        }
        self.acpi_disabled = True
        self.xen_domain = False
        self.xen: Any = None  # guest.xen_enlighten.XenGuest once xen_early_init found Xen
        #: the task a CPU runs when it is not its idle task: cpu -> (pid, comm)
        self.current: dict[int, tuple[int, str]] = {}
        #: how many times each CPU was brought up (cpu_up events of a hotplug are distinct)
        self.boots: dict[int, int] = {}
        self.kdump = False
        self.warnings: list[dict[str, Any]] = []
        self.machine_model = ""
        self.drivers: dict[str, Any] = {}
        self.slab_page: tuple[int, int] | None = None  # (base, used) of the kmalloc page

    # -- identity ------------------------------------------------------------------------

    def log(self, text: str, cpu: int = 0, level: str = "info") -> None:
        self.guest.printk.emit(level, text, cpu)

    def comm(self, cpu: int) -> str:
        cur = self.current.get(cpu)
        return cur[1] if cur is not None else f"swapper/{cpu}"

    def pid(self, cpu: int) -> int:
        cur = self.current.get(cpu)
        return cur[0] if cur is not None else self.PID_IDLE

    def owner(self, kind: str, label: str, dma: bool = False, reused: bool = False) -> Owner:
        return Owner(kind, label, self.gen, dma=dma, reused=reused)

    # -- MMIO and system registers -------------------------------------------------------

    def readl(self, addr: int, why: str) -> Gen:
        return (yield MmioRead(addr, 4, why))

    def readq(self, addr: int, why: str) -> Gen:
        return (yield MmioRead(addr, 8, why))

    def writel(self, addr: int, value: int, why: str) -> Gen:
        yield MmioWrite(addr, 4, value & 0xFFFF_FFFF, why)

    def writeq(self, addr: int, value: int, why: str) -> Gen:
        yield MmioWrite(addr, 8, value & (2**64 - 1), why)

    def read_sysreg(self, reg: str, why: str) -> Gen:
        return (yield SysregRead(reg, why))

    def write_sysreg(self, reg: str, value: int, why: str) -> Gen:
        yield SysregWrite(reg, value, why)

    def cost(self, name: str, mult: int = 1) -> Gen:
        from guest.costs import COSTS

        yield Cost(COSTS[name] * mult)

    # -- RAM, as the kernel itself touches it ----------------------------------------------

    def ram_read(self, addr: int, size: int) -> bytes:
        return self.guest.ram.read(addr, size)

    def ram_write(self, addr: int, data: bytes, intended: Owner, why: str, cpu: int = 0) -> None:
        """A store by the kernel; a store into memory owned by something else is reported.

        A store meant for one of the kernel's own LPI/ITS tables is also a ``mem`` trace event
        (agent ``guest``, one per contiguous store), so the ledger of who touches those tables
        (``cosim trace lpi-tables``) has the guest's side too: guest RAM stores are local, not
        messages.
        """
        self.guest.check_write(addr, len(data), "guest", why, intended)
        self.guest.ram.write(addr, data)
        if intended.kind in GIC_TABLE_KINDS and data:
            self.guest.port_record(
                "mem",
                {
                    "agent": "guest",
                    "addr": addr,
                    "size": len(data),
                    "write": True,
                    "why": table_writer(intended, why),
                },
            )

    def memset(self, addr: int, byte: int, size: int, intended: Owner, why: str) -> None:
        self.ram_write(addr, bytes([byte]) * size, intended, why)

    # -- allocation ------------------------------------------------------------------------

    def alloc_pages(
        self, size: int, kind: str, label: str, dma: bool = False, zero: bool = True
    ) -> int:
        """``alloc_pages(GFP_KERNEL | __GFP_ZERO, get_order(size))``."""
        assert self.alloc is not None, "page allocator used before mm_init"
        owner = self.owner(kind, label, dma=dma)
        addr = self.alloc.alloc(size, owner, align=max(0x1000, _pow2_at_least(size)))
        if zero:
            self.ram_write(addr, bytes(size), owner, "alloc_pages")
        return addr

    def kzalloc(self, size: int, kind: str, label: str, align: int = 8, dma: bool = False) -> int:
        """``kzalloc``: bytes from a slab page (one order-0 page at a time; large sizes get
        their own pages). Only allocations the hardware sees are modelled."""
        assert self.alloc is not None
        owner = self.owner(kind, label, dma=dma)
        if size > 0x800:
            addr = self.alloc.alloc(size, owner, align=0x1000)
        else:
            if self.slab_page is None or _align(self.slab_page[1], align) + size > 0x1000:
                base = self.alloc.alloc(
                    0x1000, self.owner("slab", "kmalloc slab page"), align=0x1000
                )
                self.slab_page = (base, 0)
            base, used = self.slab_page
            off = _align(used, align)
            addr = base + off
            self.slab_page = (base, off + size)
            self.guest.regions.claim(addr, size, owner)
        self.ram_write(addr, bytes(size), owner, "kzalloc")
        return addr

    # -- execution: call path, instruction fetch -------------------------------------------

    def execute(self, cpu: int, name: str) -> None:
        """The CPU branches to ``name``: fetch its first instruction from RAM."""
        addr = self.image.addr(name)
        word = int.from_bytes(self.guest.ram.read(addr, 4), "little")
        expected = self.image.expected_word(addr)
        if expected is not None and word != expected:
            frames = list(self.guest.cpus[cpu].frames)
            raise UndefinedInstruction(cpu, name, addr, word, frames)

    def call(self, cpu: int, name: str, body: Gen) -> Gen:
        """Run ``body`` as the modelled function ``name`` (a real, not inlined, symbol)."""
        if name in SYMBOLS:
            self.execute(cpu, name)
        frames = self.guest.cpus[cpu].frames
        frames.append(name)
        try:
            return (yield from body)
        finally:
            if frames and frames[-1] == name:
                frames.pop()

    def frame(self, name: str, offset: int) -> Frame:
        return Frame(name, offset, SYMBOLS[name].size if name in SYMBOLS else 0)

    def backtrace(
        self, frames: list[str], pc_fn: str, pc_off: int, at_entry: bool = False
    ) -> list[Frame]:
        """arm64 ``dump_backtrace`` from pc in ``pc_fn`` up the recorded call path.

        ``frames`` is the call path outermost first, ending with the caller of ``pc_fn``.
        At a function's first instruction its frame record is not pushed yet, so the
        unwinder skips the immediate caller (it shows as ``lr`` only).
        """
        out = [self.frame(pc_fn, pc_off)]
        path = [f for f in frames if f in SYMBOLS]
        callee = pc_fn
        chain = list(reversed(path))
        for i, caller in enumerate(chain):
            off = CALL_SITES.get((caller, callee), 0x40)
            callee = caller
            if at_entry and i == 0:
                continue
            out.append(self.frame(caller, off))
        return out

    def pstate(self, cpu: int) -> int:
        """PSTATE as the splats show it: nZCv, EL1h, IRQ+FIQ masked; SError (A) also masked
        on a secondary still in its bring-up (local_daif_restore not reached yet)."""
        from guest.printk import (
            PSR_A_BIT,
            PSR_C_BIT,
            PSR_F_BIT,
            PSR_I_BIT,
            PSR_Z_BIT,
            PSR_MODE_EL1h,
        )

        p = PSR_Z_BIT | PSR_C_BIT | PSR_I_BIT | PSR_F_BIT | PSR_MODE_EL1h
        if cpu in self.current:  # a kernel thread: process context, interrupts unmasked
            return PSR_Z_BIT | PSR_C_BIT | PSR_MODE_EL1h
        if cpu != 0:
            p |= PSR_A_BIT
        return p

    def stack_pointer(self, cpu: int) -> int:
        """A documented stand-in for sp: the idle task's stack of ``cpu`` in the linear map."""
        return 0xFFFF_8000_0800_3D00 + cpu * 0x4000

    def warn_on(self, cpu: int, site: str, file: str, line: int, x0: int, x1: int) -> None:
        """``WARN_ON`` that fired: the splat (sheet §6) and the warnings list entry."""
        from guest.image import BRK_SITES

        fn, off = BRK_SITES[site]
        frames = list(self.guest.cpus[cpu].frames)
        # the path ends in fn itself (we are inside it): unwind from fn's caller
        path = frames[:-1] if frames and frames[-1] == fn else frames
        trace = self.backtrace(path, fn, off)
        lr = self.frame(fn, off - 4)
        # x0: the int return value as w0 leaves it (upper half zero), x1: the size argument
        known = {0: x0 & 0xFFFF_FFFF, 1: x1, 28: cpu, 29: self.stack_pointer(cpu) + 0x10}
        regs = SplatRegs.build(self.pstate(cpu), trace[0], lr, self.stack_pointer(cpu), known)
        self.splats.warn(cpu, self.pid(cpu), self.comm(cpu), file, line, regs, trace)
        rec = {"cpu": cpu, "file": file, "line": line, "function": fn, "gen": self.gen,
               "pid": self.pid(cpu), "comm": self.comm(cpu)}  # fmt: skip
        self.warnings.append(rec)
        self.guest.port_record("warning", dict(rec))


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


def _pow2_at_least(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p
