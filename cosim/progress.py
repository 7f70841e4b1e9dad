"""Progress of a long run on a terminal: simulated time against the scenario's duration.

Shown on stderr only when it is a terminal (never in a pipe, a file or a test's
capture), and gone when the run ends (rich's transient display), so the output
of ``cosim run`` is the same with or without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

#: Progress callback: (simulated time now, end of the duration), both in ns.
Update = Callable[[int, int], None]


@contextmanager
def sim_progress(err: TextIO, total_ns: int, label: str) -> Iterator[Update | None]:
    """A callback that moves a bar to the simulated time it is given; None if ``err`` is not
    a terminal. Updates closer than 1 % of ``total_ns`` to the last one are skipped (a
    multi-process run reports every round)."""
    if not err.isatty() or total_ns <= 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sim]} of {task.fields[end]} simulated"),
        TimeElapsedColumn(),
    )
    step = max(total_ns // 100, 1)
    shown = [-step]
    with Progress(*columns, console=Console(file=err), transient=True) as bar:
        task = bar.add_task(label, total=total_ns, sim=_ms(0), end=_ms(total_ns))

        def update(now: int, end: int) -> None:
            if now - shown[0] >= step or now >= end:
                shown[0] = now
                bar.update(task, completed=min(now, total_ns), sim=_ms(now))

        yield update


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.1f} ms"
