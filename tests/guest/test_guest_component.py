"""The guest component on its own: against a dict-of-registers fake host (the boot path, the
redistributor walk), serving Mem in every state, corruption records, bad input, determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosim.scheduler import MS, Port, Scheduler
from guest.bootinfo import REAL_INITRD_SIZE, BootInfo
from guest.guest import Guest
from hypervisor.firmware.virt import qemu_virt_dt_blobs
from tests.guest.harness import STAMP, boot
from transport.abi import (
    ARM_SMCCC_VERSION_FUNC_ID,
    PSCI_0_2_FN64_AFFINITY_INFO,
    PSCI_0_2_FN64_CPU_ON,
    PSCI_0_2_FN_MIGRATE_INFO_TYPE,
    PSCI_0_2_FN_PSCI_VERSION,
    u64,
)
from transport.messages import Envelope, Hello, Mem, Mmio, Reply, Smccc, Sysreg
from transport.trace import TraceWriter

GICD, ITS, GICR = 0x0800_0000, 0x0808_0000, 0x080A_0000


class FakeHost:
    """Component ``host``: registers in a dict, with the few behaviours the boot path needs
    (RO ID registers, GICR_TYPER per frame, WAKER, ITS quiescence, CREADR = CWRITER, PSCI)."""

    name = "host"

    def __init__(self, cpus: int = 4) -> None:
        self.cpus = cpus
        self.regs: dict[int, int] = {}
        self.reads: list[tuple[int, int, int]] = []  # (cpu, addr, size)

    def start(self, port: Port) -> None:
        pass

    def timer(self, token: Any, port: Port) -> None:
        pass

    def receive(self, env: Envelope, port: Port) -> None:
        m = env.msg
        if isinstance(m, Mmio):
            v = self.mmio(m)
        elif isinstance(m, Sysreg):
            v = (
                {"ICC_SRE_EL1": 7, "ICC_CTLR_EL1": 0x8C00, "ICC_IAR1_EL1": 1023}.get(m.reg, 0)
                if not m.write
                else 0
            )
        elif isinstance(m, Smccc):
            v = u64(
                {
                    PSCI_0_2_FN_PSCI_VERSION: 0x10001,
                    PSCI_0_2_FN_MIGRATE_INFO_TYPE: 2,
                    PSCI_0_2_FN64_CPU_ON: 0,
                    PSCI_0_2_FN64_AFFINITY_INFO: 1,
                    ARM_SMCCC_VERSION_FUNC_ID: -1,
                }.get(m.fid, 0)
            )
        else:
            return
        if env.id:
            port.reply(env, Reply(value=v))

    def mmio(self, m: Mmio) -> int:
        a = m.addr
        if m.write:
            self.regs[a] = m.value
            return 0
        self.reads.append((m.cpu, a, m.size))
        if a in (GICD + 0xFFE8, ITS + 0xFFE8) or (a >= GICR and (a - GICR) % 0x2_0000 == 0xFFE8):
            return 0x3B
        if a == GICD + 4:
            return 6 | 1 << 17 | 15 << 19  # 224 SPIs, LPIS, 16 ID bits
        if a == ITS + 8:
            return 0x1F_0001_EFB1  # QEMU's GITS_TYPER
        if a == ITS:
            return self.regs.get(a, 0) | 1 << 31  # Quiescent
        if a == ITS + 0x90:
            return self.regs.get(ITS + 0x88, 0)  # CREADR = CWRITER: commands done at once
        if ITS + 0x100 <= a < ITS + 0x140:
            n = (a - ITS - 0x100) // 8
            ro = {0: 1 << 56 | 7 << 48, 1: 4 << 56 | 7 << 48}.get(n)
            if ro is None:
                return 0
            return (self.regs.get(a, 0) & ~(7 << 56 | 0x1F << 48)) | ro
        if GICR <= a < GICR + self.cpus * 0x2_0000:
            n, off = divmod(a - GICR, 0x2_0000)
            if off == 8:
                return n << 32 | n << 8 | 1 | (1 << 4 if n == self.cpus - 1 else 0)
            if off == 0x14:
                return 0 if not self.regs.get(a, 0b110) & 2 else 0b110  # ChildrenAsleep follows
        return self.regs.get(a, 0)


def _dt_boot(
    bootargs: str = "", preset: dict[int, int] | None = None
) -> tuple[Guest, FakeHost, Scheduler]:
    blobs = qemu_virt_dt_blobs(cpus=4, initrd_size=REAL_INITRD_SIZE, bootargs="console=ttyAMA0")
    info = BootInfo.from_blobs(
        blobs, firmware="dt", ram_base=0x4000_0000, ram_size=2 << 30, cpus=4, bootargs=bootargs
    )
    g, h = Guest(info), FakeHost()
    h.regs.update(preset or {})
    s = Scheduler(seed=3)
    s.add(h)
    s.add(g)
    s.start()
    s.run(until=300 * MS)
    return g, h, s


def test_boot_against_a_register_dict() -> None:
    g, h, _ = _dt_boot()
    lines = [STAMP.sub("", ln) for ln in g.printk.text()]
    assert (
        "ITS@0x0000000008080000: allocated 8192 Devices @425a0000 (indirect, esz 8, psz 64K, shr 1)"
        in lines
    )
    assert "GICv3: CPU3: using allocated LPI pending table @0x0000000042600000" in lines
    assert "smp: Brought up 1 node, 4 CPUs" in lines
    assert h.regs[GICR + 3 * 0x2_0000 + 0x70] == 0x425C_078F
    assert g.result()["generations"][0]["status"] == "booted"


def test_the_redistributor_walk_reads_every_frame_up_to_the_match() -> None:
    """gic_iterate_rdists + __gic_populate_rdist: GICR_TYPER read twice per frame visited
    (by the walk and by the callback), from frame 0 up to the CPU's own, never beyond."""
    _, h, _ = _dt_boot()

    def typer_reads(cpu: int, frame: int) -> int:
        return sum(
            1 for c, a, sz in h.reads if c == cpu and a == GICR + frame * 0x2_0000 + 8 and sz == 8
        )

    # own frame + 2: redist_disable_lpis (PLPIS) and its_cpu_init_collection (PTA = 0: the
    # target is GICR_TYPER.Processor_Number)
    assert [typer_reads(1, f) for f in range(4)] == [2, 4, 0, 0]
    assert [typer_reads(3, f) for f in range(4)] == [2, 2, 2, 4]
    # CPU0: gic_update_rdist_properties walks all four (2 reads each), then as above
    assert [typer_reads(0, f) for f in range(4)] == [6, 2, 2, 2]


