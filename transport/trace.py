"""The append-only trace file: one header, then one CRC-checked record per message or event.

Format (version 1), everything little-endian::

    file    := MAGIC header-record record*
    MAGIC   := b"XGCOSIM-TRACE\\x00\\x00\\x01"          16 bytes; the last byte is the format version
    *-record:= length:u32 crc:u32 payload[length]      crc = zlib.crc32(payload) (CRC-32, IEEE)
    header payload := msgpack ["header", {str: any}]    the run's scenario, hash, versions, ...
    record payload := msgpack [seq, t, src, dst, kind, body, why, id, reply_to]

``payload`` is msgpack (https://msgpack.org) written with the bin type for
bytes and str type for text. Record fields: ``seq`` int, 0 for the first
record, strictly increasing; ``t`` int, simulated time in ns; ``src``, ``dst``,
``kind``, ``why`` str; ``body`` a map with str keys (for a message, its fields
without ``kind``: bytes stay bytes, tuples become arrays, a GicContext is the
array [lrs, hcr, vmcr, ap1r]); ``id`` and ``reply_to`` int (0 = none).
Memory accesses are one record per range (``addr``, ``size``), never per byte.
A record's ``length`` is at most MAX_RECORD (64 MiB).

The writer appends batches with ``os.write`` on an ``O_APPEND`` fd, so a writer
killed at any moment leaves whole records followed by at most one torn one.
A reader stops at the first record that is torn (the file ends inside it) or
corrupt (bad CRC, not msgpack, wrong shape or field types, seq not increasing,
length over MAX_RECORD, or a length running past the end of the file although
a whole msgpack payload matching the stored CRC lies there: a damaged length
field, not a torn write) and reports it as a :class:`TraceProblem`; every record
before it is good. A reader never raises on a bad record, only on a bad header.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgpack
import msgspec

from transport.messages import Envelope

MAGIC = b"XGCOSIM-TRACE\x00\x00\x01"
assert len(MAGIC) == 16
FORMAT_VERSION = MAGIC[-1]
RECORD_HEADER = struct.Struct("<II")
#: Largest record payload a reader accepts; a bigger length means the length field is corrupt.
MAX_RECORD = 64 << 20
#: Bytes a reader asks the OS for at a time.
CHUNK = 1 << 16

FIELDS = ("seq", "t", "src", "dst", "kind", "body", "why", "id", "reply_to")
_TYPES: tuple[type, ...] = (int, int, str, str, str, dict, str, int, int)


class TraceError(Exception):
    """The file is not a readable trace (or a writer was misused); one line naming why."""

    def __init__(self, message: str, problem: TraceProblem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One message or event of a run."""

    seq: int
    t: int
    src: str
    dst: str
    kind: str
    body: dict[str, Any]
    why: str
    id: int
    reply_to: int

    def get(self, name: str, default: Any = None) -> Any:
        """A top-level field (seq, t, src, ...) or else a key of ``body``."""
        if name in FIELDS:
            return getattr(self, name)
        return self.body.get(name, default)


@dataclass(frozen=True)
class TraceProblem:
    """Why reading stopped early: the first bad record, where it is, and a one-line message."""

    kind: Literal["torn", "corrupt", "bad-header"]
    record: int
    offset: int
    message: str

    def __str__(self) -> str:
        return self.message


#: One reusable packer (msgpack.packb builds a new one per call); same bytes as packb.
_PACKER = msgpack.Packer(use_bin_type=True)
_HEADER_PACK = RECORD_HEADER.pack
#: msgpack's one-byte headers of an array of 8 and of 9 elements (fixarray).
_FIXARRAY_8, _FIXARRAY_9 = b"\x98", b"\x99"
_CRC32 = zlib.crc32


def _pack(obj: Any) -> bytes:
    try:
        payload = _PACKER.pack(obj)
    except BaseException:
        _PACKER.reset()  # a failed pack may leave a partial object in the buffer
        raise
    return _HEADER_PACK(len(payload), _CRC32(payload)) + payload


_to_builtins = msgspec.to_builtins


