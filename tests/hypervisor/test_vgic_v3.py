"""Xen 4.17's vGICv3 distributor / redistributor emulation (hypervisor/vgic_v3.py).

Expected values are computed by hand from the register layouts of gicv3-architecture.md and
Xen's vgic-v3.c as described in xen-arm-vgic.md §3; console lines are copied from
reference/real-boot/xen-dom0-dt.log (Debian's Xen 4.17.7, no HAS_ITS, 4 vCPUs, 256 lines).
"""

from __future__ import annotations

from typing import Any

import pytest

from gic.port import run_sync
from gic.registers import GICD_TYPER, GICR_TYPER
from hypervisor.vgic import MmioResult
from hypervisor.vgic_v3 import HostItsInfo, RdistRegion, VgicV3
from hypervisor.vits import FakeHostIts
from transport.messages import GicContext

GICD = 0x0800_0000
GICR = 0x080A_0000
ITS = 0x0808_0000
QEMU_RDIST = RdistRegion(GICR, 0xF6_0000)  # xen-dom0-dt.log: region 0: 0x080a0000 - 0x09000000


def make(
    vcpus: int = 4, *, has_its: bool = True, domid: int = 0, nr_spis: int = 224, **kw: Any
) -> VgicV3:
    kw.setdefault("redist_regions", [QEMU_RDIST])
    return VgicV3(
        domid,
        vcpus=vcpus,
        has_its=has_its,
        nr_spis=nr_spis,
        intid_bits=16,
        vits_bases=[HostItsInfo(ITS, 16, 16)],
        lr_count=4,
        host=FakeHostIts(),
        **kw,
    )


def no_mem(req: object) -> object:
    raise AssertionError(f"unexpected guest memory access {req!r}")


def acc(
    g: VgicV3, vcpu: int, addr: int, size: int, write: bool, value: int = 0, reg: int = 0
) -> MmioResult:
    return run_sync(g.mmio(vcpu, addr, size, write, value, reg=reg), no_mem)


def rd(g: VgicV3, vcpu: int, addr: int, size: int = 4) -> int:
    res = acc(g, vcpu, addr, size, False)
    assert res.handled and not res.abort, res
    return res.value


def gicr(vcpu: int, off: int) -> int:
    return GICR + vcpu * 0x20000 + off


# ---------------------------------------------------------------------------- TYPER values


def test_gicd_typer_with_and_without_its() -> None:
    # CPUNumber = min(4, 8) - 1 = 3 -> 0x60; ITLinesNumber = 224/32 = 7; IDbits = 16 - 1 = 15.
    assert rd(make(), 0, GICD + 4) == 0x0060 | 7 | (1 << 17) | (15 << 19) == 0x007A0067
    assert rd(make(has_its=False), 0, GICD + 4) == 0x00780067
    typer = GICD_TYPER.decode(rd(make(), 0, GICD + 4))
    assert (typer["LPIS"], typer["IDbits"], typer["CPUNumber"]) == (1, 15, 3)


def test_domu_gets_ten_id_bits_and_no_its() -> None:
    g = make(2, domid=1, nr_spis=32, hardware_domain=False)
    assert rd(g, 0, GICD + 4) == (1 << 5) | 1 | (9 << 19) == 0x00480021
    assert rd(g, 1, gicr(1, 8), 8) & 1 == 0  # PLPIS clear: no vITS for a domU
    assert not acc(g, 0, ITS, 4, False).handled


def test_gicr_typer_values() -> None:
    g = make()
    assert rd(g, 0, gicr(0, 8), 8) == 0x1  # PLPIS, Processor_Number 0, affinity 0
    # vCPU 3: Aff0 = 3 (bits [39:32]), Processor_Number 3 (bits [23:8]), Last, PLPIS.
    assert rd(g, 0, gicr(3, 8), 8) == 0x0000_0003_0000_0311
    assert rd(make(has_its=False), 0, gicr(3, 8), 8) == 0x0000_0003_0000_0310
    # 32 vCPUs: vcpuid_to_vaffinity(17) = Aff1 1, Aff0 1; only vCPU 31 is Last.
    g32 = make(32)
    assert rd(g32, 5, gicr(17, 8), 8) == 0x0000_0101_0000_1101
    assert rd(g32, 5, gicr(31, 8), 8) == 0x0000_010F_0000_1F11
    assert GICR_TYPER.decode(rd(g32, 0, gicr(30, 8), 8))["Last"] == 0
    # DirectLPI (bit 3) and VLPIS (bit 1) are never set.
    assert all(rd(g32, 0, gicr(v, 8), 8) & 0b1010 == 0 for v in range(32))
    # A 32-bit read of the upper half returns the affinity word.
    assert rd(g, 0, gicr(3, 0xC), 4) == 0x3


