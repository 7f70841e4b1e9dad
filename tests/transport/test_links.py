"""Links and endpoints: frames over memory, Unix sockets and TCP; one bad link never hurts another."""

from __future__ import annotations

import functools
import struct
from pathlib import Path

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from transport.framing import FrameError, encode_frame
from transport.links import (
    Endpoint,
    Link,
    LinkBroken,
    LinkClosed,
    StreamLink,
    memory_link_pair,
    open_tcp_link,
    open_unix_link,
    serve_tcp,
    serve_unix,
)
from transport.messages import Envelope, Kick, Mem, Mmio, Reply
from transport.trace import TraceWriter, read_trace

#: Mock seconds after which a test that waits for nothing is declared hung.
HANG = 60


def kick(i: int, src: str = "a", dst: str = "b") -> Envelope:
    return Envelope(t=i, src=src, dst=dst, msg=Kick(vcpu=i), id=0, why="vgic_kick_vcpu")


def mmio(addr: int) -> Mmio:
    return Mmio(cpu=0, addr=addr, size=4, write=False)


# --- memory links ----------------------------------------------------------------------


async def test_memory_pair_carries_envelopes_both_ways(autojump_clock: trio.abc.Clock) -> None:
    a, b = memory_link_pair("guest", "xen")
    assert (a.name, b.name) == ("guest", "xen")
    with trio.fail_after(HANG):
        await a.send(kick(1))
        await b.send(kick(2, "b", "a"))
        assert await b.receive() == kick(1)
        assert await a.receive() == kick(2, "b", "a")
        await a.aclose()
        with pytest.raises(LinkClosed, match=r"^xen: peer closed the link$"):
            await b.receive()
        with pytest.raises(LinkClosed, match=r"^guest: link closed on this side$"):
            await a.send(kick(3))


async def test_memory_link_reassembles_frames_split_in_raw_chunks(
    autojump_clock: trio.abc.Clock,
) -> None:
    a, b = memory_link_pair("a", "b")
    stream = encode_frame(kick(1)) + encode_frame(kick(2))
    with trio.fail_after(HANG):
        for i in range(0, len(stream), 7):
            await a.send_bytes(stream[i : i + 7])
        assert [await b.receive(), await b.receive()] == [kick(1), kick(2)]


async def test_truncated_frame_then_eof_breaks_the_link(autojump_clock: trio.abc.Clock) -> None:
    a, b = memory_link_pair("a", "b")
    frame = encode_frame(kick(1))
    with trio.fail_after(HANG):
        await a.send_bytes(frame[:10])
        await a.aclose()
        with pytest.raises(LinkBroken) as info:
            await b.receive()
        assert info.value.reason == f"b: frame 0: truncated at EOF: 10 of {len(frame)} bytes"
        # Broken stays broken, with the same reason.
        with pytest.raises(LinkBroken, match="truncated at EOF"):
            await b.receive()


async def test_oversized_header_breaks_without_waiting_for_the_payload(
    autojump_clock: trio.abc.Clock,
) -> None:
    a, b = memory_link_pair("a", "b")
    with trio.fail_after(HANG):
        await a.send_bytes(b"XG\x01\x00" + struct.pack(">I", 1 << 30))
        with pytest.raises(LinkBroken) as info:
            await b.receive()
    assert info.value.reason == (
        "b: frame 0: oversized: length 1073741824 exceeds the limit of 1048576 bytes"
    )


async def test_sending_a_frame_to_a_broken_peer_fails(autojump_clock: trio.abc.Clock) -> None:
    a, b = memory_link_pair("a", "b")
    with trio.fail_after(HANG):
        await a.send_bytes(b"garbage!")
        with pytest.raises(LinkBroken, match=r"^b: frame 0: bad magic b'ga' \(expected b'XG'\)$"):
            await b.receive()
        with pytest.raises(LinkBroken, match=r"^a: send failed: BrokenResourceError$"):
            await a.send(kick(1))
        with pytest.raises(LinkBroken, match=r"^a: send failed"):
            await a.receive()


