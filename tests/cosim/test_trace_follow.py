"""``cosim trace follow``: both chains (bare metal and Xen), --nth, interleaving, misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosim.trace_cli import run
from tests.cosim.test_trace_synth import Synth


def _trace(path: Path) -> None:
    s = Synth(path)
    s.xen_chain(
        1000, devid=0x10, eventid=3, host_lpi=8200, pcpu=1, vcpu=2, virq=8195,
        d_inject=500, d_ack=700, d_eoi=2000,
    )  # fmt: skip
    # two bare-metal interrupts of one event, interleaved with another device's
    s.msi(10_000, 0x11, 1)
    s.msi(10_010, 0x12, 9)
    s.lpi(10_040, 0x11, 1, 8300, 0)
    s.lpi(10_050, 0x12, 9, 8301, 3)
    s.event(10_100, "guest", "ack", {"cpu": 0, "intid": 8300})
    s.event(10_200, "guest", "ack", {"cpu": 3, "intid": 8301})
    s.event(11_100, "guest", "eoi", {"cpu": 0, "intid": 8300})
    s.event(11_200, "guest", "eoi", {"cpu": 3, "intid": 8301})
    s.bare_chain(
        20_000, devid=0x11, eventid=1, intid=8300, cpu=0, d_inject=40, d_ack=300, d_eoi=1000
    )
    # dropped by a fault rule
    s.event(30_000, "link", "fault", {"rule": "drop-msi", "action": "drop"})
    s.msi(30_010, 0x13, 0)
    s.lpi(30_020, 0x13, 0, 0, 0, action="dropped", reason="drop-msi")
    s.close()


def _follow(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[list[str]]:
    assert run(["follow", str(path), *args]) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()]


def test_xen_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    lines = _follow(path, capsys, "--msi", "0x10:3")
    body, summary = lines[:-1], lines[-1]
    assert [(w[0], w[1], w[3], w[7]) for w in body] == [
        ("+0.000us", "+0.000us", "#0", "msi"),
        ("+0.100us", "+0.100us", "#1", "lpi"),
        ("+0.500us", "+0.400us", "#2", "inject"),
        ("+0.501us", "+0.001us", "#3", "kick"),
        ("+0.502us", "+0.001us", "#4", "exit"),
        ("+0.503us", "+0.001us", "#5", "lr"),
        ("+0.504us", "+0.001us", "#6", "entry"),
        ("+1.200us", "+0.696us", "#7", "ack"),
        ("+3.200us", "+2.000us", "#8", "eoi"),
    ]
    assert " ".join(summary) == "delivered: +3.200us from the first record to the EOI"
    # the same chain by its physical LPI
    assert _follow(path, capsys, "--lpi", "8200")[:-1] == body


def test_bare_chain_and_nth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    first = _follow(path, capsys, "--msi", "17:1")
    assert [(w[3], w[7]) for w in first[:-1]] == [
        ("#9", "msi"),
        ("#11", "lpi"),
        ("#13", "ack"),
        ("#15", "eoi"),
    ]
    second = _follow(path, capsys, "--msi", "0x11:1", "--nth", "2")
    assert [(w[0], w[7]) for w in second[:-1]] == [
        ("+0.000us", "msi"),
        ("+0.040us", "lpi"),
        ("+0.041us", "irq"),
        ("+0.340us", "ack"),
        ("+1.340us", "eoi"),
    ]
    assert second[0][3] == "#17"
    assert _follow(path, capsys, "--lpi", "8300", "--nth", "2") == second


def test_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    lines = _follow(path, capsys, "--msi", "0x13:0")
    assert [w[7] for w in lines[:-1]] == ["msi", "lpi"]
    assert " ".join(lines[-1]) == "dropped by fault rule drop-msi: drop-msi"


def test_incomplete_and_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    s = Synth(path)
    s.msi(100, 1, 2)
    s.lpi(150, 1, 2, 8192, 0)
    s.close()
    lines = _follow(path, capsys, "--msi", "1:2")
    assert " ".join(lines[-1]) == "incomplete: the trace ends after the lpi"
    assert run(["follow", str(path), "--msi", "1:2", "--nth", "2"]) == 1
    err = capsys.readouterr().err
    assert err == f"cosim trace follow: {path}: MSI 0x1:2 #2 not found (1 seen)\n"
    assert run(["follow", str(path), "--msi", "1-2"]) == 2
    assert capsys.readouterr().err == (
        "cosim trace follow: --msi '1-2': expected DEVID:EVENTID, e.g. 0x10:3\n"
    )
    assert run(["follow", str(path)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_torn_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert run(["follow", str(path), "--msi", "0x13:0"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("not found (0 seen)") and "torn tail" in err[1]
