"""Linux v5.15 as a Xen guest on arm64: arch/arm/xen/enlighten.c and the drivers/xen pieces a
dom0 reaches while booting, function by function (linux-gicv3-its.md §4, xen-arm-vgic.md §6-§7).

* :func:`xen_early_init` (setup_arch, before efi_init): ``fdt_find_hyper_node`` (a depth-1
  node "hypervisor" compatible "xen,xen"; the version from a first compatible string
  "xen,xen-X.Y"; a "uefi" subnode sets EFI_RUNTIME_SERVICES), "Xen %s support found",
  ``xen_domain_type = XEN_HVM_DOMAIN``, ``xen_setup_features`` (HYPERVISOR_xen_version
  XENVER_get_features), dom0 when XENFEAT_dom0 is set.
* :func:`xen_guest_init` (the first early_initcall: arch/ links before drivers/):
  ``xen_acpi_guest_init`` (HVMOP_get_param HVM_PARAM_CALLBACK_IRQ) or ``xen_dt_guest_init``
  (/hypervisor interrupts and grant-table region), the shared info page
  (XENMEM_add_to_physmap XENMAPSPACE_shared_info), ``alloc_percpu(struct vcpu_info)``, the grant
  table (``gnttab_max_grant_frames`` GNTTABOP_query_size, ``gnttab_init`` with its two lines
  and XENMAPSPACE_grant_table), ``xen_init_IRQ`` (``xen_evtchn_fifo_init``:
  EVTCHNOP_init_control, "xen:events: Using FIFO-based ABI"), ``request_percpu_irq`` of the
  event-channel PPI and ``cpuhp_setup_state(CPUHP_AP_ARM_XEN_STARTING)`` which runs
  :func:`xen_starting_cpu` on CPU0 at once.
* :func:`xen_starting_cpu` / :func:`xen_dying_cpu` (CPUHP_AP_ARM_XEN_STARTING, on the CPU):
  "Xen: initializing cpu%d" and VCPUOP_register_vcpu_info once per CPU (never again after a
  hotplug: Xen refuses a second registration), then enable_percpu_irq of the event PPI.
  ``xen_setup_runstate_info`` is skipped as v5.15 skips it when the kernel is unmapped at EL0
  (KPTI, which the real logs show forced on).
* :func:`xen_evtchn_cpu_prepare` (CPUHP_XEN_EVTCHN_PREPARE, on the CPU bringing another up):
  the new CPU's FIFO control block (EVTCHNOP_init_control), once per CPU.
* :func:`xenbus_init` (postcore_initcall, dom0 = XS_LOCAL): ``xenstored_local_init``
  (EVTCHNOP_alloc_unbound) and ``xb_init_comms`` binding that port (``evtchn_fifo_setup`` ->
  EVTCHNOP_expand_array).
* :func:`xen_arm_callback`: the event-channel PPI's handler (``xen_hvm_evtchn_do_upcall``).
* :func:`console_chunk`: drivers/tty/hvc/hvc_console.c ``hvc_console_print`` (16-byte
  ``N_OUTBUF`` chunks, "\\n" sent as "\\r\\n") -> hvc_xen.c ``dom0_write_console`` ->
  HYPERVISOR_console_io(CONSOLEIO_write); the hvc0 console registers at ``console_init``
  and replays the log buffer (CON_PRINTBUFFER).

Hypercall arguments live where the kernel has them (its stack, per-CPU data): here a
per-CPU slot in the image's .bss claimed as a region Xen may write (``Owner.dma``), so Xen's
copy_to_guest into it is legitimate and anything else is still caught. Not modelled: the
ballooned pages' XENMEM_decrease_reservation (``xen_xlate_map_ballooned_pages`` just takes
pages), event delivery through the FIFO arrays beyond clearing the upcall flag, grant
mappings, xenstore traffic.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guest.cpu import Hypercall
from guest.kernel import KernelBug
from guest.regions import Owner
from transport.abi import (
    __HYPERVISOR_console_io,
    __HYPERVISOR_event_channel_op,
    __HYPERVISOR_grant_table_op,
    __HYPERVISOR_hvm_op,
    __HYPERVISOR_memory_op,
    __HYPERVISOR_vcpu_op,
    __HYPERVISOR_xen_version,
    s64,
)

if TYPE_CHECKING:
    from guest.kernel import Kernel

ENLIGHTEN_C = "arch/arm/xen/enlighten.c"
#: Lines of ``BUG_ON(err)`` in xen_starting_cpu and of ``BUG()`` after XENMEM_add_to_physmap in
#: xen_guest_init in v5.15: estimates (not read; guest/variants.py PREDICTIONS).
LINE_STARTING_CPU_BUG = 176
LINE_GUEST_INIT_BUG = 439

Gen = Generator[Any, Any, Any]

# xen/include/public: version.h, features.h, memory.h, vcpu.h, hvm/*.h, xen.h, event_channel.h,
# grant_table.h
XENVER_get_features = 6
XENFEAT_NR_SUBMAPS = 1
XENFEAT_dom0 = 11
XENMEM_add_to_physmap = 7
XENMAPSPACE_shared_info = 0
XENMAPSPACE_grant_table = 1
DOMID_SELF = 0x7FF0
VCPUOP_register_vcpu_info = 10
HVMOP_get_param = 1
HVM_PARAM_CALLBACK_IRQ = 0
HVM_PARAM_CALLBACK_TYPE_PPI = 2
CONSOLEIO_write = 0
EVTCHNOP_alloc_unbound = 6
EVTCHNOP_init_control = 11
EVTCHNOP_expand_array = 12
GNTTABOP_query_size = 6
GNTST_okay = 0
#: sizeof(struct vcpu_info) on arm64.
VCPU_INFO_SIZE = 48
#: __max_nr_grant_frames when GNTTABOP_query_size fails: "Legacy max supported number of frames".
LEGACY_MAX_GRANT_FRAMES = 4
#: drivers/tty/hvc/hvc_console.c N_OUTBUF.
N_OUTBUF = 16
PAGE_SIZE = 0x1000
#: The per-CPU argument slot: struct arguments at +0, the hvc output buffer at +0x80.
XEN_SLOT = 0x100
XEN_SLOT_BUF = 0x80
#: Where in .bss the slots start (after 0x1000 of other data): a documented stand-in for
#: the CPUs' stacks and per-CPU variables, inside the kernel image as the real ones are.
XEN_SLOTS_OFFSET = 0x1000


@dataclass
class XenGuest:
    """The kernel's Xen state: ``xen_domain_type``, ``xen_start_flags``, features, the event
    PPI, the shared info page, per-CPU vcpu_info and FIFO control blocks, hypercall log."""

    version: str
    slots: int
    features: int = 0
    initial_domain: bool = False
    events_irq: int = 0
    grant_frames: int = 0  # xen_grant_frames (DT: /hypervisor reg 0)
    shared_info: int = 0
    vcpu_info: dict[int, int] = field(default_factory=dict)
    registered: set[int] = field(default_factory=set)  # per_cpu(xen_vcpu) != NULL
    control_block: dict[int, int] = field(default_factory=dict)
    starting_state: bool = False  # CPUHP_AP_ARM_XEN_STARTING registered
    fifo: bool = False
    store_evtchn: int = 0
    event_pages: list[int] = field(default_factory=list)
    upcalls: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)

    def slot(self, cpu: int) -> int:
        return self.slots + cpu * XEN_SLOT


def xen_initial_domain(k: Kernel) -> bool:
    return k.xen is not None and k.xen.initial_domain


def _arg_owner(k: Kernel) -> Owner:
    return k.owner("xen-arg", "hypercall arguments (kernel stack/per-CPU data)", dma=True)


def _slot(k: Kernel, cpu: int) -> int:
    """This CPU's argument slot, (re)claimed for hypercall arguments: the memblock
    reservation of the image (arm64_memblock_init) claims the whole image after
    xen_early_init made its first call."""
    addr = k.xen.slot(cpu)
    if k.guest.regions.owner_at(addr).kind != "xen-arg":
        k.guest.regions.claim(k.xen.slots, XEN_SLOT * len(k.guest.cpus), _arg_owner(k))
    return addr


def put_arg(k: Kernel, cpu: int, data: bytes, why: str) -> int:
    """Store a hypercall's argument struct in this CPU's slot; its guest-physical address."""
    addr = _slot(k, cpu)
    k.ram_write(addr, data, _arg_owner(k), why)
    return addr


def hypercall(k: Kernel, cpu: int, nr: int, args: tuple[int, ...], why: str) -> Gen:
    """``HYPERVISOR_*`` (arch/arm64/xen/hypercall.S): x0..x4, x16, HVC #0xEA1; signed x0."""
    ret = s64((yield Hypercall(nr, tuple(args), why)))
    k.xen.calls.append({"cpu": cpu, "nr": nr, "function": why, "ret": ret})
    return ret