async def test_an_unencodable_envelope_is_refused_and_the_link_stays_up(
    autojump_clock: trio.abc.Clock,
) -> None:
    a, b = memory_link_pair("a", "b")
    with trio.fail_after(HANG):
        with pytest.raises(FrameError, match=r"^cannot encode Envelope"):
            await a.send(kick(2**64))
        await a.send(kick(1))
        assert await b.receive() == kick(1)


async def _pump(link: Link, got: list[Envelope], trace: TraceWriter) -> str | None:
    """Receive until the link ends, recording each envelope; returns why it ended."""
    while True:
        try:
            e = await link.receive()
        except LinkClosed:
            return None
        except LinkBroken as exc:
            return exc.reason
        got.append(e)
        trace.envelope(e)


async def test_garbage_breaks_only_its_memory_link_and_the_trace_keeps_everything(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    a1, b1 = memory_link_pair("a1", "b1")
    a2, b2 = memory_link_pair("a2", "b2")
    got1: list[Envelope] = []
    got2: list[Envelope] = []
    ended: dict[str, str | None] = {}

    async def pump(name: str, link: Link, got: list[Envelope], trace: TraceWriter) -> None:
        ended[name] = await _pump(link, got, trace)

    with TraceWriter(tmp_path / "run.trace", {"test": "garbage"}, flush_every=3) as trace:
        with trio.fail_after(HANG):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, "b1", b1, got1, trace)
                nursery.start_soon(pump, "b2", b2, got2, trace)
                await a1.send(kick(1, "a1", "b1"))
                await a2.send(kick(2, "a2", "b2"))
                await a1.send_bytes(b"\x00" * 12)  # garbage on link 1
                for i in range(3, 8):
                    await a2.send(kick(i, "a2", "b2"))
                await a2.aclose()
    assert ended == {"b1": "b1: frame 1: bad magic b'\\x00\\x00' (expected b'XG')", "b2": None}
    assert got1 == [kick(1, "a1", "b1")]
    assert got2 == [kick(i, "a2", "b2") for i in (2, 3, 4, 5, 6, 7)]
    header, records, problem = read_trace(tmp_path / "run.trace")
    assert header == {"test": "garbage"} and problem is None
    assert sorted((r.src, r.dst, r.kind, sorted(r.body.items()), r.why) for r in records) == [
        ("a1", "b1", "kick", [("vcpu", 1)], "vgic_kick_vcpu"),
        *[("a2", "b2", "kick", [("vcpu", i)], "vgic_kick_vcpu") for i in (2, 3, 4, 5, 6, 7)],
    ]
    assert len(records) == 7 and [r.seq for r in records] == list(range(7))


# --- Unix sockets --------------------------------------------------------------------------


