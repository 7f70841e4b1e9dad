"""Device models that raise MSIs: a PCIe function writing EventIDs to the ITS doorbell.

A :class:`MsiDevice` is a component named ``dev.<name>``. It raises MSIs at ``msi_rate`` per
simulated second while its driver has enabled them, as an ``Msi(devid, eventid)`` message to
the host (the write to GITS_TRANSLATER; the bus supplies the DeviceID, so the host checks it,
see BareMetalHost). Its driver reaches the enable registers through the host, which forwards
MMIO in the device's register window as ``Mmio`` requests.

Register window (32-bit registers, little endian; modelled on the PCI MSI capability's
Message Control "MSI Enable" bit and per-vector Mask Bits, and MSI-X's Pending Bit Array):

======  ==========  =====================================================================
offset  name        meaning
======  ==========  =====================================================================
0x000   MSI_CTRL    bit 0 MSI Enable (RW). While 0 the function sends nothing.
0x004   MSI_NVEC    number of event vectors (RO)
0x008   MSI_DEVID   the DeviceID the bus presents with this function's writes (RO)
0x00C   MSI_RAISED  MSIs sent so far, low 32 bits (RO)
0x100+  MSI_MASK    one mask bit per vector, 32 vectors per word (RW): a masked vector's
                    message is held, its pending bit set, and sent when it is unmasked
                    (PCI "Per-vector Masking" / MSI-X Pending Bit semantics)
0x200+  MSI_PBA     one pending bit per vector, 32 per word (RO)
======  ==========  =====================================================================

Any other offset, or a size other than 4, is RAZ/WI and recorded as ``bad-access``.

Arrivals. While enabled, message arrivals form a process of rate ``msi_rate`` /s:
``jitter="exponential"`` (default) draws each gap from ``port.rng.expovariate`` (a Poisson
process); ``jitter="uniform"`` draws it uniformly in [0.5, 1.5] x the mean gap;
``jitter="none"`` uses the mean gap exactly. Gaps are rounded to whole ns (at least 1).
Each arrival raises ``burst`` MSIs ``burst_gap_ns`` apart on consecutive vectors starting
at a vector drawn uniformly from ``port.rng``. ``limit`` caps the number of arrivals.
Disabling (MSI Enable 0) cancels the pending arrival; enabling starts a fresh one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from transport.messages import Envelope, Mmio, Msi, Reply
from transport.port import HostPort

Jitter = Literal["exponential", "uniform", "none"]

MSI_CTRL = 0x000
MSI_NVEC = 0x004
MSI_DEVID = 0x008
MSI_RAISED = 0x00C
MSI_MASK = 0x100
MSI_PBA = 0x200
MSI_CTRL_ENABLE = 1 << 0
MSI_WINDOW_SIZE = 0x1000
MAX_VECTORS = 2048  # MSI-X Table Size limit; one 4 KiB window holds 2048 mask + pending bits

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class DeviceWindow:
    """A device's register window as the host routes it: component, base, size, DeviceID."""

    component: str
    base: int
    size: int
    devid: int

    def contains(self, addr: int, size: int = 1) -> bool:
        return self.base <= addr and addr + size <= self.base + self.size


