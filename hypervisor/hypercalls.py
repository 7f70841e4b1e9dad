"""Xen 4.17's hypercalls on Arm as a Linux dom0 reaches them (xen/arch/arm/traps.c
``do_trap_hypercall`` and the handlers it dispatches to).

ABI (xen/include/public/arch-arm.h): ``HVC #0xEA1``, the number in x16, arguments in x0..x4,
the result in x0 as a sign-extended ``long`` (negative ``XEN_E*``). Release builds (Debian's
4.17 is ``debug=n``) do not clobber the other argument registers. Unknown numbers, and numbers
with no Arm entry in the dispatch table, return ``-ENOSYS``; so do unknown sub-ops, except
where Xen answers otherwise (``vcpu_op`` answers ``-EINVAL`` for everything but its two Arm
sub-ops, ``do_arm_vcpu_op``; ``xen_version`` ``XENVER_get_features`` answers ``-EINVAL`` for
a submap other than 0).

Guest memory: a guest handle is a guest address. This model treats it as guest-physical (the
guest model runs with a 1:1 view); ``copy_from_guest``/``copy_to_guest`` fail with -EFAULT
when the range is not wholly dom0 RAM (the p2m), which is checked before any access, so a
hostile pointer never turns into a ``mem`` request. Every access that does happen is a core
request ``yield MemRead(addr, size, why)`` / ``yield MemWrite(addr, data, why)`` with ``why``
the Xen function; the runner turns it into ``Mem(agent="xen")``. A read answered with the
wrong number of bytes, or a write answered with an exception instance, is -EFAULT.

Bad input never raises: every handler returns Xen's errno.

Not modelled, each documented where it matters: event delivery into the FIFO event arrays
(a notification only injects the event-channel PPI, ``arch_evtchn_inject``), Xen's writes
into the shared-info page after ``XENMAPSPACE_shared_info`` (the page stays zero), the
runstate area updates (the handle is a guest virtual address Xen would translate), and
hypercall preemption/continuations (``console_io`` writes at most
:data:`CONSOLE_WRITE_LIMIT` bytes per call and records the truncation).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gic.port import Core, MemRead, MemWrite
from transport.abi import (
    XEN_EFAULT,
    XEN_EINVAL,
    XEN_ENOENT,
    XEN_ENOSYS,
    __HYPERVISOR_console_io,
    __HYPERVISOR_event_channel_op,
    __HYPERVISOR_hvm_op,
    __HYPERVISOR_memory_op,
    __HYPERVISOR_sched_op,
    __HYPERVISOR_vcpu_op,
    __HYPERVISOR_xen_version,
)

XEN_ESRCH = 3
XEN_EEXIST = 17
XEN_EDOM = 33
XEN_ENOSPC = 28

PAGE_SIZE = 4096
DOMID_SELF = 0x7FF0
U32 = 0xFFFF_FFFF
U64 = (1 << 64) - 1

# xen_version (public/version.h)
XENVER_version = 0
XENVER_extraversion = 1
XENVER_compile_info = 2
XENVER_capabilities = 3
XENVER_changeset = 4
XENVER_platform_parameters = 5
XENVER_get_features = 6
XENVER_pagesize = 7
XENVER_guest_handle = 8
XENVER_commandline = 9
XENVER_build_id = 10

# public/features.h
XENFEAT_writable_page_tables = 0
XENFEAT_auto_translated_physmap = 2
XENFEAT_dom0 = 11
XENFEAT_memory_op_vnode_supported = 13
XENFEAT_ARM_SMCCC_supported = 14
XENFEAT_not_direct_mapped = 16
XENFEAT_direct_mapped = 17

# memory_op (public/memory.h)
MEMOP_EXTENT_SHIFT = 6
MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1
XENMEM_add_to_physmap = 7
XENMAPSPACE_shared_info = 0
XENMAPSPACE_grant_table = 1
XENMAPSPACE_gmfn_foreign = 4
#: opt_max_grant_frames default (64), the frames gnttab_map_frame accepts.
MAX_GRANT_FRAMES = 64

# vcpu_op (public/vcpu.h)
VCPUOP_register_runstate_memory_area = 5
VCPUOP_register_vcpu_info = 10
#: sizeof(struct vcpu_info) on arm64: 2 bytes + pad, xen_ulong_t evtchn_pending_sel, the empty
#: struct arch_vcpu_info and a 32-byte vcpu_time_info.
VCPU_INFO_SIZE = 48

# hvm_op (public/hvm/hvm_op.h, params.h)
HVMOP_set_param = 0
HVMOP_get_param = 1
HVMOP_guest_request_vm_event = 24
HVM_PARAM_CALLBACK_IRQ = 0
HVM_NR_PARAMS = 39
HVM_PARAM_CALLBACK_TYPE_PPI = 2
HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT = 56
HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL = 2
HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_SHIFT = 8

# console_io (public/xen.h)
CONSOLEIO_write = 0
CONSOLEIO_read = 1
#: guest_console_write copies through a 128-byte kbuf, 127 bytes at a time.
CONSOLE_KBUF = 128
#: Model limit standing in for hypercall continuations (see the module docstring).
CONSOLE_WRITE_LIMIT = 64 * 1024

# event_channel_op (public/event_channel.h)
EVTCHNOP_bind_interdomain = 0
EVTCHNOP_bind_virq = 1
EVTCHNOP_close = 3
EVTCHNOP_send = 4
EVTCHNOP_status = 5
EVTCHNOP_alloc_unbound = 6
EVTCHNOP_bind_ipi = 7
EVTCHNOP_bind_vcpu = 8
EVTCHNOP_unmask = 9
EVTCHNOP_init_control = 11
EVTCHNOP_expand_array = 12
NR_VIRQS = 24
#: VIRQs bound on vCPU 0 only (virq_is_global): all but TIMER(0), DEBUG(1), XENOPROF(5),
#: XENPMU(13) and the arch VIRQs 16..23 (Arm: arch_virq_is_global is true; modelled global).
_PER_VCPU_VIRQS = frozenset({0, 1, 5, 13})
EVTCHN_FIFO_LINK_BITS = 17
#: sizeof(struct evtchn_fifo_control_block): ready u32, pad u32, head[16] u32.
EVTCHN_FIFO_CONTROL_BLOCK_SIZE = 72
#: The 2-level ABI's port limit is the default until init_control switches to FIFO.
EVTCHN_MAX_PORT = 4095

# sched_op (public/sched.h)
SCHEDOP_yield = 0
SCHEDOP_block = 1
SCHEDOP_shutdown = 2
SHUTDOWN_poweroff = 0
SHUTDOWN_reboot = 1
SHUTDOWN_suspend = 2
SHUTDOWN_crash = 3
SHUTDOWN_watchdog = 4
SHUTDOWN_NAMES = {0: "poweroff", 1: "reboot", 2: "suspend", 3: "crash", 4: "watchdog"}


# Module-level names: a ``__HYPERVISOR_*`` name inside a class body would be name-mangled.
HYPERCALL_XEN_VERSION = __HYPERVISOR_xen_version
HYPERCALL_MEMORY_OP = __HYPERVISOR_memory_op
HYPERCALL_VCPU_OP = __HYPERVISOR_vcpu_op
HYPERCALL_HVM_OP = __HYPERVISOR_hvm_op
HYPERCALL_CONSOLE_IO = __HYPERVISOR_console_io
HYPERCALL_EVENT_CHANNEL_OP = __HYPERVISOR_event_channel_op
HYPERCALL_SCHED_OP = __HYPERVISOR_sched_op


class XenServices(Protocol):
    """What the hypercall handlers need from the rest of Xen (hypervisor/xen.py)."""

    def log(self, line: str) -> None:
        """A Xen console line (without the ``(XEN) `` prefix)."""

    def console_write(self, domid: int, text: str) -> None:
        """Characters dom0 wrote with CONSOLEIO_write (one complete line at a time)."""

    def inject_evtchn(self, vcpu: int) -> None:
        """arch_evtchn_inject: raise the event-channel PPI on ``vcpu``."""

    def record(self, kind: str, body: dict[str, Any], why: str = "") -> None:
        """A trace record."""


@dataclass(slots=True)
class HypercallResult:
    """What the trapped HVC does to the vCPU: x0 = ``ret``; ``block`` (SCHEDOP_block: resume
    when an event is pending); ``shutdown`` (the domain_shutdown reason name: no resume)."""

    ret: int
    block: bool = False
    shutdown: str = ""
    shutdown_reason: int = 0


@dataclass(slots=True)
class EvtchnPort:
    """One allocated event channel of dom0 (struct evtchn, the states this model needs)."""

    port: int
    state: str  # "unbound", "virq", "ipi", "interdomain"
    vcpu: int = 0
    virq: int = -1
    remote_port: int = 0


@dataclass(slots=True)
class DomainHypercallState:
    """dom0's state the modelled hypercalls read and write."""

    params: dict[int, int] = field(default_factory=dict)
    shared_info_gfn: int | None = None
    grant_frames: dict[int, int] = field(default_factory=dict)
    vcpu_info: dict[int, tuple[int, int]] = field(default_factory=dict)
    runstate_area: dict[int, int] = field(default_factory=dict)
    ports: dict[int, EvtchnPort] = field(default_factory=dict)
    virq_to_port: dict[tuple[int, int], int] = field(default_factory=dict)
    fifo_control: dict[int, tuple[int, int]] = field(default_factory=dict)
    fifo_arrays: list[int] = field(default_factory=list)
    console_partial: str = ""


