"""The ``cosim`` command line.

Every subcommand lives in its own module and registers itself here. Bad
arguments print one line (``cosim: ...``) and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from cosim import __version__, logs


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage + message; we print one line
        raise UsageError(f"{self.prog}: {message}")


def _cmd_decode(args: argparse.Namespace) -> int:
    from cosim import decode

    return decode.main(args.name, args.value, args.json)


def _cmd_demo(args: argparse.Namespace) -> int:
    from cosim import demo

    return demo.main()


def _cmd_boot_blobs(args: argparse.Namespace) -> int:
    from cosim import boot

    return boot.main(args.scenario, args.out)


def _cmd_compare_log(args: argparse.Namespace) -> int:
    from cosim import compare_log

    return compare_log.main(args.model_log, args.real_log)


def _cmd_matrix(args: argparse.Namespace) -> int:
    from cosim import matrix

    return matrix.main(args.scenarios, as_json=args.json, as_markdown=args.markdown, jobs=args.jobs)


def _cmd_run(args: argparse.Namespace) -> int:
    from cosim import run

    return run.main(
        args.scenario,
        quiet=args.quiet,
        as_json=args.json,
        trace=args.trace,
        faults=args.faults,
        processes=args.processes,
        tcp=args.tcp,
        remote=args.remote,
        wait_for=args.wait_for,
        listen=args.listen,
        secret_file=args.secret_file,
        deadline=args.deadline,
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from cosim import serve

    return serve.main(
        args.role,
        args.scenario,
        listen_addr=args.listen,
        connect_addr=args.connect,
        secret_file=args.secret_file,
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cosim", description="Xen/Linux GICv3 ITS co-simulation")
    p.add_argument("--version", action="version", version=f"cosim {__version__}")
    p.add_argument("--log-json", action="store_true", help="structured logs as JSON lines")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("demo", help="the main demonstration").set_defaults(func=_cmd_demo)

    d = sub.add_parser("decode", help="decode a register, ITS command or LPI property byte")
    d.add_argument(
        "name", help="register name (GICR_PENDBASER, ICH_LR2_EL2, ...), ITS_CMD or LPI_PROP"
    )
    d.add_argument("value", help="value: 0x... or decimal; 32 bytes of hex for ITS_CMD")
    d.add_argument(
        "--json", action="store_true", help="JSON keyed by the architecture's field names"
    )
    d.set_defaults(func=_cmd_decode)

    r = sub.add_parser("run", help="run a scenario on simulated time")
    r.add_argument("scenario", help="scenario file (configs/*.toml)")
    r.add_argument("--quiet", action="store_true", help="no guest log, only the summary")
    r.add_argument("--json", action="store_true", help="the result object as JSON")
    r.add_argument("--trace", metavar="FILE", help="write the trace of every message and event")
    r.add_argument("--faults", metavar="PLAN", help="a fault plan: TOML with [[faults]] rules")
    r.add_argument(
        "--processes", action="store_true", help="one OS process per component (Unix sockets)"
    )
    r.add_argument(
        "--tcp", action="store_true", help="with --processes: link them by TCP on 127.0.0.1"
    )
    r.add_argument(
        "--remote",
        metavar="ROLE=ADDR",
        action="append",
        default=[],
        help="(implies --processes) ROLE is already listening at ADDR (cosim serve ROLE --listen "
        "ADDR); repeatable",
    )
    r.add_argument(
        "--wait-for",
        metavar="ROLE",
        action="append",
        default=[],
        help="(implies --processes) do not start ROLE: wait for cosim serve ROLE --connect "
        "to the run's address; repeatable",
    )
    r.add_argument(
        "--listen",
        metavar="ADDR",
        help="(implies --processes) where the run listens (default: a private Unix socket, "
        "or 127.0.0.1 with --tcp)",
    )
    r.add_argument(
        "--secret-file",
        metavar="FILE",
        help="the run's shared secret; a missing FILE is created with a fresh one (mode 0600); "
        "else $COSIM_SECRET, else a fresh one",
    )
    r.add_argument(
        "--deadline",
        metavar="SECONDS",
        type=float,
        default=None,
        help="a component that makes no progress this long is hung (default 60)",
    )
    r.set_defaults(func=_cmd_run)

    sv = sub.add_parser("serve", help="run one component of a scenario for a multi-process run")
    sv.add_argument("role", help="component: host, guest, or its name (xen, dom0, dev.NAME)")
    sv.add_argument("--scenario", required=True, help="scenario file (the run's, same hash)")
    where = sv.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--listen", metavar="ADDR", help="wait for the run: unix:PATH or tcp:HOST:PORT"
    )
    where.add_argument("--connect", metavar="ADDR", help="join the run listening at ADDR")
    sv.add_argument(
        "--secret-file", metavar="FILE", help="the run's shared secret (else $COSIM_SECRET)"
    )
    sv.set_defaults(func=_cmd_serve)

    mx = sub.add_parser("matrix", help="run scenarios and print one row each: the verdict table")
    mx.add_argument("scenarios", nargs="*", help="scenario files (default: every file in configs/)")
    fmt = mx.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the rows as JSON")
    fmt.add_argument("--markdown", action="store_true", help="the rows as a Markdown table")
    mx.add_argument("--jobs", type=int, default=2, help="scenarios run at once (default 2)")
    mx.set_defaults(func=_cmd_matrix)

    b = sub.add_parser("boot-blobs", help="write exactly what the scenario's guest is handed")
    b.add_argument("scenario", help="scenario file")
    b.add_argument("--out", required=True, help="directory to write the blobs to")
    b.set_defaults(func=_cmd_boot_blobs)

    c = sub.add_parser(
        "compare-log", help="EFI/ACPI/GIC/ITS/LPI lines of two kernel logs side by side"
    )
    c.add_argument("model_log", help="the model's log (cosim run output)")
    c.add_argument("real_log", help="a real kernel log (dmesg or console)")
    c.set_defaults(func=_cmd_compare_log)

    bn = sub.add_parser("bench", help="speed and scale, each next to the raw echo's ceiling")
    bn.add_argument("--json", action="store_true", help="one key per figure")
    bn.add_argument("--quick", action="store_true", help="small counts, no 64/128 vCPUs, no matrix")
    bn.set_defaults(
        func=lambda a: __import__("cosim.bench").bench.main(as_json=a.json, quick=a.quick)
    )

    t = sub.add_parser("trace", help="inspect a trace file")
    tsub = t.add_subparsers(dest="trace_command", metavar="TRACE_COMMAND", parser_class=_Parser)
    from cosim.trace_cli import add_trace_commands

    add_trace_commands(tsub)
    from cosim.faults_cli import add_fault_commands

    add_fault_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    logs.configure(json=args.log_json, level=args.log_level)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except UsageError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
