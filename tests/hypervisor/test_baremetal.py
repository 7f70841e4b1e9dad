"""BareMetalHost on the scheduler with a scripted guest that programs the GIC like Linux.

Register values are the fact sheet's worked examples (gicv3-architecture.md): E4 GICR_PROPBASER
0x80A0078F / GICR_PENDBASER 0x80A10780, E6 GITS_CBASER 0xB8000000_80C0040F, the command bytes
of E1 (MAPTI DeviceID 0x10, EventID 3, pINTID 8195, ICID 2), E2 (MAPD DeviceID 0x10, Size 4,
ITT 0x80B00000) and E3 (MAPC ICID 2 -> processor 2), and E8's table addressing (LPI 8195:
property byte +3, pending byte +0x400 bit 3). The in-memory DTE/CTE/ITE bytes are QEMU's
formats (gicv3_internal.h, sheet §5.5), worked out by hand in the comments. PSCI answers are
QEMU 7.2's target/arm/psci.c and the real boot log ("PSCIv1.1 detected", "Trusted OS
migration not required", "SMC Calling Convention v1.0").
"""

from __future__ import annotations

from typing import Any

import pytest

from hypervisor.baremetal import BareMetalHost
from hypervisor.machine import MachineConfigError, VirtMachine
from tests.hypervisor.bus_guest import RecordingScheduler, ScriptedGuest
from transport.messages import Envelope, Irq, Mem, Mmio, Msi, Reply, Smccc, Sysreg

MS = 1_000_000
ITS = 0x0808_0000
GICD = 0x0800_0000
RD0 = 0x080A_0000
RD2 = RD0 + 2 * 0x2_0000  # = 0x080E0000, the RD_base of sheet E3's PTA = 1 example
SGI2 = RD2 + 0x1_0000

GICR_CTLR, GICR_PROPBASER, GICR_PENDBASER = 0x00, 0x70, 0x78
GITS_CTLR, GITS_CBASER, GITS_CWRITER, GITS_CREADR = 0x00, 0x80, 0x88, 0x90
GITS_BASER0, GITS_BASER1 = 0x100, 0x108

PROP = 0x80A0_0000
PEND = 0x80A1_0000
PROPBASER_E4 = 0x0000_0000_80A0_078F
PENDBASER_E4 = 0x0000_0000_80A1_0780
CMDQ = 0x80C0_0000
CBASER_E6 = 0xB800_0000_80C0_040F
DT = 0x80D0_0000
CT = 0x80E0_0000
ITT = 0x80B0_0000
# Linux its_setup_baser, flat, one 64 KiB page: Valid | RaWaWb << 59 | Type (RO) | Entry_Size 8
# (RO) | PA | InnerShareable << 10 | Page_Size 64K (0b10 << 8).
BASER0 = 0xB907_0000_80D0_0600
BASER1 = 0xBC07_0000_80E0_0600

E1_MAPTI = bytes.fromhex("0a000000100000000300000003200000" + "02000000000000000000000000000000")
E2_MAPD = bytes.fromhex("08000000100000000400000000000000" + "0000b080000000800000000000000000")
E3_MAPC = bytes.fromhex("09000000000000000000000000000000" + "02000200000000800000000000000000")
SYNC_2 = bytes.fromhex("05000000000000000000000000000000" + "00000200000000000000000000000000")
LPI = 8195

PSCI_VERSION = 0x8400_0000
CPU_OFF = 0x8400_0002
CPU_ON64 = 0xC400_0003
AFFINITY_INFO64 = 0xC400_0004
MIGRATE_INFO_TYPE = 0x8400_0006
SYSTEM_OFF = 0x8400_0008
PSCI_FEATURES = 0x8400_000A
SMCCC_VERSION = 0x8000_0000
NOT_SUPPORTED = (1 << 64) - 1  # -1 as x0
INVALID_PARAMS = (1 << 64) - 2
ALREADY_ON = (1 << 64) - 4


def w(cpu: int, addr: int, value: int, size: int = 8) -> Mmio:
    return Mmio(cpu=cpu, addr=addr, size=size, write=True, value=value)


