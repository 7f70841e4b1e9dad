"""``cosim trace show``: exact lines, JSON objects, torn and corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosim.cli import main
from transport.messages import Envelope, Exit, Mem, Mmio, Reply
from transport.trace import TraceWriter

MMIO_MAP = [
    {"frame": "GICD", "base": 0x08000000, "size": 0x10000},
    {"frame": "GITS", "base": 0x08080000, "size": 0x20000},
    {"frame": "GICR", "base": 0x080A0000, "size": 0x80000},
]


def _write(path: Path) -> None:
    with TraceWriter(str(path), {"scenario": "t", "mmio_map": MMIO_MAP}, flush_every=1) as tw:
        # GICR_PROPBASER of redistributor 1 (0x080A0000 + 0x20000 + 0x70), as its_cpu_init_lpis writes it.
        tw.envelope(
            Envelope(
                t=1_500,
                src="guest",
                dst="host",
                id=7,
                why="its_cpu_init_lpis",
                msg=Mmio(cpu=1, addr=0x080C0070, size=8, write=True, value=0x80A0078F),
            )
        )
        tw.envelope(Envelope(t=1_600, src="host", dst="guest", reply_to=7, msg=Reply()))
        tw.envelope(
            Envelope(
                t=2_000_000_123,
                src="host",
                dst="guest",
                id=8,
                why="gicv3_redist_process_lpi",
                msg=Mem(agent="hw", addr=0x401D0401, size=1, write=False),
            )
        )
        tw.envelope(
            Envelope(
                t=3_000, src="dom0", dst="xen", msg=Exit(vcpu=0, reason="hvc", imm=0xEA1, x16=17)
            )
        )


def test_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _write(path)
    assert main(["trace", "show", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "    0.000001500 #0 guest -> host mmio reg=GICR_PROPBASER rdist=1 cpu=1 addr=0x80c0070 size=8 "
        "write=1 value=0x80a0078f <its_cpu_init_lpis>",
        "    0.000001600 #1 host -> guest reply value=0x0 status=0 re=#7",
        "    2.000000123 #2 host -> guest mem agent=hw addr=0x401d0401 size=1 write=0 <gicv3_redist_process_lpi>",
        "    0.000003000 #3 dom0 -> xen exit hypercall=xen_version vcpu=0 imm=0xea1 x16=17",
    ]


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _write(path)
    assert main(["trace", "show", "--json", str(path)]) == 0
    objs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["kind"] for o in objs] == ["mmio", "reply", "mem", "exit"]
    assert objs[0]["reg"] == "GICR_PROPBASER" and objs[0]["t"] == 1500 and objs[0]["src"] == "guest"
    assert objs[0]["value"] == 0x80A0078F and objs[0]["why"] == "its_cpu_init_lpis"
    assert objs[1]["reply_to"] == 7
    assert objs[3]["hypercall"] == "xen_version"


def test_torn_tail_prints_prefix_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.trace"
    _write(path)
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    assert main(["trace", "show", str(path)]) == 1
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 3
    assert out.err.startswith(f"cosim trace show: {path}: torn")
    assert len(out.err.splitlines()) == 1


def test_not_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"hello world, not a trace at all")
    assert main(["trace", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cosim trace show: {path}: ") and len(err.splitlines()) == 1


def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "show"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert main(["no-such-command"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
