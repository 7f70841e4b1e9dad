"""`cosim decode NAME VALUE [--json]`: decode a GIC register, an ITS command or an LPI property
byte into the architecture's fields (gicv3-architecture.md).

NAME is a register name (case-insensitive, array elements such as GITS_BASER1, ICH_LR3_EL2,
GICD_IROUTER40 included), "ITS"/"ITS_CMD" for a 32-byte ITS command given as hex, or
"LPI_PROP"/"PROP" for an LPI Configuration table byte. Bad input gives one line on stderr
starting "cosim decode: " and exit status 2.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from dataclasses import dataclass
from typing import TextIO

from gic import registers as R
from gic.bits import Layout
from gic.lpi import LpiProp

EXIT_USAGE = 2
_PREFIX = "cosim decode: "
_COMMAND_NAMES = ("ITS", "ITS_CMD")
_PROP_NAMES = ("LPI_PROP", "PROP")


class DecodeError(ValueError):
    """Bad NAME or VALUE; the message is the one line shown to the user."""


@dataclass(frozen=True, slots=True)
class DecodedField:
    """One decoded field: ``bits`` is its place ("[11:10]", "DW2[15:0]") or "" if unknown."""

    name: str
    value: int
    bits: str = ""
    address: bool = False
    meaning: str | None = None

    def value_text(self) -> str:
        if self.address:
            return f"{self.value:#x}"
        if self.value > 9:
            return f"{self.value:#x} ({self.value})"
        return str(self.value)


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """A decoded value: what it is, its fields in order, and notes (e.g. RES0 bits set)."""

    register: str
    value: int
    value_text: str
    where: str
    fields: tuple[DecodedField, ...]
    notes: tuple[str, ...] = ()
    command: str | None = None

    def as_dict(self) -> dict[str, int | str]:
        """The JSON object: "register", "value" (an integer; the hex bytes for a command),
        "command" for ITS commands, then every field by the architecture's name."""
        out: dict[str, int | str] = {"register": self.register}
        if self.command is not None:
            out["command"] = self.command
            out["value"] = self.value_text.replace(" ", "")
        else:
            out["value"] = self.value
        for f in self.fields:
            out[f.name] = f.value
        return out

    def lines(self) -> list[str]:
        """Human output: a header line, then one line per field."""
        lines = [f"{self.register} = {self.value_text} ({self.where})"]
        if not self.fields:
            lines.extend(f"  {n}" for n in self.notes)
            return lines
        nw = max(len(f.name) for f in self.fields)
        bw = max(len(f.bits) for f in self.fields)
        vw = max(len(f.value_text()) for f in self.fields)
        for f in self.fields:
            line = f"  {f.name:<{nw}}  {f.bits:<{bw}}  {f.value_text():<{vw}}"
            if f.meaning:
                line += f"  {f.meaning}"
            lines.append(line.rstrip())
        lines.extend(f"  {n}" for n in self.notes)
        return lines


# ----------------------------------------------------------------------------------------------
# Value parsing

_DEC_RE = re.compile(r"^[0-9][0-9_]*$")
_HEX_RE = re.compile(r"^0[xX][0-9a-fA-F_]+$")


def parse_int(text: str) -> int:
    """A non-negative integer written as 0x-prefixed hex or as decimal (underscores allowed)."""
    s = text.strip()
    if _HEX_RE.match(s) and not s.endswith("_") and "__" not in s:
        return int(s[2:].replace("_", ""), 16)
    if _DEC_RE.match(s) and not s.endswith("_") and "__" not in s:
        return int(s.replace("_", ""), 10)
    raise DecodeError(f"malformed value {text!r}: expected hex (0x...) or decimal")


def parse_command_bytes(text: str) -> bytes:
    """32 command bytes written as hex, optionally with a 0x prefix, spaces or colons."""
    s = text.strip()
    if s[:2].lower() == "0x":
        s = s[2:]
    s = re.sub(r"[\s:_]", "", s)
    if not re.fullmatch(r"[0-9a-fA-F]*", s):
        raise DecodeError(f"malformed ITS command {text!r}: expected hex digits")
    if len(s) != 64:
        raise DecodeError(f"ITS command needs 64 hex digits (32 bytes), got {len(s)}")
    return bytes.fromhex(s)


# ----------------------------------------------------------------------------------------------
# Decoders


def _bits(hi: int, lo: int) -> str:
    return f"[{hi}]" if hi == lo else f"[{hi}:{lo}]"


_FRAME_TEXT = {
    "GICD": "GICD+",
    "GICR_RD": "GICR RD_base+",
    "GICR_SGI": "GICR SGI_base+",
    "GITS": "GITS+",
}


def _where(layout: Layout) -> str:
    """'64-bit, GICR RD_base+0x0078' and the like."""
    frame = R.frame_of(layout.name)
    if frame is None or layout.offset is None:
        return f"{layout.width}-bit, system register"
    return f"{layout.width}-bit, {_FRAME_TEXT[frame]}{layout.offset:#06x}"


_VIEW_NOTES = {
    "GICD_CTLR": "single Security state view (DS = 1)",
    "GICD_CTLR_S": "Secure view (DS = 0)",
    "GICD_CTLR_NS": "Non-secure view (DS = 0)",
}


