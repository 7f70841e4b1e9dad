"""GICv3 register layouts, offsets and encodings, as data (gicv3-architecture.md §2-§6).

One module-level :class:`~gic.bits.Layout` per register, named as the architecture names it,
with ``.offset`` its offset inside its frame and ``.width`` 32 or 64:

* GICD_*: offset in the 64 KiB Distributor frame.
* GICR_* of the RD_base frame: offset from RD_base.
* GICR_* of the SGI_base frame: offset **relative to SGI_base** (= RD_base + GICR_SGI_OFFSET);
  :func:`mmio_lookup` / :func:`mmio_register_name` take RD_base-relative offsets and add it.
* GITS_*: offset from ITS_base; GITS_TRANSLATER is at ITS_base + 0x10040 (translation frame).
* ICC_* / ICH_* system registers: ``offset`` None, width 64.

Arrays (GICD_ISENABLER<n>, GITS_BASER<n>, ICH_LR<n>_EL2, ...) have one Layout named without the
index whose offset is that of element 0 (GICD_IROUTER: 0x6000, elements n = 32..1019 only);
:func:`register` and the ``*n()`` helpers give the Layout of one element.
Bits not covered by a field are RES0 (or IMPLEMENTATION DEFINED where the sheet says so).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from gic.bits import F, Field, Layout

# --------------------------------------------------------------------------------------------
# Frame sizes and offsets (§2.1, §3.1, §4.1)

GIC_V3_DIST_SIZE = 0x10000
GICR_RD_BASE_SIZE = 0x10000
GICR_SGI_OFFSET = 0x10000
GIC_V3_REDIST_SIZE = 0x20000
GICR_VLPI_OFFSET = 0x20000
GIC_V4_REDIST_SIZE = 0x40000
ITS_CONTROL_SIZE = 0x10000
ITS_TRANS_SIZE = 0x10000
GICV3_ITS_SIZE = 0x20000
GITS_TRANSLATER_OFFSET = 0x10040
GITS_BASER_NR_REGS = 8
ICH_LR_NR_REGS = 16

# --------------------------------------------------------------------------------------------
# INTID space (§5.1)

SGI_BASE_INTID = 0
PPI_BASE_INTID = 16
SPI_BASE_INTID = 32
SPI_MAX_INTID = 1019
INTID_SECURE = 1020
INTID_NONSECURE = 1021
INTID_NMI = 1022
INTID_SPURIOUS = 1023
EPPI_BASE_INTID = 1056
EPPI_MAX_INTID = 1119
ESPI_BASE_INTID = 4096
ESPI_MAX_INTID = 5119
LPI_INTID_BASE = 8192

# --------------------------------------------------------------------------------------------
# Cacheability and shareability (§2.8), Linux names (include/linux/irqchip/arm-gic-v3.h)

GIC_BASER_CACHE_nCnB = 0
GIC_BASER_CACHE_SameAsInner = 0
GIC_BASER_CACHE_nC = 1
GIC_BASER_CACHE_RaWt = 2
GIC_BASER_CACHE_RaWb = 3
GIC_BASER_CACHE_WaWt = 4
GIC_BASER_CACHE_WaWb = 5
GIC_BASER_CACHE_RaWaWt = 6
GIC_BASER_CACHE_RaWaWb = 7

GIC_BASER_NonShareable = 0
GIC_BASER_InnerShareable = 1
GIC_BASER_OuterShareable = 2

INNER_CACHE_NAMES: dict[int, str] = {
    0: "nCnB (Device-nGnRnE)",
    1: "nC (Normal Non-cacheable)",
    2: "RaWt",
    3: "RaWb",
    4: "WaWt",
    5: "WaWb",
    6: "RaWaWt",
    7: "RaWaWb",
}
OUTER_CACHE_NAMES: dict[int, str] = {
    0: "SameAsInner",
    **{k: v for k, v in INNER_CACHE_NAMES.items() if k},
}
SHAREABILITY_NAMES: dict[int, str] = {
    0: "Non-shareable",
    1: "Inner Shareable",
    2: "Outer Shareable",
    3: "reserved",  # no definition in any source read (§2.8, unverified)
}

# --------------------------------------------------------------------------------------------
# GITS_BASER Type and Page_Size (§2.7)

GITS_BASER_TYPE_NONE = 0
GITS_BASER_TYPE_DEVICE = 1
GITS_BASER_TYPE_VCPU = 2
GITS_BASER_TYPE_RESERVED3 = 3  # Xen and v4.x Linux call it a CPU table; reserved (§9 item 3)
GITS_BASER_TYPE_COLLECTION = 4

GITS_BASER_TYPE_NAMES: dict[int, str] = {
    0: "Unimplemented",
    1: "Devices",
    2: "vPEs",
    3: "reserved",
    4: "Collections",
    5: "reserved",
    6: "reserved",
    7: "reserved",
}

GIC_PAGE_SIZE_4K = 0
GIC_PAGE_SIZE_16K = 1
GIC_PAGE_SIZE_64K = 2
GITS_BASER_PAGE_SIZE_NAMES: dict[int, str] = {0: "4K", 1: "16K", 2: "64K", 3: "reserved"}
GITS_BASER_PAGE_BYTES: dict[int, int] = {0: 0x1000, 1: 0x4000, 2: 0x10000}

GIC_PIDR2_ARCH_GICv3 = 0x3
GIC_PIDR2_ARCH_GICv4 = 0x4


# --------------------------------------------------------------------------------------------
# ICH_LR<n>_EL2 state (§6.2)


class IchLrState(IntEnum):
    """ICH_LR<n>_EL2.State [63:62]."""

    INVALID = 0
    PENDING = 1
    ACTIVE = 2
    PENDING_ACTIVE = 3


ICH_LR_STATE_INVALID = IchLrState.INVALID
ICH_LR_STATE_PENDING = IchLrState.PENDING
ICH_LR_STATE_ACTIVE = IchLrState.ACTIVE
ICH_LR_STATE_PENDING_ACTIVE = IchLrState.PENDING_ACTIVE

ICH_LR_STATE_NAMES: dict[int, str] = {
    0: "invalid",
    1: "pending",
    2: "active",
    3: "pending and active",
}


def _L(name: str, width: int, offset: int | None, *fields: Field, doc: str = "") -> Layout:
    return Layout(name, width, tuple(fields), offset, doc)


def _iidr(name: str, offset: int) -> Layout:
    """GICD_IIDR / GICR_IIDR / GITS_IIDR share one layout (§2.3, §4.4)."""
    return _L(
        name,
        32,
        offset,
        F("Implementer", 11, 0, doc="JEP106 code of the implementer (Arm = 0x43B)"),
        F("Revision", 15, 12),
        F("Variant", 19, 16),
        F("ProductID", 31, 24),
    )


def _pidr2(name: str) -> Layout:
    """PIDR2 at 0xFFE8 of each frame (§4.5); [3:0] are the JEP106 bits (0xB for Arm models)."""
    return _L(
        name,
        32,
        0xFFE8,
        F("DES_1", 2, 0, doc="JEP106 identity code bits [6:4]"),
        F("JEDEC", 3),
        F("ArchRev", 7, 4, doc="0x3 = GICv3, 0x4 = GICv4"),
    )


def _statusr(name: str, offset: int) -> Layout:
    """GICD_STATUSR / GICR_STATUSR: error reporting (read/write of reserved or WO/RO locations)."""
    return _L(name, 32, offset, F("RRD", 0), F("WRD", 1), F("RWOD", 2), F("WROD", 3))


def _bitmap(name: str, offset: int, field: str, doc: str) -> Layout:
    """One bit per INTID: bit x of element n is INTID 32n + x (field <name><x> in the Arm XML)."""
    return _L(name, 32, offset, F(field, 31, 0, doc=doc))


def _priority(name: str, offset: int) -> Layout:
    """One priority byte per INTID: byte k of element n is INTID 4n + k."""
    return _L(name, 32, offset, *(F(f"Priority_offset_{k}B", 8 * k + 7, 8 * k) for k in range(4)))


def _icfgr(name: str, offset: int) -> Layout:
    """Two bits per INTID: Int_config<x> [2x+1:2x] of element n is INTID 16n + x (1x = edge)."""
    return _L(name, 32, offset, *(F(f"Int_config{x}", 2 * x + 1, 2 * x) for x in range(16)))


def _nsacr(name: str, offset: int) -> Layout:
    """Two bits per INTID: NS_access<x> [2x+1:2x] of element n is INTID 16n + x."""
    return _L(name, 32, offset, *(F(f"NS_access{x}", 2 * x + 1, 2 * x) for x in range(16)))


def _cache_fields(inner_lo: int, outer_lo: int) -> tuple[Field, Field, Field]:
    return (
        F("InnerCache", inner_lo + 2, inner_lo),
        F("Shareability", 11, 10),
        F("OuterCache", outer_lo + 2, outer_lo),
    )


# ============================================================================================
# Distributor (§4), offsets in the Distributor frame

GICD_CTLR = _L(
    "GICD_CTLR",
    32,
    0x0000,
    F("EnableGrp0", 0),
    F("EnableGrp1", 1),
    F("ARE", 4, doc="affinity routing; Linux calls the bit GICD_CTLR_ARE_NS"),
    F("DS", 6, doc="Disable Security: reads 1 with a single Security state"),
    F("E1NWF", 7),
    F("nASSGIreq", 8, doc="GICv4.1"),
    F("RWP", 31, doc="register write pending (RO)"),
    doc="Single Security state view (DS = 1): what QEMU virt (no EL3) and Linux/Xen see (§4.2).",
)
GICD_CTLR_S = _L(
    "GICD_CTLR",
    32,
    0x0000,
    F("EnableGrp0", 0),
    F("EnableGrp1NS", 1),
    F("EnableGrp1S", 2),
    F("ARE_S", 4),
    F("ARE_NS", 5),
    F("DS", 6),
    F("E1NWF", 7),
    F("RWP", 31),
    doc="Secure access view with two Security states (DS = 0) (§4.2).",
)
GICD_CTLR_NS = _L(
    "GICD_CTLR",
    32,
    0x0000,
    F("EnableGrp1", 0),
    F("EnableGrp1A", 1),
    F("ARE_NS", 4, doc="alias of the Secure view's bit [5]"),
    F("RWP", 31),
    doc="Non-secure access view with two Security states (DS = 0) (§4.2).",
)

GICD_TYPER = _L(
    "GICD_TYPER",
    32,
    0x0004,
    F("ITLinesNumber", 4, 0, doc="max SPI INTID = 32(N+1) - 1"),
    F("CPUNumber", 7, 5),
    F("ESPI", 8),
    F("NMI", 9),
    F("SecurityExtn", 10),
    F("num_LPIs", 15, 11),
    F("MBIS", 16),
    F("LPIS", 17),
    F("DVIS", 18),
    F("IDbits", 23, 19, doc="INTID bits - 1"),
    F("A3V", 24),
    F("No1N", 25),
    F("RSS", 26),
    F("ESPI_range", 31, 27),
)
GICD_IIDR = _iidr("GICD_IIDR", 0x0008)
GICD_TYPER2 = _L(
    "GICD_TYPER2",
    32,
    0x000C,
    F("VID", 4, 0),
    F("VIL", 7),
    F("nASSGIcap", 8),
    doc="GICv4.1 vPE ID width and vSGI capability (Linux GICD_TYPER2_VID/VIL/nASSGIcap).",
)
GICD_STATUSR = _statusr("GICD_STATUSR", 0x0010)
GICD_SETSPI_NSR = _L("GICD_SETSPI_NSR", 32, 0x0040, F("INTID", 12, 0))
GICD_CLRSPI_NSR = _L("GICD_CLRSPI_NSR", 32, 0x0048, F("INTID", 12, 0))
GICD_SETSPI_SR = _L("GICD_SETSPI_SR", 32, 0x0050, F("INTID", 12, 0))
GICD_CLRSPI_SR = _L("GICD_CLRSPI_SR", 32, 0x0058, F("INTID", 12, 0))
GICD_IGROUPR = _bitmap("GICD_IGROUPR", 0x0080, "Group_status_bit", "1 = Group 1")
GICD_ISENABLER = _bitmap("GICD_ISENABLER", 0x0100, "Set_enable_bit", "write 1 enables")
GICD_ICENABLER = _bitmap("GICD_ICENABLER", 0x0180, "Clear_enable_bit", "write 1 disables")
GICD_ISPENDR = _bitmap("GICD_ISPENDR", 0x0200, "Set_pending_bit", "write 1 sets pending")
GICD_ICPENDR = _bitmap("GICD_ICPENDR", 0x0280, "Clear_pending_bit", "write 1 clears pending")
GICD_ISACTIVER = _bitmap("GICD_ISACTIVER", 0x0300, "Set_active_bit", "write 1 activates")
GICD_ICACTIVER = _bitmap("GICD_ICACTIVER", 0x0380, "Clear_active_bit", "write 1 deactivates")
GICD_IPRIORITYR = _priority("GICD_IPRIORITYR", 0x0400)
GICD_ICFGR = _icfgr("GICD_ICFGR", 0x0C00)
GICD_IGRPMODR = _bitmap("GICD_IGRPMODR", 0x0D00, "Group_modifier_bit", "group modifier")
GICD_NSACR = _nsacr("GICD_NSACR", 0x0E00)
GICD_IROUTER = _L(
    "GICD_IROUTER",
    64,
    0x6000,
    F("Aff0", 7, 0),
    F("Aff1", 15, 8),
    F("Aff2", 23, 16),
    F("Interrupt_Routing_Mode", 31, doc="1 = any PE (1 of N)"),
    F("Aff3", 39, 32),
    doc="Element n (32..1019, SPIs only) at 0x6000 + 8n (§4.6).",
)
GICD_PIDR2 = _pidr2("GICD_PIDR2")

# ============================================================================================
# Redistributor RD_base frame (§3.2-§3.8), offsets from RD_base

GICR_CTLR = _L(
    "GICR_CTLR",
    32,
    0x0000,
    F("EnableLPIs", 0),
    F("CES", 1, doc="EnableLPIs may be cleared"),
    F("IR", 2),
    F("RWP", 3, doc="register write pending (RO)"),
    F("DPG0", 24),
    F("DPG1NS", 25),
    F("DPG1S", 26),
    F("UWP", 31, doc="upstream write pending (RO)"),
)
GICR_IIDR = _iidr("GICR_IIDR", 0x0004)
GICR_TYPER = _L(
    "GICR_TYPER",
    64,
    0x0008,
    F("PLPIS", 0),
    F("VLPIS", 1),
    F("Dirty", 2),
    F("DirectLPI", 3),
    F("Last", 4),
    F("DPGS", 5),
    F("MPAM", 6),
    F("RVPEID", 7),
    F("Processor_Number", 23, 8, doc="RDbase when GITS_TYPER.PTA = 0"),
    F("CommonLPIAff", 25, 24),
    F("VSGI", 26),
    F("PPInum", 31, 27),
    F("Affinity_Value", 63, 32, doc="Aff3 [63:56], Aff2 [55:48], Aff1 [47:40], Aff0 [39:32]"),
)
GICR_STATUSR = _statusr("GICR_STATUSR", 0x0010)
GICR_WAKER = _L(
    "GICR_WAKER",
    32,
    0x0014,
    F("ProcessorSleep", 1),
    F("ChildrenAsleep", 2, doc="RO"),
    doc="Bits [0] and [31] are IMPLEMENTATION DEFINED and not modelled (§3.5).",
)
GICR_SETLPIR = _L("GICR_SETLPIR", 64, 0x0040, F("pINTID", 31, 0))
GICR_CLRLPIR = _L("GICR_CLRLPIR", 64, 0x0048, F("pINTID", 31, 0))
GICR_PROPBASER = _L(
    "GICR_PROPBASER",
    64,
    0x0070,
    F("IDbits", 4, 0, doc="LPI INTID bits - 1"),
    F("InnerCache", 9, 7),
    F("Shareability", 11, 10),
    F("Physical_Address", 51, 12, address=True),
    F("OuterCache", 58, 56),
)
GICR_PENDBASER = _L(
    "GICR_PENDBASER",
    64,
    0x0078,
    F("InnerCache", 9, 7),
    F("Shareability", 11, 10),
    F("Physical_Address", 51, 16, address=True),
    F("OuterCache", 58, 56),
    F("PTZ", 62, doc="Pending Table Zero (WO, reads 0)"),
)
GICR_INVLPIR = _L("GICR_INVLPIR", 64, 0x00A0, F("INTID", 31, 0), F("vPEID", 47, 32), F("V", 63))
GICR_INVALLR = _L("GICR_INVALLR", 64, 0x00B0, F("vPEID", 47, 32), F("V", 63))
GICR_SYNCR = _L("GICR_SYNCR", 32, 0x00C0, F("Busy", 0))
GICR_PIDR2 = _pidr2("GICR_PIDR2")

# ============================================================================================
# Redistributor SGI_base frame (§3.2): offsets RELATIVE TO SGI_base (RD_base + 0x10000)

GICR_IGROUPR0 = _bitmap("GICR_IGROUPR0", 0x0080, "Group_status_bit", "1 = Group 1")
GICR_ISENABLER0 = _bitmap("GICR_ISENABLER0", 0x0100, "Set_enable_bit", "write 1 enables")
GICR_ICENABLER0 = _bitmap("GICR_ICENABLER0", 0x0180, "Clear_enable_bit", "write 1 disables")
GICR_ISPENDR0 = _bitmap("GICR_ISPENDR0", 0x0200, "Set_pending_bit", "write 1 sets pending")
GICR_ICPENDR0 = _bitmap("GICR_ICPENDR0", 0x0280, "Clear_pending_bit", "write 1 clears pending")
GICR_ISACTIVER0 = _bitmap("GICR_ISACTIVER0", 0x0300, "Set_active_bit", "write 1 activates")
GICR_ICACTIVER0 = _bitmap("GICR_ICACTIVER0", 0x0380, "Clear_active_bit", "write 1 deactivates")
GICR_IPRIORITYR = _priority("GICR_IPRIORITYR", 0x0400)
GICR_ICFGR0 = _icfgr("GICR_ICFGR0", 0x0C00)
GICR_ICFGR1 = _icfgr("GICR_ICFGR1", 0x0C04)
GICR_IGRPMODR0 = _bitmap("GICR_IGRPMODR0", 0x0D00, "Group_modifier_bit", "group modifier")
GICR_NSACR = _nsacr("GICR_NSACR", 0x0E00)

# ============================================================================================
# ITS control frame (§2), offsets from ITS_base

GITS_CTLR = _L(
    "GITS_CTLR",
    32,
    0x0000,
    F("Enabled", 0),
    F("ImDe", 1),
    F("ITS_Number", 7, 4),
    F("UMSIirq", 8),
    F("Quiescent", 31, doc="RO"),
)
GITS_IIDR = _iidr("GITS_IIDR", 0x0004)
GITS_TYPER = _L(
    "GITS_TYPER",
    64,
    0x0008,
    F("Physical", 0),
    F("Virtual", 1),
    F("CCT", 2),
    F("ITT_entry_size", 7, 4, doc="bytes per ITT entry - 1"),
    F("ID_bits", 12, 8, doc="EventID bits - 1"),
    F("Devbits", 17, 13, doc="DeviceID bits - 1"),
    F("SEIS", 18),
    F("PTA", 19),
    F("HCC", 31, 24),
    F("CIDbits", 35, 32, doc="collection ID bits - 1 (valid when CIL = 1)"),
    F("CIL", 36),
    F("VMOVP", 37),
    F("MPAM", 38),
    F("VSGI", 39),
    F("VMAPP", 40),
    F("SVPET", 42, 41),
    F("nID", 43),
    doc="Bit [3] is IMPLEMENTATION DEFINED and not modelled (§2.4).",
)
GITS_CBASER = _L(
    "GITS_CBASER",
    64,
    0x0080,
    F("Size", 7, 0, doc="4 KiB pages - 1"),
    F("Shareability", 11, 10),
    F("Physical_Address", 51, 12, address=True),
    F("OuterCache", 55, 53),
    F("InnerCache", 61, 59),
    F("Valid", 63),
)
GITS_CWRITER = _L("GITS_CWRITER", 64, 0x0088, F("Retry", 0), F("Offset", 19, 5))
GITS_CREADR = _L("GITS_CREADR", 64, 0x0090, F("Stalled", 0), F("Offset", 19, 5))
GITS_BASER = _L(
    "GITS_BASER",
    64,
    0x0100,
    F("Size", 7, 0, doc="pages - 1"),
    F("Page_Size", 9, 8),
    F("Shareability", 11, 10),
    F(
        "Physical_Address",
        47,
        12,
        address=True,
        doc="64 KiB pages: [47:16] = PA[47:16], [15:12] = PA[51:48]; see baser_base_addr()",
    ),
    F("Entry_Size", 52, 48, doc="bytes per entry - 1 (RO)"),
    F("OuterCache", 55, 53),
    F("Type", 58, 56, doc="RO"),
    F("InnerCache", 61, 59),
    F("Indirect", 62),
    F("Valid", 63),
    doc="GITS_BASER<n>, n = 0..7, at 0x100 + 8n; see GITS_BASERn().",
)
GITS_PIDR2 = _pidr2("GITS_PIDR2")
GITS_TRANSLATER = _L(
    "GITS_TRANSLATER",
    32,
    GITS_TRANSLATER_OFFSET,
    F("EventID", 31, 0),
    doc="Offset 0x10040 from ITS_base (0x40 in the translation frame); DeviceID comes from the bus.",
)

# ============================================================================================
# CPU interface system registers (§6.1), all 64-bit

_INTID24 = F("INTID", 23, 0)
ICC_IAR1_EL1 = _L("ICC_IAR1_EL1", 64, None, _INTID24, doc="1023 = spurious")
ICC_EOIR1_EL1 = _L("ICC_EOIR1_EL1", 64, None, _INTID24)
ICC_DIR_EL1 = _L("ICC_DIR_EL1", 64, None, _INTID24)
ICC_HPPIR1_EL1 = _L("ICC_HPPIR1_EL1", 64, None, _INTID24)
ICC_RPR_EL1 = _L("ICC_RPR_EL1", 64, None, F("Priority", 7, 0))
ICC_PMR_EL1 = _L("ICC_PMR_EL1", 64, None, F("Priority", 7, 0))
ICC_BPR1_EL1 = _L("ICC_BPR1_EL1", 64, None, F("BinaryPoint", 2, 0))
ICC_CTLR_EL1 = _L(
    "ICC_CTLR_EL1",
    64,
    None,
    F("CBPR", 0),
    F("EOImode", 1),
    F("PMHE", 6),
    F("PRIbits", 10, 8, doc="priority bits - 1 (RO)"),
    F("IDbits", 13, 11, doc="0 = 16 bits, 1 = 24 bits (RO)"),
    F("SEIS", 14),
    F("A3V", 15),
    F("RSS", 18),
    F("ExtRange", 19),
)
ICC_SRE_EL1 = _L("ICC_SRE_EL1", 64, None, F("SRE", 0), F("DFB", 1), F("DIB", 2))
ICC_IGRPEN1_EL1 = _L("ICC_IGRPEN1_EL1", 64, None, F("Enable", 0))
ICC_SGI1R_EL1 = _L(
    "ICC_SGI1R_EL1",
    64,
    None,
    F("TargetList", 15, 0),
    F("Aff1", 23, 16),
    F("INTID", 27, 24),
    F("Aff2", 39, 32),
    F("IRM", 40),
    F("RS", 47, 44),
    F("Aff3", 55, 48),
)
ICC_AP1R_EL1 = _L("ICC_AP1R_EL1", 64, None, F("P", 31, 0, doc="bit x = active priority group x"))

# ============================================================================================
# Virtualisation system registers (§6.2-§6.7), all 64-bit

ICH_LR_EL2 = _L(
    "ICH_LR_EL2",
    64,
    None,
    F("vINTID", 31, 0),
    F("EOI", 41, doc="HW = 0 only: EOI maintenance interrupt on deactivation"),
    F("Priority", 55, 48),
    F("NMI", 59),
    F("Group", 60),
    F("HW", 61),
    F("State", 63, 62),
    doc="ICH_LR<n>_EL2, HW = 0 view (EOI at [41]; [40:32], [44:42] RES0). See decode_ich_lr().",
)
ICH_LR_EL2_HW = _L(
    "ICH_LR_EL2",
    64,
    None,
    F("vINTID", 31, 0),
    F("pINTID", 44, 32, doc="HW = 1 only: physical INTID deactivated with the virtual one"),
    F("Priority", 55, 48),
    F("NMI", 59),
    F("Group", 60),
    F("HW", 61),
    F("State", 63, 62),
    doc="ICH_LR<n>_EL2, HW = 1 view (pINTID [44:32], 13 bits per §9 item 1).",
)
ICH_HCR_EL2 = _L(
    "ICH_HCR_EL2",
    64,
    None,
    F("En", 0),
    F("UIE", 1),
    F("LRENPIE", 2),
    F("NPIE", 3),
    F("VGrp0EIE", 4),
    F("VGrp0DIE", 5),
    F("VGrp1EIE", 6),
    F("VGrp1DIE", 7),
    F("vSGIEOICount", 8),
    F("TC", 10),
    F("TALL0", 11),
    F("TALL1", 12),
    F("TSEI", 13),
    F("TDIR", 14),
    F("DVIM", 15),
    F("EOIcount", 31, 27),
)
ICH_VTR_EL2 = _L(
    "ICH_VTR_EL2",
    64,
    None,
    F("ListRegs", 4, 0, doc="list registers - 1"),
    F("DVIM", 18),
    F("TDS", 19),
    F("nV4", 20),
    F("A3V", 21),
    F("SEIS", 22),
    F("IDbits", 25, 23, doc="0 = 16 bits, 1 = 24 bits"),
    F("PREbits", 28, 26, doc="preemption bits - 1"),
    F("PRIbits", 31, 29, doc="priority bits - 1"),
)
ICH_VMCR_EL2 = _L(
    "ICH_VMCR_EL2",
    64,
    None,
    F("VENG0", 0),
    F("VENG1", 1),
    F("VAckCtl", 2),
    F("VFIQEn", 3),
    F("VCBPR", 4),
    F("VEOIM", 9),
    F("VBPR1", 20, 18),
    F("VBPR0", 23, 21),
    F("VPMR", 31, 24),
)
ICH_MISR_EL2 = _L(
    "ICH_MISR_EL2",
    64,
    None,
    F("EOI", 0),
    F("U", 1),
    F("LRENP", 2),
    F("NP", 3),
    F("VGrp0E", 4),
    F("VGrp0D", 5),
    F("VGrp1E", 6),
    F("VGrp1D", 7),
)
ICH_ELRSR_EL2 = _L(
    "ICH_ELRSR_EL2", 64, None, F("Status", 15, 0, doc="bit n = LR n empty and reusable")
)
ICH_EISR_EL2 = _L(
    "ICH_EISR_EL2", 64, None, F("Status", 15, 0, doc="bit n = LR n has an EOI maintenance event")
)
ICH_AP1R_EL2 = _L(
    "ICH_AP1R_EL2", 64, None, F("P", 31, 0, doc="bit x = virtual active priority group x")
)


# ============================================================================================
# Arrays and element lookup


@dataclass(frozen=True, slots=True)
class RegisterArray:
    """A banked register array: element n is at ``layout.offset + stride * n``, first <= n <= last."""

    layout: Layout
    stride: int
    first: int
    last: int
    name_format: str  # e.g. "GICD_ISENABLER{n}", "ICH_LR{n}_EL2"

    def element_name(self, n: int) -> str:
        return self.name_format.format(n=n)

    def element(self, n: int) -> Layout:
        """The Layout of element ``n``, named and placed as that register."""
        if not self.first <= n <= self.last:
            raise ValueError(
                f"{self.name_format.format(n='<n>')}: n = {n} outside {self.first}..{self.last}"
            )
        offset = None if self.layout.offset is None else self.layout.offset + self.stride * n
        return dataclasses.replace(self.layout, name=self.element_name(n), offset=offset)


def _arr(layout: Layout, first: int, last: int, fmt: str | None = None) -> RegisterArray:
    return RegisterArray(layout, layout.width // 8, first, last, fmt or layout.name + "{n}")


GICD_ARRAYS: tuple[RegisterArray, ...] = (
    _arr(GICD_IGROUPR, 0, 31),
    _arr(GICD_ISENABLER, 0, 31),
    _arr(GICD_ICENABLER, 0, 31),
    _arr(GICD_ISPENDR, 0, 31),
    _arr(GICD_ICPENDR, 0, 31),
    _arr(GICD_ISACTIVER, 0, 31),
    _arr(GICD_ICACTIVER, 0, 31),
    _arr(GICD_IPRIORITYR, 0, 254),
    _arr(GICD_ICFGR, 0, 63),
    _arr(GICD_IGRPMODR, 0, 31),
    _arr(GICD_NSACR, 0, 63),
    _arr(GICD_IROUTER, 32, 1019),
)
GICR_SGI_ARRAYS: tuple[RegisterArray, ...] = (_arr(GICR_IPRIORITYR, 0, 7),)
GITS_ARRAYS: tuple[RegisterArray, ...] = (_arr(GITS_BASER, 0, GITS_BASER_NR_REGS - 1),)
SYSREG_ARRAYS: tuple[RegisterArray, ...] = (
    RegisterArray(ICH_LR_EL2, 0, 0, ICH_LR_NR_REGS - 1, "ICH_LR{n}_EL2"),
    RegisterArray(ICH_AP1R_EL2, 0, 0, 3, "ICH_AP1R{n}_EL2"),
    RegisterArray(ICC_AP1R_EL1, 0, 0, 3, "ICC_AP1R{n}_EL1"),
)
ARRAYS: dict[str, RegisterArray] = {
    a.layout.name: a for a in GICD_ARRAYS + GICR_SGI_ARRAYS + GITS_ARRAYS + SYSREG_ARRAYS
}


def GITS_BASERn(n: int) -> Layout:
    """GITS_BASER<n> (n = 0..7) at 0x100 + 8n, named "GITS_BASER<n>"."""
    return ARRAYS["GITS_BASER"].element(n)


def ICH_LRn_EL2(n: int) -> Layout:
    """ICH_LR<n>_EL2 (n = 0..15), HW = 0 view; use decode_ich_lr() to decode by HW."""
    return ARRAYS["ICH_LR_EL2"].element(n)


def GICD_IROUTERn(n: int) -> Layout:
    """GICD_IROUTER<n> (n = 32..1019) at 0x6000 + 8n."""
    return ARRAYS["GICD_IROUTER"].element(n)


_SINGLE_GICD = (
    GICD_CTLR,
    GICD_TYPER,
    GICD_IIDR,
    GICD_TYPER2,
    GICD_STATUSR,
    GICD_SETSPI_NSR,
    GICD_CLRSPI_NSR,
    GICD_SETSPI_SR,
    GICD_CLRSPI_SR,
    GICD_PIDR2,
)
_SINGLE_GICR_RD = (
    GICR_CTLR,
    GICR_IIDR,
    GICR_TYPER,
    GICR_STATUSR,
    GICR_WAKER,
    GICR_SETLPIR,
    GICR_CLRLPIR,
    GICR_PROPBASER,
    GICR_PENDBASER,
    GICR_INVLPIR,
    GICR_INVALLR,
    GICR_SYNCR,
    GICR_PIDR2,
)
_SINGLE_GICR_SGI = (
    GICR_IGROUPR0,
    GICR_ISENABLER0,
    GICR_ICENABLER0,
    GICR_ISPENDR0,
    GICR_ICPENDR0,
    GICR_ISACTIVER0,
    GICR_ICACTIVER0,
    GICR_ICFGR0,
    GICR_ICFGR1,
    GICR_IGRPMODR0,
    GICR_NSACR,
)
_SINGLE_GITS = (
    GITS_CTLR,
    GITS_IIDR,
    GITS_TYPER,
    GITS_CBASER,
    GITS_CWRITER,
    GITS_CREADR,
    GITS_PIDR2,
    GITS_TRANSLATER,
)
_SYSREGS = (
    ICC_IAR1_EL1,
    ICC_EOIR1_EL1,
    ICC_DIR_EL1,
    ICC_HPPIR1_EL1,
    ICC_RPR_EL1,
    ICC_PMR_EL1,
    ICC_BPR1_EL1,
    ICC_CTLR_EL1,
    ICC_SRE_EL1,
    ICC_IGRPEN1_EL1,
    ICC_SGI1R_EL1,
    ICH_HCR_EL2,
    ICH_VTR_EL2,
    ICH_VMCR_EL2,
    ICH_MISR_EL2,
    ICH_ELRSR_EL2,
    ICH_EISR_EL2,
)


def _by_offset(singles: tuple[Layout, ...], arrays: tuple[RegisterArray, ...]) -> dict[int, Layout]:
    table: dict[int, Layout] = {}
    for layout in singles:
        assert layout.offset is not None
        table[layout.offset] = layout
    for arr in arrays:
        for n in range(arr.first, arr.last + 1):
            el = arr.element(n)
            assert el.offset is not None and el.offset not in table, el.name
            table[el.offset] = el
    return dict(sorted(table.items()))


GICD_REGISTERS: dict[int, Layout] = _by_offset(_SINGLE_GICD, GICD_ARRAYS)
"""Distributor frame offset -> Layout (array elements as named elements, e.g. GICD_ISENABLER1)."""
GICR_RD_REGISTERS: dict[int, Layout] = _by_offset(_SINGLE_GICR_RD, ())
"""RD_base frame offset -> Layout."""
GICR_SGI_REGISTERS: dict[int, Layout] = _by_offset(_SINGLE_GICR_SGI, GICR_SGI_ARRAYS)
"""SGI_base frame offset (relative to SGI_base) -> Layout."""
GITS_REGISTERS: dict[int, Layout] = _by_offset(_SINGLE_GITS, GITS_ARRAYS)
"""ITS_base offset -> Layout (GITS_TRANSLATER at 0x10040)."""

VIEWS: dict[str, Layout] = {
    "GICD_CTLR": GICD_CTLR,
    "GICD_CTLR_S": GICD_CTLR_S,
    "GICD_CTLR_NS": GICD_CTLR_NS,
    "ICH_LR_EL2": ICH_LR_EL2,
    "ICH_LR_EL2_HW": ICH_LR_EL2_HW,
}
"""Alternative views of one register (Security state, ICH_LR HW bit), not separate registers."""


def _registers() -> dict[str, Layout]:
    regs: dict[str, Layout] = {}
    for layout in _SINGLE_GICD + _SINGLE_GICR_RD + _SINGLE_GICR_SGI + _SINGLE_GITS + _SYSREGS:
        regs[layout.name] = layout
    for arr in ARRAYS.values():
        regs[arr.layout.name] = arr.layout
    for arr in GITS_ARRAYS + GICR_SGI_ARRAYS + SYSREG_ARRAYS:
        for n in range(arr.first, arr.last + 1):
            regs[arr.element_name(n)] = arr.element(n)
    return regs


REGISTERS: dict[str, Layout] = _registers()
"""Every register by name: generic array names (GICD_ISENABLER, GITS_BASER, ICH_LR_EL2) and the
elements of the small arrays (GITS_BASER0..7, ICH_LR0_EL2..ICH_LR15_EL2, GICR_IPRIORITYR0..7,
ICH_AP1R0..3_EL2, ICC_AP1R0..3_EL1). Large GICD array elements resolve through register()."""

_ARRAY_NAME_RE = [
    (re.compile("^" + re.escape(a.name_format).replace(r"\{n\}", r"(\d+)") + "$"), a)
    for a in ARRAYS.values()
]


def register(name: str) -> Layout:
    """The Layout named ``name`` (case-insensitive), including any array element
    (``GICD_IPRIORITYR10``, ``GICD_IROUTER40``). Raises KeyError if there is none."""
    key = name.strip().upper()
    if key in REGISTERS:
        return REGISTERS[key]
    for rx, arr in _ARRAY_NAME_RE:
        m = rx.match(key)
        if m:
            n = int(m.group(1))
            if arr.first <= n <= arr.last:
                return arr.element(n)
            raise KeyError(
                f"{arr.name_format.format(n='<n>')} has n = {arr.first}..{arr.last}, not {n}"
            )
    raise KeyError(f"no register named {name!r}")


def array_of(name: str) -> RegisterArray | None:
    """The array a (possibly element) register name belongs to, or None."""
    key = name.strip().upper()
    if key in ARRAYS:
        return ARRAYS[key]
    for rx, arr in _ARRAY_NAME_RE:
        if rx.match(key):
            return arr
    return None


def frame_of(name: str) -> str | None:
    """The frame of a register (any name :func:`register` accepts): "GICD", "GICR_RD",
    "GICR_SGI" (offset relative to SGI_base), "GITS", or None for system registers."""
    arr = array_of(name)
    key = arr.layout.name if arr is not None else name.strip().upper()
    return _FRAME_OF.get(key)


_FRAME_OF: dict[str, str] = {
    **{lay.name: "GICD" for lay in _SINGLE_GICD},
    **{a.layout.name: "GICD" for a in GICD_ARRAYS},
    **{lay.name: "GICR_RD" for lay in _SINGLE_GICR_RD},
    **{lay.name: "GICR_SGI" for lay in _SINGLE_GICR_SGI},
    **{a.layout.name: "GICR_SGI" for a in GICR_SGI_ARRAYS},
    **{lay.name: "GITS" for lay in _SINGLE_GITS},
    **{a.layout.name: "GITS" for a in GITS_ARRAYS},
}


# ============================================================================================
# MMIO naming


@dataclass(frozen=True, slots=True)
class MmioRegister:
    """What an MMIO offset hits: the register Layout (an element Layout for arrays), the offset
    of the register's first byte in the frame, and the byte of the access inside it."""

    frame: str
    layout: Layout
    base: int
    byte: int

    @property
    def name(self) -> str:
        return self.layout.name if self.byte == 0 else f"{self.layout.name}+{self.byte}"