def test_booted_with_lpis_enabled_and_nothing_reserved() -> None:
    """Firmware left EnableLPIs set with a property table in unreserved memory: v5.15 does not
    take the PREALLOCATED path, warns, taints 'C' and disables LPIs (sheet §2.2, §2.7)."""
    g, h, _ = _dt_boot(preset={GICR: 1, GICR + 0x70: 0x5000_078F})
    lines = [STAMP.sub("", ln) for ln in g.printk.text()]
    i = lines.index(
        "GICv3: Expected reserved range [0x0000000050000000:0x000000005000ffff], not found"
    )
    assert "GICv3: Using preallocated redistributor tables" not in lines
    assert lines.index("GICv3: CPU0: Booted with LPIs enabled, memory probably corrupted") > i
    assert "GICv3: CPU0: using allocated LPI pending table @0x00000000425d0000" in lines
    assert g.kernel.taint.letters() == "C"
    assert h.regs[GICR + 0x70] == 0x425C_078F  # reprogrammed after the disable


def test_mem_served_and_checked() -> None:
    run = boot("dt", msis=0, until=150 * MS)
    g = run.guest
    sent: list[Envelope] = []

    class P:
        now = 7
        rng = None

        def reply(self, to: Envelope, msg: Any, **_: Any) -> None:
            sent.append(msg)

        def record(self, kind: str, body: dict[str, Any], **_: Any) -> None:
            sent.append((kind, body))

    port: Any = P()
    # a device write into the kernel image: a corruption record naming it
    g.receive(
        Envelope(
            t=7,
            src="host",
            dst="guest",
            msg=Mem(agent="hw", addr=0x4030_0000, size=4, write=True, data=b"\xa2" * 4),
            id=9,
            why="gicv3_redist_lpi_pending",
        ),
        port,
    )
    rec = g.corruption[-1]
    assert (rec["address"], rec["size"], rec["writer"], rec["function"], rec["owner"]) == (
        0x4030_0000, 4, "hw", "gicv3_redist_lpi_pending", "kernel image (gen 1)"
    )  # fmt: skip
    assert sent[-1] == Reply()
    # a write into a pending table is the hardware's own business
    n = len(g.corruption)
    g.receive(
        Envelope(
            t=7,
            src="host",
            dst="guest",
            msg=Mem(agent="hw", addr=0x425D_0400, size=1, write=True, data=b"\x01"),
            id=10,
        ),
        port,
    )
    assert len(g.corruption) == n
    # reads return RAM; outside RAM an error reply; bad kinds are refused, nothing raises
    g.receive(
        Envelope(
            t=7,
            src="host",
            dst="guest",
            msg=Mem(agent="hw", addr=0x425C_0000, size=2, write=False),
            id=11,
        ),
        port,
    )
    assert sent[-1] == Reply(data=b"\xa3\xa3")
    g.receive(
        Envelope(
            t=7,
            src="host",
            dst="guest",
            msg=Mem(agent="hw", addr=0x1000, size=8, write=False),
            id=12,
        ),
        port,
    )
    assert sent[-1].status == -1 and "outside guest RAM" in sent[-1].error
    g.receive(
        Envelope(
            t=7,
            src="host",
            dst="guest",
            msg=Mem(agent="xen", addr=0x4000_0000, size=4, write=True, data=b"\0"),
            id=13,
        ),
        port,
    )
    assert sent[-1].status == -1
    g.receive(Envelope(t=7, src="host", dst="guest", msg=Hello(role="x"), id=14), port)
    assert sent[-2].status == -1 and sent[-1][0] == "bad-message"
    g.receive(Envelope(t=7, src="host", dst="guest", msg=Reply(value=1), reply_to=999_999), port)
    assert sent[-1][0] == "bad-reply"
    assert g.errors == []


def _trace_run(path: Path, seed: int) -> bytes:
    with TraceWriter(path, {"scenario": "guest-dt", "seed": seed}) as tw:
        blobs = qemu_virt_dt_blobs(cpus=4, initrd_size=REAL_INITRD_SIZE)
        info = BootInfo.from_blobs(
            blobs, firmware="dt", ram_base=0x4000_0000, ram_size=2 << 30, cpus=4
        )
        s = Scheduler(seed=seed, trace=tw)
        s.add(FakeHost())
        s.add(Guest(info))
        s.start()
        s.run(until=200 * MS)
    return path.read_bytes()


def test_same_seed_same_trace(tmp_path: Path) -> None:
    a = _trace_run(tmp_path / "a", 5)
    b = _trace_run(tmp_path / "b", 5)
    assert a == b and len(a) > 10_000
