"""MsiDevice: enable and mask registers reached through the host, rates, bursts, accounting."""

from __future__ import annotations

from typing import Any

import pytest

from hypervisor.baremetal import BareMetalHost
from hypervisor.devices import (
    MSI_CTRL,
    MSI_DEVID,
    MSI_MASK,
    MSI_NVEC,
    MSI_PBA,
    MSI_RAISED,
    MsiDevice,
    device_windows,
)
from hypervisor.machine import VirtMachine
from tests.hypervisor.bus_guest import RecordingScheduler, ScriptedGuest
from tests.hypervisor.test_baremetal import PEND, linux_lpi_setup
from transport.messages import Mmio, Msi

MS = 1_000_000
S = 1_000_000_000
WIN = 0x1000_0000  # in QEMU virt's PCIe MMIO window, where the real log's BARs are


def wr(off: int, value: int, size: int = 4) -> Mmio:
    return Mmio(cpu=0, addr=WIN + off, size=size, write=True, value=value)


def rd(off: int, size: int = 4) -> Mmio:
    return Mmio(cpu=0, addr=WIN + off, size=size, write=False)


def build(
    steps: list[Any], *, until: int, seed: int = 3, **dev: Any
) -> tuple[RecordingScheduler, BareMetalHost, ScriptedGuest, MsiDevice]:
    kw: dict[str, Any] = {"devid": 0x10, "events": 8, "msi_rate": 1000, "window_base": WIN}
    kw.update(dev)
    device = MsiDevice("nic", **kw)
    sched = RecordingScheduler(seed=seed)
    host = BareMetalHost(VirtMachine(), devices=device_windows([device]))
    guest = ScriptedGuest(steps)
    for c in (host, guest, device):
        sched.add(c)
    sched.start()
    sched.run(until=until)
    return sched, host, guest, device


def msis(sched: RecordingScheduler) -> list[tuple[int, int]]:
    return [(e.t, e.msg.eventid) for e in sched.envelopes if isinstance(e.msg, Msi)]


def test_disabled_device_raises_nothing() -> None:
    sched, host, _g, dev = build([], until=100 * MS)
    assert dev.raised == 0 and msis(sched) == []
    assert host.counters["msis_received"] == 0


def test_registers_through_the_host() -> None:
    steps = [
        rd(MSI_NVEC),
        rd(MSI_DEVID),
        rd(MSI_CTRL),
        wr(MSI_CTRL, 1),
        rd(MSI_CTRL),
        rd(MSI_MASK),
        rd(0x800),
    ]
    sched, _h, guest, dev = build(steps, until=0, events=40)
    assert guest.values() == [40, 0x10, 0, 0, 1, 0, 0]
    # forwarded as a request to the device and answered back
    fwd = [e for e in sched.envelopes if e.src == "host" and e.dst == "dev.nic"]
    assert len(fwd) == 7 and all(e.id for e in fwd)
    assert sched.kinds("bad-access") == [
        {
            "device": "dev.nic",
            "offset": 0x800,
            "size": 4,
            "write": False,
            "reason": "reserved offset",
        }
    ]
    assert dev.enabled


def test_fixed_rate_without_jitter_is_exact() -> None:
    """1000 MSIs/s with no jitter: one every 1 ms after the enable, vectors from the rng."""
    _s, host, _g, dev = build([wr(MSI_CTRL, 1)], until=10 * MS, jitter="none")
    assert dev.arrivals == 10 and dev.raised == 10
    assert host.counters["msis_received"] == 10
    assert sum(dev.raised_per_event) == 10


def test_disable_stops_and_enable_restarts() -> None:
    steps = [wr(MSI_CTRL, 1), 5 * MS + 1, wr(MSI_CTRL, 0), 10 * MS, wr(MSI_CTRL, 1)]
    sched, _h, _g, dev = build(steps, until=17 * MS + 2, jitter="none")
    times = [t for t, _e in msis(sched)]
    # 1..5 ms, then nothing while disabled (5..15 ms), then every 1 ms from the re-enable
    assert times == [1 * MS, 2 * MS, 3 * MS, 4 * MS, 5 * MS, 16 * MS + 1, 17 * MS + 1]
    assert [b["enabled"] for b in sched.kinds("msi-enable")] == [True, False, True]
    assert dev.raised == 7


def test_masked_vector_is_held_and_sent_on_unmask() -> None:
    steps = [
        wr(MSI_MASK, 0xFF),
        wr(MSI_CTRL, 1),
        3 * MS + 1,
        rd(MSI_PBA),
        wr(MSI_MASK, 0),
        rd(MSI_PBA),
        rd(MSI_RAISED),
    ]
    sched, host, guest, dev = build(steps, until=3 * MS + 1, jitter="none")
    pba, _unmask, pba_after, raised = guest.values()[2:]
    assert dev.held == 3 and pba != 0 and pba_after == 0
    held_vectors = [v for v in range(8) if pba >> v & 1]
    assert sorted(e for _t, e in msis(sched)) == held_vectors  # one message per pending vector
    assert raised == len(held_vectors) == dev.raised == host.counters["msis_received"]


