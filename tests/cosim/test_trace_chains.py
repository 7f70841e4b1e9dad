"""The interrupt chain tracker: merging on acknowledge, eviction, records out of the blue."""

from __future__ import annotations

from pathlib import Path

from cosim.trace_chains import COALESCED, DELIVERED, DROPPED, ChainTracker
from tests.cosim.test_trace_synth import Synth
from transport.trace import TraceReader


def _feed(path: Path, tracker: ChainTracker) -> list[tuple[int, str | None, str]]:
    done = []
    for rec in TraceReader(path):
        done += [(c.n, c.outcome, c.reason) for c in tracker.feed(rec)]
    done += [(c.n, c.outcome, c.reason) for c in tracker.finish()]
    return done


def test_two_injections_before_one_ack_merge(tmp_path: Path) -> None:
    """vgic_inject_irq twice for one virq before the guest acknowledges: one interrupt."""
    path = tmp_path / "t.trace"
    s = Synth(path)
    for t in (100, 200):
        s.msi(t, 1, 0)
        s.lpi(t + 10, 1, 0, 8192, 0)
        s.event(t + 20, "xen", "inject", {"vcpu": 0, "virq": 40, "devid": 1, "eventid": 0, "host_lpi": 8192})  # fmt: skip
    s.event(300, "guest", "ack", {"cpu": 0, "intid": 40})
    s.event(400, "guest", "eoi", {"cpu": 0, "intid": 40})
    s.close()
    assert _feed(path, ChainTracker()) == [
        (2, COALESCED, "merged with interrupt #1"),
        (1, DELIVERED, ""),
    ]


def test_eviction_and_orphans(tmp_path: Path) -> None:
    path = tmp_path / "t.trace"
    s = Synth(path)
    for i in range(4):
        s.msi(100 + i, 1, i)  # never translated
    s.event(200, "guest", "eoi", {"cpu": 0, "intid": 5})  # an EOI of nothing: ignored
    s.lpi(300, 9, 9, 8200, 0, action="dropped", reason="no MSI recorded")  # no msi: own chain
    s.close()
    got = _feed(path, ChainTracker(max_live=2))
    lost = "still in flight after 2 newer interrupts"
    assert got == [
        (1, None, lost),  # MSI 3 makes a third live chain
        (2, None, lost),  # MSI 4
        (3, None, lost),  # the lpi without an MSI starts chain 5
        (5, DROPPED, "no MSI recorded"),
        (4, None, ""),  # still in flight at the end
    ]


def test_bad_bodies_do_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "t.trace"
    s = Synth(path)
    s.event(1, "host", "lpi", {"devid": "x", "intid": [1], "action": 3})
    s.event(2, "xen", "inject", {"vcpu": None})
    s.event(3, "guest", "ack", {})
    s.event(4, "link", "fault", {"rule": 5, "action": "drop", "devid": 1, "eventid": 2})
    s.event(5, "xen", "lr", {"vcpu": [], "virq": {}})
    s.event(6, "host", "irq", {"level": True})
    s.close()
    got = _feed(path, ChainTracker())
    assert [(n, o) for n, o, _ in got] == [(1, DROPPED), (2, None)]
