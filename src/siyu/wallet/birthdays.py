"""Birthdays (生日特权): a birthday on the profile and a benefit once a year.

The member (or staff) records a birthday with :meth:`Birthdays.set`; after the
first time it can be changed once per calendar year, so a birthday cannot be
moved around to collect gifts. :meth:`Birthdays.grant_due` is the daily job:
every member whose birthday window (the day, its week or its month, in the
business time zone) includes today gets the configured benefit -- a coupon
valid until the window ends, points, a gift from the points mall, and/or a
points boost on purchases during the window. Each member gets it once per
year: the grant is a row unique on (member, benefit, year), so running the
job twice, or on two workers at once, grants nothing twice.

A birthday is personal information: nothing is granted without the member's
consent for the ``birthday`` purpose, nor, for a member under 14 (when the
birth year is known), without a guardian's (``guardian`` purpose). Members born
on 29 February celebrate on 1 March in common years (or 28 February:
``feb29="feb28"``). Tier eligibility is checked when the benefit is granted.
"""

from __future__ import annotations

import json
import logging
from calendar import isleap
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import start_of_day
from .._validation import check_decimal, check_int, check_many, check_text
from ..errors import CapExceeded, ConsentRequired, NotFound, SiyuError, ValidationError
from ..services._common import require_user
from ..services.points import Credit
from ..storage.contracts.benefits import Birthday, Grant

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.coupons import Coupons
    from ..services.points import Points
    from ..services.points_rules import RuleContext
    from ..services.tiers import Tiers
    from ..storage.base import Transaction
    from .points_mall import PointsMall

__all__ = ["BirthdayBenefit", "Birthdays"]

log = logging.getLogger("siyu")

_SETTINGS = "birthdays.settings"
WINDOWS = ("day", "week", "month")
#: Under PIPL all personal information of a child under 14 is sensitive: a guardian consents.
CHILD_AGE = 14


@attrs.frozen(kw_only=True)
class BirthdayBenefit:
    """What a birthday brings: any of a ``coupon`` (a template name), ``points``, a
    points-mall ``reward`` (given free) and a ``points_multiplier`` on purchases
    during the ``window`` (``day``, ``week`` or ``month``). ``tiers`` (empty: all)
    limits who gets it."""

    coupon: str | None = None
    points: int = 0
    reward: str | None = None
    points_multiplier: Decimal = Decimal(1)
    window: str = "day"
    tiers: tuple[str, ...] = ()
    feb29: str = "mar1"

    def to_json(self) -> str:
        data = attrs.asdict(self)
        data["points_multiplier"] = str(self.points_multiplier)
        data["tiers"] = list(self.tiers)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BirthdayBenefit:
        data: dict[str, Any] = json.loads(text)
        data["points_multiplier"] = Decimal(data["points_multiplier"])
        data["tiers"] = tuple(data["tiers"])
        return cls(**data)


