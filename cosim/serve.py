"""``cosim serve ROLE --scenario FILE --listen ADDR | --connect ADDR``: one component, one process.

The component (the host, the guest or a device model, named as in the scenario)
runs on its own scheduler (cosim.distributed.Node) and is driven over one link
by the run that coordinates it: ``--connect`` joins a run that listens (what
``cosim run --processes`` starts its children with), ``--listen`` waits for a
run to connect (a component started by hand, perhaps on another host).

Either way the link opens with ``hello``: protocol version, role, scenario hash
and the run's shared secret (from ``COSIM_SECRET`` or ``--secret-file``; a TCP
listener refuses to start without one). A mismatch is refused with an ``error``
and one line on stderr. Addresses: ``unix:PATH``, ``tcp:HOST:PORT`` (a bare
``HOST:PORT`` is TCP, a bare path with a ``/`` is a Unix socket); a listener
binds loopback unless a host is named.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import msgspec
import structlog
import trio

from cosim.distributed import (
    LINK_MAX_FRAME,
    RUN,
    DistributedError,
    Failed,
    Finish,
    Go,
    Node,
    Ready,
    Rec,
    Records,
    blank_secret,
    check_hello,
    chunks,
    refusal,
    unwrap,
    wrap,
)
from cosim.scenario import ScenarioError, load
from transport.links import LOOPBACK, LinkError, StreamLink
from transport.messages import Envelope, Error, Hello

log = structlog.get_logger("cosim.serve")

#: Environment variable holding the run's shared secret.
SECRET_ENV = "COSIM_SECRET"
#: Seconds a peer has to send its hello (and to answer one).
HANDSHAKE_S = 10.0


class AddressError(ValueError):
    """An address that is not unix:PATH or tcp:HOST:PORT; one line."""


@dataclass(frozen=True)
class Address:
    kind: Literal["unix", "tcp"]
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"tcp:{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """``unix:PATH``, ``tcp:HOST:PORT``, ``HOST:PORT`` or a path containing ``/``."""
    if text.startswith("unix:"):
        if not text[5:]:
            raise AddressError(f"address {text!r}: unix: needs a path")
        return Address("unix", path=text[5:])
    rest = text.removeprefix("tcp:")
    if rest == text and "/" in text:
        return Address("unix", path=text)
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise AddressError(f"address {text!r}: expected unix:PATH or tcp:HOST:PORT")
    return Address("tcp", host=host.strip("[]") or LOOPBACK, port=int(port))


async def connect(addr: Address, name: str) -> StreamLink:
    """Open a link to ``addr`` (LinkError if nobody listens there)."""
    try:
        if addr.kind == "unix":
            stream: trio.abc.Stream = await trio.open_unix_socket(addr.path)
        else:
            stream = await trio.open_tcp_stream(addr.host, addr.port)
    except OSError as exc:
        from transport.links import LinkBroken

        raise LinkBroken(f"cannot connect to {addr}: {exc.strerror or exc}") from None
    return StreamLink(stream, name, max_frame=LINK_MAX_FRAME)


async def listen(
    addr: Address,
    handler: Any,
    *,
    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on ``addr``; ``handler(link)`` for each, in its own task.

    The link is closed when the handler returns (trio.serve_listeners).
    ``task_status.started`` gets the address actually bound (the port of tcp:...:0).
    """
    if addr.kind == "unix":
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            raw.bind(addr.path)
            raw.listen(16)
        except BaseException:
            raw.close()
            raise
        listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(raw))]
        bound = addr
    else:
        listeners = await trio.open_tcp_listeners(addr.port, host=addr.host or LOOPBACK)
        host, port = listeners[0].socket.getsockname()[:2]
        bound = Address("tcp", host=host, port=port)
    count = 0

    async def one(stream: trio.abc.Stream) -> None:
        nonlocal count
        count += 1
        await handler(StreamLink(stream, f"{bound}#{count}", max_frame=LINK_MAX_FRAME))

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, one, listeners)
            task_status.started(bound)
    finally:
        for lst in listeners:
            with contextlib.suppress(Exception):
                await lst.aclose()
        if addr.kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(addr.path)


def one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("\n", " ").strip()


# --- the component's side of a run --------------------------------------------------------


