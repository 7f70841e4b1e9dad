"""The ``cosim`` pytest plugin (entry point ``pytest11``: ``cosim = cosim.pytest_plugin``).

Fixture ``cosim_run``: ``result, trace = cosim_run(scenario, faults=None, processes=False)``
runs a scenario (a path, TOML text, or a :class:`~cosim.scenario.Scenario`) with a fault plan
(a plan file path, TOML text with ``[[faults]]``, or a list of
:class:`~cosim.faults.FaultRule` / dicts) in process and hands back the result object and the
trace file. ``processes=True`` runs one OS process per component (cosim run --processes);
its plan may only kill or stop components.

When a test that used it fails, the report gets a ``cosim`` section per run: the scenario,
the seed, the plan and the command that reproduces it (``cosim run SCENARIO --faults PLAN
--trace FILE``); plans and scenarios given as text are written next to the trace so that the
command works as printed.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

_RUNS = pytest.StashKey[list[dict[str, Any]]]()


class MultiProcessFaults(ValueError):
    """A plan for a multi-process run may only kill or stop components."""


def _run_processes(sc: Any, rules: list[Any], trace: Path) -> dict[str, Any]:
    """One OS process per component (cosim/supervisor.py); a component that died gives
    ``{"exit": "component-failed", "failure": ..., "failed_role": ...}`` instead of a result."""
    import msgspec

    from cosim.faults import process_rules
    from cosim.supervisor import run_sync

    others = [r for r in rules if r not in process_rules(rules)]
    if others:
        raise MultiProcessFaults(
            f"rule {others[0].name!r} ({others[0].action}) runs in process only; "
            "with processes=True a plan may only kill or stop components"
        )
    if rules:
        sc = msgspec.structs.replace(sc, faults=list(sc.faults) + list(rules))
    out = run_sync(sc, trace_path=str(trace))
    if out.result is not None:
        return out.result
    return {"exit": "component-failed", "failure": out.failure, "failed_role": out.failed_role}


def _plan(faults: Any, where: Path, n: int) -> tuple[list[Any], str | None, str]:
    """(rules, plan file path or None, the plan as text for the report)."""
    from cosim.faults import FaultRule, load_plan, loads_plan

    if faults is None:
        return [], None, "(none)"
    if isinstance(faults, Path) or (isinstance(faults, str) and "\n" not in faults
                                    and "[[faults]]" not in faults):  # fmt: skip
        p = Path(faults)
        return load_plan(p), str(p), p.read_text(encoding="utf-8")
    if isinstance(faults, str):
        rules = loads_plan(faults, f"<plan {n}>")
        text = faults
    else:
        rules = [r if isinstance(r, FaultRule) else msgspec.convert(r, FaultRule)
                 for r in faults]  # fmt: skip
        text = _plan_toml(rules)
    path = where / f"plan-{n}.toml"
    path.write_text(text, encoding="utf-8")
    return rules, str(path), text


def _plan_toml(rules: Sequence[Any]) -> str:
    """The rules as a ``[[faults]]`` TOML plan (only the keys that differ from the defaults)."""
    from cosim.faults import FaultRule

    lines: list[str] = []
    defaults = {
        f: getattr(FaultRule(name="", action="drop"), f) for f in FaultRule.__struct_fields__
    }
    for r in rules:
        lines.append("[[faults]]")
        for f in FaultRule.__struct_fields__:
            v = getattr(r, f)
            if f not in ("name", "action") and v == defaults[f]:
                continue
            lines.append(f"{f} = {_toml(v)}")
        lines.append("")
    return "\n".join(lines)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    return repr(v)


@pytest.fixture
def cosim_run(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    """Run a scenario in process with a fault plan: ``(result, trace_path)``."""
    from cosim.run import execute
    from cosim.scenario import Scenario, load, loads

    runs = request.node.stash.setdefault(_RUNS, [])

    def run(scenario: Any, faults: Any = None, processes: bool = False) -> tuple[dict, Path]:
        n = len(runs) + 1
        if isinstance(scenario, Scenario):
            sc = scenario
        elif isinstance(scenario, str) and "\n" in scenario:
            p = tmp_path / f"scenario-{n}.toml"
            p.write_text(scenario, encoding="utf-8")
            sc = loads(scenario, str(p))
        else:
            sc = load(scenario)
        rules, plan_path, plan_text = _plan(faults, tmp_path, n)
        trace = tmp_path / f"{sc.name}-{n}.trace"
        info = {"scenario": sc.path or "(in memory)", "seed": sc.run.seed, "plan": plan_text,
                "trace": str(trace)}  # fmt: skip
        cmd = ["cosim", "run", sc.path or "SCENARIO"] + (["--processes"] if processes else [])
        if plan_path:
            cmd += ["--faults", plan_path]
        cmd += ["--trace", str(trace)]
        info["command"] = shlex.join(cmd)
        runs.append(info)
        if processes:
            result = _run_processes(sc, rules, trace)
        else:
            _, result = execute(sc, str(trace), faults=rules)
        info["exit"] = result["exit"]
        return result, trace

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    for i, info in enumerate(item.stash.get(_RUNS, []), 1):
        text = (
            f"scenario: {info['scenario']}\nseed: {info['seed']}\n"
            f"exit: {info.get('exit', '(did not finish)')}\ntrace: {info['trace']}\n"
            f"plan:\n{info['plan'].rstrip()}\nreproduce: {info['command']}\n"
        )
        rep.sections.append((f"cosim run {i}", text))
