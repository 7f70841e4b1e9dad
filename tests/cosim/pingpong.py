"""Two components exchanging messages with random delays from the seed (used by the scheduler tests)."""

from __future__ import annotations

import sys
from typing import Any

from cosim.scheduler import US, Port, Scheduler
from transport.messages import Envelope, Msi, Reply
from transport.trace import TraceWriter


class Pinger:
    """Sends MSIs at random intervals; counts the replies."""

    def __init__(self, name: str, peer: str, count: int) -> None:
        self.name, self.peer, self.count = name, peer, count
        self.replies = 0

    def start(self, port: Port) -> None:
        port.call_later(port.rng.randrange(1, 10 * US), 0)

    def timer(self, token: Any, port: Port) -> None:
        port.send(
            self.peer, Msi(devid=port.rng.randrange(64), eventid=token), request=True, why="ping"
        )
        if token + 1 < self.count:
            port.call_later(port.rng.randrange(1, 10 * US), token + 1)

    def receive(self, env: Envelope, port: Port) -> None:
        self.replies += 1


class Ponger:
    """Answers each request after a random service time."""

    def __init__(self, name: str) -> None:
        self.name = name

    def start(self, port: Port) -> None:
        pass

    def timer(self, token: Any, port: Port) -> None:
        pass

    def receive(self, env: Envelope, port: Port) -> None:
        port.reply(
            env, Reply(value=env.msg.eventid * 3), delay=port.rng.randrange(0, 5 * US), why="pong"
        )


def run(seed: int, path: str, count: int = 200) -> tuple[int, int]:
    with TraceWriter(path, {"scenario": "pingpong", "seed": seed}) as tw:
        sched = Scheduler(seed=seed, trace=tw, latency=lambda env: 500)
        a = Pinger("a", "b", count)
        sched.add(a)
        sched.add(Ponger("b"))
        sched.start()
        res = sched.run()
    return res.now, a.replies


if __name__ == "__main__":
    print(run(int(sys.argv[1]), sys.argv[2]))
