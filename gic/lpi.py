"""LPI Configuration (property) and Pending table layouts (gicv3-architecture.md §5.2-§5.4).

The property table holds one byte per LPI, indexed by INTID - 8192 from
GICR_PROPBASER.Physical_Address; the pending table holds one bit per INTID, indexed by the
full INTID from GICR_PENDBASER.Physical_Address (its first 1 KiB covers INTIDs 0..8191).
"""

from __future__ import annotations

from dataclasses import dataclass

from gic.bits import EncodingError

LPI_INTID_BASE = 8192
LPI_PROP_PRIO_MASK = 0xFC
LPI_PROP_GROUP1 = 1 << 1  # Linux name; Xen calls the same bit LPI_PROP_RES1 (§9 item 6)
LPI_PROP_RES1 = LPI_PROP_GROUP1
LPI_PROP_ENABLED = 1 << 0
LPI_PROP_DEFAULT_PRIO = 0xA0
LPI_PROP_DEFAULT = LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1  # 0xA2: Linux its_alloc_lpi_tables

SZ_64K = 0x10000
ITS_MAX_LPI_NRBITS = 16  # Linux: lpi_id_bits = min(GICD_TYPER.IDbits + 1, 16)


@dataclass(frozen=True, slots=True)
class LpiProp:
    """One LPI Configuration table byte: Priority [7:2] (byte & 0xFC), bit 1 RES1, Enable [0].

    ``priority`` is the 8-bit priority whose low two bits are 0 (as Linux writes it: 0xA0).
    ``res1`` is bit 1 as found in memory; software always writes 1.
    """

    priority: int = LPI_PROP_DEFAULT_PRIO
    enable: bool = False
    res1: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.priority <= 0xFF or self.priority & 0x3:
            raise EncodingError(
                f"LPI property: priority {self.priority:#x} must be 0..0xfc with bits [1:0] zero"
            )

    def encode(self) -> int:
        return self.priority | (LPI_PROP_RES1 if self.res1 else 0) | int(self.enable)

    @classmethod
    def decode(cls, byte: int) -> LpiProp:
        if not 0 <= byte <= 0xFF:
            raise EncodingError(f"LPI property: {byte:#x} is not a byte")
        return cls(
            priority=byte & LPI_PROP_PRIO_MASK,
            enable=bool(byte & LPI_PROP_ENABLED),
            res1=bool(byte & LPI_PROP_RES1),
        )

    def fields(self) -> dict[str, int]:
        """The architecture's fields: Priority [7:2] as the 6-bit field value, RES1, Enable."""
        return {"Priority": self.priority >> 2, "RES1": int(self.res1), "Enable": int(self.enable)}


def _check_lpi(intid: int) -> None:
    if intid < LPI_INTID_BASE:
        raise ValueError(f"INTID {intid} is not an LPI (LPIs start at {LPI_INTID_BASE})")


def prop_byte_offset(intid: int) -> int:
    """Offset of LPI ``intid``'s property byte from the table base (Linux lpi_write_config,
    Xen update_lpi_property): intid - 8192."""
    _check_lpi(intid)
    return intid - LPI_INTID_BASE


def pend_bit(intid: int) -> tuple[int, int]:
    """(byte offset, bit) of ``intid``'s pending bit from the pending table base, indexed by the
    full INTID (KVM its_sync_lpi_pending_table): (intid // 8, intid % 8). LPIs only."""
    _check_lpi(intid)
    return intid // 8, intid % 8


def _check_id_bits(id_bits: int) -> None:
    if not 14 <= id_bits <= 32:
        raise ValueError(f"id_bits {id_bits}: LPIs need 14..32 INTID bits")


def prop_table_size(id_bits: int) -> int:
    """Architectural property table size for ``id_bits`` INTID bits (PROPBASER.IDbits + 1):
    one byte per LPI 8192 .. 2^id_bits - 1."""
    _check_id_bits(id_bits)
    return (1 << id_bits) - LPI_INTID_BASE


def pend_table_size(id_bits: int) -> int:
    """Architectural pending table size: one bit per INTID 0 .. 2^id_bits - 1."""
    _check_id_bits(id_bits)
    return (1 << id_bits) // 8


def _align(x: int, a: int) -> int:
    return (x + a - 1) & ~(a - 1)


def LPI_PROPBASE_SZ(id_bits: int) -> int:
    """Linux: ALIGN(BIT(lpi_id_bits), SZ_64K), the property table as Linux allocates it."""
    _check_id_bits(id_bits)
    return _align(1 << id_bits, SZ_64K)


def LPI_PENDBASE_SZ(id_bits: int) -> int:
    """Linux: ALIGN(BIT(lpi_id_bits) / 8, SZ_64K), the pending table as Linux allocates it."""
    _check_id_bits(id_bits)
    return _align((1 << id_bits) // 8, SZ_64K)