@functools.cache
def _tag(msg_type: type) -> str:
    """A message type's ``kind`` (its msgspec tag), looked up once per type."""
    return msg_type.__struct_config__.tag  # type: ignore[attr-defined, no-any-return]


_encode = msgspec.msgpack.Encoder().encode
_Raw = msgspec.Raw


#: A fixmap header byte -> the header of the same map with one entry less (None: not a fixmap
#: with entries, so no such header; the fast path then fails and the msgpack way is taken).
_FIXMAP_LESS_ONE = [bytes((i - 1,)) if 0x81 <= i <= 0x8F else None for i in range(256)]


@functools.cache
def _body_layout(msg_type: type) -> tuple[str, int, tuple[str, ...]] | None:
    """How :meth:`TraceWriter.envelope` may pack a message of this type directly.

    msgspec packs a tagged struct as a map whose first entry is the tag (``"kind": tag``)
    and then every field in order: the same bytes msgpack gives ``envelope_body`` (the map of
    ``to_builtins`` without ``kind``), save the map's length and that first entry. Returns
    (the kind, where the fields start, the fields declared ``bytes``), or None when that does
    not hold as simply (an array-like struct, or 15 fields or more: no longer a fixmap).
    """
    config = msg_type.__struct_config__  # type: ignore[attr-defined]
    fields = msgspec.structs.fields(msg_type)
    if config.array_like or not 1 <= len(fields) < 15 or config.tag_field != "kind":
        return None
    cut = len(_encode({"kind": config.tag}))
    return _tag(msg_type), cut, tuple(f.name for f in fields if f.type is bytes)


def envelope_body(env: Envelope) -> dict[str, Any]:
    """The body of a message as recorded: its fields as plain data, without ``kind``."""
    body = msgspec.to_builtins(env.msg, builtin_types=(bytes,))
    body.pop("kind", None)
    return body


