"""Xen's virtual interrupt state and list-register scheduling, as a synchronous core.

Models Xen 4.17's old (non-KVM) vGIC: ``struct pending_irq`` and the per-vCPU ``inflight`` and
``lr_pending`` lists (xen/arch/arm/include/asm/vgic.h), injection (xen/arch/arm/vgic.c
``vgic_inject_irq``, ``vgic_vcpu_inject_lpi`` of gic-v3-lpi.c), and the list-register scheduler
(xen/arch/arm/gic-vgic.c ``gic_raise_guest_irq``, ``gic_set_lr``, ``gic_update_one_lr``,
``gic_restore_pending_irqs``, ``vgic_sync_from_lrs``, ``vgic_sync_to_lrs``) writing ICH_LR<n>_EL2
exactly as ``gicv3_update_lr`` / ``gicv3_write_lr`` (xen/arch/arm/gic-v3.c) do. Nothing here
touches guest memory; pending state lives only in :class:`PendingIrq`.

Contract with the Xen component (hypervisor/xen.py):

* At every exit of vCPU ``v`` call :meth:`Vgic.sync_from_lrs` with the exit's
  :class:`~transport.messages.GicContext` (``enter_hypervisor_from_guest``); before every entry
  call :meth:`Vgic.sync_to_lrs` and put the returned context into the ``Entry``
  (``leave_hypervisor_to_guest``). Between the two, ``v``'s list registers are "live" in Xen.
* Injections take ``current``: the vCPU running on the pCPU that executes the injection (None
  when that pCPU is idle). Xen writes an LR at once only when the target is ``current``, its
  registers are live, and its ``lr_pending`` is empty; otherwise the interrupt waits in
  ``lr_pending``. Every non-dropped injection ends with ``vcpu_kick``: :class:`Injection.kick`
  tells the caller to unblock the vCPU and, if it runs in guest mode elsewhere, send the
  event-check SGI (a ``Kick`` message).
* Host-side effects of hardware-linked interrupts (enable/disable, set pending, affinity) are
  returned as :class:`HostAction` for the physical GIC the caller owns.
* Where Xen itself would crash (BUG_ON, NULL dereference) the call returns a
  :class:`XenCrash` instead of raising; the domain object then stays crashed.

Deviations, each a documented choice: ICH_LR pINTID is masked with 0x3ff as in 4.17's
gic_v3_defs.h (the fact sheet's 0x1fff is the 2025 eSPI change); the virtual timer is injected
by software in Xen (time.c ``vtimer_interrupt`` masks CNTV and calls ``vgic_inject_irq``), so
its LR has HW = 0 unless the caller links it with :meth:`Vgic.connect_hw_irq`; when
``gic_restore_pending_irqs``' reverse walk would run past the list head (undefined in Xen) the
walk stops; ``vgic_init_pending_irq`` of a still-queued entry unlinks it (Xen would corrupt
its lists).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from gic.fastinit import fast_init
from hypervisor.xen_log import XenLog, vcpu_name
from transport.messages import GicContext

# struct pending_irq status bits (asm/vgic.h)
GIC_IRQ_GUEST_QUEUED = 0
GIC_IRQ_GUEST_ACTIVE = 1
GIC_IRQ_GUEST_VISIBLE = 2
GIC_IRQ_GUEST_ENABLED = 3
GIC_IRQ_GUEST_MIGRATING = 4
GIC_IRQ_GUEST_PRISTINE_LPI = 5
STATUS_NAMES = ("QUEUED", "ACTIVE", "VISIBLE", "ENABLED", "MIGRATING", "PRISTINE_LPI")

LPI_OFFSET = 8192
INVALID_LPI = 0
GIC_INVALID_LR = 0xFF  # (uint8_t)~0
MAX_VIRT_CPUS = 128  # arm64 4.17 (asm/config.h)
INVALID_VCPU_ID = MAX_VIRT_CPUS
NR_LOCAL_IRQS = 32
INTERRUPT_RANK_MASK = 31

# gic.h: update_lr state argument
GICH_LR_PENDING = 1
GICH_LR_ACTIVE = 2

# gic_v3_defs.h (4.17)
ICH_LR_VIRTUAL_MASK = 0xFFFF
ICH_LR_PHYSICAL_MASK = 0x3FF
ICH_LR_PHYSICAL_SHIFT = 32
ICH_LR_PRIORITY_SHIFT = 48
ICH_LR_STATE_SHIFT = 62
ICH_LR_STATE_PENDING = 1 << 62
ICH_LR_STATE_ACTIVE = 1 << 63
ICH_LR_MAINTENANCE_IRQ = 1 << 41
ICH_LR_GRP1 = 1 << 60
ICH_LR_HW = 1 << 61
GICH_HCR_EN = 1 << 0
GICH_HCR_UIE = 1 << 1
ICH_VMCR_PRIORITY_SHIFT = 24


def is_lpi(irq: int) -> bool:
    return irq >= LPI_OFFSET


def gicv3_update_lr(virq: int, priority: int, hw_irq: int | None, state: int) -> int:
    """The ICH_LR<n>_EL2 value ``gicv3_update_lr`` writes (Group 1 for a vGICv3 guest)."""
    val = (state & 3) << ICH_LR_STATE_SHIFT
    val |= ICH_LR_GRP1
    val |= (priority & 0xFF) << ICH_LR_PRIORITY_SHIFT
    val |= virq & ICH_LR_VIRTUAL_MASK
    if hw_irq is not None:
        val |= ICH_LR_HW | ((hw_irq & ICH_LR_PHYSICAL_MASK) << ICH_LR_PHYSICAL_SHIFT)
    return val


def gicv3_rewrite_lr(lrv: int, *, pending: bool) -> int:
    """``gicv3_read_lr`` then ``gicv3_write_lr`` with the pending flag changed."""
    out = (lrv & ICH_LR_VIRTUAL_MASK) | (((lrv >> ICH_LR_PRIORITY_SHIFT) & 0xFF) << 48)
    if lrv & ICH_LR_STATE_ACTIVE:
        out |= ICH_LR_STATE_ACTIVE
    if pending:
        out |= ICH_LR_STATE_PENDING
    if lrv & ICH_LR_HW:
        out |= ICH_LR_HW | (((lrv >> ICH_LR_PHYSICAL_SHIFT) & ICH_LR_PHYSICAL_MASK) << 32)
    elif lrv & ICH_LR_MAINTENANCE_IRQ:
        out |= ICH_LR_MAINTENANCE_IRQ
    return out | ICH_LR_GRP1


def vcpuid_to_vaffinity(vcpuid: int) -> int:
    """Xen's virtual MPIDR affinity of a vCPU (asm/domain.h): Aff0 = id[3:0], Aff1 = id[11:4]."""
    return (vcpuid & 0x0F) | (((vcpuid >> 4) & 0xFF) << 8)