_FRAMES = ("GICD", "GICR", "GITS")


def mmio_lookup(frame: str, offset: int) -> MmioRegister | None:
    """The register of ``frame`` ("GICD", "GICR", "GITS") at ``offset``, or None.

    GICR offsets are from RD_base of one Redistributor; offsets >= 0x10000 are in SGI_base.
    GITS offsets are from ITS_base (GITS_TRANSLATER at 0x10040).
    """
    if frame not in _FRAMES:
        raise ValueError(f"unknown frame {frame!r}; expected one of {', '.join(_FRAMES)}")
    if frame == "GICD":
        table, rebase = GICD_REGISTERS, 0
    elif frame == "GITS":
        table, rebase = GITS_REGISTERS, 0
    elif offset >= GICR_SGI_OFFSET:
        table, rebase = GICR_SGI_REGISTERS, GICR_SGI_OFFSET
    else:
        table, rebase = GICR_RD_REGISTERS, 0
    local = offset - rebase
    for start in (local & ~7, local & ~3):
        layout = table.get(start)
        if layout is not None and start <= local < start + layout.width // 8:
            return MmioRegister(frame, layout, start + rebase, local - start)
    return None


def mmio_register_name(frame: str, offset: int) -> str:
    """A readable name for an MMIO access: "GICD_ISENABLER1", "GICR_PROPBASER+4",
    "GICD_IPRIORITYR10+2", "GITS_BASER1"; unknown offsets give "GICD+0x00c"."""
    reg = mmio_lookup(frame, offset)
    if reg is None:
        return f"{frame}+{offset:#05x}"
    return reg.name


