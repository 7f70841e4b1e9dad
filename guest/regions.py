"""What each range of guest RAM is for, per kernel generation, and the corruption check.

Every range has an :class:`Owner`: the kernel image of generation N, a memblock reservation
(DTB, initrd, EFI tables, a MEMRESERVE entry), a page-allocator page owned by a named user
(LPI property table, pending table of CPUn, ITS device/collection table, ITT, command
queue), or free memory of generation N. A write whose writer's intent does not match the
current owner is a *corruption*: written by the GIC (``hw``), Xen (``xen``) or the guest
itself into memory that now belongs to something else.

Intent. The guest states what it believes it writes (``Owner``); ``hw`` and ``xen`` may write
only into device-visible tables (``Owner.dma``). A range reserved through EFI MEMRESERVE
(kind ``memreserve``) may be adopted by a kernel that reuses a GIC table there.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """Who a range belongs to. ``kind`` is a short tag, ``label`` the human description."""

    kind: str
    label: str
    gen: int
    dma: bool = False  # the GIC (or Xen) legitimately reads and writes it
    reused: bool = False  # a GIC table a kexec'd kernel adopts from its predecessor

    def __str__(self) -> str:
        return f"{self.label} (gen {self.gen})"


def free_owner(gen: int) -> Owner:
    return Owner("free", "free memory", gen)


#: Kinds a kernel may adopt when it reuses a preallocated GIC table (kexec PREALLOCATED path).
ADOPTABLE = frozenset({"memreserve"})


def compatible(actual: Owner, intended: Owner) -> bool:
    """Whether a write meant for ``intended`` may land on memory owned by ``actual``."""
    if actual == intended:
        return True
    return bool(intended.reused and actual.kind in ADOPTABLE)


@dataclass
class _Seg:
    base: int
    end: int  # exclusive
    owner: Owner


def _seg_end(s: _Seg) -> int:
    return s.end


class RegionMap:
    """Non-overlapping owned segments over RAM; anything unlisted is free of ``gen``."""

    def __init__(self, ram_base: int, ram_size: int) -> None:
        self.ram_base = ram_base
        self.ram_end = ram_base + ram_size
        self._segs: list[_Seg] = []
        self.gen = 0

    def _starts(self) -> list[int]:
        return [s.base for s in self._segs]

    def set_generation(self, gen: int) -> None:
        """A new kernel: the previous generation's allocations become that kernel's free
        memory, except ranges the new kernel reserves (its image, blobs) which it claims."""
        self.gen = gen
        self._segs = []

    def claim(self, base: int, size: int, owner: Owner) -> None:
        """``owner`` now owns [base, base+size), whatever owned it before."""
        if size <= 0:
            return
        self.release(base, size)
        i = bisect.bisect_left(self._starts(), base)
        self._segs.insert(i, _Seg(base, base + size, owner))

    def release(self, base: int, size: int) -> None:
        """[base, base+size) becomes free memory."""
        end = base + size
        out: list[_Seg] = []
        for s in self._segs:
            if s.end <= base or s.base >= end:
                out.append(s)
                continue
            if s.base < base:
                out.append(_Seg(s.base, base, s.owner))
            if s.end > end:
                out.append(_Seg(end, s.end, s.owner))
        self._segs = sorted(out, key=lambda s: s.base)

    def owners(self, base: int, size: int) -> Iterator[tuple[int, int, Owner]]:
        """(start, size, owner) pieces covering [base, base+size), free pieces included."""
        end = base + size
        pos = base
        # The segments are sorted and disjoint, so their ends ascend: skip (by bisection, not
        # one by one) the leading ones that end at or before ``base``.
        segs = self._segs
        for s in itertools.islice(segs, bisect.bisect_right(segs, pos, key=_seg_end), None):
            if s.end <= pos:
                continue
            if s.base >= end:
                break
            if s.base > pos:
                yield pos, s.base - pos, free_owner(self.gen)
                pos = s.base
            hi = min(s.end, end)
            yield pos, hi - pos, s.owner
            pos = hi
        if pos < end:
            yield pos, end - pos, free_owner(self.gen)

    def owner_at(self, addr: int) -> Owner:
        return next(self.owners(addr, 1))[2]

    def segments(self) -> list[tuple[int, int, Owner]]:
        return [(s.base, s.end - s.base, s.owner) for s in self._segs]

    def conflicts(
        self, base: int, size: int, intended: Owner | None
    ) -> list[tuple[int, int, Owner]]:
        """Pieces of [base, base+size) a write would corrupt.

        ``intended`` is the guest's belief; ``None`` means a device or Xen write, which may
        only land in ``dma`` tables.
        """
        bad = []
        for a, n, owner in self.owners(base, size):
            ok = owner.dma if intended is None else compatible(owner, intended)
            if not ok:
                bad.append((a, n, owner))
        return bad
