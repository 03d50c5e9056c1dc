"""A simulated shop: the data behind ``siyu demo``.

:func:`build` walks a timeline of weeks (26 by default) with an injected
:class:`~siyu.testing.FakeClock`, so every record carries a believable
date: customers arrive from Douyin live streams, Taobao parcel cards, the
offline store, SMS recalls, WeCom QR codes and ads; they get channel
identities, consents, interest and industry tags, a lifecycle stage that
moves as they buy or fall asleep, and points that are earned, spent,
refunded and expire. Everything goes through the public API and its bulk
paths, and the same ``seed`` builds the same shop.

The build is the list :data:`STEPS` of ``(title, function)`` run in order;
each function takes the :class:`DemoShop` and may walk the timeline itself
with :meth:`DemoShop.weeks`. To extend the demo (orders, segments,
campaigns ...) append a step, and append a function returning a rich
renderable to :data:`REPORTS` to show what it built.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta
from rich.console import RenderableType
from rich.table import Table

from .analytics._time import AS_OF_SETTING
from .errors import InsufficientPoints
from .testing import FakeClock
from .workspace import Workspace

__all__ = ["DEMO_MARK", "REPORTS", "SOURCES", "STEPS", "DemoShop", "Person", "build"]

#: ``tx.meta`` setting that marks a database as a demo (safe to rebuild).
DEMO_MARK = "demo"

#: Where customers come from: (source, share, phone rate, WeCom rate, unionid rate).
SOURCES: list[tuple[str, float, float, float, float]] = [
    ("douyin_live", 0.28, 0.92, 0.35, 0.30),
    ("taobao_parcel_card", 0.20, 0.60, 0.85, 0.20),
    ("offline_store", 0.15, 1.00, 0.70, 0.40),
    ("wecom_qr", 0.17, 0.45, 1.00, 0.60),
    ("sms", 0.10, 1.00, 0.15, 0.10),
    ("ads", 0.10, 0.80, 0.25, 0.20),
]
_PHONE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "199",
]
_CITIES = ["上海", "北京", "杭州", "广州", "深圳", "成都", "南京", "武汉", "苏州", "西安"]
_INTERESTS = ["跑步", "护肤", "咖啡", "露营", "母婴", "宠物", "健身", "茶饮"]
_INDUSTRIES = ["互联网", "教育", "医疗", "金融", "制造", "零售", "自由职业"]
_STORES = ["store_sh_jingan", "store_sh_xuhui", "store_hz_xihu", "store_bj_sanlitun"]
_ID_CHARS = string.ascii_letters + string.digits


@attrs.define
class Person:
    """A simulated customer as the builder knows them (the database has the rest)."""

    id: int
    source: str
    joined: datetime
    #: How likely they are to come back in a given week (0..1).
    activity: float
    phone: bool
    wecom: bool


@attrs.define
class DemoShop:
    """The shop being built: workspace, clock, random source and what steps produced."""

    ws: Workspace
    clock: FakeClock
    rng: random.Random
    users: int
    start: datetime
    n_weeks: int = 26
    people: list[Person] = attrs.field(factory=list)
    #: ``(week index, user id, amount in yuan)`` for every simulated purchase.
    purchases: list[tuple[int, int, int]] = attrs.field(factory=list)
    #: Free-form results steps leave for reports (counts, ids ...).
    notes: dict[str, Any] = attrs.field(factory=dict)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(weeks=self.n_weeks)

    def weeks(self) -> Iterator[tuple[int, datetime, datetime]]:
        """``(index, week start, week end)``; sets the clock to each week's end."""
        for index in range(self.n_weeks):
            begin = self.start + timedelta(weeks=index)
            end = begin + timedelta(weeks=1) - timedelta(minutes=1)
            self.clock.set(end)
            yield index, begin, end

    def week_of(self, when: datetime) -> int:
        return int((when - self.start) / timedelta(weeks=1))


Step = Callable[[DemoShop], None]


# -- steps ----------------------------------------------------------------------------


def mark_demo(shop: DemoShop) -> None:
    """Mark the database first, so even a half-built demo may be rebuilt."""
    with shop.ws.write() as tx:
        tx.meta.set(DEMO_MARK, "1")


def define_tag_groups(shop: DemoShop) -> None:
    tags = shop.ws.tags
    tags.define_group(
        "lifecycle", exclusive=True, description="客户生命周期 (ws.lifecycle): 新加好友 → 有互动 → 有意向 → 已购 → 复购"
    )
    tags.define_group("value", exclusive=True, description="消费价值分层 (按累计消费)")
    tags.define_group("interest", description="兴趣偏好, 来自问卷和浏览")
    tags.define_group("industry", description="客户所在行业, 来自企微备注")