class Birthdays:
    """``ws.birthdays``: the birthday on the profile, the benefit, the daily grant job."""

    name = "birthdays"

    def __init__(self, uow: UnitOfWork, *, points: Points, coupons: Coupons, points_mall: PointsMall,
                 tiers: Tiers) -> None:
        self._uow = uow
        self._points = points
        self._coupons = coupons
        self._mall = points_mall
        self._tiers = tiers

    # -- configuration --------------------------------------------------------------------
    def configure(self, *, coupon: str | None = None, points: int = 0, reward: str | None = None,
                  points_multiplier: Decimal | int | str = 1, window: str = "day", tiers: Iterable[str] = (),
                  feb29: str = "mar1") -> BirthdayBenefit:
        """Set the birthday benefit (replacing the previous one)."""
        if window not in WINDOWS:
            raise ValidationError(f"window={window!r} is not one of {', '.join(WINDOWS)}")
        if feb29 not in ("mar1", "feb28"):
            raise ValidationError("feb29 must be 'mar1' or 'feb28' (when 29 February births celebrate in common years)")
        multiplier = check_decimal(points_multiplier, "points_multiplier", example="Decimal('1.5')")
        if multiplier < 1:
            raise ValidationError(f"points_multiplier must be a Decimal >= 1, got {points_multiplier!r}")
        benefit = BirthdayBenefit(coupon=coupon, points=check_int(points, "points", minimum=0, maximum=10**9),
                                  reward=reward, points_multiplier=Decimal(str(points_multiplier)), window=window,
                                  tiers=tuple(sorted(check_text(t, "tier", max_length=64)
                                                     for t in check_many(tiers, "tiers", "['gold']"))),
                                  feb29=feb29)
        if not (benefit.coupon or benefit.points or benefit.reward or benefit.points_multiplier > 1):
            raise ValidationError("a birthday benefit needs a coupon, points, a reward or a points_multiplier > 1")
        with self._uow.write() as tx:
            if coupon is not None:
                self._coupons._template(tx, coupon)
            if reward is not None:
                self._mall._reward(tx, reward)
            tx.meta.set(_SETTINGS, benefit.to_json())
        return benefit

    @staticmethod
    def _benefit(tx: Transaction) -> BirthdayBenefit | None:
        raw = tx.meta.get(_SETTINGS)
        return None if raw is None else BirthdayBenefit.from_json(raw)

    # -- the birthday ---------------------------------------------------------------------
    def set(self, user_id: int, month: int, day: int, *, year: int | None = None) -> Birthday:
        """Record a member's birthday. The first time is free; after that it can change
        once per calendar year (:class:`~siyu.errors.CapExceeded` otherwise). Setting the
        same date again changes nothing."""
        month = check_int(month, "month", minimum=1, maximum=12)
        day = check_int(day, "day", minimum=1, maximum=31)
        try:
            date(2000 if year is None else check_int(year, "year", minimum=1900, maximum=2100), month, day)
        except ValueError:
            raise ValidationError(f"{year or ''}-{month:02d}-{day:02d} is not a date") from None
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            if year is not None and date(year, month, day) > self._uow.today():
                raise ValidationError("a birthday cannot be in the future")
            old = tx.benefits.birthday(uid)
            if old is not None and (old.month, old.day, old.year) == (month, day, year):
                return old
            if old is not None and tx.benefits.add_grant(Grant(
                    id=0, user_id=uid, benefit="birthday-edit", period=str(self._uow.today().year), status="granted",
                    amount=0, at=now)) is None:
                raise CapExceeded(f"user {uid}'s birthday was changed this year already; it can change once a year")
            record = Birthday(user_id=uid, month=month, day=day, year=year, set_at=now)
            tx.benefits.set_birthday(record)
        return record

    def get(self, user_id: int) -> Birthday | None:
        with self._uow.read() as tx:
            return tx.benefits.birthday(require_user(tx, user_id, active=False))

    # -- windows ----------------------------------------------------------------------------
    @staticmethod
    def celebrated(birthday: Birthday, year: int, feb29: str) -> date:
        """The day ``birthday`` is celebrated in ``year`` (29 February falls back in common years)."""
        if (birthday.month, birthday.day) == (2, 29) and not isleap(year):
            return date(year, 3, 1) if feb29 == "mar1" else date(year, 2, 28)
        return date(year, birthday.month, birthday.day)

    @staticmethod
    def window(day: date, window: str) -> tuple[date, date]:
        """First and last day of the window around a celebrated ``day``."""
        if window == "week":
            first = day - timedelta(days=day.weekday())
            return first, first + timedelta(days=6)
        if window == "month":
            nxt = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
            return day.replace(day=1), nxt - timedelta(days=1)
        return day, day

    @staticmethod
    def _candidates(today: date, window: str, feb29: str) -> list[tuple[int, int]]:
        """The (month, day) birthdays whose window this year includes ``today``."""
        first, last = Birthdays.window(today, window)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        pairs = {(d.month, d.day) for d in days}
        fallback = date(today.year, 3, 1) if feb29 == "mar1" else date(today.year, 2, 28)
        if not isleap(today.year) and first <= fallback <= last:
            pairs.add((2, 29))
        return sorted(pairs)

    # -- the daily job ----------------------------------------------------------------------
    def grant_due(self) -> list[Grant]:
        """Grant the birthday benefit to every member whose window includes today and
        who has not had it this year. Safe to run any number of times, from any
        number of workers. Members without consent, or under 14 without a guardian's,
        and members outside the benefit's tiers are skipped."""
        now = self._uow.now()
        today = self._uow.today()
        granted: list[Grant] = []
        with self._uow.read() as tx:
            benefit = self._benefit(tx)
            if benefit is None:
                return []
            due = tx.benefits.born_on(self._candidates(today, benefit.window, benefit.feb29))
        for birthday in due:
            celebrated = self.celebrated(birthday, today.year, benefit.feb29)
            first, last = self.window(celebrated, benefit.window)
            if not first <= today <= last:
                continue
            try:
                with self._uow.write() as tx:
                    grant = self._grant(tx, benefit, birthday.user_id, today, last, now)
            except SiyuError as exc:  # e.g. the gift is out of stock: nothing recorded, the next run retries
                log.warning("birthday benefit for user %s not granted: %s", birthday.user_id, exc)
                continue
            if grant is not None:
                granted.append(grant)
        return granted

    def _grant(self, tx: Transaction, benefit: BirthdayBenefit, user_id: int, today: date, last: date,
               now: datetime) -> Grant | None:
        try:
            uid = require_user(tx, user_id, lock=True)
        except SiyuError:  # merged or gone since the list was read
            return None
        birthday = tx.benefits.birthday(uid)
        if birthday is None or not self._allowed(tx, uid, birthday, today):
            return None
        if benefit.tiers:
            tier = self._tiers.tier_in(tx, uid)
            if tier is None or tier.name not in benefit.tiers:
                return None
        ends = start_of_day(last + timedelta(days=1), self._uow.tz)
        record = Grant(id=0, user_id=uid, benefit="birthday", period=str(today.year), status="granted",
                       amount=benefit.points, at=now, due_at=ends)
        gid = tx.benefits.add_grant(record)
        if gid is None:
            return None
        key = f"birthday:{uid}:{today.year}"
        if benefit.points:
            self._points.credit(tx, [Credit(user_id=uid, amount=benefit.points, reason="birthday", key=key)], now)
        if benefit.coupon:
            self._coupons.issue(benefit.coupon, uid, key=key, valid_until=ends)
        if benefit.reward:
            self._mall.give_in(tx, uid, benefit.reward, key=key, now=now)
        return attrs.evolve(record, id=gid)

    @staticmethod
    def _allowed(tx: Transaction, uid: int, birthday: Birthday, today: date) -> bool:
        """Consent for the birthday purpose, and a guardian's for a child under 14."""
        decisions: dict[str, bool] = {}
        for record in tx.users.consents(uid):
            decisions[record.purpose] = record.granted
        if not decisions.get("birthday", False):
            return False
        if birthday.year is not None:
            age = today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))
            if age < CHILD_AGE and not decisions.get("guardian", False):
                return False
        return True

    def grants(self, user_id: int) -> list[Grant]:
        """The member's birthday grants, oldest first."""
        with self._uow.read() as tx:
            return tx.benefits.grants(user_id=require_user(tx, user_id, active=False), benefit="birthday")

    def require_consent(self, user_id: int) -> None:
        """Raise :class:`~siyu.errors.ConsentRequired` if no birthday benefit may be
        processed for the member now (the check the grant job makes)."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            birthday = tx.benefits.birthday(uid)
            if birthday is None:
                raise NotFound(f"user {uid} has no birthday on record; set it with ws.birthdays.set(...)")
            if not self._allowed(tx, uid, birthday, self._uow.today()):
                raise ConsentRequired(f"user {uid} has not consented to birthday benefits (purpose 'birthday'), or is "
                                      "under 14 without a guardian's consent (purpose 'guardian')")

    # -- the points boost --------------------------------------------------------------------
    def boost(self, ctx: RuleContext, rule: str) -> Decimal:
        """The birthday multiplier on purchase points, inside a granted birthday window."""
        if rule != "purchase":
            return Decimal(1)
        benefit = self._benefit(ctx.tx)
        if benefit is None or benefit.points_multiplier <= 1:
            return Decimal(1)
        grant = ctx.tx.benefits.grant(ctx.user_id, "birthday", str(ctx.today.year))
        if grant is None or grant.status != "granted" or grant.due_at is None or ctx.now >= grant.due_at:
            return Decimal(1)
        return benefit.points_multiplier

    # -- personal data ---------------------------------------------------------------------
    def export(self, user_id: int) -> dict[str, Any]:
        found = self.get(user_id)
        return {"birthday": None if found is None else attrs.asdict(found),
                "grants": [attrs.asdict(g) for g in self.grants(user_id)]}
