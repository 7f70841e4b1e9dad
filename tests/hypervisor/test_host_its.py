"""Xen's host ITS and LPI code (hypervisor/host_its.py) on QEMU virt's physical GIC.

External truth: Xen 4.17 gic-v3-its.c / gic-v3-lpi.c as xen-arm-vgic.md §2 describes them
(1 MiB command queue, 64K pages tried first, host collection per CPU with MAPC cpu->cpu +
SYNC, blocks of 32 LPIs, property bytes GIC_PRI_IRQ | RES1 = 0xa2 and enabled at allocation,
events rounded up to a power of two >= 32, MAPTI to collection 0 + INV per event then SYNC,
-EBUSY on remap), QEMU's GITS_TYPER (16 DeviceID and EventID bits, 12-byte ITEs), and the
ITS command encodings of the GICv3 architecture (gic/its_commands.py).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gic import its_commands as cmds
from gic.gic import Gic
from gic.port import run_sync
from gic.registers import GICR_PENDBASER, GICR_PROPBASER, GITS_BASER, GITS_CBASER
from hypervisor.host_its import (
    DOMID_INVALID,
    INVALID_LPI,
    ITS_CMD_QUEUE_SZ,
    XEN_HEAP_BASE,
    XEN_HEAP_SIZE,
    HostIts,
)

DOORBELL = 0x0808_0000 + 0x10040
CPUS = 4


def booted(cpus: int = CPUS) -> tuple[Gic, HostIts, list[str]]:
    """gicv3_dist_init's host LPIs, gicv3_its_init, then per CPU: LPI tables, collection,
    EnableLPIs (the order of gicv3_init / gicv3_cpu_init)."""
    gic = Gic(cpus)
    lines: list[str] = []
    its = HostIts(gic, cpus, log=lines.append)
    its.gicv3_lpi_init_host_lpis(16)
    assert run_sync(its.gicv3_its_init(), its.heap.answer) == 0
    for cpu in range(cpus):
        assert run_sync(its.gicv3_lpi_init_rdist(cpu), its.heap.answer) == 0
        assert run_sync(its.gicv3_its_setup_collection(cpu), its.heap.answer) == 0
        assert run_sync(its.gicv3_enable_lpis(cpu), its.heap.answer) is True
    return gic, its, lines


def queue(its: HostIts, first: int, n: int) -> list[cmds.ItsCommand]:
    """Commands ``first`` .. ``first + n - 1`` of the host command queue (Xen's memory)."""
    raw = its.heap.ram.read(its.cmd_buf + 32 * first, 32 * n)
    return [cmds.decode(raw[i : i + 32]) for i in range(0, len(raw), 32)]


def run(its: HostIts, core: Any) -> Any:
    return run_sync(core, its.heap.answer)


def test_init_programs_xen_heap_tables_into_the_its() -> None:
    gic, its, lines = booted()
    assert lines == ["GICv3: using at most 57344 LPIs on the host."]
    assert (its.devid_bits, its.evid_bits, its.itte_size) == (16, 16, 12)
    cbaser = GITS_CBASER.decode(gic.its.cbaser)  # type: ignore[union-attr]
    # its_map_cbaser: Valid, RaWaWb (7) inner, SameAsInner outer, inner shareable, 256 x 4 KiB.
    assert (cbaser["Valid"], cbaser["InnerCache"], cbaser["OuterCache"]) == (1, 7, 0)
    assert (cbaser["Shareability"], cbaser["Size"]) == (1, ITS_CMD_QUEUE_SZ // 4096 - 1)
    assert its.cmd_buf % 0x10000 == 0 and its.heap.contains(its.cmd_buf, ITS_CMD_QUEUE_SZ)
    # its_map_baser: 2^16 devices x 8-byte DTEs = 512 KiB = 8 pages of 64 KiB; collections:
    # 4 CPUs x 8 bytes fit one 64 KiB page.
    dev = GITS_BASER.decode(gic.its.baser[0])  # type: ignore[union-attr]
    coll = GITS_BASER.decode(gic.its.baser[1])  # type: ignore[union-attr]
    assert (dev["Valid"], dev["Page_Size"], dev["Size"], dev["Type"]) == (1, 2, 7, 1)
    assert (coll["Valid"], coll["Page_Size"], coll["Size"], coll["Type"]) == (1, 2, 0, 4)
    assert gic.its.enabled  # type: ignore[union-attr]


def test_lpi_tables_live_in_xen_memory_with_ptz_and_enable_lpis() -> None:
    gic, its, _ = booted()
    prop = gic.redists[0].propbaser
    assert GICR_PROPBASER.get(prop, "IDbits") == 15  # fls(65536 - 1) - 1
    assert all(rd.propbaser == prop for rd in gic.redists)  # one table shared by all
    pend = {GICR_PENDBASER.decode(rd.pendbaser)["Physical_Address"] for rd in gic.redists}
    assert len(pend) == CPUS and all(p % 0x10000 == 0 for p in pend)
    assert all(XEN_HEAP_BASE <= p < XEN_HEAP_BASE + XEN_HEAP_SIZE for p in pend)
    assert all(rd.lpis_enabled for rd in gic.redists)
    # Every property byte is GIC_PRI_IRQ | LPI_PROP_RES1 and disabled until allocated.
    table = its.heap.ram.read(its.lpi_property, its.max_nr_host_lpis)
    assert set(table) == {0xA2}
    # gicv3_lpi_init_rdist refuses a redistributor that already has EnableLPIs set.
    assert run(its, its.gicv3_lpi_init_rdist(0)) == -16


def test_host_collections_are_mapc_cpu_to_cpu_then_sync() -> None:
    _, its, _ = booted()
    got = queue(its, 0, 2 * CPUS)
    want: list[cmds.ItsCommand] = []
    for cpu in range(CPUS):
        want += [cmds.Mapc(ICID=cpu, RDbase=cpu, V=1), cmds.Sync(RDbase=cpu)]
    assert got == want
    assert its.gic.its.creadr == its.gic.its.cwriter  # type: ignore[union-attr]


def test_map_guest_device_rounds_events_and_maps_every_event_to_collection_0() -> None:
    gic, its, _ = booted()
    n0 = its.commands_sent
    assert run(its, its.map_guest_device(0, DOORBELL, 0x10, 3)) == 0
    (dev,) = its.devices.values()
    assert dev.eventids == 32 and dev.host_lpi_blocks == [8192]
    assert dev.itt_addr % 256 == 0 and its.heap.contains(dev.itt_addr, 32 * 12)
    # MAPD (Size = bits - 1 = 4), then MAPTI + INV per event to ICID 0, then SYNC 0.
    got = queue(its, n0, 1 + 2 * 32 + 1)
    assert got[0] == cmds.Mapd(DeviceID=0x10, Size=4, ITT_addr=dev.itt_addr, V=1)
    for e in range(32):
        assert got[1 + 2 * e] == cmds.Mapti(DeviceID=0x10, EventID=e, pINTID=8192 + e, ICID=0)
        assert got[2 + 2 * e] == cmds.Inv(DeviceID=0x10, EventID=e)
    assert got[-1] == cmds.Sync(RDbase=0)
    assert its.commands_sent == n0 + 66
    # The 32 host LPIs are enabled for good; the 33rd is not.
    props = its.heap.ram.read(its.lpi_property, 33)
    assert set(props[:32]) == {0xA3} and props[32] == 0xA2
    # Entries are tagged with dom0 and INVALID_LPI until the guest's MAPTI.
    assert all(
        (h.dom_id, h.virt_lpi) == (0, INVALID_LPI)
        for h in (its.gic_get_host_lpi(8192 + i) for i in range(32))
        if h is not None
    )


def test_event_counts_and_errors() -> None:
    _, its, lines = booted()
    assert run(its, its.map_guest_device(0, DOORBELL, 0x20, 33)) == 0  # -> 64 events
    assert its.devices[(DOORBELL, 0x20)].host_lpi_blocks == [8192, 8224]
    assert run(its, its.map_guest_device(0, DOORBELL, 0x21, 1 << 16)) == -22  # >= 2^evid_bits
    assert run(its, its.map_guest_device(0, DOORBELL, 1 << 16, 32)) == -22  # DeviceID too wide
    assert run(its, its.map_guest_device(0, 0x1234, 0x21, 32)) == -2  # no ITS at that doorbell
    assert run(its, its.map_guest_device(0, DOORBELL, 0x20, 32)) == -16  # already mapped
    assert lines[-1] == "d0 tried to remap guest ITS device 0x20 to host device 0x20"
    assert run(its, its.unmap_guest_device(0, DOORBELL, 0x99, 32)) == -2  # never mapped


def test_assign_remove_and_unmap() -> None:
    _, its, _ = booted()
    run(its, its.map_guest_device(0, DOORBELL, 0x10, 32))
    assert run(its, its.assign_guest_event(0, DOORBELL, 0x10, 5, 8300)) == 0
    entry = its.gic_get_host_lpi(8197)
    assert entry is not None and (entry.dom_id, entry.virt_lpi) == (0, 8300)
    assert run(its, its.assign_guest_event(0, DOORBELL, 0x10, 32, 8300)) == -22  # no event 32
    assert run(its, its.assign_guest_event(0, DOORBELL, 0x11, 0, 8300)) == -22  # no device
    assert run(its, its.remove_guest_event(0, DOORBELL, 0x10, 5)) == 0
    assert its.gic_get_host_lpi(8197).virt_lpi == INVALID_LPI  # type: ignore[union-attr]
    n0 = its.commands_sent
    assert run(its, its.unmap_guest_device(0, DOORBELL, 0x10, 32)) == 0
    assert queue(its, n0, 1) == [cmds.Mapd(DeviceID=0x10, Size=0, ITT_addr=0, V=0)]
    assert its.devices == {}
    assert its.gic_get_host_lpi(8192).dom_id == DOMID_INVALID  # type: ignore[union-attr]
    # gicv3_free_host_lpi_block compares next_free_lpi (an index: 32) with first_lpi (an
    # INTID: 8192), so the hint does not move back and the next block is the following one.
    run(its, its.map_guest_device(0, DOORBELL, 0x12, 32))
    assert its.devices[(DOORBELL, 0x12)].host_lpi_blocks == [8224]


def test_an_msi_of_a_mapped_device_reaches_pcpu_0() -> None:
    gic, its, _ = booted()
    run(its, its.map_guest_device(0, DOORBELL, 0x10, 32))
    for cpu in range(CPUS):  # gicv3_cpu_init's CPU interface: PMR 0xff, Group 1 on
        run(its, gic.sysreg(cpu, "ICC_PMR_EL1", True, 0xFF))
        run(its, gic.sysreg(cpu, "ICC_IGRPEN1_EL1", True, 1))
    run(its, gic.msi(0x10, 7))
    assert gic.irq_lines() == {0: True, 1: False, 2: False, 3: False}
    # Acknowledge: physical LPI 8192 + 7; the pending bit lives in pCPU 0's table in Xen memory.
    assert run(its, gic.sysreg(0, "ICC_IAR1_EL1", False)) == 8199
    assert its.heap.reads > 0 and its.heap.writes > 0


def test_gic_get_host_lpi_bounds() -> None:
    _, its, _ = booted()
    assert its.gic_get_host_lpi(8191) is None
    assert its.gic_get_host_lpi(65536) is None
    assert its.gic_get_host_lpi(8192) is None  # no block allocated yet
    assert its.gic_get_host_lpi(-1) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 7)), max_size=20))
def test_blocks_never_overlap_under_map_unmap(ops: list[tuple[bool, int]]) -> None:
    """Any sequence of maps and unmaps: live devices own disjoint 32-LPI blocks of dom0."""
    _, its, _ = booted(cpus=1)
    for mapping, dev in ops:
        if mapping:
            run(its, its.map_guest_device(0, DOORBELL, dev, 32 * (dev % 3 + 1)))
        else:
            run(its, its.unmap_guest_device(0, DOORBELL, dev, 32))
        blocks = [b for d in its.devices.values() for b in d.host_lpi_blocks]
        assert len(blocks) == len(set(blocks))
        for first in blocks:
            assert all(its.gic_get_host_lpi(first + i).dom_id == 0 for i in range(32))  # type: ignore[union-attr]
