"""cosim.progress: a bar on a terminal only, moved to the simulated time it is given."""

from __future__ import annotations

import io

from cosim.progress import sim_progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_outside_a_terminal() -> None:
    err = io.StringIO()
    with sim_progress(err, 10_000_000, "scenario") as update:
        assert update is None
    assert err.getvalue() == ""


def test_a_bar_on_a_terminal_follows_simulated_time() -> None:
    err = _Tty()
    with sim_progress(err, 10_000_000, "scenario") as update:
        assert update is not None
        update(5_000_000, 10_000_000)
        update(5_000_001, 10_000_000)  # closer than 1 %: skipped
        update(10_000_000, 10_000_000)
    out = err.getvalue()
    assert "scenario" in out and "10.0 ms of 10.0 ms simulated" in out
