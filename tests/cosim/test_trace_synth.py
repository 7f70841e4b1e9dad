"""Synthetic traces for the ``cosim trace`` tests: interrupt chains whose times are chosen here.

Not a test module itself (it holds no tests); the other test_trace_* modules import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gic.registers import encode_ich_lr
from transport.messages import Entry, Envelope, Exit, GicContext, Irq, Kick, Mem, Mmio, Msi, Reply
from transport.trace import TraceWriter

MMIO_MAP = [
    {"frame": "GICD", "base": 0x08000000, "size": 0x10000},
    {"frame": "GITS", "base": 0x08080000, "size": 0x20000},
    {"frame": "GICR", "base": 0x080A0000, "size": 0x80000},
]
GITS_BASE = 0x08080000
GICR_BASE = 0x080A0000
GICR_STRIDE = 0x20000
HEADER: dict[str, Any] = {"scenario": "synthetic", "mmio_map": MMIO_MAP}

ICH_HCR_EN = 1
ICH_HCR_UIE = 1 << 1


def lr_value(virq: int) -> int:
    """A pending (State = 1) Group 1 list register for ``virq``."""
    return encode_ich_lr(vINTID=virq, State=1, Group=1, Priority=0xA0)


class Synth:
    """Writes records through TraceWriter; ``t`` is simulated ns and only moves forward."""

    def __init__(self, path: Path, header: dict[str, Any] | None = None, **kw: Any) -> None:
        self.w = TraceWriter(str(path), HEADER if header is None else header, **kw)
        self.next_id = 100

    def close(self) -> None:
        self.w.close()

    def env(self, t: int, src: str, dst: str, msg: Any, **kw: Any) -> int:
        return self.w.envelope(Envelope(t=t, src=src, dst=dst, msg=msg, **kw))

    def event(self, t: int, src: str, kind: str, body: dict[str, Any], why: str = "") -> int:
        return self.w.record(t=t, src=src, dst="", kind=kind, body=body, why=why)

    def request_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- building blocks -------------------------------------------------------------------

    def msi(self, t: int, devid: int, eventid: int, src: str = "dev0") -> int:
        return self.env(t, src, "host", Msi(devid=devid, eventid=eventid), why="msi_device_raise")

    def lpi(
        self, t: int, devid: int, eventid: int, intid: int, cpu: int, action: str = "set", **kw: Any
    ) -> int:
        body = {
            "devid": devid,
            "eventid": eventid,
            "intid": intid,
            "processor": cpu,
            "action": action,
            "reason": kw.pop("reason", ""),
            **kw,
        }
        return self.event(t, "host", "lpi", body, why="gicv3_its_translation_write")

    def mmio_write(self, t: int, addr: int, value: int, cpu: int = 0, why: str = "") -> None:
        rid = self.request_id()
        self.env(
            t,
            "guest",
            "host",
            Mmio(cpu=cpu, addr=addr, size=8, write=True, value=value),
            id=rid,
            why=why,
        )
        self.env(t + 10, "host", "guest", Reply(), reply_to=rid)

    def mem(
        self, t: int, agent: str, addr: int, size: int, *, write: bool = False, why: str = ""
    ) -> None:
        rid = self.request_id()
        self.env(
            t, "host", "guest", Mem(agent=agent, addr=addr, size=size, write=write), id=rid, why=why
        )
        self.env(t + 5, "guest", "host", Reply(data=b"" if write else bytes(size)), reply_to=rid)

    def cmdq_read(self, t: int, addr: int, command: bytes, why: str = "process_cmdq") -> None:
        rid = self.request_id()
        self.env(
            t, "host", "guest", Mem(agent="hw", addr=addr, size=32, write=False), id=rid, why=why
        )
        self.env(t + 5, "guest", "host", Reply(data=command), reply_to=rid)

    # -- whole interrupts ------------------------------------------------------------------

    def bare_chain(
        self,
        t: int,
        *,
        devid: int,
        eventid: int,
        intid: int,
        cpu: int,
        d_inject: int,
        d_ack: int,
        d_eoi: int,
    ) -> int:
        """msi -> lpi(set) -> irq up -> ack -> eoi -> irq down; returns the EOI's time."""
        self.msi(t, devid, eventid)
        t1 = t + d_inject
        self.lpi(t1, devid, eventid, intid, cpu)
        self.env(t1 + 1, "host", "guest", Irq(cpu=cpu, level=True), why="gicv3_cpuif_update")
        t2 = t1 + d_ack
        self.event(t2, "guest", "ack", {"cpu": cpu, "intid": intid}, why="gic_handle_irq")
        self.env(t2 + 1, "host", "guest", Irq(cpu=cpu, level=False), why="gicv3_cpuif_update")
        t3 = t2 + d_eoi
        self.event(t3, "guest", "eoi", {"cpu": cpu, "intid": intid}, why="gic_eoi_irq")
        return t3

    def xen_chain(
        self,
        t: int,
        *,
        devid: int,
        eventid: int,
        host_lpi: int,
        pcpu: int,
        vcpu: int,
        virq: int,
        lr: int = 0,
        d_lpi: int = 100,
        d_inject: int,
        d_ack: int,
        d_eoi: int,
        kick: bool = True,
        other_lrs: int = 0,
        uie: bool = False,
    ) -> int:
        """msi -> lpi(set) -> inject -> kick -> exit -> lr -> entry -> ack -> eoi.

        ``d_inject`` is MSI to inject; the entry carries ``other_lrs + 1`` valid LRs and
        UIE if ``uie``. Returns the EOI's time.
        """
        self.msi(t, devid, eventid)
        self.lpi(t + d_lpi, devid, eventid, host_lpi, pcpu)
        ti = t + d_inject
        self.event(
            ti,
            "xen",
            "inject",
            {"vcpu": vcpu, "virq": virq, "devid": devid, "eventid": eventid, "host_lpi": host_lpi},
            why="vgic_inject_irq",
        )
        if kick:
            self.env(ti + 1, "xen", "guest", Kick(vcpu=vcpu), why="vcpu_kick")
            self.env(ti + 2, "guest", "xen", Exit(vcpu=vcpu, reason="irq"), why="do_trap_irq")
        value = lr_value(virq)
        self.event(
            ti + 3, "xen", "lr", {"vcpu": vcpu, "lr": lr, "value": value, "virq": virq},
            why="gic_set_lr",
        )  # fmt: skip
        lrs = tuple([value] + [lr_value(virq + 1 + i) for i in range(other_lrs)] + [0])
        hcr = ICH_HCR_EN | (ICH_HCR_UIE if uie else 0)
        self.env(
            ti + 4,
            "xen",
            "guest",
            Entry(vcpu=vcpu, ctx=GicContext(lrs=lrs, hcr=hcr)),
            why="leave_hypervisor_to_guest",
        )
        ta = ti + d_ack
        self.event(ta, "guest", "ack", {"cpu": vcpu, "intid": virq}, why="gic_handle_irq")
        te = ta + d_eoi
        self.event(te, "guest", "eoi", {"cpu": vcpu, "intid": virq}, why="gic_eoi_irq")
        return te


def write_bare(path: Path, n: int, **kw: Any) -> None:
    """``n`` bare-metal interrupts, one after another, with fixed deltas (40/300/1000 ns)."""
    s = Synth(path, **kw)
    t = 1000
    for i in range(n):
        t = s.bare_chain(
            t, devid=0x10, eventid=i % 32, intid=8192 + i % 32, cpu=i % 4,
            d_inject=40, d_ack=300, d_eoi=1000,
        ) + 500  # fmt: skip
    s.close()