async def drive(link: StreamLink, node: Node) -> int:
    """Run ``node`` for the run at the other end of ``link`` until Finish (0) or the end of it."""
    me = node.name

    async def send(ctl: Any) -> None:
        await link.send(wrap(me, RUN, ctl))

    async def send_records(records: list[Rec]) -> list[Rec]:
        """Send all but the last chunk ahead; the last goes with the message that ends the step."""
        parts = chunks(records)
        for part in parts[:-1]:
            await send(Records(part))
        return parts[-1] if parts else []

    try:
        ready = node.start()
        last = await send_records(ready.records)
        await send(Ready(last, ready.outbox, ready.next, ready.pid))
        while True:
            ctl = unwrap(await link.receive())
            if isinstance(ctl, Go):
                records, done = node.go(ctl)
                last = await send_records(records)
                await send(msgspec.structs.replace(done, records=last))
            elif isinstance(ctl, Finish):
                await send(node.finish(ctl))
                await link.aclose()
                return 0
            else:
                raise DistributedError(f"unexpected {type(ctl).__name__} from the run")
    except LinkError as exc:
        log.info("link ended", component=me, reason=exc.reason)
        return 1
    except DistributedError:
        raise
    except Exception as exc:  # the component crashed: say so on the link, then die
        text = f"{type(exc).__name__}: {one_line(exc)}"
        with contextlib.suppress(LinkError, Exception):
            await send(Failed(text))
        raise DistributedError(f"{me} crashed: {text}") from exc


async def _handshake_reply(link: StreamLink) -> Envelope:
    with trio.move_on_after(HANDSHAKE_S):
        return await link.receive()
    raise DistributedError(f"no answer to hello within {HANDSHAKE_S:g} s")


async def serve_connect(node: Node, addr: Address, secret: str) -> int:
    """Join the run listening at ``addr`` as ``node``'s component."""
    from cosim.distributed import hello

    link = await connect(addr, f"{node.name}->{addr}")
    async with link:
        await link.send(hello(node.name, node.sc.sha256, secret))
        env = await _handshake_reply(link)
        if isinstance(env.msg, Error):
            raise DistributedError(f"refused by the run at {addr}: {env.msg.text}")
        if not isinstance(env.msg, Hello):
            raise DistributedError(f"the run at {addr} answered hello with {env.kind}")
        return await drive(link, node)


async def serve_listen(
    node: Node, addr: Address, secret: str, out: TextIO, *, host_given: bool = False
) -> int:
    """Wait at ``addr`` for a run to connect (refusing any other peer), then serve it once."""
    result: list[int] = []

    async def handler(link: StreamLink) -> None:
        async with link:
            try:
                with trio.move_on_after(HANDSHAKE_S):
                    env = await link.receive()
                    why = check_hello(env, scenario_hash=node.sc.sha256, secret=secret, roles={RUN})
                    if why is None and result:
                        why = ("busy", f"{node.name} already serves a run")
                    if why is not None:
                        log.warning(
                            "refused", component=node.name, peer=link.name, reason=why[1],
                            hello=str(blank_secret(env.msg)),
                        )  # fmt: skip
                        print(f"cosim serve: refused {link.name}: {why[1]}", file=sys.stderr)
                        await link.send(refusal(why[0], why[1], env.src))
                        return
                    result.append(-1)
                    await link.send(
                        Envelope(
                            t=0,
                            src=node.name,
                            dst=RUN,
                            msg=Hello(role=node.name, scenario_hash=node.sc.sha256),
                        )
                    )
            except LinkError as exc:
                log.warning("refused", component=node.name, peer=link.name, reason=exc.reason)
                return
            if result and result[-1] == -1:
                result[-1] = await drive(link, node)
                nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        bound = await nursery.start(listen, addr, handler)
        print(f"cosim serve: {node.name} listening on {bound}", file=out, flush=True)
    return result[-1] if result else 1


def read_secret(secret_file: str | None) -> str:
    if secret_file:
        try:
            with open(secret_file, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as exc:
            raise DistributedError(f"--secret-file {secret_file}: {exc.strerror or exc}") from None
    return os.environ.get(SECRET_ENV, "")


def main(
    role: str,
    scenario: str,
    *,
    listen_addr: str | None = None,
    connect_addr: str | None = None,
    secret_file: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if (listen_addr is None) == (connect_addr is None):
        err.write("cosim serve: give exactly one of --listen ADDR and --connect ADDR\n")
        return 2
    try:
        addr = parse_address(listen_addr or connect_addr or "")
        secret = read_secret(secret_file)
        if listen_addr is not None and addr.kind == "tcp" and not secret:
            raise DistributedError(
                f"listening on {addr} needs the run's shared secret ({SECRET_ENV} or --secret-file)"
            )
        node = Node(load(scenario), role)
    except (AddressError, ScenarioError, DistributedError) as exc:
        err.write(f"cosim serve: {one_line(exc)}\n")
        return 2
    try:
        if connect_addr is not None:
            return trio.run(serve_connect, node, addr, secret)
        return trio.run(serve_listen, node, addr, secret, out)
    except (DistributedError, LinkError) as exc:
        err.write(f"cosim serve: {node.name}: {one_line(exc)}\n")
        return 1
    except KeyboardInterrupt:
        return 130
