"""``cosim bench``: how fast the co-simulation answers, and how its cost grows.

Every figure is measured in the same run as the raw ceiling it is compared with: a bare
trio + msgpack echo over the same kind of link (trio memory channels in process, a Unix
socket between two processes), carrying the msgpack of the same Exit envelope.

* hypercall round trips per second: a scripted dom0 issuing ``xen_version`` hypercalls
  (HVC #0xEA1, x16 = 17, XENVER_version) as ``exit`` and getting the ``entry`` of the real
  :class:`hypervisor.xen.Xen`, in process on one scheduler, and across processes: the
  transport :class:`~transport.links.Endpoint` request/reply over a Unix socket to a child
  process whose scheduler runs Xen (cosim.distributed runs whole scenarios, it has no
  place for a scripted dom0);
* LPIs delivered per second, MSI to EOI (the guest's count of handled LPIs), on bare metal
  and under Xen, 1 and 8 devices, over the post-boot window only (boot timed apart), in
  process and (full run) across processes with ``cosim run --processes``;
* the boot of the reproduction (ACPI dom0, Xen with HAS_ITS, machine.pcpus = vcpus) for
  4..128 vCPUs, with the GICR_TYPER reads Linux makes: gic_populate_rdist walks the
  redistributors for every CPU until it finds its own (n(n+1) reads: two per frame
  visited) and gic_update_rdist_properties walks them once (2n);
* ``cosim matrix`` over every config, wall time;
* one scenario run with and without ``--trace``: wall time and peak RSS of each child.

``--json`` prints one key per figure; ``--quick`` uses smaller counts, skips 64/128 vCPUs,
the full matrix and the multi-process scenario runs.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import msgpack
import msgspec
import trio

from cosim.matrix import configs_dir
from cosim.run import build, link_latency
from cosim.scenario import Scenario, loads
from cosim.scheduler import MS, Scheduler
from hypervisor.machine import VirtMachine
from hypervisor.xen import Xen
from transport.links import Endpoint, memory_link_pair, open_unix_link, serve_unix
from transport.messages import Entry, Envelope, Exit, Kick, Mem, Reply

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = configs_dir()
#: HVC immediate of a Xen hypercall, and __HYPERVISOR_xen_version / XENVER_version.
HVC_XEN = 0xEA1
HYPERVISOR_XEN_VERSION = 17
XENVER_VERSION = 0
#: The hypercall every round trip carries.
XEN_VERSION_EXIT = Exit(
    vcpu=0, reason="hvc", imm=HVC_XEN, x16=HYPERVISOR_XEN_VERSION, regs=(XENVER_VERSION,)
)
VCPU_STEPS = (4, 16, 32, 64, 128)
QUICK_VCPU_STEPS = (4, 16, 32)
#: Echo and hypercall rates are measured this many times each, alternately; the best counts.
ROUNDS = 2
#: Sizes of a quick and a full run.
SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "echo": 3000,
        "hypercalls": 3000,
        "hypercalls_unix": 1500,
        "lpi_window_ms": 5,
        "vcpus": QUICK_VCPU_STEPS,
        "trace_scenario": "baremetal-dt.toml",
        "matrix": False,
        "processes": False,
    },
    "full": {
        "echo": 20000,
        "hypercalls": 20000,
        "hypercalls_unix": 10000,
        "lpi_window_ms": 50,
        "vcpus": VCPU_STEPS,
        "trace_scenario": "xen-dom0-acpi-lr1.toml",
        "matrix": True,
        "processes": True,
    },
}
#: Total MSI rate (per simulated second) of the LPI runs, split evenly over the devices.
LPI_TOTAL_RATE = 400_000
#: Simulated time a boot may take before the bench gives up on it.
BOOT_LIMIT_NS = 3_000 * MS
BOOT_STEP_NS = MS // 2


class BenchError(Exception):
    """A measurement could not be made; one line."""


def _clock() -> float:
    return time.perf_counter()


# -- the raw ceiling: trio + msgpack echo ------------------------------------------------------


def echo_payload() -> bytes:
    """The msgpack of the Exit envelope a hypercall round trip carries (the echo's payload)."""
    env = Envelope(t=0, src="dom0", dst="xen", msg=XEN_VERSION_EXIT, id=1 << 8 | 1, why="bench")
    return msgpack.packb(msgspec.to_builtins(env), use_bin_type=True)


async def _echo_memory(n: int) -> float:
    """Round trips per second of msgpack over a pair of trio memory channels."""
    payload = msgpack.unpackb(echo_payload())
    a_tx, b_rx = trio.open_memory_channel[bytes](1)
    b_tx, a_rx = trio.open_memory_channel[bytes](1)

    async def server() -> None:
        async for data in b_rx:
            await b_tx.send(msgpack.packb(msgpack.unpackb(data), use_bin_type=True))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        t0 = _clock()
        for _ in range(n):
            await a_tx.send(msgpack.packb(payload, use_bin_type=True))
            msgpack.unpackb(await a_rx.receive())
        dt = _clock() - t0
        nursery.cancel_scope.cancel()
    return n / dt


async def _recv_exact(stream: trio.SocketStream, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        more = await stream.receive_some(65536)
        if not more:
            raise EOFError
        buf += more
    out = bytes(buf[:n])
    del buf[:n]
    return out


async def _raw_echo_client(path: str, n: int) -> float:
    """Round trips per second of length-prefixed msgpack over a Unix socket to an echo child."""
    payload = msgpack.unpackb(echo_payload())
    stream = await trio.open_unix_socket(path)
    buf = bytearray()
    async with stream:
        t0 = _clock()
        for _ in range(n):
            data = msgpack.packb(payload, use_bin_type=True)
            await stream.send_all(struct.pack(">I", len(data)) + data)
            (length,) = struct.unpack(">I", await _recv_exact(stream, buf, 4))
            msgpack.unpackb(await _recv_exact(stream, buf, length))
        return n / (_clock() - t0)


async def _raw_echo_server(path: str) -> None:
    """Child: echo length-prefixed msgpack frames on one Unix-socket connection."""
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.bind(path)
    raw.listen(1)
    _ready()
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(raw))
    stream = await listener.accept()
    buf = bytearray()
    async with stream, listener:
        try:
            while True:
                (length,) = struct.unpack(">I", await _recv_exact(stream, buf, 4))
                obj = msgpack.unpackb(await _recv_exact(stream, buf, length))
                data = msgpack.packb(obj, use_bin_type=True)
                await stream.send_all(struct.pack(">I", len(data)) + data)
        except (EOFError, trio.BrokenResourceError):
            pass


# -- hypercalls ----------------------------------------------------------------------------------


class _HypercallDom0:
    """Component ``dom0``: issues ``n`` xen_version hypercalls, each after the last one's Entry.

    Answers Xen's ``mem`` requests from a zeroed RAM (xen_version touches none) and ignores
    kicks (vCPU 0 is never blocked)."""

    name = "dom0"

    def __init__(self, n: int) -> None:
        self.left = n
        self.entries = 0
        self.refused: list[str] = []
        self.x0: int | None = None

    def start(self, port: Any) -> None:
        self._next(port)

    def _next(self, port: Any) -> None:
        if self.left > 0:
            self.left -= 1
            port.send("xen", XEN_VERSION_EXIT, request=True, why="bench")

    def receive(self, env: Envelope, port: Any) -> None:
        msg = env.msg
        if isinstance(msg, Mem):
            port.reply(env, Reply() if msg.write else Reply(data=bytes(msg.size)))
        elif isinstance(msg, Entry):
            self.entries += 1
            self.x0 = msg.regs[0] if msg.regs else None
            self._next(port)
        elif isinstance(msg, Reply):
            self.refused.append(msg.error)
            self._next(port)

    def timer(self, token: Any, port: Any) -> None:
        pass


def _xen_scheduler(dom0: Any) -> tuple[Scheduler, Xen]:
    """Xen (one pCPU, one dom0 vCPU) and ``dom0`` on a scheduler with cosim run's latencies."""
    sched = Scheduler(seed=1, latency=link_latency)
    xen = Xen(VirtMachine(cpus=1), vcpus=1)
    sched.add(xen)
    sched.add(dom0)
    return sched, xen


def hypercalls_in_process(n: int) -> float:
    """Round trips per second of ``n`` xen_version hypercalls, dom0 and Xen on one scheduler."""
    dom0 = _HypercallDom0(n)
    sched, _xen = _xen_scheduler(dom0)
    t0 = _clock()
    sched.start()
    sched.run()
    dt = _clock() - t0
    if dom0.entries != n or dom0.refused:
        raise BenchError(f"xen answered {dom0.entries} of {n} hypercalls: {dom0.refused[:1]}")
    if dom0.x0 != (4 << 16) | 17:  # XENVER_version of Xen 4.17
        raise BenchError(f"xen_version returned {dom0.x0!r}")
    return n / dt


class _Proxy:
    """Component ``dom0`` in the child: stands for the dom0 across the socket."""

    name = "dom0"

    def __init__(self) -> None:
        self.port: Any = None
        self.answers: list[Entry | Reply] = []

    def start(self, port: Any) -> None:
        self.port = port

    def receive(self, env: Envelope, port: Any) -> None:
        msg = env.msg
        if isinstance(msg, Mem):
            port.reply(env, Reply() if msg.write else Reply(data=bytes(msg.size)))
        elif isinstance(msg, Entry | Reply):
            self.answers.append(msg)

    def timer(self, token: Any, port: Any) -> None:
        pass


async def _xen_server(path: str) -> None:
    """Child: answer each Exit request on the Unix socket with the Entry its Xen gives."""
    proxy = _Proxy()
    sched, _xen = _xen_scheduler(proxy)
    sched.start()
    sched.run()
    done = trio.Event()

    async def handle(link: Any) -> None:
        ep = Endpoint(link, "xen")

        async def on(env: Envelope) -> None:
            if isinstance(env.msg, Kick | Exit):
                proxy.port.send("xen", env.msg, request=True, why=env.why)
                sched.run()
                answer = proxy.answers.pop() if proxy.answers else Reply(status=-1, error="none")
                await ep.reply(env, answer, sched.now)

        await ep.run(on, inline=True)
        done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_unix, path, handle)
        _ready()
        await done.wait()
        nursery.cancel_scope.cancel()