# -- setup_arch ------------------------------------------------------------------------------


def fdt_find_hyper_node(k: Kernel) -> tuple[bool, str | None, bool]:
    """``fdt_find_hyper_node``: (found, version, has a uefi subnode)."""
    fdt = k.drivers["fdt"]
    for node in fdt.root.children:
        if node.name != "hypervisor":
            continue
        raw = node.getprop("compatible") or b""
        strings = [s.decode(errors="replace") for s in raw.split(b"\0") if s]
        found = "xen,xen" in strings
        prefix = "xen,xen-"
        version = None
        # only the first string is looked at: strncmp(prefix, s, strlen(prefix)), len > prefix+3
        if strings and len(raw) > len(prefix) + 3 and strings[0].startswith(prefix):
            version = strings[0][len(prefix) :]
        return found, version, node.child("uefi") is not None
    return False, None, False


def xen_early_init(k: Kernel, cpu: int) -> Gen:
    """``xen_early_init``: Xen detection, XEN_HVM_DOMAIN, features, dom0."""
    found, version, uefi = fdt_find_hyper_node(k)
    if uefi and found:  # CONFIG_XEN_EFI and efi runtime not disabled on the command line
        k.efi["enabled"].add("EFI_RUNTIME_SERVICES")
    if not found or version is None:
        return  # pr_debug("No Xen support") / ("Xen version not found")
    k.log(f"Xen {version} support found", cpu)
    lay = k.image.layout
    slots = lay.edata + XEN_SLOTS_OFFSET
    k.xen = XenGuest(version, slots)
    k.guest.regions.claim(slots, XEN_SLOT * len(k.guest.cpus), _arg_owner(k))
    k.xen_domain = True  # xen_domain_type = XEN_HVM_DOMAIN
    yield from k.call(cpu, "xen_setup_features", xen_setup_features(k, cpu))
    if k.xen.features >> XENFEAT_dom0 & 1:
        k.xen.initial_domain = True  # xen_start_flags |= SIF_INITDOMAIN | SIF_PRIVILEGED


