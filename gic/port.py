"""The memory port and the generator driver.

Hardware and software cores that must read memory mid-way are generators:
``data = yield MemRead(addr, size, why)``. A :class:`Driver` runs one: each
yield is a request handed outside, and the core is resumed with the answer.
On bare metal the host turns a MemRead into a ``mem`` message to the guest,
which owns RAM; in unit tests :func:`run_sync` answers from a local :class:`Ram`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gic.fastinit import fast_init

Req = TypeVar("Req")
T = TypeVar("T")

#: A core: yields requests, is sent answers, returns a result.
Core = Generator[Any, Any, T]


@fast_init
@dataclass(frozen=True, slots=True)
class MemRead:
    """Read ``size`` bytes of RAM at ``addr``; answered with ``bytes``."""

    addr: int
    size: int
    why: str


@fast_init
@dataclass(frozen=True, slots=True)
class MemWrite:
    """Write ``data`` to RAM at ``addr``; answered with None."""

    addr: int
    data: bytes
    why: str


class Driver(Generic[T]):
    """Steps a core generator one request at a time (h11-style: no I/O here)."""

    __slots__ = ("_gen", "request", "done", "result")

    def __init__(self, gen: Core[T]) -> None:
        self._gen = gen
        self.request: Any = None
        self.done = False
        self.result: T | None = None

    def start(self) -> Any:
        return self._step(None)

    def resume(self, answer: Any) -> Any:
        """Give the answer to the pending request; return the next request or None when done."""
        if self.done:
            raise RuntimeError("core already finished")
        return self._step(answer)

    def throw(self, exc: BaseException) -> Any:
        try:
            self.request = self._gen.throw(exc)
        except StopIteration as stop:
            return self._finish(stop.value)
        return self.request

    def _step(self, answer: Any) -> Any:
        try:
            self.request = self._gen.send(answer)
        except StopIteration as stop:
            return self._finish(stop.value)
        return self.request

    def _finish(self, value: T) -> None:
        self.done = True
        self.result = value
        self.request = None
        return None


def run_sync(gen: Core[T], answer: Callable[[Any], Any]) -> T:
    """Run a core to completion, answering each request synchronously.

    (What a :class:`Driver` does, without one: this runs for every synchronous GIC operation.)
    """
    send = gen.send
    try:
        req = send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    while True:
        reply = answer(req)
        try:
            req = send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


class Ram:
    """Sparse little-endian RAM in 64 KiB pages; unwritten bytes read as zero."""

    PAGE = 1 << 16

    def __init__(self, base: int = 0, size: int = 1 << 40) -> None:
        self.base = base
        self.size = size
        self._pages: dict[int, bytearray] = {}

    def contains(self, addr: int, size: int) -> bool:
        return self.base <= addr and addr + size <= self.base + self.size and size >= 0

    def read(self, addr: int, size: int) -> bytes:
        if not self.contains(addr, size):
            raise ValueError(f"RAM read [{addr:#x}+{size:#x}] outside RAM")
        page, off = divmod(addr, self.PAGE)
        if off + size <= self.PAGE:  # within one page (nearly every access): no loop
            p = self._pages.get(page)
            if p is None:
                return bytes(size)
            if size > 64:  # a table scan: copy the bytes once, not twice
                return bytes(memoryview(p)[off : off + size])
            return bytes(p[off : off + size])
        out = bytearray()
        while size:
            page, off = divmod(addr, self.PAGE)
            n = min(size, self.PAGE - off)
            p = self._pages.get(page)
            out += p[off : off + n] if p is not None else bytes(n)
            addr += n
            size -= n
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        if not self.contains(addr, len(data)):
            raise ValueError(f"RAM write [{addr:#x}+{len(data):#x}] outside RAM")
        page, off = divmod(addr, self.PAGE)
        n = len(data)
        if n and off + n <= self.PAGE and type(data) is bytes:  # within one page: no loop
            p = self._pages.get(page)
            if p is None:
                p = self._pages[page] = bytearray(self.PAGE)
            p[off : off + n] = data
            return
        mv = memoryview(data)
        while mv:
            page, off = divmod(addr, self.PAGE)
            n = min(len(mv), self.PAGE - off)
            p = self._pages.get(page)
            if p is None:
                p = self._pages[page] = bytearray(self.PAGE)
            p[off : off + n] = mv[:n]
            addr += n
            mv = mv[n:]

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, value.to_bytes(8, "little"))

    def answer(self, req: Any) -> Any:
        """Answer a MemRead/MemWrite from this RAM (for :func:`run_sync`)."""
        if isinstance(req, MemRead):
            return self.read(req.addr, req.size)
        if isinstance(req, MemWrite):
            self.write(req.addr, req.data)
            return None
        raise TypeError(f"RAM cannot answer {req!r}")