# ============================================================================================
# Helpers for encodings that a plain field cannot express


def decode_ich_lr(value: int) -> dict[str, int]:
    """Decode ICH_LR<n>_EL2 with the view its HW bit selects (HW = 1: pINTID; HW = 0: EOI)."""
    ICH_LR_EL2.check(value)
    view = ICH_LR_EL2_HW if ICH_LR_EL2.get(value, "HW") else ICH_LR_EL2
    return view.decode(value)


def ich_lr_view(value: int) -> Layout:
    """The ICH_LR view (HW = 0 or HW = 1 layout) that applies to ``value``."""
    return ICH_LR_EL2_HW if (value >> 61) & 1 else ICH_LR_EL2


def encode_ich_lr(
    *,
    vINTID: int,
    State: int,
    Group: int = 1,
    Priority: int = 0,
    HW: int = 0,
    pINTID: int = 0,
    EOI: int = 0,
    NMI: int = 0,
) -> int:
    """Build an ICH_LR<n>_EL2 value; pINTID needs HW = 1 and EOI needs HW = 0."""
    if HW:
        if EOI:
            raise ValueError("ICH_LR_EL2: EOI exists only when HW = 0")
        return ICH_LR_EL2_HW.encode(
            vINTID=vINTID, pINTID=pINTID, Priority=Priority, NMI=NMI, Group=Group, HW=1, State=State
        )
    if pINTID:
        raise ValueError("ICH_LR_EL2: pINTID exists only when HW = 1")
    return ICH_LR_EL2.encode(
        vINTID=vINTID, EOI=EOI, Priority=Priority, NMI=NMI, Group=Group, HW=0, State=State
    )


