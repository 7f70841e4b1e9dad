"""The ``cosim trace`` subcommands: show, stats, follow, check, lpi-tables, diff, export.

cosim/cli.py creates the ``trace`` parser and its subparsers and calls
:func:`add_trace_commands`; every command's ``func(args)`` returns the exit status.
:func:`run` parses and runs ``cosim trace ...`` arguments on its own (for tests and tools).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn


def _show(args: argparse.Namespace) -> int:
    from cosim import trace_show

    return trace_show.main(args.trace, as_json=args.json, filter_expr=args.filter)


def _stats(args: argparse.Namespace) -> int:
    from cosim import trace_stats

    return trace_stats.main(args.trace, as_json=args.json)


def _follow(args: argparse.Namespace) -> int:
    from cosim import trace_follow

    msi = None
    if args.msi is not None:
        try:
            msi = trace_follow.parse_msi(args.msi)
        except ValueError as exc:
            print(f"cosim trace follow: {exc}", file=sys.stderr)
            return 2
    return trace_follow.main(args.trace, lpi=args.lpi, msi=msi, nth=args.nth)


def _check(args: argparse.Namespace) -> int:
    from cosim import trace_check

    return trace_check.main(args.trace, args.rules)


def _diff(args: argparse.Namespace) -> int:
    from cosim import trace_diff

    return trace_diff.main(args.a, args.b, canonical=args.canonical)


def _export(args: argparse.Namespace) -> int:
    from cosim import trace_export

    return trace_export.main(args.trace, args.chrome)


def _lpi_tables(args: argparse.Namespace) -> int:
    from cosim import trace_lpi_tables

    return trace_lpi_tables.main(args.trace, as_json=args.json)


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def add_trace_commands(trace_subparsers: Any) -> None:
    """Register every ``cosim trace`` command (show, stats, follow, check, lpi-tables, diff,
    export) on its subparsers."""
    sub = trace_subparsers

    p = sub.add_parser("show", help="one line per record")
    p.add_argument("trace", help="trace file")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--filter",
        metavar="EXPR",
        help='display filter, e.g. \'kind == "exit" && reg == "GICR_PENDBASER"\'',
    )
    p.set_defaults(func=_show)

    p = sub.add_parser("stats", help="counts, interrupt latencies, list-register use")
    p.add_argument("trace", help="trace file")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=_stats)

    p = sub.add_parser("follow", help="one interrupt from its MSI to its EOI")
    p.add_argument("trace", help="trace file")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--lpi", type=_int, metavar="N", help="the physical LPI INTID")
    which.add_argument("--msi", metavar="DEVID:EVENTID", help="the device's MSI, e.g. 0x10:3")
    p.add_argument("--nth", type=_int, default=1, metavar="K", help="the K-th one (from 1)")
    p.set_defaults(func=_follow)

    p = sub.add_parser("check", help="invariants for CI: exit 0, or 1 with the first violation")
    p.add_argument("trace", help="trace file")
    p.add_argument(
        "rules",
        nargs="+",
        metavar="RULE",
        help="no-lost-lpi, no-foreign-access=TABLE, warnings=N, max-lr-overflow=N",
    )
    p.set_defaults(func=_check)

    p = sub.add_parser(
        "lpi-tables", help="who touched each guest LPI/ITS table: hw, xen, the guest"
    )
    p.add_argument("trace", help="trace file")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=_lpi_tables)

    p = sub.add_parser("diff", help="the first differing record and field")
    p.add_argument("a", help="first trace")
    p.add_argument("b", help="second trace")
    p.add_argument(
        "--canonical",
        action="store_true",
        help="compare only what must not differ between in-process and multi-process runs",
    )
    p.set_defaults(func=_diff)

    p = sub.add_parser("export", help="Chrome trace-event JSON (opens in ui.perfetto.dev)")
    p.add_argument("trace", help="trace file")
    p.add_argument("--chrome", required=True, metavar="OUT.json", help="output file")
    p.set_defaults(func=_export)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


def run(argv: Sequence[str]) -> int:
    """Run ``cosim trace ARGV...``: bad arguments print one line and give 2."""
    parser = _Parser(prog="cosim trace")
    add_trace_commands(
        parser.add_subparsers(dest="trace_command", metavar="TRACE_COMMAND", parser_class=_Parser)
    )
    try:
        args = parser.parse_args(list(argv))
    except _UsageError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    func = getattr(args, "func", None)
    if func is None:
        print(
            "cosim trace: give a command: show, stats, follow, check, lpi-tables, diff, export",
            file=sys.stderr,
        )
        return 2
    try:
        return int(func(args))
    except BrokenPipeError:
        return 0
