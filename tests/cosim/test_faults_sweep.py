"""``cosim faults sweep``: fail-nth, one run per match until a run with no match."""

from __future__ import annotations

from pathlib import Path

from cosim.cli import main
from tests.cosim.test_faults import BM

SCENARIO = BM.format(duration="140ms") + (
    '[[faults]]\nname = "stray"\naction = "unmapped_msi"\nat = "131ms"\nevery = "3ms"\n'
    'window = ["131ms", "138ms"]\n'
)


def test_sweep_fails_each_match_in_turn(tmp_path: Path, capsys) -> None:
    s = tmp_path / "s.toml"
    s.write_text(SCENARIO)
    assert main(["faults", "sweep", str(s), "--rule", "stray", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    # ticks at 131, 134, 137 ms: three runs inject once each, the fourth finds no 4th match
    assert [(r["n"], r["injected"], r["matches"]) for r in rows] == [
        (1, 1, 3), (2, 1, 3), (3, 1, 3), (4, 0, 3),
    ]  # fmt: skip
    for r in rows:
        assert r["exit"] == "ok" and r["xen_crash"] == "" and r["kexec"] == "none"
        assert r["dropped"] == r["injected"]  # the ITS drops the unmapped MSI
        assert r["raised"] == r["delivered"] + r["coalesced"] + r["dropped"] + r["pending"]


def test_sweep_table_and_errors(tmp_path: Path, capsys) -> None:
    s = tmp_path / "s.toml"
    s.write_text(SCENARIO)
    assert main(["faults", "sweep", str(s), "--rule", "stray", "--max", "2"]) == 0
    out = capsys.readouterr().out
    assert "fail-nth sweep of rule stray" in out and "dropped_by_fault" in out
    assert out.endswith("stopped at --max 2; rule stray still matching\n")
    assert main(["faults", "sweep", str(s), "--rule", "nope"]) == 2
    assert (
        capsys.readouterr().err == "cosim faults sweep: --rule nope: no such rule; rules: stray\n"
    )
