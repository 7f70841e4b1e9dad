"""`cosim decode`: exact human lines, JSON fields, the sheet's worked examples, one-line errors."""

from __future__ import annotations

import io
import json

import pytest

from cosim import decode


def run(name: str, value: str, as_json: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = decode.main(name, value, as_json, out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def run_json(name: str, value: str) -> dict[str, object]:
    rc, out, err = run(name, value, True)
    assert (rc, err) == (0, "")
    return json.loads(out)


# ---------------------------------------------------------------------------------------------
# Human output


def test_pendbaser_human_exact() -> None:
    rc, out, err = run("GICR_PENDBASER", "0x4000000080bf0000")
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "GICR_PENDBASER = 0x4000000080bf0000 (64-bit, GICR RD_base+0x0078)",
        "  InnerCache        [9:7]    0           nCnB (Device-nGnRnE)",
        "  Shareability      [11:10]  0           Non-shareable",
        "  Physical_Address  [51:16]  0x80bf0000",
        "  OuterCache        [58:56]  0           SameAsInner",
        "  PTZ               [62]     1",
    ]


def test_propbaser_human_e4() -> None:
    rc, out, _ = run("gicr_propbaser", "0x80A0078F")
    assert rc == 0
    assert out.splitlines() == [
        "GICR_PROPBASER = 0x0000000080a0078f (64-bit, GICR RD_base+0x0070)",
        "  IDbits            [4:0]    0xf (15)    16 INTID bits",
        "  InnerCache        [9:7]    7           RaWaWb",
        "  Shareability      [11:10]  1           Inner Shareable",
        "  Physical_Address  [51:12]  0x80a00000",
        "  OuterCache        [58:56]  0           SameAsInner",
    ]


def test_ich_lr_human_shows_state_and_view() -> None:
    rc, out, _ = run("ICH_LR2_EL2", "0x7080100400000040")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "ICH_LR2_EL2 = 0x7080100400000040 (64-bit, system register, HW = 1 view)"
    assert "  pINTID    [44:32]  0x1004 (4100)" in lines
    assert lines[-1] == "  State     [63:62]  1              pending"
    assert not any(line.lstrip().startswith("EOI") for line in lines)


def test_gits_baser_human_type_and_page_size() -> None:
    rc, out, _ = run("GITS_BASER0", "0x0107000000000200")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "GITS_BASER0 = 0x0107000000000200 (64-bit, GITS+0x0100)"
    assert "  Type              [58:56]  1    Devices" in lines
    assert "  Page_Size         [9:8]    2    64K" in lines
    assert "  Entry_Size        [52:48]  7    8 bytes" in lines


def test_res0_bits_reported() -> None:
    rc, out, _ = run("GICR_PENDBASER", "0x4000000080bf0001")
    assert rc == 0
    assert out.splitlines()[-1] == (
        "  bits outside the fields set (RES0 or IMPLEMENTATION DEFINED): 0x1"
    )


def test_lpi_prop_human() -> None:
    rc, out, _ = run("PROP", "0xa3")
    assert rc == 0
    assert out.splitlines() == [
        "LPI_PROP = 0xa3 (LPI Configuration table byte)",
        "  Priority  [7:2]  0x28 (40)  priority 0xa0",
        "  RES1      [1]    1          Group 1 (Linux LPI_PROP_GROUP1)",
        "  Enable    [0]    1          enabled",
    ]


def test_decimal_value_accepted() -> None:
    assert run_json("ICC_IAR1_EL1", "1023")["INTID"] == 1023


# ---------------------------------------------------------------------------------------------
# JSON: worked examples E4-E8


def test_pendbaser_json_keys() -> None:
    d = run_json("GICR_PENDBASER", "0x4000000080bf0000")
    assert d == {
        "register": "GICR_PENDBASER",
        "value": 0x4000000080BF0000,
        "InnerCache": 0,
        "Shareability": 0,
        "Physical_Address": 0x80BF0000,
        "OuterCache": 0,
        "PTZ": 1,
    }


def test_e4_json() -> None:
    d = run_json("GICR_PROPBASER", "0x0000000080A0078F")
    assert (d["IDbits"], d["InnerCache"], d["Shareability"], d["Physical_Address"]) == (
        15,
        7,
        1,
        0x80A00000,
    )


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        (
            "0x50A0000000002008",
            {"State": 1, "Group": 1, "Priority": 0xA0, "vINTID": 8200, "EOI": 0},
        ),
        ("0x50A0020000000028", {"State": 1, "Group": 1, "Priority": 0xA0, "vINTID": 40, "EOI": 1}),
        (
            "0x7080100400000040",
            {"State": 1, "HW": 1, "Priority": 0x80, "vINTID": 64, "pINTID": 4100},
        ),
    ],
)
def test_e5_json(value: str, expect: dict[str, int]) -> None:
    d = run_json("ich_lr0_el2", value)
    assert d["register"] == "ICH_LR0_EL2"
    assert {k: d[k] for k in expect} == expect