def xen_setup_features(k: Kernel, cpu: int) -> Gen:
    """``xen_setup_features``: HYPERVISOR_xen_version(XENVER_get_features) per submap."""
    for i in range(XENFEAT_NR_SUBMAPS):
        arg = put_arg(k, cpu, struct.pack("<II", i, 0), "xen_setup_features")
        ret = yield from hypercall(
            k, cpu, __HYPERVISOR_xen_version, (XENVER_get_features, arg), "xen_setup_features"
        )
        if ret < 0:
            break
        submap = struct.unpack("<I", k.ram_read(arg + 4, 4))[0]
        k.xen.features |= submap << (32 * i)


# -- early initcall ---------------------------------------------------------------------------


def xen_acpi_guest_init(k: Kernel, cpu: int) -> Gen:
    """``xen_acpi_guest_init``: HVMOP_get_param(HVM_PARAM_CALLBACK_IRQ), type PPI, the GSI."""
    arg = put_arg(
        k, cpu, struct.pack("<H2xIQ", DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, 0), "xen_acpi_guest_init"
    )
    ret = yield from hypercall(k, cpu, __HYPERVISOR_hvm_op, (HVMOP_get_param, arg),
                               "xen_acpi_guest_init")  # fmt: skip
    value = struct.unpack("<Q", k.ram_read(arg + 8, 8))[0]
    if ret or value >> 56 != HVM_PARAM_CALLBACK_TYPE_PPI:
        k.xen.events_irq = 0
        return
    k.xen.events_irq = value & 0xFF  # acpi_register_gsi(NULL, interrupt, trigger, polarity)


