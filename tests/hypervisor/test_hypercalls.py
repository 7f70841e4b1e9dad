"""Xen 4.17's Arm hypercalls (hypervisor/hypercalls.py) and vPSCI/SMCCC (hypervisor/vpsci.py),
as cores run against a local RAM.

External truth: the public headers' numbers and layouts (xen.h, version.h, features.h,
memory.h, vcpu.h, hvm/params.h, event_channel.h, sched.h), common/kernel.c's dom0 feature
submap on Arm, vpsci.c / vsmc.c answers, and common/shutdown.c's hwdom lines.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gic.port import MemRead, MemWrite, Ram, run_sync
from hypervisor.hypercalls import (
    CONSOLE_KBUF,
    HypercallResult,
    Hypercalls,
    callback_irq_param,
    hwdom_shutdown_line,
)
from hypervisor.vpsci import (
    vaffinity_to_vcpuid,
    vcpuid_to_vaffinity,
    vsmccc_handle_call,
)

BANK = (0x6000_0000, 0x2000_0000)
BUF = 0x6000_1000
U64 = (1 << 64) - 1
XEN_VERSION, MEMORY_OP, VCPU_OP, HVM_OP = 17, 12, 24, 34
CONSOLE_IO, EVTCHN_OP, SCHED_OP = 18, 32, 29


class Services:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.console: list[str] = []
        self.injected: list[int] = []
        self.records: list[tuple[str, dict[str, Any], str]] = []

    def log(self, line: str) -> None:
        self.lines.append(line)

    def console_write(self, domid: int, text: str) -> None:
        self.console.append(text)

    def inject_evtchn(self, vcpu: int) -> None:
        self.injected.append(vcpu)

    def record(self, kind: str, body: dict[str, Any], why: str = "") -> None:
        self.records.append((kind, body, why))


class Guest:
    """dom0's RAM plus a log of every access Xen makes."""

    def __init__(self) -> None:
        self.ram = Ram(0x4000_0000, 2 << 30)
        self.log: list[tuple[str, int, int, bool]] = []

    def answer(self, req: Any) -> Any:
        if isinstance(req, MemRead):
            self.log.append((req.why, req.addr, req.size, False))
        elif isinstance(req, MemWrite):
            self.log.append((req.why, req.addr, len(req.data), True))
        return self.ram.answer(req)


def is_ram(addr: int, size: int) -> bool:
    return BANK[0] <= addr and addr + size <= BANK[0] + BANK[1]


def make(vcpus: int = 4) -> tuple[Hypercalls, Services, Guest]:
    svc = Services()
    return Hypercalls(max_vcpus=vcpus, is_ram=is_ram, services=svc), svc, Guest()


def call(h: Hypercalls, g: Guest, nr: int, *args: int, vcpu: int = 0) -> HypercallResult:
    return run_sync(h.do_trap_hypercall(vcpu, nr, tuple(args)), g.answer)


def test_xen_version() -> None:
    h, _svc, g = make()
    assert call(h, g, XEN_VERSION, 0).ret == 0x4_0011  # 4.17
    g.ram.write(BUF, struct.pack("<II", 0, 0xFFFF_FFFF))
    assert call(h, g, XEN_VERSION, 6, BUF).ret == 0
    # memory_op_vnode_supported(13) | writable_page_tables(0) | auto_translated_physmap(2)
    # | dom0(11) | ARM_SMCCC_supported(14) | direct_mapped(17)
    assert struct.unpack("<II", g.ram.read(BUF, 8)) == (0, 0x2_6805)
    g.ram.write(BUF, struct.pack("<II", 1, 0))
    assert call(h, g, XEN_VERSION, 6, BUF).ret == -22  # only submap 0
    assert call(h, g, XEN_VERSION, 7, 0).ret == 4096  # XENVER_pagesize
    assert call(h, g, XEN_VERSION, 7, BUF).ret == -22
    assert call(h, g, XEN_VERSION, 1, BUF).ret == 0  # XENVER_extraversion
    assert g.ram.read(BUF, 16) == b".7" + bytes(14)
    assert call(h, g, XEN_VERSION, 99, BUF).ret == -38


