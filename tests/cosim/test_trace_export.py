"""``cosim trace export --chrome``: valid trace-event JSON, checked by a validator written here:
every flow start has its end, slices on one thread nest or follow and never cross."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from cosim.trace_cli import run
from tests.cosim.test_trace_synth import Synth
from transport.messages import Entry, Exit

EPS = 1e-9  # µs; the float rounding of ts + dur


def validate(doc: Any) -> dict[str, Any]:
    """Check a Chrome trace-event document; returns the events grouped for further asserts."""
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    names: dict[tuple[int, int | None], str] = {}
    slices: dict[tuple[int, int], list[tuple[float, float, str]]] = defaultdict(list)
    flows: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ev in doc["traceEvents"]:
        ph = ev["ph"]
        assert ph in {"M", "X", "i", "s", "t", "f", "C"}, ev
        assert isinstance(ev["pid"], int)
        if ph == "M":
            assert ev["name"] in ("process_name", "thread_name")
            names[(ev["pid"], ev.get("tid"))] = ev["args"]["name"]
            continue
        assert isinstance(ev["ts"], float) and ev["ts"] >= 0, ev
        if ph == "C":
            continue
        assert isinstance(ev["tid"], int)
        assert (ev["pid"], None) in names and (ev["pid"], ev["tid"]) in names, ev
        if ph == "X":
            assert ev["dur"] >= 0, ev
            slices[(ev["pid"], ev["tid"])].append((ev["ts"], ev["ts"] + ev["dur"], ev["name"]))
        elif ph == "i":
            assert ev["s"] == "t"
        else:
            flows[(ev["cat"], ev["id"])].append(ev)
    for track, spans in slices.items():
        stack: list[tuple[float, float, str]] = []
        for start, end, name in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1][1] <= start + EPS:
                stack.pop()
            if stack:  # starts inside the top slice: it must also end inside it
                assert end <= stack[-1][1] + EPS, f"{name} crosses {stack[-1][2]} on {track}"
            stack.append((start, end, name))
    for key, evs in flows.items():
        phases = [e["ph"] for e in evs]
        assert phases.count("s") == 1 and phases.count("f") == 1, (key, phases)
        assert phases[0] == "s" and phases[-1] == "f", (key, phases)
        ts = [e["ts"] for e in evs]
        assert ts == sorted(ts), (key, ts)
        assert all(e.get("bp") == "e" for e in evs)
    return {"names": names, "slices": slices, "flows": flows}


def _export(tmp_path: Path, capsys: pytest.CaptureFixture[str], trace: Path) -> dict[str, Any]:
    out = tmp_path / "out.json"
    assert run(["export", str(trace), "--chrome", str(out)]) == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    return dict(validate(doc), doc=doc)


def _by_name(names: dict[tuple[int, int | None], str]) -> dict[tuple[str, str], tuple[int, int]]:
    procs = {pid: n for (pid, tid), n in names.items() if tid is None}
    return {(procs[pid], n): (pid, tid) for (pid, tid), n in names.items() if tid is not None}


def test_xen_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.trace"
    s = Synth(trace)
    s.xen_chain(
        1000, devid=0x10, eventid=3, host_lpi=8200, pcpu=1, vcpu=2, virq=8195,
        d_inject=500, d_ack=700, d_eoi=2000,
    )  # fmt: skip
    s.close()
    got = _export(tmp_path, capsys, trace)
    tracks = _by_name(got["names"])
    guest_vcpu = tracks[("guest", "vCPU 2")]
    guest_cpu = tracks[("guest", "CPU 2")]
    assert got["slices"][guest_vcpu] == [(1.502, 1.504, "trap irq")]  # exit at 1502, entry at 1504
    assert got["slices"][guest_cpu] == [(2.2, 4.2, "IRQ 8195")]  # ack at 2200, eoi at 4200
    (flow,) = got["flows"].values()
    assert [(e["ph"], e["ts"]) for e in flow] == [
        ("s", 1.0),  # msi
        ("t", 1.1),  # lpi
        ("t", 1.5),  # inject
        ("t", 1.503),  # lr
        ("t", 2.2),  # ack
        ("f", 4.2),  # eoi
    ]
    assert (flow[0]["pid"], flow[0]["tid"]) == tracks[("dev0", "device 0x10")]
    assert (flow[1]["pid"], flow[1]["tid"]) == tracks[("host", "CPU 1")]
    assert (flow[3]["pid"], flow[3]["tid"]) == tracks[("xen", "vCPU 2")]
    counters = [e for e in got["doc"]["traceEvents"] if e["ph"] == "C"]
    assert [(c["name"], c["args"]) for c in counters] == [("valid LRs vCPU 2", {"valid": 1})]


def test_crossing_handlers_are_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A acked, B acked, A's EOI before B's: B is cut at A's EOI and goes on after it."""
    trace = tmp_path / "t.trace"
    s = Synth(trace)
    s.event(1000, "guest", "ack", {"cpu": 0, "intid": 8192})
    s.event(2000, "guest", "ack", {"cpu": 0, "intid": 8193})
    s.event(3000, "guest", "eoi", {"cpu": 0, "intid": 8192})
    s.event(4000, "guest", "eoi", {"cpu": 0, "intid": 8193})
    s.event(5000, "guest", "eoi", {"cpu": 0, "intid": 9999})  # an EOI of nothing open
    s.env(6000, "guest", "xen", Exit(vcpu=0, reason="hvc", imm=0xEA1, x16=17))
    s.env(7000, "guest", "xen", Exit(vcpu=0, reason="wfi"))  # a second exit: the first is cut
    s.env(8000, "xen", "guest", Entry(vcpu=0))
    s.env(9000, "guest", "xen", Exit(vcpu=0, reason="dabt", addr=0x080A0070, size=8))
    s.close()
    got = _export(tmp_path, capsys, trace)
    tracks = _by_name(got["names"])
    assert sorted(got["slices"][tracks[("guest", "CPU 0")]]) == [
        (1.0, 3.0, "IRQ 8192"),
        (2.0, 3.0, "IRQ 8193"),
        (3.0, 4.0, "IRQ 8193"),
    ]
    assert sorted(got["slices"][tracks[("guest", "vCPU 0")]]) == [
        (6.0, 7.0, "trap hvc xen_version"),
        (7.0, 8.0, "trap wfi"),
        (9.0, 9.0, "trap dabt GICR_PROPBASER"),  # unfinished: closed at the last record
    ]
    xs = {(e["name"], e["ts"]): e["args"] for e in got["doc"]["traceEvents"] if e["ph"] == "X"}
    assert xs[("IRQ 8193", 2.0)].get("split") is True
    assert xs[("trap hvc xen_version", 6.0)].get("unfinished") is True
    assert xs[("trap dabt GICR_PROPBASER", 9.0)].get("unfinished") is True


