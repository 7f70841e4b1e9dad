"""A faster ``__init__`` for the frozen slotted dataclasses made on every modelled access.

A frozen dataclass's generated ``__init__`` stores each field with
``object.__setattr__(self, name, value)``, looked up anew for every field of every instance:
about three times the cost of an ordinary ``__init__``, and the hot paths build millions of
small frozen records (memory requests, ITS table entries, interrupt candidates).
:func:`fast_init` gives such a class an ``__init__`` that stores straight into the slots through
their descriptors. Nothing else changes: the same parameters (names, order, defaults), the
same values in the same fields, and the instance is as frozen afterwards (its ``__setattr__``
and ``__delattr__`` still raise FrozenInstanceError); ``__eq__``, ``__hash__``, ``__repr__``,
``__match_args__`` and ``dataclasses.replace`` are the dataclass's own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Replace the generated ``__init__`` of a frozen ``slots=True`` dataclass (decorator,
    outermost). Refuses what the replacement would not reproduce: a ``__post_init__``,
    ``init=False``, keyword-only or ``default_factory`` fields, fields without a slot."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init is for frozen dataclasses with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: fast_init does not call __post_init__")
    namespace: dict[str, Any] = {}
    args: list[str] = []
    body: list[str] = []
    annotations: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        slot = cls.__dict__.get(f.name)
        if (
            not f.init
            or f.kw_only
            or f.default_factory is not dataclasses.MISSING
            or type(slot).__name__ != "member_descriptor"
        ):
            raise TypeError(f"{cls.__name__}.{f.name}: not a plain slotted field")
        namespace[f"_set_{f.name}"] = slot.__set__
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
        annotations[f.name] = f.type
    src = f"def __init__(self, {', '.join(args)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(src, namespace)  # built from the field names above, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {**annotations, "return": None}
    cls.__init__ = init  # type: ignore[misc]
    return cls


__all__ = ["fast_init"]
