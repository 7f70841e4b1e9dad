"""start_kernel and setup_arch of arm64 Linux v5.15, for the DT and the EFI/ACPI paths.

Order (init/main.c ``start_kernel``, arch/arm64/kernel/setup.c ``setup_arch``; sheet §4.1):
"Booting Linux on physical CPU", "Linux version", ``setup_machine_fdt`` ("Machine model:"),
``parse_early_param``, ``xen_early_init`` (finds nothing on bare metal), ``efi_init``,
``arm64_memblock_init`` (memory from the DT or the EFI map; the image, initrd and DTB
reserved), ``acpi_boot_table_init`` (ACPI when acpi=force or the DT is a stub: the table
lines), ``psci_dt_init`` / ``psci_acpi_init``, ``smp_init_cpus``; "Kernel command line";
``mm_init`` (memblock_free_all -> the page allocator, "Memory: ..."); ``init_IRQ`` ->
``irqchip_init`` -> ``gic_of_init`` / ``gic_acpi_init``; ``time_init`` (sched_clock: stamps
start); ``rest_init`` -> early initcalls (the ITS MSI domains, ``efi_memreserve_root_init``)
-> ``smp_init`` -> device initcalls -> idle.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from guest import efi, xen_enlighten
from guest.cpu import Psci, Wfi
from guest.firmware import FirmwareError
from guest.firmware.acpi import parse_fadt, parse_header, parse_iort, parse_madt, walk_tables
from guest.firmware.fdt import Fdt, parse_dtb
from guest.irq_gic_v3 import GicV3
from guest.irq_gic_v3_its import ACPI_GICV3_ITS_MEM_SIZE, ItsDriver
from guest.memblock import PageAllocator
from guest.smp import smp_init, smp_init_cpus
from transport.abi import (
    ARM_SMCCC_VERSION_FUNC_ID,
    PSCI_0_2_FN_MIGRATE_INFO_TYPE,
    PSCI_0_2_FN_PSCI_VERSION,
    PSCI_1_0_FN_PSCI_FEATURES,
    PSCI_RET_NOT_SUPPORTED,
)

if TYPE_CHECKING:
    from guest.kernel import Kernel

Gen = Generator[Any, Any, Any]

#: MIDR_EL1 of QEMU's cortex-a57 (r1p0), as "[0x411fd070]" in every real log.
MIDR_CORTEX_A57 = 0x411FD070
PSCI_0_2_TOS_MP = 2
PSCI_0_2_FN64_CPU_SUSPEND = 0xC4000001
PSCI_1_0_FN64_SYSTEM_SUSPEND = 0xC400000E
PSCI_1_1_FN64_SYSTEM_RESET2 = 0xC4000012
ACPI_TABLE_ORDER = ("RSDP", "XSDT")


def _s64(v: int) -> int:
    v &= 2**64 - 1
    return v - 2**64 if v >> 63 else v


def start_kernel(k: Kernel) -> Gen:
    """``__primary_switched`` -> ``start_kernel`` on CPU0."""
    yield from k.call(0, "__primary_switched", k.call(0, "start_kernel", _start_kernel(k)))


def _start_kernel(k: Kernel) -> Gen:
    cpu = 0
    g = k.guest
    if k.spec.via_stub:
        efi.efi_stub(k)
    fdt = _read_dtb(k)
    if fdt is None:
        k.status = "panic"
        return
    k.drivers["fdt"] = fdt
    k.drivers["phys"] = lambda a: a
    k.possible_cpus = [0]
    k.log(f"Booting Linux on physical CPU 0x{0:010x} [0x{MIDR_CORTEX_A57:08x}]", cpu)
    k.log(f"Linux version {k.variant.release} (xen-gic-cosim) {k.variant.version}", cpu)
    yield from setup_arch(k, cpu)
    if k.status == "panic":
        return
    k.log(f"Kernel command line: {k.cmdline}", cpu)
    yield from k.cost("mm_init")
    mm_init(k, cpu)
    k.online.add(0)
    k.boots[0] = 1
    yield from k.call(cpu, "init_IRQ", k.call(cpu, "irqchip_init", irqchip_init(k, cpu)))
    if k.status == "panic":
        return
    time_init(k, cpu)
    console_init(k, cpu)
    yield from g.arch_timer_starting_cpu(k, cpu)
    yield from k.cost("time_init_to_early_initcalls")
    # rest_init -> kernel_init (PID 1, still "swapper/0" until it execs /init) runs the
    # initcalls and smp_init; the boot CPU's idle task takes over when it is done
    k.current[cpu] = (1, "swapper/0")
    yield from early_initcalls(k, cpu)
    yield from k.cost("early_initcalls_to_smp")
    yield from smp_init(k, cpu)
    if k.xen is not None:  # postcore_initcall(xenbus_init)
        yield from k.call(cpu, "xenbus_init", xen_enlighten.xenbus_init(k, cpu))
    yield from k.cost("smp_to_initcalls")
    yield from g.probe_devices(k, cpu)
    k.current.pop(cpu, None)
    k.status = "booted"
    g.kernel_booted(k)
    while True:  # cpu_startup_entry -> do_idle
        yield Wfi()


def _read_dtb(k: Kernel) -> Fdt | None:
    """``setup_machine_fdt``: validate and map the DTB at x0."""
    ram = k.guest.ram
    try:
        head = ram.read(k.spec.dtb_addr, 8)
        total = struct.unpack(">I", head[4:8])[0]
        data = ram.read(k.spec.dtb_addr, total)
        fdt = parse_dtb(data)
    except (FirmwareError, ValueError) as e:
        k.log(
            f"Invalid device tree blob at physical address 0x{k.spec.dtb_addr:x}: {e}", 0, "emerg"
        )
        k.guest.printk.emit("emerg", "Kernel panic - not syncing: Please check your bootloader.")
        return None
    k.spec.dtb_size = total
    return fdt


def setup_arch(k: Kernel, cpu: int) -> Gen:
    """arm64 ``setup_arch``."""
    fdt: Fdt = k.drivers["fdt"]
    root = fdt.root
    model = root.getprop("model")
    if model is not None:
        k.machine_model = model.rstrip(b"\0").decode(errors="replace")
        k.log(f"Machine model: {k.machine_model}", cpu)
        k.splats.hardware_name = f"{k.machine_model} (DT)"
    chosen = fdt.find("/chosen")
    bootargs = ""
    if chosen is not None and chosen.getprop("bootargs") is not None:
        bootargs = chosen.string("bootargs")
    if k.spec.extra_bootargs:
        bootargs = (bootargs + " " + k.spec.extra_bootargs).strip()
    k.cmdline = bootargs
    parse_early_param(k, bootargs)
    yield from k.call(cpu, "xen_early_init", xen_enlighten.xen_early_init(k, cpu))
    efi.efi_init(k)
    params = k.efi.get("params")
    if k.variant.efi_paravirt and params is not None and params.source == "/hypervisor/uefi":
        k.efi["enabled"].add("EFI_PARAVIRT")  # v6.2 efi_get_fdt_params (d85e3e349407)
    arm64_memblock_init(k, fdt)
    yield from k.cost("setup_arch")
    acpi = acpi_boot_table_init(k, fdt, cpu)
    if acpi is None:
        k.acpi_disabled = True
    yield from psci_init(k, cpu, fdt)
    smp_init_cpus(k, fdt)


def parse_early_param(k: Kernel, cmdline: str) -> None:
    """``parse_early_param``: the parameters this model acts on (maxcpus=, acpi=)."""
    k.drivers["acpi_param"] = "auto"
    for word in cmdline.split():
        if word.startswith("maxcpus="):
            try:
                k.max_cpus = int(word.split("=", 1)[1], 0)
            except ValueError:
                k.log("Malformed early option 'maxcpus'", 0, "warn")
        elif word in ("acpi=force", "acpi=on", "acpi=off"):
            k.drivers["acpi_param"] = word.split("=", 1)[1]


def arm64_memblock_init(k: Kernel, fdt: Fdt) -> None:
    """``early_init_dt_scan_memory`` (without an EFI memory map) + ``arm64_memblock_init``."""
    if efi.EFI_MEMMAP not in k.efi["enabled"]:
        for node in fdt.root.children:
            dt = node.getprop("device_type")
            if dt is None or dt.rstrip(b"\0") != b"memory":
                continue
            cells = node.cells("reg")
            for i in range(0, len(cells) - 3, 4):
                base = cells[i] << 32 | cells[i + 1]
                size = cells[i + 2] << 32 | cells[i + 3]
                k.memblock.add(base, size)
    lay = k.image.layout
    k.memblock.reserve(lay.stext, lay.end - lay.stext, k.owner("image", "kernel image"))
    chosen = fdt.find("/chosen")
    initrd = k.spec.initrd
    if chosen is not None and chosen.getprop("linux,initrd-start") is not None:
        start = chosen.number("linux,initrd-start")
        end = chosen.number("linux,initrd-end")
        initrd = (start, end - start)
    if initrd is not None and initrd[1] > 0:
        k.memblock.reserve(initrd[0], initrd[1], k.owner("initrd", "initrd"))
        k.spec.initrd = initrd
    k.memblock.reserve(k.spec.dtb_addr, k.spec.dtb_size, k.owner("dtb", "device tree blob"))
    for base, size in fdt.mem_reserve:
        k.memblock.reserve(base, size, k.owner("dt-rsv", "DT /memreserve/"))


def _dt_is_stub(fdt: Fdt) -> bool:
    """v5.15 ``dt_scan_depth1_nodes``: only /chosen (and a Xen /hypervisor) at depth 1."""
    for c in fdt.root.children:
        name = c.name.split("@", 1)[0]
        if name == "chosen":
            continue
        if name == "hypervisor" and b"xen,xen" in (c.getprop("compatible") or b""):
            continue
        return False
    return True


def _fix(s: str, n: int) -> str:
    """``acpi_tb_fix_string`` + ``%-N.Ns``."""
    s = "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in s[:n])
    return f"{s:<{n}}"


def acpi_boot_table_init(k: Kernel, fdt: Fdt, cpu: int) -> Any:
    """arm64 ``acpi_boot_table_init``: the table lines; None when ACPI stays off."""
    param = k.drivers.get("acpi_param", "auto")
    if param == "off" or (param == "auto" and not _dt_is_stub(fdt)):
        return None
    rsdp = k.efi.get("tables", {}).get(efi.ACPI_20_TABLE_GUID)
    if rsdp is None:
        k.log("ACPI: Unable to find RSDP", cpu, "err")
        return None
    try:
        tables = walk_tables(k.guest.ram.read, rsdp)
    except (FirmwareError, ValueError) as e:
        k.log(f"ACPI: Failed to init ACPI tables: {e}", cpu, "err")
        return None
    k.log("ACPI: Early table checksum verification disabled", cpu)
    k.log(
        f"ACPI: RSDP 0x{rsdp:016X} {tables.rsdp.length:06X} (v{tables.rsdp.revision:02d} {_fix(tables.rsdp.oem_id, 6)})",
        cpu,
    )
    order: list[str] = []
    xsdt_raw = k.guest.ram.read(tables.rsdp.xsdt_address, 36)
    _print_table(k, cpu, tables.rsdp.xsdt_address, xsdt_raw)
    for addr in tables.xsdt:
        for sig, (a, data) in tables.tables.items():
            if a == addr:
                _print_table(k, cpu, a, data)
                order.append(sig)
                if sig == "FACP" and "DSDT" in tables.tables:
                    da, dd = tables.tables["DSDT"]
                    _print_table(k, cpu, da, dd)
    k.acpi_disabled = False
    k.drivers["acpi"] = tables
    return tables


def _print_table(k: Kernel, cpu: int, addr: int, data: bytes) -> None:
    """``acpi_tb_print_table_header``."""
    h = parse_header(data)
    k.log(
        f"ACPI: {_fix(h.signature, 4)} 0x{addr:016X} {h.length:06X} (v{h.revision:02d} {_fix(h.oem_id, 6)} "
        f"{_fix(h.oem_table_id, 8)} {h.oem_revision:08X} {_fix(h.creator_id, 4)} {h.creator_revision:08X})",
        cpu,
    )


def psci_init(k: Kernel, cpu: int, fdt: Fdt) -> Gen:
    """``psci_dt_init`` / ``psci_acpi_init`` -> ``psci_0_2_init`` -> ``psci_probe``."""
    g = k.guest
    if not k.acpi_disabled:
        k.log("psci: probing for conduit method from ACPI.", cpu)
        fadt = parse_fadt(k.drivers["acpi"].get("FACP"))
        if not fadt.psci_compliant:
            k.log("psci: PSCI is not implemented", cpu)
            return
        k.psci_conduit = "hvc" if fadt.psci_use_hvc else "smc"
    else:
        nodes = fdt.compatible_nodes("arm,psci-0.2") or fdt.compatible_nodes("arm,psci-1.0")
        if not nodes:
            k.log("psci: no PSCI node in the device tree", cpu, "warn")
            return
        k.log("psci: probing for conduit method from DT.", cpu)
        method = nodes[0].string("method") if nodes[0].getprop("method") else "smc"
        k.psci_conduit = method
    g.conduit = k.psci_conduit
    ver = (yield Psci(PSCI_0_2_FN_PSCI_VERSION, (), "psci_0_2_get_version")) & 0xFFFF_FFFF
    major, minor = ver >> 16, ver & 0xFFFF
    k.psci_version = ver
    k.log(f"psci: PSCIv{major}.{minor} detected in firmware.", cpu)
    if major == 0 and minor < 2:
        k.log("psci: Conflicting PSCI version detected.", cpu, "err")
        return
    k.log("psci: Using standard PSCI v0.2 function IDs", cpu)
    typ = _s64((yield Psci(PSCI_0_2_FN_MIGRATE_INFO_TYPE, (), "psci_init_migrate")))
    if typ == PSCI_0_2_TOS_MP:
        k.log("psci: Trusted OS migration not required", cpu)
    if major >= 1:
        # psci_init_smccc
        smccc = 0x10000
        feat = _s64(
            (yield Psci(PSCI_1_0_FN_PSCI_FEATURES, (ARM_SMCCC_VERSION_FUNC_ID,), "psci_init_smccc"))
        )
        if feat != PSCI_RET_NOT_SUPPORTED:
            ret = (yield Psci(ARM_SMCCC_VERSION_FUNC_ID, (), "psci_init_smccc")) & 0xFFFF_FFFF
            if ret >= 0x10001:
                smccc = ret
        k.log(f"psci: SMC Calling Convention v{smccc >> 16}.{smccc & 0xFFFF}", cpu)
        yield Psci(PSCI_1_0_FN_PSCI_FEATURES, (PSCI_0_2_FN64_CPU_SUSPEND,), "psci_init_cpu_suspend")
        yield Psci(
            PSCI_1_0_FN_PSCI_FEATURES, (PSCI_1_0_FN64_SYSTEM_SUSPEND,), "psci_init_system_suspend"
        )
        yield Psci(
            PSCI_1_0_FN_PSCI_FEATURES, (PSCI_1_1_FN64_SYSTEM_RESET2,), "psci_init_system_reset2"
        )


def mm_init(k: Kernel, cpu: int) -> None:
    """``mm_init`` -> ``memblock_free_all`` (the page allocator) -> ``mem_init_print_info``."""
    k.alloc = PageAllocator(k.memblock, k.gen)
    total = k.memblock.total_memory()
    reserved = k.memblock.total_reserved()
    cma_k = 65536  # CONFIG_CMA_SIZE_MBYTES=64 (Debian); the CMA area itself is not modelled
    avail = max(0, total - reserved) // 1024 - cma_k
    k.log(k.image.layout.memory_line(max(avail, 0), total // 1024, reserved // 1024, cma_k), cpu)


def irqchip_init(k: Kernel, cpu: int) -> Gen:
    """``irqchip_init``: OF (``of_irq_init`` -> ``gic_of_init``) or ACPI
    (``acpi_probe_device_table`` -> MADT -> ``gic_acpi_init``)."""
    if k.acpi_disabled:
        fdt: Fdt = k.drivers["fdt"]
        nodes = fdt.compatible_nodes("arm,gic-v3")
        if not nodes:
            k.log("irqchip: no GICv3 in the device tree", cpu, "err")
            return
        yield from k.call(
            cpu, "of_irq_init", k.call(cpu, "gic_of_init", gic_of_init(k, cpu, fdt, nodes[0]))
        )
    else:
        body = k.call(cpu, "acpi_match_madt", k.call(cpu, "gic_acpi_init", gic_acpi_init(k, cpu)))
        for fn in (
            "acpi_table_parse_entries_array",
            "acpi_table_parse_entries",
            "acpi_table_parse_madt",
            "__acpi_probe_device_table",
        ):
            body = k.call(cpu, fn, body)
        yield from body


def _reg_pairs(node: Any, ac: int, sc: int) -> list[tuple[int, int]]:
    cells = node.cells("reg")
    out = []
    step = ac + sc
    for i in range(0, len(cells) - step + 1, step):
        a = 0
        for c in cells[i : i + ac]:
            a = a << 32 | c
        s = 0
        for c in cells[i + ac : i + step]:
            s = s << 32 | c
        out.append((a, s))
    return out


def gic_of_init(k: Kernel, cpu: int, fdt: Fdt, node: Any) -> Gen:
    """``gic_of_init``: distributor, redistributor regions, stride; ITS children."""
    root = fdt.root
    ac = root.u32("#address-cells") if root.getprop("#address-cells") else 2
    sc = root.u32("#size-cells") if root.getprop("#size-cells") else 1
    regs = _reg_pairs(node, ac, sc)
    nr = node.u32("#redistributor-regions") if node.getprop("#redistributor-regions") else 1
    k.gic.fw = "dt"
    k.gic.dist_base = regs[0][0]
    k.gic.redist_regions = regs[1 : 1 + nr]
    k.gic.redist_stride = (
        node.number("redistributor-stride") if node.getprop("redistributor-stride") else 0
    )
    k.gic.dt_path = node.path
    iac = node.u32("#address-cells") if node.getprop("#address-cells") else ac
    isc = node.u32("#size-cells") if node.getprop("#size-cells") else sc
    for child in node.children:
        compat = child.getprop("compatible") or b""
        if b"arm,gic-v3-its" not in compat:
            continue
        if child.getprop("msi-controller") is None:
            k.log(f"{child.path}: no msi-controller property, ITS ignored", cpu, "warn")
            continue
        base, size = _reg_pairs(child, iac, isc)[0]
        k.gic.its.append({"base": base, "size": size, "name": child.name, "dt_path": child.path})
    yield from _gic_probe(k, cpu)


def gic_acpi_init(k: Kernel, cpu: int) -> Gen:
    """``gic_acpi_init``: MADT GICD/GICR (or per-GICC GICR), ITS entries (its_acpi_probe)."""
    madt = parse_madt(k.drivers["acpi"].get("APIC"))
    k.gic.fw = "acpi"
    k.gic.dist_base = madt.gicd[0].base_address
    if madt.gicr:
        k.gic.redist_regions = [(r.base_address, r.length) for r in madt.gicr]
    else:
        k.gic.redist_regions = [(c.gicr_base_address, 0x20000) for c in madt.gicc if c.enabled]
    for its in madt.its:
        k.gic.its.append(
            {
                "base": its.base_address,
                "size": ACPI_GICV3_ITS_MEM_SIZE,
                "name": f"ITS@0x{its.base_address:x}",
                "id": its.translation_id,
            }
        )
    iort = k.drivers["acpi"].get("IORT")
    if iort is not None:
        k.drivers["iort"] = parse_iort(iort)
    yield from _gic_probe(k, cpu)


def _gic_probe(k: Kernel, cpu: int) -> Gen:
    gic = GicV3(k)
    k.drivers["gic"] = gic
    k.drivers["its"] = ItsDriver(k)
    if not (yield from gic.gic_validate_dist_version(cpu)):
        k.log(f"GICv3: no distributor detected at @{k.gic.dist_base:#x}, giving up", cpu, "err")
        return
    yield from k.call(cpu, "gic_init_bases", gic.gic_init_bases(cpu))


def console_init(k: Kernel, cpu: int) -> None:
    """``console_init`` -> the console initcalls: under Xen ``xen_cons_init`` registers hvc0
    (``register_console``: "printk: console [hvc0] enabled"), which replays the log buffer
    through ``dom0_write_console``; the bare-metal model has no console device."""
    if not k.xen_domain:
        return
    consoles = [w.split("=", 1)[1] for w in k.cmdline.split() if w.startswith("console=")]
    if consoles and "hvc0" not in consoles:
        return
    k.log("printk: console [hvc0] enabled", cpu)
    k.guest.console_register(k)


def time_init(k: Kernel, cpu: int) -> None:
    """``time_init`` -> arch_timer -> ``sched_clock_register``: printk stamps start."""
    k.log("arch_timer: cp15 timer(s) running at 62.50MHz (virt).", cpu)
    k.guest.printk.time_init()
    k.log("sched_clock: 57 bits at 63MHz, resolution 16ns, wraps every 4398046511096ns", cpu)


def early_initcalls(k: Kernel, cpu: int) -> Gen:
    """``do_pre_smp_initcalls``: the ITS MSI domains (its_pmsi_init, its_pci_msi_init,
    its_fsl_mc_msi_init), ``efi_memreserve_root_init``, ``arm_enable_runtime_services``."""
    if k.xen is not None:  # arch/arm/xen/enlighten.c: the first early initcall
        yield from k.call(cpu, "xen_guest_init", xen_enlighten.xen_guest_init(k, cpu))
    its = k.drivers.get("its")
    if its is not None and its.nodes:
        for node in its.nodes:
            if k.gic.fw == "dt":
                k.log(f"Platform MSI: {node.name} domain created", cpu)
                k.log(f"PCI/MSI: {node.dt_path} domain created", cpu)
                k.log(f"fsl-mc MSI: {node.name} domain created", cpu)
            else:
                k.log(f"Platform MSI: ITS@0x{node.phys_base:x} domain created", cpu)
                k.log(f"PCI/MSI: ITS@0x{node.phys_base:x} domain created", cpu)
                k.log(f"fsl-mc MSI: ITS@0x{node.phys_base:x} domain created", cpu)
            yield from k.cost("early_initcall")
    efi.efi_memreserve_root_init(k)
    # arm_enable_runtime_services
    if efi.EFI_BOOT not in k.efi["enabled"]:
        k.log("EFI services will not be available.", cpu)
    elif "EFI_RUNTIME_SERVICES" in k.efi["enabled"]:
        k.log("EFI runtime services access via paravirt.", cpu)
    else:
        k.log("Remapping and enabling EFI services.", cpu)