def decode_register(name: str, value: int) -> dict[str, int]:
    """Decode ``value`` as register ``name`` (any name :func:`register` accepts); ICH_LR<n>_EL2
    is decoded through :func:`decode_ich_lr`."""
    layout = register(name)
    if layout.fields in (ICH_LR_EL2.fields, ICH_LR_EL2_HW.fields):
        return decode_ich_lr(value)
    return layout.decode(value)


def baser_base_addr(value: int) -> int:
    """Table base PA of a GITS_BASER<n> value (QEMU ``baser_base_addr``, Linux
    GITS_BASER_ADDR_48_to_52): with 64 KiB pages PA[51:48] sit in bits [15:12]."""
    page_size = GITS_BASER.get(value, "Page_Size")
    if page_size in (GIC_PAGE_SIZE_64K, 3):
        return (value & 0x0000_FFFF_FFFF_0000) | (((value >> 12) & 0xF) << 48)
    return value & 0x0000_FFFF_FFFF_F000


def baser_addr_bits(pa: int, page_size: int) -> int:
    """The Physical_Address bits of GITS_BASER<n> for table PA ``pa`` (Linux
    GITS_BASER_PHYS_52_to_48 for 64 KiB pages); ``pa`` must be aligned to the page size."""
    align = GITS_BASER_PAGE_BYTES.get(page_size, 0x10000)
    if pa < 0 or pa % align or pa >> 52:
        raise ValueError(f"GITS_BASER: table address {pa:#x} not a {align:#x}-aligned 52-bit PA")
    if page_size in (GIC_PAGE_SIZE_64K, 3):
        return (pa & 0x0000_FFFF_FFFF_0000) | (((pa >> 48) & 0xF) << 12)
    if pa >> 48:
        raise ValueError(f"GITS_BASER: {pa:#x} needs 64 KiB pages to reach PA[51:48]")
    return pa


