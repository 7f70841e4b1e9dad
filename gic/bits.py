"""Register layouts as data: named bit fields with exact positions.

A field [hi:lo] of value R is (R >> lo) & (2**(hi-lo+1) - 1). Address fields
(``address=True``) hold address bits in place: they decode to ``R & mask`` and
encode an already aligned address unshifted (gicv3-architecture.md §0).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


class EncodingError(ValueError):
    """A value does not fit the field or register it is meant for."""


@dataclass(frozen=True, slots=True)
class Field:
    """One named bit field [hi:lo] of a register."""

    name: str
    hi: int
    lo: int
    address: bool = False
    doc: str = ""

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    @property
    def mask(self) -> int:
        """The field's bits in register position."""
        return ((1 << self.width) - 1) << self.lo

    def get(self, reg: int) -> int:
        lo = self.lo
        ones = (1 << (self.hi - lo + 1)) - 1  # width and mask, inlined: a hot path
        if self.address:
            return reg & (ones << lo)
        return (reg >> lo) & ones

    def put(self, reg: int, value: int) -> int:
        """Return ``reg`` with this field replaced by ``value``; raise if it does not fit."""
        if value < 0:
            raise EncodingError(f"{self.name}: negative value {value}")
        if self.address:
            if value & ~self.mask:
                raise EncodingError(
                    f"{self.name}: address {value:#x} has bits outside [{self.hi}:{self.lo}]"
                )
            bits = value
        else:
            if value >> self.width:
                raise EncodingError(
                    f"{self.name}: {value:#x} does not fit in {self.width} bits [{self.hi}:{self.lo}]"
                )
            bits = value << self.lo
        return (reg & ~self.mask) | bits


@dataclass(frozen=True, slots=True)
class Layout:
    """A register (or command doubleword set) as an ordered tuple of fields."""

    name: str
    width: int
    fields: tuple[Field, ...]
    offset: int | None = None
    doc: str = ""
    _by_name: Mapping[str, Field] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})
        used = 0
        for f in self.fields:
            if f.hi >= self.width or f.lo > f.hi:
                raise ValueError(f"{self.name}.{f.name}: [{f.hi}:{f.lo}] outside {self.width} bits")
            if used & f.mask:
                raise ValueError(f"{self.name}.{f.name}: overlaps another field")
            used |= f.mask

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __getitem__(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name} has no field {name!r}") from None

    @property
    def defined_mask(self) -> int:
        m = 0
        for f in self.fields:
            m |= f.mask
        return m

    def check(self, value: int) -> None:
        if not 0 <= value < (1 << self.width):
            raise EncodingError(f"{self.name}: {value:#x} is not a {self.width}-bit value")

    def decode(self, value: int) -> dict[str, int]:
        """Every field of ``value`` by the architecture's field names."""
        self.check(value)
        return {f.name: f.get(value) for f in self.fields}

    def encode(self, **values: int) -> int:
        """Build a register value from field values; unnamed fields are 0."""
        reg = 0
        for name, v in values.items():
            reg = self[name].put(reg, v)
        return reg

    def get(self, value: int, name: str) -> int:
        return self[name].get(value)

    def replace(self, value: int, **values: int) -> int:
        for name, v in values.items():
            value = self[name].put(value, v)
        return value


def F(name: str, hi: int, lo: int | None = None, *, address: bool = False, doc: str = "") -> Field:
    """Shorthand: ``F("EnableLPIs", 0)`` for one bit, ``F("IDbits", 4, 0)`` for a range."""
    return Field(name, hi, hi if lo is None else lo, address, doc)
