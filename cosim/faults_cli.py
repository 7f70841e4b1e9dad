"""``cosim faults list|sweep`` and ``cosim fuzz``: the fault-injection commands.

``faults list`` prints every injectable site and action (like fail_function/injectable).
``faults sweep SCENARIO --rule R`` is fail-nth: it fails the 1st, 2nd, 3rd... match of rule R
in turn (``nth = n``: exactly that match, times 1), one run each, until a run where the rule
matched fewer than n times, and prints a table of outcomes with a progress bar.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

import msgspec


def add_fault_commands(sub: Any) -> None:
    """Register ``faults`` (list, sweep) and ``fuzz`` on the ``cosim`` subparsers."""
    f = sub.add_parser("faults", help="fault injection: list sites, sweep a rule (fail-nth)")
    fsub = f.add_subparsers(dest="faults_command", metavar="FAULTS_COMMAND",
                            parser_class=type(f))  # fmt: skip
    ls = fsub.add_parser("list", help="every injectable site and action")
    ls.add_argument("--json", action="store_true", help="the sites as JSON")
    ls.set_defaults(func=_cmd_list)
    sw = fsub.add_parser("sweep", help="fail the 1st, 2nd, 3rd... match of a rule in turn")
    sw.add_argument("scenario", help="scenario file")
    sw.add_argument("--rule", required=True, help="the rule to sweep (in the scenario or plan)")
    sw.add_argument("--faults", metavar="PLAN", help="a fault plan holding the rule")
    sw.add_argument("--max", type=int, default=20, help="at most this many runs (default 20)")
    sw.add_argument("--json", action="store_true", help="the rows as JSON")
    sw.set_defaults(func=_cmd_sweep)

    z = sub.add_parser("fuzz", help="a hostile guest against the host model")
    z.add_argument("scenario", help="scenario file")
    z.add_argument("--budget", type=int, default=300, help="operations to send (default 300)")
    z.add_argument("--seed", type=int, default=1, help="the fuzzer's seed (default 1)")
    z.add_argument("--replay", metavar="FILE", help="run exactly the operations of a replay file")
    z.add_argument("--out", metavar="FILE", help="where to write the replay file of a failure")
    z.add_argument("--hostile-all", action="store_true",
                   help="also self-harming writes and shutdowns (no liveness check)")  # fmt: skip
    z.add_argument("--no-shrink", action="store_true", help="do not shrink a failure")
    z.add_argument("--trace", metavar="FILE", help="write the run's trace")
    z.add_argument("--round", type=int, default=500,
                   help="operations per boot (default 500); a xen_crash ends only its round")  # fmt: skip
    z.set_defaults(func=_cmd_fuzz)


def _cmd_list(args: argparse.Namespace) -> int:
    return list_main(as_json=args.json)


def _cmd_sweep(args: argparse.Namespace) -> int:
    return sweep_main(args.scenario, args.rule, plan=args.faults, max_runs=args.max,
                      as_json=args.json)  # fmt: skip


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from cosim import fuzz

    return fuzz.main(args.scenario, budget=args.budget, seed=args.seed, replay=args.replay,
                     out_path=args.out, hostile_all=args.hostile_all, no_shrink=args.no_shrink,
                     trace=args.trace, round_size=args.round)  # fmt: skip


def list_main(*, as_json: bool = False, out: TextIO | None = None) -> int:
    from cosim.faults import sites_table

    out = out or sys.stdout
    rows = sites_table()
    if as_json:
        keys = ("action", "site", "hosts", "trigger", "what")
        out.write(json.dumps([dict(zip(keys, r)) for r in rows], indent=1) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title="injectable sites and actions (knobs: probability interval times space "
              "nth window; timed: at every)")  # fmt: skip
    for col in ("action", "site", "hosts", "trigger", "what it does"):
        t.add_column(col)
    for r in rows:
        t.add_row(*r)
    Console(file=out, width=140).print(t)
    return 0


def sweep(sc: Any, rules: list[Any], rule: str, max_runs: int,
          progress: Any = None) -> list[dict[str, Any]]:  # fmt: skip
    """One row per run: n, whether the n-th match existed, and the run's outcome."""
    from cosim.faults import with_rule
    from cosim.run import execute

    base = msgspec.structs.replace(sc, faults=[])
    rows = []
    for n in range(1, max_runs + 1):
        plan = with_rule(rules, rule, lambda r, n=n: msgspec.structs.replace(r, nth=n, times=1))
        sim, r = execute(base, faults=plan)
        crash = getattr(sim.host, "crash", None)
        f = r.get("faults", {})
        row = {
            "n": n,
            "injected": f.get("injections", {}).get(rule, 0),
            "matches": f.get("matches", {}).get(rule, 0),
            "exit": r["exit"],
            "warnings": len(r["warnings"]),
            "raised": r["lpis_raised"],
            "delivered": r["lpis_delivered"],
            "coalesced": r["lpis_coalesced"],
            "dropped": r["lpis_dropped"],
            "dropped_by_fault": r.get("lpis_dropped_by_fault", 0),
            "pending": r["lpis_pending"],
            "kexec": r["kexec"].get("outcome", "none"),
            "xen_crash": crash.site if crash is not None else "",
        }
        rows.append(row)
        if progress is not None:
            progress(n)
        if row["matches"] < n:
            break
    return rows


def sweep_main(scenario: str, rule: str, *, plan: str | None = None, max_runs: int = 20,
               as_json: bool = False, out: TextIO | None = None,
               err: TextIO | None = None) -> int:  # fmt: skip
    from cosim.faults import FaultPlanError, load_plan
    from cosim.scenario import ScenarioError, load

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        sc = load(scenario)
        rules = list(sc.faults) + (load_plan(plan) if plan else [])
        if rule not in {r.name for r in rules}:
            names = ", ".join(r.name for r in rules) or "none"
            raise FaultPlanError(f"--rule {rule}: no such rule; rules: {names}")
        if max_runs < 1:
            raise FaultPlanError(f"--max {max_runs}: must be at least 1")
    except (ScenarioError, FaultPlanError) as exc:
        err.write(f"cosim faults sweep: {exc}\n")
        return 2
    from rich.console import Console
    from rich.progress import Progress

    console = Console(file=err if as_json else out, width=160)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"fail-nth {rule}", total=max_runs)
        rows = sweep(sc, rules, rule, max_runs, lambda n: bar.update(task, completed=n))
    if as_json:
        out.write(json.dumps(rows, indent=1) + "\n")
        return 0
    from rich.table import Table

    t = Table(title=f"{sc.name}: fail-nth sweep of rule {rule}")
    cols = ("n", "injected", "exit", "warnings", "raised", "delivered", "coalesced", "dropped",
            "dropped_by_fault", "pending", "kexec", "xen_crash")  # fmt: skip
    for c in cols:
        t.add_column(c)
    for row in rows:
        t.add_row(*(str(row[c]) for c in cols))
    console.print(t)
    last = rows[-1]
    if last["matches"] < last["n"]:
        out.write(f"rule {rule} matched {last['matches']} time(s): sweep complete\n")
    else:
        out.write(f"stopped at --max {max_runs}; rule {rule} still matching\n")
    return 0