def test_hvm_param_callback_irq_is_ppi_16_active_low_level() -> None:
    h, _svc, g = make()
    g.ram.write(BUF, struct.pack("<H2xIQ", 0x7FF0, 0, 0))
    assert call(h, g, HVM_OP, 1, BUF).ret == 0
    assert g.ram.read(BUF + 8, 8) == (0x0200_0000_0000_0210).to_bytes(8, "little")
    assert callback_irq_param(16) == 0x0200_0000_0000_0210
    g.ram.write(BUF, struct.pack("<H2xIQ", 0x7FF0, 39, 0))
    assert call(h, g, HVM_OP, 1, BUF).ret == -22  # index >= HVM_NR_PARAMS
    g.ram.write(BUF, struct.pack("<H2xIQ", 5, 0, 0))
    assert call(h, g, HVM_OP, 1, BUF).ret == -3  # no domain 5: -ESRCH
    assert call(h, g, HVM_OP, 77, BUF).ret == -38
    assert call(h, g, HVM_OP, 1, 0x1000).ret == -14


def test_add_to_physmap_shared_info() -> None:
    h, svc, g = make()
    g.ram.write(BUF, struct.pack("<HHIQQ", 0x7FF0, 0, 0, 0, 0x6_0042))
    assert call(h, g, MEMORY_OP, 7, BUF).ret == 0
    assert h.state.shared_info_gfn == 0x6_0042
    g.ram.write(BUF, struct.pack("<HHIQQ", 0x7FF0, 0, 0, 1, 0x6_0042))
    assert call(h, g, MEMORY_OP, 7, BUF).ret == -22  # shared_info idx must be 0
    g.ram.write(BUF, struct.pack("<HHIQQ", 0x7FF0, 0, 4, 0, 0))
    assert call(h, g, MEMORY_OP, 7, BUF).ret == -38  # gmfn_foreign only via the batch op
    assert call(h, g, MEMORY_OP, 7 | (1 << 22), BUF).ret == -33  # start_extent > 0xffff: -EDOM
    assert call(h, g, MEMORY_OP, 63, BUF).ret == -38


def test_register_vcpu_info_marks_everything_pending_and_injects_the_event_ppi() -> None:
    h, svc, g = make()
    g.ram.write(BUF, struct.pack("<QII", 0x6_0005, 0x40, 0))
    assert call(h, g, VCPU_OP, 10, 2, BUF).ret == 0
    info = g.ram.read(0x6000_5040, 16)
    assert info[0] == 1 and info[8:16] == b"\xff" * 8  # upcall pending, pending_sel = ~0
    assert svc.injected == [2]
    assert g.log[-1] == ("map_vcpu_info", 0x6000_5040, 48, True)
    assert call(h, g, VCPU_OP, 10, 2, BUF).ret == -22  # already registered
    assert call(h, g, VCPU_OP, 10, 4, BUF).ret == -2  # no vCPU 4
    g.ram.write(BUF, struct.pack("<QII", 0x6_0005, 4096 - 47, 0))
    assert call(h, g, VCPU_OP, 10, 1, BUF).ret == -22  # does not fit the page
    assert call(h, g, VCPU_OP, 0, 0, BUF).ret == -22  # VCPUOP_initialise: not on Arm


