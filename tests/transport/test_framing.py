"""Frames: exact bytes, round trips of every message, and one-line errors for every bad frame."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transport.strategies import envelopes
from transport.framing import MAX_FRAME, FrameDecoder, FrameError, encode_frame
from transport.messages import (
    MESSAGE_TYPES,
    Bye,
    Entry,
    Envelope,
    Error,
    Exit,
    GicContext,
    Hello,
    Irq,
    Kick,
    Mem,
    Mmio,
    Msi,
    Reply,
    Smccc,
    Sysreg,
)

CTX = GicContext(lrs=(0x50A0_0000_0000_2000,), hcr=1, vmcr=0x00F0_0001, ap1r=(0, 1))
#: One message of every type, each with non-default values, and its plain msgpack map.
EXAMPLES: list[tuple[object, dict[str, object]]] = [
    (
        Hello(role="guest", version=1, scenario_hash="ab12", secret="s"),
        {"kind": "hello", "role": "guest", "version": 1, "scenario_hash": "ab12", "secret": "s"},
    ),
    (Bye(reason="done"), {"kind": "bye", "reason": "done"}),
    (Error(code="EINVAL", text="bad"), {"kind": "error", "code": "EINVAL", "text": "bad"}),
    (
        Reply(value=7, data=b"\xa2\x00", regs=(1, 2), status=-22, error="x"),
        {
            "kind": "reply",
            "value": 7,
            "data": b"\xa2\x00",
            "regs": [1, 2],
            "status": -22,
            "error": "x",
        },
    ),
    (
        Msi(devid=0x10, eventid=3, doorbell=0x0808_0040),
        {"kind": "msi", "devid": 0x10, "eventid": 3, "doorbell": 0x0808_0040},
    ),
    (
        Mmio(cpu=1, addr=0x0808_0000, size=4, write=True, value=0x8000_0001),
        {
            "kind": "mmio",
            "cpu": 1,
            "addr": 0x0808_0000,
            "size": 4,
            "write": True,
            "value": 0x8000_0001,
        },
    ),
    (
        Sysreg(cpu=2, reg="ICC_SGI1R_EL1", write=True, value=2**64 - 1),
        {"kind": "sysreg", "cpu": 2, "reg": "ICC_SGI1R_EL1", "write": True, "value": 2**64 - 1},
    ),
    (
        Smccc(cpu=0, fid=0xC400_0003, args=(1, 0x4000_0000, 0), conduit="smc"),
        {
            "kind": "smccc",
            "cpu": 0,
            "fid": 0xC400_0003,
            "args": [1, 0x4000_0000, 0],
            "conduit": "smc",
        },
    ),
    (Irq(cpu=3, level=True), {"kind": "irq", "cpu": 3, "level": True}),
    (
        Mem(agent="xen", addr=0x4800_0000, size=2, write=True, data=b"\xa2\xa2"),
        {
            "kind": "mem",
            "agent": "xen",
            "addr": 0x4800_0000,
            "size": 2,
            "write": True,
            "data": b"\xa2\xa2",
        },
    ),
    (
        Exit(vcpu=1, reason="hvc", imm=0xEA1, x16=0, regs=(-(2**63), 5), ctx=CTX),
        {
            "kind": "exit",
            "vcpu": 1,
            "reason": "hvc",
            "imm": 0xEA1,
            "x16": 0,
            "regs": [-(2**63), 5],
            "addr": 0,
            "size": 0,
            "write": False,
            "value": 0,
            "reg": "",
            "ctx": [[0x50A0_0000_0000_2000], 1, 0x00F0_0001, [0, 1]],
        },
    ),
    (
        Entry(vcpu=1, regs=(0,), value=9, ctx=CTX),
        {
            "kind": "entry",
            "vcpu": 1,
            "regs": [0],
            "value": 9,
            "ctx": [[0x50A0_0000_0000_2000], 1, 0x00F0_0001, [0, 1]],
        },
    ),
    (Kick(vcpu=31), {"kind": "kick", "vcpu": 31}),
]

KNOWN = "hello, bye, error, reply, msi, mmio, sysreg, smccc, irq, mem, exit, entry, kick"


def env(msg: object, **kw: object) -> Envelope:
    fields = {"t": 1000, "src": "guest", "dst": "xen", "id": 5, "reply_to": 0, "why": "its_init"}
    fields.update(kw)
    return Envelope(msg=msg, **fields)  # type: ignore[arg-type]


def frame_of(payload: bytes, *, magic: bytes = b"XG", version: int = 1, flags: int = 0) -> bytes:
    return magic + bytes([version, flags]) + struct.pack(">I", len(payload)) + payload


def raw_env(msg: dict[str, object]) -> bytes:
    """A frame built with the msgpack library, bypassing our encoder."""
    body = {"t": 0, "src": "a", "dst": "b", "msg": msg}
    return frame_of(msgpack.packb(body, use_bin_type=True))


def decode_all(data: bytes, *, close: bool = True) -> list[Envelope]:
    dec = FrameDecoder()
    dec.feed(data)
    out = []
    while (e := dec.next_envelope()) is not None:
        out.append(e)
    if close:
        dec.close()
        assert dec.next_envelope() is None and dec.finished
    return out


def error_of(data: bytes, *, close: bool = True, max_frame: int = MAX_FRAME) -> str:
    dec = FrameDecoder(max_frame=max_frame)
    with pytest.raises(FrameError) as info:
        dec.feed(data)
        while dec.next_envelope() is not None:
            pass
        if close:
            dec.close()
    # Dead from now on: every call raises the same reason.
    for call in (dec.next_envelope, dec.close, lambda: dec.feed(b"XG")):
        with pytest.raises(FrameError) as again:
            call()
        assert again.value.reason == info.value.reason
    return info.value.reason


# --- exact bytes -------------------------------------------------------------------


def test_kick_frame_exact_bytes_from_the_msgpack_spec() -> None:
    frame = encode_frame(Envelope(t=1, src="a", dst="b", msg=Kick(vcpu=2)))
    payload = (
        b"\x87"  # fixmap, 7 entries
        b"\xa1t\x01"
        b"\xa3src\xa1a"
        b"\xa3dst\xa1b"
        b"\xa3msg\x82\xa4kind\xa4kick\xa4vcpu\x02"
        b"\xa2id\x00"
        b"\xa8reply_to\x00"
        b"\xa3why\xa0"
    )
    assert frame == b"XG\x01\x00\x00\x00\x00\x38" + payload  # 56 payload bytes


@pytest.mark.parametrize("msg,plain", EXAMPLES, ids=[type(m).__name__ for m, _ in EXAMPLES])
def test_every_message_round_trips_and_matches_msgpack(msg: object, plain: dict) -> None:
    e = env(msg)
    frame = encode_frame(e)
    assert frame[:4] == b"XG\x01\x00"
    assert struct.unpack(">I", frame[4:8])[0] == len(frame) - 8
    assert msgpack.unpackb(frame[8:], raw=False) == {
        "t": 1000,
        "src": "guest",
        "dst": "xen",
        "msg": plain,
        "id": 5,
        "reply_to": 0,
        "why": "its_init",
    }
    assert decode_all(frame) == [e]


def test_examples_cover_every_message_type() -> None:
    assert {type(m) for m, _ in EXAMPLES} == set(MESSAGE_TYPES)


def test_plain_msgpack_frame_decodes_with_defaults() -> None:
    [e] = decode_all(
        raw_env({"kind": "mmio", "cpu": 0, "addr": 0x0800_0000, "size": 4, "write": False})
    )
    assert e == Envelope(
        t=0, src="a", dst="b", msg=Mmio(cpu=0, addr=0x0800_0000, size=4, write=False)
    )
    assert e.kind == "mmio"


@settings(max_examples=200, deadline=None)
@given(envelopes())
def test_any_envelope_round_trips(e: Envelope) -> None:
    assert decode_all(encode_frame(e)) == [e]


@settings(max_examples=100, deadline=None)
@given(st.lists(envelopes(), min_size=1, max_size=5), st.data())
def test_frames_split_anywhere_decode_the_same(envs: list[Envelope], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(e) for e in envs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = FrameDecoder()
    out: list[Envelope] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        dec.feed(stream[prev:cut])
        prev = cut
        while (e := dec.next_envelope()) is not None:
            out.append(e)
    dec.close()
    assert out == envs
    assert dec.frames_decoded == len(envs) and dec.finished


def test_need_more_data_returns_none_without_error() -> None:
    frame = encode_frame(env(Kick(vcpu=1)))
    dec = FrameDecoder()
    for b in frame[:-1]:
        dec.feed(bytes([b]))
        assert dec.next_envelope() is None
    assert dec.buffered == len(frame) - 1
    dec.feed(frame[-1:])
    assert dec.next_envelope() == env(Kick(vcpu=1))
    assert dec.buffered == 0


# --- bad frames: one exact line each ------------------------------------------------------


def test_bad_magic_shows_the_bytes() -> None:
    assert error_of(b"GE\x01\x00\x00\x00\x00\x00") == "frame 0: bad magic b'GE' (expected b'XG')"


def test_bad_magic_found_from_two_bytes_without_close() -> None:
    assert error_of(b"\x00\xff", close=False) == "frame 0: bad magic b'\\x00\\xff' (expected b'XG')"


def test_bad_magic_after_good_frames_names_the_frame() -> None:
    good = encode_frame(env(Kick(vcpu=1)))
    assert error_of(good * 2 + b"HTTP/1.1") == "frame 2: bad magic b'HT' (expected b'XG')"


def test_wrong_version() -> None:
    frame = frame_of(b"\x80", version=2)
    assert error_of(frame) == "frame 0: wrong protocol version 2 (expected 1)"


def test_unknown_flags() -> None:
    assert (
        error_of(frame_of(b"\x80", flags=0x80)) == "frame 0: unknown flags 0x80 (none are defined)"
    )


def test_oversized_is_refused_from_the_header_alone() -> None:
    header = b"XG\x01\x00" + (MAX_FRAME + 1).to_bytes(4, "big")
    assert (
        error_of(header, close=False)
        == "frame 0: oversized: length 1048577 exceeds the limit of 1048576 bytes"
    )


def test_oversized_with_a_smaller_limit_but_exact_limit_passes() -> None:
    frame = encode_frame(env(Kick(vcpu=1)))
    size = len(frame) - 8
    dec = FrameDecoder(max_frame=size)
    dec.feed(frame)
    assert dec.next_envelope() == env(Kick(vcpu=1))
    reason = error_of(frame, max_frame=size - 1)
    assert reason == f"frame 0: oversized: length {size} exceeds the limit of {size - 1} bytes"


def test_truncated_payload_at_eof() -> None:
    frame = encode_frame(env(Kick(vcpu=1)))
    n = len(frame)
    assert error_of(frame[:-7]) == f"frame 0: truncated at EOF: {n - 7} of {n} bytes"


def test_truncated_header_at_eof() -> None:
    assert error_of(b"XG\x01\x00\x00") == "frame 0: truncated at EOF: 5 of 8 header bytes"


def test_truncated_after_whole_frames_delivers_them_first() -> None:
    frame = encode_frame(env(Kick(vcpu=1)))
    dec = FrameDecoder()
    dec.feed(frame + frame[:10])
    dec.close()  # a whole frame is still buffered: nothing to complain about yet
    assert dec.next_envelope() == env(Kick(vcpu=1))
    with pytest.raises(FrameError) as info:
        dec.next_envelope()
    assert info.value.reason == f"frame 1: truncated at EOF: 10 of {len(frame)} bytes"


def test_clean_eof_is_not_an_error() -> None:
    dec = FrameDecoder()
    dec.close()
    assert dec.next_envelope() is None
    assert dec.finished


def test_undecodable_msgpack() -> None:
    reason = error_of(frame_of(b"\xc1"))
    assert (
        reason
        == "frame 0: undecodable msgpack: MessagePack data is malformed: invalid opcode '\\xc1' (byte 0)"
    )


def test_empty_payload_is_undecodable() -> None:
    assert error_of(frame_of(b"")) == "frame 0: undecodable msgpack: Input data was truncated"


def test_trailing_bytes_inside_a_frame_are_undecodable() -> None:
    payload = encode_frame(env(Kick(vcpu=1)))[8:] + b"\x00"
    reason = error_of(frame_of(payload))
    assert reason == (
        f"frame 0: undecodable msgpack: MessagePack data is malformed: trailing characters "
        f"(byte {len(payload) - 1})"
    )


def test_wrong_field_type_names_the_path() -> None:
    good = encode_frame(env(Kick(vcpu=1)))
    bad = raw_env({"kind": "mmio", "cpu": 0, "addr": "0x0800_0000", "size": 4, "write": False})
    assert error_of(good * 3 + bad) == "frame 3: Expected `int`, got `str` - at `$.msg.addr`"


def test_missing_field() -> None:
    assert (
        error_of(raw_env({"kind": "irq", "cpu": 0}))
        == "frame 0: Object missing required field `level` - at `$.msg`"
    )


def test_bad_literal_is_a_field_error() -> None:
    bad = raw_env({"kind": "mem", "agent": "dma", "addr": 0, "size": 1, "write": False})
    assert error_of(bad) == "frame 0: Invalid enum value 'dma' - at `$.msg.agent`"


def test_unknown_kind() -> None:
    assert error_of(raw_env({"kind": "vmexit", "vcpu": 0})) == (
        f"frame 0: unknown kind 'vmexit' (known: {KNOWN})"
    )


def test_unknown_field_with_a_newline_stays_one_line() -> None:
    reason = error_of(raw_env({"kind": "kick", "vcpu": 0, "a\nb": 1}))
    assert reason == "frame 0: Object contains unknown field `a\\nb` - at `$.msg`"
    assert "\n" not in reason


def test_not_an_envelope() -> None:
    assert error_of(frame_of(msgpack.packb([1, 2]))) == "frame 0: Expected `object`, got `array`"


def test_int_beyond_64_bits_in_a_frame() -> None:
    # msgpack cannot carry it; a float where an int belongs is a type error.
    bad = raw_env({"kind": "kick", "vcpu": 1.5})
    assert error_of(bad) == "frame 0: Expected `int`, got `float` - at `$.msg.vcpu`"


def test_feeding_after_eof_and_feeding_text() -> None:
    dec = FrameDecoder()
    dec.close()
    with pytest.raises(FrameError, match=r"^frame 0: 2 bytes fed after EOF$"):
        dec.feed(b"XG")
    dec = FrameDecoder()
    with pytest.raises(FrameError, match=r"^frame 0: fed a str, not bytes$"):
        dec.feed("XG")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(envelopes(), max_size=3),
    st.binary(max_size=64),
    st.integers(0, 400),
    st.integers(1, 50),
)
def test_garbage_only_ever_raises_frame_error(
    envs: list[Envelope], garbage: bytes, where: int, chunk: int
) -> None:
    stream = bytearray(b"".join(encode_frame(e) for e in envs))
    where = min(where, len(stream))
    stream[where:where] = garbage
    dec = FrameDecoder()
    try:
        for i in range(0, len(stream), chunk):
            dec.feed(bytes(stream[i : i + chunk]))
            while dec.next_envelope() is not None:
                pass
        dec.close()
        while dec.next_envelope() is not None:
            pass
    except FrameError as exc:
        assert exc.reason.startswith("frame ") and "\n" not in exc.reason


# --- encoding ------------------------------------------------------------------------


def test_encode_refuses_an_oversized_envelope() -> None:
    big = env(Mem(agent="hw", addr=0, size=MAX_FRAME, write=True, data=bytes(MAX_FRAME)))
    with pytest.raises(FrameError) as info:
        encode_frame(big)
    n = len(encode_frame(big, max_frame=2 * MAX_FRAME)) - 8
    assert n > MAX_FRAME
    assert info.value.reason == (
        f"cannot send: envelope encodes to {n} bytes, over the limit of 1048576"
    )


def test_encode_refuses_an_int_msgpack_cannot_carry() -> None:
    with pytest.raises(FrameError) as info:
        encode_frame(env(Kick(vcpu=2**64)))
    assert info.value.reason == (
        "cannot encode Envelope: can't serialize ints < -2**63 or > 2**64 - 1"
    )
