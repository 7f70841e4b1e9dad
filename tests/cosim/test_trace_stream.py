"""Every ``cosim trace`` command streams: its tracemalloc peak does not grow with the trace.

A million-record run is too slow for the suite, and so is 20k vs 200k under tracemalloc
(minutes: export alone takes 49 s at 200k), so the peaks of 2k and 20k records are
compared: the peaks agree within a few KiB, and 16 KiB of slack is exceeded by a leak of
one int per interrupt (~70 KB over 20k records; checked by hand with a leaking tracker).
Also: torn and corrupt traces give one line on stderr and the readable prefix.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from cosim import trace_check, trace_diff, trace_export, trace_follow, trace_show, trace_stats
from cosim.trace_cli import run
from tests.cosim.test_trace_synth import GICR_BASE, Synth

SMALL, LARGE = 2_000, 20_000


def build(path: Path, n: int) -> None:
    """At least ``n`` records: Xen and bare-metal interrupts, MMIO, memory reads, warnings."""
    s = Synth(path)
    s.mmio_write(10, GICR_BASE + 0x70, 0x80A0078F)
    t, i = 1000, 0
    while s.w.records_written < n:
        if i % 2:
            t = s.bare_chain(
                t, devid=0x10, eventid=i % 32, intid=8192 + i % 32, cpu=i % 4,
                d_inject=40 + i % 7, d_ack=300, d_eoi=1000 + i % 100,
            )  # fmt: skip
        else:
            t = s.xen_chain(
                t, devid=0x20, eventid=i % 8, host_lpi=9000 + i % 8, pcpu=1, vcpu=i % 3,
                virq=8192 + i % 8, d_inject=500, d_ack=700 + i % 13, d_eoi=900,
            )  # fmt: skip
        s.mem(t + 10, "hw", 0x90000000 + 8 * (i % 64), 8, why="elsewhere")
        if i % 50 == 0:
            s.event(t + 20, "guest", "printk", {"cpu": 0, "level": 6, "text": f"line {i}"})
        t += 100
        i += 1
    s.close()


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    d = tmp_path_factory.mktemp("stream")
    out = {}
    for n in (SMALL, LARGE):
        out[n] = d / f"{n}.trace"
        build(out[n], n)
    return out


def _sink() -> io.StringIO:
    class Sink(io.StringIO):
        def write(self, s: str) -> int:  # keep nothing
            return len(s)

    return Sink()


COMMANDS: dict[str, Callable[[str, Path], int]] = {
    "show": lambda p, o: trace_show.main(p, filter_expr='kind == "lr" && vcpu == 1', out=_sink()),
    "stats": lambda p, o: trace_stats.main(p, as_json=True, out=_sink()),
    "check": lambda p, o: trace_check.main(
        p,
        ["no-lost-lpi", "warnings=0", "max-lr-overflow=0", "no-foreign-access=property"],
        out=_sink(),
    ),
    "follow": lambda p, o: trace_follow.main(p, lpi=1, out=_sink(), err=_sink()),
    "diff": lambda p, o: trace_diff.main(p, p, canonical=True, out=_sink()),
    "export": lambda p, o: trace_export.main(p, str(o), out=_sink()),
}


def _peak(fn: Callable[[], int]) -> tuple[int, int]:
    tracemalloc.start()
    try:
        rc = fn()
        return rc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_peak_memory_does_not_grow(traces: dict[int, Path], tmp_path: Path, command: str) -> None:
    fn = COMMANDS[command]
    out = tmp_path / "out.json"
    rc_small, small = _peak(lambda: fn(str(traces[SMALL]), out))
    rc_large, large = _peak(lambda: fn(str(traces[LARGE]), out))
    assert rc_small == rc_large
    assert rc_large == (1 if command == "follow" else 0)  # follow: LPI 1 is never there
    assert large <= small + 16 * 1024, (command, small, large)  # observed: within 3 KiB


@pytest.mark.parametrize("damage", ["torn", "corrupt"])
@pytest.mark.parametrize(
    ("argv", "rc"),
    [
        (["show"], 1),
        (["stats"], 1),
        (["follow", "--msi", "0x10:1"], 0),  # the chain lies in the readable prefix
        (["export", "--chrome", "OUT"], 1),
        (["diff", "SELF"], 1),
    ],
)
def test_damaged_traces(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    argv: list[str],
    rc: int,
) -> None:
    path = tmp_path / "t.trace"
    build(path, 200)
    good = tmp_path / "good.trace"
    good.write_bytes(path.read_bytes())
    data = bytearray(path.read_bytes())
    if damage == "torn":
        del data[-9:]
    else:
        data[len(data) // 2] ^= 0x55  # a payload byte: the CRC no longer matches
    path.write_bytes(bytes(data))
    args = [a.replace("OUT", str(tmp_path / "o.json")).replace("SELF", str(good)) for a in argv]
    assert run([args[0], str(path), *args[1:]]) == rc
    out = capsys.readouterr()
    err = out.err.splitlines()
    if argv[0] != "follow":
        assert len(err) == 1, err
        assert err[0].startswith(f"cosim trace {argv[0]}: {path}: ")
        assert ("torn tail at byte" if damage == "torn" else "is corrupt: CRC") in err[0]
    if argv[0] == "show":
        assert len(out.out.splitlines()) > 10  # the prefix was shown
    if argv[0] == "diff":
        assert "A ends here; B goes on" in out.out