class MsiDevice:
    """A PCIe function with ``events`` MSI vectors raising them at ``msi_rate`` per second."""

    def __init__(
        self,
        name: str,
        *,
        devid: int,
        events: int,
        msi_rate: float = 0.0,
        window_base: int,
        host: str = "host",
        jitter: Jitter = "exponential",
        burst: int = 1,
        burst_gap_ns: int = 0,
        limit: int | None = None,
        enabled: bool = False,
        window_size: int = MSI_WINDOW_SIZE,
    ) -> None:
        if not isinstance(devid, int) or not 0 <= devid < 1 << 32:
            raise ValueError(f"device {name}: devid {devid!r} must be 0..2^32-1")
        if not isinstance(events, int) or not 1 <= events <= MAX_VECTORS:
            raise ValueError(f"device {name}: events {events!r} must be 1..{MAX_VECTORS}")
        if not isinstance(msi_rate, int | float) or msi_rate < 0:
            raise ValueError(f"device {name}: msi_rate {msi_rate!r} must be >= 0 per second")
        if jitter not in ("exponential", "uniform", "none"):
            raise ValueError(
                f"device {name}: jitter {jitter!r} must be exponential, uniform or none"
            )
        if not isinstance(burst, int) or not 1 <= burst <= events:
            raise ValueError(f"device {name}: burst {burst!r} must be 1..events ({events})")
        if burst_gap_ns < 0 or (limit is not None and limit < 0):
            raise ValueError(f"device {name}: burst_gap_ns and limit must be >= 0")
        if window_base % MSI_WINDOW_SIZE or window_size < MSI_WINDOW_SIZE:
            raise ValueError(
                f"device {name}: window {window_base:#x}+{window_size:#x} must be 4 KiB aligned"
            )
        self.name = name if name.startswith("dev.") else f"dev.{name}"
        self.devid = devid
        self.events = events
        self.msi_rate = float(msi_rate)
        self.host = host
        self.jitter = jitter
        self.burst = burst
        self.burst_gap_ns = burst_gap_ns
        self.limit = limit
        self.window = DeviceWindow(self.name, window_base, window_size, devid)
        self.enabled = enabled
        self.mask = [False] * events
        self.pba = [False] * events
        self.raised_per_event = [0] * events
        self.held = 0  # arrivals on a masked vector (set the pending bit instead)
        self.arrivals = 0
        self._generation = 0

    @property
    def raised(self) -> int:
        """MSIs sent to the ITS doorbell."""
        return sum(self.raised_per_event)

    def counters(self) -> dict[str, Any]:
        return {
            "devid": self.devid,
            "raised": self.raised,
            "held": self.held,
            "arrivals": self.arrivals,
            "raised_per_event": list(self.raised_per_event),
        }

    # -- component ----------------------------------------------------------------------------

    def start(self, port: HostPort) -> None:
        if self.enabled:
            self._arm(port)

    def timer(self, token: Any, port: HostPort) -> None:
        kind, generation, *rest = token
        if generation != self._generation or not self.enabled:
            return  # cancelled by a disable
        if kind == "arrival":
            self.arrivals += 1
            first = port.rng.randrange(self.events)
            for i in range(self.burst):
                vec = (first + i) % self.events
                if i == 0 or self.burst_gap_ns == 0:
                    self._event(vec, port)
                else:
                    port.call_later(self.burst_gap_ns * i, ("burst", generation, vec))
            self._arm(port)
        elif kind == "burst":
            self._event(rest[0], port)

    def receive(self, env: Envelope, port: HostPort) -> None:
        msg = env.msg
        if isinstance(msg, Mmio):
            port.reply(env, Reply(value=self._mmio(msg, port)), why="msi_device_mmio")
        elif isinstance(msg, Reply):
            return
        else:
            port.record("bad-message", {"kind": msg.kind, "src": env.src}, why="msi_device")
            if env.id:
                port.reply(env, Reply(status=-1, error=f"{self.name} does not accept {msg.kind}"))

    # -- behaviour ---------------------------------------------------------------------------

    def _arm(self, port: HostPort) -> None:
        if self.msi_rate <= 0 or (self.limit is not None and self.arrivals >= self.limit):
            return
        port.call_later(self._gap(port), ("arrival", self._generation))

    def _gap(self, port: HostPort) -> int:
        mean = NS_PER_S / self.msi_rate
        if self.jitter == "exponential":
            gap = port.rng.expovariate(1.0) * mean
        elif self.jitter == "uniform":
            gap = port.rng.uniform(0.5, 1.5) * mean
        else:
            gap = mean
        return max(1, round(gap))

    def _event(self, vec: int, port: HostPort) -> None:
        if self.mask[vec]:
            if not self.pba[vec]:
                self.pba[vec] = True
            self.held += 1
            return
        self._send(vec, port)

    def _send(self, vec: int, port: HostPort) -> None:
        self.raised_per_event[vec] += 1
        port.send(self.host, Msi(devid=self.devid, eventid=vec), why="msi_device_raise")

    def _set_enable(self, on: bool, port: HostPort) -> None:
        if on == self.enabled:
            return
        self.enabled = on
        self._generation += 1
        port.record("msi-enable", {"device": self.name, "enabled": on}, why="msi_device_mmio")
        if on:
            self._flush_pending(range(self.events), port)
            self._arm(port)

    def _flush_pending(self, vecs: Sequence[int] | range, port: HostPort) -> None:
        """Send the held message of every unmasked vector with its pending bit set."""
        if not self.enabled:
            return
        for vec in vecs:
            if self.pba[vec] and not self.mask[vec]:
                self.pba[vec] = False
                self._send(vec, port)

    def _words(self) -> int:
        return (self.events + 31) // 32

    def _mmio(self, msg: Mmio, port: HostPort) -> int:
        off = msg.addr - self.window.base
        ok_size = msg.size == 4 and off % 4 == 0
        nwords = self._words()
        if not ok_size or not 0 <= off < self.window.size:
            return self._bad(
                msg, off, "size must be 4, aligned" if not ok_size else "outside window", port
            )
        if off == MSI_CTRL:
            if msg.write:
                self._set_enable(bool(msg.value & MSI_CTRL_ENABLE), port)
                return 0
            return MSI_CTRL_ENABLE if self.enabled else 0
        if off in (MSI_NVEC, MSI_DEVID, MSI_RAISED):
            if msg.write:
                return self._bad(msg, off, "read-only register", port)
            return {
                MSI_NVEC: self.events,
                MSI_DEVID: self.devid,
                MSI_RAISED: self.raised & 0xFFFF_FFFF,
            }[off]
        for base, bits in ((MSI_MASK, self.mask), (MSI_PBA, self.pba)):
            if base <= off < base + 4 * nwords:
                word = (off - base) // 4
                vecs = range(word * 32, min(self.events, word * 32 + 32))
                if not msg.write:
                    return sum(1 << (v - word * 32) for v in vecs if bits[v])
                if bits is self.pba:
                    return self._bad(msg, off, "read-only register", port)
                for v in vecs:
                    self.mask[v] = bool(msg.value >> (v - word * 32) & 1)
                self._flush_pending(vecs, port)
                return 0
        return self._bad(msg, off, "reserved offset", port)

    def _bad(self, msg: Mmio, off: int, reason: str, port: HostPort) -> int:
        port.record(
            "bad-access",
            {
                "device": self.name,
                "offset": off,
                "size": msg.size,
                "write": msg.write,
                "reason": reason,
            },
            why="msi_device_mmio",
        )
        return 0


def device_windows(devices: Sequence[MsiDevice]) -> list[DeviceWindow]:
    """The windows of ``devices`` for BareMetalHost(devices=...), checked for overlap."""
    out = sorted((d.window for d in devices), key=lambda w: w.base)
    for a, b in zip(out, out[1:], strict=False):
        if a.base + a.size > b.base:
            raise ValueError(f"device windows of {a.component} and {b.component} overlap")
    return out
