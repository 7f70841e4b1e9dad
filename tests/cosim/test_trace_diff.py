"""``cosim trace diff``: a planted difference is found; --canonical ignores run details and
renumbered request ids but not a real difference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cosim.trace_cli import run
from tests.cosim.test_trace_synth import HEADER, Synth
from transport.messages import Hello, Mem, Reply


def _write(
    path: Path,
    *,
    header: dict[str, Any] | None = None,
    id_base: int = 100,
    eventid: int = 3,
    t_shift: int = 0,
    hello: bool = False,
) -> None:
    s = Synth(path, dict(HEADER, **(header or {})))
    if hello:
        s.env(0, "host", "guest", Hello(role="host"))
    ids = [id_base + 7, id_base + 3]  # two requests in flight, answered out of order
    for i, rid in enumerate(ids):
        s.env(10 + i, "host", "guest", Mem(agent="hw", addr=0x1000 * (i + 1), size=4, write=False), id=rid, why="x")  # fmt: skip
    s.env(20, "guest", "host", Reply(data=b"\x02" * 4), reply_to=ids[1])
    s.env(21, "guest", "host", Reply(data=b"\x01" * 4), reply_to=ids[0])
    s.xen_chain(
        100 + t_shift, devid=0x10, eventid=eventid, host_lpi=8200, pcpu=1, vcpu=0, virq=8195,
        d_inject=500, d_ack=700, d_eoi=2000,
    )  # fmt: skip
    s.close()


def _diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    rc = run(["diff", *args])
    return rc, capsys.readouterr().out.splitlines()


def test_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a)
    _write(b)
    assert _diff(capsys, str(a), str(b)) == (0, [])
    assert _diff(capsys, "--canonical", str(a), str(b)) == (0, [])


def test_planted_body_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a)
    _write(b, eventid=4)
    rc, lines = _diff(capsys, str(a), str(b))
    assert rc == 1
    assert lines[0] == "record 4 (A #4, B #4): body.eventid: A 3 != B 4"
    assert lines[1].startswith("  A ") and "eventid=3" in lines[1]
    assert lines[2].startswith("  B ") and "eventid=4" in lines[2]
    assert _diff(capsys, "--canonical", str(a), str(b))[1][0] == lines[0]


def test_planted_time_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a)
    _write(b, t_shift=1)
    rc, lines = _diff(capsys, "--canonical", str(a), str(b))
    assert (rc, lines[0]) == (1, "record 4 (A #4, B #4): t: A 0x64 != B 0x65")


def test_canonical_ignores_run_details_and_id_numbering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, header={"pid": 4242, "wall_time": 1.5, "mode": "in-process"})
    _write(
        b, header={"pid": 77, "wall_time": 9.0, "mode": "multi-process"}, id_base=5000, hello=True
    )
    rc, lines = _diff(capsys, str(a), str(b))
    assert (rc, lines) == (1, ["header differs at header.pid: A 0x1092 != B 0x4d"])
    assert _diff(capsys, "--canonical", str(a), str(b)) == (0, [])
    # the ids alone: plain diff finds them, after the hello that --canonical skips
    c = tmp_path / "c"
    _write(c, header={"pid": 4242, "wall_time": 1.5, "mode": "in-process"}, id_base=5000)
    rc, lines = _diff(capsys, str(a), str(c))
    assert (rc, lines[0]) == (1, "record 0 (A #0, B #0): id: A 0x6b != B 0x138f")
    assert _diff(capsys, "--canonical", str(a), str(c)) == (0, [])


def test_canonical_still_sees_a_reply_to_the_wrong_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a)
    s = Synth(b)
    s.env(10, "host", "guest", Mem(agent="hw", addr=0x1000, size=4, write=False), id=9, why="x")
    s.env(11, "host", "guest", Mem(agent="hw", addr=0x2000, size=4, write=False), id=8, why="x")
    s.env(20, "guest", "host", Reply(data=b"\x02" * 4), reply_to=9)  # A answers the second
    s.close()
    rc, lines = _diff(capsys, "--canonical", str(a), str(b))
    assert (rc, lines[0]) == (1, "record 2 (A #2, B #2): reply_to: A 2 != B 1")


def test_length_and_torn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a)
    data = a.read_bytes()
    b.write_bytes(data[:-3])
    rc = run(["diff", str(a), str(b)])
    out = capsys.readouterr()
    assert rc == 1
    assert out.out == "record 12: B ends here; A goes on with seq 12\n"
    assert out.err.startswith(f"cosim trace diff: {b}: torn tail at byte ")
    assert len(out.err.splitlines()) == 1


def test_not_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a)
    b.write_bytes(b"nonsense")
    assert run(["diff", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cosim trace diff: {b}: not a trace") and len(err.splitlines()) == 1