def test_flows_of_unfinished_and_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.trace"
    s = Synth(trace)
    s.msi(100, 1, 1)  # alone: no flow (one step)
    s.msi(200, 1, 2)
    s.lpi(300, 1, 2, 8192, 0, action="dropped", reason="unmapped")  # two steps: s, f
    s.msi(400, 1, 3)
    s.lpi(500, 1, 3, 8193, 0)
    s.event(600, "guest", "ack", {"cpu": 0, "intid": 8193})  # in flight at the end: s, t, f
    s.close()
    got = _export(tmp_path, capsys, trace)
    flows = {k[1]: [(e["ph"], e["ts"]) for e in v] for k, v in got["flows"].items()}
    assert flows == {2: [("s", 0.2), ("f", 0.3)], 3: [("s", 0.4), ("t", 0.5), ("f", 0.6)]}


def test_torn_trace_exports_the_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.trace"
    s = Synth(trace)
    s.xen_chain(
        1000, devid=0x10, eventid=3, host_lpi=8200, pcpu=1, vcpu=2, virq=8195,
        d_inject=500, d_ack=700, d_eoi=2000,
    )  # fmt: skip
    s.close()
    trace.write_bytes(trace.read_bytes()[:-4])  # the EOI is torn
    out = tmp_path / "out.json"
    assert run(["export", str(trace), "--chrome", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cosim trace export: {trace}: torn tail") and len(err.splitlines()) == 1
    doc = json.loads(out.read_text())
    got = validate(doc)
    assert doc["otherData"]["records"] == 8 and "torn tail" in doc["otherData"]["problem"]
    (flow,) = got["flows"].values()
    assert [e["ph"] for e in flow] == ["s", "t", "t", "t", "f"]  # ends at the ack


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.trace"
    Synth(trace).close()
    assert run(["export", str(trace), "--chrome", str(tmp_path / "no" / "such.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and len(err.splitlines()) == 1
