"""Text -> tree for segment expressions, with errors that point at the column.

Grammar (keywords are case-insensitive; ``&``, ``|``, ``!`` are synonyms of
``and``, ``or``, ``not``)::

    expr     := and_expr (("or" | "|") and_expr)*
    and_expr := unary (("and" | "&") unary)*
    unary    := ("not" | "!") unary | "(" expr ")" | atom
    atom     := "tag:" REF | "segment:" REF | "has(" IDENT ")" | operand OP literal
              | operand "in" "(" literal ("," literal)* ")"
    operand  := "attr." KEY | "source" | ("days_since" | "weeks_since" | "months_since") "(" IDENT ")"
              | IDENT
    REF      := STRING | bare text up to a space or one of ( ) & | ! , = < > " '
    OP       := "=" | "!=" | "<" | "<=" | ">" | ">="
    literal  := STRING | NUMBER | "true" | "false"

Every problem raises :class:`~siyu.errors.SegmentSyntaxError`, never another
exception, whatever the input.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import attrs

from .._text import split_tag
from ..errors import SegmentSyntaxError
from .ast import (
    KEYWORDS,
    SINCE_UNITS,
    And,
    Attr,
    Compare,
    DaysSince,
    Has,
    Literal,
    Metric,
    Node,
    Not,
    Operand,
    Or,
    SegmentRef,
    Source,
    Tag,
)

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "location", "parse"]

#: Longest expression accepted, in characters.
MAX_LENGTH = 20_000
#: Deepest nesting of parentheses and ``not``.
MAX_DEPTH = 64

_ATOM = "an atom (tag:GROUP/NAME, segment:NAME, has(KIND), attr.KEY = VALUE, a metric comparison), 'not' or '('"
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<ref>(?:tag|segment):)
  | (?P<op><=|>=|!=|==|=|<|>)
  | (?P<punct>[()&|!,])
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<string>"|')
  | (?P<word>[^\W\d]\w*(?:\.\w+)*)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_BARE = re.compile(r"[^\s()&|!,=<>\"'\\]+")


@attrs.frozen
class _Tok:
    kind: str  # ref, op, punct, number, string, word, end
    value: str
    pos: int
    literal: Literal | None = None


def location(text: str, pos: int) -> tuple[int, int]:
    """1-based ``(line, column)`` of offset ``pos``, counting lines the way
    :meth:`str.splitlines` does (so the caret lands under the right line)."""
    parts = text[:pos].splitlines(keepends=True)
    if not parts:
        return 1, 1
    last = parts[-1]
    if last.splitlines() != [last]:  # ends with a line break
        return len(parts) + 1, 1
    return len(parts), len(last) + 1


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._lex()
        self.i = 0

    # -- errors --------------------------------------------------------------
    def fail(self, message: str, pos: int, expected: str) -> SegmentSyntaxError:
        line, column = location(self.text, pos)
        return SegmentSyntaxError(message, text=self.text, line=line, column=column, expected=expected)

    def found(self, tok: _Tok) -> str:
        return "the end of the expression" if tok.kind == "end" else repr(tok.value)

    # -- lexing --------------------------------------------------------------
    def _string(self, pos: int) -> tuple[str, int]:
        quote_char = self.text[pos]
        out: list[str] = []
        i = pos + 1
        while i < len(self.text):
            ch = self.text[i]
            if ch == "\\":
                if i + 1 >= len(self.text):
                    break
                out.append(self.text[i + 1])
                i += 2
                continue
            if ch == quote_char:
                return "".join(out), i + 1
            out.append(ch)
            i += 1
        raise self.fail("unterminated string", pos, f"a closing {quote_char}")

    def _lex(self) -> list[_Tok]:
        text = self.text
        tokens: list[_Tok] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise self.fail(f"unexpected character {text[pos]!r}", pos, _ATOM)
            kind = m.lastgroup
            assert kind is not None
            if kind == "space":
                pos = m.end()
                continue
            if kind == "string":
                value, end = self._string(pos)
                tokens.append(_Tok("string", value, pos, value))
                pos = end
                continue
            if kind == "ref":
                start = m.end()
                if start < len(text) and text[start] in "\"'":
                    value, end = self._string(start)
                else:
                    bare = _BARE.match(text, start)
                    if bare is None:
                        what = "tag" if m.group().lower() == "tag:" else "segment"
                        example = "tag:interest/running or tag:\"兴趣/瑜伽\"" if what == "tag" else "segment:vip"
                        raise self.fail(f"{m.group()} needs a {what} name", start, f"a {what} name, e.g. {example}")
                    value, end = bare.group(), bare.end()
                tokens.append(_Tok("tag" if m.group().lower() == "tag:" else "segment", value, pos))
                pos = end
                continue
            raw = m.group()
            literal: Literal | None = None
            if kind == "number":
                try:
                    literal = int(raw) if "." not in raw else Decimal(raw)
                except (ValueError, InvalidOperation):
                    raise self.fail(f"bad number {raw!r}", pos, "a number such as 100 or 99.5") from None
            tokens.append(_Tok(kind, raw, pos, literal))
            pos = m.end()
        tokens.append(_Tok("end", "", len(text)))
        return tokens

    # -- parsing -------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def advance(self) -> _Tok:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.value.lower() in words

    def is_punct(self, *chars: str) -> bool:
        return self.tok.kind == "punct" and self.tok.value in chars

    def expect_punct(self, char: str, what: str) -> _Tok:
        if not self.is_punct(char):
            raise self.fail(f"expected {char!r} {what}, found {self.found(self.tok)}", self.tok.pos, repr(char))
        return self.advance()

    def parse(self) -> Node:
        node = self.expr(0)
        if self.tok.kind != "end":
            if self.is_punct(")"):
                raise self.fail("unbalanced ')'", self.tok.pos, "'and', 'or' or the end of the expression")
            raise self.fail(
                f"expected 'and', 'or' or the end, found {self.found(self.tok)}",
                self.tok.pos,
                "'and', 'or' or the end of the expression",
            )
        return node

    def expr(self, depth: int) -> Node:
        start = self.tok.pos
        items = [self.and_expr(depth)]
        while self.is_word("or") or self.is_punct("|"):
            self.advance()
            items.append(self.and_expr(depth))
        return items[0] if len(items) == 1 else Or(tuple(items), start)

    def and_expr(self, depth: int) -> Node:
        start = self.tok.pos
        items = [self.unary(depth)]
        while self.is_word("and") or self.is_punct("&"):
            self.advance()
            items.append(self.unary(depth))
        return items[0] if len(items) == 1 else And(tuple(items), start)

    def unary(self, depth: int) -> Node:
        tok = self.tok
        if depth >= MAX_DEPTH:
            raise self.fail(f"the expression nests deeper than {MAX_DEPTH} levels", tok.pos, "a flatter expression")
        if self.is_word("not") or self.is_punct("!"):
            self.advance()
            return Not(self.unary(depth + 1), tok.pos)
        if self.is_punct("("):
            self.advance()
            node = self.expr(depth + 1)
            if not self.is_punct(")"):
                raise self.fail(
                    f"expected ')' to close the '(' at column {location(self.text, tok.pos)[1]}, "
                    f"found {self.found(self.tok)}",
                    self.tok.pos,
                    "')'",
                )
            self.advance()
            return node
        return self.atom()

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind == "tag":
            self.advance()
            return _tag(self, tok)
        if tok.kind == "segment":
            self.advance()
            if not tok.value.strip():
                raise self.fail("empty segment name", tok.pos, "a segment name")
            return SegmentRef(tok.value, tok.pos)
        if tok.kind != "word" or tok.value.lower() in KEYWORDS:
            raise self.fail(f"expected {_ATOM}, found {self.found(tok)}", tok.pos, _ATOM)
        if tok.value.lower() == "has" and self.tokens[self.i + 1].value == "(":
            self.advance()
            self.advance()
            kind = self.ident("an identity kind such as phone, email, wechat_unionid")
            self.expect_punct(")", "after the identity kind")
            return Has(kind, tok.pos)
        operand = self.operand()
        return self.comparison(operand, tok.pos)

    def ident(self, what: str) -> str:
        tok = self.tok
        if tok.kind != "word" or tok.value.lower() in KEYWORDS:
            raise self.fail(f"expected {what}, found {self.found(tok)}", tok.pos, what)
        self.advance()
        return tok.value

    def operand(self) -> Operand:
        tok = self.advance()
        word = tok.value
        lower = word.lower()
        if lower in SINCE_UNITS and self.is_punct("("):
            self.advance()
            name = self.ident("a time-valued metric such as last_active, first_seen or last_order")
            self.expect_punct(")", "after the metric name")
            return DaysSince(name, tok.pos, SINCE_UNITS[lower])
        if lower.startswith("attr."):
            key = word[5:]
            if "." in key:
                raise self.fail(f"attribute names have no dots: {key!r}", tok.pos + 5, "attr.KEY")
            return Attr(key, tok.pos)
        if lower == "attr":
            raise self.fail("'attr' needs a key, as in attr.city", tok.pos, "attr.KEY")
        if lower == "source":
            return Source(tok.pos)
        return Metric(word, tok.pos)

    def comparison(self, operand: Operand, pos: int) -> Compare:
        tok = self.tok
        if self.is_word("in"):
            self.advance()
            self.expect_punct("(", "after 'in'")
            values = [self.literal()]
            while self.is_punct(","):
                self.advance()
                values.append(self.literal())
            self.expect_punct(")", "to close the 'in' list")
            return Compare(operand, "in", tuple(values), pos)
        if tok.kind != "op":
            raise self.fail(
                f"expected a comparison (= != < <= > >= in) after {self.text[pos:tok.pos].strip()!r}, "
                f"found {self.found(tok)}",
                tok.pos,
                "one of = != < <= > >= in",
            )
        self.advance()
        op = "=" if tok.value == "==" else tok.value
        return Compare(operand, op, self.literal(), pos)

    def literal(self) -> Literal:
        tok = self.tok
        expected = 'a value: "text", a number such as 500 or 99.5, true or false'
        if tok.kind in ("string", "number"):
            self.advance()
            assert tok.literal is not None
            return tok.literal
        if self.is_word("true", "false"):
            self.advance()
            return tok.value.lower() == "true"
        hint = ' (put text in double quotes, e.g. "上海")' if tok.kind == "word" else ""
        raise self.fail(f"expected a value, found {self.found(tok)}{hint}", tok.pos, expected)


def _tag(parser: _Parser, tok: _Tok) -> Tag:
    try:
        group, name = split_tag(tok.value)
    except SegmentSyntaxError:
        raise
    except Exception as exc:
        raise parser.fail(f"bad tag name: {exc}", tok.pos + 4, "a tag such as tag:interest/running") from None
    return Tag(group, name, tok.pos)


def parse(text: object) -> Node:
    """Parse a segment expression; raise :class:`~siyu.errors.SegmentSyntaxError` on any problem."""
    if not isinstance(text, str):
        raise SegmentSyntaxError(
            f"a segment expression must be a str, got {type(text).__name__}", expected="a string"
        )
    if not text.strip():
        raise SegmentSyntaxError("the expression is empty", text=text, expected=_ATOM)
    if len(text) > MAX_LENGTH:
        raise SegmentSyntaxError(
            f"the expression has {len(text)} characters; at most {MAX_LENGTH} are allowed (save parts as "
            "segments and refer to them with segment:NAME)",
            text=text[:200],
            expected="a shorter expression",
        )
    return _Parser(text).parse()