def _phone(rng: random.Random, used: set[str]) -> str:
    while True:
        number = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if number not in used:
            used.add(number)
            break
    # Real exports spell numbers many ways; siyu normalizes them all to E.164.
    style = rng.random()
    if style < 0.1:
        return f"+86 {number[:3]} {number[3:7]} {number[7:]}"
    if style < 0.2:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    return number


def _opaque(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choice(_ID_CHARS) for _ in range(length))


def _arrivals(shop: DemoShop) -> list[int]:
    """How many customers arrive each week: a growing trend with 618 and
    Qixi campaign spikes, summing to exactly ``shop.users``."""
    weights = []
    for index in range(shop.n_weeks):
        day = shop.start + timedelta(weeks=index)
        weight = 1.0 + index / shop.n_weeks
        if day.month == 6 and 8 <= day.day <= 20:
            weight *= 2.5
        if day.month == 8 and day.day <= 14:
            weight *= 1.6
        weights.append(weight)
    total = sum(weights)
    counts = [int(shop.users * w / total) for w in weights]
    counts[-1] += shop.users - sum(counts)
    return counts


def add_users(shop: DemoShop) -> None:
    """Customers with identities, source attribution and attributes, week by week."""
    rng, ws = shop.rng, shop.ws
    sources = [s[0] for s in SOURCES]
    shares = [s[1] for s in SOURCES]
    rates = {s[0]: s[2:] for s in SOURCES}
    used_phones: set[str] = set()
    arrivals = _arrivals(shop)
    for index, begin, _ in shop.weeks():
        rows: list[dict[str, Any]] = []
        meta: list[tuple[str, datetime, bool, bool]] = []
        for _ in range(arrivals[index]):
            source = rng.choices(sources, shares)[0]
            phone_rate, wecom_rate, unionid_rate = rates[source]
            joined = begin + timedelta(minutes=rng.randrange(7 * 24 * 60 - 2))
            row: dict[str, Any] = {"source": source, "created_at": joined}
            has_phone = rng.random() < phone_rate
            has_wecom = rng.random() < wecom_rate
            if has_phone:
                row["phone"] = _phone(rng, used_phones)
            if has_wecom:
                row["wecom_external_userid"] = _opaque(rng, "wm", 26)
            if rng.random() < unionid_rate or not (has_phone or has_wecom):
                row["wechat_unionid"] = _opaque(rng, "o", 27)
            if source == "ads" and rng.random() < 0.3:
                row["email"] = f"{rng.randrange(10**8, 10**10)}@qq.com"
            if source == "douyin_live":
                row["campaign"] = f"live_{joined:%Y%m%d}"
            elif source == "ads":
                row["campaign"] = "ads_618" if joined.month == 6 else "ads_always_on"
            elif source == "sms":
                row["campaign"] = f"sms_recall_{joined:%Y%m}"
            elif source == "offline_store":
                row["state"] = rng.choice(_STORES)
            elif source == "wecom_qr":
                row["state"] = rng.choice(["qr_parcel", "qr_store", "qr_live", "qr_official_account"])
            elif source == "taobao_parcel_card":
                row["campaign"] = "parcel_card_v2"
            row["attributes"] = {
                "city": rng.choice(_CITIES),
                "gender": rng.choice(["female", "female", "female", "male"]),
                "age_band": rng.choice(["18-24", "25-30", "31-40", "41-50", "50+"]),
            }
            rows.append(row)
            meta.append((source, joined, has_phone, has_wecom))
        if not rows:
            continue
        ids = ws.users.add_many(rows)
        for uid, (source, joined, has_phone, has_wecom) in zip(ids, meta, strict=True):
            activity = rng.betavariate(1.2, 4.0)
            if source in ("offline_store", "wecom_qr"):
                activity = min(1.0, activity * 1.4)
            shop.people.append(Person(uid, source, joined, activity, has_phone, has_wecom))


