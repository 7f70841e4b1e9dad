"""Multi-process runs (issue 8): the same trace and result as in process, failures, refusals.

Every test here starts real OS processes (``cosim serve``); the scenarios are small
4-vCPU ones so each run takes a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from cosim import supervisor
from cosim.cli import main as cli_main
from cosim.distributed import simulate
from cosim.run import execute
from cosim.scenario import loads
from cosim.serve import connect, parse_address
from transport.messages import Envelope, Error, Hello
from transport.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]

BAREMETAL = """
[machine]
pcpus = 4
[host]
kind = "baremetal"
boot = "{boot}"
[guest]
vcpus = 4
[[devices]]
name = "nic"
devid = 0x10
events = 2
msi_rate = {rate}
[run]
seed = 5
duration = "{duration}"
"""
XEN = """
[machine]
pcpus = 4
[host]
kind = "xen"
has_its = true
dom0_boot = "acpi"
[guest]
vcpus = 4
[[devices]]
name = "nic"
devid = 0x10
events = 2
msi_rate = 5000
[run]
seed = 5
duration = "20ms"
"""
# The first kernel boots by ~126 ms; the kexec'd DT kernel dies on its overwritten text and
# the host stops the run (PSCI): the stop must end both modes at the same event.
KEXEC = BAREMETAL.format(boot="dt", rate=2000, duration="200ms") + (
    '[[actions]]\nat = "127ms"\ndo = "kexec"\n'
)
EFI = BAREMETAL.format(boot="efi", rate=5000, duration="128ms")
#: The failure tests kill a component here: every one of them has sent something by then.
KILL_AT_NS = 126_500_000


def _json(result: dict[str, Any]) -> str:
    return json.dumps(msgspec.to_builtins(result), sort_keys=True)


def _in_process(text: str, name: str, trace: Path) -> dict[str, Any]:
    _, result = execute(loads(text, name), str(trace))
    return result


def _same_traces(a: Path, b: Path) -> None:
    """Equal record by record, and ``cosim trace diff --canonical`` finds nothing."""
    ha, ra, pa = read_trace(a)
    hb, rb, pb = read_trace(b)
    assert pa is None and pb is None
    assert ha["scenario_sha256"] == hb["scenario_sha256"] and hb["mode"] == "processes"
    assert len(ra) == len(rb) and ra == rb
    assert cli_main(["trace", "diff", str(a), str(b), "--canonical"]) == 0


def _gone(pid: int) -> bool:
    """The process and its process group no longer exist (reaped, so not even a zombie)."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


def test_node_core_matches_in_process(tmp_path: Path) -> None:
    """The synchronisation without sockets: every component on its own scheduler."""
    a, b = tmp_path / "a.trace", tmp_path / "b.trace"
    expected = _in_process(KEXEC, "kexec.toml", a)
    _, result = simulate(loads(KEXEC, "kexec.toml"), str(b))
    assert _json(result) == _json(expected)
    assert expected["kexec"]["outcome"] == "panic" and expected["t_end_ns"] < 200_000_000
    _same_traces_records_only(a, b)


def _same_traces_records_only(a: Path, b: Path) -> None:
    _, ra, pa = read_trace(a)
    _, rb, pb = read_trace(b)
    assert pa is None and pb is None and ra == rb


