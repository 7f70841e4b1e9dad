"""The conservative synchronisation of multi-process runs, without processes (cosim.distributed)."""

from __future__ import annotations

import pytest

from cosim.distributed import Coordinator, Delivery, DistributedError, Done, Ready, Rec, RecordMerge
from transport.messages import Envelope, Msi

END, DRAIN = (1_001,), (2_001,)


def _coord(**next_keys: tuple[int, ...] | None) -> Coordinator:
    c = Coordinator(list(next_keys), END, DRAIN, lookahead=5)
    for role, key in next_keys.items():
        c.ready(role, Ready([], [], key))
    return c


def test_processes_run_at_once_each_up_to_the_others_reach() -> None:
    """a may run until b could reach it (b's first event + the lookahead) and b until a could;
    c, with nothing pending, bounds nobody and runs nothing."""
    c = _coord(a=(100, 0, 0, 0), b=(102, 0, 1, 0), c=None)
    gos = c.window()
    assert {r: g.bound for r, g in gos.items()} == {"a": (107,), "b": (105,)}
    assert c.steps == 1 and c.horizon() == (100, 0, 0, 0)


def test_a_lone_process_runs_to_the_end_of_the_drain() -> None:
    c = _coord(a=(100, 0, 0, 0), b=None)
    assert {r: g.bound for r, g in c.window().items()} == {"a": DRAIN}


def test_a_process_past_the_others_reach_waits() -> None:
    c = _coord(a=(100, 0, 0, 0), b=(300, 0, 1, 0))
    assert list(c.window()) == ["a"]


def test_deliveries_wait_in_the_inbox_and_count_as_pending() -> None:
    c = _coord(a=(100, 0, 0, 0), b=None)
    env = Envelope(t=104, src="a", dst="b", msg=Msi(devid=1, eventid=2))
    c.done("a", Done([Delivery((204, 0, 0, 1), env, (104, 0, 0, 0))], None, 104))
    assert c.pending("b") == (204, 0, 0, 1) and c.horizon() == (204, 0, 0, 1)
    (go,) = c.window().values()
    assert go.inbox[0].env == env and go.bound == DRAIN


def test_a_stop_ends_the_stopper_and_the_others_after_the_lookahead() -> None:
    c = _coord(a=(100, 0, 0, 0), b=(101, 0, 1, 0))
    c.window()
    c.done("a", Done([], (150, 0, 0, 3), 101, stopped="crash", stop_key=(101, 0, 0, 2)))
    c.done("b", Done([], (104, 0, 1, 7), 103))
    assert c.limit() == (106,)
    assert {r: g.bound for r, g in c.window().items()} == {"b": (106,)}
    c.done("b", Done([], (106, 0, 1, 9), 105))
    assert c.window() == {} and c.now() == 101 and c.horizon() is None


def test_no_lookahead_is_refused() -> None:
    with pytest.raises(DistributedError, match="conservative windows need > 0"):
        Coordinator(["a"], END, DRAIN, lookahead=0)


def test_records_come_out_in_event_key_order_up_to_the_horizon() -> None:
    m = RecordMerge()
    m.add("a", [Rec((100, 0, 0, 0), b"a1"), Rec((100, 0, 0, 0), b"a2"), Rec((300,), b"a3")])
    m.add("b", [Rec((100, 0, 1, 0), b"b1"), Rec((100, 1, 0, 0, 1, 0), b"b2")])
    assert m.take((200,)) == [("a", b"a1"), ("a", b"a2"), ("b", b"b1"), ("b", b"b2")]
    m.add("b", [Rec((250, 0, 1, 4), b"b3")])
    assert m.take(None) == [("b", b"b3"), ("a", b"a3")]