async def test_garbage_breaks_only_its_unix_link_and_the_server_serves_on(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    path = tmp_path / "xen.sock"
    results: dict[str, str | None] = {}
    received: dict[str, list[Envelope]] = {}

    with TraceWriter(tmp_path / "run.trace", {"test": "unix"}, flush_every=1) as trace:

        async def handler(link: StreamLink) -> None:
            got = received.setdefault(link.name, [])
            results[link.name] = await _pump(link, got, trace)

        with trio.fail_after(HANG):
            async with trio.open_nursery() as nursery:
                started = await nursery.start(serve_unix, path, handler)
                assert started == str(path)
                bad = await open_unix_link(path, "bad")
                good = await open_unix_link(path, "good")
                await bad.send(kick(1, "bad", "xen"))
                await good.send(kick(2, "good", "xen"))
                await bad.send_bytes(b"XG\x07\x00\x00\x00\x00\x01\x00")  # version 7
                # The server closed the bad connection: we see EOF there.
                with pytest.raises(LinkClosed):
                    await bad.receive()
                for i in range(3, 6):
                    await good.send(kick(i, "good", "xen"))
                await good.aclose()
                # A fresh connection after all that is served as usual.
                late = await open_unix_link(path, "late")
                await late.send(kick(9, "late", "xen"))
                await late.aclose()
                while len(results) < 3:
                    await trio.sleep(1)  # mock time: only lets the server tasks run
                nursery.cancel_scope.cancel()
    unix = f"unix:{path}"
    assert results == {
        f"{unix}#0": f"{unix}#0: frame 1: wrong protocol version 7 (expected 1)",
        f"{unix}#1": None,
        f"{unix}#2": None,
    }
    assert received[f"{unix}#0"] == [kick(1, "bad", "xen")]
    assert received[f"{unix}#1"] == [kick(i, "good", "xen") for i in (2, 3, 4, 5)]
    assert received[f"{unix}#2"] == [kick(9, "late", "xen")]
    _, records, problem = read_trace(tmp_path / "run.trace")
    assert problem is None
    assert sorted((r.src, r.body["vcpu"]) for r in records) == [
        ("bad", 1),
        ("good", 2),
        ("good", 3),
        ("good", 4),
        ("good", 5),
        ("late", 9),
    ]
    assert not path.exists()  # the socket file is removed when serving stops


async def test_unix_truncated_frame_at_eof(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    path = tmp_path / "s"
    reasons: list[str | None] = []
    frame = encode_frame(kick(1))

    async def handler(link: StreamLink) -> None:
        reasons.append(await _pump(link, [], trace))

    with TraceWriter(tmp_path / "t", {}) as trace, trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_unix, path, handler)
            link = await open_unix_link(path)
            await link.send_bytes(frame[:-1])
            await link.aclose()
            while not reasons:
                await trio.sleep(1)
            nursery.cancel_scope.cancel()
    assert reasons == [
        f"unix:{path}#0: frame 0: truncated at EOF: {len(frame) - 1} of {len(frame)} bytes"
    ]


async def test_open_unix_link_to_nothing(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    with pytest.raises(LinkBroken) as info:
        await open_unix_link(tmp_path / "none")
    assert info.value.reason == (
        f"cannot connect to unix:{tmp_path / 'none'}: [Errno 2] No such file or directory"
    )


# --- endpoints ---------------------------------------------------------------------------


async def test_requests_get_their_own_replies_out_of_order(autojump_clock: trio.abc.Clock) -> None:
    a, b = memory_link_pair("guest", "bus")
    guest = Endpoint(a, "guest")
    bus = Endpoint(b, "bus")
    waiting: list[Envelope] = []
    answers: dict[int, Envelope] = {}

    async def serve(req: Envelope) -> None:
        waiting.append(req)
        if len(waiting) == 3:  # answer all three, last first
            for r in reversed(waiting):
                assert isinstance(r.msg, Mmio)
                await bus.reply(r, Reply(value=r.msg.addr + 1), t=r.t + 10, why="gicd_read")

    async def ask(addr: int) -> None:
        answers[addr] = await guest.request("bus", mmio(addr), t=addr, why="gic_read_iar")

    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guest.run, _unexpected)
            nursery.start_soon(bus.run, serve)
            async with trio.open_nursery() as asks:
                for addr in (0x100, 0x200, 0x300):
                    asks.start_soon(ask, addr)
            await a.aclose()
    assert sorted(r.id for r in waiting) == [1, 2, 3]
    for addr, rep in answers.items():
        req = next(r for r in waiting if r.msg.addr == addr)  # type: ignore[union-attr]
        assert rep == Envelope(
            t=addr + 10,
            src="bus",
            dst="guest",
            msg=Reply(value=addr + 1),
            reply_to=req.id,
            why="gicd_read",
        )


async def _unexpected(env: Envelope) -> None:
    raise AssertionError(f"unexpected {env}")


async def test_reply_to_unknown_id_is_logged_and_dropped(autojump_clock: trio.abc.Clock) -> None:
    a, b = memory_link_pair("guest", "bus")
    guest = Endpoint(a, "guest")
    bus = Endpoint(b, "bus")

    async def serve(req: Envelope) -> None:
        await bus.send("guest", Reply(value=0xDEAD), t=1, reply_to=999)  # nobody asked
        await bus.reply(req, Reply(value=7), t=2)

    with capture_logs() as logs, trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guest.run, _unexpected)
            nursery.start_soon(bus.run, serve)
            rep = await guest.request("bus", mmio(0), t=0)
            await a.aclose()
    assert rep.msg == Reply(value=7) and rep.reply_to == 1
    assert guest.dropped_replies == 1
    assert [e for e in logs if e["event"] == "reply to unknown id dropped"] == [
        {
            "event": "reply to unknown id dropped",
            "log_level": "warning",
            "endpoint": "guest",
            "reply_to": 999,
            "src": "bus",
            "kind": "reply",
        }
    ]


