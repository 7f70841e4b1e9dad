"""``cosim fuzz``: a hostile guest against the host model, with shrinking and replay.

After the scenario's kernel has booted, the guest's vCPUs run a sequence of operations through
the same requests the kernel uses (guest/cpu.py: ``MmioRead``/``MmioWrite`` to every GICD,
GICR and GITS register, ``SysregRead``/``SysregWrite`` of ICC_*/ICH_*/CNTV_*, ``Hypercall``
and ``Psci``, and ITS commands with random fields written into the driver's command queue
and posted with GITS_CWRITER), while the scenario's devices keep raising MSIs.

The host must answer every request (a reply for every request: Xen's XEN_E*, RAZ/WI, a data
abort or an undefined instruction) and keep the devices' interrupts flowing: the MSI
accounting holds and ``delivered`` keeps growing. Where real Xen would crash, the typed
``xen_crash`` outcome (``Xen.crash``) names the site: an expected outcome, not a failure.
A failure is an exception from the model (raised, or caught and recorded by a component's
"a model bug must not take the run down" guard), a request without an answer, or broken
accounting; it is shrunk by bisecting the sequence and written as a replay file.

By default the fuzzer does not write the registers through which a domain legitimately turns
off its own interrupts (:data:`SELF_HARM_REGS`: GICD/GICR/GITS_CTLR, the LPI table bases, the
command queue registers, PPI enables/groups/priorities, ICC_PMR/IGRPEN1/CTLR/AP1Rn, IAR
reads), does not send ITS commands that unmap or retarget the scenario's own devices, and does
not shut the domain down (PSCI CPU_OFF/SYSTEM_OFF/SYSTEM_RESET, SCHEDOP_shutdown);
``--hostile-all`` does all of that too and drops the liveness check. A vCPU blocked with no
interrupt source (CPU_SUSPEND, SCHEDOP_block) is woken by ``vcpu_kick`` after 2 ms without
progress, the event a timer tick would be. Campaigns run in rounds of ``--round`` operations,
each on a fresh boot, so a ``xen_crash`` ends only its round.
"""

from __future__ import annotations

import json
import random
import re
import sys
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TextIO

from gic.registers import (
    GICD_REGISTERS,
    GICR_RD_REGISTERS,
    GICR_SGI_REGISTERS,
    GITS_REGISTERS,
)
from guest.cpu import Cost, Hypercall, MmioRead, MmioWrite, Psci, SysregRead, SysregWrite
from transport.abi import (
    PSCI_0_2_FN64_AFFINITY_INFO,
    PSCI_0_2_FN64_CPU_ON,
    PSCI_0_2_FN_AFFINITY_INFO,
    PSCI_0_2_FN_CPU_OFF,
    PSCI_0_2_FN_CPU_ON,
    PSCI_0_2_FN_CPU_SUSPEND,
    PSCI_0_2_FN_MIGRATE_INFO_TYPE,
    PSCI_0_2_FN_PSCI_VERSION,
    PSCI_0_2_FN_SYSTEM_OFF,
    PSCI_0_2_FN_SYSTEM_RESET,
    PSCI_1_0_FN_PSCI_FEATURES,
)

Gen = Generator[Any, Any, Any]
U64 = (1 << 64) - 1
MS = 1_000_000
#: The guest's ITS command queue registers (irq-gic-v3-its.c).
GITS_CWRITER = 0x0088
GITS_CREADR = 0x0090
GICR_SGI_OFFSET = 0x10000
GICR_FRAME = 0x20000
#: Gap between two operations of one vCPU, and how long the run goes on after the last one.
OP_GAP_NS = 2_000
SETTLE_NS = 5 * MS
#: Give up waiting for the kernel to boot after this much simulated time.
BOOT_LIMIT_NS = 2_000 * MS
#: Xen hypercall numbers a fuzzer tries most (public/xen.h), and argument edge values.
HYPERCALLS = (7, 12, 13, 17, 18, 20, 21, 24, 27, 29, 32, 33, 34, 35, 36, 37, 39, 41, 42)
EDGES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
         1 << 63, U64, U64 - 1)  # fmt: skip
