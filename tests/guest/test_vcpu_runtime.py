"""The vCPU runtime of guest/cpu.py in Xen mode, against a scripted fake Xen (no hypervisor
model): which requests trap and how, the virtual CPU interface carried in exits and restored
from entries, kicks, the maintenance interrupt and WFI.

External truth: the ICH_LR_EL2 layout (gicv3-architecture.md: State [63:62], Group 60,
Priority [55:48], vINTID [31:0]); MISR.U when UIE is set and at most one LR is valid; the Arm
hypercall ABI (HVC #0xEA1, number in x16, xen-arm-vgic.md §7).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from gic.list_registers import ListRegisters
from guest.cpu import (
    Cost,
    CpuRuntime,
    Hypercall,
    IrqWindow,
    MmioRead,
    Psci,
    SysregRead,
    SysregWrite,
    Wfi,
)
from transport.messages import Entry, Envelope, Exit, GicContext, Message

Gen = Generator[Any, Any, Any]
LR_PENDING_G1 = (1 << 62) | (1 << 60)
ICH_HCR_EN, ICH_HCR_UIE = 1 << 0, 1 << 1
VMCR_VENG1_PMR_F0 = (1 << 1) | (0xF0 << 24)  # ICH_VMCR_EL2.VENG1, VPMR [31:24]


def lr(intid: int, prio: int = 0xA0, state: int = 1) -> int:
    return (state << 62) | (1 << 60) | (prio << 48) | intid


class FakePort:
    def __init__(self) -> None:
        self.now = 0
        self.sent: list[tuple[str, Message, int]] = []
        self.timers: list[tuple[int, Any]] = []
        self.records: list[tuple[str, dict[str, Any]]] = []
        self._id = 0

    def send(self, dst: str, msg: Message, *, delay: int = 0, why: str = "", reply_to: int = 0,
             request: bool = False) -> int:  # fmt: skip
        self._id += 1
        self.sent.append((dst, msg, self._id))
        return self._id

    def reply(self, to: Any, msg: Message, *, delay: int = 0, why: str = "") -> None:
        pass

    def call_later(self, delay: int, token: Any) -> None:
        self.timers.append((delay, token))

    def record(self, kind: str, body: dict[str, Any], *, why: str = "", dst: str = "") -> None:
        self.records.append((kind, body))

    def stop(self, reason: str) -> None:
        pass

    def exits(self) -> list[Exit]:
        return [m for _, m, _ in self.sent if isinstance(m, Exit)]


class FakeGuest:
    """The CpuHost side: an IRQ handler that acknowledges and EOIs through the ICC registers."""

    host = "xen"
    conduit = "hvc"

    def __init__(self) -> None:
        self.taken: list[int] = []
        self.faults: list[str] = []

    def register_request(self, env_id: int, cpu: int) -> None:
        pass

    def irq_entry(self, cpu: int) -> Gen:
        intid = yield SysregRead("ICC_IAR1_EL1", "gic_handle_irq")
        self.taken.append(intid)
        yield SysregWrite("ICC_EOIR1_EL1", intid, "gic_handle_irq")

    def on_exception(self, cpu: int, exc: BaseException) -> Gen | None:
        raise exc

    def event_set(self, key: str) -> bool:
        return False

    def device_component(self, addr: int) -> str | None:
        return None

    def console_chunk(self, cpu: int) -> Hypercall | None:
        return None

    def vcpu_fault(self, cpu: int, what: str, body: dict[str, Any]) -> None:
        self.faults.append(what)


def make(body: Gen, lrs: int = 4) -> tuple[CpuRuntime, FakePort, FakeGuest]:
    g, p = FakeGuest(), FakePort()
    c = CpuRuntime(1, g, virt=True, lr=ListRegisters(lrs))  # type: ignore[arg-type]
    c.start(body, p)
    return c, p, g


def entry(c: CpuRuntime, p: FakePort, regs: tuple[int, ...] = (), value: int = 0,
          ctx: GicContext | None = None) -> None:  # fmt: skip
    eid = p.sent[-1][2]
    ctx = ctx if ctx is not None else p.exits()[-1].ctx
    c.on_entry(Envelope(0, "xen", "dom0", Entry(vcpu=1, regs=regs, value=value, ctx=ctx),
                        reply_to=eid), Entry(vcpu=1, regs=regs, value=value, ctx=ctx), p)  # fmt: skip


def test_mmio_is_a_dabt_exit_and_the_data_comes_from_regs_or_value() -> None:
    got: list[int] = []

    def body() -> Gen:
        got.append((yield MmioRead(0x0800_0004, 4, "gic_init_bases")))
        got.append((yield MmioRead(0x0800_0008, 4, "gic_enable_quirks")))

    c, p, _ = make(body())
    x = p.exits()[-1]
    assert (x.reason, x.addr, x.size, x.write, x.vcpu) == ("dabt", 0x0800_0004, 4, False, 1)
    assert len(x.ctx.lrs) == 4
    entry(c, p, regs=(0x7B_0006,))
    entry(c, p, value=0x43B)  # a host that answers in Entry.value (the lead's contract)
    assert got == [0x7B_0006, 0x43B]


def test_hypercall_and_psci_exits() -> None:
    got: list[int] = []

    def body() -> Gen:
        got.append((yield Hypercall(17, (6, 0x6000_1000), "xen_setup_features")))
        got.append((yield Psci(0x8400_0000, (), "psci_0_2_get_version")))
        yield Psci(0x8400_0002, (0,), "cpu_psci_cpu_die", wait=False)

    c, p, _ = make(body())
    x = p.exits()[-1]
    assert (x.reason, x.imm, x.x16, x.regs) == ("hvc", 0xEA1, 17, (6, 0x6000_1000))
    entry(c, p, regs=((-38) & (2**64 - 1), 0x6000_1000))
    x = p.exits()[-1]
    assert (x.reason, x.imm, x.regs) == ("hvc", 0, (0x8400_0000,))
    entry(c, p, regs=(0x1_0001,))
    assert got == [(-38) & (2**64 - 1), 0x1_0001]
    assert p.exits()[-1].regs == (0x8400_0002, 0) and c.state == "off"  # CPU_OFF: no Entry


def test_icc_accesses_do_not_trap_and_an_lpi_is_taken_from_the_lrs() -> None:
    def body() -> Gen:
        yield SysregWrite("ICC_PMR_EL1", 0xF0, "gic_cpu_sys_reg_init")
        yield SysregWrite("ICC_IGRPEN1_EL1", 1, "gic_cpu_sys_reg_init")
        yield Wfi()
        yield Wfi()

    c, p, g = make(body())
    assert [x.reason for x in p.exits()] == ["wfi"]  # the two ICC writes did not trap
    assert c.lr.vmcr & VMCR_VENG1_PMR_F0 == VMCR_VENG1_PMR_F0
    ctx = GicContext(lrs=(lr(8192), 0, 0, 0), hcr=ICH_HCR_EN, vmcr=c.lr.vmcr)
    entry(c, p, ctx=ctx)
    assert g.taken == [8192]
    assert c.lr.lrs[0] >> 62 == 0  # IAR made it active, the EOI (LPI) made it invalid
    assert [x.reason for x in p.exits()] == ["wfi", "wfi"]  # back to WFI, no IAR/EOI exit
    assert p.exits()[-1].ctx.lrs[0] == c.lr.lrs[0]


def test_a_pending_virq_is_taken_without_a_wfi_exit() -> None:
    def body() -> Gen:
        yield Wfi()
        yield Wfi()

    g, p = FakeGuest(), FakePort()
    c = CpuRuntime(1, g, virt=True, lr=ListRegisters(4))  # type: ignore[arg-type]
    c.lr.restore((lr(8200, prio=0x80),), ICH_HCR_EN, VMCR_VENG1_PMR_F0)
    c.start(body(), p, fresh_interface=False)
    assert g.taken == [8200]
    assert [x.reason for x in p.exits()] == ["wfi"]  # only after the IRQ was handled
    assert p.exits()[0].ctx.lrs[0] >> 62 == 0


def test_kick_while_computing_exits_at_once_and_a_crossing_kick_is_ignored() -> None:
    def body() -> Gen:
        yield Cost(10_000)
        yield MmioRead(0x0800_0000, 4, "after")

    c, p, _ = make(body())
    assert c.waiting[0] == "timer" and p.exits() == []
    c.on_kick(p)
    c.on_kick(p)  # crosses the irq exit: harmless
    assert [x.reason for x in p.exits()] == ["irq"]
    seq = c.waiting[1]
    c.on_timer(seq, p)  # the computation ends while the exit is out
    assert [x.reason for x in p.exits()] == ["irq"]
    entry(c, p)
    assert [x.reason for x in p.exits()] == ["irq", "dabt"]


def test_maintenance_interrupt_exits_at_the_next_step_after_progress() -> None:
    """UIE set by Xen with a single valid LR: MISR.U, so the maintenance interrupt is up."""

    def body() -> Gen:
        yield MmioRead(0x0800_0000, 4, "first")
        yield IrqWindow()
        yield MmioRead(0x0800_0004, 4, "second")

    c, p, g = make(body(), lrs=1)
    ctx = GicContext(lrs=(lr(8192),), hcr=ICH_HCR_EN | ICH_HCR_UIE, vmcr=VMCR_VENG1_PMR_F0)
    entry(c, p, regs=(0,), ctx=ctx)
    assert c.lr.maintenance_level
    # the MMIO completed (progress), then the maintenance interrupt exits before the next step
    assert [x.reason for x in p.exits()] == ["dabt", "irq"] and g.taken == []
    # Xen's backlog remains: UIE again. The stashed step runs first (the vIRQ is taken at the
    # IrqWindow, its ICC accesses do not trap), only then the next irq exit
    entry(c, p, ctx=ctx)
    assert g.taken == [8192]
    assert [x.reason for x in p.exits()] == ["dabt", "irq", "irq"]
    cleared = GicContext(lrs=(0,), hcr=ICH_HCR_EN, vmcr=VMCR_VENG1_PMR_F0)
    entry(c, p, ctx=cleared)
    assert [x.reason for x in p.exits()] == ["dabt", "irq", "irq", "dabt"]
    assert p.exits()[-1].addr == 0x0800_0004


def test_an_injected_abort_is_a_recorded_fault_not_a_crash() -> None:
    got: list[int] = []

    def body() -> Gen:
        got.append((yield MmioRead(0x0900_0000, 4, "probe")))

    c, p, g = make(body())
    entry(c, p, value=-2)  # ENTRY_DABT
    assert got == [0] and g.faults == ["data abort"]
