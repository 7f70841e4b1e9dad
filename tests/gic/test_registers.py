"""Register layouts against gicv3-architecture.md: worked examples E4-E7 both ways, field
positions and offsets from the sheet's tables, round trips, MMIO naming."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gic import registers as R
from gic.bits import EncodingError, Layout

# ---------------------------------------------------------------------------------------------
# Worked examples (§8), decode and encode


def test_e4_propbaser_linux() -> None:
    v = 0x0000000080A0078F
    assert R.GICR_PROPBASER.decode(v) == {
        "IDbits": 15,
        "InnerCache": 7,
        "Shareability": 1,
        "Physical_Address": 0x80A00000,
        "OuterCache": 0,
    }
    assert (
        R.GICR_PROPBASER.encode(
            Physical_Address=0x80A00000,
            Shareability=R.GIC_BASER_InnerShareable,
            InnerCache=R.GIC_BASER_CACHE_RaWaWb,
            IDbits=16 - 1,
        )
        == v
    )


def test_e4_propbaser_old_linux_wawb() -> None:
    v = R.GICR_PROPBASER.encode(
        Physical_Address=0x80A00000,
        Shareability=R.GIC_BASER_InnerShareable,
        InnerCache=R.GIC_BASER_CACHE_WaWb,
        IDbits=15,
    )
    assert v == 0x0000000080A0068F
    assert R.GICR_PROPBASER.get(0x0000000080A0068F, "InnerCache") == 5


@pytest.mark.parametrize(("ptz", "value"), [(0, 0x0000000080A10780), (1, 0x4000000080A10780)])
def test_e4_pendbaser(ptz: int, value: int) -> None:
    enc = R.GICR_PENDBASER.encode(
        Physical_Address=0x80A10000,
        Shareability=R.GIC_BASER_InnerShareable,
        InnerCache=R.GIC_BASER_CACHE_RaWaWb,
        PTZ=ptz,
    )
    assert enc == value
    assert R.GICR_PENDBASER.decode(value) == {
        "InnerCache": 7,
        "Shareability": 1,
        "Physical_Address": 0x80A10000,
        "OuterCache": 0,
        "PTZ": ptz,
    }


def test_pendbaser_address_must_be_64k_aligned() -> None:
    with pytest.raises(EncodingError):
        R.GICR_PENDBASER.encode(Physical_Address=0x80A11000)


E5 = [
    # (value, fields of the view its HW bit selects)
    (
        0x50A0000000002008,
        {"vINTID": 8200, "EOI": 0, "Priority": 0xA0, "NMI": 0, "Group": 1, "HW": 0, "State": 1},
    ),
    (
        0x50A0020000000028,
        {"vINTID": 40, "EOI": 1, "Priority": 0xA0, "NMI": 0, "Group": 1, "HW": 0, "State": 1},
    ),
    (
        0x7080100400000040,
        {"vINTID": 64, "pINTID": 4100, "Priority": 0x80, "NMI": 0, "Group": 1, "HW": 1, "State": 1},
    ),
]


@pytest.mark.parametrize(("value", "fields"), E5)
def test_e5_ich_lr_decode(value: int, fields: dict[str, int]) -> None:
    assert R.decode_ich_lr(value) == fields
    assert R.decode_register("ICH_LR7_EL2", value) == fields


@pytest.mark.parametrize(("value", "fields"), E5)
def test_e5_ich_lr_encode(value: int, fields: dict[str, int]) -> None:
    assert R.encode_ich_lr(**fields) == value
    view = R.ICH_LR_EL2_HW if fields["HW"] else R.ICH_LR_EL2
    assert view.encode(**fields) == value


def test_e5_pintid_bit_12_lands_in_bit_44() -> None:
    v = R.encode_ich_lr(vINTID=64, State=R.ICH_LR_STATE_PENDING, Priority=0x80, HW=1, pINTID=4100)
    assert v & (1 << 44)
    assert R.ICH_LR_EL2_HW["pINTID"].mask == 0x1FFF << 32


def test_ich_lr_eoi_and_pintid_are_exclusive() -> None:
    with pytest.raises(ValueError):
        R.encode_ich_lr(vINTID=1, State=1, HW=1, pINTID=5, EOI=1)
    with pytest.raises(ValueError):
        R.encode_ich_lr(vINTID=1, State=1, HW=0, pINTID=5)


def test_ich_lr_state_enum() -> None:
    assert [int(s) for s in R.IchLrState] == [0, 1, 2, 3]
    assert R.ICH_LR_EL2.encode(State=R.ICH_LR_STATE_PENDING) == 1 << 62
    assert R.ICH_LR_EL2.encode(State=R.ICH_LR_STATE_ACTIVE) == 1 << 63
    assert R.ICH_LR_EL2.encode(State=R.ICH_LR_STATE_PENDING_ACTIVE) == 3 << 62


def test_e6_cbaser_linux() -> None:
    v = 0xB8000000_80C0040F
    assert R.GITS_CBASER.decode(v) == {
        "Size": 15,
        "Shareability": 1,
        "Physical_Address": 0x80C00000,
        "OuterCache": 0,
        "InnerCache": 7,
        "Valid": 1,
    }
    assert (
        R.GITS_CBASER.encode(
            Valid=1,
            InnerCache=R.GIC_BASER_CACHE_RaWaWb,
            Physical_Address=0x80C00000,
            Shareability=R.GIC_BASER_InnerShareable,
            Size=64 * 1024 // 4096 - 1,
        )
        == v
    )


def test_e6_cwriter_after_three_commands() -> None:
    assert R.GITS_CWRITER.encode(Offset=3) == 0x60
    assert R.GITS_CWRITER.get(0x60, "Offset") == 3
    assert R.GITS_CREADR.get(0x60, "Offset") == 3


@pytest.mark.parametrize(("value", "page_size"), [(0x0107000000000000, 0), (0x0107000000000200, 2)])
def test_e7_gits_baser0_reset(value: int, page_size: int) -> None:
    d = R.GITS_BASERn(0).decode(value)
    assert d["Type"] == R.GITS_BASER_TYPE_DEVICE == 1
    assert d["Entry_Size"] == 7
    assert d["Page_Size"] == page_size
    assert d["Valid"] == 0
    assert R.GITS_BASER.encode(Type=1, Entry_Size=7, Page_Size=page_size) == value


def test_e7_gits_baser_64k_pages_52bit_address() -> None:
    assert R.baser_addr_bits(0x000A000080000000, R.GIC_PAGE_SIZE_64K) == 0x8000A000
    v = R.GITS_BASER.encode(
        Page_Size=R.GIC_PAGE_SIZE_64K,
        Physical_Address=R.baser_addr_bits(0x000A000080000000, R.GIC_PAGE_SIZE_64K),
    )
    assert v & 0x0000_FFFF_FFFF_F000 == 0x8000A000
    assert R.baser_base_addr(v) == 0x000A000080000000


def test_gits_baser_4k_pages_address_is_plain() -> None:
    v = R.GITS_BASER.encode(Page_Size=R.GIC_PAGE_SIZE_4K, Physical_Address=0x80001000)
    assert R.baser_base_addr(v) == 0x80001000
    with pytest.raises(ValueError):
        R.baser_addr_bits(0x000A000080000000, R.GIC_PAGE_SIZE_4K)
    with pytest.raises(ValueError):
        R.baser_addr_bits(0x80001000, R.GIC_PAGE_SIZE_64K)


def test_e7_kvm_gits_typer() -> None:
    d = R.GITS_TYPER.decode(0x1EF71)
    assert (d["Physical"], d["ITT_entry_size"], d["ID_bits"], d["Devbits"], d["PTA"]) == (
        1,
        7,
        15,
        15,
        0,
    )
    assert R.GITS_TYPER.encode(Physical=1, ITT_entry_size=7, ID_bits=15, Devbits=15) == 0x1EF71


def test_e7_qemu_gits_typer() -> None:
    v = 0x1F0001EFB1
    d = R.GITS_TYPER.decode(v)
    assert d["ITT_entry_size"] == 11
    assert d["ID_bits"] == 15
    assert d["Devbits"] == 15
    assert d["CIDbits"] == 15
    assert d["CIL"] == 1
    assert d["Physical"] == 1
    assert (
        R.GITS_TYPER.encode(
            Physical=1, ITT_entry_size=11, ID_bits=15, Devbits=15, CIDbits=15, CIL=1
        )
        == v
    )


def test_e7_kvm_gicr_typer() -> None:
    v = 0x0000000200000201
    d = R.GICR_TYPER.decode(v)
    assert d["PLPIS"] == 1
    assert d["Processor_Number"] == 2
    assert d["Affinity_Value"] == 2
    assert d["Last"] == 0
    assert R.gicr_typer_affinity(v) == (0, 0, 0, 2)
    assert R.GICR_TYPER.encode(PLPIS=1, Processor_Number=2, Affinity_Value=2) == v


def test_e7_qemu_gicd_typer() -> None:
    v = 0x037A0007
    d = R.GICD_TYPER.decode(v)
    assert (d["ITLinesNumber"], d["LPIS"], d["IDbits"], d["A3V"], d["No1N"]) == (7, 1, 15, 1, 1)
    assert d["SecurityExtn"] == 0
    assert R.GICD_TYPER.encode(ITLinesNumber=7, LPIS=1, IDbits=15, A3V=1, No1N=1) == v


def test_e7_qemu_ich_vtr() -> None:
    v = 0x90B80003
    d = R.ICH_VTR_EL2.decode(v)
    assert (d["ListRegs"], d["TDS"], d["nV4"], d["A3V"], d["IDbits"]) == (3, 1, 1, 1, 1)
    assert (d["PREbits"], d["PRIbits"]) == (4, 4)
    assert (
        R.ICH_VTR_EL2.encode(ListRegs=3, TDS=1, nV4=1, A3V=1, IDbits=1, PREbits=4, PRIbits=4) == v
    )


@pytest.mark.parametrize("layout", [R.GICD_PIDR2, R.GICR_PIDR2, R.GITS_PIDR2])
def test_e7_pidr2(layout: Layout) -> None:
    assert layout.get(0x3B, "ArchRev") == R.GIC_PIDR2_ARCH_GICv3
    assert layout.encode(ArchRev=3, JEDEC=1, DES_1=3) == 0x3B
    assert layout.offset == 0xFFE8


# ---------------------------------------------------------------------------------------------
# Field positions, transcribed from the sheet's tables: (layout, field, hi, lo)

POSITIONS: list[tuple[Layout, str, int, int]] = [
    # §4.2 single Security state view
    (R.GICD_CTLR, "EnableGrp0", 0, 0),
    (R.GICD_CTLR, "EnableGrp1", 1, 1),
    (R.GICD_CTLR, "ARE", 4, 4),
    (R.GICD_CTLR, "DS", 6, 6),
    (R.GICD_CTLR, "E1NWF", 7, 7),
    (R.GICD_CTLR, "nASSGIreq", 8, 8),
    (R.GICD_CTLR, "RWP", 31, 31),
    (R.GICD_CTLR_NS, "EnableGrp1A", 1, 1),
    (R.GICD_CTLR_NS, "ARE_NS", 4, 4),
    (R.GICD_CTLR_S, "ARE_NS", 5, 5),
    (R.GICD_CTLR_S, "EnableGrp1S", 2, 2),
    # §4.3
    (R.GICD_TYPER, "ITLinesNumber", 4, 0),
    (R.GICD_TYPER, "CPUNumber", 7, 5),
    (R.GICD_TYPER, "ESPI", 8, 8),
    (R.GICD_TYPER, "NMI", 9, 9),
    (R.GICD_TYPER, "SecurityExtn", 10, 10),
    (R.GICD_TYPER, "num_LPIs", 15, 11),
    (R.GICD_TYPER, "MBIS", 16, 16),
    (R.GICD_TYPER, "LPIS", 17, 17),
    (R.GICD_TYPER, "DVIS", 18, 18),
    (R.GICD_TYPER, "IDbits", 23, 19),
    (R.GICD_TYPER, "A3V", 24, 24),
    (R.GICD_TYPER, "No1N", 25, 25),
    (R.GICD_TYPER, "RSS", 26, 26),
    (R.GICD_TYPER, "ESPI_range", 31, 27),
    # §4.4
    (R.GICD_IIDR, "Implementer", 11, 0),
    (R.GICR_IIDR, "Revision", 15, 12),
    (R.GITS_IIDR, "Variant", 19, 16),
    (R.GITS_IIDR, "ProductID", 31, 24),
    # §4.6
    (R.GICD_IROUTER, "Aff0", 7, 0),
    (R.GICD_IROUTER, "Aff1", 15, 8),
    (R.GICD_IROUTER, "Aff2", 23, 16),
    (R.GICD_IROUTER, "Interrupt_Routing_Mode", 31, 31),
    (R.GICD_IROUTER, "Aff3", 39, 32),
    # §3.3
    (R.GICR_CTLR, "EnableLPIs", 0, 0),
    (R.GICR_CTLR, "CES", 1, 1),
    (R.GICR_CTLR, "IR", 2, 2),
    (R.GICR_CTLR, "RWP", 3, 3),
    (R.GICR_CTLR, "DPG0", 24, 24),
    (R.GICR_CTLR, "DPG1NS", 25, 25),
    (R.GICR_CTLR, "DPG1S", 26, 26),
    (R.GICR_CTLR, "UWP", 31, 31),
    # §3.4
    (R.GICR_TYPER, "PLPIS", 0, 0),
    (R.GICR_TYPER, "VLPIS", 1, 1),
    (R.GICR_TYPER, "Dirty", 2, 2),
    (R.GICR_TYPER, "DirectLPI", 3, 3),
    (R.GICR_TYPER, "Last", 4, 4),
    (R.GICR_TYPER, "DPGS", 5, 5),
    (R.GICR_TYPER, "MPAM", 6, 6),
    (R.GICR_TYPER, "RVPEID", 7, 7),
    (R.GICR_TYPER, "Processor_Number", 23, 8),
    (R.GICR_TYPER, "CommonLPIAff", 25, 24),
    (R.GICR_TYPER, "VSGI", 26, 26),
    (R.GICR_TYPER, "PPInum", 31, 27),
    (R.GICR_TYPER, "Affinity_Value", 63, 32),
    # §3.5
    (R.GICR_WAKER, "ProcessorSleep", 1, 1),
    (R.GICR_WAKER, "ChildrenAsleep", 2, 2),
    # §3.6
    (R.GICR_PROPBASER, "IDbits", 4, 0),
    (R.GICR_PROPBASER, "InnerCache", 9, 7),
    (R.GICR_PROPBASER, "Shareability", 11, 10),
    (R.GICR_PROPBASER, "Physical_Address", 51, 12),
    (R.GICR_PROPBASER, "OuterCache", 58, 56),
    # §3.7
    (R.GICR_PENDBASER, "InnerCache", 9, 7),
    (R.GICR_PENDBASER, "Shareability", 11, 10),
    (R.GICR_PENDBASER, "Physical_Address", 51, 16),
    (R.GICR_PENDBASER, "OuterCache", 58, 56),
    (R.GICR_PENDBASER, "PTZ", 62, 62),
    # §3.8
    (R.GICR_SETLPIR, "pINTID", 31, 0),
    (R.GICR_CLRLPIR, "pINTID", 31, 0),
    (R.GICR_INVLPIR, "INTID", 31, 0),
    (R.GICR_INVLPIR, "vPEID", 47, 32),
    (R.GICR_INVLPIR, "V", 63, 63),
    (R.GICR_INVALLR, "vPEID", 47, 32),
    (R.GICR_INVALLR, "V", 63, 63),
    (R.GICR_SYNCR, "Busy", 0, 0),
    # §2.2
    (R.GITS_CTLR, "Enabled", 0, 0),
    (R.GITS_CTLR, "ImDe", 1, 1),
    (R.GITS_CTLR, "ITS_Number", 7, 4),
    (R.GITS_CTLR, "UMSIirq", 8, 8),
    (R.GITS_CTLR, "Quiescent", 31, 31),
    # §2.4
    (R.GITS_TYPER, "Physical", 0, 0),
    (R.GITS_TYPER, "Virtual", 1, 1),
    (R.GITS_TYPER, "CCT", 2, 2),
    (R.GITS_TYPER, "ITT_entry_size", 7, 4),
    (R.GITS_TYPER, "ID_bits", 12, 8),
    (R.GITS_TYPER, "Devbits", 17, 13),
    (R.GITS_TYPER, "SEIS", 18, 18),
    (R.GITS_TYPER, "PTA", 19, 19),
    (R.GITS_TYPER, "HCC", 31, 24),
    (R.GITS_TYPER, "CIDbits", 35, 32),
    (R.GITS_TYPER, "CIL", 36, 36),
    (R.GITS_TYPER, "VMOVP", 37, 37),
    (R.GITS_TYPER, "MPAM", 38, 38),
    (R.GITS_TYPER, "VSGI", 39, 39),
    (R.GITS_TYPER, "VMAPP", 40, 40),
    (R.GITS_TYPER, "SVPET", 42, 41),
    (R.GITS_TYPER, "nID", 43, 43),
    # §2.5
    (R.GITS_CBASER, "Size", 7, 0),
    (R.GITS_CBASER, "Shareability", 11, 10),
    (R.GITS_CBASER, "Physical_Address", 51, 12),
    (R.GITS_CBASER, "OuterCache", 55, 53),
    (R.GITS_CBASER, "InnerCache", 61, 59),
    (R.GITS_CBASER, "Valid", 63, 63),
    # §2.6
    (R.GITS_CWRITER, "Retry", 0, 0),
    (R.GITS_CWRITER, "Offset", 19, 5),
    (R.GITS_CREADR, "Stalled", 0, 0),
    (R.GITS_CREADR, "Offset", 19, 5),
    # §2.7
    (R.GITS_BASER, "Size", 7, 0),
    (R.GITS_BASER, "Page_Size", 9, 8),
    (R.GITS_BASER, "Shareability", 11, 10),
    (R.GITS_BASER, "Physical_Address", 47, 12),
    (R.GITS_BASER, "Entry_Size", 52, 48),
    (R.GITS_BASER, "OuterCache", 55, 53),
    (R.GITS_BASER, "Type", 58, 56),
    (R.GITS_BASER, "InnerCache", 61, 59),
    (R.GITS_BASER, "Indirect", 62, 62),
    (R.GITS_BASER, "Valid", 63, 63),
    # §2.9
    (R.GITS_TRANSLATER, "EventID", 31, 0),
    # §6.1
    (R.ICC_IAR1_EL1, "INTID", 23, 0),
    (R.ICC_EOIR1_EL1, "INTID", 23, 0),
    (R.ICC_PMR_EL1, "Priority", 7, 0),
    (R.ICC_BPR1_EL1, "BinaryPoint", 2, 0),
    (R.ICC_CTLR_EL1, "CBPR", 0, 0),
    (R.ICC_CTLR_EL1, "EOImode", 1, 1),
    (R.ICC_CTLR_EL1, "PMHE", 6, 6),
    (R.ICC_CTLR_EL1, "PRIbits", 10, 8),
    (R.ICC_CTLR_EL1, "IDbits", 13, 11),
    (R.ICC_CTLR_EL1, "SEIS", 14, 14),
    (R.ICC_CTLR_EL1, "A3V", 15, 15),
    (R.ICC_CTLR_EL1, "RSS", 18, 18),
    (R.ICC_CTLR_EL1, "ExtRange", 19, 19),
    (R.ICC_SRE_EL1, "SRE", 0, 0),
    (R.ICC_SRE_EL1, "DFB", 1, 1),
    (R.ICC_SRE_EL1, "DIB", 2, 2),
    (R.ICC_IGRPEN1_EL1, "Enable", 0, 0),
    (R.ICC_SGI1R_EL1, "TargetList", 15, 0),
    (R.ICC_SGI1R_EL1, "Aff1", 23, 16),
    (R.ICC_SGI1R_EL1, "INTID", 27, 24),
    (R.ICC_SGI1R_EL1, "Aff2", 39, 32),
    (R.ICC_SGI1R_EL1, "IRM", 40, 40),
    (R.ICC_SGI1R_EL1, "RS", 47, 44),
    (R.ICC_SGI1R_EL1, "Aff3", 55, 48),
    # §6.2
    (R.ICH_LR_EL2, "vINTID", 31, 0),
    (R.ICH_LR_EL2, "EOI", 41, 41),
    (R.ICH_LR_EL2, "Priority", 55, 48),
    (R.ICH_LR_EL2, "NMI", 59, 59),
    (R.ICH_LR_EL2, "Group", 60, 60),
    (R.ICH_LR_EL2, "HW", 61, 61),
    (R.ICH_LR_EL2, "State", 63, 62),
    (R.ICH_LR_EL2_HW, "pINTID", 44, 32),
    (R.ICH_LR_EL2_HW, "vINTID", 31, 0),
    (R.ICH_LR_EL2_HW, "State", 63, 62),
    # §6.3
    (R.ICH_HCR_EL2, "En", 0, 0),
    (R.ICH_HCR_EL2, "UIE", 1, 1),
    (R.ICH_HCR_EL2, "LRENPIE", 2, 2),
    (R.ICH_HCR_EL2, "NPIE", 3, 3),
    (R.ICH_HCR_EL2, "VGrp0EIE", 4, 4),
    (R.ICH_HCR_EL2, "VGrp0DIE", 5, 5),
    (R.ICH_HCR_EL2, "VGrp1EIE", 6, 6),
    (R.ICH_HCR_EL2, "VGrp1DIE", 7, 7),
    (R.ICH_HCR_EL2, "vSGIEOICount", 8, 8),
    (R.ICH_HCR_EL2, "TC", 10, 10),
    (R.ICH_HCR_EL2, "TALL0", 11, 11),
    (R.ICH_HCR_EL2, "TALL1", 12, 12),
    (R.ICH_HCR_EL2, "TSEI", 13, 13),
    (R.ICH_HCR_EL2, "TDIR", 14, 14),
    (R.ICH_HCR_EL2, "DVIM", 15, 15),
    (R.ICH_HCR_EL2, "EOIcount", 31, 27),
    # §6.4
    (R.ICH_VTR_EL2, "ListRegs", 4, 0),
    (R.ICH_VTR_EL2, "DVIM", 18, 18),
    (R.ICH_VTR_EL2, "TDS", 19, 19),
    (R.ICH_VTR_EL2, "nV4", 20, 20),
    (R.ICH_VTR_EL2, "A3V", 21, 21),
    (R.ICH_VTR_EL2, "SEIS", 22, 22),
    (R.ICH_VTR_EL2, "IDbits", 25, 23),
    (R.ICH_VTR_EL2, "PREbits", 28, 26),
    (R.ICH_VTR_EL2, "PRIbits", 31, 29),
    # §6.5
    (R.ICH_MISR_EL2, "EOI", 0, 0),
    (R.ICH_MISR_EL2, "U", 1, 1),
    (R.ICH_MISR_EL2, "LRENP", 2, 2),
    (R.ICH_MISR_EL2, "NP", 3, 3),
    (R.ICH_MISR_EL2, "VGrp0E", 4, 4),
    (R.ICH_MISR_EL2, "VGrp0D", 5, 5),
    (R.ICH_MISR_EL2, "VGrp1E", 6, 6),
    (R.ICH_MISR_EL2, "VGrp1D", 7, 7),
    # §6.6
    (R.ICH_VMCR_EL2, "VENG0", 0, 0),
    (R.ICH_VMCR_EL2, "VENG1", 1, 1),
    (R.ICH_VMCR_EL2, "VAckCtl", 2, 2),
    (R.ICH_VMCR_EL2, "VFIQEn", 3, 3),
    (R.ICH_VMCR_EL2, "VCBPR", 4, 4),
    (R.ICH_VMCR_EL2, "VEOIM", 9, 9),
    (R.ICH_VMCR_EL2, "VBPR1", 20, 18),
    (R.ICH_VMCR_EL2, "VBPR0", 23, 21),
    (R.ICH_VMCR_EL2, "VPMR", 31, 24),
    # §6.7
    (R.ICH_ELRSR_EL2, "Status", 15, 0),
    (R.ICH_EISR_EL2, "Status", 15, 0),
]


@pytest.mark.parametrize(
    ("layout", "field", "hi", "lo"),
    POSITIONS,
    ids=[
        f"{lay.name}.{f}" + ("_HW" if lay is R.ICH_LR_EL2_HW else "") for lay, f, _, _ in POSITIONS
    ],
)
def test_field_position(layout: Layout, field: str, hi: int, lo: int) -> None:
    f = layout[field]
    assert (f.hi, f.lo) == (hi, lo)


def test_ptz_is_bit_62() -> None:
    assert R.GICR_PENDBASER.encode(PTZ=1) == 1 << 62


def test_enable_lpis_is_bit_0() -> None:
    assert R.GICR_CTLR.encode(EnableLPIs=1) == 1


def test_address_fields_decode_unshifted() -> None:
    for layout in (R.GICR_PROPBASER, R.GICR_PENDBASER, R.GITS_CBASER, R.GITS_BASER):
        assert layout["Physical_Address"].address


# ---------------------------------------------------------------------------------------------
# Offsets and widths, from the sheet's offset tables (§2.1, §3.2, §4.1)

OFFSETS: list[tuple[Layout, int, int]] = [
    (R.GICD_CTLR, 0x0000, 32),
    (R.GICD_TYPER, 0x0004, 32),
    (R.GICD_IIDR, 0x0008, 32),
    (R.GICD_TYPER2, 0x000C, 32),
    (R.GICD_STATUSR, 0x0010, 32),
    (R.GICD_SETSPI_NSR, 0x0040, 32),
    (R.GICD_CLRSPI_NSR, 0x0048, 32),
    (R.GICD_SETSPI_SR, 0x0050, 32),
    (R.GICD_CLRSPI_SR, 0x0058, 32),
    (R.GICD_IGROUPR, 0x0080, 32),
    (R.GICD_ISENABLER, 0x0100, 32),
    (R.GICD_ICENABLER, 0x0180, 32),
    (R.GICD_ISPENDR, 0x0200, 32),
    (R.GICD_ICPENDR, 0x0280, 32),
    (R.GICD_ISACTIVER, 0x0300, 32),
    (R.GICD_ICACTIVER, 0x0380, 32),
    (R.GICD_IPRIORITYR, 0x0400, 32),
    (R.GICD_ICFGR, 0x0C00, 32),
    (R.GICD_IGRPMODR, 0x0D00, 32),
    (R.GICD_NSACR, 0x0E00, 32),
    (R.GICD_IROUTER, 0x6000, 64),
    (R.GICD_PIDR2, 0xFFE8, 32),
    (R.GICR_CTLR, 0x0000, 32),
    (R.GICR_IIDR, 0x0004, 32),
    (R.GICR_TYPER, 0x0008, 64),
    (R.GICR_STATUSR, 0x0010, 32),
    (R.GICR_WAKER, 0x0014, 32),
    (R.GICR_SETLPIR, 0x0040, 64),
    (R.GICR_CLRLPIR, 0x0048, 64),
    (R.GICR_PROPBASER, 0x0070, 64),
    (R.GICR_PENDBASER, 0x0078, 64),
    (R.GICR_INVLPIR, 0x00A0, 64),
    (R.GICR_INVALLR, 0x00B0, 64),
    (R.GICR_SYNCR, 0x00C0, 32),
    (R.GICR_PIDR2, 0xFFE8, 32),
    (R.GICR_IGROUPR0, 0x0080, 32),
    (R.GICR_ISENABLER0, 0x0100, 32),
    (R.GICR_ICENABLER0, 0x0180, 32),
    (R.GICR_ISPENDR0, 0x0200, 32),
    (R.GICR_ICPENDR0, 0x0280, 32),
    (R.GICR_ISACTIVER0, 0x0300, 32),
    (R.GICR_ICACTIVER0, 0x0380, 32),
    (R.GICR_IPRIORITYR, 0x0400, 32),
    (R.GICR_ICFGR0, 0x0C00, 32),
    (R.GICR_ICFGR1, 0x0C04, 32),
    (R.GICR_IGRPMODR0, 0x0D00, 32),
    (R.GICR_NSACR, 0x0E00, 32),
    (R.GITS_CTLR, 0x0000, 32),
    (R.GITS_IIDR, 0x0004, 32),
    (R.GITS_TYPER, 0x0008, 64),
    (R.GITS_CBASER, 0x0080, 64),
    (R.GITS_CWRITER, 0x0088, 64),
    (R.GITS_CREADR, 0x0090, 64),
    (R.GITS_BASER, 0x0100, 64),
    (R.GITS_PIDR2, 0xFFE8, 32),
    (R.GITS_TRANSLATER, 0x10040, 32),
]


@pytest.mark.parametrize(("layout", "offset", "width"), OFFSETS, ids=[x[0].name for x in OFFSETS])
def test_offset_and_width(layout: Layout, offset: int, width: int) -> None:
    assert (layout.offset, layout.width) == (offset, width)


def test_sysregs_have_no_offset() -> None:
    for name, layout in R.REGISTERS.items():
        if name.startswith(("ICC_", "ICH_")):
            assert layout.offset is None and layout.width == 64, name


def test_frame_constants() -> None:
    assert R.GIC_V3_REDIST_SIZE == 0x20000
    assert R.GICR_SGI_OFFSET == 0x10000
    assert R.GITS_TRANSLATER_OFFSET == 0x10040
    assert R.GICV3_ITS_SIZE == 0x20000
    assert R.GIC_V3_DIST_SIZE == 0x10000


def test_intid_constants() -> None:
    assert (R.LPI_INTID_BASE, R.INTID_SPURIOUS, R.SPI_BASE_INTID, R.PPI_BASE_INTID) == (
        8192,
        1023,
        32,
        16,
    )
    assert (R.ESPI_BASE_INTID, R.EPPI_BASE_INTID) == (4096, 1056)
    assert [R.intid_kind(i) for i in (0, 15, 16, 31, 32, 1019, 1023, 1056, 4096, 8191, 8192)] == [
        "SGI",
        "SGI",
        "PPI",
        "PPI",
        "SPI",
        "SPI",
        "special",
        "extended PPI",
        "extended SPI",
        "reserved",
        "LPI",
    ]


def test_cache_and_type_constants() -> None:
    assert [
        R.GIC_BASER_CACHE_nCnB,
        R.GIC_BASER_CACHE_nC,
        R.GIC_BASER_CACHE_RaWt,
        R.GIC_BASER_CACHE_RaWb,
        R.GIC_BASER_CACHE_WaWt,
        R.GIC_BASER_CACHE_WaWb,
        R.GIC_BASER_CACHE_RaWaWt,
        R.GIC_BASER_CACHE_RaWaWb,
    ] == list(range(8))
    assert (R.GIC_BASER_NonShareable, R.GIC_BASER_InnerShareable, R.GIC_BASER_OuterShareable) == (
        0,
        1,
        2,
    )
    assert (
        R.GITS_BASER_TYPE_NONE,
        R.GITS_BASER_TYPE_DEVICE,
        R.GITS_BASER_TYPE_VCPU,
        R.GITS_BASER_TYPE_COLLECTION,
    ) == (0, 1, 2, 4)


# ---------------------------------------------------------------------------------------------
# Arrays and names


def test_gits_basern() -> None:
    for n in range(8):
        el = R.GITS_BASERn(n)
        assert (el.name, el.offset, el.fields) == (
            f"GITS_BASER{n}",
            0x100 + 8 * n,
            R.GITS_BASER.fields,
        )
        assert R.REGISTERS[f"GITS_BASER{n}"] == el
    with pytest.raises(ValueError):
        R.GITS_BASERn(8)


def test_ich_lr_names() -> None:
    for n in range(16):
        assert R.REGISTERS[f"ICH_LR{n}_EL2"].fields == R.ICH_LR_EL2.fields
    assert "ICH_LR16_EL2" not in R.REGISTERS


def test_gicd_irouter_elements() -> None:
    assert R.GICD_IROUTERn(32).offset == 0x6100
    assert R.GICD_IROUTERn(1019).offset == 0x7FD8
    with pytest.raises(ValueError):
        R.GICD_IROUTERn(31)
    assert 0x6000 not in R.GICD_REGISTERS  # IROUTER0..31 do not exist


def test_gicr_ipriorityr7_offset() -> None:
    assert R.register("GICR_IPRIORITYR7").offset == 0x041C
    assert R.GICR_SGI_REGISTERS[0x041C].name == "GICR_IPRIORITYR7"


def test_register_lookup_case_insensitive() -> None:
    assert R.register("gicr_propbaser") is R.GICR_PROPBASER
    assert R.register("GICD_IPRIORITYR10").offset == 0x428
    with pytest.raises(KeyError):
        R.register("GICD_NOPE")
    with pytest.raises(KeyError):
        R.register("GICD_ISENABLER32")


def test_required_registers_present() -> None:
    required = [
        "GICD_CTLR",
        "GICD_TYPER",
        "GICR_CTLR",
        "GICR_TYPER",
        "GICR_PROPBASER",
        "GICR_PENDBASER",
        "GITS_CTLR",
        "GITS_TYPER",
        "GITS_CBASER",
        "GITS_CWRITER",
        "GITS_CREADR",
        "GITS_BASER",
        "ICH_LR_EL2",
        "ICH_HCR_EL2",
        "ICH_VTR_EL2",
        "ICH_VMCR_EL2",
        "ICH_MISR_EL2",
        "ICC_IAR1_EL1",
        "ICC_EOIR1_EL1",
        "ICC_SGI1R_EL1",
        "GICD_IIDR",
        "GICD_TYPER2",
        "GICD_STATUSR",
        "GICD_IGROUPR",
        "GICD_ISENABLER",
        "GICD_ICENABLER",
        "GICD_ISPENDR",
        "GICD_ICPENDR",
        "GICD_ISACTIVER",
        "GICD_ICACTIVER",
        "GICD_IPRIORITYR",
        "GICD_ICFGR",
        "GICD_IGRPMODR",
        "GICD_IROUTER",
        "GICD_PIDR2",
        "GICR_IIDR",
        "GICR_STATUSR",
        "GICR_WAKER",
        "GICR_SETLPIR",
        "GICR_CLRLPIR",
        "GICR_INVLPIR",
        "GICR_INVALLR",
        "GICR_SYNCR",
        "GICR_PIDR2",
        "GICR_IGROUPR0",
        "GICR_ISENABLER0",
        "GICR_ICENABLER0",
        "GICR_ISPENDR0",
        "GICR_ICPENDR0",
        "GICR_ISACTIVER0",
        "GICR_ICACTIVER0",
        "GICR_IPRIORITYR",
        "GICR_ICFGR0",
        "GICR_ICFGR1",
        "GICR_IGRPMODR0",
        "GICR_NSACR",
        "GITS_IIDR",
        "GITS_PIDR2",
        "GITS_TRANSLATER",
        "ICC_PMR_EL1",
        "ICC_BPR1_EL1",
        "ICC_CTLR_EL1",
        "ICC_SRE_EL1",
        "ICC_IGRPEN1_EL1",
        "ICC_DIR_EL1",
        "ICC_RPR_EL1",
        "ICC_HPPIR1_EL1",
        "ICC_AP1R0_EL1",
        "ICH_ELRSR_EL2",
        "ICH_EISR_EL2",
        "ICH_AP1R0_EL2",
    ]
    missing = [n for n in required if n not in R.REGISTERS]
    assert missing == []
    for name, layout in R.REGISTERS.items():
        assert layout.name == name


MMIO_NAMES = [
    ("GICD", 0x0000, "GICD_CTLR"),
    ("GICD", 0x0004, "GICD_TYPER"),
    ("GICD", 0x0104, "GICD_ISENABLER1"),
    ("GICD", 0x0428, "GICD_IPRIORITYR10"),
    ("GICD", 0x042A, "GICD_IPRIORITYR10+2"),
    ("GICD", 0x6140, "GICD_IROUTER40"),
    ("GICD", 0x6144, "GICD_IROUTER40+4"),
    ("GICD", 0x0C08, "GICD_ICFGR2"),
    ("GICD", 0xFFE8, "GICD_PIDR2"),
    ("GICD", 0x0800, "GICD+0x800"),
    ("GICD", 0x0020, "GICD+0x020"),
    ("GICD", 0x6000, "GICD+0x6000"),
    ("GICR", 0x0000, "GICR_CTLR"),
    ("GICR", 0x0070, "GICR_PROPBASER"),
    ("GICR", 0x0074, "GICR_PROPBASER+4"),
    ("GICR", 0x007C, "GICR_PENDBASER+4"),
    ("GICR", 0x0014, "GICR_WAKER"),
    ("GICR", 0x10100, "GICR_ISENABLER0"),
    ("GICR", 0x10180, "GICR_ICENABLER0"),
    ("GICR", 0x10400, "GICR_IPRIORITYR0"),
    ("GICR", 0x1041C, "GICR_IPRIORITYR7"),
    ("GICR", 0x10C04, "GICR_ICFGR1"),
    ("GICR", 0x00C, "GICR_TYPER+4"),
    ("GICR", 0x0100, "GICR+0x100"),
    ("GITS", 0x0000, "GITS_CTLR"),
    ("GITS", 0x0080, "GITS_CBASER"),
    ("GITS", 0x0084, "GITS_CBASER+4"),
    ("GITS", 0x0088, "GITS_CWRITER"),
    ("GITS", 0x0108, "GITS_BASER1"),
    ("GITS", 0x013C, "GITS_BASER7+4"),
    ("GITS", 0x0140, "GITS+0x140"),
    ("GITS", 0x10040, "GITS_TRANSLATER"),
]


@pytest.mark.parametrize(("frame", "offset", "name"), MMIO_NAMES)
def test_mmio_register_name(frame: str, offset: int, name: str) -> None:
    assert R.mmio_register_name(frame, offset) == name


def test_mmio_lookup_gives_register_base() -> None:
    hit = R.mmio_lookup("GICR", 0x1040A)
    assert hit is not None
    assert (hit.layout.name, hit.base, hit.byte) == ("GICR_IPRIORITYR2", 0x10408, 2)
    assert R.mmio_lookup("GICD", 0x0800) is None
    with pytest.raises(ValueError):
        R.mmio_lookup("GICC", 0)


def test_frame_of() -> None:
    assert R.frame_of("GICR_PROPBASER") == "GICR_RD"
    assert R.frame_of("GICR_ISENABLER0") == "GICR_SGI"
    assert R.frame_of("GICD_IROUTER40") == "GICD"
    assert R.frame_of("GITS_BASER3") == "GITS"
    assert R.frame_of("ICH_LR0_EL2") is None


def test_offset_tables_match_layouts() -> None:
    for table in (R.GICD_REGISTERS, R.GICR_RD_REGISTERS, R.GICR_SGI_REGISTERS, R.GITS_REGISTERS):
        for off, layout in table.items():
            assert layout.offset == off


# ---------------------------------------------------------------------------------------------
# Round trips


ALL_LAYOUTS = sorted({**R.REGISTERS, **{f"view:{k}": v for k, v in R.VIEWS.items()}}.items())


@pytest.mark.parametrize(("name", "layout"), ALL_LAYOUTS, ids=[n for n, _ in ALL_LAYOUTS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip(name: str, layout: Layout, data: st.DataObject) -> None:
    v = data.draw(st.integers(min_value=0, max_value=(1 << layout.width) - 1))
    assert layout.encode(**layout.decode(v)) == v & layout.defined_mask


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_ich_lr_round_trip_by_hw(v: int) -> None:
    fields = R.decode_ich_lr(v)
    view = R.ICH_LR_EL2_HW if fields["HW"] else R.ICH_LR_EL2
    assert view.encode(**fields) == v & view.defined_mask
    assert ("pINTID" in fields) == bool(fields["HW"])
    assert ("EOI" in fields) == (not fields["HW"])


def test_too_wide_value_rejected() -> None:
    with pytest.raises(EncodingError):
        R.GICD_CTLR.decode(1 << 32)
