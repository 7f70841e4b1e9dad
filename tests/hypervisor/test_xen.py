"""The Xen component on the scheduler, driven by a scripted dom0 that exits like Linux would.

External truth: the "(XEN)" GIC lines of reference/real-boot/xen-dom0-dt.log (copied verbatim
below), the ICH_LR_EL2 layout Xen writes (xen-arm-vgic.md §5.6: state [63:62], Group 60,
priority [55:48], vINTID, no HW bit for LPIs), the HVM_PARAM_CALLBACK_IRQ encoding of
public/hvm/params.h, PSCI 1.1 / SMCCC 1.1 as dom0's real log reports them ("psci: PSCIv1.1
detected in firmware.", "psci: SMC Calling Convention v1.1"), the "Unhandled SMC/HVC" lines
of the real log, and the ITS command encodings of the GICv3 architecture.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import pytest

from gic import its_commands as cmds
from hypervisor.machine import VirtMachine
from hypervisor.xen import ENTRY_DABT, ENTRY_OK, ENTRY_UNDEF, Xen
from tests.hypervisor.bus_guest import RecordingScheduler
from transport.messages import (
    Entry,
    Envelope,
    Exit,
    GicContext,
    Kick,
    Mem,
    Message,
    Msi,
    Reply,
)

HVC_XEN = 0xEA1
U64 = (1 << 64) - 1
GICD = 0x0800_0000
RD0 = 0x080A_0000
RD1 = RD0 + 0x2_0000
GITS = 0x0808_0000
# dom0 RAM (the banks of xen-dom0-dt.log: 0x60000000 + 512 MiB, 0xa0000000 + 256 MiB)
PROP = 0x6100_0000
PEND0 = 0x6110_0000
PEND1 = 0x6111_0000
CMDQ = 0x6120_0000
DT = 0x6130_0000
CT = 0x6140_0000
ITT = 0x6150_0000
BUF = 0x6000_1000
DEVID = 0x10
#: ICH_LR_EL2 of a pending Group 1 virtual LPI at priority 0xa0 (sheet §5.6): State = 01
#: (bit 62), Group bit 60, Priority [55:48] = 0xa0, vINTID in [15:0], HW = 0.
LR_8192 = (1 << 62) | (1 << 60) | (0xA0 << 48) | 8192
LR_8193 = (1 << 62) | (1 << 60) | (0xA0 << 48) | 8193

#: The GIC lines of reference/real-boot/xen-dom0-dt.log (Debian's Xen 4.17.7, no HAS_ITS,
#: QEMU virt with 4 CPUs), lines 29..37, 52, 56, 60 and 95.
REAL_GIC_LINES = [
    "(XEN) Generic Timer IRQ: phys=30 hyp=26 virt=27 Freq: 62500 KHz",
    "(XEN) GICv3 initialization:",
    "(XEN)       gic_dist_addr=0x00000008000000",
    "(XEN)       gic_maintenance_irq=25",
    "(XEN)       gic_rdist_stride=0",
    "(XEN)       gic_rdist_regions=1",
    "(XEN)       redistributor regions:",
    "(XEN)         - region 0: 0x000000080a0000 - 0x00000009000000",
    "(XEN) GICv3: 256 lines, (IID 0000043b).",
    "(XEN) GICv3: CPU0: Found redistributor in region 0 @000000004001c000",
    "(XEN) GICv3: CPU1: Found redistributor in region 0 @000000004003c000",
    "(XEN) GICv3: CPU2: Found redistributor in region 0 @000000004005c000",
    "(XEN) GICv3: CPU3: Found redistributor in region 0 @000000004007c000",
    "(XEN) *** LOADING DOMAIN 0 ***",
    "(XEN) Allocating PPI 16 for event channel interrupt",
]

Step = Message | int | Callable[["FakeDom0", Any], None]


class FakeDom0:
    """Component ``dom0``: owns guest RAM, answers ``mem``, runs a script of exits.

    The script waits for the Entry of each exit it sends. A ``Kick`` for a vCPU with no exit
    outstanding is answered with an ``irq`` exit carrying that vCPU's last context (as a vCPU
    taking the event-check SGI would); those Entries do not advance the script.
    """

    def __init__(self, steps: Iterable[Step] = (), *, answer_kicks: bool = True) -> None:
        self.name = "dom0"
        from gic.port import Ram

        self.ram = Ram(0x4000_0000, 2 << 30)
        self.steps: deque[Step] = deque(steps)
        self.answer_kicks = answer_kicks
        self.mems: list[tuple[str, str, int, int, bool]] = []
        self.entries: list[tuple[int, Exit, Entry]] = []
        self.kicks: list[tuple[int, int]] = []
        self.refused: list[tuple[Exit | Message, Reply]] = []
        self.ctx: dict[int, GicContext] = {}
        self.outstanding: dict[int, Exit] = {}
        self._script_req = 0

    def start(self, port: Any) -> None:
        self._next(port)

    def timer(self, token: Any, port: Any) -> None:
        self._next(port)

    def receive(self, env: Envelope, port: Any) -> None:
        msg = env.msg
        if isinstance(msg, Mem):
            self.mems.append((msg.agent, env.why, msg.addr, msg.size, msg.write))
            if msg.write:
                self.ram.write(msg.addr, msg.data)
                port.reply(env, Reply())
            else:
                port.reply(env, Reply(data=self.ram.read(msg.addr, msg.size)))
        elif isinstance(msg, Entry):
            ex = self.outstanding.pop(env.reply_to)
            self.entries.append((port.now, ex, msg))
            self.ctx[msg.vcpu] = msg.ctx
            if env.reply_to == self._script_req:
                self._script_req = 0
                self._next(port)
        elif isinstance(msg, Kick):
            self.kicks.append((port.now, msg.vcpu))
            busy = any(e.vcpu == msg.vcpu for e in self.outstanding.values())
            if self.answer_kicks and not busy:
                self._send(port, Exit(vcpu=msg.vcpu, reason="irq"), script=False)
        elif isinstance(msg, Reply):
            ex = self.outstanding.pop(env.reply_to, None)
            self.refused.append((ex, msg))  # type: ignore[arg-type]
            if env.reply_to == self._script_req:
                self._script_req = 0
                self._next(port)

    def _send(self, port: Any, msg: Message, *, script: bool) -> None:
        if isinstance(msg, Exit) and msg.ctx == GicContext() and msg.vcpu in self.ctx:
            msg = msgspec.structs.replace(msg, ctx=self.ctx[msg.vcpu])
        rid = port.send("xen", msg, request=True, why="test_script")
        self.outstanding[rid] = msg  # type: ignore[assignment]
        if script:
            self._script_req = rid

    def _next(self, port: Any) -> None:
        while self.steps and not self._script_req:
            step = self.steps.popleft()
            if isinstance(step, int):
                port.call_later(step, "wait")
                return
            if callable(step) and not isinstance(step, Message):
                step(self, port)
                continue
            self._send(port, step, script=True)

    # views
    def entry_for(self, reason: str, vcpu: int = 0) -> list[Entry]:
        return [e for _t, x, e in self.entries if x.reason == reason and x.vcpu == vcpu]

    def xen_mems(self) -> list[tuple[str, int, int, bool]]:
        return [(why, a, n, w) for agent, why, a, n, w in self.mems if agent == "xen"]


class FakeDevice:
    """Component ``dev.<name>``: sends ``Msi`` to Xen at given times."""

    def __init__(self, name: str, schedule: Iterable[tuple[int, int, int]]) -> None:
        self.name = f"dev.{name}"
        self.schedule = list(schedule)

    def start(self, port: Any) -> None:
        for i, (t, _d, _e) in enumerate(self.schedule):
            port.call_later(t, i)

    def timer(self, token: Any, port: Any) -> None:
        _t, devid, eventid = self.schedule[token]
        port.send("xen", Msi(devid=devid, eventid=eventid), why="msi")

    def receive(self, env: Envelope, port: Any) -> None:
        pass


def hvc(vcpu: int, nr: int, *args: int) -> Exit:
    return Exit(vcpu=vcpu, reason="hvc", imm=HVC_XEN, x16=nr, regs=tuple(args))


def smc(vcpu: int, *args: int) -> Exit:
    return Exit(vcpu=vcpu, reason="hvc", imm=0, regs=tuple(args))


def mmio_w(vcpu: int, addr: int, size: int, value: int) -> Exit:
    return Exit(vcpu=vcpu, reason="dabt", addr=addr, size=size, write=True, value=value)


def mmio_r(vcpu: int, addr: int, size: int) -> Exit:
    return Exit(vcpu=vcpu, reason="dabt", addr=addr, size=size)


def run(
    steps: Iterable[Step],
    *,
    cpus: int = 2,
    devices: Iterable[FakeDevice] = (),
    until: int | None = None,
    answer_kicks: bool = True,
    **xen_kw: Any,
) -> tuple[RecordingScheduler, Xen, FakeDom0]:
    sched = RecordingScheduler(seed=1)
    xen = Xen(VirtMachine(cpus=cpus), **xen_kw)
    dom0 = FakeDom0(steps, answer_kicks=answer_kicks)
    sched.add(xen)
    sched.add(dom0)
    for d in devices:
        sched.add(d)
    sched.start()
    sched.run(until=until)
    return sched, xen, dom0


def records(sched: RecordingScheduler, kind: str) -> list[tuple[dict[str, Any], str]]:
    return [(body, why) for _t, _s, k, body, why in sched.records if k == kind]


# -- boot --------------------------------------------------------------------------------------


def test_boot_lines_are_the_real_logs_gic_lines_without_its() -> None:
    sched, xen, _ = run([], cpus=4, has_its=False)
    lines = [b["line"] for b, _ in records(sched, "xen-console")]
    assert lines == REAL_GIC_LINES
    assert xen.host_its is None


def test_boot_with_its_adds_the_its_and_lpi_lines() -> None:
    sched, xen, _ = run([], cpus=4, has_its=True)
    lines = [b["line"] for b, _ in records(sched, "xen-console")]
    assert lines[1] == "(XEN) GICv3: Found ITS @0x8080000"
    # gicv3_dist_init: host LPIs before "N lines"; 2^16 IDs - 8192 = 57344.
    i = lines.index("(XEN) GICv3: 256 lines, (IID 0000043b).")
    assert lines[i - 1] == "(XEN) GICv3: using at most 57344 LPIs on the host."
    # Every pCPU's redistributor has EnableLPIs set, and nothing of the guest was touched.
    assert all(rd.lpis_enabled for rd in xen.gic.redists)


def test_boot_blobs_acpi_and_dt() -> None:
    _, xen, _ = run([], cpus=2, dom0_boot="acpi")
    assert set(xen.boot_blobs.acpi) >= {"RSDP", "XSDT", "FACP", "APIC", "STAO", "IORT"}
    assert xen.boot_blobs.addresses["dtb"] == 0x6800_0000  # place_modules: bank 0 + 128 MiB
    _, xen, _ = run([], cpus=2, dom0_boot="dt")
    assert not xen.boot_blobs.acpi and xen.boot_blobs.dtb[:4] == bytes.fromhex("d00dfeed")


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"vcpus": 3}, "guest.vcpus = 3"),
        ({"dom0_boot": "uefi"}, "host.dom0_boot = 'uefi'"),
    ],
)
def test_bad_configuration_is_one_clear_line(kw: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Xen(VirtMachine(cpus=2), **kw)


# -- hypercalls and PSCI through exits ---------------------------------------------------------


def test_hypercalls_through_exits_and_xen_memory_requests() -> None:
    def setup(d: FakeDom0, _port: Any) -> None:
        d.ram.write(BUF, struct.pack("<II", 0, 0xDEAD))
        d.ram.write(BUF + 0x100, struct.pack("<H2xIQ", 0x7FF0, 0, 0))
        d.ram.write(BUF + 0x200, b"Booting Linux\npartial")

    steps: list[Step] = [
        setup,
        hvc(0, 17, 0),  # XENVER_version
        hvc(0, 17, 6, BUF),  # XENVER_get_features
        hvc(0, 34, 1, BUF + 0x100),  # HVMOP_get_param(HVM_PARAM_CALLBACK_IRQ)
        hvc(0, 18, 0, 21, BUF + 0x200),  # CONSOLEIO_write
        hvc(0, 17, 6, 0x1000),  # a pointer outside dom0 RAM
        hvc(0, 37, 0),  # kexec_op has no Arm entry
        hvc(0, 24, 99, 0, 0),  # vcpu_op: unknown sub-op
    ]
    sched, xen, dom0 = run(steps)
    x0 = [e.regs[0] for e in dom0.entry_for("hvc")]
    assert [e.value for e in dom0.entry_for("hvc")] == [ENTRY_OK] * 7
    assert x0 == [
        (4 << 16) | 17,
        0,
        0,
        0,
        (-14) & U64,  # -EFAULT
        (-38) & U64,  # -ENOSYS
        (-22) & U64,  # -EINVAL (do_arm_vcpu_op)
    ]
    # get_features wrote submap_idx 0 and the Arm dom0 submap: vnode(13) | writable page
    # tables(0) | auto-translated(2) | dom0(11) | ARM_SMCCC_supported(14) | direct_mapped(17).
    assert struct.unpack("<II", dom0.ram.read(BUF, 8)) == (0, 0x26805)
    # HVM_PARAM_CALLBACK_IRQ: type PPI (2) << 56 | LOW_LEVEL flag (2) << 8 | PPI 16.
    assert struct.unpack_from("<Q", dom0.ram.read(BUF + 0x108, 8))[0] == 0x0200_0000_0000_0210
    assert [b for b, _ in records(sched, "xen-console") if "domid" in b] == [
        {"line": "Booting Linux", "domid": 0}
    ]
    # Exactly Xen's memory accesses, tagged xen with the Xen function; nothing for -EFAULT.
    assert dom0.xen_mems() == [
        ("do_xen_version", BUF, 8, False),
        ("do_xen_version", BUF, 8, True),
        ("do_hvm_op", BUF + 0x100, 16, False),
        ("do_hvm_op", BUF + 0x100, 16, True),
        ("guest_console_write", BUF + 0x200, 21, False),
    ]
    assert xen.crash is None


def test_psci_and_smccc_answers() -> None:
    steps: list[Step] = [
        smc(0, 0x8400_0000),  # PSCI_VERSION
        smc(0, 0x8000_0000),  # SMCCC_VERSION
        smc(0, 0x8400_000A, 0xC400_0003),  # PSCI_FEATURES(CPU_ON64)
        smc(0, 0x8400_000A, 0x8400_0050),  # PSCI_FEATURES(TRNG_VERSION)
        smc(0, 0x8400_0006),  # MIGRATE_INFO_TYPE
        smc(0, 0xC400_0004, 1, 0),  # AFFINITY_INFO(vCPU 1): off
        smc(0, 0xC400_0003, 1, 0x6008_0000, 0xABCD),  # CPU_ON vCPU 1
        smc(0, 0xC400_0003, 1, 0x6008_0000, 0),  # again: ALREADY_ON
        smc(0, 0xC400_0003, 0x22, 0x6008_0000, 0),  # no vCPU 0x22: INVALID_PARAMS
        smc(0, 0xC400_0004, 1, 0),  # AFFINITY_INFO(vCPU 1): on
        smc(0, 0x8400_0050),  # TRNG_VERSION: unhandled
        smc(0, 0x8600_FF01),  # vendor hyp UID: unhandled
        smc(1, 0x8400_0000),  # the new vCPU's exits are accepted
    ]
    sched, xen, dom0 = run(steps)
    x0 = [e.regs[0] for _t, _x, e in dom0.entries]
    assert x0 == [
        0x1_0001,
        0x1_0001,
        0,
        (-1) & U64,
        2,
        1,
        0,
        (-4) & U64,
        (-2) & U64,
        0,
        (-1) & U64,
        (-1) & U64,
        0x1_0001,
    ]
    lines = [b["line"] for b, _ in records(sched, "xen-console")]
    assert "(XEN) d0v0 Unhandled SMC/HVC: 0x84000050" in lines  # xen-dom0-dt.log line 108
    assert "(XEN) d0v0 Unhandled SMC/HVC: 0x8600ff01" in lines  # line 109
    cpu_on = [b for b, _ in records(sched, "psci") if b["call"] == "CPU_ON" and b["ret"] == 0]
    assert cpu_on == [
        {"vcpu": 0, "call": "CPU_ON", "ret": 0, "target": 1, "entry": 0x6008_0000,
         "context_id": 0xABCD}
    ]  # fmt: skip


def test_invalid_hvc_immediate_is_an_undefined_instruction() -> None:
    sched, _xen, dom0 = run([Exit(vcpu=0, reason="hvc", imm=0x5, regs=(1, 2))])
    (entry,) = dom0.entry_for("hvc")
    assert entry.value == ENTRY_UNDEF and entry.regs == ()
    assert "(XEN) d0v0 Invalid HVC imm 0x5" in [b["line"] for b, _ in records(sched, "xen-console")]
    assert records(sched, "undef")[0][1] == "inject_undef_exception"


def test_system_off_prints_hwdom_shutdown_and_stops() -> None:
    sched, xen, dom0 = run([smc(0, 0x8400_0008), hvc(0, 17, 0)])
    assert dom0.entries == []
    assert xen.shutdown == "poweroff"
    assert "(XEN) Hardware Dom0 halted: halting machine" in xen.console  # real log line 1826


# -- MMIO and system registers -----------------------------------------------------------------


def test_vgic_mmio_and_unbacked_address() -> None:
    steps: list[Step] = [
        mmio_r(0, GICD + 0x4, 4),  # GICD_TYPER
        mmio_r(0, 0x0A00_0000, 4),  # nothing there
        mmio_w(0, 0x0A00_0000, 4, 1),
    ]
    sched, xen, dom0 = run(steps)
    e = dom0.entry_for("dabt")
    # vgic-v3.c GICD_TYPER for dom0 with a vITS: IDbits 15 (host 16 bits) [23:19], LPIS
    # (bit 17), CPUNumber = 2 - 1 [7:5], ITLinesNumber = 224 SPIs / 32 = 7.
    assert (e[0].value, e[0].regs) == (ENTRY_OK, ((15 << 19) | (1 << 17) | (1 << 5) | 7,))
    assert [x.value for x in e[1:]] == [ENTRY_DABT, ENTRY_DABT]
    assert [b["addr"] for b, _ in records(sched, "dabt")] == [0x0A00_0000, 0x0A00_0000]


def nowait(msg: Exit) -> Callable[[FakeDom0, Any], None]:
    """A step that sends ``msg`` without waiting for its Entry (another vCPU's exit)."""

    def send(d: FakeDom0, port: Any) -> None:
        d._send(port, msg, script=False)

    return send


def test_sysreg_sgi_wakes_a_blocked_vcpu_and_unknown_sysreg_is_undef() -> None:
    sgi = (3 << 24) | 0b10  # ICC_SGI1R_EL1: INTID 3, Aff1 0, TargetList = vCPU 1
    steps: list[Step] = [
        mmio_w(0, RD1 + 0x1_0100, 4, 1 << 3),  # vCPU 1's GICR_ISENABLER0: SGI 3
        smc(0, 0xC400_0003, 1, 0x6008_0000, 0),  # CPU_ON vCPU 1
        nowait(Exit(vcpu=1, reason="wfi")),  # vCPU 1 blocks
        10,
        Exit(vcpu=0, reason="sysreg", reg="ICC_SGI1R_EL1", write=True, value=sgi),
        Exit(vcpu=0, reason="sysreg", reg="ICC_SGI1R_EL1", write=False),
        Exit(vcpu=0, reason="sysreg", reg="ICC_PMR_EL1", write=True, value=0xF0),
    ]
    sched, xen, dom0 = run(steps)
    (wfi,) = dom0.entry_for("wfi", 1)
    sgi_lr = (1 << 62) | (1 << 60) | 3  # SGI 3, priority 0 (reset), Group 1, pending
    assert wfi.value == ENTRY_OK and wfi.ctx.lrs[0] == sgi_lr
    statuses = [e.value for e in dom0.entry_for("sysreg", 0)]
    assert statuses == [ENTRY_OK, ENTRY_UNDEF, ENTRY_UNDEF]


# -- the LPI path ------------------------------------------------------------------------------


def _prop(d: FakeDom0, _port: Any) -> None:
    # LPI configuration bytes: priority 0xa0, RES1, enabled (Linux's LPI_PROP_DEFAULT | 1).
    d.ram.write(PROP, bytes([0xA3, 0xA3, 0xA3, 0xA3]))


def _queue(*commands: cmds.ItsCommand) -> Callable[[FakeDom0, Any], None]:
    def write(d: FakeDom0, _port: Any) -> None:
        d.ram.write(CMDQ, b"".join(c.encode() for c in commands))

    return write


def its_setup_steps(coll1: int = 1) -> list[Step]:
    """What Linux does on this path, reduced: LPI tables on both redistributors, the vITS
    tables and queue, then MAPD (32 events) + MAPC x2 + MAPTI x2 and one CWRITER write.
    Event 0 goes to collection 0 (vCPU 0), event 1 to collection ``coll1``."""
    attrs = (7 << 7) | (1 << 10)  # RaWaWb, inner shareable
    baser_attrs = (1 << 63) | (7 << 59) | (1 << 10)
    return [
        _prop,
        smc(0, 0xC400_0003, 1, 0x6008_0000, 0),  # CPU_ON vCPU 1
        mmio_w(0, RD0 + 0x70, 8, PROP | attrs | 15),  # GICR_PROPBASER, 16 ID bits
        mmio_w(0, RD0 + 0x78, 8, PEND0 | attrs),
        mmio_w(0, RD0 + 0x00, 4, 1),  # EnableLPIs
        mmio_w(1, RD1 + 0x78, 8, PEND1 | attrs),
        mmio_w(1, RD1 + 0x00, 4, 1),
        mmio_w(0, GITS + 0x80, 8, baser_attrs | CMDQ),  # GITS_CBASER, one 4 KiB page
        mmio_w(0, GITS + 0x100, 8, baser_attrs | DT),  # GITS_BASER0, 4 KiB
        mmio_w(0, GITS + 0x108, 8, baser_attrs | CT),  # GITS_BASER1, 4 KiB
        mmio_w(0, GITS + 0x00, 4, 1),  # GITS_CTLR.Enabled
        _queue(
            cmds.Mapd(DeviceID=DEVID, Size=4, ITT_addr=ITT, V=1),
            cmds.Mapc(ICID=0, RDbase=0, V=1),
            cmds.Mapc(ICID=1, RDbase=1, V=1),
            cmds.Mapti(DeviceID=DEVID, EventID=0, pINTID=8192, ICID=0),
            cmds.Mapti(DeviceID=DEVID, EventID=1, pINTID=8193, ICID=coll1),
        ),
        mmio_w(0, GITS + 0x88, 8, 5 * 32),  # GITS_CWRITER
    ]


def test_vits_commands_map_the_host_device_and_read_xen_tables_in_guest_ram() -> None:
    sched, xen, dom0 = run(its_setup_steps())
    assert all(e.value == ENTRY_OK for e in dom0.entry_for("dabt", 0))
    its = xen.host_its
    assert its is not None
    # Host side: the guest's MAPD became a host MAPD of 32 events with one block of 32 host
    # LPIs; MAPTI connected the first two to (dom0, vLPI).
    (dev,) = its.devices.values()
    assert (dev.guest_devid, dev.eventids, len(dev.host_lpi_blocks)) == (DEVID, 32, 1)
    first = dev.host_lpi_blocks[0]
    assert its.gic_get_host_lpi(first).virt_lpi == 8192  # type: ignore[union-attr]
    assert its.gic_get_host_lpi(first + 1).virt_lpi == 8193  # type: ignore[union-attr]
    assert its.gic_get_host_lpi(first + 2).virt_lpi == 0  # type: ignore[union-attr]
    # Guest side: every Xen access is tagged xen and named; the property table is read for the
    # two MAPTIs; the pending tables are never touched; the hardware never touches dom0 RAM.
    whys = {why for why, *_ in dom0.xen_mems()}
    assert "vgic_its_handle_cmds" in whys and "update_lpi_property" in whys
    props = [(a, n) for why, a, n, _w in dom0.xen_mems() if why == "update_lpi_property"]
    assert props == [(PROP, 1), (PROP + 1, 1)]
    touched = [(a, n) for _why, a, n, _w in dom0.xen_mems()]
    assert not any(PEND0 <= a < PEND1 + 0x10000 for a, _n in touched)
    assert all(agent == "xen" for agent, *_ in dom0.mems)


def test_msi_travels_to_the_lr_of_a_blocked_vcpu_and_the_physical_eoi_is_immediate() -> None:
    dev = FakeDevice("rng", [(1_000, DEVID, 0)])
    steps = [*its_setup_steps(), Exit(vcpu=0, reason="wfi")]
    sched, xen, dom0 = run(steps, devices=[dev])
    (wfi,) = dom0.entry_for("wfi", 0)
    assert wfi.value == ENTRY_OK and wfi.ctx.lrs[0] == LR_8192
    (t_entry,) = [t for t, x, _e in dom0.entries if x.reason == "wfi"]
    assert t_entry == 1_000
    # gicv3_do_LPI EOIed at once: pCPU 0's running priority is idle again, its line is low.
    assert xen.gic.cpus[0].running_priority() == 0xFF
    assert xen.gic.irq_lines()[0] is False
    (inj,) = [b for b, why in records(sched, "inject") if why == "vgic_inject_irq"]
    host_lpi = xen.host_its.devices[(GITS + 0x10040, DEVID)].host_lpi_blocks[0]  # type: ignore[union-attr]
    assert {k: inj[k] for k in ("vcpu", "virq", "devid", "eventid", "host_lpi")} == {
        "vcpu": 0, "virq": 8192, "devid": DEVID, "eventid": 0, "host_lpi": host_lpi,
    }  # fmt: skip
    lr = [b for b, why in records(sched, "lr") if why == "gic_set_lr"]
    assert {"vcpu": 0, "lr": 0, "value": LR_8192, "virq": 8192} in lr
    assert xen.counters["msis"] == 1 and xen.counters["lpis_injected"] == 1


def test_msi_for_a_running_vcpu_kicks_it_and_lands_in_the_irq_exit_entry() -> None:
    # Event 1 goes to collection 1 = vCPU 1, but every host LPI arrives on pCPU 0: Xen kicks
    # vCPU 0 to take it, and at vCPU 0's irq exit queues vLPI 8193 for vCPU 1 and kicks it.
    dev = FakeDevice("rng", [(1_000, DEVID, 1)])
    sched, xen, dom0 = run([*its_setup_steps(), 5_000], devices=[dev])
    assert dom0.kicks == [(1_000, 0), (1_000, 1)]
    (irq0,) = dom0.entry_for("irq", 0)
    assert irq0.ctx.lrs == (0, 0, 0, 0)
    (irq,) = dom0.entry_for("irq", 1)
    assert irq.ctx.lrs[0] == LR_8193
    assert xen.counters["kicks"] == 2
    assert xen.gic.cpus[0].running_priority() == 0xFF


def test_msi_while_vcpu0_runs_kicks_vcpu0_and_is_taken_at_its_exit() -> None:
    dev = FakeDevice("rng", [(1_000, DEVID, 0)])
    sched, xen, dom0 = run([*its_setup_steps(), 5_000], devices=[dev])
    assert dom0.kicks == [(1_000, 0)]
    (irq,) = dom0.entry_for("irq", 0)
    assert irq.ctx.lrs[0] == LR_8192
    # Taken on pCPU 0 while vCPU 0 was current: the LR was written directly.
    assert [b for b, _ in records(sched, "inject")][-1]["outcome"] == "lr"


def test_unmapped_host_lpi_is_dropped_silently_and_eoied() -> None:
    # Event 2 has a host LPI (MAPD maps all 32) but no MAPTI: virt_lpi is INVALID_LPI. vCPU 0
    # waits in WFI, so pCPU 0 is idle and takes the LPI at once; nothing wakes vCPU 0.
    dev = FakeDevice("rng", [(1_000, DEVID, 2)])
    steps = [*its_setup_steps(), Exit(vcpu=0, reason="wfi")]
    sched, xen, dom0 = run(steps, devices=[dev], until=5_000)
    assert dom0.kicks == [] and dom0.entry_for("wfi", 0) == []
    (drop,) = [b for b, why in records(sched, "lpi-dropped") if why == "gicv3_do_LPI"]
    assert (drop["devid"], drop["eventid"]) == (DEVID, 2)
    assert xen.counters["lpis_dropped_unmapped"] == 1
    assert xen.gic.cpus[0].running_priority() == 0xFF and xen.gic.irq_lines()[0] is False


def test_second_msi_while_queued_coalesces() -> None:
    # pCPU 0 is idle (vCPU 0 in WFI) and takes both LPIs at once; vCPU 1 runs and does not
    # answer its kick yet, so the second vLPI 8193 finds the first still QUEUED.
    dev = FakeDevice("rng", [(1_000, DEVID, 1), (1_001, DEVID, 1)])
    steps = [*its_setup_steps(), Exit(vcpu=0, reason="wfi")]
    sched, xen, dom0 = run(steps, devices=[dev], answer_kicks=False, until=5_000)
    assert dom0.kicks == [(1_000, 1)]  # one kick: the second injection finds it pending
    assert xen.counters["lpis_injected"] == 2 and xen.counters["lpis_coalesced"] == 1
    coalesced = [b["coalesced"] for b, why in records(sched, "inject") if b["virq"] == 8193]
    assert coalesced == [False, True]


# -- hostile input -----------------------------------------------------------------------------


def test_hostile_exits_get_xens_answers_and_the_run_goes_on() -> None:
    steps: list[Step] = [
        Exit(vcpu=7, reason="wfi"),  # no such vCPU: refused, one line
        Exit(vcpu=1, reason="hvc", imm=HVC_XEN, x16=17),  # vCPU 1 is down
        hvc(0, U64, 1, 2, 3),  # hypercall number 2^64 - 1
        hvc(0, 18, 0, 0xFFFF_FFFF, 0x6000_0000),  # console write of 4 GiB: not all RAM
        hvc(0, 12, 7, U64),  # add_to_physmap with a pointer at the top of the address space
        Exit(vcpu=0, reason="dabt", addr=GICD, size=3, write=True, value=1),  # bad size
        Exit(vcpu=0, reason="sysreg", reg="NOT_A_REGISTER", write=True, value=U64),
        smc(0, 0xC400_0003, 0xFFFF_FFFF_FFFF_FFFF, 1, 0),  # CPU_ON Thumb entry, bad target
        hvc(0, 17, 0),
    ]
    sched, xen, dom0 = run(steps)
    assert [r.error for _x, r in dom0.refused] == [
        "exit from vcpu 7: dom0 has vCPUs 0..1",
        "exit from d0v1 while it is down",
    ]
    values = [(x.reason, e.value, e.regs[0] if e.regs else None) for _t, x, e in dom0.entries]
    assert values == [
        ("hvc", ENTRY_OK, (-38) & U64),
        ("hvc", ENTRY_OK, (-14) & U64),
        ("hvc", ENTRY_OK, (-14) & U64),
        ("dabt", ENTRY_DABT, None),
        ("sysreg", ENTRY_UNDEF, None),
        ("hvc", ENTRY_OK, (-2) & U64),
        ("hvc", ENTRY_OK, (4 << 16) | 17),
    ]
    assert dom0.xen_mems() == []  # no hostile pointer turned into a memory access
    assert xen.crash is None


def test_full_list_registers_set_uie_and_the_maintenance_exit_refills() -> None:
    # One list register (ICH_VTR_EL2.ListRegs = 0). Both events target vCPU 0.
    dev = FakeDevice("rng", [(1_000, DEVID, 0), (2_000, DEVID, 1)])
    after: list[Step] = [
        Exit(vcpu=0, reason="wfi"),  # woken at 1000 with vLPI 8192 in LR0
        3_000,  # the second LPI at 2000: kick, irq exit, no free LR: lr_pending + UIE
        # The guest acknowledged and EOIed vLPI 8192 (LR0 invalid); the underflow
        # maintenance interrupt makes it exit with UIE still set in its ICH_HCR_EL2.
        Exit(vcpu=0, reason="irq", ctx=GicContext(lrs=(0,), hcr=0b11)),
    ]
    m = VirtMachine(cpus=2, list_registers=1)
    sched = RecordingScheduler(seed=1)
    xen = Xen(m)
    dom0 = FakeDom0([*its_setup_steps(coll1=0), *after])
    for c in (xen, dom0, dev):
        sched.add(c)
    sched.start()
    sched.run()
    wfi = dom0.entry_for("wfi", 0)[0]
    assert wfi.ctx.lrs == (LR_8192,) and not wfi.ctx.hcr & 0b10
    kicked, maint = dom0.entry_for("irq", 0)
    assert kicked.ctx.lrs == (LR_8192,) and kicked.ctx.hcr & 0b10  # UIE: backlog, LRs full
    assert maint.ctx.lrs == (LR_8193,) and not maint.ctx.hcr & 0b10
    assert xen.counters["lr_overflows"] == 1 and xen.counters["maintenance_irqs"] == 1
    assert all(len(e.ctx.lrs) == 1 for _t, _x, e in dom0.entries)


def test_virtual_timer_is_taken_by_xen_masked_and_injected_without_hw_bit() -> None:
    steps: list[Step] = [
        mmio_w(0, RD0 + 0x1_0100, 4, 1 << 27),  # enable PPI 27 in vCPU 0's GICR_ISENABLER0
        Exit(vcpu=0, reason="sysreg", reg="CNTV_TVAL_EL0", write=True, value=62),
        Exit(vcpu=0, reason="sysreg", reg="CNTV_CTL_EL0", write=True, value=1),
        2_500,
        Exit(vcpu=0, reason="sysreg", reg="CNTV_CTL_EL0", write=False),
    ]
    sched = RecordingScheduler(seed=1)
    xen = Xen(VirtMachine(cpus=2, timer_period_ns=1_000))
    dom0 = FakeDom0(steps)
    sched.add(xen)
    sched.add(dom0)
    sched.start()
    sched.run(until=2_600)
    # The period elapsed at 1000 while vCPU 0 ran: physical PPI 27 on pCPU 0, so a kick, and
    # at the irq exit vtimer_interrupt masked the timer and injected vIRQ 27 (HW = 0).
    assert dom0.kicks == [(1_000, 0)]
    (irq,) = dom0.entry_for("irq", 0)
    assert irq.ctx.lrs[0] == (1 << 62) | (1 << 60) | 27
    *_, ctl = dom0.entry_for("sysreg", 0)
    assert ctl.regs == (0b111,)  # ENABLE | IMASK | ISTATUS
    assert xen.counters["vtimer_irqs"] == 1
    assert xen.gic.cpus[0].running_priority() == 0xFF  # EOI + DIR by gicv3_host_irq_end


def test_virtual_timer_of_a_blocked_vcpu_wakes_it() -> None:
    steps: list[Step] = [
        mmio_w(0, RD0 + 0x1_0100, 4, 1 << 27),
        Exit(vcpu=0, reason="sysreg", reg="CNTV_CTL_EL0", write=True, value=1),
        Exit(vcpu=0, reason="wfi"),
    ]
    sched = RecordingScheduler(seed=1)
    xen = Xen(VirtMachine(cpus=2, timer_period_ns=1_000))
    dom0 = FakeDom0(steps)
    sched.add(xen)
    sched.add(dom0)
    sched.start()
    sched.run(until=1_500)
    (t, _x, wfi) = [e for e in dom0.entries if e[1].reason == "wfi"][0]
    assert t == 1_000 and wfi.ctx.lrs[0] == (1 << 62) | (1 << 60) | 27
    assert [(b["via"], why) for b, why in records(sched, "inject") if b["virq"] == 27] == [
        ("virt_timer_expired", "vgic_inject_irq")
    ]


def test_register_vcpu_info_raises_the_event_channel_ppi_in_the_callers_lr() -> None:
    def setup(d: FakeDom0, _port: Any) -> None:
        d.ram.write(BUF, struct.pack("<QII", 0x6_0005, 0, 0))

    steps: list[Step] = [
        mmio_w(0, RD0 + 0x1_0100, 4, 1 << 16),  # enable PPI 16 (the event channel)
        setup,
        hvc(0, 24, 10, 0, BUF),  # VCPUOP_register_vcpu_info for vCPU 0
    ]
    sched, xen, dom0 = run(steps)
    (entry,) = dom0.entry_for("hvc", 0)
    assert entry.regs[0] == 0
    assert entry.ctx.lrs[0] == (1 << 62) | (1 << 60) | 16  # map_vcpu_info -> arch_evtchn_inject
    assert ("map_vcpu_info", 0x6000_5000, 48, True) in dom0.xen_mems()


def test_invall_of_an_unmapped_collection_is_a_typed_xen_crash() -> None:
    def invall(d: FakeDom0, _port: Any) -> None:
        d.ram.write(CMDQ + 5 * 32, cmds.Invall(ICID=0xFFFF).encode())

    steps = [*its_setup_steps(), invall, mmio_w(0, GITS + 0x88, 8, 6 * 32), hvc(0, 17, 0)]
    sched, xen, dom0 = run(steps)
    assert xen.crash is not None and xen.crash.site == "its_handle_invall"
    assert [b["site"] for b, _ in records(sched, "xen_crash")] == ["its_handle_invall"]
    # The machine is gone: the CWRITER write never gets its Entry, nothing runs after it.
    last = dom0.entries[-1][1]  # the setup's CWRITER write (5 commands) is the last answered
    assert (last.reason, last.addr, last.value) == ("dabt", GITS + 0x88, 5 * 32)
    assert sched.run().stopped.startswith("xen_crash at its_handle_invall")
    assert len(dom0.outstanding) == 1
