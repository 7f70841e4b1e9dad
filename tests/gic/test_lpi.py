"""LPI property byte and table addressing against gicv3-architecture.md §5 and E8."""

from __future__ import annotations

import pytest

from gic import lpi
from gic.bits import EncodingError
from gic.lpi import LpiProp


def test_e8_lpi_8195() -> None:
    assert lpi.prop_byte_offset(8195) == 3
    assert lpi.pend_bit(8195) == (0x400, 3)


def test_e8_lpi_8200() -> None:
    assert lpi.prop_byte_offset(8200) == 8
    assert lpi.pend_bit(8200) == (0x401, 0)


def test_e8_default_byte_and_enable() -> None:
    assert lpi.LPI_PROP_DEFAULT == 0xA2
    d = LpiProp.decode(0xA2)
    assert (d.priority, d.res1, d.enable) == (0xA0, True, False)
    assert LpiProp(priority=0xA0, enable=True).encode() == 0xA3
    assert LpiProp().encode() == 0xA2
    assert LpiProp.decode(0xA3).enable is True


def test_prop_fields_named_as_architecture() -> None:
    assert LpiProp.decode(0xA3).fields() == {"Priority": 0xA0 >> 2, "RES1": 1, "Enable": 1}


def test_prop_byte_round_trip_exhaustive() -> None:
    for b in range(256):
        assert LpiProp.decode(b).encode() == b


@pytest.mark.parametrize("bad", [-1, 0x100])
def test_prop_decode_rejects_non_bytes(bad: int) -> None:
    with pytest.raises(EncodingError):
        LpiProp.decode(bad)


@pytest.mark.parametrize("prio", [0xA1, 0x100, -4])
def test_prop_priority_must_fit_bits_7_2(prio: int) -> None:
    with pytest.raises(EncodingError):
        LpiProp(priority=prio)


@pytest.mark.parametrize("intid", [0, 31, 1023, 8191])
def test_non_lpi_rejected(intid: int) -> None:
    with pytest.raises(ValueError):
        lpi.prop_byte_offset(intid)
    with pytest.raises(ValueError):
        lpi.pend_bit(intid)


def test_first_lpi() -> None:
    assert lpi.prop_byte_offset(8192) == 0
    assert lpi.pend_bit(8192) == (1024, 0)  # the first 1 KiB covers INTIDs 0..8191


def test_table_sizes_16_bits() -> None:
    # §5.4: 16 ID bits -> property 2^16 - 8192 bytes, pending 8 KiB; Linux allocates 64 KiB each
    assert lpi.prop_table_size(16) == 65536 - 8192
    assert lpi.pend_table_size(16) == 8 * 1024
    assert lpi.LPI_PROPBASE_SZ(16) == 64 * 1024
    assert lpi.LPI_PENDBASE_SZ(16) == 64 * 1024


def test_table_sizes_other_widths() -> None:
    assert lpi.prop_table_size(14) == 8192
    assert lpi.pend_table_size(14) == 2048
    assert lpi.LPI_PENDBASE_SZ(14) == 64 * 1024
    assert lpi.LPI_PROPBASE_SZ(20) == 1 << 20
    assert lpi.LPI_PENDBASE_SZ(20) == 128 * 1024
    assert lpi.pend_table_size(20) == 128 * 1024


def test_last_lpi_fits_tables() -> None:
    for bits in (14, 16, 20):
        last = (1 << bits) - 1
        assert lpi.prop_byte_offset(last) == lpi.prop_table_size(bits) - 1
        assert lpi.pend_bit(last) == (lpi.pend_table_size(bits) - 1, 7)


@pytest.mark.parametrize("bits", [0, 13, 33])
def test_table_sizes_reject_bad_id_bits(bits: int) -> None:
    for fn in (lpi.prop_table_size, lpi.pend_table_size, lpi.LPI_PROPBASE_SZ, lpi.LPI_PENDBASE_SZ):
        with pytest.raises(ValueError):
            fn(bits)
