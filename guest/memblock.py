"""memblock and the page allocator of one kernel generation (mm/memblock.c, mm/page_alloc.c).

:class:`Memblock` keeps ``memblock.memory`` and ``memblock.reserved`` (merged like
``memblock_add_range``: adjacent and overlapping ranges coalesce), answers
``for_each_reserved_mem_range`` containment (used by ``gic_check_reserved_range``) and
gives /proc/iomem's view for kexec-tools.

:class:`PageAllocator` is the buddy allocator as far as this model needs it: 64 KiB (order 4
with 4 KiB pages) blocks handed out first-fit in address order, zeroed by the caller.

Calibration (documented, checked against reference/real-boot/ by the tests): arm64 boots
with every pageblock MIGRATE_MOVABLE; the first unmovable allocation falls back and steals
the *largest* free block (``__rmqueue_fallback`` searches from MAX_ORDER-1 down), and
``memblock_free_all`` queued free blocks in address order (FPI_TO_TAIL). So unmovable kernel
allocations are served from the first fully free, 4 MiB aligned 4 MiB block (MAX_ORDER 11,
4 KiB pages) in address order. Before ``init_IRQ``, :data:`EARLY_UNMOVABLE_BYTES` of it are
used by earlier allocations, except one 4 KiB page left on the per-CPU order-0 list at
:data:`PCP_FREE_PAGE_OFFSET`. The numbers reproduce all four real boots:

=================  ===========================  ==========  ===========================
boot               first free 4 MiB block       cmd queue   ITS devices (log)
=================  ===========================  ==========  ===========================
native-uefi        0x40000000 (image high)      0x40190000  @401a0000
native-dt          0x42400000 (image 40200000)  0x42590000  @425a0000
kexec-uefi gen 2   0x42800000 (image 40400000)  0x42990000  @429a0000
kexec-dt gen 2     0x40000000 (image 42000000)  0x40190000  @401a0000
=================  ===========================  ==========  ===========================

The command queue (allocated by ``its_probe_one`` before the tables) is not in any log; the
model puts it first-fit like everything else. The order-0 page reproduces the MEMRESERVE
node "40187000-40187fff : reserved" of kexec-uefi-acpi.log's /proc/iomem.
"""

from __future__ import annotations

from dataclasses import dataclass

from guest.regions import Owner, RegionMap

SZ_4K = 0x1000
SZ_64K = 0x10000
SZ_2M = 0x200000
#: MAX_ORDER-1 block with 4 KiB pages (Debian arm64: MAX_ORDER 11): 4 MiB.
MAX_ORDER_BLOCK = 0x400000
#: Bytes of the stolen block used by unmovable allocations before init_IRQ (calibrated).
EARLY_UNMOVABLE_BYTES = 0x190000
#: The free order-0 page left on the per-CPU list inside that prefix (calibrated).
PCP_FREE_PAGE_OFFSET = 0x187000


