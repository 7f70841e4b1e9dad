"""Links carry frames between two components; an Endpoint matches requests to replies.

A :class:`Link` moves whole :class:`Envelope` values, always through
:func:`encode_frame` and a :class:`FrameDecoder` so every hop exercises the
framing: in memory (:func:`memory_link_pair`, trio memory channels of bytes),
over a Unix socket or TCP (:class:`StreamLink`). A malformed frame or an I/O
error breaks that one link (:class:`LinkBroken` naming why, the stream is
closed); a clean EOF is :class:`LinkClosed`. Trio only moves bytes here: the
logic of who answers what lives in the cores.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket as _socket
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import trio

from transport.framing import MAX_FRAME, FrameDecoder, FrameError, encode_frame
from transport.messages import Envelope, Message

log = structlog.get_logger("transport.links")

#: Bytes asked of a stream per receive.
RECEIVE_SIZE = 65536
#: Address a TCP server listens on unless told otherwise: loopback only.
LOOPBACK = "127.0.0.1"


class LinkError(Exception):
    """Base of the link errors; ``reason`` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LinkClosed(LinkError):
    """The link ended cleanly (EOF at a frame boundary, or it was closed on this side)."""


class LinkBroken(LinkError):
    """The link ended badly: a malformed frame, an I/O error, or the peer vanished mid-way."""


class Link(ABC):
    """One end of a bidirectional envelope link.

    One task at a time may call ``receive``; ``send`` may be called from many
    tasks (sends are serialised so frames never interleave).
    """

    name: str

    @abstractmethod
    async def send(self, env: Envelope) -> None:
        """Send one envelope (LinkClosed / LinkBroken if the link is gone).

        FrameError if the envelope itself cannot be encoded or is over max_frame;
        nothing is sent then and the link stays up.
        """

    @abstractmethod
    async def send_bytes(self, data: bytes) -> None:
        """Send raw bytes as they are: for fault injection and tests of the framing."""

    @abstractmethod
    async def receive(self) -> Envelope:
        """Next envelope; LinkClosed at clean EOF, LinkBroken(reason) on a bad frame or I/O error."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close this end; the peer sees EOF. Idempotent."""

    async def __aenter__(self) -> Link:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class _FramedLink(Link):
    """Shared receive logic: bytes in, FrameDecoder, envelopes out; remembers how it ended."""

    #: A cancelled send either sent the whole frame or nothing (memory channels).
    _atomic_send = False

    def __init__(self, name: str, max_frame: int) -> None:
        self.name = name
        self.max_frame = max_frame
        self._decoder = FrameDecoder(max_frame=max_frame)
        self._ended: LinkError | None = None  # set once the link is closed or broken
        self._send_lock = trio.Lock()

    @abstractmethod
    async def _receive_some(self) -> bytes:
        """Next chunk of bytes; b"" at EOF. May raise trio / OS errors."""

    @abstractmethod
    async def _send_some(self, data: bytes) -> None:
        """Send all of ``data``. May raise trio / OS errors."""

    @abstractmethod
    async def _close_transport(self) -> None:
        """Close the underlying transport, forcefully (never blocks)."""

    def _raise_if_ended(self) -> None:
        if self._ended is not None:
            raise type(self._ended)(self._ended.reason)

    async def _break(self, reason: str) -> LinkBroken:
        if self._ended is None:
            self._ended = LinkBroken(reason)
            log.warning("link broken", link=self.name, reason=reason)
        await self._close_transport()
        return LinkBroken(self._ended.reason)

    async def send(self, env: Envelope) -> None:
        # An envelope that cannot be encoded raises FrameError here: the link stays up.
        await self.send_bytes(encode_frame(env, max_frame=self.max_frame))

    async def send_bytes(self, data: bytes) -> None:
        lock = self._send_lock
        try:
            # Uncontended, skip the lock's own checkpoint (the send itself has one): one
            # pass of trio's scheduler less per frame.
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            await self._send_locked(data)
        finally:
            lock.release()

    async def _send_locked(self, data: bytes) -> None:
        self._raise_if_ended()
        try:
            await self._send_some(data)
        except trio.ClosedResourceError:
            raise LinkClosed(f"{self.name}: link closed on this side") from None
        except (trio.BrokenResourceError, trio.EndOfChannel, OSError) as exc:
            raise await self._break(f"{self.name}: send failed: {_describe(exc)}") from None
        except BaseException:
            if self._atomic_send:
                raise
            # Cancelled mid-send: the peer may hold half a frame; the stream is unusable.
            if self._ended is None:
                self._ended = LinkBroken(f"{self.name}: a send was cancelled mid-frame")
            with trio.CancelScope(shield=True):
                await self._close_transport()
            raise

    async def receive(self) -> Envelope:
        self._raise_if_ended()
        while True:
            try:
                env = self._decoder.next_envelope()
                if env is not None:
                    return env
                if self._decoder.finished:
                    self._ended = LinkClosed(f"{self.name}: peer closed the link")
                    await self._close_transport()
                    raise LinkClosed(self._ended.reason)
                try:
                    data = await self._receive_some()
                except trio.ClosedResourceError:
                    if self._ended is not None:
                        self._raise_if_ended()
                    raise LinkClosed(f"{self.name}: link closed on this side") from None
                except (trio.BrokenResourceError, OSError) as exc:
                    raise await self._break(
                        f"{self.name}: receive failed: {_describe(exc)}"
                    ) from None
                if data:
                    self._decoder.feed(data)
                else:
                    self._decoder.close()
            except FrameError as exc:
                raise await self._break(f"{self.name}: {exc.reason}") from None

    async def aclose(self) -> None:
        if self._ended is None:
            self._ended = LinkClosed(f"{self.name}: link closed on this side")
        await self._close_transport()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("\n", " ")


