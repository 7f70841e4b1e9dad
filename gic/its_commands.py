"""GICv3 ITS commands: 32-byte encodings as frozen dataclasses (gicv3-architecture.md §1).

A command is four little-endian doublewords DW0..DW3; the command number is
DW0[7:0]. Each class names its fields as the architecture does (DeviceID,
EventID, pINTID, ICID, Size, ITT_addr, V, RDbase, RDbase1, RDbase2) and places
them as the field map of §1.3 says:

* ``ITT_addr`` is an address field (DW2[51:8]): it holds the ITT address itself,
  256-byte aligned, unshifted (E2: ITT at 0x80B00000 appears as 0x80B00000 in DW2).
* ``RDbase`` / ``RDbase1`` / ``RDbase2`` are the 36-bit fields DW2[51:16] (DW3 for
  RDbase2) as values: the target address >> 16 when GITS_TYPER.PTA = 1, or the
  Processor_Number when PTA = 0 (§1.4).

Encoders raise :class:`gic.bits.EncodingError` when a field does not fit.
Decoders ignore RES0 bits, as hardware does: bits outside the named fields are
dropped, so ``decode(raw).encode()`` equals ``raw`` only when its RES0 bits
were zero. Command numbers this module does not model (the GICv4 commands and
garbage) decode to :class:`UnknownCommand` instead of raising, because a
hostile guest may put anything in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gic.bits import EncodingError, F, Field

#: Size of one command in bytes (four doublewords).
ITS_CMD_SIZE = 32

GITS_CMD_MOVI = 0x01
GITS_CMD_INT = 0x03
GITS_CMD_CLEAR = 0x04
GITS_CMD_SYNC = 0x05
GITS_CMD_MAPD = 0x08
GITS_CMD_MAPC = 0x09
GITS_CMD_MAPTI = 0x0A
GITS_CMD_MAPI = 0x0B
GITS_CMD_INV = 0x0C
GITS_CMD_INVALL = 0x0D
GITS_CMD_MOVALL = 0x0E
GITS_CMD_DISCARD = 0x0F

#: GICv4 command numbers (recognised by name only; §1.2, Linux ``GITS_CMD_GICv4``).
GITS_CMD_VMOVI = 0x21
GITS_CMD_VMOVP = 0x22
GITS_CMD_VSGI = 0x23
GITS_CMD_VSYNC = 0x25
GITS_CMD_VMAPP = 0x29
GITS_CMD_VMAPTI = 0x2A
GITS_CMD_VMAPI = 0x2B
GITS_CMD_VINVALL = 0x2D
GITS_CMD_INVDB = 0x2E

GICV4_COMMAND_NAMES: dict[int, str] = {
    GITS_CMD_VMOVI: "VMOVI",
    GITS_CMD_VMOVP: "VMOVP",
    GITS_CMD_VSGI: "VSGI",
    GITS_CMD_VSYNC: "VSYNC",
    GITS_CMD_VMAPP: "VMAPP",
    GITS_CMD_VMAPTI: "VMAPTI",
    GITS_CMD_VMAPI: "VMAPI",
    GITS_CMD_VINVALL: "VINVALL",
    GITS_CMD_INVDB: "INVDB",
}

_CMD_NUMBER = F("cmd", 7, 0)

# Field positions shared by the commands (§1.3). Each is (doubleword, Field).
_DEVICEID = (0, F("DeviceID", 63, 32))
_EVENTID = (1, F("EventID", 31, 0))
_PINTID = (1, F("pINTID", 63, 32))
_SIZE = (1, F("Size", 4, 0))
_ICID = (2, F("ICID", 15, 0))
_ITT_ADDR = (2, F("ITT_addr", 51, 8, address=True))
_V = (2, F("V", 63))
_RDBASE = (2, F("RDbase", 51, 16))
_RDBASE1 = (2, F("RDbase1", 51, 16))
_RDBASE2 = (3, F("RDbase2", 51, 16))


def _dws(data: bytes) -> tuple[int, int, int, int]:
    return tuple(int.from_bytes(data[i : i + 8], "little") for i in range(0, 32, 8))  # type: ignore[return-value]


def _bytes(dws: list[int]) -> bytes:
    return b"".join(dw.to_bytes(8, "little") for dw in dws)


class ItsCommand:
    """Base of every ITS command: ``encode``, ``fields``, ``name``, ``number``."""

    __slots__ = ()

    NUMBER: ClassVar[int]
    NAME: ClassVar[str]
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]]

    # ``name`` and ``number`` are properties of the known commands (_Known) and a
    # property / a field of UnknownCommand.
    name: str
    number: int

    def fields(self) -> dict[str, int]:
        """Field values keyed by the architecture's field names."""
        return {f.name: int(getattr(self, f.name)) for _, f in self.LAYOUT}

    def encode(self) -> bytes:
        """The 32 bytes of this command in memory order (DW0 byte 0 first)."""
        dws = [_CMD_NUMBER.put(0, self.NUMBER), 0, 0, 0]
        for dw, f in self.LAYOUT:
            value = getattr(self, f.name)
            if not isinstance(value, int):
                raise EncodingError(f"{self.NAME}.{f.name}: {value!r} is not an integer")
            try:
                dws[dw] = f.put(dws[dw], int(value))
            except EncodingError as e:
                raise EncodingError(f"{self.NAME}: {e}") from None
        return _bytes(dws)

    @classmethod
    def _from_dws(cls, dws: tuple[int, int, int, int]) -> ItsCommand:
        return cls(**{f.name: f.get(dws[dw]) for dw, f in cls.LAYOUT})

    def __str__(self) -> str:
        body = " ".join(f"{k}={v:#x}" if k != "V" else f"V={v}" for k, v in self.fields().items())
        return f"{self.NAME} {body}".rstrip()


