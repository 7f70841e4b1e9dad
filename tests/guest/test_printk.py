"""printk formatting against external truth: the 2022 report's 5.15.23 splat (sheet §6.3) and
the real 6.1 logs of reference/real-boot/ (lines copied verbatim, file and line cited)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from guest.printk import (
    REG_FILLER,
    Frame,
    Printk,
    SplatRegs,
    Splats,
    Taint,
    format_pstate,
    format_regs,
    print_time,
)


def test_print_time_matches_the_real_stamps() -> None:
    assert print_time(0) == "[    0.000000] "
    assert print_time(67_000) == "[    0.000067] "  # native-uefi-acpi.log:97 sched_clock
    assert print_time(3_443_625_000) == "[    3.443625] "  # kexec-uefi-acpi.log:688 Bye!
    assert print_time(123_456_789_999) == "[  123.456789] "


def test_pstate_lines_of_the_real_splats() -> None:
    # kexec-dt-noefi.log:672 (boot CPU in init_IRQ) and the 5.15.23 splat (secondary bring-up)
    assert (
        format_pstate(0x600000C5)
        == "pstate: 600000c5 (nZCv daIF -PAN -UAO -TCO -DIT -SSBS BTYPE=--)"
    )
    assert (
        format_pstate(0x600001C5)
        == "pstate: 600001c5 (nZCv dAIF -PAN -UAO -TCO -DIT -SSBS BTYPE=--)"
    )


def test_register_triplets_layout_of_show_regs() -> None:
    # kexec-dt-noefi.log:676-685
    regs = [0] * 30
    regs[29], regs[28], regs[27] = 0xFFFFC03404AB3B00, 0x18, 0x1
    regs[9], regs[2], regs[1], regs[0] = (
        0xFFFFC03403AD3EE8,
        0xFFFFC03404BC3470,
        0xFFFFC03404BC3470,
        0xFFFF082EC0185100,
    )
    lines = format_regs(regs)
    assert len(lines) == 10
    assert lines[0] == "x29: ffffc03404ab3b00 x28: 0000000000000018 x27: 0000000000000001"
    assert lines[6] == "x11: 0000000000000000 x10: 0000000000000000 x9 : ffffc03403ad3ee8"
    assert lines[9] == "x2 : ffffc03404bc3470 x1 : ffffc03404bc3470 x0 : ffff082ec0185100"


def test_taint_strings_of_v5_15() -> None:
    t = Taint()
    assert t.text() == "Not tainted"
    t.add("WARN")
    # Leo Yan's splat: "Tainted: G        W         5.15.23-..." (sheet §6.2)
    assert t.text() == "Tainted: G        W        "
    t.add("CRAP")
    assert t.text() == "Tainted: G        WC       "
    assert t.letters() == "WC"


def _splats(printk: Printk) -> Splats:
    ids = iter([0xF68728A0D3053B70])
    return Splats(
        printk, Taint(), "5.15.23-ampere-lts-standard", "#1 SMP", oops_id_seed=lambda: next(ids)
    )


def test_warn_splat_reproduces_the_reported_one() -> None:
    """The 2022 report's splat on CPU30 (sheet §6.3): WARNING line, CPU line after an earlier
    warning, pc/lr, x0 = -ENODEV as w0, x1 = LPI_PENDBASE_SZ, x28 = the CPU, the call trace,
    and consecutive end-trace ids."""
    p = Printk(lambda: 0)
    s = _splats(p)
    s.taint.add("WARN")  # earlier splats of the same boot
    trace = [
        Frame("its_cpu_init", 0x814, 0xAE0),
        Frame("gic_starting_cpu", 0x38, 0x50),
        Frame("cpuhp_invoke_callback", 0x19C, 0x3D0),
    ]
    regs = SplatRegs.build(
        0x600001C5,
        trace[0],
        Frame("its_cpu_init", 0x810, 0xAE0),
        0xFFFF8000_0800FD00,
        {0: 0xFFFFFFED, 1: 0x10000, 28: 30},
    )
    s.warn(30, 0, "swapper/30", "drivers/irqchip/irq-gic-v3-its.c", 3074, regs, trace)
    s.warn(31, 0, "swapper/31", "drivers/irqchip/irq-gic-v3-its.c", 3074, regs, trace)
    text = p.text()
    assert text[0] == "[    0.000000] ------------[ cut here ]------------"
    assert (
        text[1]
        == "[    0.000000] WARNING: CPU: 30 PID: 0 at drivers/irqchip/irq-gic-v3-its.c:3074 its_cpu_init+0x814/0xae0"
    )
    assert text[2] == "[    0.000000] Modules linked in:"
    assert (
        text[3]
        == "[    0.000000] CPU: 30 PID: 0 Comm: swapper/30 Tainted: G        W         5.15.23-ampere-lts-standard #1"
    )
    assert (
        text[4] == "[    0.000000] pstate: 600001c5 (nZCv dAIF -PAN -UAO -TCO -DIT -SSBS BTYPE=--)"
    )
    assert text[5] == "[    0.000000] pc : its_cpu_init+0x814/0xae0"
    assert text[6] == "[    0.000000] lr : its_cpu_init+0x810/0xae0"
    assert text[8].endswith(f"x28: 000000000000001e x27: {REG_FILLER + 27:016x}")
    assert text[17].endswith("x1 : 0000000000010000 x0 : 00000000ffffffed")
    assert text[18] == "[    0.000000] Call trace:"
    assert text[19] == "[    0.000000]  its_cpu_init+0x814/0xae0"
    assert text[22] == "[    0.000000] ---[ end trace f68728a0d3053b70 ]---"
    ends = [ln for ln in text if "end trace" in ln]
    assert ends[1] == "[    0.000000] ---[ end trace f68728a0d3053b71 ]---"


def test_first_warning_is_not_tainted_and_sets_w() -> None:
    p = Printk(lambda: 0)
    s = _splats(p)
    f = Frame("its_init", 0x2A8, 0x70C)
    s.warn(0, 0, "swapper/0", "f.c", 1, SplatRegs.build(0x600000C5, f, f, 0, {}), [f])
    assert "CPU: 0 PID: 0 Comm: swapper/0 Not tainted 5.15.23-ampere-lts-standard #1" in p.text()[3]
    assert s.taint.letters() == "W"


def test_die_and_panic_text_in_the_6_1_format_of_the_real_crash() -> None:
    """kexec-dt-noefi.log:668-699 with the v6.x options (016lx error, zero oops id)."""
    p = Printk(lambda: 0)
    s = Splats(p, Taint(), "6.1.0-50-arm64", "#1 SMP", oops_id_seed=lambda: 1, oops_id_style="zero")
    s.hardware_name = "linux,dummy-virt (DT)"
    pc, lr = Frame("__list_add_valid", 0, 0xB4), Frame("free_lpi_range", 0x94, 0xF0)
    regs = SplatRegs.build(0x600000C5, pc, lr, 0xFFFFC03404AB3B00, {})
    s.die(
        0,
        0,
        "swapper/0",
        "Oops - Undefined instruction",
        0x2000000,
        regs,
        [pc, Frame("its_init", 0x488, 0x70C)],
        [0xA2A2A2A2] * 5,
        "016lx",
    )
    s.panic(0, "Attempted to kill the idle task!")
    t = [ln[15:] for ln in p.text()]
    assert t[0] == "Internal error: Oops - Undefined instruction: 0000000002000000 [#1] SMP"
    assert t[1] == "Modules linked in:"
    assert t[2] == "CPU: 0 PID: 0 Comm: swapper/0 Not tainted 6.1.0-50-arm64 #1"
    assert t[3] == "Hardware name: linux,dummy-virt (DT)"
    assert t[5] == "pc : __list_add_valid+0x0/0xb4"
    assert t[6] == "lr : free_lpi_range+0x94/0xf0"
    assert t[7] == "sp : ffffc03404ab3b00"
    assert t[-5] == " its_init+0x488/0x70c"
    assert t[-4] == "Code: a2a2a2a2 a2a2a2a2 a2a2a2a2 a2a2a2a2 (a2a2a2a2) "
    assert t[-3] == "---[ end trace 0000000000000000 ]---"
    assert t[-2] == "Kernel panic - not syncing: Attempted to kill the idle task!"
    assert t[-1] == "---[ end Kernel panic - not syncing: Attempted to kill the idle task! ]---"


@given(st.integers(0, 2**64 - 1))
def test_pstate_flags_round_trip(p: int) -> None:
    p &= 0xFFFF_FFFF
    line = format_pstate(p)
    flags = line.split("(")[1]
    assert (flags[0] == "N") == bool(p >> 31 & 1)
    assert (flags[7] == "I") == bool(p >> 7 & 1)
    assert line.startswith(f"pstate: {p:08x} (")
