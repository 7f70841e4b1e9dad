"""The ``cosim`` pytest plugin: the ``cosim_run`` fixture and the failure report section."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from tests.cosim.test_faults import BM

pytest_plugins = ["pytester"]

SCENARIO = BM.format(duration="135ms")
PLAN = '[[faults]]\nname = "d"\naction = "drop"\nmatch = {kind = "msi"}\ninterval = 2\n'


def _args() -> list[str]:
    """Load the plugin by name unless the installed entry point (pytest11 'cosim') does."""
    installed = any(e.name == "cosim" for e in entry_points(group="pytest11"))
    return [] if installed else ["-p", "cosim.pytest_plugin"]


def test_fixture_runs_a_scenario_with_a_plan(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", scenario=SCENARIO, plan=PLAN)
    pytester.makepyfile(
        """
        from transport.trace import read_trace

        def test_drop(cosim_run):
            result, trace = cosim_run("scenario.toml", faults="plan.toml")
            assert result["lpis_dropped_by_fault"] == result["faults"]["injections"]["d"] > 0
            _, recs, problem = read_trace(trace)
            assert problem is None
            assert len([r for r in recs if r.kind == "fault"]) == result["lpis_dropped_by_fault"]

        def test_rules_as_dicts(cosim_run):
            result, _ = cosim_run("scenario.toml", faults=[{"name": "x", "action": "drop",
                                                             "match": {"kind": "msi"}}])
            assert result["lpis_delivered"] == 0 and result["lpis_dropped_by_fault"] > 0

        def test_processes(cosim_run):
            import pytest
            from cosim.pytest_plugin import MultiProcessFaults
            result, trace = cosim_run("scenario.toml", processes=True)
            assert result["exit"] == "ok" and result["lpis_delivered"] > 0
            with pytest.raises(MultiProcessFaults, match="runs in process only"):
                cosim_run("scenario.toml", faults="plan.toml", processes=True)
        """
    )
    res = pytester.runpytest(*_args())
    res.assert_outcomes(passed=3)


def test_failing_test_reports_seed_plan_and_command(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", scenario=SCENARIO)
    pytester.makepyfile(
        f"""
        PLAN = {PLAN!r}

        def test_expects_no_drop(cosim_run):
            result, trace = cosim_run("scenario.toml", faults=PLAN)
            assert result["lpis_dropped"] == 0
        """
    )
    res = pytester.runpytest(*_args())
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    assert "cosim run 1" in out
    res.stdout.fnmatch_lines(
        [
            "*scenario: scenario.toml*",
            "seed: 1",
            "exit: ok",
            "plan:",
            "[[][[]faults]]",
            'name = "d"',
            "reproduce: cosim run scenario.toml --faults */plan-1.toml --trace */scenario-1.trace",
        ]
    )