# --- in memory ---------------------------------------------------------------


class MemoryLink(_FramedLink):
    """One end of an in-memory link: frames as bytes over a pair of trio memory channels."""

    _atomic_send = True

    def __init__(
        self,
        name: str,
        tx: trio.MemorySendChannel[bytes],
        rx: trio.MemoryReceiveChannel[bytes],
        max_frame: int = MAX_FRAME,
    ) -> None:
        super().__init__(name, max_frame)
        self._tx = tx
        self._rx = rx

    async def _receive_some(self) -> bytes:
        try:
            return await self._rx.receive()
        except trio.EndOfChannel:
            return b""

    async def _send_some(self, data: bytes) -> None:
        await self._tx.send(bytes(data))

    async def _close_transport(self) -> None:
        self._tx.close()
        self._rx.close()


def memory_link_pair(
    name_a: str, name_b: str, max_buffer: int | float = 256, *, max_frame: int = MAX_FRAME
) -> tuple[MemoryLink, MemoryLink]:
    """Two connected link ends named ``name_a`` and ``name_b``; ``max_buffer`` chunks in flight each way."""
    a_tx, b_rx = trio.open_memory_channel[bytes](max_buffer)
    b_tx, a_rx = trio.open_memory_channel[bytes](max_buffer)
    return MemoryLink(name_a, a_tx, a_rx, max_frame), MemoryLink(name_b, b_tx, b_rx, max_frame)


# --- over a trio Stream (Unix socket, TCP) ------------------------------------------