SCHEDOP_shutdown = 2
__HYPERVISOR_sched_op = 29
PSCI_SYSTEM_RESET2 = (0x84000012, 0xC4000012)
PSCI_FIDS = (
    PSCI_0_2_FN_PSCI_VERSION, PSCI_0_2_FN_CPU_SUSPEND, PSCI_0_2_FN_CPU_ON, PSCI_0_2_FN64_CPU_ON,
    PSCI_0_2_FN_AFFINITY_INFO, PSCI_0_2_FN64_AFFINITY_INFO, PSCI_0_2_FN_MIGRATE_INFO_TYPE,
    PSCI_1_0_FN_PSCI_FEATURES, 0x84000005, 0x84000007, 0x8400000B, 0x8400000C, 0x80000000,
    0x80000001, 0x8400FFFF, 0xC4000001, 0,
)  # fmt: skip
#: Calls that never return: PSCI 0.2 CPU_OFF/SYSTEM_OFF/SYSTEM_RESET(2), and Xen's PSCI 0.1
#: CPU_OFF (function id 1, do_vpsci_0_1_call).
PSCI_ENDING = (PSCI_0_2_FN_CPU_OFF, PSCI_0_2_FN_SYSTEM_OFF, PSCI_0_2_FN_SYSTEM_RESET,
               *PSCI_SYSTEM_RESET2, 1)  # fmt: skip
SYSREGS = (
    "ICC_IAR1_EL1", "ICC_EOIR1_EL1", "ICC_DIR_EL1", "ICC_HPPIR1_EL1", "ICC_RPR_EL1",
    "ICC_PMR_EL1", "ICC_BPR1_EL1", "ICC_BPR0_EL1", "ICC_CTLR_EL1", "ICC_SRE_EL1",
    "ICC_IGRPEN1_EL1", "ICC_IGRPEN0_EL1", "ICC_AP1R0_EL1", "ICC_SGI1R_EL1", "ICC_SGI0R_EL1",
    "ICC_ASGI1R_EL1", "ICH_HCR_EL2", "ICH_VTR_EL2", "ICH_VMCR_EL2", "ICH_LR0_EL2",
    "CNTV_CTL_EL0", "CNTV_CVAL_EL0", "CNTV_TVAL_EL0", "CNTVCT_EL0", "CNTFRQ_EL0",
    "SCTLR_EL1", "ICC_BOGUS_EL1",
)  # fmt: skip
#: Registers through which a domain turns its own interrupts off (not written by default).
SELF_HARM_REGS = re.compile(
    r"^(GICD_CTLR|GICD_ICENABLER\d+|GICD_IGROUPR\d+|GICD_IGRPMODR\d+|GICD_IPRIORITYR\d+"
    r"|GICR_CTLR|GICR_WAKER|GICR_PROPBASER|GICR_PENDBASER|GICR_ICENABLER0|GICR_IGROUPR0"
    r"|GICR_IGRPMODR0|GICR_IPRIORITYR\d+|GICR_ICFGR\d+|GITS_CTLR|GITS_CBASER|GITS_CWRITER"
    r"|GITS_BASER\d+|ICC_PMR_EL1|ICC_IGRPEN1_EL1|ICC_CTLR_EL1|ICC_AP[01]R\d_EL1|CNTV_\w+)$"
)
#: ITS commands that unmap, retarget or raise a device's events (MOVI, INT, CLEAR, MAPD,
#: MAPC, MAPTI, MAPI, DISCARD): not aimed at the scenario's devices by default.
ITS_DEVICE_CMDS = (0x01, 0x03, 0x04, 0x08, 0x0A, 0x0B, 0x0F)
ITS_OPCODES = (0x01, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
               0x00, 0x02, 0x20, 0x21, 0x22, 0x23, 0x25, 0x26, 0x27, 0x2A, 0xFF)  # fmt: skip
KINDS = ("mmio", "sysreg", "hypercall", "smccc", "its")


@dataclass(frozen=True)
class FuzzContext:
    """What the op generator needs to know of the machine and the scenario."""

    host: str
    vcpus: int
    frames: dict[str, tuple[int, int]]
    devids: tuple[int, ...]
    ram: tuple[int, int]
    hostile_all: bool = False

    @classmethod
    def of(cls, sim: Any, hostile_all: bool = False) -> FuzzContext:
        frames = {f["frame"]: (f["base"], f["size"]) for f in sim.machine.mmio_map()}
        b = sim.guest.boot
        return cls(
            host="xen" if sim.scenario.host.kind == "xen" else "baremetal",
            vcpus=len(sim.guest.cpus),
            frames=frames,
            devids=tuple(d.devid for d in sim.devices),
            ram=(b.ram_base, b.ram_size),
            hostile_all=hostile_all,
        )


