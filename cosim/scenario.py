"""Scenario files (TOML): the machine, the host, the kernel, the devices, the run, the actions.

Keys live where the real thing lives: ID bits and list registers are hardware
([machine]), HAS_ITS is a Xen build option ([host]), maxcpus is a kernel
argument ([guest].bootargs). Validation is msgspec's; a bad file gets one line
naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from cosim.faults import FaultPlanError, FaultRule, check_rules

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s)\s*$")
_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid; the message is one line."""


def parse_duration(text: str | int) -> int:
    """``"10ms"`` -> 10_000_000 ns; an int is already ns."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"negative duration {text}")
        return text
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration (e.g. 500us, 10ms, 1s)")
    return round(float(m.group(1)) * _UNIT[m.group(2)])


PosInt = Annotated[int, msgspec.Meta(ge=1)]


class Machine(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The physical machine, like QEMU's virt (gic-version=3, its=on)."""

    pcpus: Annotated[int, msgspec.Meta(ge=1, le=512)] = 4
    ram_mb: Annotated[int, msgspec.Meta(ge=256, le=65536)] = 2048
    lpi_id_bits: Annotated[int, msgspec.Meta(ge=14, le=24)] = 16
    list_registers: Annotated[int, msgspec.Meta(ge=1, le=16)] = 4
    its: bool = True


class Host(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What the guest runs on: the bare machine with its firmware, or Xen and its build options."""

    kind: Literal["baremetal", "xen"] = "baremetal"
    boot: Literal["efi", "dt"] = "dt"
    has_its: bool = False
    dom0_boot: Literal["acpi", "dt"] = "acpi"
    efi_memreserve: bool = False


class Guest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The Linux kernel and its command line."""

    vcpus: Annotated[int, msgspec.Meta(ge=1, le=128)] = 4
    kernel: Literal["v5.15", "v5.15+xen-skip-reserve", "v6.1", "v6.2+efi-paravirt"] = "v5.15"
    bootargs: str = ""


class Device(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A PCIe function raising MSIs through the ITS."""

    devid: Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]
    events: Annotated[int, msgspec.Meta(ge=1, le=2048)] = 1
    msi_rate: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] = 0
    name: str = ""


class Run(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    seed: int = 1
    duration: str | int = "10ms"


class Action(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Something the guest or a person does at a simulated time."""

    at: str | int
    do: Literal["kexec", "cpu_offline", "cpu_online", "set_lpi_priority", "set_lpi_enable", "panic"]
    cpu: int | None = None
    devid: int | None = None
    event: int | None = None
    priority: int | None = None
    enable: bool | None = None
    inv: bool = True


class Scenario(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    machine: Machine = Machine()
    host: Host = Host()
    guest: Guest = Guest()
    devices: list[Device] = []
    run: Run = Run()
    actions: list[Action] = []
    faults: list[FaultRule] = []

    # Filled in by load(): not part of the file.
    path: str = ""
    sha256: str = ""

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else "scenario"

    @property
    def duration_ns(self) -> int:
        return parse_duration(self.run.duration)


def _allowed(tp: Any) -> str:
    """What a field type accepts, for error messages."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        bounds = [
            f"{k} {getattr(m, k)}"
            for m in meta
            for k in ("ge", "le")
            if getattr(m, k, None) is not None
        ]
        return _allowed(base) + (f" ({', '.join(bounds)})" if bounds else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_allowed(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _field_type(path: list[str | int]) -> Any:
    tp: Any = Scenario
    for part in path:
        if isinstance(part, int):
            tp = typing.get_args(tp)[0] if typing.get_args(tp) else tp
            continue
        hints = typing.get_type_hints(tp, include_extras=True) if isinstance(tp, type) else {}
        if part not in hints:
            return None
        tp = hints[part]
        if typing.get_origin(tp) is list:
            tp = list[typing.get_args(tp)[0]]  # keep list for an int index next
    return tp


def _lookup(raw: Any, path: list[str | int]) -> Any:
    for part in path:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _explain(file: str, raw: dict[str, Any], exc: msgspec.ValidationError) -> str:
    msg = str(exc)
    m = re.search(r" - at `\$((?:\.[A-Za-z_][\w-]*|\[\d+\])*)`$", msg)
    if not m:
        top = re.match(r"Object contains unknown field `(.+?)`$", msg)
        if top:
            known = [k for k in Scenario.__struct_fields__ if k not in ("path", "sha256")]
            return f"{file}: unknown key {top.group(1)}; allowed: {', '.join(known)}"
        return f"{file}: {msg}"
    path: list[str | int] = [
        int(p[1:-1]) if p.startswith("[") else p[1:]
        for p in re.findall(r"\.[\w-]+|\[\d+\]", m.group(1))
    ]
    what = msg[: m.start()]
    key = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
    missing = re.match(r"Object missing required field `(.+?)`", what)
    if missing:
        return f"{file}: {key or 'top level'}: missing required key {missing.group(1)}"
    if what.startswith("Object contains unknown field"):
        field = re.search(r"`(.+?)`", what)
        parent = _field_type(path)
        known = sorted(getattr(parent, "__struct_fields__", ()))
        known = [k for k in known if k not in ("path", "sha256")]
        name = field.group(1) if field else "?"
        where = f"{key}." if key else ""
        return f"{file}: unknown key {where}{name}; allowed: {', '.join(known)}"
    value = _lookup(raw, path)
    tp = _field_type(path)
    allowed = f"; allowed: {_allowed(tp)}" if tp is not None else ""
    return f"{file}: {key} = {value!r}: {what}{allowed}"


def loads(text: str, file: str = "<scenario>") -> Scenario:
    """Parse and validate a scenario; raise ScenarioError with one line on any problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{file}: not valid TOML: {exc}") from None
    for reserved in ("path", "sha256"):
        if reserved in raw:
            raise ScenarioError(f"{file}: unknown key {reserved}")
    try:
        sc = msgspec.convert(raw, type=Scenario, strict=True)
    except msgspec.ValidationError as exc:
        raise ScenarioError(_explain(file, raw, exc)) from None
    # Durations are strings in the file; check them now so a run never starts with a bad one.
    for key, value in [("run.duration", sc.run.duration)] + [
        (f"actions[{i}].at", a.at) for i, a in enumerate(sc.actions)
    ]:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ScenarioError(f"{file}: {key} = {value!r}: {exc}") from None
    try:
        check_rules(sc.faults, file)
    except FaultPlanError as exc:
        raise ScenarioError(str(exc)) from None
    digest = hashlib.sha256(text.encode()).hexdigest()
    return msgspec.structs.replace(sc, path=file, sha256=digest)


def load(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not UTF-8 text") from None
    return loads(text, str(p))
