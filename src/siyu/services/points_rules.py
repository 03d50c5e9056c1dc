"""Points rules: the earn rules registered through the ``siyu_points_rules`` hook.

A rule is an object with a ``name`` and a ``points(ctx)`` method returning how
many points an occasion is worth (0: none). The built-in rules (purchase,
sign-in, invite, recharge, birthday) are registered by the plugin
:mod:`siyu.services.builtin_rules` exactly like a third party's; a plugin may
register a rule under a new name, or replace a built-in one by registering
the same name from a plugin passed to ``siyu.connect(plugins=[...])``
(later registrations win and the replacement is logged).

``ws.points_rules.award(name, user_id, key=..., **context)`` runs a rule and
credits the points to the ledger (with the rule's expiry policy) in one
transaction; a repeated key credits nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
from dateutil.relativedelta import relativedelta

from .._clock import aware
from ..errors import CapExceeded, NotFound, PluginError, ValidationError
from ..models.commerce import Tier
from ..models.points import PointsEntry
from ..storage.contracts.benefits import Sign
from ._common import check_int, check_key, check_text, require_user
from .line_effects import split
from .points import Credit

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .points import Points
    from .tiers import Tiers

__all__ = ["Expiry", "PointsRule", "PointsRules", "RuleContext"]

log = logging.getLogger("siyu")


@attrs.frozen
class Expiry:
    """When points earned by a rule lapse.

    ``Expiry.never()``; ``Expiry.days(365)``; ``Expiry.month_end(1)`` (at the
    end of the month after the one they were earned in; 0 = the same month);
    ``Expiry.year_end(1)`` (the end of next year, the common 次年年底 policy).
    Month and year ends are in the workspace's business time zone."""

    kind: str = "never"
    n: int = 0

    @classmethod
    def never(cls) -> Expiry:
        return cls("never", 0)

    @classmethod
    def days(cls, n: int) -> Expiry:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValidationError(f"Expiry.days needs a whole number of days >= 1, got {n!r}")
        return cls("days", n)

    @classmethod
    def month_end(cls, after: int = 0) -> Expiry:
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValidationError(f"Expiry.month_end needs after >= 0, got {after!r}")
        return cls("month_end", after)

    @classmethod
    def year_end(cls, after: int = 0) -> Expiry:
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValidationError(f"Expiry.year_end needs after >= 0, got {after!r}")
        return cls("year_end", after)

    def expires_at(self, earned: datetime, tz: Any) -> datetime | None:
        """The instant points earned at ``earned`` expire (``None``: never)."""
        if self.kind == "never":
            return None
        if self.kind == "days":
            return earned + timedelta(days=self.n)
        local = earned.astimezone(tz)
        if self.kind == "month_end":
            first = datetime(local.year, local.month, 1, tzinfo=tz)
            return first + relativedelta(months=self.n + 1)
        if self.kind == "year_end":
            return datetime(local.year + self.n + 1, 1, 1, tzinfo=tz)
        raise ValidationError(f"unknown expiry kind {self.kind!r}")


@attrs.frozen(kw_only=True)
class RuleContext:
    """What a rule sees: the user, the moment, their tier and the call's context."""

    #: The workspace the rule runs in, as the unit of work services see (read, write, now, tz).
    workspace: UnitOfWork
    tx: Transaction
    user_id: int
    now: datetime
    today: date
    tier: Tier | None
    context: Mapping[str, Any]


def _check_context(ctx: object) -> None:
    if not isinstance(ctx, RuleContext):
        raise ValidationError(
            f"ctx must be a RuleContext (what a rule is called with), got {type(ctx).__name__} {ctx!r:.80}"
        )


@runtime_checkable
class PointsRule(Protocol):
    """An earn rule. ``points`` returns the points for one occasion (0 = none).

    Optional attributes read by :class:`PointsRules`: ``expiry`` (an
    :class:`Expiry`, default never), ``tier_multiplier`` (bool, default True:
    multiply by the tier's ``points_multiplier``), ``reason`` (ledger reason,
    default the name), and ``default_key(ctx) -> str | None`` for rules whose
    occasion has a natural key (one sign-in per day), and for rules paid on
    an order's lines ``line_points(ctx) -> Sequence[int | Decimal]``: what each
    line of ``ctx.context["lines"]`` is worth, in proportion (see
    :meth:`PointsRules.split`)."""

    name: str

    def points(self, ctx: RuleContext) -> int: ...