def r(cpu: int, addr: int, size: int = 4) -> Mmio:
    return Mmio(cpu=cpu, addr=addr, size=size, write=False)


def sysreg(cpu: int, reg: str, value: int | None = None) -> Sysreg:
    return Sysreg(cpu=cpu, reg=reg, write=value is not None, value=value or 0)


def smccc(cpu: int, fid: int, *args: int, conduit: str = "hvc") -> Smccc:
    return Smccc(cpu=cpu, fid=fid, args=tuple(args), conduit=conduit)  # type: ignore[arg-type]


def put_commands(*cmds: bytes) -> Any:
    """Linux its_send_single_command: write the 32-byte blocks into the queue in RAM."""

    def step(g: ScriptedGuest, _port: Any) -> None:
        for i, c in enumerate(cmds):
            g.ram.write(CMDQ + 32 * i, c)

    return step


def linux_lpi_setup() -> list[Any]:
    """its_cpu_init_lpis on CPU 2, its_probe_one/its_alloc_tables, then the driver's MAPD,
    MAPC, MAPTI, SYNC with LPI 8195's property byte enabled (lpi_write_config: 0xA0 | 2 | 1)."""
    return [
        w(2, RD2 + GICR_PROPBASER, PROPBASER_E4),
        w(2, RD2 + GICR_PENDBASER, PENDBASER_E4),
        lambda g, _p: g.ram.write(PROP + (LPI - 8192), bytes([0xA3])),
        w(2, RD2 + GICR_CTLR, 1, size=4),
        w(0, ITS + GITS_BASER0, BASER0),
        w(0, ITS + GITS_BASER1, BASER1),
        w(0, ITS + GITS_CBASER, CBASER_E6),
        w(0, ITS + GITS_CTLR, 1, size=4),
        put_commands(E2_MAPD, E3_MAPC, E1_MAPTI, SYNC_2),
        w(0, ITS + GITS_CWRITER, 4 * 32),
        r(0, ITS + GITS_CREADR, size=8),
        sysreg(2, "ICC_PMR_EL1", 0xF0),
        sysreg(2, "ICC_IGRPEN1_EL1", 1),
    ]


class MsiSource:
    """Sends Msi(devid, eventid) at fixed times, as a device component would."""

    def __init__(self, shots: list[tuple[int, int, int]], name: str = "dev.test") -> None:
        self.name = name
        self.shots = shots

    def start(self, port: Any) -> None:
        for i, (t, _d, _e) in enumerate(self.shots):
            port.call_later(t, i)

    def timer(self, token: Any, port: Any) -> None:
        _t, devid, eventid = self.shots[token]
        port.send("host", Msi(devid=devid, eventid=eventid), why="test_msi")

    def receive(self, env: Envelope, port: Any) -> None:
        pass


def run(
    steps: list[Any],
    *,
    machine: VirtMachine | None = None,
    shots: list[tuple[int, int, int]] | None = None,
    until: int | None = None,
    host: BareMetalHost | None = None,
) -> tuple[RecordingScheduler, BareMetalHost, ScriptedGuest]:
    sched = RecordingScheduler(seed=7)
    host = host or BareMetalHost(machine or VirtMachine())
    guest = ScriptedGuest(steps)
    sched.add(host)
    sched.add(guest)
    if shots:
        sched.add(MsiSource(shots))
    sched.start()
    sched.run(until=until)
    return sched, host, guest


def hw_mems(guest: ScriptedGuest, start: int = 0) -> list[tuple[str, int, int, bool, bytes]]:
    """(why, addr, size, write, data) of the host's mem requests, all tagged agent hw."""
    assert all(m[0] == "hw" for m in guest.mems)
    return [
        (why, addr, size, write, data) for _a, why, addr, size, write, data in guest.mems[start:]
    ]


# --- LPIs, the ITS and guest RAM ----------------------------------------------------------


