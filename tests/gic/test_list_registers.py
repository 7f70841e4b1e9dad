"""List registers and the virtual CPU interface: E5 values, vIAR/vEOI, maintenance status."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gic.cpu_interface import SysregError
from gic.list_registers import ListRegisters, PhysicalDeactivate

# Sheet E5.
LR_VLPI_8200 = 0x50A0000000002008  # pending, Group 1, priority 0xA0, vINTID 8200
LR_SPI40_EOI = 0x50A0020000000028  # software SPI 40 with EOI maintenance (bit 41)
LR_HW_64_4100 = 0x7080100400000040  # HW, vINTID 64 -> pINTID 4100, priority 0x80

EN, UIE, LRENPIE, NPIE = 1 << 0, 1 << 1, 1 << 2, 1 << 3
MISR_EOI, MISR_U, MISR_LRENP, MISR_NP = 1 << 0, 1 << 1, 1 << 2, 1 << 3
VMCR_GUEST = 0xF0000000 | (1 << 1)  # VPMR 0xF0, VENG1 (as a Linux guest sets them)


def guest_ready(n: int = 4) -> ListRegisters:
    v = ListRegisters(n)
    v.write("ICH_HCR_EL2", EN)
    v.write("ICH_VMCR_EL2", VMCR_GUEST)
    return v


def test_vtr_values() -> None:
    assert ListRegisters(4).read("ICH_VTR_EL2") == 0x90B80003  # sheet E7
    assert ListRegisters(1).read("ICH_VTR_EL2") == 0x90B80000
    assert ListRegisters(16).read("ICH_VTR_EL2") == 0x90B8000F


@pytest.mark.parametrize("value", [LR_VLPI_8200, LR_SPI40_EOI, LR_HW_64_4100])
def test_e5_values_read_back_exactly(value: int) -> None:
    v = ListRegisters(4)
    v.write("ICH_LR2_EL2", value)
    assert v.read("ICH_LR2_EL2") == value
    assert v.save().lrs[2] == value


def test_lr_write_masks_unimplemented_priority_bits_and_nmi() -> None:
    v = ListRegisters(4)
    v.write("ICH_LR0_EL2", 0x58A7000000002008)  # priority 0xA7, NMI bit 59
    assert v.read("ICH_LR0_EL2") == 0x50A0000000002008


def test_missing_list_register_is_an_error() -> None:
    v = ListRegisters(4)
    with pytest.raises(SysregError, match="ICH_LR4_EL2"):
        v.read("ICH_LR4_EL2")
    with pytest.raises(SysregError):
        v.write("ICH_VTR_EL2", 0)


def test_reset_vmcr_and_vmcr_write_clamps_bpr() -> None:
    v = ListRegisters(4)
    assert v.read("ICH_VMCR_EL2") == 0x004C0008  # VFIQEn, VBPR1 3, VBPR0 2
    v.write("ICH_VMCR_EL2", 0xF0000002)
    assert v.read("ICH_VMCR_EL2") == 0xF04C000A  # BPRs clamped to the minimum, VFIQEn RAO


def test_virtual_acknowledge_and_eoi_of_a_vlpi() -> None:
    v = guest_ready()
    v.write("ICH_LR0_EL2", LR_VLPI_8200)
    assert v.virq_level
    assert v.icv_read("ICC_HPPIR1_EL1") == 8200
    assert v.icv_read("ICC_IAR1_EL1") == 8200
    assert v.read("ICH_LR0_EL2") == 0x90A0000000002008  # pending -> active
    assert v.read("ICH_AP1R0_EL2") == 1 << 20
    assert v.icv_read("ICC_RPR_EL1") == 0xA0
    assert not v.virq_level
    assert v.icv_write("ICC_EOIR1_EL1", 8200) == ()
    assert v.read("ICH_LR0_EL2") == 0x10A0000000002008  # -> invalid
    assert v.read("ICH_AP1R0_EL2") == 0
    assert v.read("ICH_ELRSR_EL2") == 0b1111
    assert v.icv_read("ICC_IAR1_EL1") == 1023


def test_vlpi_eoi_deactivates_even_with_veoim() -> None:
    v = guest_ready()
    v.write("ICH_VMCR_EL2", VMCR_GUEST | (1 << 9))  # VEOIM: split drop and deactivate
    v.write("ICH_LR0_EL2", LR_VLPI_8200)
    v.write("ICH_LR1_EL2", 0x5090000000000028)  # SPI 40, priority 0x90
    assert v.icv_read("ICC_IAR1_EL1") == 40
    v.icv_write("ICC_EOIR1_EL1", 40)
    assert v.read("ICH_LR1_EL2") == 0x9090000000000028  # still active until DIR
    v.icv_write("ICC_DIR_EL1", 40)
    assert v.read("ICH_LR1_EL2") == 0x1090000000000028
    assert v.icv_read("ICC_IAR1_EL1") == 8200
    v.icv_write("ICC_EOIR1_EL1", 8200)
    assert v.read("ICH_LR0_EL2") == 0x10A0000000002008  # LPIs: no separate deactivate


def test_hw_lr_forwards_deactivation() -> None:
    v = guest_ready()
    v.write("ICH_LR0_EL2", 0x70A0001B0000001B)  # HW, vINTID 27 -> pINTID 27 (timer PPI)
    assert v.icv_read("ICC_IAR1_EL1") == 27
    assert v.icv_write("ICC_EOIR1_EL1", 27) == (PhysicalDeactivate(27),)
    assert v.read("ICH_LR0_EL2") == 0x30A0001B0000001B


def test_eoi_with_no_matching_lr_counts() -> None:
    v = guest_ready()
    v.write("ICH_HCR_EL2", EN | LRENPIE)
    v.write("ICH_LR0_EL2", LR_SPI40_EOI & ~(1 << 41))
    assert v.icv_read("ICC_IAR1_EL1") == 40
    v.write("ICH_LR0_EL2", 0)  # the hypervisor took the LR back while it was active
    v.icv_write("ICC_EOIR1_EL1", 40)
    assert v.read("ICH_HCR_EL2") >> 27 == 1  # EOIcount
    assert v.read("ICH_MISR_EL2") & MISR_LRENP
    assert v.maintenance_level


def test_lpi_eoi_with_no_matching_lr_does_not_count() -> None:
    v = guest_ready()
    v.write("ICH_LR0_EL2", LR_VLPI_8200)
    assert v.icv_read("ICC_IAR1_EL1") == 8200
    v.write("ICH_LR0_EL2", 0)
    v.icv_write("ICC_EOIR1_EL1", 8200)
    assert v.read("ICH_HCR_EL2") >> 27 == 0
    assert v.read("ICH_AP1R0_EL2") == 0


def test_eoi_maintenance_bits() -> None:
    v = guest_ready()
    v.write("ICH_LR0_EL2", LR_SPI40_EOI)
    assert v.read("ICH_EISR_EL2") == 0  # still pending
    assert v.read("ICH_ELRSR_EL2") == 0b1110
    assert v.icv_read("ICC_IAR1_EL1") == 40
    v.icv_write("ICC_EOIR1_EL1", 40)
    assert v.read("ICH_LR0_EL2") == 0x10A0020000000028
    assert v.read("ICH_EISR_EL2") == 0b0001  # State 0, HW 0, EOI 1
    assert v.read("ICH_ELRSR_EL2") == 0b1110  # not reusable until the EOI is handled
    assert v.read("ICH_MISR_EL2") == MISR_EOI
    assert v.maintenance_level


def test_underflow_exactly_when_at_most_one_valid_lr() -> None:
    v = guest_ready()
    v.write("ICH_HCR_EL2", EN | UIE)
    assert v.read("ICH_MISR_EL2") & MISR_U  # zero valid
    v.write("ICH_LR0_EL2", LR_VLPI_8200)
    assert v.read("ICH_MISR_EL2") & MISR_U  # one valid
    v.write("ICH_LR1_EL2", 0x90A0000000002009)  # active counts as valid
    assert not v.read("ICH_MISR_EL2") & MISR_U
    assert not v.maintenance_level
    v.write("ICH_HCR_EL2", UIE)  # En = 0: no maintenance interrupt at all
    v.write("ICH_LR1_EL2", 0)
    assert v.read("ICH_MISR_EL2") & MISR_U and not v.maintenance_level


def test_no_pending_status() -> None:
    v = guest_ready()
    v.write("ICH_HCR_EL2", EN | NPIE)
    v.write("ICH_LR0_EL2", 0x90A0000000002008)  # active only
    assert v.read("ICH_MISR_EL2") == MISR_NP
    v.write("ICH_LR1_EL2", LR_VLPI_8200 + 1)
    assert v.read("ICH_MISR_EL2") == 0


def test_vpmr_and_group_enable_gate_the_virq() -> None:
    v = guest_ready()
    v.write("ICH_LR0_EL2", 0x50F0000000002008)  # priority 0xF0 == VPMR
    assert not v.virq_level
    assert v.icv_read("ICC_IAR1_EL1") == 1023
    v.icv_write("ICC_PMR_EL1", 0xFF)
    assert v.icv_read("ICC_PMR_EL1") == 0xF8
    assert v.virq_level
    v.icv_write("ICC_IGRPEN1_EL1", 0)
    assert not v.virq_level
    v.write("ICH_HCR_EL2", 0)
    v.icv_write("ICC_IGRPEN1_EL1", 1)
    assert not v.virq_level  # ICH_HCR_EL2.En = 0


def test_highest_priority_lr_first() -> None:
    v = guest_ready()
    v.write("ICH_LR0_EL2", LR_VLPI_8200)
    v.write("ICH_LR3_EL2", 0x5080000000002010)
    assert v.icv_read("ICC_IAR1_EL1") == 0x2010
    assert v.icv_read("ICC_IAR1_EL1") == 1023  # 0xA0 cannot preempt 0x80


def test_sgi_registers_trap() -> None:
    v = guest_ready()
    with pytest.raises(SysregError, match="traps to EL2"):
        v.icv_write("ICC_SGI1R_EL1", 0)


@settings(max_examples=200, deadline=None)
@given(
    lrs=st.lists(st.integers(0, (1 << 64) - 1), min_size=4, max_size=4),
    hcr=st.integers(0, (1 << 64) - 1),
    vmcr=st.integers(0, (1 << 64) - 1),
    ap1r=st.integers(0, (1 << 64) - 1),
)
def test_save_restore_round_trip(lrs: list[int], hcr: int, vmcr: int, ap1r: int) -> None:
    a = ListRegisters(4)
    a.restore(tuple(lrs), hcr, vmcr, (ap1r,))
    saved = a.save()
    b = ListRegisters(4)
    b.restore(saved.lrs, saved.hcr, saved.vmcr, saved.ap1r)
    assert b.save() == saved
    assert b.read("ICH_MISR_EL2") == a.read("ICH_MISR_EL2")
    assert b.virq_level == a.virq_level
