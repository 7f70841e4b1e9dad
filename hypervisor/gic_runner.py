"""Running cores that read memory mid-way, one at a time, for a host component.

A core (``gic.port.Core``) yields ``MemRead``/``MemWrite`` requests. :class:`CoreQueue` steps
queued cores in order (one at a time, as QEMU's BQL or a lock held across the operation would
have it): requests the host can answer itself (``local``: e.g. Xen's own heap, which the
physical GIC reads) are answered at once; the others are sent out (``remote``: a ``mem``
request to the guest, returning the envelope id) and the core resumes when :meth:`on_reply`
gets the matching ``Reply``. A failed guest access is given to the core the way
gic/its.py expects: ``b""`` for a read, an exception instance for a write. Exceptions a core
raises fail only that job (``fail`` gets one line), never the host.

hypervisor/xen.py and hypervisor/baremetal.py use it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gic.port import Driver, MemRead, MemWrite
from transport.messages import Reply

#: local(req) -> (True, answer) when the host answers ``req`` itself, else (False, None).
Local = Callable[[Any], tuple[bool, Any]]
#: remote(req) -> the id of the request envelope sent for ``req``.
Remote = Callable[[MemRead | MemWrite], int]


@dataclass(slots=True)
class Job:
    """One queued core: its factory, and what to do with its result or its failure."""

    what: str
    start: Callable[[], Any]
    done: Callable[[Any], None]
    fail: Callable[[str], None]
    driver: Driver[Any] | None = None


class CoreQueue:
    """Serialised core execution with local and remote memory answers."""

    def __init__(
        self,
        *,
        local: Local,
        remote: Remote,
        mem_error: Callable[[MemRead | MemWrite, str], None] | None = None,
    ) -> None:
        self._local = local
        self._remote = remote
        self._mem_error = mem_error or (lambda _req, _err: None)
        self._queue: deque[Job] = deque()
        self._active: Job | None = None
        self._wait: tuple[int, MemRead | MemWrite] | None = None

    @property
    def busy(self) -> bool:
        return self._active is not None or bool(self._queue)

    @property
    def waiting_for(self) -> int:
        """The envelope id of the memory request the active core waits for (0: none)."""
        return self._wait[0] if self._wait is not None else 0

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        if self._active is None:
            self._run_next()

    def on_reply(self, reply_to: int, reply: Reply) -> bool:
        """Resume the waiting core with ``reply``; False if the reply is not for us."""
        if self._wait is None or reply_to != self._wait[0]:
            return False
        _, req = self._wait
        self._wait = None
        answer: Any
        if reply.status != 0:
            err = reply.error or f"status {reply.status}"
            self._mem_error(req, err)
            answer = b"" if isinstance(req, MemRead) else ValueError(err)
        elif isinstance(req, MemRead):
            answer = bytes(reply.data)
            if len(answer) != req.size:
                self._mem_error(req, f"read answered {len(answer)} of {req.size} bytes")
                answer = b""
        else:
            answer = None
        self._step(answer)
        return True

    # -- internals -------------------------------------------------------------------------------

    def _run_next(self) -> None:
        while self._active is None and self._queue:
            job = self._queue.popleft()
            self._active = job
            try:
                job.driver = Driver(job.start())
                req = job.driver.start()
            except Exception as exc:  # a model bug in one job must not stop the host
                self._failed(job, exc)
                continue
            self._advance(req)

    def _step(self, answer: Any) -> None:
        job = self._active
        assert job is not None and job.driver is not None
        try:
            req = job.driver.resume(answer)
        except Exception as exc:
            self._failed(job, exc)
            self._run_next()
            return
        self._advance(req)

    def _advance(self, req: Any) -> None:
        job = self._active
        assert job is not None and job.driver is not None
        while True:
            if job.driver.done:
                self._active = None
                try:
                    job.done(job.driver.result)
                finally:
                    self._run_next()
                return
            try:
                handled, answer = self._local(req)
                if not handled:
                    if not isinstance(req, (MemRead, MemWrite)):
                        req = job.driver.throw(TypeError(f"cannot serve core request {req!r}"))
                        continue
                    self._wait = (self._remote(req), req)
                    return
                req = job.driver.resume(answer)
            except Exception as exc:
                self._failed(job, exc)
                self._run_next()
                return

    def _failed(self, job: Job, exc: BaseException) -> None:
        self._active = None
        self._wait = None
        job.fail(f"{job.what}: {type(exc).__name__}: {exc}")


__all__ = ["CoreQueue", "Job"]
