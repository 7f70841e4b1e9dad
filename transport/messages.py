"""The message catalogue of DESIGN.md as small frozen types.

Two protocols share one framing: the bus (bare metal: mmio, sysreg, smccc, irq,
mem) and virtualisation (Xen: exit, entry, kick, mem). Both have msi, hello,
bye, error, and the generic reply that answers a request. Every message travels
inside an :class:`Envelope` carrying the sender's simulated time, the endpoints,
the request/reply ids and ``why``: the modelled kernel or Xen function that
caused it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

PROTOCOL_VERSION = 1

#: Who touched guest RAM: the GIC hardware, Xen's software, or the guest itself.
Agent = Literal["hw", "xen", "guest"]
AGENTS: tuple[str, ...] = ("hw", "xen", "guest")


class Message(msgspec.Struct, frozen=True, tag_field="kind", forbid_unknown_fields=True):
    """Base of every message; ``kind`` is the tag on the wire."""

    @property
    def kind(self) -> str:
        return type(self).__struct_config__.tag  # type: ignore[return-value]


# --- both protocols -------------------------------------------------------


class Hello(Message, tag="hello"):
    """Opens a link: protocol version, the sender's role and the scenario's hash."""

    role: str
    version: int = PROTOCOL_VERSION
    scenario_hash: str = ""
    secret: str = ""


class Bye(Message, tag="bye"):
    reason: str = ""


class Error(Message, tag="error"):
    """A peer refused something; the text is one line naming what is wrong."""

    code: str
    text: str


class Reply(Message, tag="reply"):
    """Answer to a request (matched by the envelope's ``reply_to``)."""

    value: int = 0
    data: bytes = b""
    regs: tuple[int, ...] = ()
    status: int = 0
    error: str = ""


class Msi(Message, tag="msi"):
    """A device model wrote EventID to GITS_TRANSLATER; the bus supplies the DeviceID."""

    devid: int
    eventid: int
    doorbell: int = 0


# --- bus (bare metal) -------------------------------------------------------


class Mmio(Message, tag="mmio"):
    """A CPU's load or store to a device register."""

    cpu: int
    addr: int
    size: int
    write: bool
    value: int = 0


class Sysreg(Message, tag="sysreg"):
    """An ICC_* system register access to the physical CPU interface."""

    cpu: int
    reg: str
    write: bool
    value: int = 0


class Smccc(Message, tag="smccc"):
    """An SMC/HVC #0 call (PSCI): function id in x0, arguments x1..x7."""

    cpu: int
    fid: int
    args: tuple[int, ...] = ()
    conduit: Literal["smc", "hvc"] = "hvc"


class Irq(Message, tag="irq"):
    """The interrupt line of one CPU going up (level True) or down."""

    cpu: int
    level: bool


class Mem(Message, tag="mem"):
    """Something outside the guest reading or writing guest RAM, as one range.

    ``agent`` is who: ``hw`` (the GIC hardware) or ``xen`` (Xen's software);
    the envelope's ``why`` names the modelled function. A read is answered with
    a :class:`Reply` whose ``data`` holds ``size`` bytes.
    """

    agent: Agent
    addr: int
    size: int
    write: bool
    data: bytes = b""


# --- virtualisation (Xen) ---------------------------------------------------


class GicContext(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """A vCPU's virtual CPU interface state as it crosses an exit or an entry."""

    lrs: tuple[int, ...] = ()
    hcr: int = 0
    vmcr: int = 0
    ap1r: tuple[int, ...] = ()


ExitReason = Literal["hvc", "dabt", "sysreg", "wfi", "irq"]


class Exit(Message, tag="exit"):
    """A vCPU left guest mode.

    hvc: ``imm`` (0xEA1 Xen hypercall, 0 SMCCC), ``x16`` and ``regs`` = x0..x7;
    dabt: ``addr``, ``size``, ``write``, ``value``; sysreg: ``reg``, ``write``,
    ``value``; wfi; irq (the pCPU took an interrupt).
    """

    vcpu: int
    reason: ExitReason
    imm: int = 0
    x16: int = 0
    regs: tuple[int, ...] = ()
    addr: int = 0
    size: int = 0
    write: bool = False
    value: int = 0
    reg: str = ""
    ctx: GicContext = GicContext()


class Entry(Message, tag="entry"):
    """Xen resumes a vCPU: the result registers and the context Xen wrote."""

    vcpu: int
    regs: tuple[int, ...] = ()
    value: int = 0
    ctx: GicContext = GicContext()


class Kick(Message, tag="kick"):
    """Ask a running vCPU to exit (an SGI to its pCPU); crossing an exit is harmless."""

    vcpu: int


AnyMessage = (
    Hello | Bye | Error | Reply | Msi | Mmio | Sysreg | Smccc | Irq | Mem | Exit | Entry | Kick
)
MESSAGE_TYPES: tuple[type[Message], ...] = (
    Hello, Bye, Error, Reply, Msi, Mmio, Sysreg, Smccc, Irq, Mem, Exit, Entry, Kick,
)  # fmt: skip
KINDS: tuple[str, ...] = tuple(t.__struct_config__.tag for t in MESSAGE_TYPES)  # type: ignore[misc]
BUS_KINDS = frozenset({"mmio", "sysreg", "smccc", "irq", "mem"})
VIRT_KINDS = frozenset({"exit", "entry", "kick", "mem"})


class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A message in flight: sender's simulated time (ns), endpoints, ids, cause."""

    t: int
    src: str
    dst: str
    msg: AnyMessage
    id: int = 0
    reply_to: int = 0
    why: str = ""

    @property
    def kind(self) -> str:
        return self.msg.kind