def _s32(v: int) -> int:
    v &= U32
    return v - (1 << 32) if v >> 31 else v


def _ok(data: Any, size: int) -> bool:
    return isinstance(data, bytes | bytearray) and len(data) == size


class Hypercalls:
    """do_trap_hypercall and the handlers a Linux dom0 reaches (one domain: dom0)."""

    def __init__(
        self,
        *,
        max_vcpus: int,
        is_ram: Callable[[int, int], bool],
        services: XenServices,
        evtchn_irq: int = 16,
        domid: int = 0,
        version: tuple[int, int] = (4, 17),
        extraversion: str = ".7",
        commandline: str = "",
    ) -> None:
        self.max_vcpus = max_vcpus
        self.is_ram = is_ram
        self.services = services
        self.domid = domid
        self.version = version
        self.extraversion = extraversion
        self.commandline = commandline
        self.state = DomainHypercallState()
        # evtchn_allocate (domain_build.c): PPI, active-low level, published for HVMOP_get_param.
        self.evtchn_irq = evtchn_irq
        self.state.params[HVM_PARAM_CALLBACK_IRQ] = callback_irq_param(evtchn_irq)
        self.calls: dict[str, int] = {}

    # -- dispatch --------------------------------------------------------------------------------

    def do_trap_hypercall(self, vcpu: int, nr: int, regs: tuple[int, ...]) -> Core[HypercallResult]:
        """traps.c do_trap_hypercall (imm already checked): x16 = ``nr``, x0..x4 = ``regs``."""
        a = [int(r) & U64 if isinstance(r, int) else 0 for r in tuple(regs)[:5]]
        a += [0] * (5 - len(a))
        nr = nr & U64 if isinstance(nr, int) else U64
        handler = {
            HYPERCALL_XEN_VERSION: self.do_xen_version,
            HYPERCALL_MEMORY_OP: self.do_memory_op,
            HYPERCALL_VCPU_OP: self.do_arm_vcpu_op,
            HYPERCALL_HVM_OP: self.do_hvm_op,
            HYPERCALL_CONSOLE_IO: self.do_console_io,
            HYPERCALL_EVENT_CHANNEL_OP: self.do_event_channel_op,
            HYPERCALL_SCHED_OP: self.do_sched_op,
        }.get(nr)
        name = handler.__name__ if handler is not None else f"hypercall_{nr}"
        self.calls[name] = self.calls.get(name, 0) + 1
        if handler is None:
            return HypercallResult(-XEN_ENOSYS)
        result = yield from handler(vcpu, a)
        if isinstance(result, int):
            return HypercallResult(result)
        return result

    # -- guest memory ----------------------------------------------------------------------------

    def _read(self, addr: int, size: int, why: str) -> Core[bytes | None]:
        """copy_from_guest: None (-EFAULT) unless [addr, addr+size) is dom0 RAM."""
        if size <= 0 or not self.is_ram(addr, size):
            return None
        data = yield MemRead(addr, size, why)
        return bytes(data) if _ok(data, size) else None

    def _write(self, addr: int, data: bytes, why: str) -> Core[bool]:
        """copy_to_guest: False (-EFAULT) unless the range is dom0 RAM and the write succeeds."""
        if not data or not self.is_ram(addr, len(data)):
            return False
        answer = yield MemWrite(addr, bytes(data), why)
        return not isinstance(answer, BaseException)

    # -- xen_version (common/kernel.c do_xen_version) --------------------------------------------

    def features_submap0(self) -> int:
        """XENVER_get_features submap 0 for dom0 on Arm (translated, direct-mapped)."""
        return (
            (1 << XENFEAT_memory_op_vnode_supported)
            | (1 << XENFEAT_writable_page_tables)
            | (1 << XENFEAT_auto_translated_physmap)
            | (1 << XENFEAT_dom0)
            | (1 << XENFEAT_ARM_SMCCC_supported)
            | (1 << XENFEAT_direct_mapped)
        )

    def do_xen_version(self, vcpu: int, a: list[int]) -> Core[int]:
        cmd, arg = _s32(a[0]), a[1]
        why = "do_xen_version"
        if cmd == XENVER_version:
            return (self.version[0] << 16) | self.version[1]
        if cmd == XENVER_extraversion:
            ok = yield from self._write(arg, _cstr(self.extraversion, 16), why)
            return 0 if ok else -XEN_EFAULT
        if cmd == XENVER_capabilities:
            ok = yield from self._write(arg, _cstr("xen-3.0-aarch64 xen-3.0-armv7l ", 1024), why)
            return 0 if ok else -XEN_EFAULT
        if cmd == XENVER_changeset:
            ok = yield from self._write(arg, _cstr("unavailable", 64), why)
            return 0 if ok else -XEN_EFAULT
        if cmd == XENVER_commandline:
            ok = yield from self._write(arg, _cstr(self.commandline, 1024), why)
            return 0 if ok else -XEN_EFAULT
        if cmd == XENVER_get_features:
            raw = yield from self._read(arg, 8, why)
            if raw is None:
                return -XEN_EFAULT
            submap_idx = struct.unpack_from("<I", raw)[0]
            if submap_idx != 0:
                return -XEN_EINVAL
            ok = yield from self._write(arg, struct.pack("<II", 0, self.features_submap0()), why)
            return 0 if ok else -XEN_EFAULT
        if cmd == XENVER_pagesize:
            return -XEN_EINVAL if arg else PAGE_SIZE
        if cmd in (XENVER_compile_info, XENVER_platform_parameters, XENVER_guest_handle,
                   XENVER_build_id):  # fmt: skip
            self.services.record("hypercall-unmodelled", {"op": "xen_version", "cmd": cmd}, why)
            return -XEN_ENOSYS
        return -XEN_ENOSYS

    # -- memory_op (common/memory.c do_memory_op, arch/arm/mm.c xenmem_add_to_physmap_one) -------

    def do_memory_op(self, vcpu: int, a: list[int]) -> Core[int]:
        op, arg = a[0], a[1]
        cmd, start_extent = op & MEMOP_CMD_MASK, op >> MEMOP_EXTENT_SHIFT
        why = "do_memory_op"
        if cmd != XENMEM_add_to_physmap:
            return -XEN_ENOSYS
        if start_extent > 0xFFFF:
            return -XEN_EDOM
        raw = yield from self._read(arg, 24, why)
        if raw is None:
            return -XEN_EFAULT
        domid, _size, space, idx, gpfn = struct.unpack("<HHIQQ", raw)
        if space == XENMAPSPACE_gmfn_foreign:
            return -XEN_ENOSYS
        if domid not in (DOMID_SELF, self.domid):
            return -XEN_ESRCH
        if space == XENMAPSPACE_shared_info:
            if idx != 0:
                return -XEN_EINVAL
            self.state.shared_info_gfn = gpfn
            self.services.record("physmap", {"space": "shared_info", "gfn": gpfn},
                                 "xenmem_add_to_physmap_one")  # fmt: skip
            return 0
        if space == XENMAPSPACE_grant_table:
            if idx >= MAX_GRANT_FRAMES:
                return -XEN_EINVAL
            self.state.grant_frames[idx] = gpfn
            return 0
        return -XEN_ENOSYS

    # -- vcpu_op (arch/arm/domain.c do_arm_vcpu_op, common/domain.c) -----------------------------

    def do_arm_vcpu_op(self, vcpu: int, a: list[int]) -> Core[int]:
        cmd, vcpuid, arg = _s32(a[0]), a[1] & U32, a[2]
        if cmd not in (VCPUOP_register_vcpu_info, VCPUOP_register_runstate_memory_area):
            return -XEN_EINVAL
        if vcpuid >= self.max_vcpus:
            return -XEN_ENOENT
        if cmd == VCPUOP_register_runstate_memory_area:
            raw = yield from self._read(arg, 8, "do_vcpu_op")
            if raw is None:
                return -XEN_EFAULT
            self.state.runstate_area[vcpuid] = struct.unpack("<Q", raw)[0]
            return 0
        raw = yield from self._read(arg, 16, "do_vcpu_op")
        if raw is None:
            return -XEN_EFAULT
        gfn, offset, _rsvd = struct.unpack("<QII", raw)
        return (yield from self.map_vcpu_info(vcpu, vcpuid, gfn, offset))

    def map_vcpu_info(self, current: int, vcpuid: int, gfn: int, offset: int) -> Core[int]:
        """map_vcpu_info: place vcpu_info at gfn:offset, mark every event pending, inject."""
        if offset > PAGE_SIZE - VCPU_INFO_SIZE:
            return -XEN_EINVAL
        if vcpuid in self.state.vcpu_info:
            return -XEN_EINVAL
        addr = (gfn << 12) + offset
        if gfn >> 52 or not self.is_ram(gfn << 12, PAGE_SIZE):
            return -XEN_EINVAL  # get_page_from_gfn failed
        # memset the new area (the legacy copy is zero here), then evtchn_upcall_pending = 1
        # and every bit of evtchn_pending_sel set "just to make sure nothing gets lost".
        info = bytearray(VCPU_INFO_SIZE)
        info[0] = 1
        info[8:16] = U64.to_bytes(8, "little")
        ok = yield from self._write(addr, bytes(info), "map_vcpu_info")
        if not ok:
            return -XEN_EINVAL
        self.state.vcpu_info[vcpuid] = (gfn, offset)
        self.services.inject_evtchn(vcpuid)
        return 0

    # -- hvm_op (arch/arm/hvm.c do_hvm_op) -------------------------------------------------------

    def do_hvm_op(self, vcpu: int, a: list[int]) -> Core[int]:
        op, arg = a[0], a[1]
        if op in (HVMOP_set_param, HVMOP_get_param):
            raw = yield from self._read(arg, 16, "do_hvm_op")
            if raw is None:
                return -XEN_EFAULT
            domid, index, value = struct.unpack("<H2xIQ", raw)
            if index >= HVM_NR_PARAMS:
                return -XEN_EINVAL
            if domid not in (DOMID_SELF, self.domid):
                return -XEN_ESRCH
            if op == HVMOP_set_param:
                self.state.params[index] = value
                return 0
            value = self.state.params.get(index, 0)
            ok = yield from self._write(
                arg, struct.pack("<H2xIQ", domid, index, value), "do_hvm_op"
            )
            return 0 if ok else -XEN_EFAULT
        if op == HVMOP_guest_request_vm_event:
            return 0 if arg == 0 else -XEN_EINVAL
        return -XEN_ENOSYS

    # -- console_io (drivers/char/console.c) -----------------------------------------------------

    def do_console_io(self, vcpu: int, a: list[int]) -> Core[int]:
        cmd, count, buf = _s32(a[0]), a[1] & U32, a[2]
        if cmd == CONSOLEIO_read:
            return 0  # no serial input is modelled
        if cmd != CONSOLEIO_write:
            return -XEN_ENOSYS
        return (yield from self.guest_console_write(buf, count))

    def guest_console_write(self, buf: int, count: int) -> Core[int]:
        """Copy 127 bytes at a time and hand complete lines to the console. dom0 is the
        hardware domain: its text goes out as is, with no ``(d0)`` prefix."""
        if count == 0:
            return 0
        if not self.is_ram(buf, count):
            return -XEN_EFAULT
        if count > CONSOLE_WRITE_LIMIT:
            self.services.record(
                "console-truncated", {"count": count, "written": CONSOLE_WRITE_LIMIT},
                "guest_console_write",
            )  # fmt: skip
            count = CONSOLE_WRITE_LIMIT
        while count:
            n = min(count, CONSOLE_KBUF - 1)
            data = yield from self._read(buf, n, "guest_console_write")
            if data is None:
                return -XEN_EFAULT
            self._console_chars(data.decode("latin-1"))
            buf += n
            count -= n
        return 0

    def _console_chars(self, text: str) -> None:
        text = self.state.console_partial + text
        *lines, self.state.console_partial = text.split("\n")
        for line in lines:
            self.services.console_write(self.domid, line)

    # -- event_channel_op (common/event_channel.c) -----------------------------------------------

    def _get_free_port(self) -> int:
        port = 1  # port 0 is ECS_RESERVED
        while port in self.state.ports:
            port += 1
        return port if port <= EVTCHN_MAX_PORT else -XEN_ENOSPC

    def do_event_channel_op(self, vcpu: int, a: list[int]) -> Core[int]:
        cmd, arg = _s32(a[0]), a[1]
        why = "do_event_channel_op"
        st = self.state
        if cmd == EVTCHNOP_bind_virq:
            raw = yield from self._read(arg, 12, why)
            if raw is None:
                return -XEN_EFAULT
            virq, vcpuid, _ = struct.unpack("<III", raw)
            if virq >= NR_VIRQS:
                return -XEN_EINVAL
            if virq not in _PER_VCPU_VIRQS and vcpuid != 0:
                return -XEN_EINVAL
            if vcpuid >= self.max_vcpus:
                return -XEN_ENOENT
            if (vcpuid, virq) in st.virq_to_port:
                return -XEN_EEXIST
            port = self._get_free_port()
            if port < 0:
                return port
            st.ports[port] = EvtchnPort(port, "virq", vcpuid, virq)
            st.virq_to_port[(vcpuid, virq)] = port
            ok = yield from self._write(arg, struct.pack("<III", virq, vcpuid, port), why)
            return 0 if ok else -XEN_EFAULT
        if cmd == EVTCHNOP_bind_ipi:
            raw = yield from self._read(arg, 8, why)
            if raw is None:
                return -XEN_EFAULT
            vcpuid = struct.unpack_from("<I", raw)[0]
            if vcpuid >= self.max_vcpus:
                return -XEN_ENOENT
            port = self._get_free_port()
            if port < 0:
                return port
            st.ports[port] = EvtchnPort(port, "ipi", vcpuid)
            ok = yield from self._write(arg, struct.pack("<II", vcpuid, port), why)
            return 0 if ok else -XEN_EFAULT
        if cmd == EVTCHNOP_alloc_unbound:
            raw = yield from self._read(arg, 8, why)
            if raw is None:
                return -XEN_EFAULT
            dom, remote = struct.unpack_from("<HH", raw)
            if dom not in (DOMID_SELF, self.domid) or remote not in (DOMID_SELF, self.domid):
                return -XEN_ESRCH
            port = self._get_free_port()
            if port < 0:
                return port
            st.ports[port] = EvtchnPort(port, "unbound")
            ok = yield from self._write(arg, struct.pack("<HHI", dom, remote, port), why)
            return 0 if ok else -XEN_EFAULT
        if cmd in (EVTCHNOP_close, EVTCHNOP_send, EVTCHNOP_unmask):
            raw = yield from self._read(arg, 4, why)
            if raw is None:
                return -XEN_EFAULT
            port = struct.unpack("<I", raw)[0]
            chn = st.ports.get(port)
            if chn is None:
                return -XEN_EINVAL
            if cmd == EVTCHNOP_close:
                del st.ports[port]
                if chn.state == "virq":
                    st.virq_to_port.pop((chn.vcpu, chn.virq), None)
                return 0
            if cmd == EVTCHNOP_unmask:
                return 0
            return self.evtchn_send(chn)
        if cmd == EVTCHNOP_init_control:
            raw = yield from self._read(arg, 24, why)
            if raw is None:
                return -XEN_EFAULT
            gfn, offset, vcpuid = struct.unpack_from("<QII", raw)
            if vcpuid >= self.max_vcpus:
                return -XEN_ENOENT
            if offset & 7 or offset > PAGE_SIZE - EVTCHN_FIFO_CONTROL_BLOCK_SIZE:
                return -XEN_EINVAL
            if vcpuid in st.fifo_control or gfn >> 52 or not self.is_ram(gfn << 12, PAGE_SIZE):
                return -XEN_EINVAL
            st.fifo_control[vcpuid] = (gfn, offset)
            out = raw[:16] + bytes([EVTCHN_FIFO_LINK_BITS]) + bytes(7)
            ok = yield from self._write(arg, out, why)
            return 0 if ok else -XEN_EFAULT
        if cmd == EVTCHNOP_expand_array:
            raw = yield from self._read(arg, 8, why)
            if raw is None:
                return -XEN_EFAULT
            gfn = struct.unpack("<Q", raw)[0]
            if not st.fifo_control or gfn >> 52 or not self.is_ram(gfn << 12, PAGE_SIZE):
                return -XEN_EINVAL
            st.fifo_arrays.append(gfn)
            return 0
        if cmd in (EVTCHNOP_bind_interdomain, EVTCHNOP_status, EVTCHNOP_bind_vcpu):
            self.services.record("hypercall-unmodelled", {"op": "event_channel_op", "cmd": cmd},
                                 why)  # fmt: skip
        return -XEN_ENOSYS

    def evtchn_send(self, chn: EvtchnPort) -> int:
        """evtchn_send: an IPI port notifies its vCPU (arch_evtchn_inject); unbound ports drop
        the notification silently; other states are -EINVAL."""
        if chn.state == "ipi":
            self.services.inject_evtchn(chn.vcpu)
            return 0
        if chn.state == "unbound":
            return 0
        if chn.state == "interdomain":
            self.services.inject_evtchn(0)
            return 0
        return -XEN_EINVAL

    def send_virq(self, vcpu: int, virq: int) -> bool:
        """send_guest_vcpu_virq / send_global_virq: notify the port bound to ``virq``."""
        port = self.state.virq_to_port.get((vcpu, virq))
        if port is None:
            return False
        self.services.inject_evtchn(self.state.ports[port].vcpu)
        return True

    # -- sched_op (common/sched/core.c do_sched_op) ----------------------------------------------

    def do_sched_op(self, vcpu: int, a: list[int]) -> Core[HypercallResult]:
        cmd, arg = _s32(a[0]), a[1]
        if cmd == SCHEDOP_yield:
            return HypercallResult(0)
        if cmd == SCHEDOP_block:
            return HypercallResult(0, block=True)
        if cmd == SCHEDOP_shutdown:
            raw = yield from self._read(arg, 4, "do_sched_op")
            if raw is None:
                return HypercallResult(-XEN_EFAULT)
            reason = struct.unpack("<I", raw)[0]
            return HypercallResult(
                0, shutdown=SHUTDOWN_NAMES.get(reason, "unknown"), shutdown_reason=reason
            )
        return HypercallResult(-XEN_ENOSYS)