def test_gicr_last_at_the_end_of_each_region_and_frames_beyond_the_vcpus() -> None:
    regions = [RdistRegion(GICR, 0x40000), RdistRegion(0x0900_0000, 0x40000)]
    g = make(4, redist_regions=regions)
    assert rd(g, 0, GICR + 0x20000 + 8, 8) == 0x0000_0001_0000_0111  # last of region 0
    assert rd(g, 0, 0x0900_0008, 8) == 0x0000_0002_0000_0201
    assert rd(g, 0, 0x0902_0008, 8) == 0x0000_0003_0000_0311
    # One vCPU, a big region: the frame of "vCPU 1" belongs to nobody -> abort, no line.
    g1 = make(1)
    res = acc(g1, 0, gicr(1, 8), 8, False)
    assert res.handled and res.abort and res.log == ()


# ---------------------------------------------------------------------------- LPI registers


def test_enable_lpis_is_write_once() -> None:
    g = make()
    assert rd(g, 0, gicr(0, 0)) == 0
    assert not acc(g, 0, gicr(0, 0), 4, True, 1).abort
    assert rd(g, 0, gicr(0, 0)) == 1
    acc(g, 0, gicr(0, 0), 4, True, 0)  # "LPIs can only be enabled once"
    assert rd(g, 0, gicr(0, 0)) == 1
    assert rd(g, 0, gicr(1, 0)) == 0  # per redistributor


def test_lpi_registers_are_raz_wi_without_its() -> None:
    g = make(has_its=False)
    acc(g, 0, gicr(0, 0), 4, True, 1)
    assert rd(g, 0, gicr(0, 0)) == 0
    assert rd(g, 0, gicr(0, 0x70), 8) == 0 and rd(g, 0, gicr(0, 0x78), 8) == 0
    assert not g.vgic.rdists_enabled


def test_xen_417_write_ignore_64_check_is_inverted() -> None:
    """write_ignore_64 in 4.17 tests vgic_reg64_check_access() without the '!' (fixed in
    2025): a 64-bit PROPBASER write on a domain without vITS is a bad width -> data abort."""
    g = make(has_its=False)
    res = acc(g, 0, gicr(0, 0x70), 8, True, 0x4010_0000, reg=1)
    assert res.abort
    assert [x.text for x in res.log] == [
        "d0v0: vGICR: bad write width 3 r1=0000000040100000 offset 0x000070"
    ]
    # GICR_TYPER is read-only: the same label, so any 32/64-bit write aborts even with ITS.
    assert acc(make(), 0, gicr(0, 8), 8, True, 0).abort
    assert not acc(make(), 0, gicr(0, 8), 1, True, 0).abort


def test_propbaser_frozen_after_the_first_enable_on_another_vcpu() -> None:
    g = make()
    prop_a = 0x4010_0000 | (3 << 7) | (1 << 10) | 15
    acc(g, 0, gicr(0, 0x70), 8, True, prop_a)
    assert rd(g, 2, gicr(3, 0x70), 8) == prop_a  # one value per domain
    acc(g, 1, gicr(1, 0), 4, True, 1)  # vCPU 1 enables LPIs
    assert g.vgic.rdists_enabled
    assert g.vgic.nr_lpis == 2**16 - 8192 == 57344  # latched from IDbits = 15
    acc(g, 0, gicr(0, 0x70), 8, True, 0x4050_0000 | (3 << 7) | 12)
    assert rd(g, 0, gicr(0, 0x70), 8) == prop_a
    acc(g, 2, gicr(2, 0), 4, True, 1)  # a later enable does not re-latch
    assert g.vgic.nr_lpis == 57344


@pytest.mark.parametrize(
    ("idbits", "nr_lpis"),
    [(15, 57344), (13, 8192), (12, 0), (0, 0), (31, 0)],  # BIT(32) wraps to 0 in unsigned int
)
def test_nr_lpis_latched_at_first_enable(idbits: int, nr_lpis: int) -> None:
    g = make()
    acc(g, 0, gicr(0, 0x70), 8, True, 0x4010_0000 | idbits)
    acc(g, 0, gicr(0, 0), 4, True, 1)
    assert g.vgic.nr_lpis == nr_lpis