class TraceWriter:
    """Appends records to a new trace file (truncating any old one)."""

    def __init__(
        self, path: str | os.PathLike[str], header: dict[str, Any], *, flush_every: int = 256
    ) -> None:
        if flush_every < 1:
            raise TraceError(f"flush_every must be at least 1, not {flush_every}")
        self.path = os.fspath(path)
        self.flush_every = flush_every
        try:
            head = MAGIC + _pack(["header", header])
        except (TypeError, ValueError, OverflowError) as exc:
            raise TraceError(f"trace header cannot be written: {exc}") from None
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644
        )
        self._batch: list[bytes] = []  # record headers and payloads, written by flush()
        self._batched = 0  # records in the batch
        self._seq = 0
        self._write(head)

    @property
    def records_written(self) -> int:
        """Records given to the writer so far (some may still be in the batch)."""
        return self._seq

    def record(
        self,
        *,
        t: int,
        src: str,
        dst: str,
        kind: str,
        body: dict[str, Any],
        why: str = "",
        id: int = 0,
        reply_to: int = 0,
    ) -> int:
        """Append one record; returns its sequence number."""
        if self._fd is None:
            raise TraceError(f"trace writer for {self.path} is closed")
        seq = self._seq
        try:
            data = _pack([seq, t, src, dst, kind, body, why, id, reply_to])
        except (TypeError, ValueError, OverflowError) as exc:
            raise TraceError(f"record {seq} ({kind}) cannot be written: {exc}") from None
        self._seq += 1
        self._batch.append(data)
        self._batched += 1
        if self._batched >= self.flush_every:
            self.flush()
        return seq

    def envelope(self, env: Envelope) -> int:
        """Record a message in flight (record() with the envelope's fields, inlined: the
        scheduler calls this for every message)."""
        if self._fd is None:
            raise TraceError(f"trace writer for {self.path} is closed")
        seq = self._seq
        msg = env.msg
        payload = None
        layout = _body_layout(type(msg))
        # Fast path: msgspec packs the message itself, and the tag entry is cut off. Only for
        # bytes fields that hold bytes (to_builtins would turn a bytearray into base64 text);
        # anything msgspec refuses goes the msgpack way below, which raises as it always did.
        if layout is None:
            kind = _tag(type(msg))
            fast = False
        else:
            kind, cut, bytes_fields = layout
            fast = True
            for name in bytes_fields:
                if type(getattr(msg, name)) is not bytes:
                    fast = False
        if fast:
            try:
                m = _encode(msg)
                body = _Raw(_FIXMAP_LESS_ONE[m[0]] + m[cut:])  # type: ignore[operator]
                payload = _encode(
                    (seq, env.t, env.src, env.dst, kind, body, env.why, env.id, env.reply_to)
                )
            except Exception:
                payload = None
        if payload is None:
            body = _to_builtins(msg, builtin_types=(bytes,))
            body.pop("kind", None)
            try:
                payload = _PACKER.pack(
                    [seq, env.t, env.src, env.dst, kind, body, env.why, env.id, env.reply_to]
                )
            except (TypeError, ValueError, OverflowError) as exc:
                _PACKER.reset()
                raise TraceError(f"record {seq} ({kind}) cannot be written: {exc}") from None
        return self._append(seq, payload)

    def record_packed(self, fields: bytes) -> int:
        """Append a record whose fields after ``seq`` come packed, as one msgpack array
        ``[t, src, dst, kind, body, why, id, reply_to]`` (what a multi-process Node sends):
        the bytes record() would write, without unpacking and packing them again."""
        if self._fd is None:
            raise TraceError(f"trace writer for {self.path} is closed")
        seq = self._seq
        if fields[:1] != _FIXARRAY_8:
            raise TraceError(f"record {seq}: not a packed array of the 8 fields after seq")
        # msgpack packs a list element by element after its header: [seq, *fields].
        return self._append(seq, _FIXARRAY_9 + _PACKER.pack(seq) + fields[1:])

    def _append(self, seq: int, payload: bytes) -> int:
        self._seq = seq + 1
        batch = self._batch
        batch.append(_HEADER_PACK(len(payload), _CRC32(payload)))
        batch.append(payload)
        self._batched += 1
        if self._batched >= self.flush_every:
            self.flush()
        return seq

    def flush(self) -> None:
        """Write the batch with one os.write."""
        if self._batch and self._fd is not None:
            data = b"".join(self._batch)
            self._batch.clear()
            self._batched = 0
            self._write(data)

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:  # a regular file takes it whole; loop only for a short write
            n = os.write(self._fd, view)
            view = view[n:]

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Chunks:
    """Reads a file forward in chunks, keeping only the bytes not yet consumed."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._buf = b""
        self._at = 0  # index in _buf of the first unconsumed byte
        self._pos = 0  # file offset of _buf[_at]
        self._eof = False

    @property
    def offset(self) -> int:
        return self._pos

    def available(self, n: int) -> int:
        """Make up to ``n`` unconsumed bytes available; returns how many are."""
        have = len(self._buf) - self._at
        if have < n and not self._eof:
            parts = [self._buf[self._at :]]
            while have < n:
                more = self._f.read(max(CHUNK, n - have))
                if not more:
                    self._eof = True
                    break
                parts.append(more)
                have += len(more)
            self._buf = b"".join(parts)
            self._at = 0
        return min(n, have)

    def peek(self, n: int) -> bytes:
        return self._buf[self._at : self._at + n]

    def take(self, n: int) -> None:
        n = min(n, len(self._buf) - self._at)
        self._at += n
        self._pos += n


_HEADER_UNPACK_FROM = RECORD_HEADER.unpack_from


def _read_one(chunks: _Chunks) -> tuple[str, Any, int, int]:
    """(status, value, total, have): "ok" with the payload, "eof", "torn", or "corrupt"."""
    # Nearly every record is whole in the buffer already and good: then the checks below come
    # to this, without their method calls and copies. Anything else (short buffer, length over
    # the limit, bad CRC, not msgpack) goes the general way, from the unchanged state.
    buf = chunks._buf
    at = chunks._at
    if len(buf) - at >= 8:
        length, crc = _HEADER_UNPACK_FROM(buf, at)
        total = 8 + length
        if length <= MAX_RECORD and len(buf) - at >= total:
            payload = buf[at + 8 : at + total]
            if _CRC32(payload) == crc:
                try:
                    obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
                except Exception:
                    pass
                else:
                    chunks._at = at + total  # chunks.take(total)
                    chunks._pos += total
                    return "ok", obj, total, total
    return _read_one_general(chunks)


def _read_one_general(chunks: _Chunks) -> tuple[str, Any, int, int]:
    have = chunks.available(RECORD_HEADER.size)
    if have == 0:
        return "eof", None, 0, 0
    if have < RECORD_HEADER.size:
        return "torn", None, RECORD_HEADER.size, have
    length, crc = RECORD_HEADER.unpack(chunks.peek(RECORD_HEADER.size))
    if length > MAX_RECORD:
        return "corrupt", f"length {length} exceeds the limit of {MAX_RECORD} bytes", 0, 0
    total = RECORD_HEADER.size + length
    have = chunks.available(total)
    if have < total:
        found = _payload_before_eof(chunks.peek(have)[RECORD_HEADER.size :], crc)
        if found is not None:  # the bytes are all there: the length field itself is bad
            return (
                "corrupt",
                f"length {length} runs past the end of the file, "
                f"but the {found}-byte payload there has the stored CRC",
                0,
                0,
            )
        return "torn", None, total, have
    payload = chunks.peek(total)[RECORD_HEADER.size :]
    actual = zlib.crc32(payload)
    if actual != crc:
        return "corrupt", f"CRC 0x{actual:08x} != stored 0x{crc:08x}", 0, 0
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several types for bad data
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return "corrupt", f"payload is not msgpack ({what})", 0, 0
    chunks.take(total)
    return "ok", obj, total, total


def _payload_before_eof(rest: bytes, crc: int) -> int | None:
    """Size of a whole msgpack payload at the start of ``rest`` whose CRC is ``crc``, if any.

    A torn record is a prefix of its payload, so no whole msgpack object fits in it;
    finding one that also matches the stored CRC means the length field was damaged.
    """
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(rest) + 1)
    try:
        unpacker.feed(rest)
        unpacker.skip()
    except Exception:
        return None
    size = unpacker.tell()
    return size if zlib.crc32(rest[:size]) == crc else None


class TraceReader:
    """Streams the records of a trace file in constant memory.

    ``header`` raises TraceError if the file is not a trace. Iterating yields
    records until the end or the first bad one; then ``problem`` says which
    (None if the file ended cleanly) and ``records_read`` how many were good.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._header: dict[str, Any] | None = None
        self.problem: TraceProblem | None = None
        self.records_read = 0

    @property
    def header(self) -> dict[str, Any]:
        if self._header is None:
            with self._open() as f:
                self._header = self._read_header(_Chunks(f))
        return self._header

    def _open(self) -> Any:
        try:
            return open(self.path, "rb")  # noqa: SIM115 - closed by the caller's with
        except OSError as exc:
            raise TraceError(f"{self.path}: cannot open: {exc.strerror or exc}") from None

    def _bad_header(self, offset: int, what: str) -> TraceError:
        message = f"{self.path}: {what}"
        return TraceError(message, TraceProblem("bad-header", 0, offset, message))

    def _read_header(self, chunks: _Chunks) -> dict[str, Any]:
        have = chunks.available(len(MAGIC))
        magic = chunks.peek(have)
        if have == 0:
            raise self._bad_header(0, "not a trace: the file is empty")
        if have == len(MAGIC) and magic[:-1] == MAGIC[:-1] and magic[-1] != FORMAT_VERSION:
            raise self._bad_header(
                0,
                f"trace format version {magic[-1]} is not supported (this reader reads {FORMAT_VERSION})",
            )
        if magic != MAGIC:
            raise self._bad_header(0, f"not a trace: starts with {magic!r}, expected {MAGIC!r}")
        chunks.take(len(MAGIC))
        status, value, total, have = _read_one(chunks)
        off = len(MAGIC)
        if status == "eof":
            raise self._bad_header(off, "header record missing: the file ends after the magic")
        if status == "torn":
            raise self._bad_header(off, f"header record torn: {have} of {total} bytes")
        if status == "corrupt":
            raise self._bad_header(off, f"header record at byte {off} is corrupt: {value}")
        if not (
            isinstance(value, list)
            and len(value) == 2
            and value[0] == "header"
            and isinstance(value[1], dict)
        ):
            raise self._bad_header(off, f"header record is not ['header', {{...}}]: {value!r:.80}")
        return value[1]

    def __iter__(self) -> Iterator[TraceRecord]:
        self.problem = None
        self.records_read = 0
        with self._open() as f:
            chunks = _Chunks(f)
            try:
                header = self._read_header(chunks)
            except TraceError as exc:
                self.problem = exc.problem
                return
            self._header = header
            index = 0
            last_seq = -1
            while True:
                offset = chunks.offset
                status, value, total, have = _read_one(chunks)
                if status == "eof":
                    return
                if status == "ok":
                    rec = _record(value)
                    if isinstance(rec, str):
                        status, value = "corrupt", rec
                    elif rec.seq <= last_seq:
                        status = "corrupt"
                        value = f"seq {rec.seq} does not follow seq {last_seq}"
                    else:
                        last_seq = rec.seq
                        index += 1
                        self.records_read = index
                        yield rec
                        continue
                after = f"after record {index - 1}" if index else "after the header"
                if status == "torn":
                    self.problem = TraceProblem(
                        "torn",
                        index,
                        offset,
                        f"torn tail at byte {offset} {after}: {have} of {total} bytes",
                    )
                else:
                    self.problem = TraceProblem(
                        "corrupt",
                        index,
                        offset,
                        f"record {index} at byte {offset} is corrupt: {value}",
                    )
                return


