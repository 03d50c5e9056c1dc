"""The segment language: parser, printer, errors (no storage involved)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.errors import SegmentSyntaxError
from siyu.segments import parse, to_text
from siyu.segments.ast import And, Attr, Compare, DaysSince, Has, Metric, Node, Not, Or, SegmentRef, Source, Tag

_word = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda w: w not in {"and", "or", "not", "in", "true", "false", "source", "has", "days_since", "attr"}
)
_group = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"), min_size=1,
                 max_size=15).filter(lambda s: s == s.strip())
_name = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30).filter(
    lambda s: s == s.strip()
)
_literal = st.one_of(
    st.text(max_size=10),
    st.integers(-10**6, 10**6),
    st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
_operand = st.one_of(
    st.builds(Attr, st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True)),
    st.just(Source()),
    st.builds(Metric, st.one_of(_word, st.tuples(_word, _word).map(".".join))),
    st.builds(DaysSince, _word),
)
_compare = st.one_of(
    st.builds(Compare, _operand, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), _literal),
    st.builds(Compare, _operand, st.just("in"), st.lists(_literal, min_size=1, max_size=3).map(tuple)),
)
_atom = st.one_of(
    st.builds(Tag, _group, _name),
    st.builds(SegmentRef, st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
        lambda s: s.strip() != "")),
    st.builds(Has, _word),
    _compare,
)
trees: st.SearchStrategy[Node] = st.recursive(
    _atom,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(trees)
def test_print_then_parse_gives_the_same_tree(tree: Node) -> None:
    text = to_text(tree)
    assert parse(text) == tree
    assert to_text(parse(text)) == text


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_any_string_parses_or_raises_segment_syntax_error(text: str) -> None:
    try:
        tree = parse(text)
    except SegmentSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1 and exc.expected
        assert "^" in str(exc)
    else:
        assert parse(to_text(tree)) == tree


_pieces = st.sampled_from([
    "tag:", "segment:", "attr.", "has(", "days_since(", "(", ")", " and ", " or ", " not ", "&", "|", "!", " in ",
    "=", "!=", "<=", ">", '"', "'", "\\", ",", "1", "-2.5", "x", "城市", "\n", " ", "true", "source",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=12).map("".join))
def test_grammar_shaped_noise_never_escapes(text: str) -> None:
    try:
        parse(text)
    except SegmentSyntaxError:
        pass


def test_precedence_not_and_or() -> None:
    tree = parse("(tag:a/A and tag:a/B) or (tag:a/C and not tag:a/D) and tag:a/E")
    a, b, c, d, e = (Tag("a", x) for x in "ABCDE")
    assert tree == Or((And((a, b)), And((And((c, Not(d))), e))))
    assert parse("tag:a/A & tag:a/B | !tag:a/C") == Or((And((a, b)), Not(c)))
    assert parse("NOT tag:a/A AND tag:a/B") == And((Not(a), b))


def test_atoms() -> None:
    assert parse('tag:"兴趣/瑜伽"') == Tag("兴趣", "瑜伽")
    assert parse("tag:vip") == Tag("default", "vip")
    assert parse('attr.city in ("上海", "北京")') == Compare(Attr("city"), "in", ("上海", "北京"))
    assert parse("spend_30d >= 500.50") == Compare(Metric("spend_30d"), ">=", Decimal("500.50"))
    assert parse("rfm.r = 5") == Compare(Metric("rfm.r"), "=", 5)
    assert parse("days_since(last_active) <= 30") == Compare(DaysSince("last_active"), "<=", 30)
    assert parse('source = "douyin_live"') == Compare(Source(), "=", "douyin_live")
    assert parse("has(phone)") == Has("phone")
    assert parse("attr.vip == true") == Compare(Attr("vip"), "=", True)
    assert parse("segment:vip_shanghai") == SegmentRef("vip_shanghai")


@pytest.mark.parametrize(
    ("text", "line", "column", "expected"),
    [
        ("tag:a/b and", 1, 12, "an atom"),
        ("tag:a/b and\n  (tag:a/c or", 2, 14, "an atom"),
        ("(tag:a/b", 1, 9, "')'"),
        ("tag:a/b)", 1, 8, "'and', 'or'"),
        ("attr.city = 上海", 1, 13, "a value"),
        ("points >> 3", 1, 9, "a value"),
        ("points", 1, 7, "one of = != <"),
        ('attr.city = "上海', 1, 13, 'a closing "'),
        ("tag:", 1, 5, "a tag name"),
        ("tag:" + "x" * 40, 1, 5, "a tag"),
        ("", 1, 1, "an atom"),
        ("has(1)", 1, 5, "an identity kind"),
    ],
)
def test_errors_point_at_the_problem(text: str, line: int, column: int, expected: str) -> None:
    with pytest.raises(SegmentSyntaxError) as info:
        parse(text)
    assert (info.value.line, info.value.column) == (line, column)
    assert info.value.expected.startswith(expected)
    _shown, caret = str(info.value).splitlines()[-2:]
    assert caret.index("^") - 2 == column - 1


def test_nesting_and_length_limits() -> None:
    with pytest.raises(SegmentSyntaxError, match="deeper"):
        parse("(" * 100 + "tag:a/b" + ")" * 100)
    with pytest.raises(SegmentSyntaxError, match="deeper"):
        parse("not " * 100 + "tag:a/b")
    long_chain = " and ".join(f"tag:g/t{i}" for i in range(1000))
    assert len(parse(long_chain).items) == 1000  # type: ignore[union-attr]
    with pytest.raises(SegmentSyntaxError, match="characters"):
        parse("tag:a/b or " * 3000 + "tag:a/b")
    with pytest.raises(SegmentSyntaxError):
        parse(None)  # type: ignore[arg-type]
