"""The trace file: exact bytes, round trips, SIGKILL, torn and corrupt tails, bounded memory."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import msgpack
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transport.strategies import envelopes
from transport.messages import Envelope, GicContext, Mem
from transport.trace import (
    MAX_RECORD,
    TraceError,
    TraceProblem,
    TraceReader,
    TraceRecord,
    TraceWriter,
    read_trace,
)

REPO = Path(__file__).resolve().parents[2]
MAGIC = b"XGCOSIM-TRACE\x00\x00\x01"
CRC_9090 = zlib.crc32(b"\x90\x90")


def raw_record(obj: object) -> bytes:
    """One record as the module docstring describes it, built without the writer."""
    payload = msgpack.packb(obj, use_bin_type=True)
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def offsets(data: bytes) -> list[int]:
    """Byte offsets of the records after the header record, walked with struct alone."""
    pos = len(MAGIC)
    (n,) = struct.unpack_from("<I", data, pos)
    pos += 8 + n
    out = []
    while pos < len(data):
        out.append(pos)
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 8 + n
    return out


def write_irqs(path: Path, n: int, **kw: int) -> None:
    with TraceWriter(path, {"scenario": "irqs"}, **kw) as w:
        for i in range(n):
            assert (
                w.record(
                    t=10 * i, src="hw", dst="cpu0", kind="irq", body={"cpu": 0, "level": i % 2 == 0}
                )
                == i
            )


# --- format ---------------------------------------------------------------------


def test_exact_bytes_of_a_small_trace(tmp_path: Path) -> None:
    path = tmp_path / "t"
    with TraceWriter(path, {"a": 1}) as w:
        w.record(t=5, src="a", dst="b", kind="irq", body={"cpu": 1})
    header = b"\x92\xa6header\x81\xa1a\x01"  # ["header", {"a": 1}]
    record = b"\x99\x00\x05\xa1a\xa1b\xa3irq\x81\xa3cpu\x01\xa0\x00\x00"
    assert path.read_bytes() == (
        MAGIC
        + struct.pack("<II", 12, zlib.crc32(header))
        + header
        + struct.pack("<II", 20, zlib.crc32(record))
        + record
    )


def test_records_and_envelopes_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t"
    mem = Envelope(
        t=1500,
        src="xen",
        dst="guest",
        msg=Mem(agent="xen", addr=0x4802_0000, size=4, write=False, data=b"\xa2\x00\x00\x01"),
        id=7,
        why="update_lpi_property",
    )
    with TraceWriter(path, {"scenario": "s", "hash": "ab", "versions": [1, 2]}) as w:
        assert w.envelope(mem) == 0
        assert (
            w.record(t=1501, src="guest", dst="xen", kind="reply", body={"value": 3}, reply_to=7)
            == 1
        )
        assert w.records_written == 2
    header, records, problem = read_trace(path)
    assert header == {"scenario": "s", "hash": "ab", "versions": [1, 2]}
    assert problem is None
    assert records == [
        TraceRecord(
            seq=0,
            t=1500,
            src="xen",
            dst="guest",
            kind="mem",
            body={
                "agent": "xen",
                "addr": 0x4802_0000,
                "size": 4,
                "write": False,
                "data": b"\xa2\x00\x00\x01",
            },
            why="update_lpi_property",
            id=7,
            reply_to=0,
        ),
        TraceRecord(1, 1501, "guest", "xen", "reply", {"value": 3}, "", 0, 7),
    ]
    assert records[0].get("addr") == 0x4802_0000
    assert records[0].get("why") == "update_lpi_property"
    assert records[0].get("seq") == 0
    assert records[0].get("missing", "-") == "-"


def test_gic_context_and_tuples_become_arrays(tmp_path: Path) -> None:
    from transport.messages import Exit

    e = Envelope(
        t=0,
        src="guest",
        dst="xen",
        msg=Exit(vcpu=0, reason="wfi", regs=(1, 2), ctx=GicContext(lrs=(5,), hcr=1)),
    )
    with TraceWriter(tmp_path / "t", {}) as w:
        w.envelope(e)
    [r] = read_trace(tmp_path / "t")[1]
    assert r.body["regs"] == [1, 2]
    assert r.body["ctx"] == [[5], 1, 0, []]
    assert "kind" not in r.body and r.kind == "exit"


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(envelopes(), max_size=6))
def test_any_envelope_can_be_rebuilt_from_its_record(tmp_path: Path, envs: list[Envelope]) -> None:
    path = tmp_path / "h"
    with TraceWriter(path, {"n": len(envs)}, flush_every=4) as w:
        for e in envs:
            w.envelope(e)
    header, records, problem = read_trace(path)
    assert header == {"n": len(envs)} and problem is None
    assert [r.seq for r in records] == list(range(len(envs)))
    rebuilt = [
        msgspec.convert(
            {
                "t": r.t,
                "src": r.src,
                "dst": r.dst,
                "msg": {**r.body, "kind": r.kind},
                "id": r.id,
                "reply_to": r.reply_to,
                "why": r.why,
            },
            Envelope,
        )
        for r in records
    ]
    assert rebuilt == envs


def test_writer_batches_until_flush_every(tmp_path: Path) -> None:
    path = tmp_path / "t"
    w = TraceWriter(path, {}, flush_every=3)
    start = path.stat().st_size
    assert start == 16 + 8 + len(msgpack.packb(["header", {}]))  # header is on disk at once
    w.record(t=0, src="a", dst="b", kind="irq", body={})
    w.record(t=0, src="a", dst="b", kind="irq", body={})
    assert path.stat().st_size == start
    w.record(t=0, src="a", dst="b", kind="irq", body={})
    assert path.stat().st_size > start
    size3 = path.stat().st_size
    w.record(t=0, src="a", dst="b", kind="irq", body={})
    w.flush()
    assert path.stat().st_size > size3
    w.close()
    w.close()  # idempotent
    assert len(read_trace(path)[1]) == 4


def test_writer_misuse_is_a_one_line_trace_error(tmp_path: Path) -> None:
    w = TraceWriter(tmp_path / "t", {})
    with pytest.raises(
        TraceError, match=r"^record 0 \(irq\) cannot be written: can not serialize 'object' object$"
    ):
        w.record(t=0, src="a", dst="b", kind="irq", body={"x": object()})
    assert (
        w.record(t=0, src="a", dst="b", kind="irq", body={}) == 0
    )  # a refused record takes no seq
    w.close()
    with pytest.raises(TraceError, match=r"is closed$"):
        w.record(t=0, src="a", dst="b", kind="irq", body={})
    with pytest.raises(TraceError, match=r"^flush_every must be at least 1, not 0$"):
        TraceWriter(tmp_path / "u", {}, flush_every=0)


def test_writer_truncates_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write_irqs(path, 5)
    write_irqs(path, 2)
    assert [r.seq for r in read_trace(path)[1]] == [0, 1]


# --- SIGKILL -----------------------------------------------------------------------


def test_writer_killed_with_sigkill_leaves_a_readable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "killed.trace"
    n = 2000
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("trace_writer_child.py")), str(path), str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        assert line == "ready\n", child.stderr.read()  # type: ignore[union-attr]
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
    assert child.returncode == -signal.SIGKILL
    header, records, problem = read_trace(path)
    assert header == {"child": True, "n": n}
    assert len(records) >= n
    assert [r.seq for r in records] == list(range(len(records)))
    for r in records:
        assert r.body["addr"] == 0x4000_0000 + 64 * r.seq
        assert r.body["data"] == bytes([r.seq & 0xFF]) * 64
    assert problem is None or problem.kind == "torn"


# --- torn and corrupt ---------------------------------------------------------------


@pytest.mark.parametrize("where", ["length", "crc", "payload"])
def test_flipped_byte_in_record_k_is_found_at_record_k(tmp_path: Path, where: str) -> None:
    path = tmp_path / "t"
    write_irqs(path, 10)
    data = bytearray(path.read_bytes())
    k = 6
    off = offsets(bytes(data))[k]
    pos = {"length": off + 1, "crc": off + 4, "payload": off + 12}[where]
    data[pos] ^= 0x40
    path.write_bytes(bytes(data))
    header, records, problem = read_trace(path)
    assert header == {"scenario": "irqs"}
    assert [r.seq for r in records] == list(range(k))
    assert problem is not None
    assert (problem.kind, problem.record, problem.offset) == ("corrupt", k, off)
    length, stored = struct.unpack_from("<II", data, off)
    if where == "length":  # 0x40 in the second byte: 16 KiB more than the file holds
        real = length - 0x4000
        assert problem.message == (
            f"record {k} at byte {off} is corrupt: length {length} runs past the end of the file, "
            f"but the {real}-byte payload there has the stored CRC"
        )
    else:
        actual = zlib.crc32(bytes(data[off + 8 : off + 8 + length]))
        assert problem.message == (
            f"record {k} at byte {off} is corrupt: CRC 0x{actual:08x} != stored 0x{stored:08x}"
        )


def test_truncated_mid_record_is_torn_at_that_record(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write_irqs(path, 10)
    data = path.read_bytes()
    offs = offsets(data)
    k = 7
    whole = offs[k + 1] - offs[k]
    path.write_bytes(data[: offs[k] + 12])
    _, records, problem = read_trace(path)
    assert [r.seq for r in records] == list(range(k))
    assert problem == TraceProblem(
        "torn", k, offs[k], f"torn tail at byte {offs[k]} after record {k - 1}: 12 of {whole} bytes"
    )


def test_truncated_inside_a_record_header(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write_irqs(path, 3)
    data = path.read_bytes()
    last = offsets(data)[2]
    path.write_bytes(data[: last + 3])
    _, records, problem = read_trace(path)
    assert len(records) == 2
    assert problem == TraceProblem(
        "torn", 2, last, f"torn tail at byte {last} after record 1: 3 of 8 bytes"
    )


def test_torn_first_record_and_clean_cut_at_a_boundary(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write_irqs(path, 2)
    data = path.read_bytes()
    first, second = offsets(data)
    path.write_bytes(data[: first + 9])
    _, records, problem = read_trace(path)
    assert records == []
    assert problem is not None
    assert (
        problem.message
        == f"torn tail at byte {first} after the header: 9 of {second - first} bytes"
    )
    path.write_bytes(data[:second])
    _, records, problem = read_trace(path)
    assert [r.seq for r in records] == [0] and problem is None


def _trace_with(*records: bytes) -> bytes:
    return MAGIC + raw_record(["header", {}]) + b"".join(records)


@pytest.mark.parametrize(
    "bad,reason",
    [
        (
            raw_record([0, 0, "a", "b", "irq", {}, "", 0, 0]),
            "seq 0 does not follow seq 0",
        ),
        (raw_record([1, 0, "a", "b", "irq", [], "", 0, 0]), "field body is list, expected dict"),
        (raw_record([1, 0, "a", "b", "irq", {}, "", True, 0]), "field id is bool, expected int"),
        (raw_record({"seq": 1}), "not a 9-field record: {'seq': 1}"),
        (
            struct.pack("<II", 1, zlib.crc32(b"\xc1")) + b"\xc1",
            "payload is not msgpack (FormatError)",
        ),
        (
            struct.pack("<II", MAX_RECORD + 1, 0),
            f"length {MAX_RECORD + 1} exceeds the limit of {MAX_RECORD} bytes",
        ),
    ],
    ids=["seq", "body", "bool-id", "shape", "not-msgpack", "huge-length"],
)
def test_well_framed_but_wrong_records_are_corrupt(tmp_path: Path, bad: bytes, reason: str) -> None:
    good = raw_record([0, 0, "a", "b", "irq", {}, "", 0, 0])
    data = _trace_with(good, bad, good)
    path = tmp_path / "t"
    path.write_bytes(data)
    _, records, problem = read_trace(path)
    assert len(records) == 1
    off = len(data) - len(good) - len(bad)
    assert problem is not None and (problem.kind, problem.record, problem.offset) == (
        "corrupt",
        1,
        off,
    )
    assert problem.message == f"record 1 at byte {off} is corrupt: {reason}"


# --- bad headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,what",
    [
        (b"", "not a trace: the file is empty"),
        (
            b"PK\x03\x04 not a trace at all",
            "not a trace: starts with b'PK\\x03\\x04 not a trace', expected b'XGCOSIM-TRACE\\x00\\x00\\x01'",
        ),
        (
            b"XGCOSIM-TRACE\x00\x00\x02" + raw_record(["header", {}]),
            "trace format version 2 is not supported (this reader reads 1)",
        ),
        (MAGIC, "header record missing: the file ends after the magic"),
        (MAGIC + raw_record(["header", {}])[:-1], "header record torn: 16 of 17 bytes"),
        (MAGIC + raw_record(["nope", {}]), "header record is not ['header', {...}]: ['nope', {}]"),
        (
            MAGIC + struct.pack("<II", 2, 0) + b"\x90\x90",
            f"header record at byte 16 is corrupt: CRC 0x{CRC_9090:08x} != stored 0x00000000",
        ),
    ],
    ids=["empty", "zip", "version-2", "no-header", "torn-header", "not-header", "crc"],
)
def test_bad_header_is_one_trace_error(tmp_path: Path, data: bytes, what: str) -> None:
    path = tmp_path / "t"
    path.write_bytes(data)
    reader = TraceReader(path)
    with pytest.raises(TraceError) as info:
        reader.header  # noqa: B018
    assert str(info.value) == f"{path}: {what}"
    assert list(reader) == []
    assert reader.problem is not None and reader.problem.kind == "bad-header"
    assert reader.problem.message == f"{path}: {what}"
    with pytest.raises(TraceError):
        read_trace(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"^.*/nope: cannot open: No such file or directory$"):
        TraceReader(tmp_path / "nope").header  # noqa: B018


# --- streaming ------------------------------------------------------------------------


def test_100k_records_stream_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.trace"
    n = 100_000
    with TraceWriter(path, {"scenario": "big"}) as w:
        for i in range(n):
            w.record(
                t=i,
                src="hw",
                dst="guest",
                kind="mem",
                body={"agent": "hw", "addr": 0x4000_0000 + 8 * i, "size": 8, "write": False},
                why="its_read_cte",
            )
    size = path.stat().st_size
    assert size > 5_000_000
    reader = TraceReader(path)
    tracemalloc.start()
    try:
        count = 0
        last = -1
        for r in reader:
            count += 1
            last = r.seq
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, last, reader.records_read, reader.problem) == (n, n - 1, n, None)
    assert peak < size // 20, f"peak {peak} bytes for a {size}-byte file"


def test_record_packed_writes_the_bytes_record_writes(tmp_path: Path) -> None:
    """A multi-process Node's record (its fields after seq, packed) is written byte for byte as
    record() writes the same fields; anything else is refused with the record's number."""
    fields = [
        (
            7,
            "host",
            "guest",
            "mem",
            {"agent": "hw", "addr": 0x40000000, "data": b"\xa2"},
            "x",
            3,
            0,
        ),
        (9, "guest", "", "printk", {"line": "GICv3: 224 SPIs"}, "", 0, 0),
    ]
    a, b = tmp_path / "a.trace", tmp_path / "b.trace"
    with TraceWriter(a, {"h": 1}) as wa, TraceWriter(b, {"h": 1}) as wb:
        for t, src, dst, kind, body, why, id_, reply_to in fields:
            wa.record(
                t=t, src=src, dst=dst, kind=kind, body=body, why=why, id=id_, reply_to=reply_to
            )
        for f in fields:
            assert wb.record_packed(msgpack.packb(list(f), use_bin_type=True)) == fields.index(f)
        with pytest.raises(TraceError, match="record 2: not a packed array of the 8 fields"):
            wb.record_packed(msgpack.packb([1, 2], use_bin_type=True))
    assert a.read_bytes() == b.read_bytes()
