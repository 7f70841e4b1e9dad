"""``cosim run`` on the bare-metal scenarios: the result object, accounting, determinism, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosim.cli import main
from cosim.run import execute
from cosim.scenario import load, loads
from transport.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


@pytest.fixture(scope="module")
def dt_kexec() -> dict:
    _, result = execute(load(CONFIGS / "baremetal-dt-kexec.toml"))
    return result


@pytest.fixture(scope="module")
def efi_kexec() -> dict:
    _, result = execute(load(CONFIGS / "baremetal-efi-kexec.toml"))
    return result


def _accounted(r: dict) -> None:
    assert r["lpis_raised"] > 0
    assert r["lpis_raised"] == (
        r["lpis_delivered"]
        + r["lpis_delivered_unexpected"]
        + r["lpis_coalesced"]
        + r["lpis_dropped"]
        + r["lpis_pending"]
    )
    assert r["lpis_dropped"] == 0  # no fault plan: the ITS drops nothing


@pytest.mark.parametrize("name", ["baremetal-dt", "baremetal-efi"])
def test_native_boots_deliver_every_msi(name: str) -> None:
    sim, r = execute(load(CONFIGS / f"{name}.toml"))
    assert r["warnings"] == [] and r["exit"] == "ok" and r["kexec"]["outcome"] == "none"
    _accounted(r)
    assert r["lpis_pending"] == 0  # the drain window lets every raised MSI land
    # Counted at both ends: the device model's raises and the guest driver's handler runs.
    assert r["lpis_delivered"] == sum(
        sum(v.values()) for v in r["lpis_delivered_by_device"].values()
    )
    assert [g["cpus_online"] for g in r["generations"]] == [[0, 1, 2, 3]]


def test_efi_kexec_adopts_the_tables(efi_kexec: dict) -> None:
    r = efi_kexec
    assert r["kexec"]["outcome"] == "booted" and r["exit"] == "ok"
    log = r["kexec"]["messages"]
    assert any(x.endswith("GICv3: Using preallocated redistributor tables") for x in log)
    first = [x.split("@")[1] for x in _gen_lines(r, 1) if "LPI pending table" in x]
    second = [x.split("@")[1] for x in log if "using reserved LPI pending table" in x]
    assert len(first) == 4 and second == first  # every CPU adopts its old table at the old address
    assert r["corruption"] == []
    _accounted(r)


def test_dt_kexec_dies_on_its_own_overwritten_text(dt_kexec: dict) -> None:
    r = dt_kexec
    assert r["kexec"]["outcome"] == "panic" and r["exit"] == "panic"
    resets = [c for c in r["corruption"] if c["function"] == "gic_reset_prop_table"]
    assert len(resets) == 1
    c = resets[0]
    prop = [x for x in _gen_lines(r, 1) if "using LPI property table" in x][0]
    assert c["address"] == int(prop.rsplit("@", 1)[1], 16)  # the first kernel's property table...
    assert (
        c["owner_kind"] == "image" and c["owner"] == "kernel image (gen 2)"
    )  # ...is now the new kernel's text
    assert c["size"] == 0x10000 and c["writer"] == "guest"
    oops = r["kexec"]["oops"]
    assert oops["word"] == 0xA2A2A2A2 and oops["gen"] == 2
    assert any(
        "Kernel panic - not syncing: Attempted to kill the idle task!" in x
        for x in r["kexec"]["messages"]
    )
    _accounted(r)


def _gen_lines(r: dict, gen: int) -> list[str]:
    """Log lines of one kernel generation (kernels start at 'Booting Linux')."""
    out: list[list[str]] = [[]]
    for line in r["log"]:
        if "Booting Linux on physical CPU" in line and any(
            "Booting Linux on physical CPU" in x for x in out[-1]
        ):
            out.append([])
        out[-1].append(line)
    return out[gen - 1]


def test_same_seed_same_trace_bytes(tmp_path: Path) -> None:
    sc = load(CONFIGS / "baremetal-dt.toml")
    a, b, c = tmp_path / "a.trace", tmp_path / "b.trace", tmp_path / "c.trace"
    execute(sc, str(a))
    execute(sc, str(b))
    assert a.read_bytes() == b.read_bytes()
    other = loads(
        sc_text := (CONFIGS / "baremetal-dt.toml").read_text().replace("seed = 1", "seed = 2"),
        "dt.toml",
    )
    assert sc_text
    execute(other, str(c))
    assert a.read_bytes() != c.read_bytes()
    header, recs, problem = read_trace(str(a))
    assert problem is None and header["scenario_sha256"] == sc.sha256
    assert {"msi", "mmio", "mem", "irq", "reply"} <= {r.kind for r in recs}
    assert {r.body["agent"] for r in recs if r.kind == "mem"} == {
        "hw",
        "guest",
    }  # the guest: its own table writes
    assert all(r.body["agent"] == "hw" for r in recs if r.kind == "mem" and r.src == "host")


def test_cli_json_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["run", "--json", str(CONFIGS / "baremetal-dt-kexec.toml")]) == 1
    )  # the kernel panicked
    r = json.loads(capsys.readouterr().out)
    for key in (
        "warnings",
        "lpis_raised",
        "lpis_delivered",
        "lpis_coalesced",
        "lpis_dropped",
        "kexec",
        "exit",
    ):
        assert key in r
    assert r["kexec"]["outcome"] == "panic" and isinstance(r["kexec"]["corruption"], list)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("[machine]\npcpus = -1\n", "machine.pcpus = -1"),
        ('[host]\nkind = "kvm"\n', "host.kind = 'kvm'"),
        ('[[actions]]\nat = "1ms"\ndo = "cpu_offline"\n', "actions[0].cpu = None"),
        ("[guest]\nvcpus = 2\n", "guest.vcpus = 2"),
    ],
)
def test_bad_scenarios_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expect: str
) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    assert main(["run", str(p)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(p) in err and expect in err


# -- Xen dom0 (issue 4) -------------------------------------------------------------------------


def _run(name: str) -> dict:
    return execute(load(CONFIGS / f"{name}.toml"))[1]


def test_xen_acpi_dom0_warns_33_times_from_the_modelled_paths() -> None:
    r = _run("xen-dom0-acpi")
    warns = [x for x in r["log"] if "WARNING: CPU:" in x]
    assert len(warns) == 33 == len(r["warnings"])
    # The property table's on CPU0 first (its_setup_lpi_prop_table), then one per CPU at :3074.
    assert r["warnings"][0]["cpu"] == 0 and r["warnings"][0]["function"] != "its_cpu_init"
    assert [(w["cpu"], w["line"], w["function"]) for w in r["warnings"][1:]] == [
        (cpu, 3074, "its_cpu_init") for cpu in range(32)
    ]
    assert warns[1].endswith(
        "WARNING: CPU: 0 PID: 0 at drivers/irqchip/irq-gic-v3-its.c:3074 its_cpu_init+0x814/0xae0"
    )
    assert sum("Not tainted" in x for x in r["log"]) == 1  # only the first splat
    assert sum("Tainted: G        W" in x for x in r["log"]) == 32
    _accounted(r)


def test_the_patch_silences_every_warning_and_boots_all_cpus() -> None:
    r = _run("xen-dom0-acpi-patched")
    assert r["warnings"] == [] and not any("WARNING" in x for x in r["log"])
    assert r["generations"][0]["cpus_online"] == list(range(32))
    _accounted(r)


def test_xen_memreserve_table_removes_the_warnings() -> None:
    r = _run("xen-dom0-acpi-memreserve")
    assert r["warnings"] == []


def test_no_its_dom0_prints_no_its_and_no_lpi_line() -> None:
    r = _run("xen-dom0-no-its")
    assert not any("ITS" in x or "LPI" in x for x in r["log"])
    assert r["warnings"] == [] and r["lpis_raised"] == 0


def test_one_list_register_still_accounts_for_every_msi() -> None:
    r = _run("xen-dom0-acpi-lr1")
    _accounted(r)
    assert r["lpis_pending"] == 0 and r["lpis_coalesced"] > 0
    assert r["host_counters"]["lr_overflows"] > 0  # UIE was needed


# -- kexec under Xen (issue 6) ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["xen-dom0-acpi-kexec", "xen-dom0-acpi-patched-kexec"])
def test_xen_kexec_follows_from_the_models(name: str) -> None:
    r = _run(name)
    k = r["kexec"]
    assert k["outcome"] == "panic" and r["exit"] == "panic"
    msgs = k["gic_messages"]
    # The second kernel finds EnableLPIs set (Xen: write-once) and the old PROPBASER (frozen).
    first_prop = [x for x in _gen_lines(r, 1) if "using LPI property table" in x][0].rsplit("@", 1)[
        1
    ]
    second_prop = [x for x in msgs if "using LPI property table" in x][0].rsplit("@", 1)[1]
    assert second_prop == first_prop
    # It cannot register its vcpu_info again: Xen says -EINVAL and v5.15 BUG_ONs.
    assert any("kernel BUG at arch/arm/xen/enlighten.c" in x for x in msgs)
    # Xen keeps reading property bytes from the first kernel's table, and only there.
    after = k["first_kernel_tables_after_kexec"]
    assert set(after["xen reads property"]["functions"]) == {"update_lpi_property"}
    assert not any(key.startswith("hw ") for key in after)
    assert k["devices"] == {"nic": {"delivered_after_kexec": 0}}


def test_matrix_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "matrix",
                "--json",
                str(CONFIGS / "baremetal-dt.toml"),
                str(CONFIGS / "xen-dom0-no-its.toml"),
            ]
        )
        == 0
    )
    rows = {r["scenario"]: r for r in json.loads(capsys.readouterr().out)}
    bm, x = rows["baremetal-dt"], rows["xen-dom0-no-its"]
    assert bm["host"] == "bare metal (dt)" and bm["warnings"] == 0 and bm["kexec"] == "-"
    assert bm["property_table"]["hw"]["reads"] > 0 and bm["property_table"]["hw"]["writes"] == 0
    assert bm["pending_tables"]["hw"]["writes"] > 0
    assert bm["pending_tables"]["xen"] == {"reads": 0, "writes": 0}
    assert (
        x["host"] == "Xen acpi, no ITS" and x["property_table"] == {} and x["pending_tables"] == {}
    )
