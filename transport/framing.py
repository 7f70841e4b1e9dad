"""Frames on the wire: an 8-byte header, then one msgpack-encoded :class:`Envelope`.

Layout of one frame (all sizes in bytes)::

    0  2  magic    b"XG"
    2  1  version  PROTOCOL_VERSION (u8)
    3  1  flags    u8, no flag is defined: sent as 0, anything else is refused
    4  4  length   u32 big-endian, payload bytes that follow (<= the receiver's max_frame)
    8  n  payload  msgspec msgpack encoding of transport.messages.Envelope

The header is checked (magic as soon as 2 bytes are in, version at 3, flags at
4, length at 8) before a payload byte is decoded, so garbage or an oversized
length is refused without buffering it. :class:`FrameDecoder` is sans-I/O in
the style of h11: feed it bytes, pull envelopes out. Every problem is a
:class:`FrameError` whose ``reason`` is one line starting ``frame N`` (N counts
the frames of this decoder from 0); after one, the decoder is dead and every
further call raises the same error.
"""

from __future__ import annotations

import struct
from typing import NoReturn

import msgspec

from transport.messages import KINDS, PROTOCOL_VERSION, Envelope

MAGIC = b"XG"
HEADER = struct.Struct(">2sBBI")
HEADER_SIZE = HEADER.size  # 8
#: Largest payload a decoder accepts by default (1 MiB).
MAX_FRAME = 1 << 20
#: Flags defined by this protocol version (none).
KNOWN_FLAGS = 0x00

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(type=Envelope)
# Compact the receive buffer once this many consumed bytes sit in front of it.
_COMPACT_AT = 1 << 16


class FrameError(Exception):
    """A frame that cannot be accepted; ``reason`` is one line naming what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_frame(env: Envelope, *, max_frame: int = MAX_FRAME) -> bytes:
    """Header plus msgpack payload of ``env``; FrameError if it cannot be encoded or is too big."""
    try:
        payload = _ENCODER.encode(env)
    except (msgspec.EncodeError, OverflowError, TypeError, ValueError) as exc:
        raise FrameError(f"cannot encode {type(env).__name__}: {exc}") from None
    if len(payload) > max_frame:
        raise FrameError(
            f"cannot send: envelope encodes to {len(payload)} bytes, over the limit of {max_frame}"
        )
    return HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, len(payload)) + payload


class FrameDecoder:
    """Incremental frame decoder: ``feed`` bytes, ``next_envelope`` until None, ``close`` at EOF.

    ``close()`` (alias ``eof()``) raises at once when what is buffered is only a
    partial frame; whole frames still buffered are handed out first and the
    truncation is raised when ``next_envelope`` reaches it. After EOF with an
    empty buffer, ``next_envelope`` returns None and :attr:`finished` is True.
    """

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._off = 0  # start of the current (not yet decoded) frame in _buf
        self._frame = 0  # index of the current frame
        self._eof = False
        self._error: str | None = None

    @property
    def frames_decoded(self) -> int:
        return self._frame

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out as an envelope."""
        return len(self._buf) - self._off

    @property
    def finished(self) -> bool:
        """EOF was seen and every byte before it was a whole frame already handed out."""
        return self._eof and self._error is None and self.buffered == 0

    @property
    def error(self) -> str | None:
        """The reason the decoder died, if it did."""
        return self._error

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes (no decoding happens here)."""
        self._check_alive()
        if self._eof:
            self._fail(f"frame {self._frame}: {len(data)} bytes fed after EOF")
        try:
            self._buf += data
        except TypeError:
            self._fail(f"frame {self._frame}: fed a {type(data).__name__}, not bytes")

    def close(self) -> None:
        """The peer finished sending; raise FrameError if only a partial frame is buffered."""
        self._check_alive()
        self._eof = True
        if self.buffered and self._whole_frame_length() is None:
            self._truncated()

    eof = close

    def next_envelope(self) -> Envelope | None:
        """The next whole envelope, or None if more bytes are needed (or EOF was clean)."""
        self._check_alive()
        length = self._whole_frame_length()
        if length is None:
            if self._eof and self.buffered:
                self._truncated()
            return None
        start = self._off + HEADER_SIZE
        payload = bytes(self._buf[start : start + length])
        env = self._decode(payload)
        self._off = start + length
        self._frame += 1
        if self._off >= _COMPACT_AT or self._off == len(self._buf):
            del self._buf[: self._off]
            self._off = 0
        return env

    # -- internals -----------------------------------------------------------

    def _check_alive(self) -> None:
        if self._error is not None:
            raise FrameError(self._error)

    def _fail(self, reason: str) -> NoReturn:
        # One line whatever the peer put in its field names or values.
        reason = reason.replace("\r", "\\r").replace("\n", "\\n")
        self._error = reason
        raise FrameError(reason)

    def _whole_frame_length(self) -> int | None:
        """Check what header bytes there are; the payload length if the whole frame is in."""
        have = self.buffered
        off = self._off
        buf = self._buf
        n = self._frame
        if have >= 2 and buf[off : off + 2] != MAGIC:
            self._fail(f"frame {n}: bad magic {bytes(buf[off : off + 2])!r} (expected {MAGIC!r})")
        if have >= 3 and buf[off + 2] != PROTOCOL_VERSION:
            self._fail(
                f"frame {n}: wrong protocol version {buf[off + 2]} (expected {PROTOCOL_VERSION})"
            )
        if have >= 4 and buf[off + 3] & ~KNOWN_FLAGS:
            self._fail(f"frame {n}: unknown flags 0x{buf[off + 3]:02x} (none are defined)")
        if have < HEADER_SIZE:
            return None
        (length,) = struct.unpack_from(">I", buf, off + 4)
        if length > self.max_frame:
            self._fail(
                f"frame {n}: oversized: length {length} exceeds the limit of {self.max_frame} bytes"
            )
        if have < HEADER_SIZE + length:
            return None
        return length

    def _truncated(self) -> NoReturn:
        have = self.buffered
        n = self._frame
        if have < HEADER_SIZE:
            self._fail(f"frame {n}: truncated at EOF: {have} of {HEADER_SIZE} header bytes")
        (length,) = struct.unpack_from(">I", self._buf, self._off + 4)
        self._fail(f"frame {n}: truncated at EOF: {have} of {HEADER_SIZE + length} bytes")

    def _decode(self, payload: bytes) -> Envelope:
        n = self._frame
        try:
            return _DECODER.decode(payload)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if text.startswith("Invalid value") and text.endswith("- at `$.msg.kind`"):
                value = text[len("Invalid value ") : -len(" - at `$.msg.kind`")]
                self._fail(f"frame {n}: unknown kind {value} (known: {', '.join(KINDS)})")
            self._fail(f"frame {n}: {text}")
        except msgspec.DecodeError as exc:
            self._fail(f"frame {n}: undecodable msgpack: {exc}")
        except Exception as exc:  # pragma: no cover - msgspec raises only the two above
            self._fail(f"frame {n}: undecodable: {type(exc).__name__}: {exc}")
