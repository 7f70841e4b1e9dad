"""Hypothesis state machine over Xen's vGICv3 and vITS cores: random register writes, ITS
commands (structured and garbage), LPI injections and guest exits/entries, checking Xen's
invariants after every step (xen-arm-vgic.md §3, §4, §5):

* EnableLPIs, once set on a vCPU, never clears;
* PROPBASER is frozen once any vCPU enabled LPIs, PENDBASER once its own vCPU did;
* CREADR never passes CWRITER: it is always a command boundary inside the queue, and with the
  ITS enabled a CWRITER write leaves CREADR == CWRITER (Xen runs every command in the trap);
* an LPI is never on lr_pending while it is visible in a list register.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gic.its_commands import Clear, Discard, Int, Inv, Invall, Mapc, Mapd, Mapti, Movi
from hypervisor.vgic import GIC_IRQ_GUEST_VISIBLE, XenCrash
from tests.hypervisor.test_vits import CQ, GICR, ITS, ITT5, ITT6, Rig
from transport.messages import GicContext

GICR_STRIDE = 0x20000
VCPUS = 4
QUEUE = 0x1000  # the rig's command queue: one 4 KiB page

devids = st.sampled_from([5, 6, 7])
events = st.integers(0, 40)
vlpis = st.integers(8100, 8300)
icids = st.integers(0, 5)
commands = st.one_of(
    st.builds(lambda d, s, i: Mapd(DeviceID=d, Size=s, ITT_addr={5: ITT5, 6: ITT6}.get(d, ITT5), V=i),
              devids, st.integers(0, 6), st.integers(0, 1)),
    st.builds(lambda c, r, v: Mapc(ICID=c, RDbase=r, V=v), icids, st.integers(0, 5), st.integers(0, 1)),
    st.builds(lambda d, e, p, c: Mapti(DeviceID=d, EventID=e, pINTID=p, ICID=c), devids, events, vlpis, icids),
    st.builds(lambda d, e: Inv(DeviceID=d, EventID=e), devids, events),
    st.builds(lambda c: Invall(ICID=c), icids),
    st.builds(lambda d, e: Int(DeviceID=d, EventID=e), devids, events),
    st.builds(lambda d, e: Clear(DeviceID=d, EventID=e), devids, events),
    st.builds(lambda d, e: Discard(DeviceID=d, EventID=e), devids, events),
    st.builds(lambda d, e, c: Movi(DeviceID=d, EventID=e, ICID=c), devids, events, icids),
    st.binary(min_size=32, max_size=32),
)  # fmt: skip


class VgicMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rig = Rig(enable_lpis=False)
        self.enabled: set[int] = set()
        self.propbaser: int | None = None  # frozen value once any vCPU enabled
        self.pendbaser: dict[int, int] = {}  # frozen per vCPU once it enabled
        self.crashed = False

    def teardown(self) -> None:
        pass

    def _mmio(self, vcpu: int, addr: int, size: int, write: bool, value: int = 0) -> int:
        res = self.rig.mmio(vcpu, addr, size, write, value)
        if getattr(res, "crash", None) is not None or self.rig.g.vgic.crashed is not None:
            self.crashed = True
        return res.value

    def _rd(self, vcpu: int, off: int) -> int:
        return self._mmio(vcpu, GICR + vcpu * GICR_STRIDE + off, 8, False)

    @rule(vcpu=st.integers(0, VCPUS - 1), value=st.integers(0, 3))
    def write_ctlr(self, vcpu: int, value: int) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        self._mmio(vcpu, GICR + vcpu * GICR_STRIDE, 4, True, value)
        if self._mmio(vcpu, GICR + vcpu * GICR_STRIDE, 4, False) & 1:
            if not self.enabled:
                self.propbaser = self._rd(vcpu, 0x70)
            if vcpu not in self.enabled:
                self.pendbaser[vcpu] = self._rd(vcpu, 0x78)
            self.enabled.add(vcpu)

    @rule(vcpu=st.integers(0, VCPUS - 1), reg=st.sampled_from([0x70, 0x78]),
          value=st.integers(0, (1 << 64) - 1), size=st.sampled_from([4, 8]))  # fmt: skip
    def write_base(self, vcpu: int, reg: int, value: int, size: int) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        self._mmio(vcpu, GICR + vcpu * GICR_STRIDE + reg, size, True, value & ((1 << 8 * size) - 1))

    @rule(cmds=st.lists(commands, min_size=1, max_size=6), vcpu=st.integers(0, VCPUS - 1))
    def send_commands(self, cmds: list, vcpu: int) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        res = self.rig.send(*cmds, vcpu=vcpu)
        if getattr(res, "crash", None) is not None or self.rig.g.vgic.crashed is not None:
            self.crashed = True
            return
        creadr = self.rig.read(0x90)
        cwriter = self.rig.read(0x88)
        if self.rig.read(0x00, 4) & 1:
            assert creadr == cwriter  # every command ran inside the CWRITER trap

    @rule(enable=st.integers(0, 1))
    def its_ctlr(self, enable: int) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        self._mmio(0, ITS, 4, True, enable)

    @rule(virq=st.integers(8192, 8300))  # gicv3_do_LPI only injects vLPIs a MAPTI accepted
    def inject(self, virq: int) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        res = self.rig.g.vgic.inject_lpi(virq, current=None)
        if isinstance(res, XenCrash):
            self.crashed = True

    @rule(vcpu=st.integers(0, VCPUS - 1), ack=st.integers(0, 15))
    def guest_runs(self, vcpu: int, ack: int) -> None:
        """Entry, the guest completes the LRs in ``ack``, exit."""
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        vg = self.rig.g.vgic
        ctx = vg.sync_to_lrs(vcpu)
        lrs = [0 if ack >> i & 1 else x for i, x in enumerate(ctx.lrs)]
        vg.sync_from_lrs(
            vcpu, GicContext(lrs=tuple(lrs), hcr=ctx.hcr, vmcr=ctx.vmcr, ap1r=ctx.ap1r)
        )

    @invariant()
    def enable_lpis_never_clears(self) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        for v in self.enabled:
            assert self._mmio(v, GICR + v * GICR_STRIDE, 4, False) & 1

    @invariant()
    def bases_stay_frozen(self) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        if self.propbaser is not None:
            for v in range(VCPUS):
                assert self._rd(v, 0x70) == self.propbaser
        for v, pend in self.pendbaser.items():
            assert self._rd(v, 0x78) == pend

    @invariant()
    def creadr_is_a_command_boundary_in_the_queue(self) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        creadr = self.rig.read(0x90)
        assert creadr % 32 == 0 and creadr < QUEUE

    @invariant()
    def nothing_on_lr_pending_while_visible(self) -> None:
        if self.crashed:  # Xen hit a real crash site: a typed xen_crash, the host is gone
            return
        for v in self.rig.g.vgic.vcpus:
            assert not any(p.test(GIC_IRQ_GUEST_VISIBLE) for p in v.lr_pending)


VgicMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)  # fmt: skip
TestVgicStateMachine = VgicMachine.TestCase
assert CQ  # the rig's queue base (imported for the reader: commands land there)