def test_cli_kexec_same_json_exit_and_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cosim run --processes --json``: a kexec that panics and stops the run, as in process."""
    sc = tmp_path / "bm-dt-kexec.toml"
    sc.write_text(KEXEC)
    a, b = tmp_path / "in.trace", tmp_path / "mp.trace"
    assert cli_main(["run", str(sc), "--json", "--trace", str(a)]) == 1  # exit: panic
    inproc = capsys.readouterr().out
    assert cli_main(["run", str(sc), "--json", "--trace", str(b), "--processes"]) == 1
    multi = capsys.readouterr().out
    assert multi == inproc
    r = json.loads(multi)
    assert r["kexec"]["outcome"] == "panic" and r["exit"] == "panic"
    _same_traces(a, b)


def test_efi_with_a_device_served_by_hand(tmp_path: Path) -> None:
    """``cosim serve dev.nic --listen``: a component started by hand joins the run."""
    text = EFI
    a, b = tmp_path / "in.trace", tmp_path / "mp.trace"
    expected = _in_process(text, "efi.toml", a)
    assert expected["lpis_raised"] > 0 and expected["lpis_delivered"] > 0
    file = tmp_path / "efi.toml"
    file.write_text(text)
    sock = tmp_path / "nic.sock"
    dev = subprocess.Popen(
        [sys.executable, "-m", "cosim", "serve", "nic", "--scenario", str(file)]
        + ["--listen", f"unix:{sock}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert dev.stdout is not None
        assert dev.stdout.readline().strip() == f"cosim serve: dev.nic listening on unix:{sock}"
        out = supervisor.run_sync(
            loads(text, "efi.toml"),
            text=text,
            trace_path=str(b),
            remote={"dev.nic": f"unix:{sock}"},
        )
        assert dev.wait(timeout=30) == 0
    finally:
        dev.kill()
        dev.wait()
    assert out.failure == "" and out.status == 0
    assert _json(out.result or {}) == _json(expected)
    assert "dev.nic" not in out.pids  # not ours to start
    _same_traces(a, b)


def test_xen_over_tcp_refuses_strangers(tmp_path: Path) -> None:
    """Xen over TCP; meanwhile a component of another scenario, one without the secret and one
    of another protocol version knock: each is refused with one line, the run is unaffected."""
    a, b = tmp_path / "in.trace", tmp_path / "mp.trace"
    expected = _in_process(XEN, "xen.toml", a)
    other = tmp_path / "other.toml"
    other.write_text(XEN.replace("seed = 5", "seed = 6"))
    same = tmp_path / "xen.toml"
    same.write_text(XEN)
    refused: dict[str, tuple[int, str]] = {}

    async def strangers(address: str, secret: str) -> None:
        assert address.startswith("tcp:127.0.0.1:")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop(supervisor.SECRET_ENV, None)

        async def knock(what: str, file: Path, extra: dict[str, str]) -> None:
            p = await trio.run_process(
                [sys.executable, "-m", "cosim", "serve", "xen", "--scenario", str(file)]
                + ["--connect", address],
                env=env | extra,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            refused[what] = (p.returncode, p.stderr.decode())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(knock, "scenario", other, {supervisor.SECRET_ENV: secret})
            nursery.start_soon(knock, "secret", same, {})
        link = await connect(parse_address(address), "stranger")
        async with link:
            await link.send(
                Envelope(
                    t=0,
                    src="xen",
                    dst="run",
                    msg=Hello(role="xen", version=99, scenario_hash=expected_hash, secret=secret),
                )
            )
            answer = await link.receive()
        assert isinstance(answer.msg, Error) and answer.msg.code == "version"
        refused["version"] = (1, answer.msg.text)

    expected_hash = loads(XEN, "xen.toml").sha256
    out = supervisor.run_sync(
        loads(XEN, "xen.toml"), text=XEN, trace_path=str(b), tcp=True, before_spawn=strangers
    )
    assert out.failure == "" and out.status == 0
    assert _json(out.result or {}) == _json(expected)
    _same_traces(a, b)
    rc, err = refused["scenario"]
    assert rc == 1 and err.count("\n") == 1
    assert err.startswith("cosim serve: xen: refused by the run at tcp:127.0.0.1:")
    assert f"'xen' runs scenario {loads(other.read_text(), 'o').sha256[:12]}" in err
    rc, err = refused["secret"]
    assert rc == 1 and err.count("\n") == 1 and err.endswith("'xen' presented no shared secret\n")
    assert refused["version"][1] == "'xen' speaks protocol version 99, expected 1"
    assert len(out.refusals) == 3
    assert all("\n" not in line and secret_free(line) for line in out.refusals)


def secret_free(line: str) -> bool:
    return "secret=" not in line or "secret=''" in line or "********" in line


@pytest.mark.parametrize("victim", ["host", "guest", "dev.nic"])
def test_killed_component_ends_the_run(tmp_path: Path, victim: str) -> None:
    """SIGKILL one component mid-run: the others stop within 2 s, nothing is left, the report
    names it and its last record, and the trace so far is readable: the in-process prefix."""
    a, b = tmp_path / "in.trace", tmp_path / "mp.trace"
    _in_process(EFI, "efi.toml", a)
    killed: dict[str, float] = {}

    def kill(t: int, pids: dict[str, int]) -> None:
        if t >= KILL_AT_NS and not killed:
            os.kill(pids[victim], signal.SIGKILL)
            killed["at"] = time.monotonic()

    out = supervisor.run_sync(loads(EFI, "efi.toml"), text=EFI, trace_path=str(b), on_step=kill)
    stopped_in = time.monotonic() - killed["at"]
    assert stopped_in < 2.0
    assert out.status == supervisor.EXIT_COMPONENT_FAILED and out.result is None
    assert out.failed_role == victim
    assert out.failure.startswith(f"component {victim} was killed by SIGKILL at simulated time ")
    assert set(out.pids) == {"host", "guest", "dev.nic"}
    assert all(_gone(pid) for pid in out.pids.values())
    _, mine, problem = read_trace(b)
    _, full, _ = read_trace(a)
    assert problem is None and 0 < len(mine) < len(full)
    assert mine == full[: len(mine)]
    last = [r for r in mine if r.src == victim][-1]
    line = f"its last trace record: #{last.seq} t={last.t} {victim}"
    assert line in out.failure and out.failure.count("\n") == 0


def _with_fault(text: str, rule: str) -> str:
    return text + "\n[[faults]]\n" + rule + "\n"


@pytest.mark.parametrize(
    ("action", "expect"), [("kill", "was killed by SIGKILL"), ("stop", "hung")]
)
def test_fault_plan_kills_or_stops_a_component(tmp_path: Path, action: str, expect: str) -> None:
    """A fault rule acts on a component's process at a simulated time: the trace records it
    (kind "fault", naming the rule) before the supervision reports the component."""
    text = _with_fault(
        EFI, f'name = "{action}-nic"\naction = "{action}"\ntarget = "dev.nic"\nat = {KILL_AT_NS}'
    )
    trace = tmp_path / "mp.trace"
    out = supervisor.run_sync(
        loads(text, "efi.toml"), text=text, trace_path=str(trace), deadline=2.0
    )
    assert out.status == supervisor.EXIT_COMPONENT_FAILED and out.failed_role == "dev.nic"
    assert expect in out.failure and out.failure.count("\n") == 0
    assert all(_gone(pid) for pid in out.pids.values())
    _, recs, problem = read_trace(trace)
    assert problem is None
    (fault,) = [r for r in recs if r.kind == "fault"]
    assert fault.body == {"rule": f"{action}-nic", "action": action, "target": "dev.nic"}
    assert fault.t >= KILL_AT_NS and recs[-1].seq >= fault.seq


def test_kill_rule_in_process_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "k.toml"
    p.write_text(_with_fault(EFI, 'name = "k"\naction = "kill"\ntarget = "host"\nat = "1ms"'))
    from cosim.cli import main

    assert main(["run", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run with cosim run --processes" in err


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``cosim serve ARGS`` as a child process (stdout and stderr piped, text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "cosim", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env or os.environ, PYTHONPATH=str(ROOT)),
    )


def test_cli_remote_component_over_tcp_with_a_secret_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cosim serve nic --listen tcp:127.0.0.1:0 --secret-file S`` started by hand, then
    ``cosim run --remote nic=ADDR --secret-file S --tcp``: the in-process result and trace."""
    a, b = tmp_path / "in.trace", tmp_path / "mp.trace"
    expected = _in_process(EFI, "efi.toml", a)
    file, secret = tmp_path / "efi.toml", tmp_path / "secret"
    file.write_text(EFI)
    secret.write_text("s3cret-shared-by-hand\n")
    env = {k: v for k, v in os.environ.items() if k != supervisor.SECRET_ENV}
    nosecret = _serve("nic", "--scenario", str(file), "--listen", "tcp:127.0.0.1:0", env=env)
    assert nosecret.wait(timeout=30) == 2
    assert nosecret.stderr is not None
    assert nosecret.stderr.read() == (
        "cosim serve: listening on tcp:127.0.0.1:0 needs the run's shared secret "
        "(COSIM_SECRET or --secret-file)\n"
    )
    dev = _serve("nic", "--scenario", str(file), "--listen", "tcp:127.0.0.1:0", "--secret-file",
                 str(secret), env=env)  # fmt: skip
    try:
        assert dev.stdout is not None
        line = dev.stdout.readline().strip()
        assert line.startswith("cosim serve: dev.nic listening on tcp:127.0.0.1:")
        addr = line.rsplit(" ", 1)[1]
        rc = cli_main(["run", str(file), "--json", "--trace", str(b), "--tcp",
                       "--remote", f"nic={addr}", "--secret-file", str(secret)])  # fmt: skip
        assert dev.wait(timeout=30) == 0
    finally:
        dev.kill()
        dev.wait()
    assert rc == 0
    assert json.loads(capsys.readouterr().out) == json.loads(_json(expected))
    _same_traces(a, b)