def xen_dt_guest_init(k: Kernel, cpu: int) -> None:
    """``xen_dt_guest_init``: the /hypervisor node's first interrupt and grant-table region."""
    fdt = k.drivers["fdt"]
    nodes = fdt.compatible_nodes("xen,xen")
    if not nodes:
        k.log("Xen support was detected before, but it has disappeared", cpu, "err")
        return
    node = nodes[0]
    if node.getprop("interrupts") is not None:
        cells = node.cells("interrupts")
        if len(cells) >= 3:
            k.xen.events_irq = cells[1] + (16 if cells[0] == 1 else 32)  # irq_of_parse_and_map
    if node.getprop("reg") is None:
        k.log("Xen grant table region is not found", cpu, "err")
        return
    cells = node.cells("reg")
    root = fdt.root
    ac = root.u32("#address-cells") if root.getprop("#address-cells") else 2
    base = 0
    for c in cells[:ac]:
        base = base << 32 | c
    k.xen.grant_frames = base


def xen_guest_init(k: Kernel, cpu: int) -> Gen:
    """``xen_guest_init`` (early_initcall)."""
    if not k.xen_domain or k.xen is None:
        return
    x = k.xen
    if not k.acpi_disabled:
        yield from k.call(cpu, "xen_acpi_guest_init", xen_acpi_guest_init(k, cpu))
    else:
        xen_dt_guest_init(k, cpu)
    if not x.events_irq:
        k.log("Xen event channel interrupt not found", cpu, "err")
        return
    # shared_info_page = get_zeroed_page(GFP_KERNEL); XENMEM_add_to_physmap
    page = k.alloc_pages(PAGE_SIZE, "xen-shared-info", "Xen shared info page", dma=True)
    arg = put_arg(
        k, cpu, struct.pack("<HHIQQ", DOMID_SELF, 0, XENMAPSPACE_shared_info, 0, page >> 12),
        "xen_guest_init",
    )  # fmt: skip
    ret = yield from hypercall(k, cpu, __HYPERVISOR_memory_op, (XENMEM_add_to_physmap, arg),
                               "xen_guest_init")  # fmt: skip
    if ret:  # BUG()
        raise KernelBug(cpu, "xen_guest_init", ENLIGHTEN_C, LINE_GUEST_INIT_BUG,
                        list(k.guest.cpus[cpu].frames))  # fmt: skip
    x.shared_info = page
    # xen_vcpu_info = alloc_percpu(struct vcpu_info)
    for c in range(len(k.possible_cpus)):
        x.vcpu_info[c] = k.kzalloc(VCPU_INFO_SIZE, "xen-vcpu-info", f"vcpu_info of CPU{c}",
                                   align=64, dma=True)  # fmt: skip
    yield from k.call(cpu, "gnttab_init", gnttab_init(k, cpu))
    yield from k.call(cpu, "xen_init_IRQ", xen_init_IRQ(k, cpu))
    # request_percpu_irq(xen_events_irq, xen_arm_callback, "events", &xen_vcpu)
    # cpuhp_setup_state(CPUHP_AP_ARM_XEN_STARTING, ...): runs the callback on CPU0 now
    x.starting_state = True
    body = k.call(cpu, "xen_starting_cpu", xen_starting_cpu(k, cpu))
    for fn in ("cpuhp_issue_call", "__cpuhp_setup_state_cpuslocked", "__cpuhp_setup_state"):
        body = k.call(cpu, fn, body)
    yield from body


def gnttab_max_grant_frames(k: Kernel, cpu: int) -> Gen:
    """``__max_nr_grant_frames``: GNTTABOP_query_size, else the legacy 4 frames."""
    arg = put_arg(k, cpu, struct.pack("<H2xIIh2x", DOMID_SELF, 0, 0, 0), "gnttab_max_grant_frames")
    ret = yield from hypercall(k, cpu, __HYPERVISOR_grant_table_op, (GNTTABOP_query_size, arg, 1),
                               "gnttab_max_grant_frames")  # fmt: skip
    _dom, _nr, max_nr, status = struct.unpack("<H2xIIh2x", k.ram_read(arg, 16))
    if ret < 0 or status != GNTST_okay or max_nr == 0:
        return LEGACY_MAX_GRANT_FRAMES
    return max_nr