def vaffinity_to_vcpuid(vaff: int) -> int:
    """Inverse of :func:`vcpuid_to_vaffinity` (Aff2/Aff3 ignored, as Xen does)."""
    return ((vaff >> 8) & 0xFF) << 4 | (vaff & 0x0F)


@dataclass(frozen=True, slots=True)
class XenCrash:
    """Where real Xen would die (a BUG/ASSERT it has, a NULL dereference) or spin for ever."""

    site: str
    reason: str
    kind: str = "crash"  # "crash" or "hang"

    def __str__(self) -> str:
        return f"xen_crash at {self.site}: {self.reason}"


class XenCrashed(Exception):
    """Internal: unwinds a core to its public entry point, which returns the XenCrash."""

    def __init__(self, crash: XenCrash) -> None:
        super().__init__(str(crash))
        self.crash = crash


@dataclass(frozen=True, slots=True)
class HostAction:
    """Something the physical GIC must do for a hardware-linked vIRQ (caller owns the pGIC).

    kind: ``enable`` / ``disable`` (desc->handler), ``set_pending`` (gic_set_pending_state),
    ``set_affinity`` (irq_set_affinity to the pCPU running ``vcpu``).
    """

    kind: str
    pintid: int
    vcpu: int | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Injection:
    """What ``vgic_inject_irq`` did: ``outcome`` is one of dropped-offline, dropped-unmapped,
    dropped-invalid-vcpu, lr (written into LR ``lr`` now), queued (in lr_pending), inflight
    (already inflight: gic_raise_inflight_irq), disabled (inflight, waits for an enable).
    ``kick`` = vcpu_kick was called; ``current`` = the target was the injecting pCPU's vCPU."""

    virq: int
    vcpu: int | None
    outcome: str
    lr: int | None = None
    kick: bool = False
    current: bool = False


@dataclass(eq=False, slots=True)
class PendingIrq:
    """``struct pending_irq``; ``desc`` is the pINTID of a linked host IRQ (NULL = None)."""

    irq: int
    status: int = 0
    lr: int = GIC_INVALID_LR
    priority: int = 0
    lpi_priority: int = 0
    lpi_vcpu_id: int = INVALID_VCPU_ID
    desc: int | None = None
    inflight_on: int | None = None  # vCPU whose inflight_irqs holds it (list_empty otherwise)
    lr_queue_on: int | None = None  # vCPU whose lr_pending holds it
    listed: bool = True  # False: xzalloc'd by the host device, list heads never initialised

    def test(self, bit: int) -> bool:
        return bool(self.status >> bit & 1)

    def set(self, bit: int) -> None:
        self.status |= 1 << bit

    def clear(self, bit: int) -> None:
        self.status &= ~(1 << bit)

    def test_and_clear(self, bit: int) -> bool:
        was = self.test(bit)
        self.clear(bit)
        return was

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(n for i, n in enumerate(STATUS_NAMES) if self.test(i))