def test_linux_setup_memory_accesses_are_exactly_qemus() -> None:
    _s, host, guest = run(linux_lpi_setup())
    assert hw_mems(guest) == [
        # EnableLPIs: QEMU update_for_all_lpis scans pending bytes 1024 .. 2^16/8 of CPU 2
        ("update_for_all_lpis", PEND + 0x400, 0x2000 - 0x400, False, b""),
        # process_cmdq reads each 32-byte command; MAPD writes DTE 0x10 at DT + 0x10 * 8:
        # Valid 1 | Size 4 << 1 | (ITT >> 8 = 0x80B000) << 6 = 0x202C0009
        ("process_cmdq", CMDQ, 32, False, b""),
        ("update_dte", DT + 0x80, 8, True, (0x202C_0009).to_bytes(8, "little")),
        # MAPC ICID 2: CTE at CT + 2 * 8 = Valid | RDbase (processor 2) << 1 = 5
        ("process_cmdq", CMDQ + 32, 32, False, b""),
        ("update_cte", CT + 0x10, 8, True, (5).to_bytes(8, "little")),
        # MAPTI: DTE read, then the 12-byte ITE of EventID 3 at ITT + 3 * 12: ITE_L = Valid |
        # IntType physical << 1 | 8195 << 2 | ICID 2 << 32; ITE_H = doorbell 1023 (none)
        ("process_cmdq", CMDQ + 64, 32, False, b""),
        ("get_dte", DT + 0x80, 8, False, b""),
        ("update_ite", ITT + 36, 8, True, (0x2_0000_800F).to_bytes(8, "little")),
        ("update_ite", ITT + 44, 4, True, (1023).to_bytes(4, "little")),
        ("process_cmdq", CMDQ + 96, 32, False, b""),
    ]
    assert guest.values()[8] == 0x80  # GITS_CREADR caught up with CWRITER (4 commands)
    assert all(a.reply.status == 0 for a in guest.answers)
    assert guest.irqs == []
    assert host.counters["msis_received"] == 0


def test_msi_sets_lpi_raises_irq_and_iar_eoi_take_it() -> None:
    steps = [*linux_lpi_setup(), 1000, sysreg(2, "ICC_IAR1_EL1"), sysreg(2, "ICC_EOIR1_EL1", LPI)]
    steps.append(sysreg(2, "ICC_IAR1_EL1"))
    _s, host, guest = run(steps, shots=[(500, 0x10, 3)])
    mems = hw_mems(guest, start=10)
    assert mems == [
        # gicv3_its_translation_write: DTE, ITE (8 + 4 bytes), CTE
        ("get_dte", DT + 0x80, 8, False, b""),
        ("get_ite", ITT + 36, 8, False, b""),
        ("get_ite", ITT + 44, 4, False, b""),
        ("get_cte", CT + 0x10, 8, False, b""),
        # E8: LPI 8195's pending bit is byte 0x400 bit 3; then its property byte at +3
        ("set_pending_table_bit", PEND + 0x400, 1, False, b""),
        ("set_pending_table_bit", PEND + 0x400, 1, True, b"\x08"),
        ("update_for_one_lpi", PROP + 3, 1, False, b""),
        # IAR: icc_activate_irq clears the pending bit, then rescans (it was hpplpi)
        ("set_pending_table_bit", PEND + 0x400, 1, False, b""),
        ("set_pending_table_bit", PEND + 0x400, 1, True, b"\x00"),
        ("update_for_all_lpis", PEND + 0x400, 0x1C00, False, b""),
    ]
    assert guest.irqs == [(500, 2, True), (1000, 2, False)]
    iar, eoi, iar2 = guest.values()[-3:]
    assert (iar, eoi, iar2) == (LPI, 0, 1023)
    assert guest.ram.read(PEND + 0x400, 1) == b"\x00"
    assert host.counters == {
        "msis_received": 1,
        "lpis_set": 1,
        "lpis_coalesced": 0,
        "lpis_dropped": 0,
        "bad_requests": 0,
        "drop_reasons": {},
    }