async def _endpoint_echo_server(path: str) -> None:
    """Child: answer each request on the Unix socket with a fixed Entry (no Xen): the link stack."""
    done = trio.Event()
    entry = Entry(vcpu=0, regs=((4 << 16) | 17,))

    async def handle(link: Any) -> None:
        ep = Endpoint(link, "xen")

        async def on(env: Envelope) -> None:
            await ep.reply(env, entry, env.t)

        await ep.run(on, inline=True)
        done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_unix, path, handle)
        _ready()
        await done.wait()
        nursery.cancel_scope.cancel()


async def _endpoint_client(link: Any, n: int) -> float:
    """Round trips per second of ``n`` Exit requests over an Endpoint on ``link`` (``call``:
    the client receives its replies itself, as a vCPU waiting on its hypercall does)."""
    ep = Endpoint(link, "dom0")
    t0 = _clock()
    for i in range(n):
        reply = await ep.call("xen", XEN_VERSION_EXIT, i)
        if not isinstance(reply.msg, Entry):
            raise BenchError(f"expected an entry, got {reply.msg!r:.80}")
    dt = _clock() - t0
    await link.aclose()
    return n / dt


async def _endpoint_memory(n: int) -> float:
    """Round trips per second of Exit/Entry through two Endpoints on an in-memory link."""
    a, b = memory_link_pair("dom0", "xen")
    entry = Entry(vcpu=0, regs=((4 << 16) | 17,))
    server = Endpoint(b, "xen")

    async def on(env: Envelope) -> None:
        await server.reply(env, entry, env.t)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(server.run, on, inline=True))
        rate = await _endpoint_client(a, n)
        nursery.cancel_scope.cancel()
    return rate


