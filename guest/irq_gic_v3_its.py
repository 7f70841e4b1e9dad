"""drivers/irqchip/irq-gic-v3-its.c of Linux v5.15, function by function (linux-gicv3-its.md §2).

Probe and tables: ``its_init`` -> ``its_of_probe`` / ``its_acpi_probe`` -> ``its_probe_one``
(``its_force_quiescent``, "ITS [mem ...]", the command queue, ``its_alloc_tables`` with
``its_probe_baser_psz``, ``its_parse_indirect_baser``, ``its_setup_baser`` and its
"ITS@0x...: allocated %d %s @%lx (%s, esz %d, psz %dK, shr %d)" line, GITS_CBASER with the
shareability fallback, GITS_CWRITER = 0, GITS_CTLR.Enabled) -> ``allocate_lpi_tables``
(``enabled_lpis_allowed``, ``its_setup_lpi_prop_table`` with the 0xa2 reset
``gic_reset_prop_table``, ``its_lpi_init`` -> ``free_lpi_range``, one pending table per
possible CPU).

Per CPU: ``its_cpu_init`` -> ``redist_disable_lpis`` -> ``its_cpu_init_lpis`` (the
PREALLOCATED reuse path, ``gic_reserve_range`` + WARN_ON at irq-gic-v3-its.c:3074,
PROPBASER/PENDBASER with the read-back shareability fallback, EnableLPIs, "CPU%d: using %s
LPI pending table @%pa") -> ``its_cpu_init_collections`` (MAPC + SYNC, INVALL through the
queue with CREADR polling, ``its_send_single_command``).

Devices: ``its_msi_prepare`` -> ``its_create_device`` (``its_alloc_device_table`` L2 pages,
ITT from kzalloc, ``its_lpi_alloc``, MAPD), ``its_irq_domain_alloc``,
``its_irq_domain_activate`` (``its_select_cpu``, MAPTI + SYNC), ``its_unmask_irq`` ->
``lpi_update_config`` (``lpi_write_config`` + INV + SYNC), ``its_irq_domain_deactivate``.

The reservation hooks (``gic_reserve_range``, ``gic_check_reserved_range``) follow the
kernel variant (guest/variants.py).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gic import its_commands as C
from guest import efi

if TYPE_CHECKING:
    from guest.kernel import Kernel

Gen = Generator[Any, Any, Any]

GITS_CTLR = 0x0000
GITS_IIDR = 0x0004
GITS_TYPER = 0x0008
GITS_CBASER = 0x0080
GITS_CWRITER = 0x0088
GITS_CREADR = 0x0090
GITS_BASER = 0x0100
GITS_BASER_NR_REGS = 8
GITS_PIDR2 = 0xFFE8
GITS_TRANSLATER = 0x10040
GITS_CTLR_ENABLE = 1 << 0
GITS_CTLR_ImDe = 1 << 1
GITS_CTLR_QUIESCENT = 1 << 31

GITS_BASER_VALID = 1 << 63
GITS_BASER_INDIRECT = 1 << 62
GITS_BASER_TYPE_SHIFT = 56
GITS_BASER_ENTRY_SIZE_SHIFT = 48
GITS_BASER_PAGE_SIZE_SHIFT = 8
GITS_BASER_PAGE_SIZE_MASK = 3 << 8
GITS_BASER_PAGES_SHIFT = 0
GITS_BASER_PAGES_MAX = 256
GITS_BASER_SHAREABILITY_SHIFT = 10
GITS_BASER_SHAREABILITY_MASK = 3 << 10
GITS_BASER_InnerShareable = 1 << 10
GITS_BASER_CACHEABILITY_MASK = 7 << 59
GITS_BASER_RaWaWb = 7 << 59
GITS_BASER_nC = 1 << 59
GITS_BASER_nCnB = 0
GITS_BASER_TYPE_NONE = 0
GITS_BASER_TYPE_DEVICE = 1
GITS_BASER_TYPE_VCPU = 2
GITS_BASER_TYPE_COLLECTION = 4
GITS_LVL1_ENTRY_SIZE = 8
GITS_CBASER_VALID = 1 << 63
GITS_CBASER_RaWaWb = 7 << 59
GITS_CBASER_nC = 1 << 59
GITS_CBASER_InnerShareable = 1 << 10
GITS_CBASER_SHAREABILITY_MASK = 3 << 10
GITS_CBASER_CACHEABILITY_MASK = 7 << 59
GITS_TYPER_PTA = 1 << 19

GICR_CTLR = 0x0000
GICR_TYPER = 0x0008
GICR_PROPBASER = 0x0070
GICR_PENDBASER = 0x0078
GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_CTLR_RWP = 1 << 3
GICR_TYPER_PLPIS = 1 << 0
GICR_PROPBASER_IDBITS_MASK = 0x1F
GICR_PROPBASER_InnerShareable = 1 << 10
GICR_PROPBASER_RaWaWb = 7 << 7
GICR_PROPBASER_nC = 1 << 7
GICR_PROPBASER_SHAREABILITY_MASK = 3 << 10
GICR_PROPBASER_CACHEABILITY_MASK = 7 << 7
GICR_PENDBASER_InnerShareable = 1 << 10
GICR_PENDBASER_RaWaWb = 7 << 7
GICR_PENDBASER_nC = 1 << 7
GICR_PENDBASER_SHAREABILITY_MASK = 3 << 10
GICR_PENDBASER_CACHEABILITY_MASK = 7 << 7
PROPBASER_PA_MASK = ((1 << 52) - 1) & ~0xFFF  # GENMASK_ULL(51, 12)
PENDBASER_PA_MASK = ((1 << 52) - 1) & ~0xFFFF  # GENMASK_ULL(51, 16)

RDIST_FLAGS_PROPBASE_NEEDS_FLUSHING = 1 << 0
RDIST_FLAGS_RD_TABLES_PREALLOCATED = 1 << 1
ITS_FLAGS_CMDQ_NEEDS_FLUSHING = 1 << 0

ITS_CMD_QUEUE_SZ = 0x10000
ITS_CMD_SIZE = 32
ITS_ITT_ALIGN = 256
ITS_MAX_LPI_NRBITS = 16
LPI_PROP_DEFAULT_PRIO = 0xA0
LPI_PROP_GROUP1 = 1 << 1
LPI_PROP_ENABLED = 1 << 0
ACPI_GICV3_ITS_MEM_SIZE = 0x20000
PAGE_SIZE = 0x1000
SZ_64K = 0x10000
MAX_ORDER = 11

ENODEV, ENOMEM, ENXIO, EBUSY, ETIMEDOUT, ENOSPC = 19, 12, 6, 16, 110, 28

ITS_FILE = "drivers/irqchip/irq-gic-v3-its.c"
#: Line of ``WARN_ON(gic_reserve_range(paddr, LPI_PENDBASE_SZ))`` in v5.15 (sheet §2.9,
#: cross-checked against 5.14-rc4, 5.15.23 and the 5.16 pre-image).
LINE_PENDING_RESERVE = 3074
#: Line of the property table's ``WARN_ON(gic_reserve_range(...))``: UNVERIFIED estimate
#: (sheet §9: "≈2250?").
LINE_PROP_RESERVE = 2250
#: Lines of the PREALLOCATED path's two WARN_ONs in its_cpu_init_lpis: UNVERIFIED
#: estimates (a few lines above 3074 in the same function).
LINE_PROPBASE_MISMATCH = 3060
LINE_PENDING_NOT_RESERVED = 3066
#: ``WARN_ON(gic_reserve_range(paddr, LPI_PENDBASE_SZ))`` in its_cpu_memreserve_lpi: line 5239
#: of the v5.17 tree (the irq/core pull of 2022-01, counted from its hunks); the 6.x line is a
#: prediction (guest/variants.py PREDICTIONS).
LINE_MEMRESERVE_PENDING = 5239
#: The dynamic CPUHP_AP_ONLINE_DYN state its_lpi_memreserve_init gets (first dynamic slot).
CPUHP_AP_ONLINE_DYN = "irqchip/arm/gicv3/memreserve:online"

BASE_TYPE_STRING = {
    GITS_BASER_TYPE_DEVICE: "Devices",
    GITS_BASER_TYPE_VCPU: "Virtual CPUs",
    3: "Reserved (3)",
    GITS_BASER_TYPE_COLLECTION: "Interrupt Collections",
    5: "Reserved (5)",
    6: "Reserved (6)",
    7: "Reserved (7)",
}


def get_order(size: int) -> int:
    order, pages = 0, (size + PAGE_SIZE - 1) // PAGE_SIZE
    while (1 << order) < pages:
        order += 1
    return order


def ilog2(n: int) -> int:
    return n.bit_length() - 1


@dataclass
class Baser:
    val: int = 0
    base: int = 0
    order: int = 0
    psz: int = SZ_64K


@dataclass
class ItsNode:
    phys_base: int
    size: int
    name: str  # "ITS@0x8080000" (ACPI) or the DT node name
    dt_path: str = ""
    typer: int = 0
    cmd_base: int = 0
    cmd_write: int = 0  # offset of the next free slot
    flags: int = 0
    tables: list[Baser] = field(
        default_factory=lambda: [Baser() for _ in range(GITS_BASER_NR_REGS)]
    )
    collections: dict[int, int] = field(default_factory=dict)  # cpu -> target_address
    devices: dict[int, ItsDevice] = field(default_factory=dict)

    @property
    def device_ids(self) -> int:
        return ((self.typer >> 13) & 0x1F) + 1

    @property
    def ite_size(self) -> int:
        return ((self.typer >> 4) & 0xF) + 1


@dataclass
class ItsDevice:
    its: ItsNode
    device_id: int
    nr_ites: int
    itt: int
    lpi_base: int
    nr_lpis: int
    lpi_map: list[bool] = field(default_factory=list)
    col_map: list[int] = field(default_factory=list)


class ItsDriver:
    """The ITS driver's globals (``its_nodes``, ``gic_rdists``, ``lpi_range_list``)."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.nodes: list[ItsNode] = []
        self.flags = 0
        self.lpi_id_bits = 0
        self.prop_table_pa = 0
        self.lpi_ranges: list[list[int]] = []  # [base, span], sorted
        self.pend_page: dict[int, int | None] = {}  # cpu -> pending table PA (or None)
        self.pend_pa: dict[int, int] = {}  # cpu -> the pending table in use (allocated or reused)
        self.lpi_enabled: dict[int, bool] = {}
        self.lpi_count: dict[int, int] = {}  # cpu -> unmanaged LPIs targeted
        self.lpi_owner: dict[int, tuple[str, int]] = {}  # hwirq -> (device name, event)
        #: v5.17+: RD_LOCAL_PENDTABLE_PREALLOCATED / RD_LOCAL_MEMRESERVE_DONE per CPU, and
        #: the CPUHP_AP_ONLINE_DYN state its_lpi_memreserve_init registered (None: none).
        self.pendtable_preallocated: set[int] = set()
        self.memreserve_done: set[int] = set()
        self.memreserve_state: str | None = None
        self.lpi_dev: dict[int, ItsDevice] = {}  # hwirq -> its device

    # -- sizes ------------------------------------------------------------------------------

    @property
    def LPI_PROPBASE_SZ(self) -> int:
        return max(SZ_64K, -(-(1 << self.lpi_id_bits) // SZ_64K) * SZ_64K)

    @property
    def LPI_PENDBASE_SZ(self) -> int:
        return max(SZ_64K, -(-((1 << self.lpi_id_bits) // 8) // SZ_64K) * SZ_64K)

    def rd(self, cpu: int) -> int:
        return self.k.drivers["gic"].rd_base[cpu]

    # -- its_init ---------------------------------------------------------------------------

    def its_init(self, cpu: int) -> Gen:
        """``its_init``."""
        k = self.k
        for desc in k.gic.its:
            yield from self.its_probe_one(cpu, desc)
        if not self.nodes:
            k.log("ITS: No ITS available, not enabling LPIs", cpu, "warn")
            return -ENXIO
        err = yield from self.allocate_lpi_tables(cpu)
        return err

    def its_probe_one(self, cpu: int, desc: dict[str, Any]) -> Gen:
        """``its_probe_one``."""
        k = self.k
        base, size = desc["base"], desc["size"]
        why = "its_probe_one"
        val = (yield from k.readl(base + GITS_PIDR2, why)) & 0xF0
        if val not in (0x30, 0x40):
            k.log(f"ITS@0x{base:016x}: No ITS detected, giving up", cpu, "warn")
            return -ENODEV
        err = yield from self.its_force_quiescent(base)
        if err:
            k.log(f"ITS@0x{base:016x}: Failed to quiesce, giving up", cpu, "warn")
            return err
        k.log(f"ITS [mem 0x{base:08x}-0x{base + size - 1:08x}]", cpu)
        its = ItsNode(base, size, desc.get("name", f"ITS@0x{base:x}"), desc.get("dt_path", ""))
        its.typer = yield from k.readq(base + GITS_TYPER, why)
        its.cmd_base = k.alloc_pages(ITS_CMD_QUEUE_SZ, "its-cmdq", "ITS command queue", dma=True)
        yield from k.readl(base + GITS_IIDR, "its_enable_quirks")
        err = yield from self.its_alloc_tables(cpu, its)
        if err:
            return err
        baser = k.drivers["phys"](its.cmd_base) | GITS_CBASER_RaWaWb | GITS_CBASER_InnerShareable
        baser |= (ITS_CMD_QUEUE_SZ // 0x1000 - 1) | GITS_CBASER_VALID
        yield from k.writeq(base + GITS_CBASER, baser, why)
        tmp = yield from k.readq(base + GITS_CBASER, why)
        if (tmp ^ baser) & GITS_CBASER_SHAREABILITY_MASK:
            if not tmp & GITS_CBASER_SHAREABILITY_MASK:
                baser &= ~(GITS_CBASER_SHAREABILITY_MASK | GITS_CBASER_CACHEABILITY_MASK)
                baser |= GITS_CBASER_nC
                yield from k.writeq(base + GITS_CBASER, baser, why)
            k.log("ITS: using cache flushing for cmd queue", cpu)
            its.flags |= ITS_FLAGS_CMDQ_NEEDS_FLUSHING
        yield from k.writeq(base + GITS_CWRITER, 0, why)
        ctlr = yield from k.readl(base + GITS_CTLR, why)
        ctlr |= GITS_CTLR_ENABLE
        yield from k.writel(base + GITS_CTLR, ctlr, why)
        self.nodes.append(its)
        return 0

    def its_force_quiescent(self, base: int) -> Gen:
        """``its_force_quiescent``: disable the ITS and wait for GITS_CTLR.Quiescent."""
        k, why = self.k, "its_force_quiescent"
        val = yield from k.readl(base + GITS_CTLR, why)
        if val & GITS_CTLR_QUIESCENT and not val & GITS_CTLR_ENABLE:
            return 0
        val &= ~(GITS_CTLR_ENABLE | GITS_CTLR_ImDe)
        yield from k.writel(base + GITS_CTLR, val, why)
        count = 1_000_000
        while True:
            val = yield from k.readl(base + GITS_CTLR, why)
            if val & GITS_CTLR_QUIESCENT:
                return 0
            count -= 1
            if not count:
                return -EBUSY
            yield from k.cost("its_cmd_poll")

    # -- tables -------------------------------------------------------------------------------

    def its_read_baser(self, its: ItsNode, i: int) -> Gen:
        return (yield from self.k.readq(its.phys_base + GITS_BASER + 8 * i, "its_read_baser"))

    def its_write_baser(self, its: ItsNode, i: int, val: int) -> Gen:
        yield from self.k.writeq(its.phys_base + GITS_BASER + 8 * i, val, "its_write_baser")
        its.tables[i].val = yield from self.its_read_baser(its, i)

    def its_probe_baser_psz(self, its: ItsNode, i: int) -> Gen:
        psz = SZ_64K
        while psz:
            val = yield from self.its_read_baser(its, i)
            val &= ~GITS_BASER_PAGE_SIZE_MASK
            gpsz = {SZ_64K: 2, 0x4000: 1}.get(psz, 0)
            val |= gpsz << GITS_BASER_PAGE_SIZE_SHIFT
            yield from self.its_write_baser(its, i, val)
            if (
                its.tables[i].val & GITS_BASER_PAGE_SIZE_MASK
            ) >> GITS_BASER_PAGE_SIZE_SHIFT == gpsz:
                break
            psz = {SZ_64K: 0x4000, 0x4000: 0x1000}.get(psz, 0)
            if not psz:
                return -1
        its.tables[i].psz = psz
        return 0

    def its_parse_indirect_baser(self, its: ItsNode, i: int, order: int, ids: int) -> Gen:
        tmp = yield from self.its_read_baser(its, i)
        esz = ((tmp >> GITS_BASER_ENTRY_SIZE_SHIFT) & 0x1F) + 1
        psz = its.tables[i].psz
        indirect = False
        if (esz << ids) > psz * 2:
            yield from self.its_write_baser(
                its, i, GITS_BASER_InnerShareable | GITS_BASER_RaWaWb | GITS_BASER_INDIRECT
            )
            indirect = bool(its.tables[i].val & GITS_BASER_INDIRECT)
            if indirect:
                ids -= ilog2(psz // esz)
                esz = GITS_LVL1_ENTRY_SIZE
        new_order = max(get_order(esz << ids), order)
        if new_order >= MAX_ORDER:
            new_order = MAX_ORDER - 1
            ids = ilog2((PAGE_SIZE << new_order) // esz)
            self.k.log(
                f"ITS@0x{its.phys_base:016x}: {BASE_TYPE_STRING[(tmp >> 56) & 7]} Table too large, "
                f"reduce ids {its.device_ids}->{ids}",
                0,
                "warn",
            )
        return new_order, indirect

    def its_setup_baser(
        self, cpu: int, its: ItsNode, i: int, cache: int, shr: int, order: int, indirect: bool
    ) -> Gen:
        """``its_setup_baser``."""
        k = self.k
        val = yield from self.its_read_baser(its, i)
        esz = ((val >> GITS_BASER_ENTRY_SIZE_SHIFT) & 0x1F) + 1
        typ = (val >> GITS_BASER_TYPE_SHIFT) & 7
        b = its.tables[i]
        psz = b.psz
        alloc_pages = (PAGE_SIZE << order) // psz
        if alloc_pages > GITS_BASER_PAGES_MAX:
            k.log(
                f"ITS@0x{its.phys_base:016x}: {BASE_TYPE_STRING[typ]} too large, reduce ITS pages "
                f"{alloc_pages}->{GITS_BASER_PAGES_MAX}",
                cpu,
                "warn",
            )
            alloc_pages = GITS_BASER_PAGES_MAX
            order = get_order(GITS_BASER_PAGES_MAX * psz)
        kind = {
            GITS_BASER_TYPE_DEVICE: "its-device-table",
            GITS_BASER_TYPE_COLLECTION: "its-collection-table",
        }.get(typ, "its-table")
        label = f"ITS {BASE_TYPE_STRING[typ]} table"
        base = k.alloc_pages(PAGE_SIZE << order, kind, label, dma=True)
        baser_phys = k.drivers["phys"](base)
        while True:
            val = (
                baser_phys
                | (typ << GITS_BASER_TYPE_SHIFT)
                | ((esz - 1) << GITS_BASER_ENTRY_SIZE_SHIFT)
                | ((alloc_pages - 1) << GITS_BASER_PAGES_SHIFT)
                | cache
                | shr
                | GITS_BASER_VALID
            )
            if indirect:
                val |= GITS_BASER_INDIRECT
            val |= {0x1000: 0, 0x4000: 1, SZ_64K: 2}[psz] << GITS_BASER_PAGE_SIZE_SHIFT
            yield from self.its_write_baser(its, i, val)
            tmp = b.val
            if (val ^ tmp) & GITS_BASER_SHAREABILITY_MASK:
                shr = tmp & GITS_BASER_SHAREABILITY_MASK
                if not shr:
                    cache = GITS_BASER_nC
                continue
            break
        if val != tmp:
            k.log(
                f"ITS@0x{its.phys_base:016x}: {BASE_TYPE_STRING[typ]} doesn't stick: {val:x} {tmp:x}",
                cpu,
                "err",
            )
            k.alloc.free_pages(base)  # type: ignore[union-attr]
            return -ENXIO
        b.order, b.base, b.psz = order, base, psz
        entry = GITS_LVL1_ENTRY_SIZE if indirect else esz
        k.log(
            f"ITS@0x{its.phys_base:016x}: allocated {(PAGE_SIZE << order) // entry} {BASE_TYPE_STRING[typ]} "
            f"@{baser_phys:x} ({'indirect' if indirect else 'flat'}, esz {esz}, psz {psz // 1024}K, "
            f"shr {shr >> GITS_BASER_SHAREABILITY_SHIFT})",
            cpu,
        )
        return 0

    def its_alloc_tables(self, cpu: int, its: ItsNode) -> Gen:
        """``its_alloc_tables``."""
        shr, cache = GITS_BASER_InnerShareable, GITS_BASER_RaWaWb
        for i in range(GITS_BASER_NR_REGS):
            val = yield from self.its_read_baser(its, i)
            typ = (val >> GITS_BASER_TYPE_SHIFT) & 7
            if typ == GITS_BASER_TYPE_NONE:
                continue
            if (yield from self.its_probe_baser_psz(its, i)):
                return -ENXIO
            order = get_order(its.tables[i].psz)
            indirect = False
            if typ == GITS_BASER_TYPE_DEVICE:
                order, indirect = yield from self.its_parse_indirect_baser(
                    its, i, order, its.device_ids
                )
            elif typ == GITS_BASER_TYPE_VCPU:
                order, indirect = yield from self.its_parse_indirect_baser(its, i, order, 16)
            err = yield from self.its_setup_baser(cpu, its, i, cache, shr, order, indirect)
            if err < 0:
                return err
            cache = its.tables[i].val & GITS_BASER_CACHEABILITY_MASK
            shr = its.tables[i].val & GITS_BASER_SHAREABILITY_MASK
        return 0

    # -- LPI tables -------------------------------------------------------------------------

    def allocate_lpi_tables(self, cpu: int) -> Gen:
        """``allocate_lpi_tables`` (inlined into its_init in the 5.15 build)."""
        k = self.k
        val = yield from k.readl(self.rd(cpu) + GICR_CTLR, "allocate_lpi_tables")
        if val & GICR_CTLR_ENABLE_LPIS and (yield from self.enabled_lpis_allowed(cpu)):
            self.flags |= RDIST_FLAGS_RD_TABLES_PREALLOCATED | RDIST_FLAGS_PROPBASE_NEEDS_FLUSHING
            k.log("GICv3: Using preallocated redistributor tables", cpu)
        err = yield from self.its_setup_lpi_prop_table(cpu)
        if err:
            return err
        for c in range(len(k.possible_cpus)):
            self.pend_page[c] = self.its_allocate_pending_table(c)
        return 0

    def enabled_lpis_allowed(self, cpu: int) -> Gen:
        """``enabled_lpis_allowed``: is the old PROPBASER table in a reserved region?"""
        val = yield from self.k.readq(self.rd(cpu) + GICR_PROPBASER, "enabled_lpis_allowed")
        addr = val & PROPBASER_PA_MASK
        return self.gic_check_reserved_range(cpu, addr, max(SZ_64K, 1 << ((val & 0x1F) + 1)))

    def gic_check_reserved_range(self, cpu: int, addr: int, size: int) -> bool:
        """``gic_check_reserved_range``: kdump, or inside one merged memblock reservation."""
        k = self.k
        if k.kdump:
            return True
        if k.memblock.is_reserved(addr, size):
            return True
        k.log(
            f"GICv3: Expected reserved range [0x{addr:016x}:0x{addr + size - 1:016x}], not found",
            cpu,
            "warn",
        )
        k.taint.add("CRAP")
        return False

    def gic_reserve_range(self, addr: int, size: int) -> int:
        """``gic_reserve_range`` with the variant's early returns (guest/variants.py)."""
        k = self.k
        for cond in k.variant.reserve_skip:
            if cond == "xen_domain" and k.xen_domain:
                return 0
            if cond == "efi_paravirt" and "EFI_PARAVIRT" in k.efi["enabled"]:
                return 0
        if efi.efi_enabled(k, efi.EFI_CONFIG_TABLES):
            return efi.efi_mem_reserve_persistent(k, addr, size)
        return 0

    def gic_reset_prop_table(self, va: int, reused: bool) -> None:
        """``gic_reset_prop_table``: priority 0xa0, Group-1, disabled (0xa2) everywhere.

        ``reused``: the PREALLOCATED path memremaps whatever GICR_PROPBASER points at. A range
        reserved through MEMRESERVE is adopted as this kernel's table; anything else keeps its
        owner (and the memset was reported as corrupting it).
        """
        k = self.k
        size = self.LPI_PROPBASE_SZ
        owner = k.owner("lpi-prop", "LPI property table", dma=True, reused=reused)
        adopt = reused and all(
            o.kind == "memreserve" for _, _, o in k.guest.regions.owners(va, size)
        )
        byte = LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1
        k.memset(va, byte, size, owner, "gic_reset_prop_table")
        if adopt:
            k.guest.regions.claim(va, size, owner)

    def its_setup_lpi_prop_table(self, cpu: int) -> Gen:
        """``its_setup_lpi_prop_table``."""
        k = self.k
        if self.flags & RDIST_FLAGS_RD_TABLES_PREALLOCATED:
            val = yield from k.readq(self.rd(cpu) + GICR_PROPBASER, "its_setup_lpi_prop_table")
            self.lpi_id_bits = (val & GICR_PROPBASER_IDBITS_MASK) + 1
            self.prop_table_pa = val & PROPBASER_PA_MASK
            # memremap(MEMREMAP_WB) of whatever is there, then the reset
            self.gic_reset_prop_table(self.prop_table_pa, reused=True)
            yield from k.cost("memset_64k", max(1, self.LPI_PROPBASE_SZ // SZ_64K))
        else:
            gicd_typer = k.drivers["gic"].typer
            self.lpi_id_bits = min(((gicd_typer >> 19) & 0x1F) + 1, ITS_MAX_LPI_NRBITS)
            owner_kind = ("lpi-prop", "LPI property table")
            page = k.alloc_pages(self.LPI_PROPBASE_SZ, *owner_kind, dma=True, zero=False)
            self.gic_reset_prop_table(page, reused=False)
            yield from k.cost("memset_64k", max(1, self.LPI_PROPBASE_SZ // SZ_64K))
            self.prop_table_pa = k.drivers["phys"](page)
            ret = self.gic_reserve_range(self.prop_table_pa, self.LPI_PROPBASE_SZ)
            if ret:
                k.warn_on(
                    cpu, "its_init:prop", ITS_FILE, LINE_PROP_RESERVE, ret, self.LPI_PROPBASE_SZ
                )
        k.log(f"GICv3: using LPI property table @0x{self.prop_table_pa:016x}", cpu)
        return (yield from self.its_lpi_init(cpu, self.lpi_id_bits))

    def its_lpi_init(self, cpu: int, id_bits: int) -> Gen:
        """``its_lpi_init`` (inlined): the allocator starts as one free range from 8192."""
        k = self.k
        lpis = (1 << id_bits) - 8192
        numlpis = 1 << (((k.drivers["gic"].typer >> 11) & 0x1F) + 1)
        if numlpis > 2 and numlpis <= lpis:
            lpis = numlpis
            k.log(f"ITS: Using hypervisor restricted LPI range [{lpis}]", cpu)
        return (yield from k.call(cpu, "free_lpi_range", self.free_lpi_range(cpu, 8192, lpis)))

    def free_lpi_range(self, cpu: int, base: int, nr: int) -> Gen:
        """``free_lpi_range``: insert, then merge with neighbours (list_add)."""
        yield from self.k.call(cpu, "__list_add_valid", _nothing())
        self.lpi_ranges.append([base, nr])
        self.lpi_ranges.sort()
        merged: list[list[int]] = []
        for b, s in self.lpi_ranges:
            if merged and merged[-1][0] + merged[-1][1] == b:
                merged[-1][1] += s
            else:
                merged.append([b, s])
        self.lpi_ranges = merged
        return 0

    def alloc_lpi_range(self, nr: int) -> int | None:
        """``alloc_lpi_range``: first range that fits."""
        for r in self.lpi_ranges:
            if r[1] >= nr:
                base = r[0]
                r[0] += nr
                r[1] -= nr
                if r[1] == 0:
                    self.lpi_ranges.remove(r)
                return base
        return None

    def its_lpi_alloc(self, nvecs: int) -> tuple[int, int] | None:
        """``its_lpi_alloc``: halve the request until a range fits."""
        nr = nvecs
        while nr > 0:
            base = self.alloc_lpi_range(nr)
            if base is not None:
                return base, nr
            nr //= 2
        return None

    def its_allocate_pending_table(self, cpu: int) -> int:
        """``its_allocate_pending_table``: zeroed pages (Linux never uses PTZ)."""
        k = self.k
        return k.alloc_pages(
            self.LPI_PENDBASE_SZ, "lpi-pend", f"LPI pending table of CPU{cpu}", dma=True
        )

    # -- per CPU ----------------------------------------------------------------------------

    def its_cpu_init(self, cpu: int) -> Gen:
        """``its_cpu_init``."""
        if not self.nodes:
            return 0
        ret = yield from self.redist_disable_lpis(cpu)
        if ret:
            return ret
        yield from self.its_cpu_init_lpis(cpu)
        yield from self.its_cpu_init_collections(cpu)
        return 0

    def its_lpi_memreserve_init(self, cpu: int) -> Gen:
        """``its_lpi_memreserve_init`` (v5.17+, from gic_init_bases): with EFI config tables
        and an ITS, ``cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, its_cpu_memreserve_lpi)``, which
        runs the callback at once on the boot CPU (no hotplug thread exists yet)."""
        k = self.k
        if not efi.efi_enabled(k, efi.EFI_CONFIG_TABLES) or not self.nodes:
            return 0
        self.memreserve_state = CPUHP_AP_ONLINE_DYN
        body = k.call(cpu, "its_cpu_memreserve_lpi", self.its_cpu_memreserve_lpi(cpu))
        for fn in ("cpuhp_invoke_callback", "cpuhp_issue_call", "__cpuhp_setup_state_cpuslocked",
                   "__cpuhp_setup_state"):  # fmt: skip
            body = k.call(cpu, fn, body)
        yield from body
        return 0

    def its_cpu_memreserve_lpi(self, cpu: int) -> Gen:
        """``its_cpu_memreserve_lpi`` (v5.17+): once per CPU, free a preallocated pending table
        or reserve this CPU's; the last CPU to boot removes the state."""
        k = self.k
        if cpu in self.memreserve_done:
            return 0
        ret = 0
        page = self.pend_page.get(cpu)
        if page is None:
            k.warn_on(
                cpu, "its_cpu_memreserve_lpi:pending", ITS_FILE, LINE_MEMRESERVE_PENDING, 1, 0
            )
            ret = -ENOMEM
        elif cpu in self.pendtable_preallocated:
            k.alloc.free_pages(page)  # type: ignore[union-attr]
            self.pend_page[cpu] = None
        else:
            rc = self.gic_reserve_range(k.drivers["phys"](page), self.LPI_PENDBASE_SZ)
            if rc:
                k.warn_on(cpu, "its_cpu_memreserve_lpi:pending", ITS_FILE, LINE_MEMRESERVE_PENDING,
                          rc, self.LPI_PENDBASE_SZ)  # fmt: skip
        # cpus_booted_once_mask == cpu_possible_mask: schedule the cleanup work
        if set(k.boots) | {cpu} >= set(range(len(k.possible_cpus))):
            self.memreserve_state = None
        self.memreserve_done.add(cpu)
        yield from k.cost("irq_handler")
        return ret

    def its_set_affinity(self, cpu: int, hwirq: int, target: int) -> Gen:
        """``its_set_affinity`` of an unmanaged LPI (``irq_migrate_all_off_this_cpu`` on a
        dying CPU): MOVI to the new collection (+ SYNC), counts moved."""
        dev = self.lpi_dev.get(hwirq)
        if dev is None:
            return
        event = hwirq - dev.lpi_base
        old = dev.col_map[event]
        if old == target:
            return
        self.lpi_count[old] = self.lpi_count.get(old, 1) - 1
        self.lpi_count[target] = self.lpi_count.get(target, 0) + 1
        # its_build_movi_cmd returns the event's current (old) collection for the SYNC
        yield from self.its_send_single_command(
            cpu, dev.its, C.Movi(DeviceID=dev.device_id, EventID=event, ICID=target),
            sync=dev.its.collections[old], why="its_send_movi",
        )  # fmt: skip
        dev.col_map[event] = target

    def redist_disable_lpis(self, cpu: int) -> Gen:
        """``redist_disable_lpis``."""
        k, rbase, why = self.k, self.rd(cpu), "redist_disable_lpis"
        typer = yield from k.readq(rbase + GICR_TYPER, "gic_rdists_supports_plpis")
        if not typer & GICR_TYPER_PLPIS:
            k.log(f"GICv3: CPU{cpu}: LPIs not supported", cpu)
            return -ENXIO
        val = yield from k.readl(rbase + GICR_CTLR, why)
        if not val & GICR_CTLR_ENABLE_LPIS:
            return 0
        if self.lpi_enabled.get(cpu) or self.flags & RDIST_FLAGS_RD_TABLES_PREALLOCATED:
            return 0
        k.log(f"GICv3: CPU{cpu}: Booted with LPIs enabled, memory probably corrupted", cpu, "warn")
        k.taint.add("CRAP")
        val &= ~GICR_CTLR_ENABLE_LPIS
        yield from k.writel(rbase + GICR_CTLR, val, why)
        timeout = 1_000_000
        while (yield from k.readl(rbase + GICR_CTLR, why)) & GICR_CTLR_RWP:
            if not timeout:
                k.log(f"GICv3: CPU{cpu}: Timeout while disabling LPIs", cpu, "err")
                return -ETIMEDOUT
            timeout -= 1
            yield from k.cost("its_cmd_poll")
        if (yield from k.readl(rbase + GICR_CTLR, why)) & GICR_CTLR_ENABLE_LPIS:
            k.log(f"GICv3: CPU{cpu}: Failed to disable LPIs", cpu, "err")
            return -EBUSY
        return 0

    def its_cpu_init_lpis(self, cpu: int) -> Gen:
        """``its_cpu_init_lpis`` (inlined into its_cpu_init in the 5.15 build)."""
        k, rbase, why = self.k, self.rd(cpu), "its_cpu_init_lpis"
        if self.lpi_enabled.get(cpu):
            return
        val = yield from k.readl(rbase + GICR_CTLR, why)
        if self.flags & RDIST_FLAGS_RD_TABLES_PREALLOCATED and val & GICR_CTLR_ENABLE_LPIS:
            paddr = (yield from k.readq(rbase + GICR_PROPBASER, why)) & PROPBASER_PA_MASK
            if self.prop_table_pa != paddr:
                k.warn_on(
                    cpu,
                    "its_cpu_init:propbase-mismatch",
                    ITS_FILE,
                    LINE_PROPBASE_MISMATCH,
                    1,
                    paddr,
                )
                k.taint.add("CRAP")
            paddr = (yield from k.readq(rbase + GICR_PENDBASER, why)) & PENDBASER_PA_MASK
            if not self.gic_check_reserved_range(cpu, paddr, self.LPI_PENDBASE_SZ):
                k.warn_on(
                    cpu,
                    "its_cpu_init:pending-not-reserved",
                    ITS_FILE,
                    LINE_PENDING_NOT_RESERVED,
                    0,
                    paddr,
                )
            else:
                owner = k.owner("lpi-pend", f"LPI pending table of CPU{cpu}", dma=True, reused=True)
                k.guest.regions.claim(paddr, self.LPI_PENDBASE_SZ, owner)
            if k.variant.pending_reserve_site == "its_cpu_memreserve_lpi":
                # v5.17+: flag it; its_cpu_memreserve_lpi frees the preallocated page later
                self.pendtable_preallocated.add(cpu)
            else:
                page = self.pend_page.get(cpu)
                if page is not None:
                    k.alloc.free_pages(page)  # type: ignore[union-attr]
                self.pend_page[cpu] = None
        else:
            page = self.pend_page[cpu]
            assert page is not None
            paddr = k.drivers["phys"](page)
            if k.variant.pending_reserve_site == "its_cpu_init":
                ret = self.gic_reserve_range(paddr, self.LPI_PENDBASE_SZ)
                if ret:
                    k.warn_on(
                        cpu,
                        "its_cpu_init:pending",
                        ITS_FILE,
                        LINE_PENDING_RESERVE,
                        ret,
                        self.LPI_PENDBASE_SZ,
                    )
            # set PROPBASE
            val = (
                self.prop_table_pa
                | GICR_PROPBASER_InnerShareable
                | GICR_PROPBASER_RaWaWb
                | ((self.lpi_id_bits - 1) & GICR_PROPBASER_IDBITS_MASK)
            )
            yield from k.writeq(rbase + GICR_PROPBASER, val, why)
            tmp = yield from k.readq(rbase + GICR_PROPBASER, why)
            if (tmp ^ val) & GICR_PROPBASER_SHAREABILITY_MASK:
                if not tmp & GICR_PROPBASER_SHAREABILITY_MASK:
                    val &= ~(GICR_PROPBASER_SHAREABILITY_MASK | GICR_PROPBASER_CACHEABILITY_MASK)
                    val |= GICR_PROPBASER_nC
                    yield from k.writeq(rbase + GICR_PROPBASER, val, why)
                if not k.drivers.get("propbase_flush_once"):
                    k.drivers["propbase_flush_once"] = True
                    k.log("GIC: using cache flushing for LPI property table", cpu)
                self.flags |= RDIST_FLAGS_PROPBASE_NEEDS_FLUSHING
            # set PENDBASE
            val = paddr | GICR_PENDBASER_InnerShareable | GICR_PENDBASER_RaWaWb
            yield from k.writeq(rbase + GICR_PENDBASER, val, why)
            tmp = yield from k.readq(rbase + GICR_PENDBASER, why)
            if not tmp & GICR_PENDBASER_SHAREABILITY_MASK:
                val &= ~(GICR_PENDBASER_SHAREABILITY_MASK | GICR_PENDBASER_CACHEABILITY_MASK)
                val |= GICR_PENDBASER_nC
                yield from k.writeq(rbase + GICR_PENDBASER, val, why)
            # Enable LPIs
            val = yield from k.readl(rbase + GICR_CTLR, why)
            val |= GICR_CTLR_ENABLE_LPIS
            yield from k.writel(rbase + GICR_CTLR, val, why)
        self.lpi_enabled[cpu] = True
        if k.variant.pending_reserve_site == "its_cpu_memreserve_lpi":
            kind = "reserved" if cpu in self.pendtable_preallocated else "allocated"
        else:
            kind = "allocated" if self.pend_page.get(cpu) is not None else "reserved"
        self.pend_pa[cpu] = paddr  # the table this CPU's redistributor was left using
        k.log(f"GICv3: CPU{cpu}: using {kind} LPI pending table @0x{paddr:016x}", cpu)

    def its_cpu_init_collections(self, cpu: int) -> Gen:
        """``its_cpu_init_collections`` -> ``its_cpu_init_collection`` per ITS."""
        k = self.k
        for its in self.nodes:
            typer = yield from k.readq(its.phys_base + GITS_TYPER, "its_cpu_init_collection")
            if typer & GITS_TYPER_PTA:
                target = k.drivers["gic"].phys_base[cpu]
            else:
                rtyper = yield from k.readq(self.rd(cpu) + GICR_TYPER, "its_cpu_init_collection")
                target = ((rtyper >> 8) & 0xFFFF) << 16
            its.collections[cpu] = target
            yield from self.its_send_single_command(
                cpu,
                its,
                C.Mapc(ICID=cpu, RDbase=target >> 16, V=1),
                sync=target,
                why="its_send_mapc",
            )
            yield from self.its_send_single_command(
                cpu, its, C.Invall(ICID=cpu), sync=None, why="its_send_invall"
            )

    # -- the command queue ------------------------------------------------------------------

    def its_allocate_entry(self, cpu: int, its: ItsNode) -> Gen:
        """``its_allocate_entry``: wait while the queue is full, take the next slot."""
        k = self.k
        count = 1_000_000
        nr = ITS_CMD_QUEUE_SZ // ITS_CMD_SIZE
        while True:
            ridx = (
                yield from k.readl(its.phys_base + GITS_CREADR, "its_queue_full")
            ) // ITS_CMD_SIZE
            widx = its.cmd_write // ITS_CMD_SIZE
            if (widx + 1) % nr != ridx:
                break
            count -= 1
            if not count:
                k.log("ITS queue not draining", cpu, "err")
                return None
            yield from k.cost("its_cmd_poll")
        off = its.cmd_write
        its.cmd_write = (its.cmd_write + ITS_CMD_SIZE) % ITS_CMD_QUEUE_SZ
        return off

    def its_send_single_command(
        self, cpu: int, its: ItsNode, cmd: C.ItsCommand, sync: int | None, why: str
    ) -> Gen:
        """``its_send_single_command`` (BUILD_SINGLE_CMD_FUNC): the command, a SYNC to the
        target collection when the builder returns one, CWRITER, then poll CREADR."""
        k = self.k
        owner = k.owner("its-cmdq", "ITS command queue", dma=True)
        off = yield from self.its_allocate_entry(cpu, its)
        if off is None:
            return
        k.ram_write(its.cmd_base + off, cmd.encode(), owner, why)
        if sync is not None:
            soff = yield from self.its_allocate_entry(cpu, its)
            if soff is not None:
                k.ram_write(
                    its.cmd_base + soff,
                    C.Sync(RDbase=sync >> 16).encode(),
                    owner,
                    "its_build_sync_cmd",
                )
        rd_idx = yield from k.readl(its.phys_base + GITS_CREADR, why)
        yield from k.writeq(its.phys_base + GITS_CWRITER, its.cmd_write, "its_post_commands")
        yield from self.its_wait_for_range_completion(
            cpu, its, rd_idx & 0xFFFE0, its.cmd_write, why
        )

    def its_wait_for_range_completion(
        self, cpu: int, its: ItsNode, prev_idx: int, to_idx: int, why: str
    ) -> Gen:
        k = self.k
        if to_idx < prev_idx:
            to_idx += ITS_CMD_QUEUE_SZ
        linear = prev_idx
        count = 1_000_000
        while True:
            rd_idx = (
                yield from k.readl(its.phys_base + GITS_CREADR, "its_wait_for_range_completion")
            ) & 0xFFFE0
            delta = rd_idx - prev_idx
            if rd_idx < prev_idx:
                delta += ITS_CMD_QUEUE_SZ
            linear += delta
            if linear >= to_idx:
                return 0
            count -= 1
            if not count:
                k.log(f"ITS queue timeout ({to_idx} {linear})", cpu, "err")
                k.log(f"ITS cmd {why} failed", cpu, "err")
                return -1
            prev_idx = rd_idx
            yield from k.cost("its_cmd_poll")

    # -- devices (MSI domain) ---------------------------------------------------------------

    def its_alloc_table_entry(self, cpu: int, its: ItsNode, i: int, dev_id: int) -> bool:
        """``its_alloc_table_entry``: allocate the L2 page of an indirect table."""
        k = self.k
        b = its.tables[i]
        esz = ((b.val >> GITS_BASER_ENTRY_SIZE_SHIFT) & 0x1F) + 1
        if not b.val & GITS_BASER_INDIRECT:
            return dev_id < (PAGE_SIZE << b.order) // esz
        idx = dev_id >> ilog2(b.psz // esz)
        if idx >= (PAGE_SIZE << b.order) // GITS_LVL1_ENTRY_SIZE:
            return False
        entry_addr = b.base + idx * GITS_LVL1_ENTRY_SIZE
        cur = int.from_bytes(k.ram_read(entry_addr, 8), "little")
        if not cur:
            page = k.alloc_pages(b.psz, "its-device-table", "ITS Devices table (level 2)", dma=True)
            owner = k.guest.regions.owner_at(entry_addr)
            k.ram_write(
                entry_addr,
                (k.drivers["phys"](page) | GITS_BASER_VALID).to_bytes(8, "little"),
                owner,
                "its_alloc_table_entry",
            )
        return True

    def its_create_device(self, cpu: int, its: ItsNode, dev_id: int, nvecs: int) -> Gen:
        """``its_create_device``."""
        k = self.k
        dev_i = next(
            (
                i
                for i, b in enumerate(its.tables)
                if (b.val >> GITS_BASER_TYPE_SHIFT) & 7 == GITS_BASER_TYPE_DEVICE
            ),
            None,
        )
        if dev_i is None:
            if ilog2(max(dev_id, 1)) >= its.device_ids:
                return None
        elif not self.its_alloc_table_entry(cpu, its, dev_i, dev_id):
            return None
        if nvecs & (nvecs - 1):
            nvecs = 1 << nvecs.bit_length()
        nr_ites = max(2, nvecs)
        sz = nr_ites * its.ite_size
        sz = max(sz, ITS_ITT_ALIGN) + ITS_ITT_ALIGN - 1
        cache = 1 << (sz - 1).bit_length()
        itt = k.kzalloc(sz, "itt", f"ITT of DeviceID {dev_id:#x}", align=cache, dma=True)
        got = self.its_lpi_alloc(nvecs)
        if got is None:
            return None
        lpi_base, nr_lpis = got
        dev = ItsDevice(
            its, dev_id, nr_ites, itt, lpi_base, nr_lpis, [False] * nr_lpis, [0] * nr_lpis
        )
        its.devices[dev_id] = dev
        itt_addr = -(-k.drivers["phys"](itt) // ITS_ITT_ALIGN) * ITS_ITT_ALIGN
        yield from self.its_send_single_command(
            cpu,
            its,
            C.Mapd(DeviceID=dev_id, Size=ilog2(nr_ites) - 1, ITT_addr=itt_addr, V=1),
            sync=None,
            why="its_send_mapd",
        )
        return dev

    def its_msi_prepare(self, cpu: int, its: ItsNode, dev_id: int, nvec: int) -> Gen:
        """``its_msi_prepare``: reuse a known DeviceID, else create it."""
        dev = its.devices.get(dev_id)
        if dev is not None:
            return dev
        return (yield from self.its_create_device(cpu, its, dev_id, nvec))

    def its_irq_domain_alloc(self, dev: ItsDevice, nr_irqs: int = 1) -> int | None:
        """``its_irq_domain_alloc`` -> ``its_alloc_device_irq``: a free aligned region."""
        order = max(0, (nr_irqs - 1).bit_length())
        step = 1 << order
        for idx in range(0, dev.nr_lpis, step):
            if not any(dev.lpi_map[idx : idx + step]) and idx + step <= dev.nr_lpis:
                for j in range(idx, idx + step):
                    dev.lpi_map[j] = True
                return dev.lpi_base + idx
        return None

    def its_select_cpu(self) -> int:
        """``its_select_cpu`` for an unmanaged MSI: the least loaded online CPU."""
        online = sorted(self.k.online)
        return min(online, key=lambda c: (self.lpi_count.get(c, 0), c))

    def its_irq_domain_activate(self, cpu: int, dev: ItsDevice, hwirq: int, name: str) -> Gen:
        """``its_irq_domain_activate``: pick the CPU, MAPTI (+ SYNC)."""
        event = hwirq - dev.lpi_base
        target_cpu = self.its_select_cpu()
        self.lpi_count[target_cpu] = self.lpi_count.get(target_cpu, 0) + 1
        dev.col_map[event] = target_cpu
        self.lpi_owner[hwirq] = (name, event)
        self.lpi_dev[hwirq] = dev
        col = dev.its.collections[target_cpu]
        yield from self.its_send_single_command(
            cpu, dev.its, C.Mapti(DeviceID=dev.device_id, EventID=event, pINTID=hwirq, ICID=target_cpu),
            sync=col, why="its_send_mapti",
        )  # fmt: skip
        return target_cpu

    def its_irq_domain_deactivate(self, cpu: int, dev: ItsDevice, hwirq: int) -> Gen:
        """``its_irq_domain_deactivate``: DISCARD (+ SYNC)."""
        event = hwirq - dev.lpi_base
        col = dev.its.collections[dev.col_map[event]]
        self.lpi_count[dev.col_map[event]] -= 1
        yield from self.its_send_single_command(
            cpu,
            dev.its,
            C.Discard(DeviceID=dev.device_id, EventID=event),
            sync=col,
            why="its_send_discard",
        )

    def lpi_write_config(self, hwirq: int, clr: int, setbits: int) -> None:
        """``lpi_write_config``: the LPI's property byte (hwirq - 8192)."""
        k = self.k
        addr = self.prop_table_pa + hwirq - 8192
        cfg = k.ram_read(addr, 1)[0]
        cfg = (cfg & ~clr & 0xFF) | setbits | LPI_PROP_GROUP1
        owner = k.guest.regions.owner_at(addr)
        intended = k.owner("lpi-prop", "LPI property table", dma=True, reused=owner.reused)
        k.ram_write(
            addr, bytes([cfg]), intended if owner.kind != "lpi-prop" else owner, "lpi_write_config"
        )

    def lpi_update_config(
        self, cpu: int, dev: ItsDevice, hwirq: int, clr: int, setbits: int
    ) -> Gen:
        """``lpi_update_config``: the byte, then INV (+ SYNC) (no DirectLPI on QEMU)."""
        self.lpi_write_config(hwirq, clr, setbits)
        event = hwirq - dev.lpi_base
        col = dev.its.collections[dev.col_map[event]]
        yield from self.its_send_single_command(
            cpu, dev.its, C.Inv(DeviceID=dev.device_id, EventID=event), sync=col, why="its_send_inv"
        )

    def its_unmask_irq(self, cpu: int, dev: ItsDevice, hwirq: int) -> Gen:
        yield from self.lpi_update_config(cpu, dev, hwirq, 0, LPI_PROP_ENABLED)

    def its_mask_irq(self, cpu: int, dev: ItsDevice, hwirq: int) -> Gen:
        yield from self.lpi_update_config(cpu, dev, hwirq, LPI_PROP_ENABLED, 0)


def _nothing() -> Gen:
    return None
    yield  # pragma: no cover