def test_console_write_copies_127_bytes_at_a_time_and_prints_lines() -> None:
    h, svc, g = make()
    text = ("x" * 200 + "\n" + "tail").encode()
    g.ram.write(BUF, text)
    assert call(h, g, CONSOLE_IO, 0, len(text), BUF).ret == 0
    sizes = [n for why, _a, n, _w in g.log if why == "guest_console_write"]
    assert sizes == [CONSOLE_KBUF - 1, len(text) - (CONSOLE_KBUF - 1)]
    assert svc.console == ["x" * 200]  # "tail" waits for its newline
    assert call(h, g, CONSOLE_IO, 0, 2, BUF + 200).ret == 0
    assert svc.console == ["x" * 200, "tail"]
    assert call(h, g, CONSOLE_IO, 1, 10, BUF).ret == 0  # no serial input
    assert call(h, g, CONSOLE_IO, 0, 0x10, 0x3000_0000).ret == -14
    assert call(h, g, CONSOLE_IO, 9, 0, 0).ret == -38


def test_event_channels() -> None:
    h, svc, g = make()
    g.ram.write(BUF, struct.pack("<III", 15, 0, 0))  # bind_virq(VIRQ_CONSOLE) on vCPU 0
    assert call(h, g, EVTCHN_OP, 1, BUF).ret == 0
    assert struct.unpack("<III", g.ram.read(BUF, 12))[2] == 1  # port 0 is reserved
    assert call(h, g, EVTCHN_OP, 1, BUF).ret == -17  # already bound
    g.ram.write(BUF, struct.pack("<III", 15, 1, 0))
    assert call(h, g, EVTCHN_OP, 1, BUF).ret == -22  # a global VIRQ on vCPU 1
    g.ram.write(BUF, struct.pack("<II", 3, 0))  # bind_ipi on vCPU 3
    assert call(h, g, EVTCHN_OP, 7, BUF).ret == 0
    port = struct.unpack("<II", g.ram.read(BUF, 8))[1]
    assert port == 2
    g.ram.write(BUF + 0x40, struct.pack("<I", port))
    assert call(h, g, EVTCHN_OP, 4, BUF + 0x40).ret == 0  # send: the IPI's vCPU gets the PPI
    assert svc.injected == [3]
    g.ram.write(BUF + 0x40, struct.pack("<I", 99))
    assert call(h, g, EVTCHN_OP, 4, BUF + 0x40).ret == -22
    g.ram.write(BUF, struct.pack("<QII", 0x6_0010, 0, 0) + bytes(8))  # FIFO init_control
    assert call(h, g, EVTCHN_OP, 11, BUF).ret == 0
    assert g.ram.read(BUF + 16, 1) == bytes([17])  # EVTCHN_FIFO_LINK_BITS
    assert call(h, g, EVTCHN_OP, 42, BUF).ret == -38


def test_sched_op() -> None:
    h, _svc, g = make()
    assert call(h, g, SCHED_OP, 0) == HypercallResult(0)
    assert call(h, g, SCHED_OP, 1) == HypercallResult(0, block=True)
    g.ram.write(BUF, struct.pack("<I", 1))
    assert call(h, g, SCHED_OP, 2, BUF) == HypercallResult(0, shutdown="reboot", shutdown_reason=1)
    assert call(h, g, SCHED_OP, 2, 0x10).ret == -14
    assert hwdom_shutdown_line(0) == "Hardware Dom0 halted: halting machine"
    assert hwdom_shutdown_line(1) == "Hardware Dom0 shutdown: rebooting machine"


@settings(max_examples=200, deadline=None)
@given(
    nr=st.integers(0, U64),
    args=st.lists(st.integers(0, U64), max_size=6),
    vcpu=st.integers(0, 3),
)
def test_hostile_hypercalls_never_raise_and_never_touch_non_ram(
    nr: int, args: list[int], vcpu: int
) -> None:
    h, _svc, g = make()
    res = call(h, g, nr % 64 if nr & 1 else nr, *args, vcpu=vcpu)
    assert isinstance(res.ret, int) and -4096 < res.ret < 1 << 32
    assert all(is_ram(a, n) for _why, a, n, _w in g.log)


# -- vPSCI / SMCCC -------------------------------------------------------------------------------


class Vcpus:
    def __init__(self, n: int, up: set[int]) -> None:
        self.n, self.up = n, up

    @property
    def max_vcpus(self) -> int:
        return self.n

    def is_down(self, vcpu: int) -> bool:
        return vcpu not in self.up


