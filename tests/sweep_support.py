"""What the bad-input sweep and the merged-user probe share: a seeded workspace
copied per example, a hash of every table, the public service methods found by
walking the workspace, and values that pass validation, by parameter name."""

from __future__ import annotations

import hashlib
import inspect
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import hypothesis.strategies as st

import siyu
from siyu.models.referrals import Reward
from siyu.testing import FakeClock

START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

#: Hostile values, by what they attack.
SURROGATES = ["\ud800", "a\udfffb", ["\ud800"], {"k": "\ud800"}, {"\ud800": 1}, [{"user_id": 1, "kind": "\ud800"}]]
NON_ITERABLES = [5, 1.5, 7, True, object()]
HUGE = [2**63, 2**64 + 1, -(2**63) - 1, 10**40, float("inf"), float("nan"), -1e308, Decimal("1e40"),
        Decimal("NaN"), Decimal("-Infinity")]
CONTROL = ["\x00", "a\x1fb", "line\nbreak", "\x7f\x1b[31m", "\u2028", " ", ""]
WRONG_TYPES = [None, b"bytes", bytearray(b"x"), [], {}, (), {1, 2}, datetime(2026, 1, 1), date(2026, 1, 1),
               timedelta(days=-1), timedelta(0), Decimal("-1"), -1, 0, "x" * 5000, [None], [[]], [{}], {"": None},
               {"user_id": "1"}, 1j, "1"]
HOSTILE = SURROGATES + NON_ITERABLES + HUGE + CONTROL + WRONG_TYPES


class Seed:
    """Ids of the things the seeded workspace holds."""

    users: list[int]
    merge_id: int
    erased: int
    order_id: int
    code: str
    coupon: str
    group_id: int
    snapshot_id: int
    entry_id: int


SEED = Seed()


def _populate(ws: siyu.Workspace) -> None:
    a = ws.users.add(phone="13800138000", attributes={"city": "杭州"}, source="douyin").id
    b = ws.users.add(email="b@example.com").id
    c = ws.users.add(wechat_unionid="union-c").id
    d = ws.users.add().id
    for uid in (a, b, c):
        ws.users.consent(uid, purpose="marketing")
    ws.tags.apply_many([a, b], "seed/tag")
    ws.tags.define_group("stage", exclusive=True)
    SEED.entry_id = ws.points.earn(a, 50, reason="seed", key="seed").id
    ws.products.add("sku1", "Tea", price=Decimal("39.90"), cost=Decimal("10"))
    ws.tiers.define("gold", 100)
    ws.coupons.create("c1", amount=Decimal("5"), threshold=Decimal("20"))
    SEED.coupon = ws.coupons.issue("c1", a)[0].code
    SEED.order_id = ws.orders.record(a, [{"sku": "sku1", "qty": 1}], key="o1").id
    ws.events.track(a, "page_view", properties={"page": "home"})
    ws.referrals.campaign("rc")
    SEED.code = ws.referrals.invite_code(a, campaign="rc")
    ws.referrals.tasks.create("t1", campaign="rc", stages=[(1, Reward.of_points(10))],
                              deadline=START + timedelta(days=30))
    SEED.group_id = ws.referrals.group_buys.open(a, sku="sku1", size=2, price=Decimal("20")).id
    ws.segments.save("seg1", "tag:seed/tag")
    SEED.snapshot_id = ws.segments.snapshot("seg1").id
    ws.campaigns.create("camp1", channel="outbox", template="hi ${name}", audience=[a, b],
                        variants={"A": {"name": "x"}})
    SEED.merge_id = ws.users.merge(keep=c, drop=d).id
    # A fifth user, erased: not in SEED.users, so the sweeps do not pick it by default.
    e = ws.users.add(phone="13700137000", attributes={"city": "苏州"}).id
    ws.points.earn(e, 5, reason="seed", key="seed-e")
    ws.privacy.erase(e, reason="seed")
    SEED.erased = e
    SEED.users = [a, b, c, d]


_TEMPLATE: sqlite3.Connection | None = None
_PRISTINE: dict[str, str] = {}