def _value(rng: random.Random, bits: int = 64) -> int:
    mask = (1 << bits) - 1
    r = rng.random()
    if r < 0.4:
        return rng.choice(EDGES) & mask
    if r < 0.6:
        return (1 << rng.randrange(bits)) & mask
    return rng.getrandbits(bits)


def _reg_name(frame: str, off: int) -> str:
    """The register at ``off`` of ``frame`` ('' if none), for the self-harm filter."""
    if frame == "GICD":
        table = GICD_REGISTERS
    elif frame == "GITS":
        table = GITS_REGISTERS
    else:
        off %= GICR_FRAME
        if off >= GICR_SGI_OFFSET:
            table, off = GICR_SGI_REGISTERS, off - GICR_SGI_OFFSET
        else:
            table = GICR_RD_REGISTERS
    for o in (off, off & ~3, off & ~7):
        if o in table:
            return table[o].name
    return ""


def gen_op(rng: random.Random, ctx: FuzzContext, kind: str | None = None) -> dict[str, Any]:
    """One random or edge-case operation (a JSON-able dict; ``op`` names its kind)."""
    kinds = KINDS if ctx.host == "xen" else ("mmio", "sysreg", "smccc", "its")
    kind = kind or rng.choices(kinds, weights=[4, 2, 2, 1, 2][: len(kinds)])[0]
    if kind == "hypercall" and ctx.host != "xen":
        kind = "smccc"
    if kind == "mmio":
        frame = rng.choice(sorted(ctx.frames))
        base, size = ctx.frames[frame]
        if frame == "GICR":
            cpu_frame = rng.randrange(max(size // GICR_FRAME, 1)) * GICR_FRAME
            table = rng.choice((GICR_RD_REGISTERS, GICR_SGI_REGISTERS))
            shift = GICR_SGI_OFFSET if table is GICR_SGI_REGISTERS else 0
            known = [cpu_frame + shift + o for o in table]
        else:
            table = GICD_REGISTERS if frame == "GICD" else GITS_REGISTERS
            known = list(table)
        if rng.random() < 0.7:
            off = rng.choice(known)
        else:
            off = rng.randrange(size) & ~rng.choice((0, 3, 3, 7))
        sz = rng.choice((4, 4, 4, 8, 8, 1, 2, 3, 16))
        write = rng.random() < 0.5
        name = _reg_name(frame, off)
        if write and not ctx.hostile_all and SELF_HARM_REGS.match(name or "-"):
            write = False
        op = {"op": "mmio", "frame": frame, "reg": name, "addr": base + off, "size": sz,
              "write": write, "value": _value(rng, 64) if write else 0}  # fmt: skip
    elif kind == "sysreg":
        reg = rng.choice(SYSREGS)
        write = rng.random() < 0.5
        if not ctx.hostile_all:
            if write and SELF_HARM_REGS.match(reg):
                write = False
            if not write and reg == "ICC_IAR1_EL1":  # an IAR read takes an interrupt
                reg = "ICC_HPPIR1_EL1"
        op = {"op": "sysreg", "reg": reg, "write": write, "value": _value(rng) if write else 0}
    elif kind == "hypercall":
        nr = rng.choice(HYPERCALLS) if rng.random() < 0.8 else _value(rng, 16)
        args = [_arg(rng, ctx) for _ in range(5)]
        if rng.random() < 0.6:
            args[0] = rng.randrange(16)  # a sub-op / command number
        if nr == __HYPERVISOR_sched_op and args[0] == SCHEDOP_shutdown and not ctx.hostile_all:
            args[0] = 0
        op = {"op": "hypercall", "nr": nr, "args": args}
    elif kind == "smccc":
        fid = rng.choice(PSCI_FIDS) if rng.random() < 0.8 else _value(rng, 32)
        if fid in PSCI_ENDING and not ctx.hostile_all:
            fid = PSCI_0_2_FN_PSCI_VERSION
        args = [_arg(rng, ctx) for _ in range(3)]
        if fid in (PSCI_0_2_FN_CPU_ON, PSCI_0_2_FN64_CPU_ON) and rng.random() < 0.7:
            args[0] = rng.randrange(ctx.vcpus + 2)  # an online, an absent or a bogus target
        op = {"op": "smccc", "fid": fid, "args": args}
    else:
        opcode = rng.choice(ITS_OPCODES)
        devid = rng.choice(ctx.devids + (0, 1, 0xFFFF, 0xFFFF_FFFF)) if ctx.devids else 0
        if rng.random() < 0.5:
            devid = _value(rng, 32)
        if not ctx.hostile_all:
            if opcode in ITS_DEVICE_CMDS and devid in ctx.devids:
                devid ^= 0x8000
            if opcode == 0x09:  # MAPC: leave the kernel's collections alone
                pass
        dws = [opcode | devid << 32, _value(rng), _value(rng), _value(rng)]
        if opcode == 0x09 and not ctx.hostile_all:
            dws[2] = (dws[2] & ~0xFFFF) | (ctx.vcpus + (dws[2] & 0xFF))  # ICID past the CPUs
        data = b"".join((d & U64).to_bytes(8, "little") for d in dws)
        op = {"op": "its", "cmd": data.hex()}
    return op


def _arg(rng: random.Random, ctx: FuzzContext) -> int:
    """A hypercall/SMCCC argument: an edge value, a small number, or a guest address."""
    r = rng.random()
    if r < 0.3:
        return ctx.ram[0] + rng.randrange(ctx.ram[1]) & ~7
    if r < 0.5:
        return rng.randrange(64)
    return _value(rng)


def gen_ops(seed: int, ctx: FuzzContext, budget: int) -> list[dict[str, Any]]:
    """The campaign: ``budget`` operations spread round-robin over the vCPUs."""
    rng = random.Random(f"xen-gic-cosim:fuzz:{seed}")
    ops = []
    for i in range(budget):
        op = gen_op(rng, ctx)
        op["cpu"] = i % ctx.vcpus
        ops.append(op)
    return ops


# -- running one operation in a vCPU -----------------------------------------------------------


def op_task(sim: Any, op: dict[str, Any], on_done: Callable[[Any], None] | None) -> Gen:
    """The requests of ``op`` as the guest's kernel code would yield them."""
    kind = op["op"]
    why = f"cosim_fuzz_{kind}"
    ans: Any = None
    if kind == "mmio":
        if op["write"]:
            ans = yield MmioWrite(op["addr"], op["size"], op["value"], why)
        else:
            ans = yield MmioRead(op["addr"], op["size"], why)
    elif kind == "sysreg":
        if op["write"]:
            ans = yield SysregWrite(op["reg"], op["value"], why)
        else:
            ans = yield SysregRead(op["reg"], why)
    elif kind == "hypercall":
        ans = yield Hypercall(op["nr"], tuple(op["args"]), why)
    elif kind == "smccc":
        ans = yield Psci(op["fid"], tuple(op["args"]), why)
    elif kind == "its":
        ans = yield from _its_command(sim, op, why)
    if on_done is not None:
        on_done(ans)


def _its_command(sim: Any, op: dict[str, Any], why: str) -> Gen:
    """its_send_single_command with a hostile command: queue slot, CWRITER, a few polls."""
    k = sim.guest.kernel
    its = k.drivers.get("its") if k is not None else None
    if its is None or not its.nodes:
        return "no-its"
    node = its.nodes[0]
    cpu = op.get("cpu", 0)
    off = yield from its.its_allocate_entry(cpu, node)
    if off is None:
        return "queue-full"
    owner = k.owner("its-cmdq", "ITS command queue", dma=True)
    k.ram_write(node.cmd_base + off, bytes.fromhex(op["cmd"]), owner, why)
    yield MmioWrite(node.phys_base + GITS_CWRITER, 8, node.cmd_write, why)
    for _ in range(8):
        rd = yield MmioRead(node.phys_base + GITS_CREADR, 8, why)
        if (int(rd or 0) & 0xFFFE0) == node.cmd_write:
            return "done"
        yield Cost(1_000)
    return "not-consumed"


def wake(sim: Any, cpu: int) -> None:
    """The task's process is runnable: under Xen a vCPU blocked in WFI needs ``vcpu_kick``
    (the scheduler's event check); on bare metal the CPU picks it up at its WFI at once."""
    kick = getattr(sim.host, "vcpu_kick", None)
    vcpus = getattr(sim.host, "vcpus", None)
    if kick is not None and vcpus is not None and 0 <= cpu < len(vcpus):
        kick(cpu)


# -- a campaign --------------------------------------------------------------------------------

_EXC = re.compile(r"\b[A-Z]\w*(Error|Exception): ")


@dataclass
class Failure:
    kind: str  # exception | model-error | unanswered | accounting | liveness | no-boot
    detail: str

    def signature(self) -> tuple[str, str]:
        m = _EXC.search(self.detail)
        return (self.kind, m.group(0) if m else "")


@dataclass
class FuzzOutcome:
    ops: int
    answered: int
    outcome: str  # ok | xen_crash | shutdown | failure
    failure: Failure | None = None
    crash_site: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    delivered_during: int = 0
    errors: list[str] = field(default_factory=list)


def run_ops(sc: Any, ops: list[dict[str, Any]], *, hostile_all: bool = False,
            trace_path: str | None = None) -> FuzzOutcome:  # fmt: skip
    """Boot the scenario, run ``ops`` on its vCPUs, drain, and judge."""
    from cosim.run import DRAIN_NS, build

    sim = build(sc, trace_path)
    errors: list[str] = []
    orig = sim.scheduler.record_event

    def tap(src: str, kind: str, body: dict[str, Any], *, why: str = "", dst: str = "") -> None:
        for v in body.values() if isinstance(body, dict) else ():
            if isinstance(v, str) and _EXC.search(v):
                errors.append(f"{src} {kind}: {v}")
        orig(src, kind, body, why=why, dst=dst)

    sim.scheduler.record_event = tap  # type: ignore[method-assign]
    answered: dict[int, Any] = {}
    try:
        return _campaign(sim, ops, answered, errors, hostile_all, DRAIN_NS)
    except Exception as exc:  # a model bug escaped the components
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{tb.filename.rsplit('/', 2)[-2:]}:{tb.lineno}"
        detail = f"{type(exc).__name__}: {exc} (at {where})"
        return FuzzOutcome(len(ops), len(answered), "failure", Failure("exception", detail),
                           errors=errors)  # fmt: skip
    finally:
        if sim.trace is not None:
            sim.trace.close()


def _delivered(sim: Any) -> int:
    return sum(n for g in sim.guest.delivered.values() for v in g.values() for n in v.values())


def _campaign(sim: Any, ops: list[dict[str, Any]], answered: dict[int, Any], errors: list[str],
              hostile_all: bool, drain: int) -> FuzzOutcome:  # fmt: skip
    sched = sim.scheduler
    sim.start()
    t = 0
    while t < BOOT_LIMIT_NS and not sched._stopped:
        k = sim.guest.kernel
        if k is not None and k.status == "booted":
            break
        t += MS
        sched.run(until=t)
    k = sim.guest.kernel
    if k is None or k.status != "booted":
        return FuzzOutcome(len(ops), 0, "failure", Failure("no-boot", "the kernel did not boot"))
    delivered0 = _delivered(sim)
    per_cpu: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        cpu = op.get("cpu", 0)
        per_cpu.setdefault(cpu if cpu in k.online else min(k.online), []).append(i)

    def campaign(cpu: int, idx: list[int]) -> Gen:
        for i in idx:
            yield from op_task(sim, ops[i], lambda ans, i=i: answered.__setitem__(i, ans))
            yield Cost(OP_GAP_NS)

    for cpu, idx in sorted(per_cpu.items()):
        sim.guest.run_on(cpu, lambda cpu=cpu, idx=idx: campaign(cpu, idx))
        wake(sim, cpu)
    # Run until every operation is answered (then settle), the host stops, or nothing moves.
    # (an empty queue does not move the clock: keep time here)
    t = sched.now
    last_progress, last_count = t, -1
    while not sched._stopped:
        t += MS
        sched.run(until=t)
        if len(answered) != last_count:
            last_count, last_progress = len(answered), t
        if len(answered) == len(ops) or t - last_progress > 50 * MS:
            break
        if t - last_progress >= 2 * MS:  # a vCPU blocked (CPU_SUSPEND, SCHEDOP_block) with
            for cpu in per_cpu:  # no interrupt source: the event a timer tick would be
                wake(sim, cpu)
    if not sched._stopped:
        sched.run(until=t + SETTLE_NS)
    delivered1 = _delivered(sim)
    for dev in sim.devices:
        dev.limit = dev.arrivals
    if not sched._stopped:
        sched.run(until=t + SETTLE_NS + drain)
    r = sim.result()
    out = FuzzOutcome(len(ops), len(answered), "ok", result=r,
                      delivered_during=delivered1 - delivered0, errors=errors)  # fmt: skip
    crash = getattr(sim.host, "crash", None)
    if crash is not None:
        out.outcome, out.crash_site = "xen_crash", crash.site
    elif getattr(sim.host, "shutdown", "") or getattr(sim.host, "system_state", "") not in (
        "",
        "running",
    ):
        out.outcome = "shutdown"
    fail = _judge(sim, ops, answered, r, out, errors, hostile_all)
    if fail is not None:
        out.outcome, out.failure = "failure", fail
    return out


def _judge(sim: Any, ops: list[dict[str, Any]], answered: dict[int, Any], r: dict[str, Any],
           out: FuzzOutcome, errors: list[str], hostile_all: bool) -> Failure | None:  # fmt: skip
    if errors or r["errors"]:
        return Failure("model-error", (errors + r["errors"])[0])
    if out.outcome != "ok":
        return None  # xen_crash or shutdown: the run ended on purpose
    # A call that never returns by definition (CPU_OFF, ...) ends its vCPU's sequence.
    ended: dict[int, int] = {}
    for i, op in enumerate(ops):
        if op["op"] == "smccc" and op["fid"] in PSCI_ENDING:
            ended.setdefault(op.get("cpu", 0), i)
    missing = [i for i in range(len(ops)) if i not in answered
               and i < ended.get(ops[i].get("cpu", 0), len(ops))]  # fmt: skip
    if missing:
        i = missing[0]
        return Failure("unanswered", f"op #{i} {json.dumps(ops[i])} got no answer")
    lpi_unexpected = sum(1 for u in sim.guest.unexpected_irqs if (u.get("intid") or 0) >= 8192)
    non_lpi = r["lpis_delivered_unexpected"] - lpi_unexpected
    pending = r["lpis_pending"] + non_lpi
    bound = 3 * sum(d.events for d in sim.devices) + 4 * len(sim.guest.cpus)
    if not 0 <= pending <= bound:
        return Failure(
            "accounting",
            f"raised {r['lpis_raised']} = delivered {r['lpis_delivered']} + unexpected LPIs "
            f"{lpi_unexpected} + coalesced {r['lpis_coalesced']} + dropped {r['lpis_dropped']} "
            f"+ pending {pending} (allowed 0..{bound})",
        )
    rate = sum(d.msi_rate for d in sim.devices)
    if not hostile_all and rate and r["lpis_delivered"] and out.delivered_during <= 0:
        return Failure("liveness", "no MSI was delivered while the fuzzer ran")
    return None


def shrink(sc: Any, ops: list[dict[str, Any]], failure: Failure, *, hostile_all: bool = False,
           log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The shortest sequence found that fails the same way: bisect, then drop single ops."""
    sig = failure.signature()
    runs = 0

    def fails(cand: list[dict[str, Any]]) -> bool:
        nonlocal runs
        runs += 1
        o = run_ops(sc, cand, hostile_all=hostile_all)
        ok = o.failure is not None and o.failure.signature() == sig
        if log:
            log(f"shrink: {len(cand)} ops -> {'fails' if ok else 'passes'}")
        return ok

    seq = list(ops)
    chunk = len(seq) // 2
    while chunk >= 1 and len(seq) > 1:
        progressed = False
        i = 0
        while i < len(seq) and len(seq) > 1:
            cand = seq[:i] + seq[i + chunk :]
            if cand and fails(cand):
                seq, progressed = cand, True
            else:
                i += chunk
        if not progressed:
            chunk //= 2
        else:
            chunk = min(chunk, len(seq) // 2) or 1
            if len(seq) == 1:
                break
    return seq


# -- the command -------------------------------------------------------------------------------


def write_replay(path: str, sc: Any, seed: int, ops: list[dict[str, Any]],
                 failure: Failure | None, hostile_all: bool) -> None:  # fmt: skip
    doc = {"scenario": sc.path, "seed": seed, "hostile_all": hostile_all, "ops": ops,
           "failure": None if failure is None else {"kind": failure.kind,
                                                    "detail": failure.detail}}  # fmt: skip
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def load_replay(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a replay file (JSON): {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("ops"), list):
        raise ValueError(f"{path}: not a replay file: no 'ops' list")
    for i, op in enumerate(doc["ops"]):
        if not isinstance(op, dict) or op.get("op") not in KINDS:
            raise ValueError(f"{path}: ops[{i}]: 'op' must be one of {', '.join(KINDS)}")
    return doc


def describe(o: FuzzOutcome) -> str:
    r = o.result
    acct = ""
    if r:
        acct = (f", MSIs raised {r['lpis_raised']} = delivered {r['lpis_delivered']} + "
                f"coalesced {r['lpis_coalesced']} + dropped {r['lpis_dropped']} + pending "
                f"{r['lpis_pending']}, delivered while fuzzing {o.delivered_during}")  # fmt: skip
    crash = f" at {o.crash_site}" if o.crash_site else ""
    return f"{o.outcome}{crash}: {o.answered}/{o.ops} operations answered{acct}"


def main(scenario: str, *, budget: int = 300, seed: int = 1, replay: str | None = None,
         out_path: str | None = None, hostile_all: bool = False, no_shrink: bool = False,
         trace: str | None = None, round_size: int = 500, out: TextIO | None = None,
         err: TextIO | None = None) -> int:  # fmt: skip
    from cosim.scenario import ScenarioError, load

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        sc = load(scenario)
        if replay:
            doc = load_replay(replay)
            ops, seed = doc["ops"], int(doc.get("seed", seed))
            hostile_all = bool(doc.get("hostile_all", hostile_all))
        else:
            from cosim.run import build

            if budget < 1:
                raise ValueError(f"--budget {budget}: must be at least 1")
            ops = gen_ops(seed, FuzzContext.of(build(sc), hostile_all), budget)
    except (ScenarioError, ValueError) as exc:
        err.write(f"cosim fuzz: {exc}\n")
        return 2
    # Rounds of at most `round_size` operations, each on a fresh boot: a round that ends in a
    # xen_crash or a shutdown (expected outcomes) does not end the campaign.
    step = len(ops) if replay else max(1, round_size)
    crashes: dict[str, int] = {}
    o: FuzzOutcome | None = None
    for start in range(0, len(ops), step):
        chunk = ops[start : start + step]
        o = run_ops(sc, chunk, hostile_all=hostile_all, trace_path=trace)
        label = f"ops {start}..{start + len(chunk) - 1}"
        out.write(f"cosim fuzz {scenario} seed {seed} {label}: {describe(o)}\n")
        if o.crash_site:
            crashes[o.crash_site] = crashes.get(o.crash_site, 0) + 1
        if o.failure is not None:
            ops = chunk
            break
    assert o is not None
    if o.failure is None:
        sites = ", ".join(f"{k} x{v}" for k, v in sorted(crashes.items()))
        out.write(
            f"clean: {len(ops)} operations, no failure"
            + (f"; expected xen_crash outcomes: {sites}" if sites else "")
            + "\n"
        )
        return 0
    out.write(f"FAILURE ({o.failure.kind}): {o.failure.detail}\n")
    small = ops
    if not replay and not no_shrink:
        small = shrink(sc, ops, o.failure, hostile_all=hostile_all)
    if replay and not out_path:
        path = replay  # the replay file already holds this sequence
    else:
        path = out_path or f"cosim-fuzz-{sc.name}-seed{seed}.json"
        write_replay(path, sc, seed, small, o.failure, hostile_all)
    out.write(f"seed: {seed}\nshortest reproducing sequence ({len(small)} of {len(ops)} ops):\n")
    for op in small[:20]:
        out.write(f"  {json.dumps(op)}\n")
    if len(small) > 20:
        out.write(f"  ... {len(small) - 20} more in {path}\n")
    out.write(f"replay: cosim fuzz {scenario} --replay {path}\n")
    return 1