def test_bursts_use_consecutive_vectors() -> None:
    sched, _h, _g, dev = build(
        [wr(MSI_CTRL, 1)], until=1 * MS, jitter="none", burst=3, burst_gap_ns=100
    )
    shots = msis(sched)
    assert [t for t, _e in shots] == [1 * MS]  # the rest of the burst follows 100 ns apart
    sched.run(until=1 * MS + 200)
    shots = msis(sched)
    assert [t for t, _e in shots] == [1 * MS, 1 * MS + 100, 1 * MS + 200]
    first = shots[0][1]
    assert [e for _t, e in shots] == [first, (first + 1) % 8, (first + 2) % 8]


def test_exponential_rate_is_about_right() -> None:
    """A Poisson process of 10000/s over 0.1 s: 1000 expected, sd 31.6 (5 sd bounds)."""
    _s, _h, _g, dev = build([wr(MSI_CTRL, 1)], until=S // 10, msi_rate=10_000, events=64)
    assert 842 <= dev.raised <= 1158
    assert min(dev.raised_per_event) > 0  # vectors drawn from all 64


def test_uniform_jitter_stays_in_its_band() -> None:
    sched, _h, _g, _d = build([wr(MSI_CTRL, 1)], until=50 * MS, jitter="uniform")
    times = [t for t, _e in msis(sched)]
    gaps = [b - a for a, b in zip([0, *times], times, strict=False)]
    assert gaps and all(500_000 <= g <= 1_500_000 for g in gaps)


def test_seed_decides_the_stream() -> None:
    a = build([wr(MSI_CTRL, 1)], until=20 * MS, seed=1)[3].raised_per_event
    b = build([wr(MSI_CTRL, 1)], until=20 * MS, seed=1)[3].raised_per_event
    c = build([wr(MSI_CTRL, 1)], until=20 * MS, seed=2)[3].raised_per_event
    assert a == b and a != c


def test_limit_caps_arrivals() -> None:
    _s, _h, _g, dev = build([wr(MSI_CTRL, 1)], until=S, msi_rate=10_000, limit=5)
    assert dev.arrivals == 5 and dev.raised == 5


def test_every_msi_accounted_for_with_a_linux_driver() -> None:
    """raised = set + coalesced + dropped; events 0..7 are mapped only for EventID 3."""
    steps = [*linux_lpi_setup(), wr(MSI_CTRL, 1), 20 * MS]
    _s, host, guest, dev = build(steps, until=20 * MS, events=8, msi_rate=2000)
    c = host.counters
    assert dev.raised == c["msis_received"] > 0
    assert c["msis_received"] == c["lpis_set"] + c["lpis_coalesced"] + c["lpis_dropped"]
    # EventID 3 is the only mapped one: its MSIs set (once) or coalesce with LPI 8195 pending
    assert c["lpis_set"] == (1 if dev.raised_per_event[3] else 0)
    assert c["lpis_coalesced"] == dev.raised_per_event[3] - c["lpis_set"]
    assert c["lpis_dropped"] == dev.raised - dev.raised_per_event[3]
    assert guest.ram.read(PEND + 0x400, 1) == (b"\x08" if dev.raised_per_event[3] else b"\x00")


def test_hostile_device_registers() -> None:
    steps = [
        Mmio(cpu=0, addr=WIN + MSI_CTRL, size=2, write=True, value=1),  # wrong size: WI
        wr(MSI_NVEC, 99),  # read-only
        wr(MSI_PBA, 0xFF),  # read-only
        Mmio(cpu=0, addr=WIN + 2, size=4, write=False),  # misaligned
        rd(MSI_NVEC),
    ]
    sched, _h, guest, dev = build(steps, until=0)
    assert guest.values() == [0, 0, 0, 0, 8]
    assert not dev.enabled
    reasons = [b["reason"] for b in sched.kinds("bad-access")]
    assert reasons == [
        "size must be 4, aligned",
        "read-only register",
        "read-only register",
        "size must be 4, aligned",
    ]


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"events": 0}, "events"),
        ({"msi_rate": -1}, "msi_rate"),
        ({"jitter": "gauss"}, "jitter"),
        ({"burst": 9}, "burst"),
        ({"window_base": WIN + 4}, "aligned"),
        ({"devid": 1 << 32}, "devid"),
    ],
)
def test_bad_device_parameters(kw: dict[str, Any], needle: str) -> None:
    args: dict[str, Any] = {"devid": 1, "events": 8, "window_base": WIN, **kw}
    with pytest.raises(ValueError, match=needle):
        MsiDevice("x", **args)


def test_overlapping_windows_refused() -> None:
    a = MsiDevice("a", devid=1, events=1, window_base=WIN)
    b = MsiDevice("b", devid=2, events=1, window_base=WIN)
    with pytest.raises(ValueError, match="overlap"):
        device_windows([a, b])
    assert a.name == "dev.a"