def gnttab_init(k: Kernel, cpu: int) -> Gen:
    """The grant table: frames (DT region or ballooned pages), ``gnttab_init``, its lines."""
    x = k.xen
    if not x.grant_frames:
        count = yield from gnttab_max_grant_frames(k, cpu)
        # xen_xlate_map_ballooned_pages: pages taken from the allocator (see the docstring)
        pfn0 = k.alloc_pages(count * PAGE_SIZE, "xen-grant", "grant table frames") >> 12
    else:
        pfn0 = x.grant_frames >> 12  # gnttab_setup_auto_xlat_frames
    # gnttab_request_version: v1 on arm (no GNTTABOP_set_version)
    k.log("xen:grant_table: Grant tables using version 1 layout", cpu)
    yield from gnttab_max_grant_frames(k, cpu)
    # gnttab_setup -> gnttab_map(0, nr_grant_frames - 1): XENMAPSPACE_grant_table per frame
    arg = put_arg(
        k, cpu, struct.pack("<HHIQQ", DOMID_SELF, 0, XENMAPSPACE_grant_table, 0, pfn0), "gnttab_map"
    )
    ret = yield from hypercall(k, cpu, __HYPERVISOR_memory_op, (XENMEM_add_to_physmap, arg),
                               "gnttab_map")  # fmt: skip
    if ret:
        k.log(f"grant table add_to_physmap failed, err={ret}", cpu, "warn")
    k.log("Grant table initialized", cpu)


def init_control_block(k: Kernel, cpu: int, target: int, why: str) -> Gen:
    """``evtchn_fifo_alloc_control_block`` + ``init_control_block``: EVTCHNOP_init_control."""
    x = k.xen
    page = x.control_block.get(target)
    if page is None:
        page = k.alloc_pages(PAGE_SIZE, "xen-evtchn", f"FIFO control block of CPU{target}",
                             dma=True)  # fmt: skip
        x.control_block[target] = page
    arg = put_arg(k, cpu, struct.pack("<QII", page >> 12, 0, target) + bytes(8), why)
    return (yield from hypercall(k, cpu, __HYPERVISOR_event_channel_op,
                                 (EVTCHNOP_init_control, arg), why))  # fmt: skip


def xen_init_IRQ(k: Kernel, cpu: int) -> Gen:
    """``xen_init_IRQ`` -> ``xen_evtchn_fifo_init`` (else the 2-level ABI)."""
    ret = yield from init_control_block(k, cpu, cpu, "xen_evtchn_fifo_init")
    if ret < 0:
        k.xen.control_block.pop(cpu, None)
        k.log("xen:events: Using 2-level ABI", cpu)
        return
    k.xen.fifo = True
    k.log("xen:events: Using FIFO-based ABI", cpu)


def xen_evtchn_cpu_prepare(k: Kernel, cpu: int, target: int) -> Gen:
    """``xen_evtchn_cpu_prepare`` -> ``evtchn_fifo_percpu_init`` (on the bringing-up CPU)."""
    if k.xen is None or not k.xen.fifo or target in k.xen.control_block:
        return
    yield from init_control_block(k, cpu, target, "evtchn_fifo_percpu_init")


def xen_starting_cpu(k: Kernel, cpu: int) -> Gen:
    """``xen_starting_cpu``: register this CPU's vcpu_info once, enable the event PPI."""
    x = k.xen
    if cpu not in x.registered:
        k.log(f"Xen: initializing cpu{cpu}", cpu)
        vcpup = x.vcpu_info[cpu]
        arg = put_arg(k, cpu, struct.pack("<QII", vcpup >> 12, vcpup & 0xFFF, 0),
                      "xen_starting_cpu")  # fmt: skip
        err = yield from hypercall(k, cpu, __HYPERVISOR_vcpu_op,
                                   (VCPUOP_register_vcpu_info, cpu, arg), "xen_starting_cpu")  # fmt: skip
        if err:  # BUG_ON(err)
            raise KernelBug(cpu, "xen_starting_cpu", ENLIGHTEN_C, LINE_STARTING_CPU_BUG,
                            list(k.guest.cpus[cpu].frames))  # fmt: skip
        x.registered.add(cpu)
    # after_register_vcpu_info: enable_percpu_irq(xen_events_irq, 0)
    yield from k.drivers["gic"].enable_ppi(cpu, x.events_irq)