async def test_broken_link_fails_every_pending_request(autojump_clock: trio.abc.Clock) -> None:
    a, b = memory_link_pair("guest", "bus")
    guest = Endpoint(a, "guest")
    failures: list[str] = []
    seen: list[Envelope] = []

    async def ask(addr: int) -> None:
        with pytest.raises(LinkBroken) as info:
            await guest.request("bus", mmio(addr), t=0)
        failures.append(info.value.reason)

    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guest.run, _unexpected)
            async with trio.open_nursery() as asks:
                asks.start_soon(ask, 1)
                asks.start_soon(ask, 2)
                seen.append(await b.receive())
                seen.append(await b.receive())
                await b.send_bytes(b"XG\x01\x00" + struct.pack(">I", 4) + b"\xc1" * 4)
    reason = "guest: frame 0: undecodable msgpack: MessagePack data is malformed: invalid opcode '\\xc1' (byte 0)"
    assert failures == [reason, reason]
    assert guest.broken == reason
    assert [e.id for e in seen] == [1, 2]
    # A request after the link broke fails at once instead of waiting forever.
    with pytest.raises(LinkBroken, match="undecodable"):
        await guest.request("bus", mmio(3), t=0)


async def test_run_returns_none_on_clean_close_and_pending_requests_see_closed(
    autojump_clock: trio.abc.Clock,
) -> None:
    a, b = memory_link_pair("guest", "bus")
    guest = Endpoint(a, "guest")
    outcome: list[str | None] = []

    async def run() -> None:
        outcome.append(await guest.run(_unexpected))

    async def hang_up() -> None:
        assert (await b.receive()).id == 1  # the request arrived, and is never answered
        await b.aclose()

    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            nursery.start_soon(hang_up)
            with pytest.raises(LinkClosed, match=r"^guest: peer closed the link$"):
                await guest.request("bus", mmio(0), t=0)
    assert outcome == [None]


