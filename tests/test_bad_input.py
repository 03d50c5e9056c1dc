"""Bad input: only SiyuError escapes, and a failed call changes nothing."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

import siyu
from siyu.errors import SiyuError
from siyu.money import to_fen
from siyu.testing import FakeClock
from sweep_support import METHODS, SIGNATURES, START, changed, digest, hostile, plausible, resolve, seeded

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=10),
    st.decimals(allow_nan=True),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
)


def snapshot(ws: siyu.Workspace) -> Any:
    ids = ws.users.ids()
    return (
        ids,
        [ws.users.get(i) for i in ids],
        [sorted(ws.tags.of(i)) for i in ids],
        [ws.points.history(i) for i in ids],
        [ws.users.consents(i) for i in ids],
        ws.tags.names(),
    )


CALLS: dict[str, Callable[[siyu.Workspace, int, Any, Any], Any]] = {
    "users.add": lambda ws, uid, a, b: ws.users.add(phone=a, source=b),
    "users.add.attributes": lambda ws, uid, a, b: ws.users.add(attributes=a, email=b),
    "users.add_many": lambda ws, uid, a, b: ws.users.add_many([{"phone": "13900139000"}, a]),
    "users.get": lambda ws, uid, a, b: ws.users.get(a),
    "users.find": lambda ws, uid, a, b: ws.users.find(phone=a),
    "users.link": lambda ws, uid, a, b: ws.users.link(uid, a, b),
    "users.link.wecom": lambda ws, uid, a, b: ws.users.link(a, "wecom_external_userid", b),
    "users.update": lambda ws, uid, a, b: ws.users.update(uid, attributes=a, source=b),
    "users.consent": lambda ws, uid, a, b: ws.users.consent(uid, purpose=a, channel=b),
    "users.consent.granted": lambda ws, uid, a, b: ws.users.consent(a, purpose="marketing", granted=b),
    "users.merge": lambda ws, uid, a, b: ws.users.merge(keep=a, drop=b),
    "users.unmerge": lambda ws, uid, a, b: ws.users.unmerge(a),
    "tags.define_group": lambda ws, uid, a, b: ws.tags.define_group(a, exclusive=b),
    "tags.apply": lambda ws, uid, a, b: ws.tags.apply(uid, a, by=b),
    "tags.apply.user": lambda ws, uid, a, b: ws.tags.apply(a, "vip"),
    "tags.remove": lambda ws, uid, a, b: ws.tags.remove(a, b),
    "tags.users": lambda ws, uid, a, b: ws.tags.users(a),
    "points.earn": lambda ws, uid, a, b: ws.points.earn(uid, a, reason="x", key=b),
    "points.earn.expiry": lambda ws, uid, a, b: ws.points.earn(uid, 5, reason="x", key="k9", expires_at=a,
                                                              available_at=b),
    "points.earn.user": lambda ws, uid, a, b: ws.points.earn(a, 5, reason=b, key="k8"),
    "points.spend": lambda ws, uid, a, b: ws.points.spend(uid, a, reason="x", key=b),
    "points.reverse": lambda ws, uid, a, b: ws.points.reverse(a, key=b),
    "points.earn_many": lambda ws, uid, a, b: ws.points.earn_many([(uid, 1, "x", "ok1"), a]),
    "points.spend_many": lambda ws, uid, a, b: ws.points.spend_many([a, b]),
    "points.expiring": lambda ws, uid, a, b: ws.points.expiring(within=a),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@given(a=anything, b=anything)
def test_only_siyu_errors_and_no_partial_writes(name: str, a: Any, b: Any) -> None:
    with siyu.connect("memory://", clock=lambda: datetime(2026, 11, 22, tzinfo=UTC)) as ws:
        user = ws.users.add(phone="13800138000")
        ws.points.earn(user.id, 50, reason="seed", key="seed")
        ws.tags.apply(user.id, "seed/tag")
        before = snapshot(ws)
        try:
            CALLS[name](ws, user.id, a, b)
        except SiyuError:
            assert snapshot(ws) == before


@given(st.one_of(anything, st.decimals(places=2, allow_nan=False, allow_infinity=False)))
def test_money_conversion_only_raises_siyu_errors(value: Any) -> None:
    try:
        fen = to_fen(value)
    except SiyuError:
        return
    assert isinstance(fen, int) and fen >= 0
    assert not isinstance(value, float)


def test_float_money_is_refused_with_advice() -> None:
    with pytest.raises(siyu.errors.InvalidMoney, match="Decimal"):
        to_fen(19.9)
    assert to_fen(Decimal("19.90")) == 1990 and to_fen("0.01") == 1 and to_fen(3) == 300


# -- the sweep: every public method, one hostile argument at a time ------------------------------------

#: Not called with hostile values: they take code, not data (a callable, a plugin object, a
#: sink), or they are event consumers the event log calls with the events it read.
TAKES_CODE = {
    "channels.install", "event_log.add_sink", "points_rules.register", "privacy.register_eraser",
    "privacy.register_exporter", "users.add_merge_participant",
}
CONSUMERS = {
    "campaigns.observer.automation.on_event", "campaigns.observer.handle", "channels.receipts.observer.handle",
    "lifecycle.observer.handle",
    "privacy.auditor.handle", "referrals.on_events", "tags.rules.observer.handle",
}


def _params(name: str) -> list[inspect.Parameter]:
    return [p for p in SIGNATURES[name].parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


SWEPT = [name for name in METHODS if name not in TAKES_CODE | CONSUMERS and _params(name)]


@pytest.mark.parametrize("name", SWEPT)
# The same calls every run, whatever the profile: about 340 methods x 12 examples stay well under a minute.
@settings(derandomize=True, max_examples=12)
@given(data=st.data())
def test_every_public_method_refuses_hostile_input_with_a_siyu_error(name: str, data: st.DataObject) -> None:
    params = _params(name)
    target = data.draw(st.sampled_from(params), label="hostile parameter")
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in params:
        if param is target:
            value: Any = data.draw(hostile, label=param.name)
        elif param.default is not inspect.Parameter.empty:
            continue
        else:
            value = data.draw(plausible(param.name), label=param.name)
        if param.kind is param.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    with seeded(FakeClock(START)) as ws:
        try:
            result = resolve(ws, name)(*args, **kwargs)
            if inspect.isgenerator(result) or hasattr(result, "__enter__"):
                with result:  # a context manager validates on entry
                    pass
        except SiyuError:
            assert not changed(ws), f"{name} failed but changed storage"


# -- the reported cases ------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda ws: ws.users.add_many(5),
    lambda ws: ws.users.add_many("13800138000"),
    lambda ws: ws.users.upsert_many({"phone": "13800138000"}),
    lambda ws: ws.points.earn_many(1.5),
    lambda ws: ws.points.spend_many(None),
    lambda ws: ws.tags.apply_many(7, "a/b"),
    lambda ws: ws.tags.remove_many(7, "a/b"),
    lambda ws: ws.events.track_many(3),
    lambda ws: ws.orders.record_many(3),
    lambda ws: ws.referrals.import_bindings(3),
    lambda ws: ws.campaigns.create("x", channel="outbox", template="t", audience=[1], params=5),
])
def test_a_non_iterable_batch_is_refused(ws: siyu.Workspace, call: Callable[[siyu.Workspace], Any]) -> None:
    ws.users.add()
    with pytest.raises(siyu.errors.ValidationError):
        call(ws)


@pytest.mark.parametrize("call", [
    lambda ws, u: ws.users.add(source="\ud800"),
    lambda ws, u: ws.users.add(attributes={"city": "a\udfffb"}),
    lambda ws, u: ws.tags.apply(u, "interest/\ud800"),
    lambda ws, u: ws.points.earn(u, 1, reason="\ud800", key="k"),
    lambda ws, u: ws.points.earn(u, 1, reason="r", key="\ud800"),
    lambda ws, u: ws.events.track(u, "view", properties={"k": "\ud800"}),
    lambda ws, u: ws.campaigns.unsuppress(u, channel="\ud800"),
    lambda ws, u: ws.referrals.stats("\ud800"),
])
def test_a_lone_surrogate_is_refused_and_nothing_is_written(call: Callable[[siyu.Workspace, int], Any]) -> None:
    with seeded(FakeClock(START)) as ws:
        before = digest(ws)
        with pytest.raises(siyu.errors.ValidationError, match="surrogate"):
            call(ws, 1)
        assert digest(ws) == before


@pytest.mark.parametrize("plugins", [["no_such_module"], ["os.path:nope"], ["bad name"], 5, "siyu"])
def test_a_plugin_that_cannot_be_loaded_is_a_plugin_error(plugins: Any) -> None:
    with pytest.raises(siyu.errors.PluginError):
        siyu.connect("memory://", plugins=plugins)


@pytest.mark.parametrize("schema", ["pg_catalog", "PG_toast", "information_schema"])
def test_a_postgresql_system_schema_is_refused_before_connecting(schema: str) -> None:
    pytest.importorskip("psycopg")
    # Refused before any connection is made: the host does not exist.
    with pytest.raises(siyu.errors.ValidationError, match="system schemas"):
        siyu.connect(f"postgresql://nobody@192.0.2.1:1/x?schema={schema}")


@pytest.mark.parametrize("encoding", ["nonsense", "base64", "rot13"])
def test_import_with_an_unknown_encoding_says_so_in_one_line(tmp_path: Path, encoding: str) -> None:
    from click.testing import CliRunner

    from siyu.cli import cli

    csv = tmp_path / "users.csv"
    csv.write_text("phone\n13800138000\n")
    result = CliRunner().invoke(cli, ["--db", "memory://", "users", "import", str(csv), "--encoding", encoding])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: --encoding {encoding!r} is not a text encoding Python knows; use utf-8 (the default, utf-8-sig, "
        "also skips a BOM) or gb18030 for Excel exports"
    ]


@pytest.mark.parametrize("call", [
    lambda ws: ws.campaigns.send("camp1", batch=0),
    lambda ws: ws.campaigns.send("camp1", batch=1.5),
    lambda ws: ws.campaigns.send("camp1", variant=["A"]),
    lambda ws: ws.campaigns.rollout("camp1", batch=-1),
    lambda ws: ws.campaigns.rollout("camp1", variant={"A": 1}),
])
def test_a_refused_send_leaves_the_campaign_unlaunched(call: Callable[[siyu.Workspace], Any]) -> None:
    """The batch size was checked only after the launch had committed: the call failed,
    yet the campaign was launched and could not be sent again."""
    with seeded(FakeClock(START)) as ws:
        with pytest.raises(siyu.errors.ValidationError, match=r"batch|variant"):
            call(ws)
        assert not changed(ws)
        assert ws.campaigns.send("camp1").campaign_id  # still sendable