def test_cli_wait_for_a_component_that_connects_by_hand(tmp_path: Path) -> None:
    """``cosim run --wait-for guest --secret-file S`` (the file created by the run, mode 0600)
    waits; a guest of another scenario is refused with one line and the run goes on; the right
    one joins with ``cosim serve guest --connect`` and the answer is the in-process one."""
    a, b = tmp_path / "in.trace", tmp_path / "mp.trace"
    expected = _in_process(KEXEC, "kexec.toml", a)
    file, other, secret = tmp_path / "kexec.toml", tmp_path / "other.toml", tmp_path / "secret"
    file.write_text(KEXEC)
    other.write_text(KEXEC.replace("seed = 5", "seed = 9"))
    sock = tmp_path / "run.sock"
    run = subprocess.Popen(
        [sys.executable, "-m", "cosim", "run", str(file), "--json", "--trace", str(b),
         "--wait-for", "guest", "--listen", f"unix:{sock}", "--secret-file", str(secret)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    try:
        assert run.stderr is not None
        assert run.stderr.readline() == (
            f"cosim run: listening on unix:{sock}; waiting for guest\n"
        )
        assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().strip()) == 64
        connect_args = ["--connect", f"unix:{sock}", "--secret-file", str(secret)]
        stranger = _serve("guest", "--scenario", str(other), *connect_args)
        assert stranger.wait(timeout=30) == 1
        assert stranger.stderr is not None
        err = stranger.stderr.read()
        assert err.count("\n") == 1 and err.startswith(
            f"cosim serve: guest: refused by the run at unix:{sock}: 'guest' runs scenario "
        )
        guest = _serve("guest", "--scenario", str(file), *connect_args)
        assert guest.wait(timeout=60) == 0
        out, rest = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 1  # the kexec'd kernel panics, as in process
    assert json.loads(out) == json.loads(_json(expected))
    (logged,) = rest.splitlines()  # the refusal, logged by the run (the secret blanked)
    assert logged.startswith("level='warning' event='connection refused' peer='unix:")
    assert "reason=\"'guest' runs scenario " in logged and "secret='********'" in logged
    _same_traces(a, b)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--deadline", "0"], "cosim run: --deadline 0: must be more than 0 seconds\n"),
        (["--remote", "nic"], "cosim run: --remote 'nic': expected ROLE=ADDR\n"),
        (["--remote", "nic=ftp:x"],
         "cosim run: address 'ftp:x': expected unix:PATH or tcp:HOST:PORT\n"),
        (["--remote", "cpu=unix:/x"],
         "cosim run: role 'cpu' is not a component of this scenario: host, guest, dev.nic\n"),
        (["--wait-for", "guest"], "cosim run: --wait-for guest: a component started by hand "
         "needs the run's shared secret: give --secret-file FILE (created if missing) or "
         "$COSIM_SECRET\n"),
    ],
)  # fmt: skip
def test_cli_multiprocess_options_bad_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    error: str,
) -> None:
    monkeypatch.delenv(supervisor.SECRET_ENV, raising=False)
    file = tmp_path / "efi.toml"
    file.write_text(EFI)
    assert cli_main(["run", str(file), *args]) == 2
    assert capsys.readouterr().err == error


