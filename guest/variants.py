"""Kernel variants as data: what differs between the modelled kernels, one table entry each.

``gic_reserve_range`` (drivers/irqchip/irq-gic-v3-its.c) is the function the 2022 patch
changed; a variant names the early returns it takes before the v5.15 body
(``efi_enabled(EFI_CONFIG_TABLES) ? efi_mem_reserve_persistent() : 0``). Only ``v5.15`` is
exercised by this issue; the Xen variants of the next issue are entries here, not forks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class KernelVariant:
    name: str
    release: str  # init_utsname()->release
    version: str  # init_utsname()->version
    #: early-return conditions of gic_reserve_range, checked in order: "xen_domain" (the
    #: patch), "efi_paravirt" (a prediction: EFI_PARAVIRT set on Xen dom0 since v6.2).
    reserve_skip: tuple[str, ...] = ()
    #: where the pending-table reservation happens: its_cpu_init (<= v5.16) or the
    #: CPUHP_AP_ONLINE_DYN callback its_cpu_memreserve_lpi (v5.17+).
    pending_reserve_site: Literal["its_cpu_init", "its_cpu_memreserve_lpi"] = "its_cpu_init"
    #: an undefined instruction in the kernel: BUG_ON in do_undefinstr (<= v5.18) or
    #: die("Oops - Undefined instruction") with the ESR (v5.19+).
    undef_in_kernel: Literal["bug", "die"] = "bug"
    #: print_oops_end_marker: a random id incremented per marker, or zeros (v5.18+).
    oops_id: Literal["random", "zero"] = "random"
    #: GICv3 banner: "%d PPIs implemented" + "Distributor has ... Range Selector support"
    #: (<= v5.18) or "GICv3 features: %d PPIs%s%s" (v5.19+).
    gicv3_banner: Literal["5.15", "5.19"] = "5.15"
    #: the EFI stub and efi_config_parse_tables: "5.15" (efi_pe_entry prints "Generating
    #: empty DTB" before loading the initrd, passes it in /chosen linux,initrd-*, puts a
    #: 64-byte RNG seed in EFI_RUNTIME_SERVICES_DATA; the kernel prints "efi: seeding entropy
    #: pool") or "6.1" (efi_stub_common loads the initrd first and installs the INITRD table,
    #: f4dc7fffa987; 32-byte seed in EFI_ACPI_RECLAIM_MEMORY; no "seeding" line, 196dff2712ca).
    efi_stub: Literal["5.15", "6.1"] = "5.15"
    prediction: str = ""  # non-empty: modelled from the sheet, not a source read


VARIANTS: dict[str, KernelVariant] = {
    v.name: v
    for v in (
        KernelVariant("v5.15", "5.15.0", "#1 SMP"),
        KernelVariant(
            "v5.15+xen-skip-reserve",
            "5.15.0",
            "#1 SMP",
            reserve_skip=("xen_domain",),
        ),
        KernelVariant(
            "v6.1",
            "6.1.0",
            "#1 SMP",
            pending_reserve_site="its_cpu_memreserve_lpi",
            undef_in_kernel="die",
            oops_id="zero",
            gicv3_banner="5.19",
            efi_stub="6.1",
            prediction="pending-table reservation path modelled from linux-gicv3-its.md §2.11",
        ),
        KernelVariant(
            "v6.2+efi-paravirt",
            "6.2.0",
            "#1 SMP",
            pending_reserve_site="its_cpu_memreserve_lpi",
            undef_in_kernel="die",
            oops_id="zero",
            gicv3_banner="5.19",
            efi_stub="6.1",
            prediction="EFI_PARAVIRT does not reach gic_reserve_range (sheet §4.3, inference)",
        ),
    )
}


def variant(name: str) -> KernelVariant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"guest.kernel = {name!r}: one of {', '.join(VARIANTS)}") from None
