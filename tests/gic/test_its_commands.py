"""ITS command encodings against the worked examples of gicv3-architecture.md §8."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gic.bits import EncodingError
from gic.its_commands import (
    COMMANDS,
    GITS_CMD_CLEAR,
    GITS_CMD_DISCARD,
    GITS_CMD_INT,
    GITS_CMD_INV,
    GITS_CMD_INVALL,
    GITS_CMD_MAPC,
    GITS_CMD_MAPD,
    GITS_CMD_MAPI,
    GITS_CMD_MAPTI,
    GITS_CMD_MOVALL,
    GITS_CMD_MOVI,
    GITS_CMD_SYNC,
    Clear,
    Discard,
    Int,
    Inv,
    Invall,
    ItsCommand,
    Mapc,
    Mapd,
    Mapi,
    Mapti,
    Movall,
    Movi,
    Sync,
    UnknownCommand,
    decode,
)


def _b(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def _from_dws(dw0: int, dw1: int = 0, dw2: int = 0, dw3: int = 0) -> bytes:
    return b"".join(d.to_bytes(8, "little") for d in (dw0, dw1, dw2, dw3))


# (command, exact bytes) from the sheet's worked examples and their "Related" vectors.
EXAMPLES: list[tuple[ItsCommand, bytes]] = [
    # E1
    (
        Mapti(DeviceID=0x10, EventID=3, pINTID=8195, ICID=2),
        _b(
            "0a 00 00 00 10 00 00 00 03 00 00 00 03 20 00 00"
            "02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
        ),
    ),
    # E2
    (
        Mapd(DeviceID=0x10, Size=4, ITT_addr=0x80B00000, V=1),
        _b(
            "08 00 00 00 10 00 00 00 04 00 00 00 00 00 00 00"
            "00 00 b0 80 00 00 00 80 00 00 00 00 00 00 00 00"
        ),
    ),
    # E3, PTA = 0: target Processor_Number 2
    (
        Mapc(ICID=2, RDbase=2, V=1),
        _b(
            "09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
            "02 00 02 00 00 00 00 80 00 00 00 00 00 00 00 00"
        ),
    ),
    # E3, PTA = 1: RD_base at 0x080E0000, RDbase = address >> 16
    (
        Mapc(ICID=2, RDbase=0x080E0000 >> 16, V=1),
        _b(
            "09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
            "02 00 0e 08 00 00 00 80 00 00 00 00 00 00 00 00"
        ),
    ),
    # E3 "Related"
    (Sync(RDbase=2), _from_dws(0x05, 0, 0x0000000000020000)),
    (Movall(RDbase1=1, RDbase2=3), _from_dws(0x0E, 0, 0x0000000000010000, 0x0000000000030000)),
    (Invall(ICID=2), _from_dws(0x0D, 0, 0x2)),
    (Movi(DeviceID=0x10, EventID=3, ICID=5), _from_dws(0x0000001000000001, 0x3, 0x5)),
    (Int(DeviceID=0x10, EventID=3), _from_dws(0x0000001000000003, 0x3)),
]


@pytest.mark.parametrize(
    "cmd,raw", EXAMPLES, ids=[f"{c.name}-{i}" for i, (c, _) in enumerate(EXAMPLES)]
)
def test_worked_examples_encode(cmd: ItsCommand, raw: bytes) -> None:
    assert cmd.encode() == raw
    assert len(raw) == 32


@pytest.mark.parametrize(
    "cmd,raw", EXAMPLES, ids=[f"{c.name}-{i}" for i, (c, _) in enumerate(EXAMPLES)]
)
def test_worked_examples_decode(cmd: ItsCommand, raw: bytes) -> None:
    assert decode(raw) == cmd


def test_e2_dw2_is_address_unshifted() -> None:
    raw = Mapd(DeviceID=0x10, Size=4, ITT_addr=0x80B00000, V=1).encode()
    assert int.from_bytes(raw[16:24], "little") == 0x8000000080B00000


def test_e3_pta1_dw2() -> None:
    raw = Mapc(ICID=2, RDbase=0x080E, V=1).encode()
    assert int.from_bytes(raw[16:24], "little") == 0x80000000080E0002


def test_command_numbers() -> None:
    numbers = {
        Movi: (GITS_CMD_MOVI, 0x01, "MOVI"),
        Int: (GITS_CMD_INT, 0x03, "INT"),
        Clear: (GITS_CMD_CLEAR, 0x04, "CLEAR"),
        Sync: (GITS_CMD_SYNC, 0x05, "SYNC"),
        Mapd: (GITS_CMD_MAPD, 0x08, "MAPD"),
        Mapc: (GITS_CMD_MAPC, 0x09, "MAPC"),
        Mapti: (GITS_CMD_MAPTI, 0x0A, "MAPTI"),
        Mapi: (GITS_CMD_MAPI, 0x0B, "MAPI"),
        Inv: (GITS_CMD_INV, 0x0C, "INV"),
        Invall: (GITS_CMD_INVALL, 0x0D, "INVALL"),
        Movall: (GITS_CMD_MOVALL, 0x0E, "MOVALL"),
        Discard: (GITS_CMD_DISCARD, 0x0F, "DISCARD"),
    }
    assert set(COMMANDS.values()) == set(numbers)
    for cls, (const, value, name) in numbers.items():
        assert const == value == cls.NUMBER
        assert COMMANDS[value] is cls
        assert name == cls.NAME


def test_name_number_fields() -> None:
    cmd = Mapti(DeviceID=0x10, EventID=3, pINTID=8195, ICID=2)
    assert cmd.name == "MAPTI"
    assert cmd.number == 0x0A
    assert cmd.fields() == {"DeviceID": 0x10, "EventID": 3, "pINTID": 8195, "ICID": 2}
    assert Mapd(DeviceID=1, Size=4, ITT_addr=0x80B00000, V=1).fields() == {
        "DeviceID": 1,
        "Size": 4,
        "ITT_addr": 0x80B00000,
        "V": 1,
    }
    assert Movall(RDbase1=1, RDbase2=3).fields() == {"RDbase1": 1, "RDbase2": 3}


def test_res0_bits_are_ignored_on_decode() -> None:
    # E1 with every RES0 bit set: DW0[31:8], DW2[63:16], DW3.
    raw = _from_dws(
        0x00000010_FFFFFF0A, 0x00002003_00000003, 0xFFFFFFFF_FFFF0002, 0xFFFFFFFF_FFFFFFFF
    )
    assert decode(raw) == Mapti(DeviceID=0x10, EventID=3, pINTID=8195, ICID=2)
    # MAPD: Size keeps only [4:0]; ITT_addr only [51:8]; V bit 63.
    raw = _from_dws(0x00000010_00000008, 0xFFFFFFFF_FFFFFFE4, 0xFFF00000_80B000FF)
    assert decode(raw) == Mapd(DeviceID=0x10, Size=4, ITT_addr=0x80B00000, V=1)
    # MAPC: RDbase is the full 36-bit field [51:16], bits [63:52] other than V are RES0.
    raw = _from_dws(0x09, 0, 0xFFF0_0000_0002_0002 | (1 << 63))
    assert decode(raw) == Mapc(ICID=2, RDbase=2, V=1)


def test_rdbase_is_36_bits() -> None:
    top = (1 << 36) - 1
    raw = Sync(RDbase=top).encode()
    assert int.from_bytes(raw[16:24], "little") == top << 16
    with pytest.raises(EncodingError):
        Sync(RDbase=1 << 36).encode()


@pytest.mark.parametrize(
    "cmd",
    [
        Mapd(DeviceID=1 << 32, Size=0, ITT_addr=0, V=1),
        Mapd(DeviceID=0, Size=32, ITT_addr=0, V=1),
        Mapd(DeviceID=0, Size=0, ITT_addr=0x80B00080, V=1),  # not 256-byte aligned
        Mapd(DeviceID=0, Size=0, ITT_addr=1 << 52, V=1),
        Mapd(DeviceID=0, Size=0, ITT_addr=0, V=2),
        Mapc(ICID=1 << 16, RDbase=0, V=1),
        Mapti(DeviceID=0, EventID=1 << 32, pINTID=8192, ICID=0),
        Mapti(DeviceID=0, EventID=0, pINTID=1 << 32, ICID=0),
        Movall(RDbase1=0, RDbase2=1 << 36),
        Int(DeviceID=-1, EventID=0),
    ],
)
def test_fields_that_do_not_fit_raise(cmd: ItsCommand) -> None:
    with pytest.raises(EncodingError, match=cmd.name):
        cmd.encode()


def test_wrong_length_raises_one_line_value_error() -> None:
    for n in (0, 31, 33, 64):
        with pytest.raises(ValueError, match=rf"^ITS command must be 32 bytes, got {n}$"):
            decode(bytes(n))


def test_unknown_and_gicv4_numbers_decode_to_unknown() -> None:
    raw = bytes([0x42]) + bytes(range(1, 32))
    cmd = decode(raw)
    assert cmd == UnknownCommand(0x42, raw)
    assert cmd.number == 0x42
    assert cmd.name == "UNKNOWN_0x42"
    assert cmd.encode() == raw
    assert cmd.fields() == {}
    vmapti = decode(bytes([0x2A]) + bytes(31))
    assert isinstance(vmapti, UnknownCommand)
    assert vmapti.name == "VMAPTI"
    assert decode(bytes(32)) == UnknownCommand(0, bytes(32))


def test_unknown_command_checks_itself() -> None:
    with pytest.raises(ValueError):
        UnknownCommand(0x42, bytes(31))
    with pytest.raises(ValueError):
        UnknownCommand(0x42, bytes(32))


def test_str_is_one_line() -> None:
    assert str(Mapti(DeviceID=0x10, EventID=3, pINTID=8195, ICID=2)) == (
        "MAPTI DeviceID=0x10 EventID=0x3 pINTID=0x2003 ICID=0x2"
    )


# --- properties -------------------------------------------------------------------------


def _command_strategy(cls: type[ItsCommand]) -> st.SearchStrategy[ItsCommand]:
    kwargs = {}
    for _, f in cls.LAYOUT:
        if f.address:
            kwargs[f.name] = st.integers(0, (1 << f.width) - 1).map(lambda v, lo=f.lo: v << lo)
        else:
            kwargs[f.name] = st.integers(0, (1 << f.width) - 1)
    return st.builds(cls, **kwargs)


ALL_COMMANDS = st.one_of(*[_command_strategy(c) for c in COMMANDS.values()])


@settings(max_examples=200)
@given(ALL_COMMANDS)
def test_round_trip_every_command(cmd: ItsCommand) -> None:
    raw = cmd.encode()
    assert len(raw) == 32
    assert raw[0] == cmd.number
    assert decode(raw) == cmd
    assert decode(raw).encode() == raw


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32))
def test_decode_never_raises_and_is_idempotent(raw: bytes) -> None:
    cmd = decode(raw)
    again = cmd.encode()
    assert len(again) == 32
    assert decode(again) == cmd
    if isinstance(cmd, UnknownCommand):
        assert again == raw
    else:
        # Re-encoding keeps the named fields and clears exactly the RES0 bits.
        mask = [0xFF, 0, 0, 0]
        for dw, f in cmd.LAYOUT:
            mask[dw] |= f.mask
        want = b"".join(
            (int.from_bytes(raw[i * 8 : i * 8 + 8], "little") & mask[i]).to_bytes(8, "little")
            for i in range(4)
        )
        assert again == want