class StreamLink(_FramedLink):
    """A link over any trio Stream (a Unix or TCP socket)."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        name: str,
        *,
        max_frame: int = MAX_FRAME,
        receive_size: int = RECEIVE_SIZE,
    ) -> None:
        super().__init__(name, max_frame)
        self.stream = stream
        self.receive_size = receive_size

    async def _receive_some(self) -> bytes:
        return bytes(await self.stream.receive_some(self.receive_size))

    async def _send_some(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _close_transport(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def open_unix_link(path: str | os.PathLike[str], name: str | None = None) -> StreamLink:
    """Connect to a Unix socket served by :func:`serve_unix`."""
    path = os.fspath(path)
    try:
        stream = await trio.open_unix_socket(path)
    except OSError as exc:
        raise LinkBroken(f"cannot connect to unix:{path}: {_describe(exc)}") from None
    return StreamLink(stream, name or f"unix:{path}")


async def open_tcp_link(host: str, port: int, name: str | None = None) -> StreamLink:
    """Connect over TCP to a server of :func:`serve_tcp`."""
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise LinkBroken(f"cannot connect to tcp:{host}:{port}: {_describe(exc)}") from None
    return StreamLink(stream, name or f"tcp:{host}:{port}")


LinkHandler = Callable[[StreamLink], Awaitable[Any]]


def _serving(handler: LinkHandler, prefix: str) -> Callable[[trio.abc.Stream], Awaitable[None]]:
    counter = itertools.count()

    async def serve_one(stream: trio.abc.Stream) -> None:
        link = StreamLink(stream, f"{prefix}#{next(counter)}")
        try:
            await handler(link)
        except LinkError as exc:  # one bad peer ends its own connection, never the server
            log.warning("connection ended", link=link.name, reason=exc.reason)
        finally:
            await link.aclose()

    return serve_one


async def serve_unix(
    path: str | os.PathLike[str],
    handler: LinkHandler,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on a Unix socket at ``path`` and run ``handler(link)`` per connection.

    ``task_status.started(path)`` once listening; the socket file is removed on exit.
    A LinkError escaping a handler ends only that connection.
    """
    path = os.fspath(path)
    # Bound here, not with trio's bind (which runs in a thread): a local filesystem
    # operation, and no thread keeps a MockClock from telling idle from busy.
    raw = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        raw.bind(path)
        raw.listen(128)
    except BaseException:
        raw.close()
        raise
    sock = trio.socket.from_stdlib_socket(raw)
    await trio.lowlevel.checkpoint()
    try:
        listener = trio.SocketListener(sock)
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, _serving(handler, f"unix:{path}"), [listener])
            task_status.started(path)
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


