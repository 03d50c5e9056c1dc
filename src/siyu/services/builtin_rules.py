"""The built-in points rules, registered through ``siyu_points_rules`` like any plugin's.

- ``purchase``: N points per yuan paid, per product role (traffic items earn
  none by default), times the tier's points multiplier.
- ``signin``: a daily sign-in (day boundaries in the business time zone) with
  streak bonuses.
- ``invite``: a fixed reward for inviting a friend (the referral engine calls
  ``ws.points_rules.award("invite", inviter_id, key=...)``).
- ``recharge``: N points per yuan topped up (``amount=`` in the context).
- ``birthday``: a yearly gift plus the tier's ``birthday_bonus``.

Change their parameters with ``ws.points_rules.configure(name, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import attrs

from ..errors import ValidationError
from ..hookspecs import hookimpl
from ..money import to_fen
from .points_rules import Expiry, PointsRules, RuleContext

__all__ = ["BirthdayRule", "InviteRule", "PurchaseRule", "RechargeRule", "SignInRule"]

_DEFAULT_ROLE_RATES: Mapping[str, Decimal] = {"traffic": Decimal(0)}


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(ROUND_FLOOR))


@attrs.frozen(kw_only=True)
class PurchaseRule:
    """``points_per_yuan`` on the paid amount of each line; ``role_rates`` overrides
    the rate for a role (``{"traffic": 0}`` by default: 引流品 earn nothing).
    The context carries ``lines``: ``OrderLineInfo`` (or dicts with ``paid_fen``, ``role``)."""

    name: str = "purchase"
    points_per_yuan: Decimal = Decimal(1)
    role_rates: Mapping[str, Decimal] = attrs.field(factory=lambda: dict(_DEFAULT_ROLE_RATES))
    expiry: Expiry = attrs.field(factory=Expiry.never)
    tier_multiplier: bool = True
    reason: str = "purchase"

    def line_points(self, ctx: RuleContext) -> list[Decimal]:
        """What each line is worth before rounding (how a refund splits the order's points)."""
        out = []
        for line in ctx.context.get("lines", ()):
            paid = line["paid_fen"] if isinstance(line, Mapping) else line.paid_fen
            role = line["role"] if isinstance(line, Mapping) else line.role
            rate = Decimal(str(self.role_rates.get(str(role), self.points_per_yuan)))
            out.append(Decimal(paid) * rate / 100)
        return out

    def points(self, ctx: RuleContext) -> int:
        return _floor(sum(self.line_points(ctx), Decimal(0)))


_SIGN_MODES = ("rolling", "week", "month")


def _sign_mode(instance: object, attribute: object, value: str) -> None:
    if value not in _SIGN_MODES:
        raise ValidationError(f"sign-in mode={value!r} is not one of {', '.join(_SIGN_MODES)}")


def _non_negative(instance: object, attribute: Any, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValidationError(f"sign-in {attribute.name} must be an int >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class SignInRule:
    """``base`` points a day; ``streak_bonus`` maps a streak length to extra
    points on that day (``{7: 20}``: +20 on the 7th day in a row).

    ``mode`` says when a streak starts again: ``"rolling"`` (after ``cycle``
    days, if set: a 7-day card), ``"week"`` (every Monday) or ``"month"``
    (every 1st). ``cumulative`` maps a count of signs in the period (the week,
    or the month for the other modes) to extra points granted once, on that
    sign (``{20: 100}``: +100 on the 20th sign of the month). ``makeup_limit``
    make-up signs (补签) per period are allowed, each costing ``makeup_cost``
    points and earning only ``base``. ``budget``: the most sign-in points ever
    granted; once spent, signs are recorded but earn nothing."""

    name: str = "signin"
    base: int = attrs.field(default=5, validator=_non_negative)
    streak_bonus: Mapping[int, int] = attrs.field(factory=lambda: {3: 5, 7: 20})
    cycle: int | None = 7
    mode: str = attrs.field(default="rolling", validator=_sign_mode)
    cumulative: Mapping[int, int] = attrs.field(factory=dict)
    makeup_limit: int = attrs.field(default=0, validator=_non_negative)
    makeup_cost: int = attrs.field(default=0, validator=_non_negative)
    budget: int | None = attrs.field(default=None, validator=_non_negative)
    expiry: Expiry = attrs.field(factory=Expiry.never)
    tier_multiplier: bool = False
    reason: str = "signin"

    def default_key(self, ctx: RuleContext) -> str:
        return f"signin:{ctx.user_id}:{ctx.today}"

    def period_start(self, day: date) -> date:
        """The first day of the period ``day`` is in: where streaks (week and month
        modes) and cumulative counts start again."""
        if self.mode == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def streak_day(self, ctx: RuleContext, day: date) -> int:
        """Which day of the streak a sign on ``day`` is (1 after a gap or a reset)."""
        since = self.period_start(day) if self.mode != "rolling" else None
        streak = PointsRules.streak(ctx.tx, ctx.user_id, day - timedelta(days=1), since=since) + 1
        if self.mode == "rolling" and self.cycle:
            streak = (streak - 1) % self.cycle + 1
        return streak

    def points(self, ctx: RuleContext) -> int:
        return self.base + self.streak_bonus.get(self.streak_day(ctx, ctx.today), 0)


@attrs.frozen(kw_only=True)
class InviteRule:
    """``points`` for a friend invited (call with ``key`` naming the invitee)."""

    name: str = "invite"
    points_each: int = 50
    expiry: Expiry = attrs.field(factory=Expiry.never)
    tier_multiplier: bool = False
    reason: str = "invite"

    def points(self, ctx: RuleContext) -> int:
        return self.points_each


@attrs.frozen(kw_only=True)
class RechargeRule:
    """``points_per_yuan`` of a top-up; the context carries ``amount`` (yuan)."""

    name: str = "recharge"
    points_per_yuan: Decimal = Decimal(1)
    expiry: Expiry = attrs.field(factory=Expiry.never)
    tier_multiplier: bool = True
    reason: str = "recharge"

    def points(self, ctx: RuleContext) -> int:
        if "amount" not in ctx.context:
            raise ValidationError("the recharge rule needs amount=... (yuan topped up)")
        fen = to_fen(ctx.context["amount"], name="amount")
        return _floor(Decimal(fen) * Decimal(str(self.points_per_yuan)) / 100)


@attrs.frozen(kw_only=True)
class BirthdayRule:
    """``points_each`` once a year plus the tier's ``birthday_bonus``. If the user
    has a ``birthday`` attribute (``"MM-DD"`` or ``"YYYY-MM-DD"``), only on that day
    (business time zone) or within ``window_days`` after it."""

    name: str = "birthday"
    points_each: int = 100
    window_days: int = 0
    expiry: Expiry = attrs.field(factory=Expiry.never)
    tier_multiplier: bool = False
    reason: str = "birthday"

    def default_key(self, ctx: RuleContext) -> str:
        return f"birthday:{ctx.user_id}:{ctx.today.year}"

    def points(self, ctx: RuleContext) -> int:
        user = ctx.tx.users.get(ctx.user_id)
        attributes: dict[str, Any] = dict(getattr(user, "attributes", {}) or {})
        raw = attributes.get("birthday")
        if raw:
            month, day = (int(x) for x in str(raw)[-5:].split("-"))
            try:
                this_year = ctx.today.replace(month=month, day=day)
            except ValueError:  # 29 February in a common year: celebrate on 1 March
                this_year = ctx.today.replace(month=3, day=1)
            if not timedelta(0) <= ctx.today - this_year <= timedelta(days=self.window_days):
                return 0
        bonus = int(ctx.tier.benefits.get("birthday_bonus", 0)) if ctx.tier is not None else 0
        return self.points_each + bonus


# tryfirst: built-ins register first, so a plugin's rule of the same name replaces them.
@hookimpl(tryfirst=True)
def siyu_points_rules(register: Any) -> None:
    for rule in (PurchaseRule(), SignInRule(), InviteRule(), RechargeRule(), BirthdayRule()):
        register(rule)