def record_consents(shop: DemoShop) -> None:
    """Marketing consent at sign-up (by channel); a few withdraw weeks later."""
    rng, ws = shop.rng, shop.ws
    with ws.write():
        for person in shop.people:
            if person.phone and rng.random() < 0.7:
                ws.users.consent(
                    person.id,
                    purpose="marketing",
                    channel="sms",
                    source=person.source,
                    notice_version="2026-04",
                    at=person.joined,
                )
                if rng.random() < 0.06:
                    later = person.joined + timedelta(days=rng.randrange(3, 90))
                    if later < shop.end:
                        ws.users.consent(
                            person.id,
                            purpose="marketing",
                            channel="sms",
                            granted=False,
                            source="sms_reply_TD",
                            at=later,
                        )
            if person.wecom:
                ws.users.consent(
                    person.id,
                    purpose="marketing",
                    channel="wecom",
                    source=person.source,
                    notice_version="2026-04",
                    at=person.joined,
                )


def profile_tags(shop: DemoShop) -> None:
    """Interest and industry tags in each customer's first week."""
    rng, ws = shop.rng, shop.ws
    by_week: dict[int, dict[str, list[int]]] = {}
    for person in shop.people:
        tags = by_week.setdefault(shop.week_of(person.joined), {})
        for interest in rng.sample(_INTERESTS, rng.choice([0, 1, 1, 2, 3])):
            tags.setdefault(f"interest/{interest}", []).append(person.id)
        if person.wecom and rng.random() < 0.5:
            tags.setdefault(f"industry/{rng.choice(_INDUSTRIES)}", []).append(person.id)
    for index, _, _ in shop.weeks():
        for tag, ids in sorted(by_week.get(index, {}).items()):
            ws.tags.apply_many(ids, tag, by="import:questionnaire")


def simulate_purchases(shop: DemoShop) -> None:
    """Plan who buys what each week (no writes; later steps turn it into data)."""
    rng = shop.rng
    for person in shop.people:
        first = shop.week_of(person.joined)
        for week in range(first, shop.n_weeks):
            # Interest fades with time since joining; loyal customers keep buying.
            chance = person.activity * (0.35 if week == first else 0.12) * (0.97 ** (week - first))
            if rng.random() < chance:
                shop.purchases.append((week, person.id, int(rng.lognormvariate(4.8, 0.7)) + 9))
    shop.purchases.sort()


def lifecycle_stages(shop: DemoShop) -> None:
    """The stage machine (``ws.lifecycle``) has already moved customers on their
    tracked events and orders. A sweep at the end of the simulated half year
    gives the remaining newcomers their ``new`` stage and marks who went
    dormant after 30 quiet days; a real shop runs the sweep nightly."""
    shop.clock.set(shop.end)
    shop.ws.lifecycle.sweep()


