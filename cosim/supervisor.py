"""``cosim run SCENARIO --processes [--tcp]``: every component in its own supervised OS process.

The parent listens (a Unix socket in a private directory, or TCP on 127.0.0.1),
starts one ``cosim serve ROLE --connect ADDR`` per component with the run's
shared secret in its environment, each in its own process group, and accepts
exactly those roles (hello: version, secret, scenario hash, role; anyone else
is refused with an ``error``, logged, and never reaches a component). Then it
drives them window by window (cosim.distributed.Coordinator: every process with
an event in the window runs at once), merges each window's trace records by
event key, which is the in-process order, and assembles the result object from
the parts they send at the end.

Supervision: every child has a watcher task in the run's nursery. A child that
exits early, crashes, breaks its link or makes no progress within the deadline
ends the run: the links to the others are closed (they exit at once), whatever
is still alive after a grace of one second has its process group killed, every
child is reaped, the trace so far is flushed, and the report names the dead
component and its last trace record (exit status 3).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgpack
import msgspec
import structlog
import trio

import cosim
from cosim.distributed import (
    RUN,
    Coordinator,
    DistributedError,
    Done,
    Failed,
    Finish,
    Part,
    Ready,
    Rec,
    RecordMerge,
    Records,
    assemble,
    blank_secret,
    build,
    check_distributable,
    check_hello,
    components,
    end_keys,
    hello,
    refusal,
    resolve_role,
    unwrap,
    wrap,
    write_records,
)
from cosim.faults import ProcessFaults, process_rules
from cosim.progress import sim_progress
from cosim.run import result_log, trace_header
from cosim.scenario import Scenario, ScenarioError
from cosim.serve import (
    SECRET_ENV,
    Address,
    AddressError,
    connect,
    listen,
    one_line,
    parse_address,
    read_secret,
)
from transport.links import LinkError, StreamLink
from transport.messages import Envelope, Error, Hello
from transport.trace import TraceWriter

log = structlog.get_logger("cosim.supervisor")

#: Exit status of a run a component failure ended.
EXIT_COMPONENT_FAILED = 3
#: Seconds without progress (a step not answered, a child not joined) before a child is hung.
DEADLINE_S = 60.0
#: Seconds the other children get to exit by themselves after a failure, before SIGKILL.
GRACE_S = 1.0
#: Seconds to wait for a dead child's exit status after its link broke (for the report).
STATUS_WAIT_S = 0.5


class ComponentFailed(Exception):
    """A component died, crashed or hung; ``role`` names it."""

    def __init__(self, role: str, why: str) -> None:
        super().__init__(f"{role} {why}")
        self.role = role
        self.why = why


@dataclass
class Outcome:
    """What a multi-process run gives back: cosim run's exit status, result and log."""

    status: int
    result: dict[str, Any] | None = None
    log: list[str] = field(default_factory=list)
    #: One line naming the dead component and its last record ("" if none died).
    failure: str = ""
    failed_role: str = ""
    #: One line per refused connection.
    refusals: list[str] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    address: str = ""


def describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


def _record_line(rec: tuple[int, bytes] | None) -> str:
    """``#seq t=T src -> dst kind (why)`` of a record as a Node sent it (seq -1: no trace file)."""
    if rec is None:
        return "none"
    seq, raw = rec
    t, src, dst, kind, _body, why, *_ = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    arrow = f"{src} -> {dst}" if dst else src
    at = f"#{seq} " if seq >= 0 else ""
    return f"{at}t={t} {arrow} {kind}" + (f" ({why})" if why else "")


