"""A scripted stand-in for the Linux guest on the bare-metal bus, and a recording scheduler.

:class:`ScriptedGuest` owns guest RAM (a gic.port.Ram), answers every ``mem`` request the
host sends, logs ``irq`` messages, and runs a script one request at a time: each step is a
bus message sent as a request (the next step waits for its reply), an int (wait that many
ns), or a callable ``step(guest, port)`` (e.g. write RAM the way the kernel would).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cosim.scheduler import Port, Scheduler
from gic.port import Ram
from transport.messages import Envelope, Irq, Mem, Message, Reply

GUEST_RAM_BASE = 0x4000_0000
GUEST_RAM_SIZE = 2 << 30

Step = Message | int | Callable[["ScriptedGuest", Port], None]


@dataclass(frozen=True, slots=True)
class Answer:
    """A request of the script and the reply it got."""

    t: int
    request: Message
    reply: Reply


class ScriptedGuest:
    """Component ``guest``: RAM, a script of requests, and logs of what the host sent."""

    def __init__(
        self, steps: Iterable[Step] = (), *, name: str = "guest", host: str = "host"
    ) -> None:
        self.name = name
        self.host = host
        self.ram = Ram(GUEST_RAM_BASE, GUEST_RAM_SIZE)
        self.steps: deque[Step] = deque(steps)
        self.answers: list[Answer] = []
        self.mems: list[
            tuple[str, str, int, int, bool, bytes]
        ] = []  # (agent, why, addr, size, write, data)
        self.irqs: list[tuple[int, int, bool]] = []  # (t, cpu, level)
        self.others: list[Envelope] = []
        self.refuse_mem: Callable[[Mem], Reply | None] | None = None
        self._pending = 0
        self._current: Message | None = None

    def start(self, port: Port) -> None:
        self._next(port)

    def timer(self, token: Any, port: Port) -> None:
        self._next(port)

    def receive(self, env: Envelope, port: Port) -> None:
        msg = env.msg
        if isinstance(msg, Mem):
            self.mems.append((msg.agent, env.why, msg.addr, msg.size, msg.write, msg.data))
            special = self.refuse_mem(msg) if self.refuse_mem else None
            if special is not None:
                port.reply(env, special)
            elif msg.write:
                self.ram.write(msg.addr, msg.data)
                port.reply(env, Reply(), why="guest_ram")
            else:
                port.reply(env, Reply(data=self.ram.read(msg.addr, msg.size)), why="guest_ram")
        elif isinstance(msg, Irq):
            self.irqs.append((port.now, msg.cpu, msg.level))
        elif isinstance(msg, Reply) and env.reply_to == self._pending and self._current is not None:
            self.answers.append(Answer(port.now, self._current, msg))
            self._pending = 0
            self._current = None
            self._next(port)
        else:
            self.others.append(env)

    def push(self, *steps: Step) -> None:
        """Append steps (from a callable step: they run after the rest of the script)."""
        self.steps.extend(steps)

    def _next(self, port: Port) -> None:
        while self.steps and self._current is None:
            step = self.steps.popleft()
            if isinstance(step, int):
                port.call_later(step, "wait")
                return
            if callable(step) and not isinstance(step, Message):
                step(self, port)
                continue
            self._current = step
            self._pending = port.send(self.host, step, request=True, why="test_script")

    # -- views ---------------------------------------------------------------------------

    def replies(self, kind: type | None = None) -> list[Reply]:
        return [a.reply for a in self.answers if kind is None or isinstance(a.request, kind)]

    def values(self) -> list[int]:
        return [a.reply.value for a in self.answers]


class RecordingScheduler(Scheduler):
    """A scheduler that also keeps every envelope and every non-message record in lists."""

    def __init__(self, *, seed: int = 1, **kw: Any) -> None:
        super().__init__(seed=seed, **kw)
        self.envelopes: list[Envelope] = []
        self.records: list[
            tuple[int, str, str, dict[str, Any], str]
        ] = []  # (t, src, kind, body, why)
        self.observers.append(self.envelopes.append)

    def record_event(
        self, src: str, kind: str, body: dict[str, Any], *, why: str = "", dst: str = ""
    ) -> None:
        self.records.append((self.now, src, kind, body, why))
        super().record_event(src, kind, body, why=why, dst=dst)

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [body for _t, _src, k, body, _why in self.records if k == kind]