def test_second_msi_while_pending_coalesces() -> None:
    steps = [*linux_lpi_setup(), 1000, sysreg(2, "ICC_IAR1_EL1"), sysreg(2, "ICC_IAR1_EL1")]
    _s, host, guest = run(steps, shots=[(400, 0x10, 3), (600, 0x10, 3)])
    second = hw_mems(guest, start=17)[:5]
    # the second MSI reads the pending byte, finds bit 3 set, and writes nothing
    assert second == [
        ("get_dte", DT + 0x80, 8, False, b""),
        ("get_ite", ITT + 36, 8, False, b""),
        ("get_ite", ITT + 44, 4, False, b""),
        ("get_cte", CT + 0x10, 8, False, b""),
        ("set_pending_table_bit", PEND + 0x400, 1, False, b""),
    ]
    assert guest.irqs == [(400, 2, True), (1000, 2, False)]
    assert guest.values()[-2:] == [LPI, 1023]  # one interrupt for two MSIs
    c = host.counters
    assert (c["msis_received"], c["lpis_set"], c["lpis_coalesced"], c["lpis_dropped"]) == (
        2,
        1,
        1,
        0,
    )


def test_unmapped_event_and_disabled_its_drop() -> None:
    early = [(0, 0x10, 3)]  # before GITS_CTLR.Enabled: dropped without touching RAM
    late = [(500, 0x10, 5), (600, 0x99, 0)]  # EventID 5 has no ITE; DeviceID 0x99 no DTE
    sched, host, guest = run([*linux_lpi_setup(), 1000], shots=early + late)
    c = host.counters
    assert (c["msis_received"], c["lpis_set"], c["lpis_coalesced"], c["lpis_dropped"]) == (
        3,
        0,
        0,
        3,
    )
    assert sum(c["drop_reasons"].values()) == 3
    assert "GITS_CTLR.Enabled = 0" in c["drop_reasons"]
    dropped = [d for d in sched.kinds("lpi") if d["action"] == "dropped"]
    assert [(d["devid"], d["eventid"]) for d in dropped] == [(0x10, 3), (0x10, 5), (0x99, 0)]
    assert guest.irqs == []
    assert not any(why == "set_pending_table_bit" for _a, why, *_ in guest.mems)


def test_msi_to_redistributor_without_enable_lpis_is_dropped() -> None:
    steps = [
        s for s in linux_lpi_setup() if not (isinstance(s, Mmio) and s.addr == RD2 + GICR_CTLR)
    ]
    _s, host, guest = run([*steps, 1000], shots=[(500, 0x10, 3)])
    assert host.counters["lpis_dropped"] == 1
    assert list(host.counters["drop_reasons"]) == [
        "redistributor ignored the LPI (EnableLPIs = 0 or INTID beyond IDbits)"
    ]


def test_msi_without_an_its_is_dropped() -> None:
    _s, host, guest = run(
        [r(0, ITS + 0x8, size=8)], machine=VirtMachine(its=False), shots=[(5, 0x10, 3)]
    )
    assert host.counters["drop_reasons"] == {"no ITS on this machine (its=off)": 1}
    assert guest.values() == [0]  # no GITS frame: RAZ
    assert guest.mems == []


def test_device_msi_uses_the_bus_devid_not_the_claimed_one() -> None:
    from hypervisor.devices import DeviceWindow

    window = DeviceWindow("dev.test", 0x1000_0000, 0x1000, devid=0x10)
    host = BareMetalHost(VirtMachine(), devices=[window])
    sched, host, guest = run([*linux_lpi_setup(), 1000], shots=[(500, 0x77, 3)], host=host)
    assert sched.kinds("msi-devid-mismatch") == [
        {"src": "dev.test", "claimed": 0x77, "devid": 0x10}
    ]
    assert host.counters["lpis_set"] == 1
    assert guest.irqs == [(500, 2, True)]