_new = object.__new__
_SET_SEQ, _SET_T, _SET_SRC, _SET_DST, _SET_KIND, _SET_BODY, _SET_WHY, _SET_ID, _SET_REPLY_TO = (
    TraceRecord.__dict__[name].__set__
    for name in FIELDS  # the slots' descriptors
)


def _record(obj: Any) -> TraceRecord | str:
    """A TraceRecord, or what is wrong with the decoded payload."""
    if not isinstance(obj, list) or len(obj) != len(FIELDS):
        return f"not a {len(FIELDS)}-field record: {obj!r:.80}"
    seq, t, src, dst, kind, body, why, id_, reply_to = obj
    if (
        type(seq) is int
        and type(t) is int
        and type(src) is str
        and type(dst) is str
        and type(kind) is str
        and type(body) is dict
        and type(why) is str
        and type(id_) is int
        and type(reply_to) is int
    ):
        # Exactly the types the checks below ask for (an int that is no bool): the record
        # TraceRecord(*obj) makes, its slots set directly (a frozen dataclass's __init__ sets
        # each through object.__setattr__, at twice the cost; every record read comes here).
        rec = _new(TraceRecord)
        _SET_SEQ(rec, seq)
        _SET_T(rec, t)
        _SET_SRC(rec, src)
        _SET_DST(rec, dst)
        _SET_KIND(rec, kind)
        _SET_BODY(rec, body)
        _SET_WHY(rec, why)
        _SET_ID(rec, id_)
        _SET_REPLY_TO(rec, reply_to)
        return rec
    for name, typ, value in zip(FIELDS, _TYPES, obj):
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            return f"field {name} is {type(value).__name__}, expected {typ.__name__}"
    return TraceRecord(*obj)


def read_trace(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], list[TraceRecord], TraceProblem | None]:
    """Header, every good record, and the problem that stopped reading (None if clean).

    Raises TraceError if the file is not a trace or its header is unreadable.
    """
    reader = TraceReader(path)
    header = reader.header
    records = list(reader)
    if reader.problem is not None and reader.problem.kind == "bad-header":
        raise TraceError(reader.problem.message, reader.problem)
    return header, records, reader.problem