def _resolve(name: str) -> Layout:
    key = name.strip().upper()
    if key in R.VIEWS and key not in R.REGISTERS:
        return R.VIEWS[key]
    try:
        return R.register(key)
    except KeyError as e:
        if R.array_of(key) is not None:  # an element index out of range
            raise DecodeError(str(e.args[0])) from None
    candidates = [*R.REGISTERS, *R.VIEWS, *_COMMAND_NAMES, *_PROP_NAMES]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise DecodeError(f"unknown register {name!r}{hint}")


def _decode_register(name: str, text: str) -> DecodeResult:
    layout = _resolve(name)
    value = parse_int(text)
    if value >> layout.width:
        raise DecodeError(f"value {value:#x} does not fit the {layout.width}-bit {layout.name}")
    view = layout
    where = _where(layout)
    key = name.strip().upper()
    if key in _VIEW_NOTES:
        where += f", {_VIEW_NOTES[key]}"
    if layout.fields in (R.ICH_LR_EL2.fields, R.ICH_LR_EL2_HW.fields):
        # ICH_LR<n>_EL2: the HW bit picks the view (EOI when HW = 0, pINTID when HW = 1)
        view = R.ich_lr_view(value)
        where += f", HW = {R.ICH_LR_EL2.get(value, 'HW')} view"
    fields = tuple(
        DecodedField(
            f.name,
            f.get(value),
            _bits(f.hi, f.lo),
            f.address,
            R.field_meaning(layout.name, f.name, f.get(value)),
        )
        for f in view.fields
    )
    notes: tuple[str, ...] = ()
    stray = value & ~view.defined_mask
    if stray:
        notes = (f"bits outside the fields set (RES0 or IMPLEMENTATION DEFINED): {stray:#x}",)
    digits = layout.width // 4
    return DecodeResult(layout.name, value, f"{value:#0{digits + 2}x}", where, fields, notes)


def _decode_prop(text: str) -> DecodeResult:
    value = parse_int(text)
    if value > 0xFF:
        raise DecodeError(f"value {value:#x} does not fit the 8-bit LPI property byte")
    prop = LpiProp.decode(value)
    f = prop.fields()
    fields = (
        DecodedField("Priority", f["Priority"], "[7:2]", meaning=f"priority {prop.priority:#04x}"),
        DecodedField("RES1", f["RES1"], "[1]", meaning="Group 1 (Linux LPI_PROP_GROUP1)"),
        DecodedField(
            "Enable", f["Enable"], "[0]", meaning="enabled" if prop.enable else "disabled"
        ),
    )
    notes = () if prop.res1 else ("bit 1 is RES1 but reads 0",)
    return DecodeResult(
        "LPI_PROP", value, f"{value:#04x}", "LPI Configuration table byte", fields, notes
    )


def _decode_command(text: str) -> DecodeResult:
    data = parse_command_bytes(text)
    try:
        from gic import its_commands
    except ImportError:
        raise DecodeError(
            "ITS command decoding is unavailable (gic.its_commands missing)"
        ) from None
    try:
        cmd = its_commands.decode(data)
        values = cmd.fields()
    except Exception as e:  # a foreign decoder: any failure is a one-line error, never a crash
        raise DecodeError(f"ITS command: {e}") from None
    places: dict[str, tuple[int, int, int, bool]] = {}
    for dw, fld in getattr(cmd, "LAYOUT", ()):
        places[fld.name] = (dw, fld.hi, fld.lo, fld.address)
    fields = []
    for fname, v in values.items():
        dw, hi, lo, addr = places.get(fname, (-1, 0, 0, False))
        bits = f"DW{dw}{_bits(hi, lo)}" if dw >= 0 else ""
        fields.append(DecodedField(fname, v, bits, addr))
    notes: list[str] = []
    try:
        if cmd.encode() != data:
            notes.append("RES0 bits set (ignored by the ITS)")
    except Exception:  # pragma: no cover - defensive: encode of a decoded command
        pass
    hexbytes = " ".join(f"{b:02x}" for b in data)
    name = str(cmd.name)
    number = data[0]
    if not values and not name.startswith("UNKNOWN"):
        notes.insert(0, "not modelled (GICv4)")
    return DecodeResult(
        "ITS_CMD",
        int.from_bytes(data, "little"),
        hexbytes,
        f"ITS command {name}, number {number:#04x}",
        tuple(fields),
        tuple(notes),
        command=name,
    )


def decode_value(name: str, value: str) -> DecodeResult:
    """Decode VALUE (text) as NAME; raises :class:`DecodeError` with a one-line message."""
    key = name.strip().upper()
    if key in _COMMAND_NAMES:
        return _decode_command(value)
    if key in _PROP_NAMES:
        return _decode_prop(value)
    return _decode_register(name, value)


def main(
    name: str, value: str, as_json: bool, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Entry point of `cosim decode`: 0 on success, 2 (one line on ``err``) on bad input."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        result = decode_value(name, value)
    except DecodeError as e:
        err.write(f"{_PREFIX}{e}\n")
        return EXIT_USAGE
    except Exception as e:  # never a traceback for bad input
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        err.write(f"{_PREFIX}{msg}\n")
        return EXIT_USAGE
    if as_json:
        out.write(json.dumps(result.as_dict()) + "\n")
    else:
        out.write("\n".join(result.lines()) + "\n")
    return 0