@dataclass(eq=False, slots=True)
class VgicIrqRank:
    """``struct vgic_irq_rank``: 32 interrupts' enable, config, priority and target vCPU."""

    index: int
    vcpu_default: int = 0
    ienable: int = 0
    icfg: list[int] = field(default_factory=lambda: [0, 0])
    priority: bytearray = field(default_factory=lambda: bytearray(32))
    vcpu: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.vcpu:
            self.vcpu = [self.vcpu_default] * 32

    def get_ipriorityr(self, i: int) -> int:
        return int.from_bytes(self.priority[4 * i : 4 * i + 4], "little")

    def set_ipriorityr(self, i: int, value: int) -> None:
        self.priority[4 * i : 4 * i + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")


@dataclass(eq=False, slots=True)
class VcpuVgic:
    """Per-vCPU vGIC state: private rank and pending_irqs, the two lists, the live LRs."""

    id: int
    nr_lrs: int
    online: bool = False
    private: VgicIrqRank = field(init=False)
    pending_irqs: list[PendingIrq] = field(init=False)
    inflight: list[PendingIrq] = field(default_factory=list)
    lr_pending: list[PendingIrq] = field(default_factory=list)
    lrs: list[int] = field(init=False)
    lr_mask: int = 0
    hcr: int = GICH_HCR_EN
    vmcr: int = 0
    ap1r: tuple[int, ...] = ()
    in_hyp: bool = False

    def __post_init__(self) -> None:
        self.private = VgicIrqRank(0, self.id)
        self.pending_irqs = [PendingIrq(i) for i in range(NR_LOCAL_IRQS)]
        self.lrs = [0] * self.nr_lrs

    def context(self) -> GicContext:
        return GicContext(lrs=tuple(self.lrs), hcr=self.hcr, vmcr=self.vmcr, ap1r=self.ap1r)

    def valid_lrs(self) -> int:
        return sum(1 for v in self.lrs if v >> ICH_LR_STATE_SHIFT & 3)


def _bits(mask: int, width: int) -> Iterator[int]:
    for i in range(width):
        if mask >> i & 1:
            yield i


class Vgic:
    """One domain's vGIC (``d->arch.vgic`` + every ``v->arch.vgic``), old-vGIC flavour."""

    def __init__(
        self,
        domid: int,
        *,
        vcpus: int,
        nr_spis: int,
        lr_count: int,
        log: XenLog | None = None,
    ) -> None:
        if not 1 <= vcpus <= MAX_VIRT_CPUS:
            raise ValueError(f"vcpus={vcpus}: Xen 4.17 on arm64 allows 1..{MAX_VIRT_CPUS}")
        if not 1 <= lr_count <= 16:
            raise ValueError(f"lr_count={lr_count}: ICH_VTR_EL2.ListRegs allows 1..16")
        if nr_spis < 0 or nr_spis > 1020 - NR_LOCAL_IRQS or nr_spis % 32:
            raise ValueError(f"nr_spis={nr_spis}: a multiple of 32 up to 988")
        self.domid = domid
        self.nr_lrs = lr_count
        self.nr_spis = nr_spis
        self.log = log or XenLog(None)
        self.vcpus = [VcpuVgic(i, lr_count) for i in range(vcpus)]
        self.vcpus[0].online = True  # secondary vCPUs start with _VPF_down
        self.shared = [VgicIrqRank(i + 1, 0) for i in range(nr_spis // 32)]
        self.spis = [PendingIrq(NR_LOCAL_IRQS + i) for i in range(nr_spis)]
        for p in self.spis:
            p.lpi_vcpu_id = INVALID_VCPU_ID
        # LPI state: the radix tree, nr_lpis latched at the first EnableLPIs, the ITS devices'
        # preallocated pending_irqs keyed by (doorbell, devid) (gicv3_its_map_guest_device).
        self.lpi_tree: dict[int, PendingIrq] = {}
        self.nr_lpis = 0
        self.rdists_enabled = False
        self.rdist_propbase = 0
        self.its_devices: dict[tuple[int, int], list[PendingIrq]] = {}
        self.crashed: XenCrash | None = None
        #: vLPI arrivals merged into one already waiting (QUEUED again, or covered by an LR that
        #: is still Pending): the interrupts the guest will never see separately. Counted
        #: where the information is lost, not guessed at injection time from a stale LR view.
        self.lpi_merges = 0
        self._cur: int | None = None
        self._injections: list[Injection] = []
        self._actions: list[HostAction] = []

    # ------------------------------------------------------------------ helpers

    def name(self, v: int) -> str:
        return vcpu_name(self.domid, v)

    @property
    def max_vcpus(self) -> int:
        return len(self.vcpus)

    def _crash(self, site: str, reason: str, kind: str = "crash") -> XenCrashed:
        return XenCrashed(XenCrash(site, reason, kind))

    def _is_current(self, v: VcpuVgic) -> bool:
        return self._cur == v.id and v.in_hyp

    def begin(self, current: int | None) -> None:
        """Start an operation run on the pCPU whose current vCPU is ``current``."""
        self._cur = current
        self._injections = []
        self._actions = []

    def take_effects(self) -> tuple[tuple[Injection, ...], tuple[HostAction, ...]]:
        inj, act = tuple(self._injections), tuple(self._actions)
        self._injections, self._actions = [], []
        return inj, act

    def check_vcpu(self, vcpu: int) -> VcpuVgic:
        if not isinstance(vcpu, int) or not 0 <= vcpu < len(self.vcpus):
            raise ValueError(f"vcpu {vcpu!r} out of range 0..{len(self.vcpus) - 1}")
        return self.vcpus[vcpu]

    def vgic_rank_irq(self, v: VcpuVgic, irq: int) -> VgicIrqRank | None:
        return self.vgic_get_rank(v, irq // 32)

    def vgic_get_rank(self, v: VcpuVgic, rank: int) -> VgicIrqRank | None:
        if rank == 0:
            return v.private
        if rank <= len(self.shared):
            return self.shared[rank - 1]
        return None

    def irq_to_pending(self, v: VcpuVgic, irq: int) -> PendingIrq | None:
        """``irq_to_pending``: private, LPI radix tree, or SPI array (no bound check in Xen)."""
        if irq < NR_LOCAL_IRQS:
            return v.pending_irqs[irq]
        if is_lpi(irq):
            return self.lpi_tree.get(irq)
        if irq - NR_LOCAL_IRQS >= self.nr_spis:
            raise self._crash(
                "irq_to_pending",
                f"vIRQ {irq} beyond the domain's {self.nr_spis} SPIs: out-of-bounds "
                "pending_irqs access (undefined behaviour in Xen)",
            )
        return self.spis[irq - NR_LOCAL_IRQS]

    def vgic_get_target_vcpu(self, v: VcpuVgic, virq: int) -> VcpuVgic:
        rank = self.vgic_rank_irq(v, virq)
        if rank is None:
            raise self._crash("vgic_get_target_vcpu", f"no rank for vIRQ {virq} (NULL rank)")
        return self.vcpus[rank.vcpu[virq & INTERRUPT_RANK_MASK]]

    def vgic_get_virq_priority(self, v: VcpuVgic, virq: int) -> int:
        if is_lpi(virq):
            p = self.lpi_tree.get(virq)
            if p is None:  # ASSERT(p) in vgic_v3_lpi_get_priority
                raise self._crash("vgic_v3_lpi_get_priority", f"ASSERT(p) vLPI {virq} unmapped")
            return p.lpi_priority
        rank = self.vgic_rank_irq(v, virq)
        if rank is None:
            raise self._crash("vgic_get_virq_priority", f"no rank for vIRQ {virq}")
        return rank.priority[virq & INTERRUPT_RANK_MASK]

    # ------------------------------------------------------------------ list helpers

    def _inflight_del(self, p: PendingIrq) -> None:
        if p.inflight_on is not None:
            lst = self.vcpus[p.inflight_on].inflight
            for i, q in enumerate(lst):
                if q is p:
                    del lst[i]
                    break
            p.inflight_on = None

    def gic_remove_from_lr_pending(self, p: PendingIrq) -> None:
        """``gic_remove_from_lr_pending``: list_del_init(&p->lr_queue)."""
        if p.lr_queue_on is not None:
            lst = self.vcpus[p.lr_queue_on].lr_pending
            for i, q in enumerate(lst):
                if q is p:
                    del lst[i]
                    break
            p.lr_queue_on = None

    def gic_add_to_lr_pending(self, v: VcpuVgic, n: PendingIrq) -> None:
        """``gic_add_to_lr_pending``: keep lr_pending sorted, equal priorities in FIFO order."""
        if n.lr_queue_on is not None:
            return
        for i, it in enumerate(v.lr_pending):
            if it.priority > n.priority:
                v.lr_pending.insert(i, n)
                break
        else:
            v.lr_pending.append(n)
        n.lr_queue_on = v.id

    def vgic_remove_irq_from_queues(self, p: PendingIrq) -> None:
        p.clear(GIC_IRQ_GUEST_QUEUED)
        self._inflight_del(p)
        self.gic_remove_from_lr_pending(p)

    def vgic_init_pending_irq(self, p: PendingIrq, virq: int) -> None:
        """``vgic_init_pending_irq``: memset to zero, empty lists, lpi_vcpu_id invalid."""
        self._inflight_del(p)
        self.gic_remove_from_lr_pending(p)
        p.irq = virq
        p.status = 0
        p.lr = 0
        p.priority = 0
        p.lpi_priority = 0
        p.desc = None
        p.lpi_vcpu_id = INVALID_VCPU_ID
        p.listed = True

    # ------------------------------------------------------------------ LR level (gic-vgic.c)

    def _read_lr(self, v: VcpuVgic, i: int) -> int:
        if not 0 <= i < self.nr_lrs:
            raise self._crash("gicv3_ich_read_lr", f"BUG: LR index {i} with {self.nr_lrs} LRs")
        return v.lrs[i]

    def _write_lr(self, v: VcpuVgic, i: int, value: int) -> None:
        if not 0 <= i < self.nr_lrs:
            raise self._crash("gicv3_update_lr", f"BUG_ON(lr >= nr_lrs): LR {i}")
        v.lrs[i] = value

    def gic_set_lr(self, v: VcpuVgic, lr: int, p: PendingIrq, state: int) -> None:
        p.clear(GIC_IRQ_GUEST_PRISTINE_LPI)
        self._write_lr(v, lr, gicv3_update_lr(p.irq, p.priority, p.desc, state))
        p.set(GIC_IRQ_GUEST_VISIBLE)
        p.clear(GIC_IRQ_GUEST_QUEUED)
        p.lr = lr

    def gic_find_unused_lr(self, v: VcpuVgic, p: PendingIrq, lr: int) -> int:
        if p.test(GIC_IRQ_GUEST_PRISTINE_LPI):
            for used in _bits(v.lr_mask, self.nr_lrs):
                if self._read_lr(v, used) & ICH_LR_VIRTUAL_MASK == p.irq:
                    return used
        for i in range(max(lr, 0), self.nr_lrs):
            if not v.lr_mask >> i & 1:
                return i
        return self.nr_lrs

    def gic_raise_guest_irq(self, v: VcpuVgic, virq: int, priority: int) -> None:
        """``gic_raise_guest_irq`` (the priority argument is unused by Xen: p->priority is)."""
        p = self.irq_to_pending(v, virq)
        if p is None:
            return
        if self._is_current(v) and not v.lr_pending:
            i = self.gic_find_unused_lr(v, p, 0)
            if i < self.nr_lrs:
                v.lr_mask |= 1 << i
                self.gic_set_lr(v, i, p, GICH_LR_PENDING)
                return
        self.gic_add_to_lr_pending(v, p)

    def gic_raise_inflight_irq(self, v: VcpuVgic, virq: int) -> None:
        n = self.irq_to_pending(v, virq)
        if n is None or not n.test(GIC_IRQ_GUEST_ENABLED):
            return
        if n.lr_queue_on is None and self._is_current(v):
            self.gic_update_one_lr(v, n.lr)

    def gic_update_one_lr(self, v: VcpuVgic, i: int) -> None:
        lrv = self._read_lr(v, i)
        irq = lrv & ICH_LR_VIRTUAL_MASK
        p = self.irq_to_pending(v, irq)
        if p is None or p.test_and_clear(GIC_IRQ_GUEST_PRISTINE_LPI):
            v.lrs[i] = 0
            v.lr_mask &= ~(1 << i)
            return
        if lrv & ICH_LR_STATE_ACTIVE:
            p.set(GIC_IRQ_GUEST_ACTIVE)
            if p.test(GIC_IRQ_GUEST_ENABLED) and p.test_and_clear(GIC_IRQ_GUEST_QUEUED):
                if lrv & ICH_LR_STATE_PENDING and irq >= LPI_OFFSET:
                    self.lpi_merges += 1  # Active+Pending already holds one more
                if p.desc is None:
                    v.lrs[i] = gicv3_rewrite_lr(lrv, pending=True)
                else:
                    self.log.emit("lr.hw_already_active", self.name(v.id), irq, self.name(v.id), i)
        elif lrv & ICH_LR_STATE_PENDING:
            if p.test_and_clear(GIC_IRQ_GUEST_QUEUED) and irq >= LPI_OFFSET:
                self.lpi_merges += 1  # the LR still Pending covers the new arrival
        else:
            v.lrs[i] = 0
            v.lr_mask &= ~(1 << i)
            p.clear(GIC_IRQ_GUEST_VISIBLE)
            p.clear(GIC_IRQ_GUEST_ACTIVE)
            p.lr = GIC_INVALID_LR
            if (
                p.test(GIC_IRQ_GUEST_ENABLED)
                and p.test(GIC_IRQ_GUEST_QUEUED)
                and not p.test(GIC_IRQ_GUEST_MIGRATING)
            ):
                self.gic_raise_guest_irq(v, irq, p.priority)
            else:
                self._inflight_del(p)
                if p.test(GIC_IRQ_GUEST_MIGRATING):
                    target = self.vgic_get_target_vcpu(v, irq)
                    if p.desc is not None:
                        self._actions.append(HostAction("set_affinity", p.desc, target.id))
                    p.clear(GIC_IRQ_GUEST_MIGRATING)

    def gic_restore_pending_irqs(self, v: VcpuVgic) -> None:
        """Fill free LRs from lr_pending, evicting lower-priority visible non-active entries."""
        if not v.lr_pending:
            return
        lr = 0
        lrs = self.nr_lrs
        walk_from = None  # inflight_r: None = the list head, else the victim (walk before it)
        cur: PendingIrq | None = v.lr_pending[0]
        while cur is not None:
            p = cur
            idx = next(i for i, q in enumerate(v.lr_pending) if q is p)
            cur = v.lr_pending[idx + 1] if idx + 1 < len(v.lr_pending) else None  # the "t"
            lr = self.gic_find_unused_lr(v, p, lr)
            if lr >= self.nr_lrs:
                start = len(v.inflight) if walk_from is None else self._inflight_index(v, walk_from)
                victim = None
                for j in range(start - 1, -1, -1):
                    p_r = v.inflight[j]
                    if p_r.priority == p.priority:
                        return
                    if p_r.test(GIC_IRQ_GUEST_VISIBLE) and not p_r.test(GIC_IRQ_GUEST_ACTIVE):
                        victim = p_r
                        break
                if victim is None:
                    return
                lr = victim.lr
                victim.lr = GIC_INVALID_LR
                victim.set(GIC_IRQ_GUEST_QUEUED)
                victim.clear(GIC_IRQ_GUEST_VISIBLE)
                self.gic_add_to_lr_pending(v, victim)
                walk_from = victim
            self.gic_set_lr(v, lr, p, GICH_LR_PENDING)
            self.gic_remove_from_lr_pending(p)
            v.lr_mask |= 1 << lr
            lrs -= 1
            if lrs == 0:
                break

    def _inflight_index(self, v: VcpuVgic, p: PendingIrq) -> int:
        for i, q in enumerate(v.inflight):
            if q is p:
                return i
        return 0  # the victim left the list: stop the walk (Xen would read freed links)

    def lr_all_full(self, v: VcpuVgic) -> bool:
        return v.lr_mask == (1 << self.nr_lrs) - 1

    # ------------------------------------------------------------------ public: entry / exit

    def sync_from_lrs(self, vcpu: int, ctx: GicContext) -> GicContext:
        """``vgic_sync_from_lrs`` at a guest exit: clear UIE, reconcile every used LR."""
        v = self.check_vcpu(vcpu)
        self.begin(vcpu)
        lrs = list(ctx.lrs[: self.nr_lrs]) + [0] * max(0, self.nr_lrs - len(ctx.lrs))
        v.lrs = [int(x) & (2**64 - 1) for x in lrs]
        v.hcr = int(ctx.hcr) & ~GICH_HCR_UIE
        v.vmcr = int(ctx.vmcr)
        v.ap1r = tuple(ctx.ap1r)
        v.in_hyp = True
        if self.crashed is None:
            try:
                for i in _bits(v.lr_mask, self.nr_lrs):
                    self.gic_update_one_lr(v, i)
            except XenCrashed as e:
                self.crashed = e.crash
        return v.context()

    def sync_to_lrs(self, vcpu: int) -> GicContext:
        """``vgic_sync_to_lrs`` before a guest entry: restore lr_pending, UIE if backlogged."""
        v = self.check_vcpu(vcpu)
        self.begin(vcpu)
        v.in_hyp = True
        if self.crashed is None:
            try:
                self.gic_restore_pending_irqs(v)
            except XenCrashed as e:
                self.crashed = e.crash
        if v.lr_pending and self.lr_all_full(v):
            v.hcr |= GICH_HCR_UIE
        v.hcr |= GICH_HCR_EN  # gicv3_hyp_init; Xen never clears En while guests run
        v.in_hyp = False
        return v.context()

    # ------------------------------------------------------------------ public: injection

    def vgic_inject_irq(self, v: VcpuVgic | None, virq: int) -> Injection:
        """``vgic_inject_irq(d, v, virq, true)`` inside an operation (see :meth:`inject_irq`)."""
        if v is None:
            v = self.vgic_get_target_vcpu(self.vcpus[0], virq)
        n = self.irq_to_pending(v, virq)
        if n is None:
            inj = Injection(virq, v.id, "dropped-unmapped")
            self._injections.append(inj)
            return inj
        if not v.online:
            inj = Injection(virq, v.id, "dropped-offline")
            self._injections.append(inj)
            return inj
        if n.test(GIC_IRQ_GUEST_QUEUED) and virq >= LPI_OFFSET:
            self.lpi_merges += 1  # still queued from the last arrival
        n.set(GIC_IRQ_GUEST_QUEUED)
        if n.inflight_on is not None:
            self.gic_raise_inflight_irq(v, virq)
            outcome = "inflight"
        else:
            priority = self.vgic_get_virq_priority(v, virq)
            n.priority = priority
            if n.test(GIC_IRQ_GUEST_ENABLED):
                self.gic_raise_guest_irq(v, virq, priority)
            for i, it in enumerate(v.inflight):
                if it.priority > priority:
                    v.inflight.insert(i, n)
                    break
            else:
                v.inflight.append(n)
            n.inflight_on = v.id
            if not n.test(GIC_IRQ_GUEST_ENABLED):
                outcome = "disabled"
            elif n.test(GIC_IRQ_GUEST_VISIBLE):
                outcome = "lr"
            else:
                outcome = "queued"
        lr = n.lr if outcome == "lr" else None
        inj = Injection(virq, v.id, outcome, lr, kick=True, current=self._is_current(v))
        self._injections.append(inj)
        return inj

    def vgic_vcpu_inject_lpi(self, virq: int) -> Injection:
        """``vgic_vcpu_inject_lpi``: the vCPU comes from the pending_irq, not the host table."""
        p = self.irq_to_pending(self.vcpus[0], virq)
        if p is None:
            inj = Injection(virq, None, "dropped-unmapped")
            self._injections.append(inj)
            return inj
        if p.lpi_vcpu_id >= self.max_vcpus:
            inj = Injection(virq, None, "dropped-invalid-vcpu")
            self._injections.append(inj)
            return inj
        return self.vgic_inject_irq(self.vcpus[p.lpi_vcpu_id], virq)

    def _run(self, current: int | None, fn, *args):  # type: ignore[no-untyped-def]
        self.begin(current)
        if self.crashed is not None:
            return self.crashed
        try:
            return fn(*args)
        except XenCrashed as e:
            self.crashed = e.crash
            return e.crash

    def inject_irq(
        self, vcpu: int | None, virq: int, *, current: int | None
    ) -> Injection | XenCrash:
        """Inject SGI/PPI (``vcpu`` given) or SPI (``vcpu`` None: routed by IROUTER)."""
        if not isinstance(virq, int) or not 0 <= virq < 1 << 32:
            raise ValueError(f"virq {virq!r} is not a 32-bit INTID")
        v = self.check_vcpu(vcpu) if vcpu is not None else None
        if v is None and not NR_LOCAL_IRQS <= virq < NR_LOCAL_IRQS + self.nr_spis:
            raise ValueError(f"virq {virq}: an injection without a vCPU must name an SPI")
        return self._run(current, self.vgic_inject_irq, v, virq)

    def inject_lpi(self, virq: int, *, current: int | None) -> Injection | XenCrash:
        """``vgic_vcpu_inject_lpi`` (gicv3_do_LPI found host LPI -> (this domain, virq))."""
        return self._run(current, self.vgic_vcpu_inject_lpi, virq)

    # ------------------------------------------------------------------ enable / pending / SGI

    def vgic_enable_irqs(self, v: VcpuVgic, r: int, n: int) -> None:
        for i in _bits(r & 0xFFFFFFFF, 32):
            irq = i + 32 * n
            v_target = self.vgic_get_target_vcpu(v, irq)
            p = self.irq_to_pending(v_target, irq)
            assert p is not None
            p.set(GIC_IRQ_GUEST_ENABLED)
            if p.inflight_on is not None and not p.test(GIC_IRQ_GUEST_VISIBLE):
                self.gic_raise_guest_irq(v_target, irq, p.priority)
            if p.desc is not None:
                self._actions.append(HostAction("set_affinity", p.desc, v_target.id))
                self._actions.append(HostAction("enable", p.desc))

    def vgic_disable_irqs(self, v: VcpuVgic, r: int, n: int) -> None:
        for i in _bits(r & 0xFFFFFFFF, 32):
            irq = i + 32 * n
            v_target = self.vgic_get_target_vcpu(v, irq)
            p = self.irq_to_pending(v_target, irq)
            assert p is not None
            p.clear(GIC_IRQ_GUEST_ENABLED)
            self.gic_remove_from_lr_pending(p)
            if p.desc is not None:
                self._actions.append(HostAction("disable", p.desc))

    def vgic_set_irqs_pending(self, v: VcpuVgic, r: int, rank: int) -> None:
        """GICD/GICR ISPENDR writes (Xen 4.15+): inject, or set a hardware IRQ pending."""
        private = rank == 0
        for i in _bits(r & 0xFFFFFFFF, 32):
            irq = i + 32 * rank
            if not private:
                p = self.spis[irq - NR_LOCAL_IRQS]
                if p.desc is not None:
                    self._actions.append(HostAction("set_pending", p.desc))
                    continue
            self.vgic_inject_irq(v if private else None, irq)

    def vgic_migrate_irq(self, old: VcpuVgic, new: VcpuVgic, irq: int) -> bool:
        p = self.irq_to_pending(old, irq)
        assert p is not None
        if p.desc is None:
            return True
        if p.test(GIC_IRQ_GUEST_MIGRATING):
            self.log.emit("migrate.in_progress", self.name(self._cur or 0), irq)
            return False
        if p.inflight_on is None:
            self._actions.append(HostAction("set_affinity", p.desc, new.id))
            return True
        if p.lr_queue_on is not None:
            self.vgic_remove_irq_from_queues(p)
            self._actions.append(HostAction("set_affinity", p.desc, new.id))
            self.vgic_inject_irq(new, irq)
            return True
        p.set(GIC_IRQ_GUEST_MIGRATING)
        return True

    def vgic_to_sgi(self, v: VcpuVgic, sgir: int) -> bool:
        """``vgic_v3_to_sgi`` + ``vgic_to_sgi``: ICC_SGI1R_EL1 (only Aff1 and the list are used)."""
        irqmode = (sgir >> 40) & 1
        virq = (sgir >> 24) & 0xF
        if irqmode == 0:
            base = ((sgir >> 16) & 0xFF) << 4
            tlist = sgir & 0xFFFF
            for i in _bits(tlist, 16):
                vcpuid = base + i
                if vcpuid >= self.max_vcpus or not self.vcpus[vcpuid].online:
                    self.log.emit("sgi.wrong_target", self.name(v.id), sgir, tlist)
                    continue
                self.vgic_inject_irq(self.vcpus[vcpuid], virq)
        else:
            for t in self.vcpus:
                if t.id != v.id and t.online:
                    self.vgic_inject_irq(t, virq)
        return True

    def emulate_sgi1r(
        self, vcpu: int, value: int, *, write: bool = True
    ) -> tuple[bool, tuple[Injection, ...]] | XenCrash:
        """A trapped ICC_SGI1R_EL1 access by ``vcpu`` (current). Returns (handled, injections);
        a read is refused (handled False: Xen injects an undefined-instruction exception)."""
        v = self.check_vcpu(vcpu)
        if not write:
            self.begin(vcpu)
            self.log.emit("sgi1r.read", self.name(vcpu))
            return False, ()
        res = self._run(vcpu, self.vgic_to_sgi, v, int(value) & (2**64 - 1))
        if isinstance(res, XenCrash):
            return res
        return res, tuple(self._injections)

    # ------------------------------------------------------------------ misc public API

    def set_vcpu_online(self, vcpu: int, online: bool) -> None:
        """Track ``_VPF_down`` (PSCI CPU_ON clears it, CPU_OFF sets it)."""
        self.check_vcpu(vcpu).online = bool(online)

    def vgic_clear_pending_irqs(self, vcpu: int) -> None:
        """``vgic_clear_pending_irqs`` + ``gic_clear_pending_irqs`` (vCPU reset)."""
        v = self.check_vcpu(vcpu)
        for p in list(v.inflight):
            self._inflight_del(p)
        v.lr_mask = 0
        for p in list(v.lr_pending):
            self.gic_remove_from_lr_pending(p)

    def connect_hw_irq(self, virq: int, pintid: int) -> int:
        """``vgic_connect_hw_irq``: link an SPI to host IRQ ``pintid`` (route_irq_to_guest).
        Returns 0 or -EBUSY (16) when already linked or already enabled by the guest."""
        if not NR_LOCAL_IRQS <= virq < NR_LOCAL_IRQS + self.nr_spis:
            raise ValueError(f"virq {virq}: only SPIs are routed to guests")
        p = self.spis[virq - NR_LOCAL_IRQS]
        if p.desc is not None or p.test(GIC_IRQ_GUEST_ENABLED):
            return -16
        p.desc = int(pintid)
        return 0

    def vcpu_pending_irq(self, vcpu: int) -> bool:
        """``vgic_vcpu_pending_irq`` (WFI: vcpu_block_unless_event_pending) on ``vcpu``'s
        live context: the first inflight entry below VPMR and the running priority and enabled.
        Xen compares GIC_PRI_TO_GUEST(priority) = priority >> 3 with the 8-bit VPMR."""
        v = self.check_vcpu(vcpu)
        mask_priority = (v.vmcr >> ICH_VMCR_PRIORITY_SHIFT) & 0xFF
        apr = v.ap1r[0] & 0xFFFFFFFF if v.ap1r else 0
        active_priority = (apr & -apr).bit_length() - 1 if apr else 32
        for p in v.inflight:
            if p.priority >> 3 >= mask_priority:
                return False
            if p.priority >> 3 >= active_priority:
                return False
            if p.test(GIC_IRQ_GUEST_ENABLED):
                return True
        return False

    def pending_irq(self, vcpu: int, irq: int) -> PendingIrq | None:
        """Inspection: the pending_irq Xen would use for ``irq`` on ``vcpu`` (None if none)."""
        v = self.check_vcpu(vcpu)
        try:
            return self.irq_to_pending(v, irq)
        except XenCrashed:
            return None


# ---------------------------------------------------------------------- MMIO plumbing (vreg.h)

DABT_BYTE = 0
DABT_HALF_WORD = 1
DABT_WORD = 2
DABT_DOUBLE_WORD = 3
DABT_SIZES = {1: DABT_BYTE, 2: DABT_HALF_WORD, 4: DABT_WORD, 8: DABT_DOUBLE_WORD}


@dataclass(frozen=True, slots=True)
class Dabt:
    """The parts of a data abort (``struct hsr_dabt`` + ``mmio_info_t``) the handlers use."""

    gpa: int
    size: int  # DABT_* code: 0 byte .. 3 doubleword
    reg: int = 0  # the guest register number, printed as r%d
    write: bool = False


def vreg_mask(size: int) -> int:
    """VREG_REG_MASK(size)."""
    return (1 << (8 << size)) - 1


def vreg_reg_extract(reg: int, dabt: Dabt, width: int) -> int:
    """vreg_reg32_extract / vreg_reg64_extract (width 32 or 64)."""
    offset = dabt.gpa & (width // 8 - 1)
    return (reg >> (8 * offset)) & vreg_mask(dabt.size)


def vreg_reg_update(reg: int, val: int, dabt: Dabt, width: int) -> int:
    offset = dabt.gpa & (width // 8 - 1)
    mask = vreg_mask(dabt.size)
    shift = offset * 8
    reg &= ~(mask << shift)
    reg |= (val & mask) << shift
    return reg & ((1 << width) - 1)


def vreg_reg_setbits(reg: int, bits: int, dabt: Dabt, width: int) -> int:
    offset = dabt.gpa & (width // 8 - 1)
    return (reg | ((bits & vreg_mask(dabt.size)) << (offset * 8))) & ((1 << width) - 1)


def vreg_reg_clearbits(reg: int, bits: int, dabt: Dabt, width: int) -> int:
    offset = dabt.gpa & (width // 8 - 1)
    return reg & ~((bits & vreg_mask(dabt.size)) << (offset * 8)) & ((1 << width) - 1)


def vgic_reg64_check_access(dabt: Dabt) -> bool:
    return dabt.size in (DABT_DOUBLE_WORD, DABT_WORD)


@dataclass(frozen=True, slots=True)
class MmioResult:
    """The outcome of one trapped access to a vGIC frame.

    ``handled`` False: no vGIC frame at that address (Xen's try_handle_mmio found no handler).
    ``abort``: the handler returned 0, so Xen injects a data abort into the guest.
    ``value``: the read data (the register bits the access covers). ``log``: Xen's console
    lines. ``injections`` / ``actions``: vIRQ injections and physical-GIC actions it caused.
    ``crash``: real Xen would have died here. ``error``: a model-level refusal of a malformed
    request (not a Xen behaviour), e.g. an impossible access size.
    """

    handled: bool
    value: int = 0
    abort: bool = False
    frame: str = ""
    log: tuple = ()
    injections: tuple[Injection, ...] = ()
    actions: tuple[HostAction, ...] = ()
    crash: XenCrash | None = None
    error: str = ""