def test_xen_kexec_config_same_json_exit_and_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """configs/xen-dom0-acpi-kexec.toml across processes: the second kernel adopts the frozen
    tables and dies in xen_starting_cpu, and Xen keeps reading the first kernel's property
    table, exactly as in process."""
    sc = ROOT / "configs" / "xen-dom0-acpi-kexec.toml"
    a, b = tmp_path / "in.trace", tmp_path / "mp.trace"
    assert cli_main(["run", str(sc), "--json", "--trace", str(a)]) == 1
    inproc = capsys.readouterr().out
    assert cli_main(["run", str(sc), "--json", "--trace", str(b), "--processes"]) == 1
    assert capsys.readouterr().out == inproc
    r = json.loads(inproc)
    assert r["kexec"]["outcome"] == "panic" and r["exit"] == "panic"
    assert r["kexec"]["first_kernel_tables_after_kexec"]["xen reads property"]["count"] > 0
    _same_traces(a, b)


_CRASHING_DEVICE = """
import os

if os.environ.get("COSIM_TEST_CRASH_AFTER"):
    from hypervisor.devices import MsiDevice

    limit = int(os.environ["COSIM_TEST_CRASH_AFTER"])
    timer = MsiDevice.timer

    def crashing(self, token, port):
        if self.arrivals >= limit:
            raise RuntimeError(f"injected by the test after {limit} MSIs")
        timer(self, token, port)

    MsiDevice.timer = crashing
"""


def test_a_component_that_raises_ends_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python exception in a component's process (the device model, patched at start-up by a
    sitecustomize the test puts on the children's path): it reports ``failed`` with one line,
    the run stops the others, exits 3 and names it; the trace so far is the in-process
    prefix."""
    a, b = tmp_path / "in.trace", tmp_path / "mp.trace"
    _in_process(EFI, "efi.toml", a)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_CRASHING_DEVICE)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("COSIM_TEST_CRASH_AFTER", "5")
    out = supervisor.run_sync(loads(EFI, "efi.toml"), text=EFI, trace_path=str(b))
    assert out.status == supervisor.EXIT_COMPONENT_FAILED and out.failed_role == "dev.nic"
    assert out.failure.startswith(
        "component dev.nic crashed: RuntimeError: injected by the test after 5 MSIs at "
        "simulated time "
    )
    assert out.failure.count("\n") == 0
    assert all(_gone(pid) for pid in out.pids.values())
    _, mine, problem = read_trace(b)
    _, full, _ = read_trace(a)
    assert problem is None and 0 < len(mine) < len(full) and mine == full[: len(mine)]
    msis = [r for r in mine if r.src == "dev.nic" and r.kind == "msi"]
    assert len(msis) == 5