class PointsRules:
    """``ws.points_rules``: the registered earn rules; award, configure, sign in."""

    def __init__(self, uow: UnitOfWork, *, tiers: Tiers, points: Points) -> None:
        self._uow = uow
        self._tiers = tiers
        self._points = points
        self._rules: dict[str, PointsRule] = {}
        self._boosts: list[Callable[[RuleContext, str], Decimal]] = []

    def register(self, rule: PointsRule) -> None:
        """Add a rule (the ``register`` callback of the ``siyu_points_rules`` hook)."""
        name = getattr(rule, "name", None)
        if not isinstance(name, str) or not name or not callable(getattr(rule, "points", None)):
            raise PluginError(
                f"{rule!r} is not a points rule: it needs a str attribute 'name' and a method points(ctx) -> int"
            )
        if name in self._rules:
            log.info("points rule %r replaced by %r", name, rule)
        self._rules[name] = rule

    def add_boost(self, boost: Callable[[RuleContext, str], Decimal]) -> None:
        """Declare a points boost: ``boost(ctx, rule_name)`` returns a multiplier (1 for
        none) for an award, e.g. double points on a member day. When several apply,
        the highest wins: boosts never stack."""
        self._boosts.append(boost)

    def names(self) -> list[str]:
        return sorted(self._rules)

    def get(self, name: str) -> PointsRule:
        check_text(name, "name")
        try:
            return self._rules[name]
        except KeyError:
            raise NotFound(
                f"no points rule named {name!r}; registered: {', '.join(self.names())}. "
                "Register one with a plugin implementing siyu_points_rules(register)"
            ) from None

    def configure(self, name: str, **params: Any) -> PointsRule:
        """Change a rule's parameters, e.g. ``configure("purchase", points_per_yuan=2)``
        or ``configure("signin", expiry=Expiry.year_end(1))``. Rules are attrs
        classes; unknown parameters raise ValidationError."""
        rule: Any = self.get(name)
        if not attrs.has(type(rule)):
            raise ValidationError(f"rule {name!r} ({type(rule).__name__}) is not an attrs class; configure it in code")
        fields = {f.name for f in attrs.fields(type(rule))} - {"name"}
        unknown = set(params) - fields
        if unknown:
            raise ValidationError(f"rule {name!r} has no parameter(s) {sorted(unknown)}; it has {sorted(fields)}")
        try:
            new: PointsRule = attrs.evolve(rule, **params)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"rule {name!r}: {exc}") from None
        self._rules[name] = new
        return new

    # -- award ---------------------------------------------------------------------------
    def context(self, tx: Transaction, user_id: int, *, tier: Tier | bool | None = True,
                **context: Any) -> RuleContext:
        """What a rule sees; ``tier`` may be passed when the caller looked it up already."""
        now = self._uow.now()
        found = self._tiers.tier_in(tx, user_id) if tier is True else tier
        assert found is None or isinstance(found, Tier)
        return RuleContext(workspace=self._uow, tx=tx, user_id=user_id, now=now,
                           today=now.astimezone(self._uow.tz).date(), tier=found, context=context)

    def compute(self, name: str, ctx: RuleContext) -> int:
        """Points the rule gives for ``ctx``, with the tier multiplier applied."""
        rule = self.get(name)
        _check_context(ctx)
        base = rule.points(ctx)
        if isinstance(base, bool) or not isinstance(base, int) or base < 0:
            raise PluginError(f"points rule {name!r} returned {base!r}; it must return an int >= 0")
        if base and getattr(rule, "tier_multiplier", True) and ctx.tier is not None:
            base = int((Decimal(base) * ctx.tier.points_multiplier).to_integral_value(ROUND_FLOOR))
        boost = max((Decimal(b(ctx, name)) for b in self._boosts), default=Decimal(1))
        if base and boost > 1:
            base = int((Decimal(base) * boost).to_integral_value(ROUND_FLOOR))
        return base

    def split(self, name: str, ctx: RuleContext, total: int) -> list[int]:
        """How ``total`` points that rule ``name`` gave for an order split over its
        lines (``ctx.context["lines"]``), so a refund takes back what the refunded
        lines earned: in proportion to the rule's ``line_points(ctx)`` if it has
        one, else to what the rule gives each line on its own, else (a rule that
        pays only whole orders) to the money each line paid."""
        check_text(name, "name")
        _check_context(ctx)
        check_int(total, "total")
        lines = list(ctx.context.get("lines", ()))
        if total <= 0 or not lines:
            return [0] * len(lines)
        rule = self.get(name)
        weigh = getattr(rule, "line_points", None)
        if callable(weigh):
            raw = list(weigh(ctx))
            if len(raw) != len(lines) or any(isinstance(w, bool | float) or not isinstance(w, int | Decimal | Fraction)
                                             or w < 0 for w in raw):
                raise PluginError(f"points rule {name!r}: line_points must return one int or Decimal >= 0 per "
                                  f"line ({len(lines)}), got {raw!r}")
            weights: list[int | Decimal | Fraction] = raw
        else:
            weights = [int(rule.points(attrs.evolve(ctx, context={**ctx.context, "lines": (line,)})))
                       for line in lines]
        if not any(weights):
            weights = [int(line["paid_fen"] if isinstance(line, Mapping) else line.paid_fen) for line in lines]
        if not any(weights):
            weights = [int(line["qty"] if isinstance(line, Mapping) else line.qty) for line in lines]
        return split(total, weights)

    def expiry_for(self, name: str, earned: datetime) -> datetime | None:
        aware(earned, "earned")
        expiry = getattr(self.get(name), "expiry", None) or Expiry.never()
        return expiry.expires_at(earned, self._uow.tz)

    def award(self, name: str, user_id: int, *, key: str | None = None, **context: Any) -> PointsEntry | None:
        """Run rule ``name`` for ``user_id`` and credit the points; returns the
        ledger entry, or ``None`` if the rule gave nothing.

        ``key`` makes the award idempotent (the referral engine passes e.g.
        ``f"invite:{invitee_id}"``); rules with a natural key (sign-in: one a
        day; birthday: one a year) supply it when ``key`` is omitted.
        ``context`` is passed to the rule (``amount=`` for recharge ...)."""
        rule = self.get(name)
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            ctx = self.context(tx, uid, **context)
            if key is None:
                default_key = getattr(rule, "default_key", None)
                key = default_key(ctx) if callable(default_key) else None
                if key is None:
                    raise ValidationError(
                        f"rule {name!r} needs key=... (a string unique to this occasion, e.g. 'invite:42') "
                        "so a retry does not award twice"
                    )
            full_key = check_key(f"rule:{name}:{check_key(key)}")
            existing = tx.points.by_keys([full_key])
            if full_key in existing:
                return tx.points.entry(existing[full_key][0])
            amount = self.compute(name, ctx)
            if amount <= 0:
                return None
            reason = check_text(getattr(rule, "reason", name) or name, "reason", max_length=128)
            credit = Credit(user_id=uid, amount=amount, reason=reason, key=full_key,
                            expires_at=self.expiry_for(name, ctx.now))
            [entry_id] = self._points.credit(tx, [credit], ctx.now)
            entry = tx.points.entry(entry_id)
        assert entry is not None
        return entry

    def sign_in(self, user_id: int) -> tuple[int, PointsEntry | None]:
        """Record today's sign-in (business time zone); returns ``(streak, entry)``.

        One sign per member and day, however many requests race: the sign-in is
        a row unique on (member, day), written with its points in one
        transaction; a repeat returns the first sign's entry. The ``signin``
        rule decides the points (streak bonus, cumulative reward on the N-th sign
        of the period, granted once); its ``budget`` stops grants when spent."""
        rule = self.get("signin")
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            ctx = self.context(tx, uid)
            key = check_key(f"rule:signin:signin:{uid}:{ctx.today}")
            done = tx.points.by_keys([key])
            if key in done or not self._sign(tx, rule, ctx, ctx.today, "sign", key):
                entry = tx.points.entry(done[key][0]) if key in done else self._signed_entry(tx, key)
            else:
                entry = self._signed_entry(tx, key)
            streak = self.streak(tx, uid, ctx.today, since=_streak_since(rule, ctx.today))
        return streak, entry

    def make_up_sign(self, user_id: int, day: date) -> PointsEntry | None:
        """A make-up sign (补签) for a missed ``day`` of the current period, if the
        ``signin`` rule allows them (``makeup_limit`` per period). It costs
        ``makeup_cost`` points, earns ``base`` only (never a streak bonus), counts
        towards the period's cumulative rewards and mends the streak. Refused with
        :class:`~siyu.errors.CapExceeded` past the limit, ValidationError for today,
        a future day, another period or a day already signed."""
        rule = self.get("signin")
        limit = int(getattr(rule, "makeup_limit", 0) or 0)
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValidationError(f"day must be a date, got {day!r}")
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            ctx = self.context(tx, uid)
            start = _period_start(rule, ctx.today)
            if limit <= 0:
                raise ValidationError("make-up signs are off; configure('signin', makeup_limit=N) to allow them")
            if not start <= day < ctx.today:
                raise ValidationError(f"a make-up sign is for a missed day of this period ({start} to "
                                      f"{ctx.today - timedelta(days=1)}), not {day}")
            made = [s for s in tx.benefits.signs(uid, start, ctx.today) if s.kind == "makeup"]
            if len(made) >= limit:
                raise CapExceeded(f"user {uid} has used {len(made)} of {limit} make-up signs this period")
            cost = int(getattr(rule, "makeup_cost", 0) or 0)
            if cost:
                self._points.spend_many([{"user_id": uid, "amount": cost, "reason": "signin:makeup",
                                          "key": f"rule:signin:makeup-cost:{uid}:{day}"}])
            key = check_key(f"rule:signin:makeup:{uid}:{day}")
            if not self._sign(tx, rule, ctx, day, "makeup", key):
                raise ValidationError(f"user {uid} signed in on {day} already")
            return self._signed_entry(tx, key)

    def _sign(self, tx: Transaction, rule: PointsRule, ctx: RuleContext, day: date, kind: str, key: str) -> bool:
        """Write one sign and its points; ``False`` if ``day`` was signed already."""
        amount = self.compute("signin", ctx) if kind == "sign" else int(getattr(rule, "base", 0))
        amount = self._within_budget(tx, rule, amount)
        if not tx.benefits.add_sign(Sign(user_id=ctx.user_id, day=day, kind=kind, points=amount, at=ctx.now)):
            return False
        reason = check_text(getattr(rule, "reason", "signin") or "signin", "reason", max_length=128)
        credits = [Credit(user_id=ctx.user_id, amount=amount, reason=reason, key=key,
                          expires_at=self.expiry_for("signin", ctx.now))] if amount else []
        start = _period_start(rule, ctx.today)
        count = len(tx.benefits.signs(ctx.user_id, start, ctx.today))
        extra = int(dict(getattr(rule, "cumulative", {}) or {}).get(count, 0))
        cumulative_key = check_key(f"rule:signin:cumulative:{ctx.user_id}:{start}:{count}")
        if extra and cumulative_key not in tx.points.by_keys([cumulative_key]):
            extra = self._within_budget(tx, rule, extra)
            if extra:
                credits.append(Credit(user_id=ctx.user_id, amount=extra, reason=f"{reason}:cumulative",
                                      key=cumulative_key, expires_at=self.expiry_for("signin", ctx.now)))
        self._points.credit(tx, credits, ctx.now)
        return True

    @staticmethod
    def _within_budget(tx: Transaction, rule: PointsRule, amount: int) -> int:
        budget = getattr(rule, "budget", None)
        if budget is None or amount <= 0:
            return amount
        return amount if tx.benefits.use_budget(f"rule:{rule.name}", amount, int(budget)) else 0

    @staticmethod
    def _signed_entry(tx: Transaction, key: str) -> PointsEntry | None:
        found = tx.points.by_keys([key])
        return tx.points.entry(found[key][0]) if key in found else None

    def signs(self, user_id: int, *, since: date | None = None) -> list[Sign]:
        """The member's sign-ins since ``since`` (default: the start of the current period)."""
        if since is not None and (not isinstance(since, date) or isinstance(since, datetime)):
            raise ValidationError(
                f"since must be a date such as date(2026, 11, 1), got {type(since).__name__} {since!r:.80}"
            )
        rule = self.get("signin")
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            today = self._uow.today()
            return tx.benefits.signs(uid, since or _period_start(rule, today), today)

    @staticmethod
    def streak(tx: Transaction, user_id: int, day: date, limit: int = 366, since: date | None = None) -> int:
        """Consecutive days up to ``day`` with a sign-in (0 if none on ``day``), counting
        no further back than ``since``."""
        first = max(day - timedelta(days=limit - 1), since) if since is not None else day - timedelta(days=limit - 1)
        signed = {s.day for s in tx.benefits.signs(user_id, first, day)}
        # Signs from before sign-ins had their own table live only as points keys.
        days = [day - timedelta(days=n) for n in range((day - first).days + 1)]
        keys = {f"rule:signin:signin:{user_id}:{d}": d for d in days if d not in signed}
        signed |= {keys[k] for k in tx.points.by_keys(list(keys))} if keys else set()
        count = 0
        for d in days:
            if d not in signed:
                break
            count += 1
        return count


def _period_start(rule: object, day: date) -> date:
    """Where a sign-in period starts (for rules without ``period_start``: the month)."""
    start = getattr(rule, "period_start", None)
    return start(day) if callable(start) else day.replace(day=1)  # type: ignore[no-any-return]


def _streak_since(rule: object, day: date) -> date | None:
    """How far back a streak may reach: the period's start, unless streaks roll on."""
    return None if getattr(rule, "mode", "rolling") == "rolling" else _period_start(rule, day)