def test_e6_json() -> None:
    d = run_json("GITS_CBASER", "0xB8000000_80C0040F")
    assert (d["Valid"], d["InnerCache"], d["OuterCache"], d["Size"]) == (1, 7, 0, 15)
    assert (d["Physical_Address"], d["Shareability"]) == (0x80C00000, 1)
    assert run_json("GITS_CWRITER", "0x60")["Offset"] == 3


def test_e7_json() -> None:
    d = run_json("GITS_TYPER", "0x1EF71")
    assert (d["Physical"], d["ITT_entry_size"], d["ID_bits"], d["Devbits"], d["PTA"]) == (
        1,
        7,
        15,
        15,
        0,
    )
    d = run_json("GICD_TYPER", "0x037A0007")
    assert (d["ITLinesNumber"], d["LPIS"], d["IDbits"], d["A3V"], d["No1N"]) == (7, 1, 15, 1, 1)
    d = run_json("GICR_TYPER", "0x0000000200000201")
    assert (d["PLPIS"], d["Processor_Number"], d["Affinity_Value"]) == (1, 2, 2)
    d = run_json("ICH_VTR_EL2", "0x90B80003")
    assert (d["ListRegs"], d["PREbits"], d["PRIbits"], d["IDbits"]) == (3, 4, 4, 1)
    assert run_json("GICD_PIDR2", "0x3B")["ArchRev"] == 3


def test_e8_json_prop() -> None:
    d = run_json("LPI_PROP", "0xA2")
    assert d == {"register": "LPI_PROP", "value": 0xA2, "Priority": 0x28, "RES1": 1, "Enable": 0}


def test_gicd_ctlr_views() -> None:
    d = run_json("GICD_CTLR", "0x80000053")
    assert (d["EnableGrp0"], d["EnableGrp1"], d["ARE"], d["DS"], d["RWP"]) == (1, 1, 1, 1, 1)
    d = run_json("GICD_CTLR_NS", "0x12")
    assert (d["EnableGrp1"], d["EnableGrp1A"], d["ARE_NS"]) == (0, 1, 1)


def test_array_element_names() -> None:
    d = run_json("GICD_IROUTER40", "0x80000000")
    assert (d["register"], d["Interrupt_Routing_Mode"]) == ("GICD_IROUTER40", 1)
    d = run_json("gits_baser7", "0x8000000000000000")
    assert (d["register"], d["Valid"]) == ("GITS_BASER7", 1)


# ---------------------------------------------------------------------------------------------
# ITS commands (E1-E3) through gic.its_commands

E1 = "0a 00 00 00 10 00 00 00 03 00 00 00 03 20 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
E2 = "08 00 00 00 10 00 00 00 04 00 00 00 00 00 00 00 00 00 b0 80 00 00 00 80 00 00 00 00 00 00 00 00"
E3_PTA0 = "09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 00 02 00 00 00 00 80 00 00 00 00 00 00 00 00"
E3_PTA1 = "09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 00 0e 08 00 00 00 80 00 00 00 00 00 00 00 00"


def _cmd(dws: list[int]) -> str:
    return b"".join(d.to_bytes(8, "little") for d in dws).hex()


def test_e1_mapti() -> None:
    d = run_json("ITS", E1)
    assert d["command"] == "MAPTI"
    assert (d["DeviceID"], d["EventID"], d["pINTID"], d["ICID"]) == (0x10, 3, 8195, 2)


def test_e1_human() -> None:
    rc, out, _ = run("ITS_CMD", E1)
    assert rc == 0
    assert out.splitlines() == [
        f"ITS_CMD = {E1} (ITS command MAPTI, number 0x0a)",
        "  DeviceID  DW0[63:32]  0x10 (16)",
        "  EventID   DW1[31:0]   3",
        "  pINTID    DW1[63:32]  0x2003 (8195)",
        "  ICID      DW2[15:0]   2",
    ]


