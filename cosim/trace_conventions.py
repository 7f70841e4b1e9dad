"""The kinds and body keys of trace records that the inspection tools read, in one table.

Models write messages (the catalogue of transport/messages.py, body = the message's
fields) and events (``port.record(kind, body, why=)``). Every ``cosim trace`` tool
(stats, follow, check, export, the decoder) reads them through :data:`CONV`, so if a
model names a kind or a key differently, renaming it here is a one-line change.

The chain of one interrupt, as the tools follow it:

* bare metal: ``msi`` -> ``lpi`` (action set, on the host) -> ``irq`` (level up) ->
  ``ack`` (ICC_IAR1_EL1 returned it) -> ``eoi``;
* under Xen: ``msi`` -> ``lpi`` (set, on the host) -> ``inject`` (vgic_inject_irq) ->
  ``lr`` (Xen wrote ICH_LR<n>_EL2; maybe after a ``kick``/``exit``) -> ``entry`` ->
  ``ack`` -> ``eoi``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from transport.trace import TraceError, TraceReader


@dataclass(frozen=True, slots=True)
class TraceConventions:
    """Record kinds (``k_*``), body keys and special values the tools rely on."""

    # -- messages (transport/messages.py tags) ---------------------------------------------
    k_msi: str = "msi"
    k_mmio: str = "mmio"
    k_mem: str = "mem"
    k_exit: str = "exit"
    k_entry: str = "entry"
    k_kick: str = "kick"
    k_irq: str = "irq"
    k_reply: str = "reply"
    k_hello: str = "hello"
    k_bye: str = "bye"
    # -- events --------------------------------------------------------------------------------
    k_lpi: str = "lpi"  # physical ITS translation result, src = the host
    k_inject: str = "inject"  # Xen vgic_inject_irq
    k_lr: str = "lr"  # Xen wrote ICH_LR<n>_EL2
    k_ack: str = "ack"  # the guest's ICC_IAR1_EL1 returned an interrupt
    k_eoi: str = "eoi"
    k_warning: str = "warning"  # a kernel WARN
    k_fault: str = "fault"  # a fault injection, naming its rule
    k_its_cmd: str = "its-cmd"  # an event carrying a whole ITS command (optional)

    # -- keys ----------------------------------------------------------------------------------
    devid: str = "devid"  # msi, lpi, inject
    eventid: str = "eventid"  # msi, lpi, inject
    intid: str = "intid"  # lpi (physical LPI), ack, eoi
    processor: str = "processor"  # lpi: the target CPU (pCPU under Xen)
    action: str = "action"  # lpi: set | coalesced | dropped; fault: what the rule did
    reason: str = "reason"  # lpi: why it was dropped
    vcpu: str = "vcpu"  # inject, lr, kick, exit, entry
    virq: str = "virq"  # inject, lr: the virtual INTID
    host_lpi: str = "host_lpi"  # inject: the physical LPI behind the virq
    lr_index: str = "lr"  # lr: which list register
    lr_value: str = "value"  # lr: the ICH_LR<n>_EL2 value written
    cpu: str = "cpu"  # ack, eoi, irq, mmio, sysreg
    level: str = "level"  # irq
    ctx: str = "ctx"  # exit, entry: [lrs, hcr, vmcr, ap1r]
    reason_exit: str = "reason"  # exit: hvc | dabt | sysreg | wfi | irq
    agent: str = "agent"  # mem: hw | xen | guest
    addr: str = "addr"  # mem, mmio, exit(dabt)
    size: str = "size"
    write: str = "write"
    value: str = "value"  # mmio, exit(dabt): the value written or read
    data: str = "data"  # mem, reply: bytes
    rule: str = "rule"  # fault: the rule's name (also accepted on a dropped lpi)
    command: str = "command"  # its-cmd: the 32 command bytes

    # -- values --------------------------------------------------------------------------------
    action_set: str = "set"
    action_coalesced: str = "coalesced"
    action_dropped: str = "dropped"
    #: fault actions that make a message disappear (a dropped msi is then accounted for)
    fault_drop_actions: frozenset[str] = frozenset({"drop", "dropped", "lose", "lost"})
    #: agents that are not the guest: their memory accesses are "foreign"
    foreign_agents: frozenset[str] = frozenset({"hw", "xen"})
    #: ``why`` of a mem read of the ITS command queue: QEMU process_cmdq (the physical ITS),
    #: Xen vgic_its_handle_cmds (the virtual ITS)
    cmdq_read_whys: frozenset[str] = frozenset({"process_cmdq", "vgic_its_handle_cmds"})
    #: header key: bytes per ITT entry (GITS_TYPER.ITT_entry_size + 1); QEMU's is 12
    h_itt_entry_size: str = "itt_entry_size"


#: The conventions every tool reads.
CONV = TraceConventions()


def unreadable(path: str, exc: BaseException) -> str:
    """``PATH: what is wrong`` for a file that cannot be read (TraceError names the path)."""
    text = str(exc)
    return text if text.startswith(f"{path}:") else f"{path}: {text}"


def open_trace(prog: str, path: str, err: TextIO) -> TraceReader | None:
    """A reader of ``path`` with its header read and checked; None, after one line on ``err``
    (``PROG: PATH: what is wrong``), if the file cannot be read or is not a trace."""
    try:
        reader = TraceReader(path)
        reader.header  # noqa: B018 - reads and checks the header
    except (OSError, TraceError) as exc:
        print(f"{prog}: {unreadable(path, exc)}", file=err)
        return None
    return reader