# -- child processes ------------------------------------------------------------------------------


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


CHILD_MODES: dict[str, Callable[[str], Any]] = {
    "raw-echo": _raw_echo_server,
    "endpoint-echo": _endpoint_echo_server,
    "xen": _xen_server,
}


def _with_child(mode: str, client: Callable[[str], Any]) -> float:
    """Start ``python -m cosim.bench --serve MODE PATH``, wait for its "ready", run the client."""
    with tempfile.TemporaryDirectory(prefix="cosim-bench-") as tmp:
        path = os.path.join(tmp, "s")
        child = subprocess.Popen(
            [sys.executable, "-m", "cosim.bench", "--serve", mode, path],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise BenchError(f"bench child {mode!r} did not start")
            return float(trio.run(client, path))
        finally:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def raw_echo_unix(n: int) -> float:
    return _with_child("raw-echo", lambda path: _raw_echo_client(path, n))


def endpoint_echo_unix(n: int) -> float:
    async def client(path: str) -> float:
        return await _endpoint_client(await open_unix_link(path, "dom0"), n)

    return _with_child("endpoint-echo", client)


def hypercalls_unix(n: int) -> float:
    async def client(path: str) -> float:
        return await _endpoint_client(await open_unix_link(path, "dom0"), n)

    return _with_child("xen", client)


# -- scenarios: LPI rate and boot -----------------------------------------------------------------


def lpi_scenario(host: str, devices: int, duration_ms: int, *, vcpus: int = 4) -> Scenario:
    """A 4-CPU machine (bare metal from a device tree, or Xen with HAS_ITS and an ACPI dom0)
    with ``devices`` MSI devices sharing LPI_TOTAL_RATE."""
    if host == "xen":
        head = (
            f"[machine]\npcpus = {vcpus}\nlist_registers = 4\n"
            '[host]\nkind = "xen"\nhas_its = true\ndom0_boot = "acpi"\n'
            f'[guest]\nvcpus = {vcpus}\nkernel = "v5.15"\nbootargs = "console=hvc0"\n'
        )
    else:
        head = (
            f"[machine]\npcpus = {vcpus}\nram_mb = 2048\n"
            '[host]\nkind = "baremetal"\nboot = "dt"\n'
            f'[guest]\nvcpus = {vcpus}\nkernel = "v5.15"\nbootargs = "console=ttyAMA0"\n'
        )
    rate = LPI_TOTAL_RATE // max(devices, 1)
    devs = "".join(
        f'[[devices]]\nname = "dev{i}"\ndevid = {0x100 * (i + 1):#x}\nevents = 4\nmsi_rate = {rate}\n'
        for i in range(devices)
    )
    text = head + devs + f'[run]\nseed = 1\nduration = "{duration_ms}ms"\n'
    return loads(text, f"bench-{host}-{devices}dev.toml")


def boot_scenario(vcpus: int) -> Scenario:
    """The reproduction (configs/xen-dom0-acpi.toml) without its device, for ``vcpus`` vCPUs."""
    text = (
        f"[machine]\npcpus = {vcpus}\nlist_registers = 4\n"
        '[host]\nkind = "xen"\nhas_its = true\ndom0_boot = "acpi"\n'
        f'[guest]\nvcpus = {vcpus}\nkernel = "v5.15"\nbootargs = "console=hvc0"\n'
        '[run]\nseed = 1\nduration = "3s"\n'
    )
    return loads(text, f"bench-boot-{vcpus}.toml")


def _delivered(sim: Any) -> int:
    return sum(n for g in sim.guest.delivered.values() for v in g.values() for n in v.values())


def _boot(sim: Any) -> tuple[float, int]:
    """Run ``sim`` (started) until its kernel is booted: (wall seconds, simulated ns)."""
    sched = sim.scheduler
    t = sched.now
    t0 = _clock()
    while True:
        k = sim.guest.kernel
        if k is not None and k.status == "booted":
            return _clock() - t0, sched.now
        if k is not None and k.status not in ("booting",) or sched._stopped:
            raise BenchError(f"{sim.scenario.name}: boot ended {getattr(k, 'status', None)!r}")
        if t >= BOOT_LIMIT_NS:
            raise BenchError(f"{sim.scenario.name}: not booted after {t // MS} ms simulated")
        t += BOOT_STEP_NS
        sched.run(until=t)


def lpi_rate(host: str, devices: int, window_ms: int) -> dict[str, float]:
    """Boot, then LPIs delivered per wall second over ``window_ms`` simulated after boot."""
    sc = lpi_scenario(host, devices, window_ms)
    sim = build(sc)
    sim.start()
    boot_s, t_boot = _boot(sim)
    before = _delivered(sim)
    t0 = _clock()
    sim.scheduler.run(until=t_boot + window_ms * MS)
    dt = _clock() - t0
    got = _delivered(sim) - before
    return {"boot_s": boot_s, "delivered": got, "window_s": dt, "per_s": got / dt}


def boot_scale(vcpus: int) -> dict[str, Any]:
    """Wall time of the reproduction's boot and the GICR_TYPER reads dom0 makes (by function)."""
    sc = boot_scenario(vcpus)
    sim = build(sc)
    gicr = [(b, n) for b, n in sim.machine.gicr_frames()]
    stride = 0x2_0000
    reads: dict[str, int] = {}

    def observe(env: Envelope) -> None:
        m = env.msg
        if isinstance(m, Exit) and m.reason == "dabt" and not m.write:
            for base, size in gicr:
                if base <= m.addr < base + size and (m.addr - base) % stride == 0x8:
                    reads[env.why] = reads.get(env.why, 0) + 1

    sim.scheduler.observers.append(observe)
    sim.start()
    wall, t_boot = _boot(sim)
    walk = reads.get("gic_populate_rdist", 0) + reads.get("__gic_populate_rdist", 0)
    return {
        "vcpus": vcpus,
        "boot_s": wall,
        "boot_sim_ns": t_boot,
        "gicr_typer_reads": sum(reads.values()),
        "gicr_typer_reads_populate_rdist": walk,
        "gicr_typer_reads_by_function": dict(sorted(reads.items())),
        "events": sim.scheduler.events,
    }


def growth(points: list[tuple[int, float]]) -> list[dict[str, Any]]:
    """Growth per doubling between consecutive (n, value) points: (v2/v1) ** (1/log2(n2/n1))."""
    out = []
    for (n1, v1), (n2, v2) in zip(points, points[1:]):
        d = math.log2(n2 / n1)
        out.append({"from": n1, "to": n2, "per_doubling": (v2 / v1) ** (1 / d) if v1 > 0 else None})
    return out


# -- whole runs as child processes ---------------------------------------------------------------


#: Runs ``cosim`` and, at exit, writes its own peak RSS (VmHWM of /proc/self/status, which
#: exec resets, unlike ru_maxrss: a child forked from this process inherits its high-water
#: mark) to stderr as the last line.
_CHILD = """
import atexit, resource, sys
def _peak():
    try:
        with open("/proc/self/status") as f:
            kib = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stderr.write(f"\\nbench-peak-rss-kib {kib}\\n")
atexit.register(_peak)
from cosim.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_child(args: list[str]) -> dict[str, Any]:
    """``cosim ARGS`` in a child: wall and CPU seconds, its peak RSS (KiB), exit status,
    stdout. CPU time is what the child itself used, whatever else the machine runs."""
    t0, c0 = _clock(), _children_cpu()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], cwd=ROOT, capture_output=True, check=False
    )
    wall = _clock() - t0
    cpu = _children_cpu() - c0
    peak = 0
    for line in reversed(proc.stderr.decode(errors="replace").splitlines()):
        if line.startswith("bench-peak-rss-kib "):
            peak = int(line.split()[1])
            break
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "max_rss_kib": peak,
        "status": proc.returncode,
        "out": proc.stdout,
    }


def trace_overhead(scenario: Path, repeat: int = 2) -> dict[str, Any]:
    """The same scenario without and with ``--trace``, alternately ``repeat`` times: the
    overhead is of CPU time (the least of each), which other jobs on a shared machine do
    not inflate as they do wall time; also wall time, peak RSS, trace size."""
    plain: list[dict[str, Any]] = []
    traced: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cosim-bench-") as tmp:
        trace = os.path.join(tmp, "t.trace")
        for _ in range(repeat):
            plain.append(run_child(["run", str(scenario), "--quiet"]))
            traced.append(run_child(["run", str(scenario), "--quiet", "--trace", trace]))
        size = os.path.getsize(trace) if os.path.exists(trace) else 0
    p = min(plain, key=lambda r: r["cpu_s"])
    t = min(traced, key=lambda r: r["cpu_s"])
    return {
        "scenario": scenario.name,
        "untraced_s": min(r["wall_s"] for r in plain),
        "traced_s": min(r["wall_s"] for r in traced),
        "untraced_cpu_s": p["cpu_s"],
        "traced_cpu_s": t["cpu_s"],
        "overhead": t["cpu_s"] / p["cpu_s"] - 1,
        "untraced_max_rss_kib": max(r["max_rss_kib"] for r in plain),
        "traced_max_rss_kib": max(r["max_rss_kib"] for r in traced),
        "trace_bytes": size,
    }


def matrix_wall() -> dict[str, Any]:
    r = run_child(["matrix", "--json"])
    rows = json.loads(r["out"]) if r["out"] else []
    n = len(rows) if isinstance(rows, list) else len(rows.get("rows", []))
    return {"wall_s": r["wall_s"], "scenarios": n, "status": r["status"]}


def lpi_rate_processes(devices: int, window_ms: int) -> dict[str, Any]:
    """LPIs per wall second across processes (``cosim run --processes``, Xen): two runs, one
    that ends at boot and one ``window_ms`` longer; the rate is of the difference."""
    sim = build(lpi_scenario("xen", devices, 1))
    sim.start()
    _, t_boot = _boot(sim)
    boot_ms = -(-t_boot // MS)
    runs = []
    with tempfile.TemporaryDirectory(prefix="cosim-bench-") as tmp:
        for ms in (boot_ms, boot_ms + window_ms):
            path = os.path.join(tmp, f"s{ms}.toml")
            Path(path).write_text(_scenario_text("xen", devices, ms))
            r = run_child(["run", path, "--processes", "--json"])
            if r["status"] not in (0, 1) or not r["out"]:
                raise BenchError(f"cosim run --processes exited {r['status']}")
            runs.append((r["wall_s"], json.loads(r["out"])["lpis_delivered"]))
    (w1, d1), (w2, d2) = runs
    return {"delivered": d2 - d1, "window_s": w2 - w1, "per_s": (d2 - d1) / max(w2 - w1, 1e-9)}


def _scenario_text(host: str, devices: int, duration_ms: int) -> str:
    """lpi_scenario as TOML text (for a child process)."""
    sc = lpi_scenario(host, devices, duration_ms)
    data = msgspec.to_builtins(sc)
    for k in ("path", "sha256", "actions", "faults"):
        data.pop(k, None)
    return _toml(data)


def _toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for table, value in data.items():
        if isinstance(value, list):
            for item in value:
                lines.append(f"[[{table}]]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in item.items()]
        else:
            lines.append(f"[{table}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


# -- the whole bench ------------------------------------------------------------------------------


def measure(quick: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every figure, as a flat dict (one key per figure; None where one could not be made)."""
    size = SIZES["quick" if quick else "full"]
    say = progress or (lambda _s: None)
    f: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    # Each rate and its ceiling are measured alternately, ROUNDS times, and the best of each
    # kept: one burst of load on a shared machine then cannot decide a ratio.
    rates: dict[str, list[float]] = {}
    for r in range(ROUNDS):
        say(f"raw echo and hypercalls, round {r + 1} of {ROUNDS}")
        for key, measure_one in (
            ("echo_memory_rt_per_s", lambda: trio.run(_echo_memory, size["echo"])),
            ("hypercall_inprocess_rt_per_s", lambda: hypercalls_in_process(size["hypercalls"])),
            ("endpoint_memory_rt_per_s", lambda: trio.run(_endpoint_memory, size["echo"])),
            ("echo_unix_rt_per_s", lambda: raw_echo_unix(size["echo"])),
            ("hypercall_unix_rt_per_s", lambda: hypercalls_unix(size["hypercalls_unix"])),
            ("endpoint_unix_rt_per_s", lambda: endpoint_echo_unix(size["echo"])),
        ):
            rates.setdefault(key, []).append(measure_one())
    f.update({key: max(v) for key, v in rates.items()})
    f["hypercall_inprocess_ratio_to_echo"] = (
        f["hypercall_inprocess_rt_per_s"] / f["echo_memory_rt_per_s"]
    )
    f["hypercall_unix_ratio_to_echo"] = f["hypercall_unix_rt_per_s"] / f["echo_unix_rt_per_s"]
    f["hypercall_unix_method"] = (
        "transport.links.Endpoint call (client) and inline run (child) over a Unix socket; the "
        "child's scheduler runs hypervisor.xen.Xen"
    )
    for host in ("baremetal", "xen"):
        for n in (1, 8):
            say(f"LPIs {host} {n} device(s)")
            r = lpi_rate(host, n, size["lpi_window_ms"])
            f[f"lpis_per_s_{host}_{n}dev"] = r["per_s"]
            f[f"lpis_delivered_{host}_{n}dev"] = r["delivered"]
            f[f"boot_s_{host}_{n}dev"] = r["boot_s"]
    for n in (1, 8):
        key = f"lpis_per_s_xen_{n}dev_processes"
        f[key] = None
        if size["processes"]:
            say(f"LPIs xen {n} device(s) across processes")
            try:
                f[key] = lpi_rate_processes(n, size["lpi_window_ms"])["per_s"]
            except (BenchError, OSError, ValueError, KeyError) as exc:
                f[key + "_error"] = str(exc)
    points: list[tuple[int, float]] = []
    reads: list[tuple[int, float]] = []
    for v in size["vcpus"]:
        say(f"boot {v} vCPUs")
        b = boot_scale(v)
        f[f"boot_s_vcpus_{v}"] = b["boot_s"]
        f[f"gicr_typer_reads_vcpus_{v}"] = b["gicr_typer_reads"]
        f[f"gicr_typer_reads_populate_rdist_vcpus_{v}"] = b["gicr_typer_reads_populate_rdist"]
        f[f"boot_events_vcpus_{v}"] = b["events"]
        points.append((v, b["boot_s"]))
        reads.append((v, b["gicr_typer_reads"]))
    f["boot_growth_per_doubling"] = growth(points)
    f["gicr_typer_reads_growth_per_doubling"] = growth(reads)
    f["matrix_wall_s"] = None
    if size["matrix"]:
        say("cosim matrix")
        m = matrix_wall()
        f["matrix_wall_s"] = m["wall_s"]
        f["matrix_scenarios"] = m["scenarios"]
    say("trace overhead")
    t = trace_overhead(CONFIGS / size["trace_scenario"])
    f["trace_scenario"] = t["scenario"]
    f["trace_overhead"] = t["overhead"]
    f["run_untraced_s"] = t["untraced_s"]
    f["run_traced_s"] = t["traced_s"]
    f["run_untraced_cpu_s"] = t["untraced_cpu_s"]
    f["run_traced_cpu_s"] = t["traced_cpu_s"]
    f["run_untraced_max_rss_kib"] = t["untraced_max_rss_kib"]
    f["run_traced_max_rss_kib"] = t["traced_max_rss_kib"]
    f["trace_bytes"] = t["trace_bytes"]
    return f


def _r(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def report(f: dict[str, Any]) -> list[str]:
    """The figures as text, each next to its ceiling."""
    out = [
        f"cosim bench ({f['mode']}, Python {f['python']}, {f['cpus']} CPUs)",
        "round trips/s                    in process         Unix socket (2 processes)",
        f"  raw trio+msgpack echo          {_r(f['echo_memory_rt_per_s']):>12}       "
        f"{_r(f['echo_unix_rt_per_s']):>12}",
        f"  Endpoint Exit/Entry echo       {_r(f['endpoint_memory_rt_per_s']):>12}       "
        f"{_r(f['endpoint_unix_rt_per_s']):>12}",
        f"  xen_version hypercall          {_r(f['hypercall_inprocess_rt_per_s']):>12} "
        f"({f['hypercall_inprocess_ratio_to_echo']:.2f}x echo) "
        f"{_r(f['hypercall_unix_rt_per_s']):>12} ({f['hypercall_unix_ratio_to_echo']:.2f}x echo)",
        "LPIs delivered/s after boot (MSI to EOI)   1 device     8 devices   boot (s)",
    ]
    for host in ("baremetal", "xen"):
        out.append(
            f"  {host:<10} in process              {_r(f[f'lpis_per_s_{host}_1dev']):>10}"
            f"   {_r(f[f'lpis_per_s_{host}_8dev']):>10}   {f[f'boot_s_{host}_1dev']:.2f}"
        )
    out.append(
        f"  xen        across processes        {_r(f['lpis_per_s_xen_1dev_processes']):>10}"
        f"   {_r(f['lpis_per_s_xen_8dev_processes']):>10}"
    )
    out.append("boot of the reproduction (ACPI dom0, HAS_ITS)  vCPUs  wall s  GICR_TYPER reads")
    for key in sorted((k for k in f if k.startswith("boot_s_vcpus_")), key=lambda k: int(k[13:])):
        v = int(key[13:])
        out.append(
            f"  {v:>44}  {f[key]:6.2f}  {f[f'gicr_typer_reads_vcpus_{v}']:>8} "
            f"(walk {f[f'gicr_typer_reads_populate_rdist_vcpus_{v}']})"
        )
    for g, r in zip(f["boot_growth_per_doubling"], f["gicr_typer_reads_growth_per_doubling"]):
        out.append(
            f"  {g['from']:>3} -> {g['to']:<3} per doubling: boot x{g['per_doubling']:.2f}, "
            f"GICR_TYPER reads x{r['per_doubling']:.2f}"
        )
    m = f["matrix_wall_s"]
    out.append(f"cosim matrix, every config: {'skipped (--quick)' if m is None else f'{m:.1f} s'}")
    out.append(
        f"trace ({f['trace_scenario']}): CPU {f['run_untraced_cpu_s']:.2f} s without, "
        f"{f['run_traced_cpu_s']:.2f} s with ({100 * f['trace_overhead']:+.0f} %; wall "
        f"{f['run_untraced_s']:.2f} s / {f['run_traced_s']:.2f} s); peak RSS "
        f"{f['run_untraced_max_rss_kib'] // 1024} MiB / {f['run_traced_max_rss_kib'] // 1024} MiB; "
        f"{f['trace_bytes'] / 1e6:.1f} MB of trace"
    )
    return out


def main(
    *,
    as_json: bool = False,
    quick: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        f = measure(quick, progress=lambda s: err.write(f"bench: {s}\n"))
    except (BenchError, OSError) as exc:
        err.write(f"cosim bench: {exc}\n")
        return 1
    if as_json:
        out.write(json.dumps(f, indent=2, sort_keys=True) + "\n")
    else:
        out.write("\n".join(report(f)) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve" and sys.argv[2] in CHILD_MODES:
        trio.run(CHILD_MODES[sys.argv[2]], sys.argv[3])
        sys.exit(0)
    sys.exit(main(as_json="--json" in sys.argv, quick="--quick" in sys.argv))
