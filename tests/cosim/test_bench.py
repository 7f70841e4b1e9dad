"""``cosim bench --quick --json``: the shape of its answer (keys and types), never its speed."""

from __future__ import annotations

import io
import json
import math

import pytest

from cosim import bench, cli


@pytest.fixture(scope="module")
def figures() -> dict[str, object]:
    out, err = io.StringIO(), io.StringIO()
    assert bench.main(as_json=True, quick=True, out=out, err=err) == 0, err.getvalue()
    return json.loads(out.getvalue())


RATES = [
    "echo_memory_rt_per_s",
    "echo_unix_rt_per_s",
    "endpoint_memory_rt_per_s",
    "endpoint_unix_rt_per_s",
    "hypercall_inprocess_rt_per_s",
    "hypercall_unix_rt_per_s",
    "hypercall_inprocess_ratio_to_echo",
    "hypercall_unix_ratio_to_echo",
    *(f"lpis_per_s_{h}_{n}dev" for h in ("baremetal", "xen") for n in (1, 8)),
    *(f"boot_s_{h}_{n}dev" for h in ("baremetal", "xen") for n in (1, 8)),
    *(f"boot_s_vcpus_{v}" for v in bench.QUICK_VCPU_STEPS),
    "trace_overhead",
    "run_untraced_s",
    "run_traced_s",
]


def test_quick_json_has_every_figure_with_its_type(figures: dict[str, object]) -> None:
    assert figures["mode"] == "quick"
    for key in RATES:
        assert isinstance(figures[key], float) and math.isfinite(figures[key]), key
    for key in ("echo_memory_rt_per_s", "hypercall_unix_rt_per_s", "lpis_per_s_xen_8dev"):
        assert figures[key] > 0, key
    for key in ("run_untraced_max_rss_kib", "run_traced_max_rss_kib", "trace_bytes"):
        assert isinstance(figures[key], int) and figures[key] > 0, key
    # --quick skips the full matrix, 64/128 vCPUs and the multi-process scenario runs.
    assert figures["matrix_wall_s"] is None
    assert "boot_s_vcpus_64" not in figures and "boot_s_vcpus_128" not in figures
    assert figures["lpis_per_s_xen_1dev_processes"] is None
    assert isinstance(figures["hypercall_unix_method"], str)


def test_gicr_typer_reads_follow_linux_walks(figures: dict[str, object]) -> None:
    """gic_populate_rdist reads GICR_TYPER twice per frame it visits (gic_iterate_rdists and
    __gic_populate_rdist) up to its own: n(n+1) for n CPUs; the boot makes four more per CPU
    (update_rdist_properties twice, gic_rdists_supports_plpis, its_cpu_init_collection)."""
    for n in bench.QUICK_VCPU_STEPS:
        assert figures[f"gicr_typer_reads_populate_rdist_vcpus_{n}"] == n * (n + 1)
        assert figures[f"gicr_typer_reads_vcpus_{n}"] == n * (n + 1) + 4 * n
    growth = figures["gicr_typer_reads_growth_per_doubling"]
    assert isinstance(growth, list)
    assert [(g["from"], g["to"]) for g in growth] == [(4, 16), (16, 32)]


def test_text_report_names_each_figure_next_to_the_echo(figures: dict[str, object]) -> None:
    lines = bench.report(figures)
    assert lines[0].startswith("cosim bench (quick")
    assert any(line.lstrip().startswith("raw trio+msgpack echo") for line in lines)
    assert any("xen_version hypercall" in line for line in lines)
    assert any(line.startswith("cosim matrix, every config: skipped") for line in lines)


def test_cli_registers_bench() -> None:
    args = cli.build_parser().parse_args(["bench", "--quick", "--json"])
    assert args.quick and args.json and callable(args.func)


def test_growth_per_doubling_is_the_geometric_step() -> None:
    g = bench.growth([(4, 1.0), (16, 16.0), (32, 64.0)])
    assert [round(x["per_doubling"], 6) for x in g] == [4.0, 4.0]