def xen_dying_cpu(k: Kernel, cpu: int) -> Gen:
    """``xen_dying_cpu``: disable_percpu_irq(xen_events_irq)."""
    if k.xen is not None and k.xen.starting_state and k.xen.events_irq:
        yield from k.drivers["gic"].disable_ppi(cpu, k.xen.events_irq)


def xenbus_init(k: Kernel, cpu: int) -> Gen:
    """``xenbus_init`` for dom0 (XS_LOCAL): ``xenstored_local_init`` and ``xb_init_comms``."""
    x = k.xen
    if x is None or not x.initial_domain:
        return
    k.alloc_pages(PAGE_SIZE, "xen-store", "xenstore ring page", dma=True)
    arg = put_arg(k, cpu, struct.pack("<HHI", DOMID_SELF, DOMID_SELF, 0), "xenstored_local_init")
    ret = yield from hypercall(k, cpu, __HYPERVISOR_event_channel_op,
                               (EVTCHNOP_alloc_unbound, arg), "xenstored_local_init")  # fmt: skip
    if ret:
        k.log(f"xenbus: Error initializing xenstore comms: {ret}", cpu, "warn")
        return
    x.store_evtchn = struct.unpack("<HHI", k.ram_read(arg, 8))[2]
    if x.fifo and not x.event_pages:  # bind_evtchn_to_irq -> evtchn_fifo_setup
        page = k.alloc_pages(PAGE_SIZE, "xen-evtchn", "FIFO event array page", dma=True)
        arg = put_arg(k, cpu, struct.pack("<Q", page >> 12), "evtchn_fifo_setup")
        ret = yield from hypercall(k, cpu, __HYPERVISOR_event_channel_op,
                                   (EVTCHNOP_expand_array, arg), "evtchn_fifo_setup")  # fmt: skip
        if ret == 0:
            x.event_pages.append(page)


def xen_arm_callback(k: Kernel, cpu: int) -> Gen:
    """``xen_arm_callback`` -> ``xen_hvm_evtchn_do_upcall``: clear evtchn_upcall_pending and
    the pending selector of this CPU's vcpu_info (no bound event is modelled beyond this)."""
    x = k.xen
    x.upcalls += 1
    info = x.vcpu_info.get(cpu)
    if info is not None and cpu in x.registered:
        owner = k.guest.regions.owner_at(info)
        k.ram_write(info, b"\0", owner, "__xen_evtchn_do_upcall")
        k.ram_write(info + 8, bytes(8), owner, "__xen_evtchn_do_upcall")
    yield from k.cost("irq_handler")


# -- hvc0 ------------------------------------------------------------------------------------


def hvc_chunks(text: bytes) -> list[bytes]:
    """``hvc_console_print``: the output loop filling ``c[N_OUTBUF]`` (a CR inserted before
    each LF) and calling ``put_chars`` whenever it is full and at the end."""
    out: list[bytes] = []
    c = bytearray()
    n, count, donecr = 0, len(text), False
    while count > 0 or c:
        if count > 0 and len(c) < N_OUTBUF:
            if text[n] == 0x0A and not donecr:
                c.append(0x0D)
                donecr = True
            else:
                c.append(text[n])
                n += 1
                donecr = False
                count -= 1
        else:
            out.append(bytes(c))  # dom0_write_console writes it all
            c.clear()
    return out


def console_write_call(k: Kernel, cpu: int, chunk: bytes) -> Hypercall:
    """``dom0_write_console``: the chunk in this CPU's buffer, CONSOLEIO_write."""
    addr = _slot(k, cpu) + XEN_SLOT_BUF
    k.ram_write(addr, chunk, _arg_owner(k), "hvc_console_print")
    return Hypercall(__HYPERVISOR_console_io, (CONSOLEIO_write, len(chunk), addr),
                     "dom0_write_console")  # fmt: skip


__all__ = [
    "XenGuest",
    "console_write_call",
    "fdt_find_hyper_node",
    "hvc_chunks",
    "xen_arm_callback",
    "xen_dying_cpu",
    "xen_early_init",
    "xen_evtchn_cpu_prepare",
    "xen_guest_init",
    "xen_initial_domain",
    "xen_starting_cpu",
    "xenbus_init",
]