async def test_handler_may_await_a_request_on_the_same_endpoint(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Xen handling an exit reads guest RAM with a mem request before it answers."""
    a, b = memory_link_pair("guest", "xen")
    guest = Endpoint(a, "guest")
    xen = Endpoint(b, "xen")
    ram = {0x4000: b"\xa2\x01"}

    async def xen_handler(exit_env: Envelope) -> None:
        rd = await xen.request(
            "guest",
            Mem(agent="xen", addr=0x4000, size=2, write=False),
            t=exit_env.t + 1,
            why="update_lpi_property",
        )
        assert isinstance(rd.msg, Reply)
        await xen.reply(exit_env, Reply(value=rd.msg.data[0]), t=rd.t + 1)

    async def guest_handler(req: Envelope) -> None:
        assert isinstance(req.msg, Mem)
        await guest.reply(req, Reply(data=ram[req.msg.addr]), t=req.t)

    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guest.run, guest_handler)
            nursery.start_soon(xen.run, xen_handler)
            rep = await guest.request("xen", Kick(vcpu=0), t=100)
            await a.aclose()
    assert rep.msg == Reply(value=0xA2)
    assert (rep.t, rep.reply_to) == (102, 1)


async def test_cancelled_request_leaves_no_pending_and_its_late_reply_is_dropped(
    autojump_clock: trio.abc.Clock,
) -> None:
    a, b = memory_link_pair("guest", "bus")
    guest = Endpoint(a, "guest")
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guest.run, _unexpected)
            with trio.move_on_after(5) as scope:
                await guest.request("bus", mmio(0), t=0)
            assert scope.cancelled_caught
            req = await b.receive()
            await b.send(Envelope(t=1, src="bus", dst="guest", msg=Reply(value=1), reply_to=req.id))
            await b.aclose()
    assert guest.dropped_replies == 1
    assert guest.broken is None


async def test_tap_sees_every_envelope_received(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    a, b = memory_link_pair("guest", "bus")
    with TraceWriter(tmp_path / "t", {}) as trace:
        guest = Endpoint(a, "guest", tap=trace.envelope)
        got: list[Envelope] = []

        async def handler(e: Envelope) -> None:
            got.append(e)

        with trio.fail_after(HANG):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(guest.run, handler)
                await b.send(kick(1, "bus", "guest"))
                await b.send(Envelope(t=2, src="bus", dst="guest", msg=Reply(), reply_to=77))
                await b.aclose()
    _, records, problem = read_trace(tmp_path / "t")
    assert [(r.kind, r.reply_to) for r in records] == [("kick", 0), ("reply", 77)]
    assert got == [kick(1, "bus", "guest")]


# --- TCP -------------------------------------------------------------------------------


async def test_tcp_on_loopback_port_zero(autojump_clock: trio.abc.Clock) -> None:
    async def handler(link: StreamLink) -> None:
        ep = Endpoint(link, "bus")

        async def serve(req: Envelope) -> None:
            assert isinstance(req.msg, Mmio)
            await ep.reply(req, Reply(value=req.msg.addr ^ 0xFFFF), t=req.t + 1)

        await ep.run(serve)

    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(serve_tcp, None, 0, handler)
            assert host == "127.0.0.1" and port != 0
            link = await open_tcp_link(host, port)
            assert link.name == f"tcp:127.0.0.1:{port}"
            guest = Endpoint(link, "guest")
            nursery.start_soon(guest.run, _unexpected)
            replies = [await guest.request("bus", mmio(a), t=a) for a in (0x10, 0x20)]
            await link.aclose()
            nursery.cancel_scope.cancel()
    assert [(r.msg.value, r.reply_to, r.t) for r in replies] == [  # type: ignore[union-attr]
        (0xFFEF, 1, 0x11),
        (0xFFDF, 2, 0x21),
    ]


async def test_inline_handler_and_direct_call(autojump_clock: trio.abc.Clock) -> None:
    """``run(inline=True)`` answers in the receive loop; ``call`` receives by itself, handing a
    one-way message that arrives first to its handler and dropping a stray reply."""
    a, b = memory_link_pair("guest", "bus")
    guest = Endpoint(a, "guest")
    bus = Endpoint(b, "bus")
    seen: list[Envelope] = []

    async def serve(req: Envelope) -> None:
        assert isinstance(req.msg, Mmio)
        await bus.send("guest", Kick(vcpu=0), t=req.t)  # one-way, before the answer
        await bus.send("guest", Reply(value=0), t=req.t, reply_to=999)  # nobody asked
        await bus.reply(req, Reply(value=req.msg.addr + 1), t=req.t + 10, why="gicd_read")

    async def one_way(env: Envelope) -> None:
        seen.append(env)

    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(bus.run, serve, inline=True))
            with capture_logs() as logs:
                r1 = await guest.call("bus", mmio(0x100), t=5, handler=one_way)
                r2 = await guest.call("bus", mmio(0x200), t=6)
            await a.aclose()
    assert r1.msg == Reply(value=0x101) and r1.reply_to == 1 and r1.t == 15
    assert r2.msg == Reply(value=0x201) and r2.reply_to == 2
    assert [e.kind for e in seen] == ["kick"] and guest.dropped_replies == 2
    assert [x["event"] for x in logs] == [
        "reply to unknown id dropped",
        "envelope dropped: no handler",
        "reply to unknown id dropped",
    ]


async def test_call_while_run_receives_is_refused(autojump_clock: trio.abc.Clock) -> None:
    a, _b = memory_link_pair("guest", "bus")
    guest = Endpoint(a, "guest")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(guest.run, _unexpected)
        await trio.sleep(0.1)
        with pytest.raises(RuntimeError, match="call\\(\\) while run\\(\\) receives"):
            await guest.call("bus", mmio(0x100), t=0)
        nursery.cancel_scope.cancel()