def seeded(clock: FakeClock) -> siyu.Workspace:
    """A fresh workspace holding the seed (built once, then copied byte for byte).

    Third-party plugins are not loaded: scanning the installed packages' entry points
    would be most of the cost of each example, and the sweep is about siyu's own API."""
    global _TEMPLATE
    saved = os.environ.get("SIYU_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["SIYU_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        ws = siyu.connect("memory://", clock=clock)
    finally:
        if saved is None:
            del os.environ["SIYU_DISABLE_PLUGIN_AUTOLOAD"]
        else:
            os.environ["SIYU_DISABLE_PLUGIN_AUTOLOAD"] = saved
    if _TEMPLATE is None:
        _populate(ws)
        _TEMPLATE = sqlite3.connect(":memory:", check_same_thread=False)
        ws.backend._conn.backup(_TEMPLATE)  # type: ignore[attr-defined]
        _PRISTINE.update(digest(ws))
    else:
        _TEMPLATE.backup(ws.backend._conn)  # type: ignore[attr-defined]
    ws.backend._sweep_changes = ws.backend._conn.total_changes  # type: ignore[attr-defined]
    return ws


def changed(ws: siyu.Workspace) -> bool:
    """Whether storage differs from the seed. SQLite's change counter says "nothing was
    written" for free; only when something was written (perhaps rolled back) are the
    tables hashed and compared."""
    if ws.backend._conn.total_changes == ws.backend._sweep_changes:  # type: ignore[attr-defined]
        return False
    return digest(ws) != _PRISTINE


def digest(ws: siyu.Workspace) -> dict[str, str]:
    """One hash per table, over every row."""
    out = {}
    with ws.read() as tx:
        names = [r[0] for r in tx.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for name in names:
            rows = sorted(repr(r) for r in tx.execute(f'SELECT * FROM "{name}"'))
            out[name] = hashlib.sha256("\n".join(rows).encode("utf-8", "surrogatepass")).hexdigest()
    return out


# -- the methods ---------------------------------------------------------------------------

#: Workspace attributes that are plumbing, not services.
_NOT_SERVICES = {"backend", "backends", "channel_classes", "clock", "hooks", "pm", "tz", "url", "observer_errors"}


def _walk(obj: Any, path: str, found: dict[str, Callable[..., Any]], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for name in dir(type(obj)):
        if name.startswith("_") or isinstance(inspect.getattr_static(type(obj), name), property):
            continue
        member = getattr(obj, name)
        if not inspect.ismethod(member):
            continue
        params = list(inspect.signature(member).parameters)
        # Plumbing for domains and plugins, called with an open transaction (merge
        # participants, pricing steps) or by pluggy (hook implementations).
        if (params and params[0] == "tx") or name.startswith("siyu_on_"):
            continue
        found[f"{path}.{name}"] = member
    for name, value in vars(obj).items():
        if not name.startswith("_") and type(value).__module__.startswith("siyu."):
            _walk(value, f"{path}.{name}", found, seen)


def public_methods(ws: siyu.Workspace) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    seen: set[int] = set()
    for name, value in vars(ws).items():
        if name.startswith("_") or name in _NOT_SERVICES or not type(value).__module__.startswith("siyu."):
            continue
        _walk(value, name, found, seen)
    return found


def resolve(ws: siyu.Workspace, name: str) -> Callable[..., Any]:
    target: Any = ws
    for part in name.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


with siyu.connect("memory://") as _ws:
    METHODS = sorted(public_methods(_ws))
    SIGNATURES = {name: inspect.signature(method) for name, method in public_methods(_ws).items()}


# -- values that pass validation, by parameter name ------------------------------------------------


#: Parameters that name a user.
USER_PARAMS = ("user_id", "keep", "drop", "invitee_id", "inviter_id", "leader_id", "distributor_id", "to")


def valid_values(param: str) -> list[Any]:
    """Values of a parameter that pass validation, the likeliest to succeed first."""
    if param in USER_PARAMS:
        return list(SEED.users)
    by_name: dict[str, list[Any]] = {
        "user_ids": [SEED.users[:2]],
        "tag": ["seed/tag", "interest/yoga", "stage/new"], "tags": [["seed/tag"]],
        "key": ["k1", "k2", "seed", "o1"], "amount": [1, 5, Decimal("1.00")],
        "reason": ["because"], "purpose": ["marketing"], "kind": ["page_view"], "action": ["followed"],
        "name": ["seg1", "c1", "camp1", "rc", "t1", "gold", "n-new"], "goal": ["order"],
        "campaign": ["camp1", "rc", 1], "template": ["c1", "hi"], "code": [SEED.code, SEED.coupon],
        "sku": ["sku1"], "expression": ["tag:seed/tag", "source = 'douyin'"],
        "merge_id": [SEED.merge_id], "order_id": [SEED.order_id], "entry_id": [SEED.entry_id],
        "group_id": [SEED.group_id], "snapshot_id": [SEED.snapshot_id], "hold_id": [1],
        "task": ["t1", 1], "channel": ["outbox", "*", "sms"],
        "lines": [[{"sku": "sku1", "qty": 1}]], "cart": [[{"sku": "sku1", "qty": 1}]],
        "price": [Decimal("9.90")], "cost": [Decimal("1")], "title": ["Tea"],
        "at": [START], "since": [START - timedelta(days=7)], "until": [START],
        "within": [timedelta(days=3)], "expires_in": [timedelta(hours=1)],
        "value": ["13900139000"], "attributes": [{"city": "上海"}],
        "properties": [{"page": "x"}], "size": [2], "threshold": [10],
        "rows": [[{"user_id": SEED.users[0], "amount": 1, "reason": "r", "key": "k3", "kind": "x"}]],
    }
    return by_name.get(param, ["outbox", 1, "x", None, True])


def plausible(param: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(valid_values(param))


hostile = st.sampled_from(HOSTILE)