class _Known(ItsCommand):
    """A command this module models: name and number come from the class."""

    __slots__ = ()

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.NAME

    @property
    def number(self) -> int:  # type: ignore[override]
        return self.NUMBER


@dataclass(frozen=True, slots=True, kw_only=True)
class Mapd(_Known):
    """MAPD: map DeviceID to an ITT of 2^(Size+1) entries at ITT_addr (V=0 unmaps)."""

    NUMBER: ClassVar[int] = GITS_CMD_MAPD
    NAME: ClassVar[str] = "MAPD"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_DEVICEID, _SIZE, _ITT_ADDR, _V)

    DeviceID: int
    Size: int
    ITT_addr: int
    V: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Mapc(_Known):
    """MAPC: map collection ICID to the Redistributor RDbase (V=0 unmaps)."""

    NUMBER: ClassVar[int] = GITS_CMD_MAPC
    NAME: ClassVar[str] = "MAPC"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_ICID, _RDBASE, _V)

    ICID: int
    RDbase: int
    V: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Mapti(_Known):
    """MAPTI: map (DeviceID, EventID) to physical LPI pINTID in collection ICID."""

    NUMBER: ClassVar[int] = GITS_CMD_MAPTI
    NAME: ClassVar[str] = "MAPTI"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_DEVICEID, _EVENTID, _PINTID, _ICID)

    DeviceID: int
    EventID: int
    pINTID: int
    ICID: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Mapi(_Known):
    """MAPI: MAPTI with pINTID = EventID."""

    NUMBER: ClassVar[int] = GITS_CMD_MAPI
    NAME: ClassVar[str] = "MAPI"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_DEVICEID, _EVENTID, _ICID)

    DeviceID: int
    EventID: int
    ICID: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Movi(_Known):
    """MOVI: move the LPI of (DeviceID, EventID) to collection ICID."""

    NUMBER: ClassVar[int] = GITS_CMD_MOVI
    NAME: ClassVar[str] = "MOVI"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_DEVICEID, _EVENTID, _ICID)

    DeviceID: int
    EventID: int
    ICID: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Discard(_Known):
    """DISCARD: remove the mapping of (DeviceID, EventID) and clear its pending state."""

    NUMBER: ClassVar[int] = GITS_CMD_DISCARD
    NAME: ClassVar[str] = "DISCARD"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_DEVICEID, _EVENTID)

    DeviceID: int
    EventID: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Inv(_Known):
    """INV: the Redistributor re-reads the property byte of the LPI of (DeviceID, EventID)."""

    NUMBER: ClassVar[int] = GITS_CMD_INV
    NAME: ClassVar[str] = "INV"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_DEVICEID, _EVENTID)

    DeviceID: int
    EventID: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Invall(_Known):
    """INVALL: re-read the property bytes of every LPI of collection ICID."""

    NUMBER: ClassVar[int] = GITS_CMD_INVALL
    NAME: ClassVar[str] = "INVALL"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_ICID,)

    ICID: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Int(_Known):
    """INT: make the LPI of (DeviceID, EventID) pending, as an MSI would."""

    NUMBER: ClassVar[int] = GITS_CMD_INT
    NAME: ClassVar[str] = "INT"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_DEVICEID, _EVENTID)

    DeviceID: int
    EventID: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Clear(_Known):
    """CLEAR: clear the pending state of the LPI of (DeviceID, EventID)."""

    NUMBER: ClassVar[int] = GITS_CMD_CLEAR
    NAME: ClassVar[str] = "CLEAR"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_DEVICEID, _EVENTID)

    DeviceID: int
    EventID: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync(_Known):
    """SYNC: wait until earlier commands' effects on Redistributor RDbase are visible."""

    NUMBER: ClassVar[int] = GITS_CMD_SYNC
    NAME: ClassVar[str] = "SYNC"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_RDBASE,)

    RDbase: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Movall(_Known):
    """MOVALL: move every pending LPI of Redistributor RDbase1 to RDbase2."""

    NUMBER: ClassVar[int] = GITS_CMD_MOVALL
    NAME: ClassVar[str] = "MOVALL"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = (_RDBASE1, _RDBASE2)

    RDbase1: int
    RDbase2: int


