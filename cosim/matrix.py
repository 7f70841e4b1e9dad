"""``cosim matrix``: every scenario, one row each — the answer to the patch's question.

Each scenario runs as its own ``cosim run --json --trace`` process (two at a time on
two cores: trio runs and supervises them), then its trace is read back by the same
``trace lpi-tables`` analysis a user would run, so the table follows from recorded
behaviour: who read or wrote the guest's LPI property and pending tables, how many
warnings the kernel printed, and what kexec did.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import trio


def configs_dir() -> Path:
    """Where the scenario files live when none are named: ``configs/`` of the current
    directory (a checkout, as the README runs it), else the one beside the package."""
    here = Path.cwd() / "configs"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "configs"


@dataclass
class Row:
    scenario: str
    host: str = ""
    kernel: str = ""
    warnings: int | None = None
    prop: dict[str, tuple[int, int]] = field(default_factory=dict)  # agent -> (reads, writes)
    pend: dict[str, tuple[int, int]] = field(default_factory=dict)
    kexec: str = ""
    exit: str = ""
    lpis: str = ""
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "host": self.host,
            "kernel": self.kernel,
            "warnings": self.warnings,
            "property_table": {a: {"reads": r, "writes": w} for a, (r, w) in self.prop.items()},
            "pending_tables": {a: {"reads": r, "writes": w} for a, (r, w) in self.pend.items()},
            "kexec": self.kexec,
            "exit": self.exit,
            "lpis": self.lpis,
            "error": self.error,
        }


def default_scenarios() -> list[Path]:
    return sorted(configs_dir().glob("*.toml"))


def host_label(r: dict[str, Any], sc: dict[str, Any]) -> str:
    h = sc.get("host", {})
    if r["host"] == "baremetal":
        return f"bare metal ({h.get('boot', 'dt')})"
    parts = [f"Xen {h.get('dom0_boot', 'acpi')}"]
    parts.append("ITS" if h.get("has_its") else "no ITS")
    if h.get("efi_memreserve"):
        parts.append("MEMRESERVE")
    return ", ".join(parts)


def table_counts(trace: str) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """(property, pending): per agent (reads, writes), summed over every such table in the trace."""
    from cosim.trace_lpi_tables import lpi_tables

    verdict = lpi_tables(trace).as_dict()
    sums: dict[str, dict[str, list[int]]] = {"property": {}, "pending": {}}
    for t in verdict["tables"]:
        if t["table"] not in sums:
            continue
        for agent, a in t["agents"].items():
            acc = sums[t["table"]].setdefault(agent, [0, 0])
            acc[0] += a["reads"]
            acc[1] += a["writes"]
    conv = {k: {a: (v[0], v[1]) for a, v in d.items()} for k, d in sums.items()}
    return conv["property"], conv["pending"]


def kexec_label(r: dict[str, Any]) -> str:
    k = r.get("kexec") or {}
    outcome = k.get("outcome", "none")
    if outcome in ("none", None):
        return "-"
    msgs = " ".join(k.get("messages", []))
    how = []
    if "Using preallocated redistributor tables" in msgs:
        how.append("adopts old tables")
    if "Booted with LPIs enabled" in msgs:
        how.append("LPIs left on")
    if any(c.get("function") == "gic_reset_prop_table" for c in r.get("corruption", [])):
        how.append("0xa2 over its own image")
    if "enlighten.c" in msgs:
        how.append("BUG in xen_starting_cpu")
    return outcome + (f" ({'; '.join(how)})" if how else "")


async def _run_one(path: Path, tmp: Path, limiter: trio.CapacityLimiter, done: Any) -> Row:
    trace = tmp / f"{path.stem}.trace"
    row = Row(path.stem)
    async with limiter:
        proc = await trio.run_process(
            [sys.executable, "-m", "cosim", "run", "--json", "--trace", str(trace), str(path)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    if proc.returncode not in (0, 1):
        row.error = (
            proc.stderr.decode(errors="replace").strip().splitlines()[-1:][0]
            if proc.stderr
            else "failed"
        )
        done()
        return row
    r = json.loads(proc.stdout)
    import tomllib

    sc = tomllib.loads(path.read_text())
    row.host = host_label(r, sc)
    row.kernel = r["kernel"]
    row.warnings = len(r["warnings"])
    row.prop, row.pend = await trio.to_thread.run_sync(table_counts, str(trace))
    row.kexec = kexec_label(r)
    row.exit = r["exit"]
    row.lpis = f"{r['lpis_delivered']}/{r['lpis_raised']}"
    done()
    return row


async def run_matrix(paths: list[Path], jobs: int, progress: Any = None) -> list[Row]:
    rows: list[Row | None] = [None] * len(paths)
    limiter = trio.CapacityLimiter(jobs)
    with tempfile.TemporaryDirectory(prefix="cosim-matrix-") as tmpdir:

        async def one(i: int, p: Path) -> None:
            rows[i] = await _run_one(p, Path(tmpdir), limiter, progress or (lambda: None))

        async with trio.open_nursery() as nursery:
            for i, p in enumerate(paths):
                nursery.start_soon(one, i, p)
    return [r for r in rows if r is not None]


def _rw(d: dict[str, tuple[int, int]], agent: str) -> str:
    r, w = d.get(agent, (0, 0))
    return "-" if (r, w) == (0, 0) else f"{r}R/{w}W"


COLUMNS = (
    "scenario",
    "host",
    "kernel",
    "warnings",
    "prop hw",
    "prop xen",
    "pend hw",
    "pend xen",
    "kexec",
)


def cells(row: Row) -> list[str]:
    if row.error:
        return [row.scenario, "error", row.error, "", "", "", "", "", ""]
    return [
        row.scenario,
        row.host,
        row.kernel,
        str(row.warnings),
        _rw(row.prop, "hw"),
        _rw(row.prop, "xen"),
        _rw(row.pend, "hw"),
        _rw(row.pend, "xen"),
        row.kexec,
    ]


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def main(
    scenarios: list[str],
    *,
    as_json: bool = False,
    as_markdown: bool = False,
    jobs: int = 2,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    out = out or sys.stdout
    err = err or sys.stderr
    paths = [Path(s) for s in scenarios] if scenarios else default_scenarios()
    if not paths:
        err.write(
            f"cosim matrix: no scenario files in {configs_dir()} (name some, or run it from a checkout)\n"
        )
        return 2
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        err.write(f"cosim matrix: {missing[0]}: no such scenario file\n")
        return 2
    console = Console(file=err)
    with Progress(
        TextColumn("running scenarios"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not err.isatty(),
    ) as progress:
        task = progress.add_task("matrix", total=len(paths))
        rows = trio.run(run_matrix, paths, max(1, jobs), lambda: progress.advance(task))
    if as_json:
        out.write(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    elif as_markdown:
        out.write(markdown(rows) + "\n")
    else:
        table = Table(title="Who touches the guest's LPI tables (R/W = reads/writes)")
        for c in COLUMNS:
            table.add_column(c)
        for r in rows:
            table.add_row(*cells(r))
        Console(file=out, width=200).print(table)
    return 1 if any(r.error for r in rows) else 0