def test_psci_cpu_on_affinity_and_errors() -> None:
    t = Vcpus(20, {0})
    r = vsmccc_handle_call(t, 0, (0xC400_0003, vcpuid_to_vaffinity(17), 0x6008_0000, 7))
    assert (r.regs[0], r.cpu_on, r.entry, r.context_id) == (0, 17, 0x6008_0000, 7)
    assert vcpuid_to_vaffinity(17) == 0x101 and vaffinity_to_vcpuid(0x101) == 17
    t.up.add(17)
    r = vsmccc_handle_call(t, 0, (0xC400_0003, 0x101, 0x6008_0000, 0))
    assert r.regs[0] == (-4) & U64 and r.cpu_on is None  # ALREADY_ON
    r = vsmccc_handle_call(t, 0, (0xC400_0003, 2, 0x6008_0001, 0))
    assert r.regs[0] == (-9) & U64  # Thumb entry in a 64-bit domain: INVALID_ADDRESS
    r = vsmccc_handle_call(t, 0, (0x8400_0003, 0x200, 0x6008_0000, 0))
    assert r.regs[0] == (-2) & U64  # vCPU 32 does not exist
    # AFFINITY_INFO at level 1: any vCPU of cluster Aff1 = 1 (vCPUs 16..19) that is on.
    assert vsmccc_handle_call(t, 0, (0xC400_0004, 0x100, 1)).regs[0] == 0
    assert vsmccc_handle_call(t, 0, (0xC400_0004, 0x102, 0)).regs[0] == 1
    assert vsmccc_handle_call(t, 0, (0xC400_0004, 0x100, 4)).regs[0] == (-2) & U64


def test_psci_0_1_ids_of_the_dt_psci_node() -> None:
    t = Vcpus(2, {0})
    r = vsmccc_handle_call(t, 0, (2, 1, 0x6008_0000))  # Xen's PSCI 0.1 cpu_on = 2
    assert (r.regs[0], r.cpu_on) == (0, 1)
    t.up.add(1)
    r = vsmccc_handle_call(t, 0, (2, 1, 0x6008_0000))
    assert r.regs[0] == (-2) & U64  # 0.1 has no ALREADY_ON: INVALID_PARAMETERS
    assert vsmccc_handle_call(t, 1, (1,)).off is True  # cpu_off


def test_smccc_services() -> None:
    t = Vcpus(1, {0})
    uid = vsmccc_handle_call(t, 0, (0x8500_FF01,))
    # XEN_SMCCC_UID a71812dc-c698-4369-9acf-79d18ddee667 (public/arch-arm/smccc.h): bytes
    # a7 18 12 dc | c6 98 43 69 | 9a cf 79 d1 | 8d de e6 67, four per register, first byte low.
    assert uid.regs == [0xDC1218A7, 0x694398C6, 0xD179CF9A, 0x67E6DE8D]
    assert vsmccc_handle_call(t, 0, (0x8500_FF00,)).regs[0] == 3  # function count
    assert vsmccc_handle_call(t, 0, (0x8000_0001, 0x8000_8000)).regs[0] == U64  # no WA1
    off = vsmccc_handle_call(t, 0, (0x8400_0008,))
    assert off.shutdown == "poweroff" and off.regs[0] == (-6) & U64
    susp = vsmccc_handle_call(t, 0, (0xC400_0001, 0, 0, 0))
    assert susp.block and susp.regs[0] == 0
    bad = vsmccc_handle_call(t, 0, (0x8600_FF01,))
    assert bad.unhandled and bad.regs[0] == U64


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, U64), min_size=0, max_size=8))
def test_smccc_never_raises(regs: list[int]) -> None:
    r = vsmccc_handle_call(Vcpus(4, {0}), 0, tuple(regs))
    assert len(r.regs) == 4 and all(0 <= x <= U64 for x in r.regs)