def test_e2_mapd() -> None:
    d = run_json("its", E2)
    assert d["command"] == "MAPD"
    assert (d["DeviceID"], d["Size"], d["ITT_addr"], d["V"]) == (0x10, 4, 0x80B00000, 1)


def test_e3_mapc() -> None:
    d = run_json("ITS", E3_PTA0)
    assert (d["command"], d["ICID"], d["RDbase"], d["V"]) == ("MAPC", 2, 2, 1)
    d = run_json("ITS", E3_PTA1)
    assert (d["ICID"], d["RDbase"] << 16, d["V"]) == (2, 0x080E0000, 1)


@pytest.mark.parametrize(
    ("dws", "name", "fields"),
    [
        ([0x05, 0, 0x20000, 0], "SYNC", {"RDbase": 2}),
        ([0x0E, 0, 0x10000, 0x30000], "MOVALL", {"RDbase1": 1, "RDbase2": 3}),
        ([0x0D, 0, 0x2, 0], "INVALL", {"ICID": 2}),
        ([0x0000001000000001, 0x3, 0x5, 0], "MOVI", {"DeviceID": 0x10, "EventID": 3, "ICID": 5}),
        ([0x0000001000000003, 0x3, 0, 0], "INT", {"DeviceID": 0x10, "EventID": 3}),
    ],
)
def test_e3_related_commands(dws: list[int], name: str, fields: dict[str, int]) -> None:
    d = run_json("ITS", _cmd(dws))
    assert d["command"] == name
    assert {k: d[k] for k in fields} == fields


@pytest.mark.parametrize(
    "text",
    [
        E1,
        E1.replace(" ", ":"),
        "0x" + E1.replace(" ", ""),
        E1.replace(" ", "").upper(),
    ],
)
def test_command_hex_formats(text: str) -> None:
    assert run_json("ITS", text)["pINTID"] == 8195


def test_command_value_is_bytes_in_memory_order() -> None:
    assert run_json("ITS", E1)["value"] == E1.replace(" ", "")


def test_gicv4_command_recognised() -> None:
    rc, out, _ = run("ITS", "29" + "00" * 31)
    assert rc == 0
    assert out.splitlines()[0].endswith("(ITS command VMAPP, number 0x29)")


# ---------------------------------------------------------------------------------------------
# Errors: exactly one line on stderr, nothing on stdout, exit 2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "GICR_PROPBASR",
            "0x1",
            "cosim decode: unknown register 'GICR_PROPBASR'; did you mean GICR_PROPBASER?",
        ),
        ("FROBNICATOR", "0x1", "cosim decode: unknown register 'FROBNICATOR'"),
        (
            "GICD_CTLR",
            "0x1_0000_0000",
            "cosim decode: value 0x100000000 does not fit the 32-bit GICD_CTLR",
        ),
        ("GICD_CTLR", "zz", "cosim decode: malformed value 'zz': expected hex (0x...) or decimal"),
        ("GICD_CTLR", "-1", "cosim decode: malformed value '-1': expected hex (0x...) or decimal"),
        ("GICD_CTLR", "", "cosim decode: malformed value '': expected hex (0x...) or decimal"),
        ("GICD_CTLR", "0x", "cosim decode: malformed value '0x': expected hex (0x...) or decimal"),
        ("ITS", "0a 00", "cosim decode: ITS command needs 64 hex digits (32 bytes), got 4"),
        (
            "ITS",
            "zz" * 32,
            "cosim decode: malformed ITS command '" + "zz" * 32 + "': expected hex digits",
        ),
        ("ITS", E1 + " 00", "cosim decode: ITS command needs 64 hex digits (32 bytes), got 66"),
        ("PROP", "0x100", "cosim decode: value 0x100 does not fit the 8-bit LPI property byte"),
        ("GITS_BASER8", "0", "cosim decode: GITS_BASER<n> has n = 0..7, not 8"),
        ("ICH_LR16_EL2", "0", "cosim decode: ICH_LR<n>_EL2 has n = 0..15, not 16"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_errors_one_line_exit_2(name: str, value: str, message: str, as_json: bool) -> None:
    rc, out, err = run(name, value, as_json)
    assert rc == 2
    assert out == ""
    assert err == message + "\n"


def test_decode_value_raises_decode_error() -> None:
    with pytest.raises(decode.DecodeError):
        decode.decode_value("NOPE", "1")