def test_pendbaser_frozen_per_vcpu_and_ptz_reads_zero() -> None:
    g = make()
    acc(g, 0, gicr(0, 0x78), 8, True, 0x4020_0000 | (3 << 7) | (1 << 10) | (1 << 62))
    assert rd(g, 0, gicr(0, 0x78), 8) == 0x4020_0000 | (3 << 7) | (1 << 10)  # PTZ reads 0
    acc(g, 0, gicr(0, 0), 4, True, 1)
    acc(g, 0, gicr(0, 0x78), 8, True, 0x4090_0000)
    assert rd(g, 0, gicr(0, 0x78), 8) == 0x4020_0580  # frozen for vCPU 0
    acc(g, 0, gicr(1, 0x78), 8, True, 0x4030_0000 | (3 << 7))
    assert rd(g, 0, gicr(1, 0x78), 8) == 0x4030_0180  # vCPU 1 not enabled: still writable


def test_baser_sanitisation() -> None:
    g = make()
    # Outer Shareable -> Inner, inner nCnB -> RaWb, outer RaWaWb -> nC, RES0 bits dropped.
    raw = 0x4010_0000 | 15 | (2 << 10) | (0 << 7) | (7 << 56) | (1 << 63) | (1 << 55) | (1 << 5)
    acc(g, 0, gicr(0, 0x70), 8, True, raw)
    assert rd(g, 0, gicr(0, 0x70), 8) == 0x0100_0000_4010_058F
    # PENDBASER: inner nC -> RaWb, RES0 [15:12] dropped.
    acc(g, 0, gicr(2, 0x78), 8, True, 0x4020_F000 | (1 << 7) | (1 << 10))
    assert rd(g, 0, gicr(2, 0x78), 8) == 0x4020_0580
    # 32-bit halves update only their word (vreg_reg64_update).
    acc(g, 0, gicr(3, 0x78), 4, True, 0x4060_0000 | (3 << 7))
    acc(g, 0, gicr(3, 0x7C), 4, True, 0x1)
    assert rd(g, 0, gicr(3, 0x78), 8) == 0x0000_0001_4060_0180


# ---------------------------------------------------------------------------- distributor


def test_real_boot_console_lines_and_no_aborts() -> None:
    """Linux 6.1's gic_dist_config / gic_cpu_config on Debian's Xen 4.17.7 (no HAS_ITS):
    xen-dom0-dt.log lines 110-118 and 305-307, copied verbatim without '(XEN) '."""
    g = make(has_its=False)
    out: list[str] = []

    def run(vcpu: int, addr: int, size: int, write: bool, value: int = 0) -> None:
        res = acc(g, vcpu, addr, size, write, value)
        assert res.handled and not res.abort, (hex(addr), res)
        out.extend(x.text for x in res.log)

    run(0, GICD + 0xC, 4, False)  # GICD_TYPER2 probe: reserved in Xen's map
    for n in range(1, 8):
        run(0, GICD + 0x380 + 4 * n, 4, True, 0xFFFF_FFFF)  # ICACTIVER1..7
        run(0, GICD + 0x180 + 4 * n, 4, True, 0xFFFF_FFFF)  # ICENABLER1..7: silent
    for v in range(4):
        if v:
            g.vgic.set_vcpu_online(v, True)
        run(v, gicr(v, 0x10380), 4, True, 0xFFFF_FFFF)  # GICR_ICACTIVER0
        run(v, gicr(v, 0x10180), 4, True, 0xFFFF_FFFF)
    assert out == [
        "d0v0: vGICD: RAZ on reserved register offset 0x00000c",
        "d0v0: vGICD: unhandled word write 0x000000ffffffff to ICACTIVER4",
        "d0v0: vGICD: unhandled word write 0x000000ffffffff to ICACTIVER8",
        "d0v0: vGICD: unhandled word write 0x000000ffffffff to ICACTIVER12",
        "d0v0: vGICD: unhandled word write 0x000000ffffffff to ICACTIVER16",
        "d0v0: vGICD: unhandled word write 0x000000ffffffff to ICACTIVER20",
        "d0v0: vGICD: unhandled word write 0x000000ffffffff to ICACTIVER24",
        "d0v0: vGICD: unhandled word write 0x000000ffffffff to ICACTIVER28",
        "d0v0: vGICR: SGI: unhandled word write 0x000000ffffffff to ICACTIVER0",
        "d0v1: vGICR: SGI: unhandled word write 0x000000ffffffff to ICACTIVER0",
        "d0v2: vGICR: SGI: unhandled word write 0x000000ffffffff to ICACTIVER0",
        "d0v3: vGICR: SGI: unhandled word write 0x000000ffffffff to ICACTIVER0",
    ]