async def serve_tcp(
    host: str | None,
    port: int,
    handler: LinkHandler,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on TCP ``host:port`` (None or "" means loopback, never all interfaces).

    ``task_status.started((host, port))`` with the port actually bound (useful with port 0).
    """
    host = host or LOOPBACK
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            trio.serve_listeners, _serving(handler, f"tcp:{host}:{bound[1]}"), listeners
        )
        task_status.started((bound[0], bound[1]))


# --- request / reply -----------------------------------------------------------------


class _Pending:
    __slots__ = ("event", "reply", "error")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: Envelope | None = None
        self.error: LinkError | None = None


Handler = Callable[[Envelope], Awaitable[Any]]


class Endpoint:
    """A named party on a link: one-way sends, requests matched to replies, a handler loop.

    ``run(handler)`` must be running (in a nursery) for ``request`` to get its
    reply. It receives every envelope: replies (``reply_to`` != 0) wake the
    matching ``request``; everything else goes to ``handler`` one at a time, in
    arrival order, from a separate task, so a handler may itself await a
    request on this endpoint. A reply to an unknown id is logged and dropped.
    ``tap``, if given, sees every received envelope first (e.g. a trace writer).

    Two cheaper forms for the simple cases (each saves a task switch per message):
    ``run(handler, inline=True)`` awaits the handler in the receive loop itself (a
    handler that never awaits a request on this endpoint: its reply could not be
    received); ``call`` is a request made without ``run``, receiving on the link
    until its reply comes.
    """

    def __init__(
        self, link: Link, name: str, *, tap: Callable[[Envelope], object] | None = None
    ) -> None:
        self.link = link
        self.name = name
        self.tap = tap
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._ended: LinkError | None = None
        #: Why the link broke (None while up or after a clean close).
        self.broken: str | None = None
        self.dropped_replies = 0
        self._running = False

    def envelope(
        self, dst: str, msg: Message, t: int, why: str = "", *, id: int = 0, reply_to: int = 0
    ) -> Envelope:
        return Envelope(t=t, src=self.name, dst=dst, msg=msg, id=id, reply_to=reply_to, why=why)

    async def send(
        self, dst: str, msg: Message, t: int, why: str = "", *, id: int = 0, reply_to: int = 0
    ) -> Envelope:
        """Send a one-way message; returns the envelope sent."""
        env = self.envelope(dst, msg, t, why, id=id, reply_to=reply_to)
        await self.link.send(env)
        return env

    async def reply(self, to: Envelope, msg: Message, t: int, why: str = "") -> Envelope:
        """Answer ``to`` (a request) with ``msg``."""
        return await self.send(to.src, msg, t, why, reply_to=to.id)

    async def request(self, dst: str, msg: Message, t: int, why: str = "") -> Envelope:
        """Send ``msg`` with a fresh nonzero id and wait for the envelope whose reply_to is it."""
        if self._ended is not None:
            raise type(self._ended)(self._ended.reason)
        rid = next(self._ids)
        pending = self._pending[rid] = _Pending()
        try:
            await self.send(dst, msg, t, why, id=rid)
            await pending.event.wait()
        finally:
            del self._pending[rid]
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        return pending.reply

    async def call(
        self, dst: str, msg: Message, t: int, why: str = "", *, handler: Handler | None = None
    ) -> Envelope:
        """``request`` without ``run``: send, then receive on the link until the reply.

        Envelopes that are not the reply go to ``handler`` (awaited at once) or, without
        one, are logged and dropped; a link that ends raises its LinkError.
        """
        if self._running:
            raise RuntimeError(f"{self.name}: call() while run() receives on the link")
        if self._ended is not None:
            raise type(self._ended)(self._ended.reason)
        rid = next(self._ids)
        await self.send(dst, msg, t, why, id=rid)
        while True:
            try:
                env = await self.link.receive()
            except LinkError as exc:
                self._end(exc)
                raise
            if self.tap is not None:
                self.tap(env)
            if env.reply_to == rid:
                return env
            if env.reply_to:
                self._drop_reply(env)
            elif handler is not None:
                await handler(env)
            else:
                log.warning("envelope dropped: no handler", endpoint=self.name, kind=env.kind)

    async def run(self, handler: Handler, *, inline: bool = False) -> str | None:
        """Receive until the link ends; returns None on a clean close, the reason if it broke.

        Either way every pending request fails (LinkClosed or LinkBroken); envelopes
        already received are still given to ``handler`` before this returns. ``inline``:
        the handler runs in the receive loop (it must not await a request here).
        """
        self._running = True
        try:
            if inline:
                await self._receive_loop(lambda env: self._handle(handler, env))
                return self.broken
            return await self._run_dispatched(handler)
        finally:
            self._running = False

    async def _run_dispatched(self, handler: Handler) -> str | None:
        tx, rx = trio.open_memory_channel[Envelope](math.inf)

        async def dispatch() -> None:
            async with rx:
                async for env in rx:
                    await self._handle(handler, env)

        async def queue(env: Envelope) -> None:
            tx.send_nowait(env)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(dispatch)
            async with tx:
                await self._receive_loop(queue)
        return self.broken

    async def _receive_loop(self, deliver: Handler) -> None:
        while True:
            try:
                env = await self.link.receive()
            except LinkError as exc:
                self._end(exc)
                return
            if self.tap is not None:
                self.tap(env)
            if env.reply_to:
                pending = self._pending.get(env.reply_to)
                if pending is None or pending.event.is_set():
                    self._drop_reply(env)
                    continue
                pending.reply = env
                pending.event.set()
            else:
                await deliver(env)

    async def _handle(self, handler: Handler, env: Envelope) -> None:
        try:
            await handler(env)
        except LinkError as exc:  # a dead link ends that exchange, not the loop
            log.warning(
                "handler ended by a link error",
                endpoint=self.name,
                kind=env.kind,
                reason=exc.reason,
            )

    def _drop_reply(self, env: Envelope) -> None:
        self.dropped_replies += 1
        log.warning(
            "reply to unknown id dropped",
            endpoint=self.name,
            reply_to=env.reply_to,
            src=env.src,
            kind=env.kind,
        )

    def _end(self, exc: LinkError) -> None:
        self._ended = exc
        if isinstance(exc, LinkBroken):
            self.broken = exc.reason
        for pending in self._pending.values():
            if not pending.event.is_set():
                pending.error = type(exc)(exc.reason)
                pending.event.set()
