"""The display-filter language: operators, precedence, type rules, errors with their column,
and ``cosim trace show --filter`` on a trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cosim.trace_cli import run
from cosim.trace_filter import FilterError, compile_filter, record_lookup
from gic.its_commands import Mapd
from tests.cosim.test_trace_synth import GICR_BASE, GICR_STRIDE, GITS_BASE, Synth

#: gicv3-architecture.md E2: MAPD DeviceID 0x10, Size 4, ITT at 0x80B00000, V = 1.
MAPD_E2 = bytes.fromhex(
    "08 00 00 00 10 00 00 00 04 00 00 00 00 00 00 00 00 00 b0 80 00 00 00 80 00 00 00 00 00 00 00 00"
)

REC: dict[str, Any] = {
    "kind": "exit",
    "src": "dom0",
    "vcpu": 3,
    "addr": 0x080C0078,
    "write": True,
    "why": "its_cpu_init_lpis",
    "regs": [1, 2, 0x84000000],
    "name": "7",
    "ctx": {"hcr": 3},
    "none": None,
}


def m(expr: str, rec: dict[str, Any] | None = None) -> bool:
    return compile_filter(expr).matches(record_lookup(REC if rec is None else rec))


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("vcpu == 3", True),
        ("vcpu == 0x3", True),
        ("vcpu != 3", False),
        ("vcpu != 4", True),
        ("vcpu < 4", True),
        ("vcpu < 3", False),
        ("vcpu > 2", True),
        ("vcpu > 3", False),
        ("vcpu <= 3", True),
        ("vcpu <= 2", False),
        ("vcpu >= 3", True),
        ("vcpu >= 4", False),
        ("vcpu > -1", True),
        ('src == "dom0"', True),
        ('src < "dom1"', True),
        ('src >= "xen"', False),
        ('why contains "its_"', True),
        ('why contains "gits_"', False),
        ("regs contains 0x84000000", True),
        ("regs contains 3", False),
        ('kind in {"lr" "inject" "exit"}', True),
        ('kind in {"lr", "inject"}', False),
        ("vcpu in {1 2 3}", True),
        ("vcpu in {0..2 8192..8255}", False),
        ("vcpu in {0..2, 3..3}", True),
        ("addr in {0x080C0000..0x080DFFFF}", True),
        ("write == 1", True),
        ("write", True),
        ("missing", False),
        ("none", False),
        ("ctx.hcr == 3", True),
        ("ctx.lrs", False),
        ("vcpu == vcpu", True),
        ("vcpu == write", False),
    ],
)
def test_operators(expr: str, want: bool) -> None:
    assert m(expr) is want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        # && binds tighter than ||: true || (false && false)
        ('vcpu == 3 || vcpu == 9 && src == "x"', True),
        ('(vcpu == 3 || vcpu == 9) && src == "x"', False),
        # ! binds tighter than &&: (!false) && true
        ('!vcpu == 9 && src == "dom0"', True),
        ('!(vcpu == 3 && src == "x")', True),
        ("!!write", True),
        # the words are the same operators with the same precedence
        ('vcpu == 3 or vcpu == 9 and src == "x"', True),
        ('not vcpu == 3 or src == "dom0"', True),
        ('not (vcpu == 3 or src == "dom0")', False),
    ],
)
def test_precedence(expr: str, want: bool) -> None:
    assert m(expr) is want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ('vcpu == "3"', False),  # int field, string literal: false, not an error
        ('vcpu != "3"', False),
        ("name == 7", False),  # string field, int literal
        ("name != 7", False),
        ("name < 8", False),
        ('name == "7"', True),
        ("missing == 1", False),  # unknown field: false
        ("missing != 1", False),
        ("!(missing == 1)", True),
        ('regs contains "1"', False),
        ('vcpu contains "3"', False),
        ("name in {7}", False),
    ],
)
def test_type_rules(expr: str, want: bool) -> None:
    assert m(expr) is want


@pytest.mark.parametrize(
    ("expr", "column", "message"),
    [
        ("kind ==", 8, "expected a value after '==', found the end of the expression"),
        ('kind == "dabt', 9, "string not closed: missing '\"'"),
        ("(kind == 1", 11, "expected ')', found the end of the expression"),
        ("kind == 1 &&", 13, "expected a field name, '(' or '!', found the end of the expression"),
        ("kind @ 1", 6, "unexpected character '@'"),
        ("&& kind", 1, "expected a field name, '(' or '!', found '&&'"),
        ("", 1, "empty filter"),
        ("vcpu in 3", 9, "expected '{' after 'in', found '3'"),
        ("vcpu in {1..}", 13, "expected an integer or a string in the set, found '}'"),
        ("vcpu in {3..1}", 13, "range end 1 is below its start 3"),
        ("vcpu == 1 vcpu", 11, "expected '&&', '||' or the end, found 'vcpu'"),
        ('why == "a\\q"', 10, 'only \\" and \\\\ escapes are allowed'),
        ("3 == vcpu", 1, "expected a field name, '(' or '!', found '3'"),
    ],
)
def test_errors_point_at_the_column(expr: str, column: int, message: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(expr)
    assert (info.value.column, info.value.message) == (column, message)
    lines = info.value.lines()
    assert lines[0] == expr and lines[1] == " " * (column - 1) + "^"


def test_string_escapes() -> None:
    assert m(r'why == "a\"b\\c"', {"why": 'a"b\\c'})


def _trace(path: Path) -> None:
    s = Synth(path)
    # GICR_PENDBASER of redistributor 2, as its_cpu_init_lpis writes it (E4: 0x80A10780)
    s.mmio_write(
        100, GICR_BASE + 2 * GICR_STRIDE + 0x78, 0x80A10780, cpu=2, why="its_cpu_init_lpis"
    )
    s.mmio_write(200, GITS_BASE + 0x88, 0x20, why="its_post_commands")  # GITS_CWRITER
    # MAPD read from the command queue (E2 bytes)
    s.cmdq_read(300, 0x80C00000, MAPD_E2)
    s.xen_chain(
        1000, devid=0x10, eventid=3, host_lpi=8200, pcpu=1, vcpu=3, virq=8195,
        d_inject=500, d_ack=700, d_eoi=2000,
    )  # fmt: skip
    s.close()


def _show(path: Path, capsys: pytest.CaptureFixture[str], expr: str) -> list[dict[str, Any]]:
    assert run(["show", "--json", "--filter", expr, str(path)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_show_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    got = _show(path, capsys, 'kind == "mmio" && reg == "GICR_PENDBASER"')
    assert [(o["seq"], o["rdist"], o["value"]) for o in got] == [(0, 2, 0x80A10780)]
    got = _show(path, capsys, 'kind in {"lr" "inject"} && vcpu == 3')
    assert [o["kind"] for o in got] == ["inject", "lr"]
    assert got[1]["value"] == 0x50A0000000002003  # E5 with vINTID 8195
    # its_cpu_init_lpis, its_post_commands, gicv3_its_translation_write
    assert [o["seq"] for o in _show(path, capsys, 'why contains "its_"')] == [0, 2, 7]
    got = _show(path, capsys, 'its_cmd == "MAPD" && DeviceID == 0x10 && V == 1')
    assert len(got) == 1 and got[0]["kind"] == "reply"
    assert (got[0]["Size"], got[0]["ITT_addr"]) == (4, 0x80B00000)
    assert Mapd(DeviceID=0x10, Size=4, ITT_addr=0x80B00000, V=1).encode() == MAPD_E2
    got = _show(path, capsys, "t >= 3000 || reply_to")
    assert [o["kind"] for o in got] == ["reply", "reply", "reply", "eoi"]


def test_show_bad_filter_is_three_lines_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.trace"
    _trace(path)
    assert run(["show", "--filter", 'kind == "exit" &&& vcpu', str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [
        'kind == "exit" &&& vcpu',
        "                 ^",
        "cosim trace show: bad filter at column 18: unexpected character '&'",
    ]
