"""What a component (host, guest, device model) sees of the scheduler, as a Protocol.

``hypervisor`` and ``guest`` may not import ``cosim`` (nor each other); this is the
duck-typed subset of ``cosim.scheduler.Port`` their components use, in the one
package both import, so type checkers hold every component to the same port.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from transport.messages import Envelope, Message


class ComponentPort(Protocol):
    """The scheduler's port: the clock, a seeded random stream, send/reply, timers, records."""

    name: str
    rng: random.Random

    @property
    def now(self) -> int: ...

    def send(
        self,
        dst: str,
        msg: Message,
        *,
        delay: int = 0,
        why: str = "",
        reply_to: int = 0,
        request: bool = False,
    ) -> int: ...

    def reply(self, to: Envelope, msg: Message, *, delay: int = 0, why: str = "") -> None: ...

    def call_later(self, delay: int, token: Any) -> None: ...

    def record(self, kind: str, body: dict[str, Any], *, why: str = "", dst: str = "") -> None: ...

    def stop(self, reason: str) -> None: ...


#: The names the two sides use for it.
HostPort = ComponentPort
GuestPort = ComponentPort