def test_operations_are_serialised_fifo() -> None:
    """Requests from two sources while a core waits for guest RAM are served in arrival order."""
    _s, host, guest = run(
        [*linux_lpi_setup(), 1000], shots=[(500, 0x10, 3), (500, 0x10, 3), (500, 0x10, 5)]
    )
    whys = [m[1] for m in guest.mems[10:]]
    # three complete translations one after the other, never interleaved
    assert whys[:7] == ["get_dte", "get_ite", "get_ite", "get_cte", "set_pending_table_bit"] + [
        "set_pending_table_bit",
        "update_for_one_lpi",
    ]
    assert whys[7:12] == ["get_dte", "get_ite", "get_ite", "get_cte", "set_pending_table_bit"]
    assert whys[12:] == ["get_dte", "get_ite", "get_ite"]
    assert not host.busy


def test_guest_ram_error_reads_as_failed_memory() -> None:
    """A Mem read the guest refuses (status -1) stalls the ITS queue as QEMU's MEMTX error does."""
    sched = RecordingScheduler(seed=1)
    host = BareMetalHost(VirtMachine())
    guest2 = ScriptedGuest([*linux_lpi_setup()])
    guest2.refuse_mem = lambda m: Reply(status=-1, error="no RAM") if m.addr == CMDQ else None
    sched.add(host)
    sched.add(guest2)
    sched.start()
    sched.run()
    assert sched.kinds("mem-error")[0] == {"addr": CMDQ, "error": "no RAM"}
    assert guest2.values()[8] & 1 == 1  # GITS_CREADR.Stalled
    assert guest2.values()[8] & ~1 == 0  # stuck on the first command


# --- PSCI ---------------------------------------------------------------------------------


def test_psci_answers_like_qemu_7_2() -> None:
    steps = [
        smccc(0, PSCI_VERSION),
        smccc(0, MIGRATE_INFO_TYPE),
        smccc(0, PSCI_FEATURES, SMCCC_VERSION),
        smccc(0, PSCI_FEATURES, CPU_ON64),
        smccc(0, PSCI_FEATURES, 0x8400_0005),  # MIGRATE
        smccc(0, SMCCC_VERSION),
        smccc(0, 0x8400_00FF),
    ]
    _s, _h, guest = run(steps)
    assert guest.values() == [
        0x10001,
        2,
        NOT_SUPPORTED,
        0,
        NOT_SUPPORTED,
        NOT_SUPPORTED,
        NOT_SUPPORTED,
    ]
    assert guest.replies()[0].regs == (0x10001, 0, 0, 0)
    assert guest.replies()[2].regs == (NOT_SUPPORTED, SMCCC_VERSION, 0, 0)


def test_psci_cpu_on_off_affinity_info() -> None:
    entry, ctx = 0x4020_1000, 0x1234
    steps = [
        smccc(0, AFFINITY_INFO64, 1, 0),
        smccc(0, CPU_ON64, 1, entry, ctx),
        smccc(0, AFFINITY_INFO64, 1, 0),
        smccc(0, CPU_ON64, 1, entry, ctx),  # already on
        smccc(0, CPU_ON64, 0x10, entry, ctx),  # Aff0 16 does not exist on a 4-CPU virt
        smccc(0, CPU_ON64, 0x8000_0001, entry, ctx),  # not an exact MPIDR match
        smccc(1, CPU_OFF),
        smccc(0, AFFINITY_INFO64, 1, 0),
        smccc(0, AFFINITY_INFO64, 7, 0),
        smccc(0, AFFINITY_INFO64, 7, 1),  # above level 0 "is always on"
        smccc(1, PSCI_VERSION),  # CPU 1 is off: it cannot call anything
    ]
    sched, host, guest = run(steps)
    assert guest.values()[:10] == [
        1,
        0,
        0,
        ALREADY_ON,
        INVALID_PARAMS,
        INVALID_PARAMS,
        0,
        1,
        INVALID_PARAMS,
        0,
    ]
    assert guest.replies()[1].regs == (0, 1, entry, ctx)
    last = guest.replies()[10]
    assert last.status == -1 and "powered off" in last.error
    assert host.power == [True, False, False, False]
    on = [b for b in sched.kinds("psci") if b["call"] == "CPU_ON" and b["ret"] == 0]
    assert on == [
        {
            "cpu": 0,
            "call": "CPU_ON",
            "target": 1,
            "mpidr": 1,
            "entry": entry,
            "context_id": ctx,
            "ret": 0,
        }
    ]