def gicr_typer_affinity(value: int) -> tuple[int, int, int, int]:
    """(Aff3, Aff2, Aff1, Aff0) of a GICR_TYPER value (Affinity_Value [63:32])."""
    aff = GICR_TYPER.get(value, "Affinity_Value")
    return (aff >> 24) & 0xFF, (aff >> 16) & 0xFF, (aff >> 8) & 0xFF, aff & 0xFF


# ============================================================================================
# Meanings of enumerated and N-1 fields, for decoders (keyed "<generic register>.<field>")

_CACHE_REGS = ("GICR_PROPBASER", "GICR_PENDBASER", "GITS_CBASER", "GITS_BASER")

FIELD_MEANINGS: dict[str, Callable[[int], str]] = {}
for _r in _CACHE_REGS:
    FIELD_MEANINGS[f"{_r}.InnerCache"] = INNER_CACHE_NAMES.__getitem__
    FIELD_MEANINGS[f"{_r}.OuterCache"] = OUTER_CACHE_NAMES.__getitem__
    FIELD_MEANINGS[f"{_r}.Shareability"] = SHAREABILITY_NAMES.__getitem__
FIELD_MEANINGS.update(
    {
        "GICR_PROPBASER.IDbits": lambda v: f"{v + 1} INTID bits",
        "GITS_CBASER.Size": lambda v: f"{_pages(v + 1)} ({(v + 1) * 4} KiB)",
        "GITS_BASER.Size": lambda v: _pages(v + 1),
        "GITS_BASER.Page_Size": GITS_BASER_PAGE_SIZE_NAMES.__getitem__,
        "GITS_BASER.Type": GITS_BASER_TYPE_NAMES.__getitem__,
        "GITS_BASER.Entry_Size": lambda v: f"{v + 1} bytes",
        "GITS_CWRITER.Offset": lambda v: f"byte offset {v * 32:#x}",
        "GITS_CREADR.Offset": lambda v: f"byte offset {v * 32:#x}",
        "GITS_TYPER.ITT_entry_size": lambda v: f"{v + 1} bytes",
        "GITS_TYPER.ID_bits": lambda v: f"{v + 1} EventID bits",
        "GITS_TYPER.Devbits": lambda v: f"{v + 1} DeviceID bits",
        "GITS_TYPER.CIDbits": lambda v: f"{v + 1} collection ID bits",
        "GICD_TYPER.ITLinesNumber": lambda v: f"max SPI INTID {32 * (v + 1) - 1}",
        "GICD_TYPER.IDbits": lambda v: f"{v + 1} INTID bits",
        "GICR_TYPER.CommonLPIAff": {
            0: "all Redistributors",
            1: "same Aff3",
            2: "same Aff3.Aff2",
            3: "same Aff3.Aff2.Aff1",
        }.__getitem__,
        "GICD_PIDR2.ArchRev": lambda v: {3: "GICv3", 4: "GICv4"}.get(v, "unknown"),
        "GICR_PIDR2.ArchRev": lambda v: {3: "GICv3", 4: "GICv4"}.get(v, "unknown"),
        "GITS_PIDR2.ArchRev": lambda v: {3: "GICv3", 4: "GICv4"}.get(v, "unknown"),
        "ICH_LR_EL2.State": ICH_LR_STATE_NAMES.__getitem__,
        "ICH_LR_EL2.Group": lambda v: f"Group {v}",
        "ICH_VTR_EL2.ListRegs": lambda v: f"{v + 1} list registers",
        "ICH_VTR_EL2.IDbits": lambda v: {0: "16 bits", 1: "24 bits"}.get(v, "reserved"),
        "ICH_VTR_EL2.PREbits": lambda v: f"{v + 1} bits",
        "ICH_VTR_EL2.PRIbits": lambda v: f"{v + 1} bits",
        "ICC_CTLR_EL1.IDbits": lambda v: {0: "16 bits", 1: "24 bits"}.get(v, "reserved"),
        "ICC_CTLR_EL1.PRIbits": lambda v: f"{v + 1} bits",
        "ICC_CTLR_EL1.EOImode": {
            0: "EOIR drops priority and deactivates",
            1: "EOIR drops priority only",
        }.__getitem__,
        "ICC_IAR1_EL1.INTID": lambda v: "spurious" if v == INTID_SPURIOUS else intid_kind(v),
        "GICD_IROUTER.Interrupt_Routing_Mode": {0: "Aff3.Aff2.Aff1.Aff0", 1: "any PE"}.__getitem__,
    }
)


def _pages(n: int) -> str:
    return "1 page" if n == 1 else f"{n} pages"


def intid_kind(intid: int) -> str:
    """ "SGI", "PPI", "SPI", "special", "extended PPI", "extended SPI", "LPI" or "reserved"."""
    if intid < PPI_BASE_INTID:
        return "SGI"
    if intid < SPI_BASE_INTID:
        return "PPI"
    if intid <= SPI_MAX_INTID:
        return "SPI"
    if intid <= INTID_SPURIOUS:
        return "special"
    if EPPI_BASE_INTID <= intid <= EPPI_MAX_INTID:
        return "extended PPI"
    if ESPI_BASE_INTID <= intid <= ESPI_MAX_INTID:
        return "extended SPI"
    if intid >= LPI_INTID_BASE:
        return "LPI"
    return "reserved"


def field_meaning(register_name: str, field: str, value: int) -> str | None:
    """A short meaning for an enumerated or N-1 field value, or None when there is none."""
    arr = array_of(register_name)
    generic = arr.layout.name if arr is not None else register_name.upper()
    fn = FIELD_MEANINGS.get(f"{generic}.{field}")
    if fn is None:
        return None
    try:
        return fn(value)
    except KeyError:
        return None
