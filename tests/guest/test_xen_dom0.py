"""Linux dom0 on the Xen component (hypervisor/xen.py): boot from Xen's blobs, the 2022
warnings and the kernel variants, hotplug, MSIs through the vITS and list registers.

External truth: the splat of the 2022 report (reference/seed-patch.txt and Leo Yan's Xen patch
mail, copied below), the per-CPU order of linux-gicv3-its.md §2.9, the dom0 lines of
reference/real-boot/xen-dom0-dt.log (read from the file, also for the 6.1 taint column count),
the addresses Xen's blob builder chose.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cosim.scheduler import MS
from guest.firmware.efi import walk_memreserve
from tests.guest.xen_harness import STAMP, xen_boot
from transport.messages import Exit

ITS_C = "drivers/irqchip/irq-gic-v3-its.c"
REAL = Path("/work/shared/reference/real-boot")
#: The CPU30 splat of the 2022 report (Leo Yan, <20220817105720.111618-1-leo.yan@linaro.org>;
#: seed-patch.txt), time stamps removed.
REPORT_CPU30 = [
    "------------[ cut here ]------------",
    f"WARNING: CPU: 30 PID: 0 at {ITS_C}:3074 its_cpu_init+0x814/0xae0",
    "Modules linked in:",
    "CPU: 30 PID: 0 Comm: swapper/30 Tainted: G        W         5.15.23-ampere-lts-standard #1",
    "pstate: 600001c5 (nZCv dAIF -PAN -UAO -TCO -DIT -SSBS BTYPE=--)",
    "pc : its_cpu_init+0x814/0xae0",
    "lr : its_cpu_init+0x810/0xae0",
    "sp : ffff800009c03ce0",
    "x29: ffff800009c03ce0 x28: 000000000000001e x27: ffff880711f43000",
    "x26: ffff80000a3c0070 x25: fffffc1ffe0a4400 x24: ffff80000a3c0000",
    "x23: ffff8000095bc998 x22: ffff8000090a6000 x21: ffff800009850cb0",
    "x20: ffff800009701a10 x19: ffff800009701000 x18: ffffffffffffffff",
    "x17: 3030303035303031 x16: 3030313030303078 x15: 303a30206e6f6967",
    "x14: 6572206530312072 x13: 3030303030353030 x12: 3130303130303030",
    "x11: 78303a30206e6f69 x10: 6765722065303120 x9 : ffff80000870e710",
    "x8 : 6964657220646e75 x7 : 0000000000000003 x6 : 0000000000000000",
    "x5 : 0000000000000000 x4 : fffffc0000000000 x3 : 0000000000000010",
    "x2 : 000000000000ffff x1 : 0000000000010000 x0 : 00000000ffffffed",
    "Call trace:",
    " its_cpu_init+0x814/0xae0",
    " gic_starting_cpu+0x48/0x90",
    " cpuhp_invoke_callback+0x16c/0x5b0",
    " cpuhp_invoke_callback_range+0x78/0xf0",
    " notify_cpu_starting+0xbc/0xdc",
    " secondary_start_kernel+0xe0/0x170",
    " __secondary_switched+0x94/0x98",
    "---[ end trace f68728a0d3053b70 ]---",
]
#: What the model derives of those lines (sheet §6.3): everything but sp, x29 and the filler
#: registers, the build's release string and call-site offsets, and the random oops id.
DERIVED_REGS = {"x28": "000000000000001e", "x1": "0000000000010000", "x0": "00000000ffffffed"}


def strip(lines: list[str]) -> list[str]:
    return [STAMP.sub("", ln) for ln in lines]


def regs_of(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for ln in lines:
        for name, val in re.findall(r"(x\d+)\s*: ([0-9a-f]{16})", ln):
            out[name] = val
    return out


def splat_at(lines: list[str], warning: str) -> list[str]:
    i = lines.index(warning) - 1
    j = next(n for n in range(i, len(lines)) if lines[n].startswith("---[ end trace"))
    return lines[i : j + 1]


@pytest.fixture(scope="module")
def acpi32():  # type: ignore[no-untyped-def]
    return xen_boot(32, until=450 * MS)


@pytest.fixture(scope="module")
def patched32():  # type: ignore[no-untyped-def]
    return xen_boot(32, kernel="v5.15+xen-skip-reserve", until=450 * MS)


# -- the 2022 report --------------------------------------------------------------------------


def test_32_vcpu_acpi_dom0_prints_33_warnings_in_order(acpi32) -> None:  # type: ignore[no-untyped-def]
    lines = acpi32.lines()
    warnings = [ln for ln in lines if ln.startswith("WARNING: ")]
    assert len(warnings) == 33
    assert warnings[0] == f"WARNING: CPU: 0 PID: 0 at {ITS_C}:2250 its_init+0x2a8/0x70c"
    assert warnings[1:] == [
        f"WARNING: CPU: {c} PID: 0 at {ITS_C}:3074 its_cpu_init+0x814/0xae0" for c in range(32)
    ]
    res = acpi32.result()
    assert res["generations"][0]["cpus_online"] == list(range(32))
    assert res["errors"] == [] and res["xen"]["faults"] == []
    assert res["corruption"] == []  # Xen wrote only where dom0 handed it memory
    cpu_lines = [ln for ln in lines if ln.startswith("CPU: ") and " PID: " in ln]
    assert cpu_lines[0] == "CPU: 0 PID: 0 Comm: swapper/0 Not tainted 5.15.0 #1"
    assert all("Tainted: G        W         5.15.0 #1" in ln for ln in cpu_lines[1:])
    ends = [int(ln.split()[3], 16) for ln in lines if ln.startswith("---[ end trace")]
    assert [e - ends[0] for e in ends] == list(range(33))  # v5.15: oops_id + 1 per splat


def test_the_cpu30_splat_is_the_reports_where_the_model_derives_it(acpi32) -> None:  # type: ignore[no-untyped-def]
    ours = splat_at(acpi32.lines(), REPORT_CPU30[1])
    assert len(ours) == len(REPORT_CPU30)
    for n in (0, 1, 2, 4, 5, 6, 18, 19):  # cut here .. lr, "Call trace:", the pc frame
        assert ours[n] == REPORT_CPU30[n]
    assert ours[3] == REPORT_CPU30[3].replace("5.15.23-ampere-lts-standard", "5.15.0")
    report_regs, our_regs = regs_of(REPORT_CPU30), regs_of(ours)
    assert {r: our_regs[r] for r in DERIVED_REGS} == DERIVED_REGS
    assert {r: report_regs[r] for r in DERIVED_REGS} == DERIVED_REGS
    # the call trace, frame for frame with the reported build's offsets (guest/image.py)
    assert ours[19:26] == REPORT_CPU30[19:26]
    assert ours[-1].startswith("---[ end trace ") and len(ours[-1].split()[3]) == 16


def test_secondary_bring_up_order_of_the_cpu31_log(acpi32) -> None:  # type: ignore[no-untyped-def]
    """linux-gicv3-its.md §2.9: PIPT I-cache, redistributor, splat, pending table line, (arch
    timer erratum: not on this CPU model), "Xen: initializing cpu31", Booted."""
    lines = acpi32.lines()
    i = lines.index("Detected PIPT I-cache on CPU31")
    # MPIDR 0x10f (Xen's vcpuid_to_vaffinity: 16 vCPUs per cluster), the 32nd 128 KiB frame
    rd = 0x080A_0000 + 31 * 0x2_0000
    assert lines[i + 1] == f"GICv3: CPU31: found redistributor 10f region 0:0x{rd:016x}"
    assert lines[i + 2] == "------------[ cut here ]------------"
    j = next(n for n in range(i, len(lines)) if lines[n].startswith("---[ end trace"))
    assert lines[j + 1].startswith("GICv3: CPU31: using allocated LPI pending table @0x")
    assert lines[j + 2 : j + 4] == [
        "Xen: initializing cpu31",
        "CPU31: Booted secondary processor 0x000000010f [0x411fd070]",
    ]


def test_efi_and_acpi_from_xens_blobs(acpi32) -> None:  # type: ignore[no-untyped-def]
    lines = acpi32.lines()
    addrs = acpi32.xen.boot_blobs.addresses
    i = lines.index("Xen 4.17 support found")
    assert lines[i - 1].startswith("Linux version ")
    assert lines[i + 1 : i + 3] == ["efi: EFI v2.50 by Xen", f"efi: ACPI 2.0=0x{addrs['RSDP']:x} "]
    assert f"ACPI: RSDP 0x{addrs['RSDP']:016X} 000024 (v02 BOCHS )" in lines
    assert "EFI runtime services access via paravirt." in lines
    assert "psci: probing for conduit method from ACPI." in lines
    k = acpi32.guest.kernel
    assert {"EFI_BOOT", "EFI_CONFIG_TABLES", "EFI_RUNTIME_SERVICES"} <= k.efi["enabled"]
    assert k.efi["mem_reserve"] is None and not k.acpi_disabled


def test_dom0_hypercalls_reach_xen(acpi32) -> None:  # type: ignore[no-untyped-def]
    x = acpi32.result()["xen"]
    assert x["initial_domain"] and x["events_irq"] == 16
    assert x["vcpus_registered"] == list(range(32))
    calls = acpi32.xen.hypercalls.calls
    assert calls["do_xen_version"] == 1
    assert calls["do_hvm_op"] == 1
    assert calls["do_arm_vcpu_op"] == 32  # VCPUOP_register_vcpu_info, once per vCPU
    assert calls["do_memory_op"] == 2  # shared info, grant frame 0
    assert calls["do_event_channel_op"] == 32 + 2  # init_control per CPU, alloc_unbound, expand
    state = acpi32.xen.hypercalls.state
    assert state.shared_info_gfn == acpi32.guest.kernel.xen.shared_info >> 12
    assert sorted(state.vcpu_info) == list(range(32))


def test_every_printk_line_went_to_xens_console_through_hvc0(acpi32) -> None:  # type: ignore[no-untyped-def]
    ours = acpi32.guest.printk.text()
    dom0 = [ln.removesuffix("\r") for ln in acpi32.xen.console if not ln.startswith("(XEN)")]
    assert dom0 == ours[: len(dom0)] and len(ours) - len(dom0) <= 1
    assert acpi32.xen.hypercalls.calls["do_console_io"] >= len(dom0)


def test_the_patch_silences_every_warning_and_changes_nothing_else(acpi32, patched32) -> None:  # type: ignore[no-untyped-def]
    res = patched32.result()
    assert res["warnings"] == [] and res["taint"] == "Not tainted"
    assert res["generations"][0]["cpus_online"] == list(range(32))
    splat = re.compile(r"^(------------\[ cut here|WARNING: |Modules linked|CPU: \d+ PID|pstate|"
                       r"pc :|lr :|sp :|x\d|Call trace| \w+\+0x|---\[ end trace)")  # fmt: skip
    assert patched32.lines() == [ln for ln in acpi32.lines() if not splat.match(ln)]


# -- host and kernel variants ---------------------------------------------------------------------


def test_without_has_its_no_its_and_no_lpi_line() -> None:
    r = xen_boot(4, has_its=False)
    lines = r.lines()
    assert not [ln for ln in lines if "ITS" in ln or "LPI" in ln or ln.startswith("WARNING")]
    assert r.guest.kernel.drivers["gic"].lpis is False  # GICD_TYPER.LPIS = 0
    assert r.result()["generations"][0]["cpus_online"] == [0, 1, 2, 3]


@pytest.mark.parametrize("has_its", [False, True])
def test_dt_dom0_lines_of_the_real_log(has_its: bool) -> None:
    """xen-dom0-dt.log (Debian's Xen, no HAS_ITS, 4 vCPUs): the Xen and GIC lines of dom0."""
    real = strip((REAL / "xen-dom0-dt.log").read_text().splitlines())
    real = real[: real.index("smp: Brought up 1 node, 4 CPUs") + 1]
    pick = re.compile(r"^(Xen |efi: |xen:|Grant table|GICv3: CPU|Detected PIPT I-cache on CPU[1-3]"
                      r"|CPU\d: Booted)")  # fmt: skip
    r = xen_boot(4, dom0_boot="dt", has_its=has_its)
    lines = r.lines()
    ours = [ln for ln in lines if pick.match(ln) and "LPI pending" not in ln]
    assert ours == [ln for ln in real if pick.match(ln)]
    assert not [ln for ln in lines if ln.startswith("WARNING")]  # no EFI config tables
    its = [ln for ln in lines if ln.startswith("ITS ") or "LPI" in ln]
    if has_its:
        assert its[0] == "ITS [mem 0x08080000-0x0809ffff]" and len(its) == 1 + 1 + 4
    else:
        assert its == []


def test_xen_memreserve_table_makes_the_reservations_succeed() -> None:
    r = xen_boot(4, efi_memreserve=True)
    lines, k = r.lines(), r.guest.kernel
    addrs = r.xen.boot_blobs.addresses
    assert f"efi: ACPI 2.0=0x{addrs['RSDP']:x} MEMRESERVE=0x{addrs['MEMRESERVE']:x} " in lines
    assert not [ln for ln in lines if ln.startswith("WARNING")]
    its = k.drivers["its"]
    entries = [e for n in walk_memreserve(r.guest.ram.read, addrs["MEMRESERVE"]) for e in n.entries]
    want = [(its.prop_table_pa, 0x10000)] + [(its.pend_page[c], 0x10000) for c in range(4)]
    assert sorted(entries) == sorted(want)


def test_v6_1_warns_from_the_memreserve_hotplug_callback() -> None:
    r = xen_boot(4, kernel="v6.1")
    res, lines = r.result(), r.lines()
    assert [(w["cpu"], w["line"], w["function"]) for w in res["warnings"]] == [
        (0, 2250, "its_init"), (0, 5239, "its_cpu_memreserve_lpi")
    ] + [(c, 5239, "its_cpu_memreserve_lpi") for c in (1, 2, 3)]  # fmt: skip
    warns = [ln for ln in lines if ln.startswith("WARNING: ")]
    assert warns[1].startswith("WARNING: CPU: 0 PID: 0 ")
    for c in (1, 2, 3):
        w = next(ln for ln in warns if ln.startswith(f"WARNING: CPU: {c} "))
        assert int(w.split()[4]) != 0
        i = lines.index(w)
        assert lines[i + 2].startswith(f"CPU: {c} PID: {w.split()[4]} Comm: cpuhp/{c} Tainted: ")
        assert lines.index(f"CPU{c}: Booted secondary processor 0x000000000{c} [0x411fd070]") < i
    assert {ln for ln in lines if ln.startswith("---[ end trace")} == {
        "---[ end trace 0000000000000000 ]---"
    }
    # 6.1's print_tainted has 19 columns (xen-dom0-dt.log: "Tainted: G        W          6.1")
    real = (REAL / "xen-dom0-dt.log").read_text()
    col = re.search(r"Tainted: (G        W +)6\.1", real).group(1)  # type: ignore[union-attr]
    assert any(f"Tainted: {col}6.1.0 #1" in ln for ln in lines)
    assert any("its_cpu_memreserve_lpi" in p for p in res["predictions"])


def test_v6_2_efi_paravirt_changes_nothing_for_the_gic() -> None:
    r61, r62 = xen_boot(4, kernel="v6.1"), xen_boot(4, kernel="v6.2+efi-paravirt")
    assert "EFI_PARAVIRT" in r62.guest.kernel.efi["enabled"]
    assert "EFI_PARAVIRT" not in r61.guest.kernel.efi["enabled"]
    w61 = [(w["cpu"], w["line"]) for w in r61.result()["warnings"]]
    assert [(w["cpu"], w["line"]) for w in r62.result()["warnings"]] == w61 and len(w61) == 5


def test_maxcpus_then_online_a_never_booted_cpu_warns_once_for_it() -> None:
    r = xen_boot(4, bootargs="console=hvc0 maxcpus=2", timer_period_ns=4 * MS, until=None,
                 actions=[(200 * MS, ("cpu_online", {"cpu": 3}))])  # fmt: skip
    r.run(150 * MS)
    assert [w["cpu"] for w in r.result()["warnings"]] == [0, 0, 1]
    assert r.guest.kernel.online == {0, 1}
    r.run(300 * MS)
    res = r.result()
    assert [w["cpu"] for w in res["warnings"]] == [0, 0, 1, 3]
    assert res["generations"][0]["cpus_online"] == [0, 1, 3]
    assert "CPU3: Booted secondary processor 0x0000000003 [0x411fd070]" in r.lines()


def test_cpu_offline_and_online_again_no_second_warning_and_msis_keep_flowing() -> None:
    r = xen_boot(4, timer_period_ns=4 * MS, msis=400, msi_rate=2000, until=None,
                 actions=[(200 * MS, ("cpu_offline", {"cpu": 2})),
                          (260 * MS, ("cpu_online", {"cpu": 2}))])  # fmt: skip
    r.run(230 * MS)
    k = r.guest.kernel
    assert k.online == {0, 1, 3}
    assert r.xen.is_down(2)
    drv = k.drivers["msi"][0]
    assert 2 not in drv.its_dev.col_map  # irq_migrate_all_off_this_cpu moved them (MOVI)
    r.run(400 * MS)
    r.device.limit = r.device.arrivals
    r.run(450 * MS)
    lines, res = r.lines(), r.result()
    assert "psci: CPU2 killed (polled 0 ms)" in lines
    assert lines.count("GICv3: CPU2: found redistributor 2 region 0:0x00000000080e0000") == 2
    assert len([ln for ln in lines if "CPU2: using allocated LPI pending table" in ln]) == 1
    assert [w["cpu"] for w in res["warnings"]] == [0, 0, 1, 2, 3]
    assert lines.count("Xen: initializing cpu2") == 1
    assert r.xen.hypercalls.calls["do_arm_vcpu_op"] == 4
    assert res["generations"][0]["cpus_online"] == [0, 1, 2, 3]
    acc = r.accounting()
    assert acc["raised"] == 400 and acc["dropped"] == 0
    assert acc["raised"] == acc["delivered"] + acc["coalesced"]


# -- interrupts through the vITS and the list registers ----------------------------------------


@pytest.mark.parametrize("lrs", [4, 1])
def test_msis_are_taken_from_list_registers_and_all_accounted(lrs: int) -> None:
    r = xen_boot(4, msis=300, msi_rate=100_000, list_registers=lrs, until=None, record=True,
                 timer_period_ns=1 * MS)  # fmt: skip
    r.run(250 * MS)
    r.device.limit = r.device.arrivals
    r.run(300 * MS)
    acc = r.accounting()
    assert acc["raised"] == 300 and acc["dropped"] == 0 and acc["delivered"] > 0
    assert r.result()["corruption"] == []
    assert acc["raised"] == acc["delivered"] + acc["coalesced"]
    exits = [e.msg for e in r.sent if isinstance(e.msg, Exit)]
    # the guest's IAR/EOI never trap: only SGI1R and the timer's registers do
    assert not [x for x in exits if x.reason == "sysreg" and x.reg.startswith("ICC_")
                and x.reg != "ICC_SGI1R_EL1"]  # fmt: skip
    assert all(len(x.ctx.lrs) == lrs for x in exits)
    # a wfi exit only when nothing could be taken from the LRs
    assert not [x for x in exits if x.reason == "wfi" and any(lr >> 62 == 1 for lr in x.ctx.lrs)
                and x.ctx.vmcr & 2]  # fmt: skip
    if lrs == 1:
        assert r.xen.counters["maintenance_irqs"] > 0 and r.xen.counters["lr_overflows"] > 0


def test_lpi_property_change_reaches_xen_only_with_inv() -> None:
    r = xen_boot(4, timer_period_ns=4 * MS, until=None, actions=[
        (200 * MS, ("set_lpi_property", {"devid": 0x100, "event": 0, "priority": 0x40,
                                         "inv": False})),
        (250 * MS, ("set_lpi_property", {"devid": 0x100, "event": 1, "priority": 0x60})),
        (300 * MS, ("set_lpi_property", {"devid": 0x100, "event": 1, "enable": False})),
    ])  # fmt: skip
    r.run(220 * MS)
    k = r.guest.kernel
    its, drv, vg = k.drivers["its"], k.drivers["msi"][0], r.xen.vgic
    h0, h1 = drv.hwirqs

    def byte(h: int) -> int:
        return k.ram_read(its.prop_table_pa + h - 8192, 1)[0]

    assert byte(h0) == 0x43 and vg.lpi_tree[h0].lpi_priority == 0xA0  # no INV: Xen kept 0xa0
    r.run(270 * MS)
    assert byte(h1) == 0x63 and vg.lpi_tree[h1].lpi_priority == 0x60  # INV: update_lpi_property
    r.run(320 * MS)
    assert byte(h1) == 0x62 and not vg.lpi_tree[h1].test(3)  # GIC_IRQ_GUEST_ENABLED cleared
    assert r.result()["errors"] == []


def test_same_seed_same_run() -> None:
    a = xen_boot(4, msis=50, until=150 * MS, record=True, seed=7)
    b = xen_boot(4, msis=50, until=150 * MS, record=True, seed=7)
    assert [(e.t, e.src, e.dst, e.kind, e.why) for e in a.sent] == [
        (e.t, e.src, e.dst, e.kind, e.why) for e in b.sent
    ]
    assert a.guest.printk.text() == b.guest.printk.text()


def test_v6_1_hotplug_does_not_reserve_twice() -> None:
    r = xen_boot(4, kernel="v6.1", timer_period_ns=4 * MS, until=300 * MS,
                 actions=[(200 * MS, ("cpu_offline", {"cpu": 3})),
                          (250 * MS, ("cpu_online", {"cpu": 3}))])  # fmt: skip
    res = r.result()
    assert [w["cpu"] for w in res["warnings"]] == [0, 0, 1, 2, 3]  # RD_LOCAL_MEMRESERVE_DONE
    assert res["generations"][0]["cpus_online"] == [0, 1, 2, 3]
    assert r.lines().count("CPU3: Booted secondary processor 0x0000000003 [0x411fd070]") == 2


def test_hostile_entries_kicks_and_actions_are_recorded_and_the_run_goes_on() -> None:
    from transport.messages import Entry, Kick

    r = xen_boot(4, until=150 * MS)
    sched, g = r.scheduler, r.guest
    records: list[str] = []
    sched.record_event = lambda src, kind, body, **kw: records.append(kind)  # type: ignore[method-assign]
    sched.send("xen", "dom0", Entry(vcpu=2, regs=(1,)), reply_to=999_999)
    sched.send("xen", "dom0", Kick(vcpu=77))
    for token in (("cpu_offline", {"cpu": 0}), ("set_lpi_property", {"devid": 0x999, "event": 0}),
                  ("cpu_online", {"nope": 1})):  # fmt: skip
        sched.call_later("dom0", 0, token)
    r.run(200 * MS)
    assert {"bad-entry", "bad-kick", "cpu_offline-refused", "set_lpi_property-refused",
            "bad-action"} <= set(records)  # fmt: skip
    assert g.result()["errors"] == [] and g.kernel.status == "booted"
    assert g.kernel.online == {0, 1, 2, 3}
