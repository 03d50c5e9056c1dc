"""The parsed form of a segment expression, and its canonical text.

Nodes are frozen attrs values, so two parses of the same expression compare
equal. ``pos`` (the character offset in the source text, used to point at
an unknown tag or attribute) is left out of equality. :func:`to_text`
prints a tree in canonical form; parsing that text gives the same tree.
"""

from __future__ import annotations

import re
from decimal import Decimal

import attrs

__all__ = [
    "And",
    "Attr",
    "Compare",
    "DaysSince",
    "SINCE_UNITS",
    "Has",
    "Literal",
    "Metric",
    "Node",
    "Not",
    "Operand",
    "Or",
    "SegmentRef",
    "Source",
    "Tag",
    "atoms",
    "to_text",
]

#: A literal in an expression: a string, an integer, a decimal (``500.5``) or a boolean.
Literal = str | int | Decimal | bool

_pos = attrs.field(default=0, eq=False, repr=False)


@attrs.frozen
class Tag:
    """``tag:GROUP/NAME``: users holding the tag."""

    group: str
    name: str
    pos: int = _pos

    @property
    def full(self) -> str:
        return f"{self.group}/{self.name}"


@attrs.frozen
class SegmentRef:
    """``segment:NAME``: the users of a saved segment."""

    name: str
    pos: int = _pos


@attrs.frozen
class Has:
    """``has(KIND)``: users with at least one identity of ``KIND`` (``phone``, ``email`` ...)."""

    kind: str
    pos: int = _pos


@attrs.frozen
class Attr:
    """``attr.KEY``: a profile attribute."""

    key: str
    pos: int = _pos


@attrs.frozen
class Source:
    """``source``: where the user came from (``users.source``)."""

    pos: int = _pos


@attrs.frozen
class Metric:
    """A registered metric by name: ``points``, ``spend_30d``, ``rfm.r``."""

    name: str
    pos: int = _pos


#: Calendar units of the ``*_since(NAME)`` functions, by function name.
SINCE_UNITS = {"days_since": "day", "weeks_since": "week", "months_since": "month"}


@attrs.frozen
class DaysSince:
    """``days_since(NAME)``, ``weeks_since(NAME)``, ``months_since(NAME)``: whole calendar days,
    weeks (from Monday) or months in the business time zone since a time-valued metric
    (0: today, this week, this month)."""

    name: str
    pos: int = _pos
    unit: str = "day"


Operand = Attr | Source | Metric | DaysSince


@attrs.frozen
class Compare:
    """``operand op value``; for ``in``, ``value`` is a tuple of literals."""

    operand: Operand
    op: str
    value: Literal | tuple[Literal, ...]
    pos: int = _pos


@attrs.frozen
class Not:
    item: Node
    pos: int = _pos


@attrs.frozen
class And:
    """A chain ``a and b and c``; a parenthesised ``and`` inside stays a nested node."""

    items: tuple[Node, ...]
    pos: int = _pos


@attrs.frozen
class Or:
    items: tuple[Node, ...]
    pos: int = _pos


Node = Tag | SegmentRef | Has | Compare | Not | And | Or

#: Words that cannot be written bare as a tag reference or identifier.
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
_BARE_REF = re.compile(r"[^\s()&|!,=<>\"'\\]+")
_IDENT = re.compile(r"[^\W\d]\w*(?:\.\w+)*")


def quote(text: str) -> str:
    """A double-quoted string literal with ``\\`` and ``"`` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ref(text: str) -> str:
    if _BARE_REF.fullmatch(text) and text.lower() not in KEYWORDS:
        return text
    return quote(text)


def _literal(value: Literal) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _operand(operand: Operand) -> str:
    if isinstance(operand, Attr):
        return f"attr.{operand.key}"
    if isinstance(operand, Source):
        return "source"
    if isinstance(operand, DaysSince):
        return f"{operand.unit}s_since({operand.name})"
    return operand.name


def to_text(node: Node) -> str:
    """Canonical text of a tree: lower-case keywords, double quotes, parentheses
    only where the tree needs them."""
    if isinstance(node, Tag):
        return "tag:" + _ref(node.full)
    if isinstance(node, SegmentRef):
        return "segment:" + _ref(node.name)
    if isinstance(node, Has):
        return f"has({node.kind})"
    if isinstance(node, Compare):
        if node.op == "in":
            assert isinstance(node.value, tuple)
            values = ", ".join(_literal(v) for v in node.value)
            return f"{_operand(node.operand)} in ({values})"
        assert not isinstance(node.value, tuple)
        return f"{_operand(node.operand)} {node.op} {_literal(node.value)}"
    if isinstance(node, Not):
        inner = to_text(node.item)
        return f"not ({inner})" if isinstance(node.item, And | Or) else f"not {inner}"
    word = " and " if isinstance(node, And) else " or "
    parts = []
    for item in node.items:
        text = to_text(item)
        # Nested chains came from parentheses; keep them so the tree survives a round trip.
        parts.append(f"({text})" if isinstance(item, And | Or) else text)
    return word.join(parts)


def atoms(node: Node) -> list[Node]:
    """The leaves of a tree, left to right."""
    if isinstance(node, Not):
        return atoms(node.item)
    if isinstance(node, And | Or):
        return [leaf for item in node.items for leaf in atoms(item)]
    return [node]
