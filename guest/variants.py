"""Kernel variants as data: what differs between the modelled kernels, one table entry each.

``gic_reserve_range`` (drivers/irqchip/irq-gic-v3-its.c) is the function the 2022 patch
changed; a variant names the early returns it takes before the v5.15 body
(``efi_enabled(EFI_CONFIG_TABLES) ? efi_mem_reserve_persistent() : 0``):

* ``v5.15`` — the body as is;
* ``v5.15+xen-skip-reserve`` — Leo Yan's 2022 patch: ``if (xen_domain()) return 0;`` first;
* ``v6.1`` — v5.17+ code: the pending-table reservation moved to ``its_cpu_memreserve_lpi``,
  the CPUHP_AP_ONLINE_DYN callback ``its_lpi_memreserve_init`` registers (per-CPU flags
  RD_LOCAL_*), oops_id gone, the v5.19 GICv3 banner and 19 taint flags;
* ``v6.2+efi-paravirt`` — v6.1 plus EFI_PARAVIRT set from /hypervisor/uefi (d85e3e349407),
  which ``gic_reserve_range`` never consults, so nothing changes for the GIC.

What the sheets mark UNVERIFIED is listed by :func:`predictions` and reported as such.
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
    #: print_tainted's flag count: 18 in v5.15, 19 from v5.19 (TAINT_TEST 'N').
    taint_flags: Literal[18, 19] = 18
    #: efi_get_fdt_params sets EFI_PARAVIRT when the parameters come from /hypervisor/uefi
    #: (d85e3e349407, v6.2; backported to 5.15.162).
    efi_paravirt: bool = False


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
            taint_flags=19,
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
            taint_flags=19,
            efi_paravirt=True,
        ),
    )
}


#: Model-wide predictions (the fact sheets mark these UNVERIFIED), by the variants they touch.
PREDICTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "WARN line of its_setup_lpi_prop_table's gic_reserve_range is 2250 (sheet §9: ≈2250?)",
        ("v5.15", "v5.15+xen-skip-reserve", "v6.1", "v6.2+efi-paravirt"),
    ),
    (
        "its_cpu_memreserve_lpi's WARN at irq-gic-v3-its.c:5239 (the v5.17 line; 6.x not read), "
        "its frames, offsets and the cpuhp/N PIDs (sheet §2.11: UNVERIFIED exact frames)",
        ("v6.1", "v6.2+efi-paravirt"),
    ),
    (
        "the BUG lines of arch/arm/xen/enlighten.c (xen_starting_cpu :176, xen_guest_init :439) "
        "are estimates; only a refused hypercall reaches them",
        ("v5.15", "v5.15+xen-skip-reserve", "v6.1", "v6.2+efi-paravirt"),
    ),
    (
        "under Xen ACPI dom0 the warnings remain on current kernels (sheet §7: UNVERIFIED by a "
        "real log)",
        ("v6.1", "v6.2+efi-paravirt"),
    ),
)


def predictions(name: str) -> list[str]:
    """The predictions (not source-read facts) a run of kernel ``name`` rests on."""
    v = variant(name)
    out = [v.prediction] if v.prediction else []
    out += [text for text, names in PREDICTIONS if name in names]
    return out


def variant(name: str) -> KernelVariant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"guest.kernel = {name!r}: one of {', '.join(VARIANTS)}") from None