def align_up(x: int, a: int) -> int:
    return -(-x // a) * a


def align_down(x: int, a: int) -> int:
    return x // a * a


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and coalesce (base, end) ranges that overlap or touch."""
    out: list[list[int]] = []
    for b, e in sorted(ranges):
        if out and b <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([b, e])
    return [(b, e) for b, e in out]


def subtract(ranges: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(base, end) ranges minus (base, end) holes."""
    out = []
    holes = _merge(holes)
    for b, e in _merge(ranges):
        pos = b
        for hb, he in holes:
            if he <= pos or hb >= e:
                continue
            if hb > pos:
                out.append((pos, hb))
            pos = max(pos, he)
        if pos < e:
            out.append((pos, e))
    return out


@dataclass(frozen=True)
class Reservation:
    """One ``memblock_reserve`` call: what it is for (the /proc/iomem and region owner)."""

    base: int
    size: int
    owner: Owner

    @property
    def end(self) -> int:
        return self.base + self.size


class Memblock:
    """``memblock.memory`` and ``memblock.reserved`` of one generation."""

    def __init__(self, regions: RegionMap) -> None:
        self.regions = regions
        self.memory: list[tuple[int, int]] = []
        self.reservations: list[Reservation] = []

    def add(self, base: int, size: int) -> None:
        """``memblock_add``."""
        self.memory = _merge(self.memory + [(base, base + size)])

    def reserve(self, base: int, size: int, owner: Owner, claim: bool = True) -> None:
        """``memblock_reserve``; ``claim`` also makes ``owner`` the range's owner."""
        if size <= 0:
            return
        self.reservations.append(Reservation(base, size, owner))
        if claim:
            self.regions.claim(base, size, owner)

    def reserved(self) -> list[tuple[int, int]]:
        """The merged reserved ranges, as ``for_each_reserved_mem_range`` walks them."""
        return _merge([(r.base, r.end) for r in self.reservations])

    def is_reserved(self, addr: int, size: int) -> bool:
        """[addr, addr+size-1] inside one merged reserved range (``gic_check_reserved_range``)."""
        end = addr + size
        return any(b <= addr and end <= e for b, e in self.reserved())

    def free_ranges(self) -> list[tuple[int, int]]:
        """Memory minus reserved, page aligned: what ``memblock_free_all`` gives the buddy."""
        out = []
        for b, e in subtract(self.memory, self.reserved()):
            b, e = align_up(b, SZ_4K), align_down(e, SZ_4K)
            if e > b:
                out.append((b, e))
        return out

    def total_memory(self) -> int:
        return sum(e - b for b, e in self.memory)

    def total_reserved(self) -> int:
        return sum(
            e - b for b, e in subtract(self.reserved(), subtract(self.reserved(), self.memory))
        )


class OutOfMemory(Exception):
    """The page allocator has no block of the size asked."""


class PageAllocator:
    """First-fit, address-ordered allocation from the stolen unmovable block upward."""

    def __init__(self, memblock: Memblock, gen: int, early: bool = True) -> None:
        self.memblock = memblock
        self.regions = memblock.regions
        self.gen = gen
        self.free: list[tuple[int, int]] = memblock.free_ranges()
        self.allocated: dict[int, tuple[int, Owner]] = {}
        self.block = self._first_free_block()
        self.floor = self.block if self.block is not None else (self.free[0][0] if self.free else 0)
        if early and self.block is not None:
            early_owner = Owner("early", "early boot allocations (calibrated)", gen)
            self._take(self.block, PCP_FREE_PAGE_OFFSET, early_owner)
            rest = self.block + PCP_FREE_PAGE_OFFSET + SZ_4K
            self._take(rest, self.block + EARLY_UNMOVABLE_BYTES - rest, early_owner)

    def _first_free_block(self) -> int | None:
        for b, e in self.free:
            start = align_up(b, MAX_ORDER_BLOCK)
            if start + MAX_ORDER_BLOCK <= e:
                return start
        return None

    def _take(self, base: int, size: int, owner: Owner) -> None:
        end = base + size
        self.free = subtract([(b, e) for b, e in self.free], [(base, end)])
        self.allocated[base] = (size, owner)
        self.regions.claim(base, size, owner)

    def alloc(self, size: int, owner: Owner, align: int = SZ_64K) -> int:
        """``alloc_pages`` of ``size`` bytes aligned to ``align``: the lowest fit above the floor."""
        size = align_up(size, SZ_4K)
        for b, e in self.free:
            if e <= self.floor:
                continue
            start = align_up(max(b, self.floor), align)
            if start + size <= e:
                self._take(start, size, owner)
                return start
        raise OutOfMemory(f"no free {size:#x} bytes aligned {align:#x}")

    def free_pages(self, base: int) -> None:
        """``free_pages``: the block returns to the free lists (and the region map)."""
        size, _ = self.allocated.pop(base)
        self.free = _merge(self.free + [(base, base + size)])
        self.regions.release(base, size)