@dataclass(frozen=True, slots=True)
class UnknownCommand(ItsCommand):
    """A command number this model does not implement (GICv4 or garbage), kept verbatim."""

    NUMBER: ClassVar[int] = -1
    NAME: ClassVar[str] = "UNKNOWN"
    LAYOUT: ClassVar[tuple[tuple[int, Field], ...]] = ()

    number: int  # type: ignore[assignment]
    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != ITS_CMD_SIZE:
            raise ValueError(f"ITS command must be {ITS_CMD_SIZE} bytes, got {len(self.raw)}")
        if self.raw[0] != self.number:
            raise ValueError(
                f"UnknownCommand number {self.number:#x} differs from raw DW0[7:0] {self.raw[0]:#x}"
            )

    @property
    def name(self) -> str:  # type: ignore[override]
        return GICV4_COMMAND_NAMES.get(self.number, f"UNKNOWN_{self.number:#04x}")

    def fields(self) -> dict[str, int]:
        return {}

    def encode(self) -> bytes:
        return bytes(self.raw)

    def __str__(self) -> str:
        return f"{self.name} raw={self.raw.hex()}"


COMMANDS: dict[int, type[ItsCommand]] = {
    cls.NUMBER: cls
    for cls in (Mapd, Mapc, Mapti, Mapi, Movi, Discard, Inv, Invall, Int, Clear, Sync, Movall)
}


def decode(data: bytes) -> ItsCommand:
    """Decode 32 bytes of the command queue; RES0 bits are ignored, unknown numbers kept raw."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"ITS command must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != ITS_CMD_SIZE:
        raise ValueError(f"ITS command must be {ITS_CMD_SIZE} bytes, got {len(data)}")
    number = data[0]
    cls = COMMANDS.get(number)
    if cls is None:
        return UnknownCommand(number, data)
    return cls._from_dws(_dws(data))


def field_names(cls: type[ItsCommand]) -> tuple[str, ...]:
    """The architecture field names of a command class, in encoding order."""
    return tuple(f.name for _, f in cls.LAYOUT)


__all__ = [
    "COMMANDS",
    "GICV4_COMMAND_NAMES",
    "ITS_CMD_SIZE",
    "Clear",
    "Discard",
    "Int",
    "Inv",
    "Invall",
    "ItsCommand",
    "Mapc",
    "Mapd",
    "Mapi",
    "Mapti",
    "Movall",
    "Movi",
    "Sync",
    "UnknownCommand",
    "decode",
    "field_names",
]