def test_cpu_on_by_mpidr_on_32_cpus() -> None:
    """virt_cpu_mp_affinity: CPU 17 is Aff1 1, Aff0 1 (16 CPUs per cluster with GICv3)."""
    steps = [
        smccc(0, CPU_ON64, 0x101, 0, 0),
        smccc(0, AFFINITY_INFO64, 0x101, 0),
        smccc(0, CPU_ON64, 0x11, 0, 0),
    ]
    _s, host, guest = run(steps, machine=VirtMachine(cpus=32))
    assert guest.values() == [0, 0, INVALID_PARAMS]
    assert [i for i, on in enumerate(host.power) if on] == [0, 17]


def test_system_off_stops_the_machine() -> None:
    sched, host, guest = run([smccc(0, SYSTEM_OFF), smccc(0, PSCI_VERSION)])
    assert sched.run().stopped == "PSCI SYSTEM_OFF from cpu 0"
    assert host.system_state == "system_off"
    assert host.power == [False] * 4


# --- the timer ----------------------------------------------------------------------------


def test_virtual_timer_ppi_27_fires_per_period() -> None:
    machine = VirtMachine(timer_period_ns=1 * MS)
    steps = [
        w(0, GICD + 0x0, 0x2, size=4),  # GICD_CTLR.EnableGrp1 (DS = 1)
        w(0, RD0 + 0x1_0080, 1 << 27, size=4),  # GICR_IGROUPR0: PPI 27 Group 1
        w(0, RD0 + 0x1_0100, 1 << 27, size=4),  # GICR_ISENABLER0
        sysreg(0, "ICC_PMR_EL1", 0xF0),
        sysreg(0, "ICC_IGRPEN1_EL1", 1),
        sysreg(0, "CNTV_CTL_EL0", 1),  # ENABLE, unmasked: the period starts now (t = 0)
        1 * MS + 10,
        sysreg(0, "ICC_IAR1_EL1"),
        sysreg(0, "CNTV_CTL_EL0", 3),  # arch_timer_handler_virt: IMASK
        sysreg(0, "CNTV_TVAL_EL0", 62_500),  # set_next_event: 1 ms at 62.5 MHz clears ISTATUS
        sysreg(0, "CNTV_CTL_EL0", 1),
        sysreg(0, "ICC_EOIR1_EL1", 27),
        sysreg(0, "CNTV_CTL_EL0"),
        1 * MS,
        sysreg(0, "CNTV_CTL_EL0"),
        sysreg(0, "CNTFRQ_EL0"),
    ]
    _s, _h, guest = run(steps, machine=machine, until=3 * MS - 1)
    assert guest.irqs[:2] == [(1 * MS, 0, True), (1 * MS + 10, 0, False)]
    assert guest.irqs[2] == (2 * MS, 0, True)
    vals = guest.values()
    assert vals[6] == 27  # ICC_IAR1_EL1
    assert vals[11] == 1  # CNTV_CTL_EL0 after reprogramming: ENABLE, ISTATUS clear
    assert vals[12] == 1 | 4  # after the 2 ms tick: ISTATUS
    assert vals[13] == 62_500_000


def test_timer_off_by_default() -> None:
    _s, _h, guest = run([sysreg(0, "CNTV_CTL_EL0", 1), 10 * MS, sysreg(0, "CNTV_CTL_EL0")])
    assert guest.irqs == []
    assert guest.values() == [0, 1]


# --- hostile input ------------------------------------------------------------------------


