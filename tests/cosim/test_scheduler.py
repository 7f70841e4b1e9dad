"""The scheduler is deterministic: same seed, same bytes; another seed, another trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosim.scheduler import Port, Scheduler
from tests.cosim import pingpong
from transport.messages import Envelope, Msi
from transport.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.trace", tmp_path / "b.trace"
    ra = pingpong.run(7, str(a))
    rb = pingpong.run(7, str(b))
    assert ra == rb
    assert ra[1] == 200  # every ping answered
    assert a.read_bytes() == b.read_bytes()


def test_other_seed_other_trace(tmp_path: Path) -> None:
    a, b = tmp_path / "a.trace", tmp_path / "b.trace"
    pingpong.run(7, str(a))
    pingpong.run(8, str(b))
    assert a.read_bytes() != b.read_bytes()


def test_independent_of_hash_seed(tmp_path: Path) -> None:
    outs = []
    for hs in ("0", "1", "12345"):
        path = tmp_path / f"h{hs}.trace"
        env = dict(os.environ, PYTHONHASHSEED=hs, PYTHONPATH=str(ROOT))
        subprocess.run(
            [sys.executable, "-m", "tests.cosim.pingpong", "11", str(path)],
            check=True,
            env=env,
            cwd=ROOT,
        )
        outs.append(path.read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_trace_times_are_monotonic_and_replies_match(tmp_path: Path) -> None:
    path = tmp_path / "t.trace"
    pingpong.run(3, str(path), count=50)
    _, recs, problem = read_trace(str(path))
    assert problem is None
    assert [r.seq for r in recs] == list(range(len(recs)))
    assert all(x.t <= y.t for x, y in zip(recs, recs[1:]))
    requests = {r.id: r for r in recs if r.kind == "msi"}
    replies = [r for r in recs if r.kind == "reply"]
    assert len(requests) == len(replies) == 50
    for r in replies:
        req = requests[r.reply_to]
        assert r.body["value"] == req.body["eventid"] * 3
        assert r.t >= req.t + 500  # the request crossed the link first


class _Echo:
    name = "echo"

    def start(self, port: Port) -> None:
        pass

    def timer(self, token: object, port: Port) -> None:
        pass

    def receive(self, env: Envelope, port: Port) -> None:
        pass


def test_time_order_then_sequence_order() -> None:
    seen: list[tuple[int, int]] = []

    class Sink(_Echo):
        name = "sink"

        def receive(self, env: Envelope, port: Port) -> None:
            seen.append((port.now, env.msg.eventid))

    class Src(_Echo):
        name = "src"

        def start(self, port: Port) -> None:
            port.send("sink", Msi(devid=0, eventid=1), delay=30)
            port.send("sink", Msi(devid=0, eventid=2), delay=10)
            port.send("sink", Msi(devid=0, eventid=3), delay=10)

    s = Scheduler(seed=0)
    s.add(Src())
    s.add(Sink())
    s.start()
    s.run()
    assert seen == [(10, 2), (10, 3), (30, 1)]


def test_unknown_destination_is_a_clear_error() -> None:
    class Src(_Echo):
        name = "src"

        def start(self, port: Port) -> None:
            port.send("nobody", Msi(devid=0, eventid=0))

    s = Scheduler(seed=0)
    s.add(Src())
    with pytest.raises(KeyError, match="unknown component 'nobody'"):
        s.start()


class _Ticker(_Echo):
    """Wakes every ``period`` ns and notes when; the one named ``stopper`` stops the run at 100."""

    def __init__(self, name: str, period: int, stopper: bool = False) -> None:
        self.name = name
        self.period = period
        self.stopper = stopper
        self.ticks: list[int] = []

    def start(self, port: Port) -> None:
        port.call_later(self.period, "tick")

    def timer(self, token: object, port: Port) -> None:
        self.ticks.append(port.now)
        if self.stopper and port.now == 100:
            port.stop("crash")
        port.call_later(self.period, "tick")


@pytest.mark.parametrize(("lookahead", "last"), [(0, 99), (5, 104), (20, 119)])
def test_a_stop_reaches_the_others_after_the_lookahead(lookahead: int, last: int) -> None:
    """The component that stops runs nothing more; the others run until the lookahead after
    the stop (what a process that hears of the stop over a link has done by then). With no
    lookahead the stop is immediate: the other's tick at 100 comes after the host's."""
    host, other = _Ticker("host", 50, stopper=True), _Ticker("other", 1)
    s = Scheduler(seed=0, lookahead=lookahead)
    s.add(host)
    s.add(other)
    s.start()
    r = s.run(until=1_000)
    assert r.stopped == "crash" and s.stop_key is not None and s.stop_key[0] == 100
    assert host.ticks == [50, 100]
    assert other.ticks == list(range(1, last + 1))
    assert s.run(until=2_000).events == r.events  # nothing more, ever
    assert s.pending == 2  # the host's next tick is held, the other's lies past the limit


def test_a_delivery_to_a_remote_component_under_the_lookahead_is_refused() -> None:
    class Src(_Echo):
        name = "src"

        def start(self, port: Port) -> None:
            port.send("far", Msi(devid=0, eventid=0), delay=0)

    s = Scheduler(seed=0, latency=lambda env: 3, lookahead=5)
    s.add(Src())
    s.add_remote("far")
    s.outbox = lambda key, env: None
    with pytest.raises(
        ValueError, match="arrives 3 ns after its sending, under the lookahead of 5 ns"
    ):
        s.start()


def test_a_send_to_a_remote_component_sets_the_horizon() -> None:
    """The answer to a delivery at t can come back at t + lookahead at the earliest: no event
    at or past that runs here until the coordinator says so."""
    sent: list[tuple[tuple[int, ...], str]] = []

    class Caller(_Ticker):
        def timer(self, token: object, port: Port) -> None:
            super().timer(token, port)
            if port.now == 30:
                port.send("far", Msi(devid=0, eventid=0))

    me = Caller("me", 10)
    s = Scheduler(seed=0, latency=lambda env: 100, lookahead=5)
    s.add(me)
    s.add_remote("far")
    s.outbox = lambda key, env: sent.append((key, env.dst))
    s.start()
    s.run(below=(1_000,))
    assert sent == [((130, 0, 0, 4), "far")]  # me: item 4 (its timers are 0..3)
    assert s.horizon == (135,)
    assert me.ticks == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130]
