"""gic.fastinit: the same dataclass, only built faster; what it cannot reproduce it refuses."""

from __future__ import annotations

import dataclasses

import pytest

from gic.fastinit import fast_init
from gic.port import MemRead


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Rec:
    addr: int
    size: int = 8
    why: str = "x"


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    addr: int
    size: int = 8
    why: str = "x"


def test_same_values_defaults_equality_and_still_frozen() -> None:
    r = _Rec(0x1000, why="prop")
    assert (r.addr, r.size, r.why) == (0x1000, 8, "prop")
    assert r == _Rec(addr=0x1000, size=8, why="prop") and hash(r) == hash(_Rec(0x1000, 8, "prop"))
    assert repr(r) == repr(_Plain(0x1000, why="prop")).replace("_Plain", "_Rec")
    assert dataclasses.replace(r, size=4) == _Rec(0x1000, 4, "prop")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.addr = 0  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'addr'"):
        _Rec()  # type: ignore[call-arg]


def test_the_model_classes_keep_their_signature() -> None:
    m = MemRead(0x40000000, 4, "its_read_dte")
    assert m == MemRead(addr=0x40000000, size=4, why="its_read_dte")
    assert [f.name for f in dataclasses.fields(MemRead)] == ["addr", "size", "why"]


def test_refuses_what_it_cannot_reproduce() -> None:
    with pytest.raises(TypeError, match="frozen dataclasses with slots"):

        @fast_init
        @dataclasses.dataclass(frozen=True)
        class NoSlots:
            a: int

    with pytest.raises(TypeError, match="does not call __post_init__"):

        @fast_init
        @dataclasses.dataclass(frozen=True, slots=True)
        class Post:
            a: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="not a plain slotted field"):

        @fast_init
        @dataclasses.dataclass(frozen=True, slots=True)
        class Factory:
            a: list[int] = dataclasses.field(default_factory=list)
