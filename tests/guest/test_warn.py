"""gic_reserve_range failing: EFI config tables without a MEMRESERVE table (what Xen hands an
ACPI dom0, sheet §3.6), on the bare-metal host. v5.15 prints the property table's WARN on
CPU0, then one at irq-gic-v3-its.c:3074 in its_cpu_init per CPU (sheet §2.9, §10)."""

from __future__ import annotations

import pytest

from guest.printk import REG_FILLER
from tests.guest.harness import STAMP, boot

ITS = "drivers/irqchip/irq-gic-v3-its.c"


@pytest.fixture(scope="module")
def run():  # type: ignore[no-untyped-def]
    return boot("efi", no_memreserve=True)


def test_n_plus_one_warnings(run) -> None:  # type: ignore[no-untyped-def]
    res = run.result()
    assert res["warnings"] == [{"cpu": 0, "file": ITS, "line": 2250, "function": "its_init"}] + [
        {"cpu": c, "file": ITS, "line": 3074, "function": "its_cpu_init"} for c in range(4)
    ]
    assert res["taint"] == "Tainted: G        W        "
    lines = [STAMP.sub("", ln) for ln in res["log"]]
    cpu_lines = [ln for ln in lines if ln.startswith("CPU: ") and " PID: " in ln]
    assert cpu_lines[0] == "CPU: 0 PID: 0 Comm: swapper/0 Not tainted 5.15.0 #1"
    assert cpu_lines[1:] == [
        f"CPU: {c} PID: 0 Comm: swapper/{c} Tainted: G        W         5.15.0 #1" for c in range(4)
    ]
    # no MEMRESERVE: nothing registered, the tables are allocated as usual
    assert "GICv3: CPU1: using allocated LPI pending table @0x00000000401e0000" in lines


def test_the_secondary_splat_exactly(run) -> None:  # type: ignore[no-untyped-def]
    lines = [STAMP.sub("", ln) for ln in run.result()["log"]]
    start = lines.index(f"WARNING: CPU: 1 PID: 0 at {ITS}:3074 its_cpu_init+0x814/0xae0") - 1
    splat = lines[start : start + 29]
    fill = [f"{REG_FILLER + n:016x}" for n in range(30)]
    expected = [
        "------------[ cut here ]------------",
        f"WARNING: CPU: 1 PID: 0 at {ITS}:3074 its_cpu_init+0x814/0xae0",
        "Modules linked in:",
        "CPU: 1 PID: 0 Comm: swapper/1 Tainted: G        W         5.15.0 #1",
        "pstate: 600001c5 (nZCv dAIF -PAN -UAO -TCO -DIT -SSBS BTYPE=--)",
        "pc : its_cpu_init+0x814/0xae0",
        "lr : its_cpu_init+0x810/0xae0",
        "sp : ffff800008007d00",
        f"x29: ffff800008007d10 x28: 0000000000000001 x27: {fill[27]}",
        f"x26: {fill[26]} x25: {fill[25]} x24: {fill[24]}",
        f"x23: {fill[23]} x22: {fill[22]} x21: {fill[21]}",
        f"x20: {fill[20]} x19: {fill[19]} x18: {fill[18]}",
        f"x17: {fill[17]} x16: {fill[16]} x15: {fill[15]}",
        f"x14: {fill[14]} x13: {fill[13]} x12: {fill[12]}",
        f"x11: {fill[11]} x10: {fill[10]} x9 : {fill[9]}",
        f"x8 : {fill[8]} x7 : {fill[7]} x6 : {fill[6]}",
        f"x5 : {fill[5]} x4 : {fill[4]} x3 : {fill[3]}",
        f"x2 : {fill[2]} x1 : 0000000000010000 x0 : 00000000ffffffed",
        "Call trace:",
        " its_cpu_init+0x814/0xae0",
        " gic_starting_cpu+0x48/0x90",
        " cpuhp_invoke_callback+0x16c/0x5b0",
        " cpuhp_invoke_callback_range+0x78/0xf0",
        " notify_cpu_starting+0xbc/0xdc",
        " secondary_start_kernel+0xe0/0x170",
        " __secondary_switched+0x94/0x98",
    ]
    assert splat[: len(expected)] == expected
    ends = [int(ln.split()[3], 16) for ln in lines if ln.startswith("---[ end trace")]
    assert len(ends) == 5
    assert [e - ends[0] for e in ends] == [0, 1, 2, 3, 4]  # v5.15: oops_id + 1 per marker


def test_the_boot_cpu_property_table_splat(run) -> None:  # type: ignore[no-untyped-def]
    lines = [STAMP.sub("", ln) for ln in run.result()["log"]]
    i = lines.index(f"WARNING: CPU: 0 PID: 0 at {ITS}:2250 its_init+0x2a8/0x70c")
    assert lines[i + 2] == "CPU: 0 PID: 0 Comm: swapper/0 Not tainted 5.15.0 #1"
    assert lines[i + 3] == "pstate: 600000c5 (nZCv daIF -PAN -UAO -TCO -DIT -SSBS BTYPE=--)"
    trace = lines[lines.index("Call trace:", i) + 1 : lines.index("Call trace:", i) + 4]
    assert trace == [
        " its_init+0x2a8/0x70c",
        " gic_init_bases+0x55c/0x5b4",
        " gic_acpi_init+0x214/0x2d0",
    ]
    # the table line follows the splat: WARN_ON, then pr_info in its_setup_lpi_prop_table
    j = lines.index("GICv3: using LPI property table @0x00000000401c0000")
    assert lines[j - 1].startswith("---[ end trace ")


def test_the_patched_variant_prints_no_warning_when_xen_domain() -> None:
    """v5.15+xen-skip-reserve returns 0 only inside a Xen domain: on bare metal it still warns."""
    res = boot("efi", no_memreserve=True, kernel="v5.15+xen-skip-reserve").result()
    assert len(res["warnings"]) == 5