def test_mmio_outside_every_frame_is_raz_wi_and_recorded() -> None:
    steps = [
        r(0, 0x0900_0000),  # the PL011: not modelled
        w(0, 0x1234_5678, 0xFFFF_FFFF, size=4),
        r(0, RD0 + 4 * 0x2_0000),  # the redistributor of a 5th CPU that does not exist
    ]
    sched, host, guest = run(steps)
    assert guest.values() == [0, 0, 0]
    assert [a.reply.status for a in guest.answers] == [0, 0, 0]
    bad = sched.kinds("bad-access")
    assert [(b["addr"], b["write"]) for b in bad] == [
        (0x0900_0000, False),
        (0x1234_5678, True),
        (RD0 + 0x8_0000, False),
    ]
    assert guest.mems == []


def test_gic_registers_read_the_qemu_values() -> None:
    steps = [r(0, GICD + 0x4), r(0, ITS + 0x8, size=8), r(2, RD2 + 0x8, size=8)]
    _s, _h, guest = run(steps)
    # E7: QEMU GICD_TYPER with 256 INTIDs and LPIs; QEMU's GITS_TYPER
    assert guest.values()[:2] == [0x037A_0007, 0x1F_0001_EFB1]
    # GICR_TYPER of CPU 2: Affinity 2 << 32 | Processor_Number 2 << 8 | CommonLPIAff 01 << 24 | PLPIS
    assert guest.values()[2] == (2 << 32) | (1 << 24) | (2 << 8) | 1


@pytest.mark.parametrize(
    ("msg", "needle"),
    [
        (Mmio(cpu=0, addr=GICD, size=3, write=False), "access size 3"),
        (Mmio(cpu=9, addr=GICD, size=4, write=False), "cpu 9 out of range"),
        (Mmio(cpu=0, addr=-8, size=4, write=False), "not a 64-bit address"),
        (Mmio(cpu=0, addr=GICD, size=4, write=True, value=1 << 70), "not a 64-bit value"),
        (Sysreg(cpu=0, reg="SCTLR_EL1", write=False), "SCTLR_EL1: not a system register"),
        (Sysreg(cpu=5, reg="ICC_IAR1_EL1", write=False), "cpu 5 out of range"),
        (smccc(0, PSCI_VERSION, conduit="smc"), "SMC is not the PSCI conduit"),
        (Smccc(cpu=0, fid=1 << 64, args=()), "function id"),
        (Smccc(cpu=0, fid=PSCI_VERSION, args=tuple(range(9))), "at most 7 registers"),
        (Smccc(cpu=0, fid=PSCI_VERSION, args=(-1,)), "64-bit value"),
        (Irq(cpu=0, level=True), "does not accept irq"),
        (Mem(agent="hw", addr=0, size=1, write=False), "does not accept mem"),
    ],
)
def test_malformed_requests_get_an_error_reply(msg: Any, needle: str) -> None:
    sched, host, guest = run([msg, smccc(0, PSCI_VERSION)])
    bad, ok = guest.replies()
    assert bad.status == -1 and needle in bad.error, bad.error
    assert ok.value == 0x10001  # and the host carries on
    assert host.counters["bad_requests"] == 1
    assert len(sched.kinds("bad-request") + sched.kinds("bad-smccc")) == 1


def test_unknown_icc_register_is_answered_zero_and_logged() -> None:
    sched, _h, guest = run([sysreg(0, "ICC_NOPE_EL1"), sysreg(0, "ICC_NOPE_EL1", 5)])
    assert guest.values() == [0, 0]
    assert len(sched.kinds("guest-error")) == 2


def test_unexpected_reply_is_recorded_not_fatal() -> None:
    class Stray:
        name = "stray"

        def start(self, port: Any) -> None:
            port.send("host", Reply(value=1), reply_to=999)

        def receive(self, env: Envelope, port: Any) -> None:
            pass

        def timer(self, token: Any, port: Any) -> None:
            pass

    sched = RecordingScheduler(seed=1)
    host = BareMetalHost(VirtMachine())
    guest = ScriptedGuest([smccc(0, PSCI_VERSION)])
    for c in (host, guest, Stray()):
        sched.add(c)
    sched.start()
    sched.run()
    assert sched.kinds("bad-reply") == [{"src": "stray", "reply_to": 999}]
    assert guest.values() == [0x10001]


