"""``cosim trace stats`` on a trace whose numbers are chosen by its construction."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from cosim.trace_cli import run
from cosim.trace_stats import LogHistogram
from tests.cosim.test_trace_synth import Synth
from transport.messages import Exit

# gicv3-architecture.md E3 (MAPC ICID 2 -> processor 2) and the INT / SYNC examples after it.
MAPC_E3 = bytes.fromhex(
    "09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 00 02 00 00 00 00 80 00 00 00 00 00 00 00 00"
)
INT_DW = (0x0000001000000003, 0x3, 0, 0)
SYNC_DW = (0x05, 0, 0x0000000000020000, 0)


def _cmd(dws: tuple[int, ...]) -> bytes:
    return b"".join(d.to_bytes(8, "little") for d in dws)


def _trace(path: Path) -> None:
    s = Synth(path)
    t = 1000
    for d_inject, d_eoi in ((40, 1000), (50, 2000), (60, 3000)):  # bare metal
        t = s.bare_chain(
            t, devid=0x10, eventid=1, intid=8193, cpu=0, d_inject=d_inject, d_ack=300, d_eoi=d_eoi
        ) + 100  # fmt: skip
    for d_inject, d_ack, d_eoi, other, uie in (
        (500, 700, 2000, 0, False),
        (700, 900, 4000, 2, True),
    ):
        t = s.xen_chain(
            t, devid=0x20, eventid=5, host_lpi=8300, pcpu=1, vcpu=2, virq=8200,
            d_inject=d_inject, d_ack=d_ack, d_eoi=d_eoi, other_lrs=other, uie=uie,
        ) + 100  # fmt: skip
    # one MSI coalesced by the hardware, one dropped by a fault rule
    s.msi(t, 0x10, 7)
    s.lpi(t + 10, 0x10, 7, 8199, 0, action="coalesced")
    s.event(t + 20, "link", "fault", {"rule": "drop-msi", "action": "drop"}, why="fault_plan")
    s.msi(t + 30, 0x10, 8)
    s.lpi(t + 40, 0x10, 8, 8200, 0, action="dropped", reason="drop-msi")
    # hypercalls: xen_version (17) twice, console_io (18) once (xen/include/public/xen.h)
    for x16 in (17, 18, 17):
        s.env(t + 50, "guest", "xen", Exit(vcpu=0, reason="hvc", imm=0xEA1, x16=x16))
    # ITS commands read from the queue: MAPC, then INT + SYNC in one 64-byte read
    s.cmdq_read(t + 60, 0x80C00000, MAPC_E3)
    s.cmdq_read(t + 70, 0x80C00020, _cmd(INT_DW) + _cmd(SYNC_DW))
    s.cmdq_read(t + 80, 0x80C00060, MAPC_E3, why="vgic_its_handle_cmds")
    s.close()


def _stats(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert run(["stats", "--json", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


def test_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    d = _stats(path, capsys)
    assert d["kinds"]["msi"] == 7
    assert d["kinds"]["lpi"] == 7
    assert d["kinds"]["ack"] == d["kinds"]["eoi"] == 5
    assert d["kinds"]["irq"] == 6  # up and down per bare-metal interrupt
    assert d["kinds"]["exit"] == 2 + 3
    assert d["components"]["dev0"] == 7
    assert d["hypercalls"] == {"xen_version": 2, "console_io": 1}
    assert d["its_commands"] == {"MAPC": 2, "INT": 1, "SYNC": 1}
    assert d["interrupts"] == {
        "delivered": 5,
        "coalesced": 1,
        "dropped": 1,
        "in flight": 0,
        "evicted": 0,
    }
    assert d["kicks"] == 2
    assert d["lr_occupancy"] == {"1": 1, "3": 1}
    assert d["lr_overflows"] == 1


def test_latencies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    lat = _stats(path, capsys)["latency_ns"]
    # MSI -> injection: bare 40, 50, 60 (lpi set); Xen 500, 700 (inject)
    assert lat["msi_to_inject"] == {"count": 5, "min": 40, "median": 60, "p99": 700, "max": 700}
    # injection -> IAR: 300 x3, 700, 900
    assert lat["inject_to_ack"] == {"count": 5, "min": 300, "median": 300, "p99": 900, "max": 900}
    # IAR -> EOI: 1000, 2000, 3000, 2000, 4000
    assert lat["ack_to_eoi"] == {"count": 5, "min": 1000, "median": 2000, "p99": 4000, "max": 4000}


def test_rich_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    assert run(["stats", str(path)]) == 0
    out = capsys.readouterr().out
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if (cells := [c.strip() for c in line.strip("│").split("│")]) and len(cells) > 1
    }
    assert rows["MSI -> injection"] == ["5", "40 ns", "60 ns", "700 ns", "700 ns"]
    assert rows["IAR -> EOI"] == ["5", "1000 ns", "2000 ns", "4000 ns", "4000 ns"]
    assert rows["xen_version"] == ["2"]
    assert rows["MAPC"] == ["2"]
    assert "list-register overflows (UIE set on entry): 1" in out


def test_histogram_error_bound() -> None:
    rng = random.Random(5)
    values = [rng.randrange(1, 5_000_000) for _ in range(20_000)]
    h = LogHistogram()
    for v in values:
        h.add(v)
    ordered = sorted(values)
    assert (h.min, h.max, h.count) == (ordered[0], ordered[-1], len(values))
    for p in (1, 50, 90, 99, 99.9):
        true = ordered[-(-len(ordered) * p // 100) - 1] if p != 99.9 else ordered[19980 - 1]
        got = h.percentile(p)
        assert got is not None and abs(got - true) <= true / 256, (p, got, true)
    assert len(h.buckets) < 128 * 24  # bounded by octaves, not by the number of values


def test_histogram_exact_below_256() -> None:
    h = LogHistogram()
    for v in (3, 1, 2, 255, 100):
        h.add(v)
    assert h.summary() == {"count": 5, "min": 1, "median": 3, "p99": 255, "max": 255}
    assert LogHistogram().summary()["median"] is None


def test_torn_trace_stats_the_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    path.write_bytes(path.read_bytes()[:-7])
    assert run(["stats", "--json", str(path)]) == 1
    out = capsys.readouterr()
    d = json.loads(out.out)
    assert d["its_commands"] == {"MAPC": 1, "INT": 1, "SYNC": 1}  # the last reply is torn
    assert d["interrupts"]["delivered"] == 5
    assert out.err.startswith(f"cosim trace stats: {path}: torn tail at byte ")
    assert len(out.err.splitlines()) == 1