def points_ledger(shop: DemoShop) -> None:
    """Weekly sign-in points (expire after 90 days), purchase points (pending
    through the 7-day return window, expiring six months later), redemptions,
    a few refunds reversing purchase points, and the weekly expiry sweep."""
    rng, ws = shop.rng, shop.ws
    people = {p.id: p for p in shop.people}
    bought_in: dict[int, list[tuple[int, int]]] = {}
    for week, uid, amount in shop.purchases:
        bought_in.setdefault(week, []).append((uid, amount))
    purchase_entries: list[int] = []
    earned = spent = 0
    for index, begin, end in shop.weeks():
        with ws.write():
            rows: list[dict[str, Any]] = []
            for person in shop.people:
                if person.joined > begin or rng.random() > person.activity:
                    continue
                days = rng.randint(1, 7)
                rows.append(
                    {
                        "user_id": person.id,
                        "amount": 5 * days,
                        "reason": "sign_in",
                        "key": f"signin:{person.id}:{index}",
                        "expires_at": end + timedelta(days=90),
                    }
                )
            for number, (uid, amount) in enumerate(bought_in.get(index, [])):
                bought = max(begin, people[uid].joined) + timedelta(hours=rng.randrange(1, 72))
                bought = min(bought, end - timedelta(minutes=1))
                rows.append(
                    {
                        "user_id": uid,
                        "amount": amount,
                        "reason": "purchase",
                        "key": f"order:{index}:{number}:{uid}",
                        "available_at": bought + timedelta(days=7),
                        "expires_at": bought + relativedelta(months=6),
                    }
                )
            # Refunds: a few earlier purchases are returned and their points taken back.
            for entry_id in [e for e in purchase_entries if rng.random() < 0.004]:
                purchase_entries.remove(entry_id)
                try:
                    ws.points.reverse(entry_id, key=f"refund:{entry_id}", reason="refund")
                except InsufficientPoints:
                    continue  # already spent elsewhere: the shop eats the loss, as real shops do
            ids = ws.points.earn_many(rows)
            earned += sum(r["amount"] for r in rows)
            purchase_entries.extend(i for i, r in zip(ids, rows, strict=True) if r["reason"] == "purchase")

            spends: list[dict[str, Any]] = []
            for person in rng.sample(shop.people, k=min(len(shop.people), max(1, len(shop.people) // 12))):
                if person.joined > begin:
                    continue
                balance = ws.points.balance(person.id)
                options = [cost for cost in (100, 200, 500, 1000) if cost <= balance]
                if options and rng.random() < 0.6:
                    cost = rng.choice(options)
                    spends.append(
                        {
                            "user_id": person.id,
                            "amount": cost,
                            "reason": f"redeem:coupon_{cost // 10}",
                            "key": f"redeem:{person.id}:{index}",
                        }
                    )
            ws.points.spend_many(spends)
            spent += sum(s["amount"] for s in spends)
        ws.points.expire_due()
    shop.notes["points"] = {"earned": earned, "spent": spent}


def value_tiers(shop: DemoShop) -> None:
    """High / mid / low value tiers from each buyer's total spend, at the end."""
    totals: Counter[int] = Counter()
    for _, uid, amount in shop.purchases:
        totals[uid] += amount
    tiers: dict[str, list[int]] = {"value/高": [], "value/中": [], "value/低": []}
    for uid, total in totals.items():
        tiers["value/高" if total >= 800 else "value/中" if total >= 300 else "value/低"].append(uid)
    shop.clock.set(shop.end)
    with shop.ws.write():
        for tag, ids in tiers.items():
            if ids:
                shop.ws.tags.apply_many(ids, tag, by="rule:value")


#: What the shop sells in the demo: (sku, title, list price, cost, role).
_CATALOG = [
    ("TEA-SAMPLE", "试饮装", "9.90", "4", "traffic"),
    ("TEA-GIFT", "节日礼盒", "199", "60", "profit"),
    ("TEA-DAILY", "口粮茶", "89", "25", "profit"),
]
#: Where people from each source tend to pay.
_ORDER_CHANNELS = {
    "douyin_live": ["douyin_shop", "douyin_shop", "mini_program"],
    "taobao_parcel_card": ["taobao", "mini_program"],
    "offline_store": ["offline_store", "mini_program"],
    "wecom_qr": ["mini_program", "mini_program", "offline_store"],
    "sms": ["mini_program", "taobao"],
    "ads": ["mini_program"],
}


def invitations(shop: DemoShop) -> None:
    """Old-brings-new (老带新): earlier customers share posters (each share
    recorded), friends scan them (each scan recorded), and some later arrivals
    from WeCom QR codes and live streams bind through the code they scanned,
    on the day they joined. Many posters bring nobody; a few bring several."""
    rng, ws = shop.rng, shop.ws
    invited: dict[int, list[Person]] = {}
    earlier: list[Person] = []
    for person in sorted(shop.people, key=lambda p: p.joined):
        if earlier and person.source in ("wecom_qr", "douyin_live") and rng.random() < 0.35:
            invited.setdefault(rng.choice(earlier[-400:]).id, []).append(person)
        earlier.append(person)
    people = {p.id: p for p in shop.people}
    # Sharers whose posters brought no one.
    idle = [p.id for p in rng.sample(earlier, k=min(len(earlier), len(invited) // 2)) if p.id not in invited]
    # In time order, so every share and scan happens before the binding it leads to.
    plan = sorted([(min(p.joined for p in friends), uid) for uid, friends in invited.items()]
                  + [(people[uid].joined + timedelta(days=rng.randrange(0, 14)), uid) for uid in idle])
    bound = 0
    for first, inviter_id in plan:
        friends = invited.get(inviter_id, [])
        shop.clock.set(max(people[inviter_id].joined, first - timedelta(hours=rng.randrange(1, 48))))
        code = ws.referrals.invite_code(inviter_id, campaign="demo_invite", channel_state="poster")
        # A poster goes to a handful of friends; some scan it, fewer join through it.
        scans = len(friends) + rng.choice([0, 0, 1, 2]) if friends else rng.choice([0, 0, 1])
        ws.referrals.record_share(inviter_id, campaign="demo_invite", channel_state="poster",
                                  count=max(scans, 1) + rng.randrange(0, 5))
        for _ in range(scans):
            ws.referrals.record_scan(code)
        for friend in friends:
            shop.clock.set(friend.joined)
            ws.referrals.bind(friend.id, code)
            bound += 1
    shop.clock.set(shop.end)
    shop.notes["invitations"] = bound


def behaviour_events(shop: DemoShop) -> None:
    """Page and product views, shares and cart adds, week by week, through
    ``ws.events.track_many`` with idempotency keys (a re-run adds nothing)."""
    rng, ws = shop.rng, shop.ws
    kinds = ["page_view", "page_view", "product_view", "product_view", "share", "added_to_cart"]
    total = 0
    for index, begin, end in shop.weeks():
        rows: list[dict[str, Any]] = []
        for person in shop.people:
            age = index - shop.week_of(person.joined)
            # Most activity comes in the first weeks; loyal customers keep coming back.
            if person.joined > end or rng.random() > person.activity * (1.0 if age == 0 else 0.7 * 0.92 ** age):
                continue
            start = max(begin, person.joined)
            for number in range(rng.randint(1, 3)):
                at = start + (end - start) * rng.random()
                rows.append({"user_id": person.id, "kind": rng.choice(kinds), "at": at,
                             "key": f"demo:event:{person.id}:{index}:{number}"})
        total += ws.events.track_many(rows)
    shop.notes["events"] = total


def real_orders(shop: DemoShop) -> None:
    """The purchase plan as real orders (``ws.orders.record_many``), with a few
    refunds, so the analytics reports have orders, channels and money."""
    rng, ws = shop.rng, shop.ws
    shop.clock.set(shop.start)
    for sku, title, price, cost, role in _CATALOG:
        ws.products.add(sku, title, price=price, cost=cost, role=role)
    # The points-ledger step already pays purchase points from the plan.
    ws.points_rules.configure("purchase", points_per_yuan=0)
    people = {p.id: p for p in shop.people}
    by_week: dict[int, list[tuple[int, int]]] = {}
    for week, uid, amount in shop.purchases:
        by_week.setdefault(week, []).append((uid, amount))
    recorded: list[int] = []
    for index, begin, end in shop.weeks():
        rows = []
        for number, (uid, amount) in enumerate(by_week.get(index, [])):
            person = people[uid]
            paid = min(max(begin, person.joined) + timedelta(hours=rng.randrange(1, 72)), end - timedelta(minutes=1))
            sku = "TEA-SAMPLE" if amount < 30 else "TEA-GIFT" if amount >= 180 else "TEA-DAILY"
            rows.append({"user_id": uid, "paid_at": paid, "channel": rng.choice(_ORDER_CHANNELS[person.source]),
                         "lines": [{"sku": sku, "qty": 1, "unit_price": str(amount)}],
                         "key": f"demo:order:{index}:{number}"})
        recorded.extend(ws.orders.record_many(rows))
        for order_id in [o for o in recorded if rng.random() < 0.003]:
            recorded.remove(order_id)
            ws.orders.refund(order_id, None if rng.random() < 0.7 else "5", key=f"demo:refund:{order_id}")
    shop.notes["orders"] = len(shop.purchases)


#: The build, in order. Append ``(title, function)`` to extend the demo.
STEPS: list[tuple[str, Step]] = [
    ("mark the database as a demo", mark_demo),
    ("tag groups", define_tag_groups),
    ("customers from six sources", add_users),
    ("consents", record_consents),
    ("interest and industry tags", profile_tags),
    ("purchase plan", simulate_purchases),
    ("invitations", invitations),
    ("behaviour events", behaviour_events),
    ("orders and refunds", real_orders),
    ("points ledger", points_ledger),
    ("value tiers", value_tiers),
    ("lifecycle stages", lifecycle_stages),
]


def build(
    ws: Workspace,
    clock: FakeClock,
    *,
    users: int = 5000,
    seed: int = 2026,
    start: datetime | None = None,
    weeks: int = 26,
    on_step: Callable[[str], None] | None = None,
) -> DemoShop:
    """Build the demo shop into ``ws`` (which must use ``clock``).

    ``on_step`` is called with each step's title before it runs (for progress
    output). Returns the :class:`DemoShop`, for :data:`REPORTS`. The end of
    the simulated history is stored in the database: ``ws.analytics`` reports
    on it end there by default (:meth:`~siyu.analytics.Analytics.as_of`).
    """
    if start is None:
        start = datetime(2026, 5, 4, 0, 0, tzinfo=ws.tz)
    shop = DemoShop(ws=ws, clock=clock, rng=random.Random(seed), users=users, start=start, n_weeks=weeks)
    clock.set(start)
    for title, step in STEPS:
        if on_step is not None:
            on_step(title)
        step(shop)
    clock.set(shop.end)
    # The history ends here, whenever someone opens the database later: reports default to this instant.
    with ws.write() as tx:
        tx.meta.set(AS_OF_SETTING, shop.end.isoformat())
    return shop


# -- reports ---------------------------------------------------------------------------


def users_report(shop: DemoShop) -> RenderableType:
    ws = shop.ws
    rows: dict[str, Counter[str]] = {}
    with ws.read():
        for uid in ws.users.ids():
            user = ws.users.get(uid)
            count = rows.setdefault(user.source or "(none)", Counter())
            count["users"] += 1
            kinds = {i.kind for i in user.identities}
            count["phone"] += "phone" in kinds
            count["wecom"] += "wecom_external_userid" in kinds
            count["unionid"] += "wechat_unionid" in kinds
            count["consent"] += ws.users.has_consent(uid, purpose="marketing", channel="sms")
    total = sum(c["users"] for c in rows.values())
    table = Table(title=f"users per source ({total} users)", title_justify="left")
    for column in ("source", "users", "share", "with phone", "on WeCom", "with unionid", "SMS consent"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, count in sorted(rows.items(), key=lambda item: -item[1]["users"]):
        table.add_row(
            source,
            str(count["users"]),
            f"{count['users'] / total:.0%}",
            str(count["phone"]),
            str(count["wecom"]),
            str(count["unionid"]),
            str(count["consent"]),
        )
    return table


def tags_report(shop: DemoShop) -> RenderableType:
    ws = shop.ws
    table = Table(title="tags per group", title_justify="left")
    table.add_column("group")
    table.add_column("exclusive")
    table.add_column("tag")
    table.add_column("users", justify="right")
    with ws.read():
        for group in ws.tags.groups():
            names = ws.tags.names(group.name)
            for number, tag in enumerate(names):
                table.add_row(
                    group.name if number == 0 else "",
                    ("yes" if group.exclusive else "no") if number == 0 else "",
                    tag.split("/", 1)[1],
                    str(len(ws.tags.users(tag))),
                )
    return table


_BUCKETS = [(0, 0), (1, 99), (100, 499), (500, 999), (1000, 4999), (5000, None)]


def points_report(shop: DemoShop) -> RenderableType:
    ws = shop.ws
    totals: Counter[str] = Counter()
    buckets: Counter[int] = Counter()
    with ws.read():
        for uid in ws.users.ids():
            for entry in ws.points.history(uid):
                totals[entry.kind] += entry.amount
                totals[f"n_{entry.kind}"] += 1
            balance = ws.points.balance(uid)
            totals["balance"] += balance
            totals["pending"] += ws.points.pending(uid)
            for number, (low, high) in enumerate(_BUCKETS):
                if balance >= low and (high is None or balance <= high):
                    buckets[number] += 1
    summary = Table(title="points ledger", title_justify="left")
    summary.add_column("", style="bold")
    summary.add_column("entries", justify="right")
    summary.add_column("points", justify="right")
    for kind, label in (("earn", "issued"), ("spend", "spent"), ("expire", "expired"), ("reverse", "refunded")):
        summary.add_row(label, str(totals[f"n_{kind}"]), f"{abs(totals[kind]):,}")
    summary.add_row("available now", "", f"{totals['balance']:,}")
    summary.add_row("pending (return window)", "", f"{totals['pending']:,}")
    users = sum(buckets.values()) or 1
    spread = Table(title="balance distribution", title_justify="left")
    spread.add_column("balance")
    spread.add_column("users", justify="right")
    spread.add_column("share", justify="right")
    for number, (low, high) in enumerate(_BUCKETS):
        label = "0" if high == 0 else f"{low}+" if high is None else f"{low}-{high}"
        spread.add_row(label, str(buckets[number]), f"{buckets[number] / users:.0%}")
    grid = Table.grid(padding=(0, 4))
    grid.add_row(summary, spread)
    return grid


def funnel_report(shop: DemoShop) -> RenderableType:
    """The AARRR funnel of the whole shop (``ws.analytics.funnel``)."""
    return shop.ws.analytics.funnel(until=shop.end).to_rich()


def cohort_report(shop: DemoShop) -> RenderableType:
    """Weekly retention of the last 12 weekly cohorts (``ws.analytics.cohorts``)."""
    return shop.ws.analytics.cohorts("week", "active", until=shop.end).to_rich()


#: What ``siyu demo`` prints after building, in order. Append to extend.
REPORTS: list[Callable[[DemoShop], RenderableType]] = [
    users_report, tags_report, points_report, funnel_report, cohort_report,
]
