"""Hypothesis strategies for every message of the catalogue, built from its type annotations."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from transport.messages import MESSAGE_TYPES, Envelope, Message

#: Every int msgpack can carry.
INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
TEXT = st.text(max_size=20)


def _for(t: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.IntType):
        return INTS
    if isinstance(t, mi.StrType):
        return TEXT
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.BytesType):
        return st.binary(max_size=64)
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.VarTupleType):
        return st.lists(_for(t.item_type), max_size=8).map(tuple)
    if isinstance(t, mi.StructType):
        return structs(t.cls)
    raise NotImplementedError(f"no strategy for {t!r}")


def structs(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """Instances of a Struct with every field drawn from its declared type."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return st.builds(cls, **{f.name: _for(f.type) for f in info.fields})


def messages(types: tuple[type[Message], ...] = MESSAGE_TYPES) -> st.SearchStrategy[Message]:
    return st.one_of(*(structs(t) for t in types))


def envelopes(types: tuple[type[Message], ...] = MESSAGE_TYPES) -> st.SearchStrategy[Envelope]:
    return st.builds(
        Envelope,
        t=st.integers(min_value=0, max_value=2**63 - 1),
        src=TEXT,
        dst=TEXT,
        msg=messages(types),
        id=st.integers(min_value=0, max_value=2**64 - 1),
        reply_to=st.integers(min_value=0, max_value=2**64 - 1),
        why=TEXT,
    )