def test_bad_widths_and_unhandled_registers_abort_with_xen_lines() -> None:
    g = make()
    res = acc(g, 0, GICD + 0x0, 1, False, reg=3)
    assert res.abort
    assert [x.text for x in res.log] == ["d0v0: vGICD: bad read width 0 r3 offset 00000000"]
    res = acc(g, 1, GICD + 0x800, 4, False, reg=2)  # ITARGETSR: not in the vGICv3 map
    assert res.abort and [x.text for x in res.log] == [
        "d0v1: vGICD: unhandled read r2 offset 0x000800"
    ]
    res = acc(g, 0, GICD + 0x284, 4, True, 0x10, reg=4)  # ICPENDR1
    assert res.abort and [x.text for x in res.log] == [
        "d0v0: vGICD: unhandled word write 0x00000000000010 to ICPENDR4"
    ]
    res = acc(g, 0, gicr(0, 0x10000 + 0xC00), 4, True, 0)  # GICR_ICFGR0 is not writable
    assert res.abort and [x.text for x in res.log] == [
        "d0v0: vGICR: SGI: unhandled write r0 offset 0x000c00"
    ]
    # Write-only LPI registers read a fixed junk pattern.
    assert rd(g, 0, gicr(0, 0x40), 8) == 0xDEADBEAFDEADBEAF
    assert rd(g, 0, gicr(0, 0xC0)) == 1  # GICR_SYNCR: not busy
    assert rd(g, 0, GICD + 0xFFE8) == 0x30 and rd(g, 0, GICD + 8) == 0x34C


def test_unclaimed_addresses_and_malformed_requests() -> None:
    g = make()
    assert not acc(g, 0, 0x0900_0000, 4, False).handled
    res = run_sync(g.mmio(0, GICD, 3, False, 0), no_mem)
    assert not res.handled and "size" in res.error
    res = run_sync(g.mmio(9, GICD, 4, False, 0), no_mem)
    assert not res.handled and "vcpu" in res.error


def test_gicd_ctlr_only_enable_grp1a_changes() -> None:
    g = make()
    assert rd(g, 0, GICD) == 0x10  # ARE_NS
    acc(g, 0, GICD, 4, True, 0xFFFF_FFFF)
    assert rd(g, 0, GICD) == 0x12
    acc(g, 0, GICD, 4, True, 0)
    assert rd(g, 0, GICD) == 0x10


def test_irouter_retargets_spis_and_ignores_unknown_vcpus() -> None:
    g = make(32)
    irouter33 = GICD + 0x6000 + 8 * 33
    assert rd(g, 0, irouter33, 8) == 0
    acc(g, 0, irouter33, 8, True, 0x0101)  # Aff1 1, Aff0 1 = vCPU 17
    assert rd(g, 0, irouter33, 8) == 0x0101
    assert g.vgic.shared[0].vcpu[1] == 17 and g.vgic.shared[0].vcpu[0] == 0
    acc(g, 0, irouter33, 8, True, 0x0301)  # vCPU 49 does not exist: ignored
    assert rd(g, 0, irouter33, 8) == 0x0101
    acc(g, 0, irouter33, 8, True, 1 << 31)  # any-PE mode: vCPU 0
    assert rd(g, 0, irouter33, 8) == 0


def test_enable_priority_and_ispendr_inject_an_spi() -> None:
    g = make()
    acc(g, 0, GICD + 0x400 + 40, 1, True, 0x90)  # IPRIORITYR byte of SPI 40
    acc(g, 0, GICD + 0x104, 4, True, 1 << 8)  # ISENABLER1 bit 8 = SPI 40
    assert rd(g, 0, GICD + 0x104) == 1 << 8 and rd(g, 0, GICD + 0x184) == 1 << 8
    assert rd(g, 0, GICD + 0x428) == 0x90
    g.vgic.sync_from_lrs(0, GicContext(lrs=(0,) * 4, hcr=1))
    res = acc(g, 0, GICD + 0x204, 4, True, 1 << 8)  # ISPENDR1: injected (Xen 4.15+)
    assert not res.abort
    assert [(i.virq, i.vcpu, i.outcome, i.lr) for i in res.injections] == [(40, 0, "lr", 0)]
    # Group 1, priority 0x90, pending, vINTID 40: 0x5090_0000_0000_0028.
    assert g.vgic.vcpus[0].lrs[0] == 0x5090_0000_0000_0028
    acc(g, 0, GICD + 0x184, 4, True, 1 << 8)  # ICENABLER1
    assert rd(g, 0, GICD + 0x104) == 0
