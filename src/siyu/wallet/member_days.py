"""Member days (会员日): a weekday or a day of the month with member benefits.

A member day gives a points multiplier on purchases (for the tiers it names)
and, optionally, member-day prices: :meth:`MemberDays.schedule` creates one
activity price per coming occurrence through ``ws.promotions.activity``, so
every member-day price passes the margin guard and stacks with coupons by the
configured stacking groups, like any activity. Days are business-time-zone days.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import start_of_day
from .._validation import check_int, check_text
from ..errors import NotFound, ValidationError
from ..models.commerce import Activity
from ..money import to_yuan

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.points_rules import RuleContext
    from ..services.promotions import Promotions
    from ..storage.base import Transaction

__all__ = ["MemberDay", "MemberDays"]

_SETTINGS = "member_days"


@attrs.frozen(kw_only=True)
class MemberDay:
    """Every ``weekday`` (0 = Monday ... 6 = Sunday) or every ``monthday`` of the month.

    ``points_multiplier`` applies to purchase points for members in ``tiers``
    (empty: every member). ``price_percent`` (e.g. 88 for 12 % off) with ``skus``
    sets member-day activity prices; ``group`` is their stacking group."""

    name: str
    weekday: int | None = None
    monthday: int | None = None
    points_multiplier: Decimal = Decimal(1)
    tiers: tuple[str, ...] = ()
    price_percent: int | None = None
    skus: tuple[str, ...] = ()
    group: str = "member_day"

    def falls_on(self, day: date) -> bool:
        if self.weekday is not None:
            return day.weekday() == self.weekday
        return day.day == self.monthday


class MemberDays:
    """``ws.member_days``: define member days, their points boost and their prices."""

    name = "member_days"

    def __init__(self, uow: UnitOfWork, *, promotions: Promotions) -> None:
        self._uow = uow
        self._promotions = promotions

    @staticmethod
    def _load(tx: Transaction) -> list[MemberDay]:
        raw = tx.meta.get(_SETTINGS)
        days = []
        for item in json.loads(raw) if raw else []:
            item["points_multiplier"] = Decimal(item["points_multiplier"])
            item["tiers"], item["skus"] = tuple(item["tiers"]), tuple(item["skus"])
            days.append(MemberDay(**item))
        return days

    def add(self, name: str, *, weekday: int | None = None, monthday: int | None = None,
            points_multiplier: Decimal | int | str = 1, tiers: Iterable[str] = (), price_percent: int | None = None,
            skus: Iterable[str] = (), group: str = "member_day") -> MemberDay:
        """Define a member day: ``weekday=2`` (every Wednesday) or ``monthday=8``."""
        if (weekday is None) == (monthday is None):
            raise ValidationError("give weekday= (0 = Monday) or monthday=, exactly one")
        if isinstance(points_multiplier, float) or Decimal(str(points_multiplier)) < 1:
            raise ValidationError(f"points_multiplier must be a Decimal >= 1, got {points_multiplier!r}")
        day = MemberDay(
            name=check_text(name, "name", max_length=48),
            weekday=None if weekday is None else check_int(weekday, "weekday", minimum=0, maximum=6),
            monthday=None if monthday is None else check_int(monthday, "monthday", minimum=1, maximum=28),
            points_multiplier=Decimal(str(points_multiplier)), tiers=tuple(sorted(tiers)),
            price_percent=None if price_percent is None else check_int(price_percent, "price_percent", minimum=1,
                                                                       maximum=99),
            skus=tuple(sorted(skus)), group=check_text(group, "group", max_length=32))
        if day.price_percent is not None and not day.skus:
            raise ValidationError("member-day prices need skus=[...] (the products they apply to)")
        with self._uow.write() as tx:
            days = self._load(tx)
            if any(d.name == day.name for d in days):
                raise ValidationError(f"a member day named {day.name!r} exists")
            days.append(day)
            tx.meta.set(_SETTINGS, json.dumps([_dump(d) for d in days], sort_keys=True))
        return day

    def all(self) -> list[MemberDay]:
        with self._uow.read() as tx:
            return self._load(tx)

    def today(self) -> list[MemberDay]:
        """The member days that fall on today (business time zone)."""
        today = self._uow.today()
        return [d for d in self.all() if d.falls_on(today)]

    def schedule(self, name: str, *, weeks: int = 4) -> list[Activity]:
        """Create the member-day activity prices for the occurrences in the next
        ``weeks`` weeks that do not have them yet; each passes the margin guard
        (:class:`~siyu.errors.MarginViolation` and nothing created otherwise)."""
        weeks = check_int(weeks, "weeks", minimum=1, maximum=26)
        found = [d for d in self.all() if d.name == name]
        if not found:
            raise NotFound(f"no member day named {name!r}")
        day = found[0]
        if day.price_percent is None:
            raise ValidationError(f"member day {name!r} has no price_percent; it only boosts points")
        existing = {a.name for a in self._promotions.activities()}
        today = self._uow.today()
        with self._uow.read() as tx:
            prices = {sku: self._price(tx, sku, day.price_percent) for sku in day.skus}
        created = []
        for n in range(weeks * 7):
            when = today + timedelta(days=n)
            label = f"{day.name} {when.isoformat()}"
            if not day.falls_on(when) or label in existing:
                continue
            created.append(self._promotions.activity(
                label, prices, starts_at=start_of_day(when, self._uow.tz),
                ends_at=start_of_day(when + timedelta(days=1), self._uow.tz), group=day.group))
        return created

    @staticmethod
    def _price(tx: Transaction, sku: str, percent: int) -> Decimal:
        product = tx.products.get_many([sku]).get(sku)
        if product is None:
            raise NotFound(f"no product {sku!r}")
        fen = int((Decimal(product.price_fen) * percent / 100).to_integral_value(ROUND_HALF_UP))
        return to_yuan(fen)

    def boost(self, ctx: RuleContext, rule: str) -> Decimal:
        """The member-day multiplier on purchase points today for this member's tier."""
        if rule != "purchase":
            return Decimal(1)
        best = Decimal(1)
        for day in self._load(ctx.tx):
            if not day.falls_on(ctx.today):
                continue
            if day.tiers and (ctx.tier is None or ctx.tier.name not in day.tiers):
                continue
            best = max(best, day.points_multiplier)
        return best


def _dump(day: MemberDay) -> Mapping[str, Any]:
    data = attrs.asdict(day)
    data["points_multiplier"] = str(day.points_multiplier)
    data["tiers"], data["skus"] = list(day.tiers), list(day.skus)
    return data