def callback_irq_param(ppi: int) -> int:
    """HVM_PARAM_CALLBACK_IRQ as evtchn_allocate writes it: type PPI (2) in [63:56], flag
    LOW_LEVEL (2) in [15:8], the PPI in [7:0]."""
    return (
        (HVM_PARAM_CALLBACK_TYPE_PPI << HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT)
        | (HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL << HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_SHIFT)
        | ppi
    )


def hwdom_shutdown_line(reason: int, domid: int = 0) -> str:
    """common/shutdown.c hwdom_shutdown: the line Xen prints (maybe_reboot: 5 seconds)."""
    if reason == SHUTDOWN_poweroff:
        return f"Hardware Dom{domid} halted: halting machine"
    if reason == SHUTDOWN_reboot:
        return f"Hardware Dom{domid} shutdown: rebooting machine"
    if reason == SHUTDOWN_crash:
        return f"Hardware Dom{domid} crashed: rebooting machine in 5 seconds."
    if reason == SHUTDOWN_watchdog:
        return f"Hardware Dom{domid} shutdown: watchdog rebooting machine"
    return (
        f"Hardware Dom{domid} shutdown (unknown reason {reason}): rebooting machine in 5 seconds."
    )


def _cstr(text: str, size: int) -> bytes:
    """A NUL-padded C char array of ``size`` bytes (safe_strcpy into a zeroed buffer)."""
    raw = text.encode()[: size - 1]
    return raw + bytes(size - len(raw))


__all__ = [
    "DomainHypercallState",
    "HypercallResult",
    "Hypercalls",
    "XenServices",
    "callback_irq_param",
    "hwdom_shutdown_line",
]