def test_short_mem_read_reply_reads_as_a_failed_access() -> None:
    sched = RecordingScheduler(seed=1)
    host = BareMetalHost(VirtMachine())
    guest = ScriptedGuest([*linux_lpi_setup()])
    guest.refuse_mem = lambda m: Reply(data=b"\x01") if m.addr == CMDQ else None
    sched.add(host)
    sched.add(guest)
    sched.start()
    sched.run()
    assert sched.kinds("mem-error") == [{"addr": CMDQ, "error": "read answered 1 of 32 bytes"}]
    assert guest.values()[8] == 1  # GITS_CREADR: Stalled at offset 0


def test_same_seed_same_envelopes() -> None:
    def once() -> list[tuple[int, str, str, str]]:
        sched, _h, _g = run([*linux_lpi_setup(), 1000], shots=[(500, 0x10, 3), (700, 0x10, 3)])
        return [(e.t, e.src, e.dst, repr(e.msg)) for e in sched.envelopes]

    assert once() == once()


# --- the machine description --------------------------------------------------------------


def test_pci_devids_and_linux_hwirqs_match_the_real_boot() -> None:
    """/proc/interrupts: "ITS-MSI 16384" (root port 00:01.0), "ITS-MSI 524288/524289"
    (virtio-rng 01:00.0, vectors 0 and 1); DeviceID = requester id bus << 8 | devfn."""
    m = VirtMachine()
    rp, rng = m.pci_function("00:01.0"), m.pci_function("0000:01:00.0")
    assert (rp.devid, rng.devid) == (0x0008, 0x0100)
    assert rp.linux_msi_hwirq(0) == 16384
    assert (rng.linux_msi_hwirq(0), rng.linux_msi_hwirq(1)) == (524288, 524289)
    with pytest.raises(KeyError, match="no PCI function"):
        m.pci_function("02:00.0")


def test_machine_addresses_irqs_and_map() -> None:
    m = VirtMachine()
    assert m.mmio_map() == [
        {"frame": "GICD", "base": 0x0800_0000, "size": 0x1_0000},
        {"frame": "GICR", "base": 0x080A_0000, "size": 4 * 0x2_0000},
        {"frame": "GITS", "base": 0x0808_0000, "size": 0x2_0000},
    ]
    assert [m.redistributor_base(c) for c in range(4)] == [
        0x080A_0000,
        0x080C_0000,
        0x080E_0000,
        0x0810_0000,
    ]
    assert (m.timer_virt_ppi, m.uart_intid, m.maintenance_ppi, m.pmu_ppi, m.spis) == (
        27,
        33,
        25,
        23,
        224,
    )
    assert m.its_translater == 0x0809_0040
    assert m.psci_conduit == "hvc"
    big = VirtMachine(cpus=130)
    assert big.redistributor_base(123) == 0x40_0000_0000
    assert [f["size"] for f in big.mmio_map() if f["frame"] == "GICR"] == [
        123 * 0x2_0000,
        7 * 0x2_0000,
    ]
    assert VirtMachine(its=False).mmio_map()[-1]["frame"] == "GICR"


def test_machine_from_scenario_table() -> None:
    m = VirtMachine.from_config(
        {"pcpus": 32, "ram_mb": 4096, "lpi_id_bits": 16, "list_registers": 4, "its": True}
    )
    assert (m.cpus, m.ram_size, m.list_registers) == (32, 4 << 30, 4)
    with pytest.raises(MachineConfigError, match=r"machine\.pcpu = 3: unknown key"):
        VirtMachine.from_config({"pcpu": 3})
    with pytest.raises(MachineConfigError, match=r"machine\.cpus = 0: must be 1\.\.512"):
        VirtMachine.from_config({"pcpus": 0})
    with pytest.raises(MachineConfigError, match="lpi_id_bits = 30"):
        VirtMachine(lpi_id_bits=30)
    with pytest.raises(MachineConfigError, match="its = 'yes'"):
        VirtMachine.from_config({"its": "yes"})
