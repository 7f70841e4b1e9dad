"""A display-filter language for trace records, in the style of Wireshark's.

Grammar (precedence ``!`` > ``&&`` > ``||``; the words ``not``, ``and``, ``or`` are synonyms)::

    expr    := and ( ("||" | "or") and )*
    and     := unary ( ("&&" | "and") unary )*
    unary   := ("!" | "not") unary | primary
    primary := "(" expr ")" | test
    test    := field [ cmp value | "contains" value | "in" "{" item* "}" ]
    cmp     := "==" | "!=" | "<" | ">" | "<=" | ">="
    item    := value [ ".." value ] [ "," ]
    value   := INTEGER | STRING | field

Fields are a record's top-level fields (seq, t, src, dst, kind, why, id, reply_to), its
body keys, and the decoder's fields (reg, hypercall, psci, its_cmd, ...); ``a.b`` looks
inside a map. Integers are decimal or 0x-hex (optionally negative); strings are in double
quotes with ``\\"`` and ``\\\\`` escapes. A bare field tests that it exists.

Type rules, as in Wireshark: a test on a field the record lacks is false (so ``x != 1``
is false when there is no ``x``, while ``!(x == 1)`` is true); comparing a string with an
integer is false, never an error; booleans are the integers 0 and 1. ``contains`` is
substring for strings and membership for lists; ``in {8192..8255}`` takes ranges.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: What ``lookup`` returns for a field the record does not have.
MISSING: Any = object()

Lookup = Callable[[str], Any]
Predicate = Callable[[Lookup], bool]


class FilterError(ValueError):
    """A bad expression; ``column`` (1-based) is where the problem is."""

    def __init__(self, expr: str, column: int, message: str) -> None:
        super().__init__(message)
        self.expr = expr
        self.column = column
        self.message = message

    def lines(self) -> list[str]:
        """The expression, a caret under the column, and the message."""
        return [self.expr, " " * (self.column - 1) + "^", f"column {self.column}: {self.message}"]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # int, str, field, op, end
    text: str
    pos: int  # 0-based
    value: Any = None


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<int>-?(?:0[xX][0-9a-fA-F]+|\d+)(?!\w)(?!\.(?!\.)))
  | (?P<str>")
  | (?P<op>==|!=|<=|>=|&&|\|\||\.\.|[<>!(){},])
  | (?P<field>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)
_WORDS = {"and": "&&", "or": "||", "not": "!", "contains": "contains", "in": "in"}


def _tokens(expr: str) -> list[_Tok]:
    out: list[_Tok] = []
    i = 0
    while i < len(expr):
        m = _TOKEN.match(expr, i)
        if m is None:
            raise FilterError(expr, i + 1, f"unexpected character {expr[i]!r}")
        kind = m.lastgroup
        assert kind is not None
        if kind == "ws":
            i = m.end()
            continue
        if kind == "str":
            j = i + 1
            chars: list[str] = []
            while True:
                if j >= len(expr):
                    raise FilterError(expr, i + 1, "string not closed: missing '\"'")
                c = expr[j]
                if c == "\\":
                    if j + 1 >= len(expr) or expr[j + 1] not in '"\\':
                        raise FilterError(expr, j + 1, 'only \\" and \\\\ escapes are allowed')
                    chars.append(expr[j + 1])
                    j += 2
                elif c == '"':
                    break
                else:
                    chars.append(c)
                    j += 1
            out.append(_Tok("str", expr[i : j + 1], i, "".join(chars)))
            i = j + 1
            continue
        text = m.group()
        if kind == "int":
            out.append(_Tok("int", text, i, int(text, 0)))
        elif kind == "field" and text in _WORDS:
            out.append(_Tok("op", _WORDS[text], i))
        else:
            out.append(_Tok(kind, text, i))
        i = m.end()
    out.append(_Tok("end", "", len(expr)))
    return out


def _same_type(a: Any, b: Any) -> bool:
    """Integers (and booleans) compare with integers, strings with strings."""
    if isinstance(a, int) and isinstance(b, int):
        return True
    return isinstance(a, str) and isinstance(b, str)


def _cmp(op: str) -> Callable[[Any, Any], bool]:
    import operator

    fn = {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        ">": operator.gt,
        "<=": operator.le,
        ">=": operator.ge,
    }[op]

    def compare(a: Any, b: Any) -> bool:
        return _same_type(a, b) and bool(fn(a, b))

    return compare


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        return isinstance(b, str) and b in a
    if isinstance(a, (list, tuple)):
        return any(_same_type(x, b) and x == b for x in a)
    if isinstance(a, bytes):
        return isinstance(b, int) and 0 <= b < 256 and b in a
    return False


# A value is compiled to a function of the lookup.
_Val = Callable[[Lookup], Any]


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.toks = _tokens(expr)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, tok: _Tok, message: str) -> FilterError:
        return FilterError(self.expr, tok.pos + 1, message)

    def found(self, tok: _Tok) -> str:
        return "the end of the expression" if tok.kind == "end" else repr(tok.text)

    def accept(self, *ops: str) -> _Tok | None:
        t = self.tok
        if t.kind == "op" and t.text in ops:
            self.i += 1
            return t
        return None

    def parse(self) -> Predicate:
        if self.tok.kind == "end":
            raise self.error(self.tok, "empty filter")
        pred = self.or_()
        if self.tok.kind != "end":
            raise self.error(
                self.tok, f"expected '&&', '||' or the end, found {self.found(self.tok)}"
            )
        return pred

    def or_(self) -> Predicate:
        parts = [self.and_()]
        while self.accept("||"):
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda get: any(p(get) for p in parts)

    def and_(self) -> Predicate:
        parts = [self.unary()]
        while self.accept("&&"):
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda get: all(p(get) for p in parts)

    def unary(self) -> Predicate:
        if self.accept("!"):
            inner = self.unary()
            return lambda get: not inner(get)
        return self.primary()

    def primary(self) -> Predicate:
        t = self.tok
        if self.accept("("):
            inner = self.or_()
            if not self.accept(")"):
                raise self.error(self.tok, f"expected ')', found {self.found(self.tok)}")
            return inner
        if t.kind != "field":
            raise self.error(t, f"expected a field name, '(' or '!', found {self.found(t)}")
        self.i += 1
        name = t.text
        op = self.tok
        if op.kind == "op" and op.text in ("==", "!=", "<", ">", "<=", ">="):
            self.i += 1
            rhs = self.value(op.text)
            compare = _cmp(op.text)

            def test(get: Lookup) -> bool:
                a = get(name)
                b = rhs(get)
                return a is not MISSING and b is not MISSING and compare(a, b)

            return test
        if op.kind == "op" and op.text == "contains":
            self.i += 1
            rhs = self.value("contains")
            return lambda get: _contains(get(name), rhs(get))
        if op.kind == "op" and op.text == "in":
            self.i += 1
            return self.set_(name)
        return lambda get: get(name) is not MISSING

    def value(self, after: str) -> _Val:
        t = self.tok
        if t.kind in ("int", "str"):
            self.i += 1
            v = t.value
            return lambda get: v
        if t.kind == "field":
            self.i += 1
            name = t.text
            return lambda get: get(name)
        raise self.error(t, f"expected a value after '{after}', found {self.found(t)}")

    def literal(self) -> _Tok:
        t = self.tok
        if t.kind not in ("int", "str"):
            raise self.error(
                t, f"expected an integer or a string in the set, found {self.found(t)}"
            )
        self.i += 1
        return t

    def set_(self, name: str) -> Predicate:
        if not self.accept("{"):
            raise self.error(self.tok, f"expected '{{' after 'in', found {self.found(self.tok)}")
        values: set[Any] = set()
        ranges: list[tuple[int, int]] = []
        while not self.accept("}"):
            lo = self.literal()
            if self.accept(".."):
                hi = self.literal()
                if lo.kind != "int" or hi.kind != "int":
                    raise self.error(lo, "a range needs integers at both ends")
                if hi.value < lo.value:
                    raise self.error(hi, f"range end {hi.text} is below its start {lo.text}")
                ranges.append((lo.value, hi.value))
            else:
                values.add(lo.value)
            self.accept(",")
        ints = frozenset(v for v in values if isinstance(v, int))
        strs = frozenset(v for v in values if isinstance(v, str))

        def member(get: Lookup) -> bool:
            v = get(name)
            if isinstance(v, bool):
                v = int(v)
            if isinstance(v, int):
                return v in ints or any(lo <= v <= hi for lo, hi in ranges)
            return isinstance(v, str) and v in strs

        return member


@dataclass(frozen=True)
class Filter:
    """A compiled filter: ``matches(lookup)`` with ``lookup(name) -> value | MISSING``."""

    expr: str
    predicate: Predicate

    def matches(self, lookup: Lookup) -> bool:
        return self.predicate(lookup)

    def matches_fields(self, *layers: Mapping[str, Any]) -> bool:
        """Match against maps searched in order (e.g. top-level fields, body, decoded)."""
        return self.predicate(record_lookup(*layers))


def compile_filter(expr: str) -> Filter:
    """Parse ``expr``; raises :class:`FilterError` with the column of the problem."""
    return Filter(expr, _Parser(expr).parse())


def _lookup(layers: tuple[Mapping[str, Any], ...], name: str) -> Any:
    head, dot, rest = name.partition(".")
    for layer in layers:
        if head in layer:
            v = layer[head]
            break
    else:
        return MISSING
    if dot:
        for part in rest.split("."):
            if not isinstance(v, Mapping) or part not in v:
                return MISSING
            v = v[part]
    return MISSING if v is None else v


def record_lookup(*layers: Mapping[str, Any]) -> Lookup:
    """A lookup over maps searched in order; ``a.b`` descends into a map value."""
    return lambda name: _lookup(layers, name)