class _Run:
    def __init__(
        self,
        sc: Scenario,
        scenario_file: str,
        *,
        trace_path: str | None,
        tcp: bool,
        remote: dict[str, str],
        deadline: float,
        on_step: Callable[[int, dict[str, int]], None] | None,
        secret: str | None = None,
        before_spawn: Callable[[str, str], Awaitable[None]] | None = None,
        wait_for: Collection[str] = (),
        listen: str | None = None,
    ) -> None:
        probe = build(sc, process_faults_allowed=True)
        check_distributable(probe)
        self.sc = sc
        self.scenario_file = scenario_file
        self.machine = probe.machine
        self.roles = components(probe)
        self.remote = {resolve_role(r, probe): parse_address(a) for r, a in remote.items()}
        #: Roles started by hand that connect to the run (cosim serve ROLE --connect).
        self.wait_for = {resolve_role(r, probe) for r in wait_for}
        both = sorted(self.wait_for & set(self.remote))
        if both:
            raise DistributedError(f"role {both[0]!r} is both remote and waited for")
        self.listen = parse_address(listen) if listen else None
        self.tcp = tcp
        self.deadline = deadline
        self.on_step = on_step
        self.process_faults = ProcessFaults(sc.faults)
        self.trace_path = trace_path
        self.secret = secret or secrets.token_hex(32)
        self.before_spawn = before_spawn
        self.links: dict[str, StreamLink] = {}
        self.all_joined = trio.Event()
        self.procs: dict[str, trio.Process] = {}
        self.exited: dict[str, trio.Event] = {r: trio.Event() for r in self.roles}
        self.status: dict[str, int] = {}
        self.stderr_tail: dict[str, list[str]] = {r: [] for r in self.roles}
        self.finishing = False
        self.failure: ComponentFailed | None = None
        self.cancel = trio.CancelScope()
        self.coord = Coordinator(self.roles, *end_keys(sc), probe.scheduler.lookahead)
        self.writer: TraceWriter | None = None
        self.last_record: dict[str, tuple[int, bytes]] = {}
        self.merged = RecordMerge()
        self.refusals: list[str] = []
        self.address = ""
        self.cleaned = False

    # -- failures ----------------------------------------------------------------------

    def fail(self, role: str, why: str) -> None:
        if self.failure is None and not self.finishing:
            self.failure = ComponentFailed(role, why)
            log.error("component failed", component=role, why=why)
            self.cancel.cancel()

    async def link_failed(self, role: str, exc: Exception) -> None:
        """A link to ``role`` ended: report the process's exit status if it comes soon."""
        if role in self.procs:
            with trio.move_on_after(STATUS_WAIT_S):
                await self.exited[role].wait()
        if role in self.status:
            self.fail(role, describe_exit(self.status[role]) + self._tail(role))
        else:
            self.fail(role, f"broke its link ({one_line(exc)})")

    def _tail(self, role: str) -> str:
        tail = [x for x in self.stderr_tail[role] if x.strip()]
        return f" [stderr: {tail[-1].strip()[:200]}]" if tail else ""

    # -- accepting and refusing --------------------------------------------------------

    async def accept(self, link: StreamLink) -> None:
        """One incoming connection: a child joining, or a peer to refuse."""
        try:
            env: Envelope | None = None
            with trio.move_on_after(self.deadline):
                env = await link.receive()
            if env is None:
                self._refused(link, "no hello in time")
                await link.aclose()
                return
            waiting = {r for r in self.roles if r not in self.links and r not in self.remote}
            why = check_hello(
                env, scenario_hash=self.sc.sha256, secret=self.secret, roles=set(self.roles)
            )
            if why is None and isinstance(env.msg, Hello) and env.msg.role not in waiting:
                why = ("role", f"role {env.msg.role!r} has already joined this run")
            if why is not None:
                self._refused(link, why[1], env)
                with contextlib.suppress(LinkError):
                    await link.send(refusal(why[0], why[1], env.src))
                await link.aclose()
                return
            role = env.msg.role  # type: ignore[union-attr]
            await link.send(
                Envelope(t=0, src=RUN, dst=role, msg=Hello(role=RUN, scenario_hash=self.sc.sha256))
            )
        except LinkError as exc:
            self._refused(link, exc.reason)
            await link.aclose()
            return
        self.links[role] = link
        if all(r in self.links for r in self.roles):
            self.all_joined.set()
        await trio.sleep_forever()  # the stream lives as long as this handler

    def _refused(self, link: StreamLink, text: str, env: Envelope | None = None) -> None:
        line = f"refused {link.name}: {text}"
        self.refusals.append(line)
        hello_text = str(blank_secret(env.msg)) if env is not None else ""
        log.warning("connection refused", peer=link.name, reason=text, hello=hello_text)

    async def join_remote(self, role: str, addr: Address) -> None:
        """A component started by hand with ``cosim serve --listen``: connect and say hello."""
        try:
            link = await connect(addr, f"{RUN}->{role}")
            await link.send(hello(RUN, self.sc.sha256, self.secret))
            env = None
            with trio.move_on_after(self.deadline):
                env = await link.receive()
            if env is None:
                raise DistributedError(f"no answer to hello within {self.deadline:g} s")
            if isinstance(env.msg, Error):
                raise DistributedError(f"refused: {env.msg.text}")
            if not isinstance(env.msg, Hello) or env.msg.role != role:
                raise DistributedError(f"answered as {getattr(env.msg, 'role', env.kind)!r}")
        except (LinkError, DistributedError) as exc:
            self.fail(role, f"at {addr} could not join: {one_line(exc)}")
            return
        self.links[role] = link
        if all(r in self.links for r in self.roles):
            self.all_joined.set()

    # -- children ----------------------------------------------------------------------

    async def spawn(self, nursery: trio.Nursery, role: str) -> None:
        root = str(Path(cosim.__file__).resolve().parents[1])
        env = dict(os.environ)
        env[SECRET_ENV] = self.secret
        env["PYTHONPATH"] = os.pathsep.join(
            [root, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
        if env.get("PYTHONDONTWRITEBYTECODE") and not env.get("PYTHONPYCACHEPREFIX"):
            # Without bytecode caches every child compiles the whole package (~1 s); keep
            # theirs outside the source tree instead.
            env.pop("PYTHONDONTWRITEBYTECODE")
            env["PYTHONPYCACHEPREFIX"] = os.path.join(
                tempfile.gettempdir(), f"cosim-pycache-{os.getuid()}"
            )
        cmd = [
            sys.executable,
            "-m",
            "cosim",
            "serve",
            role,
            "--scenario",
            self.scenario_file,
            "--connect",
            self.address,
        ]
        proc = await trio.lowlevel.open_process(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            process_group=0,
        )
        self.procs[role] = proc
        nursery.start_soon(self.watch, role, proc)
        nursery.start_soon(self.read_stderr, role, proc)

    async def watch(self, role: str, proc: trio.Process) -> None:
        rc = await proc.wait()
        self.status[role] = rc
        self.exited[role].set()
        if rc != 0 and not self.finishing:
            # A clean exit is judged by the link: it must have sent its part first.
            self.fail(role, describe_exit(rc) + self._tail(role))

    async def read_stderr(self, role: str, proc: trio.Process) -> None:
        assert proc.stderr is not None
        buf = b""
        tail = self.stderr_tail[role]
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError, OSError):
            while chunk := await proc.stderr.receive_some(65536):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    tail.append(line.decode(errors="replace"))
                del tail[:-20]

    async def cleanup(self) -> None:
        """Close every link; the children get GRACE_S to exit, then their groups are killed."""
        if self.cleaned:
            return
        self.cleaned = True
        with trio.CancelScope(shield=True):
            for link in self.links.values():
                with contextlib.suppress(Exception):
                    await link.aclose()
            with trio.move_on_after(GRACE_S):
                for role in self.procs:
                    await self.exited[role].wait()
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            for role, proc in self.procs.items():
                rc = await proc.wait()  # reaped: no zombie left either
                self.status.setdefault(role, rc)

    # -- the run -----------------------------------------------------------------------

    async def receive(self, role: str) -> tuple[list[Rec], Any]:
        """Records then one other control message from ``role``, within the deadline."""
        link = self.links[role]
        records: list[Rec] = []
        while True:
            env = None
            with trio.move_on_after(self.deadline):
                try:
                    env = await link.receive()
                except LinkError as exc:
                    await self.link_failed(role, exc)
                    raise ComponentFailed(role, "link ended") from None
            if env is None:
                self.fail(role, f"made no progress for {self.deadline:g} s (hung)")
                raise ComponentFailed(role, "hung")
            try:
                ctl = unwrap(env)
            except DistributedError as exc:
                self.fail(role, f"sent garbage: {one_line(exc)}")
                raise ComponentFailed(role, "garbage") from None
            if isinstance(ctl, Records):
                records.extend(ctl.records)
                continue
            if isinstance(ctl, Failed):
                self.fail(role, f"crashed: {ctl.text}")
                raise ComponentFailed(role, "crashed")
            return records, ctl

    def write(self, records: list[tuple[str, bytes]]) -> None:
        """Append (role, record)s to the trace; remember each component's last one (raw)."""
        for role, raw in records:
            if self.writer is not None:
                write_records(self.writer, [raw])
                self.last_record[role] = (self.writer.records_written - 1, raw)
            else:
                self.last_record[role] = (-1, raw)

    async def send(self, role: str, ctl: Any) -> None:
        try:
            await self.links[role].send(wrap(RUN, role, ctl))
        except LinkError as exc:
            await self.link_failed(role, exc)
            raise ComponentFailed(role, "link ended") from None

    async def drive(self) -> tuple[int, dict[str, dict[str, Any]]]:
        coord = self.coord
        readies: dict[str, tuple[list[Rec], Ready]] = {}
        for role in self.roles:  # start records in rank order, as in process
            records, ctl = await self.receive(role)
            if not isinstance(ctl, Ready):
                raise DistributedError(f"{role} sent {type(ctl).__name__} before ready")
            readies[role] = (records, ctl)
        for role in self.roles:
            records, ready = readies[role]
            self.write([(role, r.raw) for r in records + ready.records])
            coord.ready(role, ready)
        merged = self.merged
        while gos := coord.window():
            for role, go in gos.items():  # they all run their part of the round at once
                await self.send(role, go)
            for role in gos:
                records, done = await self.receive(role)
                if not isinstance(done, Done):
                    raise DistributedError(f"{role} answered go with {type(done).__name__}")
                merged.add(role, records + done.records)
                coord.done(role, done)
            self.write(merged.take(coord.horizon()))
            if self.on_step is not None:
                self.on_step(coord.last_t, self.pids())
            self._fire_process_faults(coord.last_t)
        now = coord.now()
        for role in self.roles:
            await self.send(role, Finish(now, coord.inbox[role]))
        parts: dict[str, dict[str, Any]] = {}
        for role in self.roles:
            _, part = await self.receive(role)
            if not isinstance(part, Part):
                raise DistributedError(f"{role} answered finish with {type(part).__name__}")
            parts[role] = part.part
        self.finishing = True
        return now, parts

    def _fire_process_faults(self, t: int) -> None:
        """Kill or stop a component's process as a fault rule says, after a trace record naming
        the rule (written and flushed first, so it survives whatever follows)."""
        for rule in self.process_faults.due(t):
            proc = self.procs.get(rule.target)
            body = {"rule": rule.name, "action": rule.action, "target": rule.target}
            if proc is None:
                body["error"] = "no such component process"
            if self.writer is not None:
                self.writer.record(t=t, src="faults", dst=rule.target, kind="fault", body=body,
                                   why="cosim.faults")  # fmt: skip
                self.writer.flush()
            if proc is not None:
                sig = signal.SIGKILL if rule.action == "kill" else signal.SIGSTOP
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)

    def pids(self) -> dict[str, int]:
        return {r: p.pid for r, p in self.procs.items()}

    async def main(
        self, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> tuple[int, dict[str, dict[str, Any]]] | None:
        tmp = tempfile.mkdtemp(prefix="cosim-run-")
        outcome = None
        try:
            async with trio.open_nursery() as nursery:
                with self.cancel:
                    where = self.listen or (
                        Address("tcp", host="127.0.0.1", port=0)
                        if self.tcp
                        else Address("unix", path=os.path.join(tmp, "run.sock"))
                    )
                    bound = await nursery.start(listen, where, self.accept)
                    self.address = str(bound)
                    task_status.started(self.address)
                    if self.before_spawn is not None:
                        await self.before_spawn(self.address, self.secret)
                    for role, addr in self.remote.items():
                        nursery.start_soon(self.join_remote, role, addr)
                    for role in self.roles:
                        if role not in self.remote and role not in self.wait_for:
                            await self.spawn(nursery, role)
                    outcome = await self.run()
                    for role in self.procs:  # they exit once they sent their part
                        with trio.move_on_after(self.deadline):
                            await self.exited[role].wait()
                await self.cleanup()  # watchers still running: exits are seen as they happen
                nursery.cancel_scope.cancel()
            return outcome if self.failure is None else None
        finally:
            with trio.CancelScope(shield=True):
                await self.cleanup()
                if self.writer is not None:
                    self.writer.close()
            shutil.rmtree(tmp, ignore_errors=True)

    async def run(self) -> tuple[int, dict[str, dict[str, Any]]] | None:
        with trio.move_on_after(self.deadline):
            await self.all_joined.wait()
        if not self.all_joined.is_set():
            missing = [r for r in self.roles if r not in self.links]
            self.fail(missing[0], f"did not join within {self.deadline:g} s")
            return None
        header = trace_header(self.sc, self.machine)
        header["mode"] = "processes"
        header["transport"] = "tcp" if self.tcp else "unix"
        if self.trace_path:
            self.writer = TraceWriter(self.trace_path, header)
        try:
            return await self.drive()
        except ComponentFailed:
            self.write(self.merged.take(None))  # the trace so far: every round that ended
            return None

    def report(self) -> str:
        f = self.failure
        assert f is not None
        rec = _record_line(self.last_record.get(f.role))
        where = f"; trace so far in {self.trace_path}" if self.trace_path else ""
        return (
            f"component {f.role} {f.why} at simulated time {self.coord.last_t} ns; "
            f"its last trace record: {rec}{where}"
        )


def scenario_file_for(sc: Scenario, text: str | None, tmp: str) -> str:
    """A file the children can load that hashes as ``sc`` (written from ``text`` if given)."""
    import hashlib

    if text is None:
        try:
            text = Path(sc.path).read_text()
        except OSError as exc:
            raise DistributedError(f"{sc.path}: cannot read: {exc.strerror or exc}") from None
    if hashlib.sha256(text.encode()).hexdigest() != sc.sha256:
        raise DistributedError(f"{sc.path}: the file changed since it was loaded")
    path = os.path.join(tmp, Path(sc.path).name or "scenario.toml")
    Path(path).write_text(text)
    return path


async def run_processes(
    sc: Scenario,
    *,
    text: str | None = None,
    trace_path: str | None = None,
    tcp: bool = False,
    remote: dict[str, str] | None = None,
    deadline: float = DEADLINE_S,
    on_step: Callable[[int, dict[str, int]], None] | None = None,
    secret: str | None = None,
    before_spawn: Callable[[str, str], Awaitable[None]] | None = None,
    wait_for: Collection[str] = (),
    listen: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> Outcome:
    """Run ``sc`` with every component in its own process; never raises for a component failure.

    ``text`` is the scenario's source (else it is read from ``sc.path``); ``remote`` maps
    roles to the addresses of components already listening (``cosim serve --listen``);
    ``on_step(simulated time, pids)`` is called after every step; ``secret`` is the
    shared secret (default: a fresh one); ``before_spawn(address, secret)`` is awaited
    once the run listens, before any child starts; ``wait_for`` names roles started by
    hand that connect to the run (``cosim serve ROLE --connect``), at ``listen`` if given;
    ``task_status`` gets the address.
    """
    tmp = tempfile.mkdtemp(prefix="cosim-scenario-")
    try:
        file = scenario_file_for(sc, text, tmp)
        run = _Run(
            sc,
            file,
            trace_path=trace_path,
            tcp=tcp,
            remote=remote or {},
            deadline=deadline,
            on_step=on_step,
            secret=secret,
            before_spawn=before_spawn,
            wait_for=wait_for,
            listen=listen,
        )
        got = await run.main(task_status=task_status)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = Outcome(
        status=EXIT_COMPONENT_FAILED,
        refusals=run.refusals,
        pids=run.pids(),
        steps=run.coord.steps,
        address=run.address,
    )
    if run.failure is not None or got is None:
        if run.failure is None:
            run.failure = ComponentFailed(RUN, "stopped")
        out.failure = run.report()
        out.failed_role = run.failure.role
        return out
    now, parts = got
    sim = assemble(sc, now, parts, run.roles)
    result = sim.result()
    out.result = result
    out.log = result_log(sim)
    out.status = 0 if result["exit"] == "ok" else 1
    return out


def run_secret(secret_file: str | None) -> str | None:
    """The run's shared secret: from ``secret_file`` (created with a fresh one, mode 0600, if
    it does not exist), else $COSIM_SECRET, else None (a fresh one per run)."""
    if secret_file is None:
        return os.environ.get(SECRET_ENV) or None
    try:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = read_secret(secret_file)
        if not text:
            raise DistributedError(f"--secret-file {secret_file}: empty") from None
        return text
    except OSError as exc:
        raise DistributedError(f"--secret-file {secret_file}: {exc.strerror or exc}") from None
    text = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    log.info("shared secret written", file=secret_file)
    return text


def run_sync(sc: Scenario, **kw: Any) -> Outcome:
    """:func:`run_processes` from synchronous code."""
    return trio.run(lambda: run_processes(sc, **kw))


def main_processes(
    sc: Scenario,
    *,
    quiet: bool,
    as_json: bool,
    trace: str | None,
    faults: str | None,
    tcp: bool,
    out: TextIO,
    err: TextIO,
    remote: list[str] | None = None,
    wait_for: list[str] | None = None,
    listen: str | None = None,
    secret_file: str | None = None,
    deadline: float | None = None,
) -> int:
    """``cosim run --processes``: the same output and exit status as in process; 3 if a
    component failed (the report on stderr).

    ``remote``: ``ROLE=ADDR`` of components started by hand with ``--listen``;
    ``wait_for``: roles started by hand that connect to the run at ``listen``;
    ``secret_file``: the shared secret (created, mode 0600, if missing).
    """
    from cosim.run import summary

    rules = list(sc.faults)
    if faults:
        from cosim.faults import FaultPlanError, load_plan

        try:
            rules += load_plan(faults)
        except FaultPlanError as exc:
            err.write(f"cosim run: {exc}\n")
            return 2
    others = [r for r in rules if r not in process_rules(rules)]
    if others:
        err.write(
            f"cosim run: rule {others[0].name!r} ({others[0].action}): link and component faults "
            "run in process only; with --processes a plan may only kill or stop components\n"
        )
        return 2
    if rules:
        sc = msgspec.structs.replace(sc, faults=rules)
    if deadline is not None and not deadline > 0:
        err.write(f"cosim run: --deadline {deadline:g}: must be more than 0 seconds\n")
        return 2
    try:
        remotes = {}
        for item in remote or ():
            role, sep, addr = item.partition("=")
            if not sep or not role or not addr:
                raise DistributedError(f"--remote {item!r}: expected ROLE=ADDR")
            remotes[role] = addr
        secret = run_secret(secret_file)
        waiting = list(wait_for or ())
        if waiting and secret is None:
            raise DistributedError(
                f"--wait-for {waiting[0]}: a component started by hand needs the run's shared "
                f"secret: give --secret-file FILE (created if missing) or ${SECRET_ENV}"
            )

        async def announce(address: str, _secret: str) -> None:
            if waiting:
                err.write(f"cosim run: listening on {address}; waiting for {', '.join(waiting)}\n")
                err.flush()

        with sim_progress(err, sc.duration_ns, sc.name) as update:
            outcome = run_sync(
                sc,
                trace_path=trace,
                tcp=tcp,
                remote=remotes,
                wait_for=waiting,
                listen=listen,
                secret=secret,
                deadline=deadline or DEADLINE_S,
                before_spawn=announce,
                on_step=None if update is None else lambda t, _pids: update(t, sc.duration_ns),
            )
    except (DistributedError, AddressError, ScenarioError) as exc:
        err.write(f"cosim run: {one_line(exc)}\n")
        return 2
    if outcome.failure:
        err.write(f"cosim run: {outcome.failure}\n")
        return outcome.status
    result = outcome.result
    assert result is not None
    if not quiet and not as_json:
        for line in outcome.log:
            out.write(line + "\n")
    if as_json:
        out.write(json.dumps(msgspec.to_builtins(result), indent=2, sort_keys=True) + "\n")
    else:
        out.write(summary(result) + "\n")
    return outcome.status
