"""Coupons: templates (满减, percent off, free item), issuing, expiry, reclaim.

A *template* says what a coupon gives and who may use it; *issuing* creates
one coupon per user with its own code and validity window. Orders redeem
coupons (``ws.orders.record(..., coupon=code)``); a full refund gives them
back while they are still valid. Every new template passes the margin guard
(:meth:`siyu.services.promotions.Promotions.check_offer`) before it is stored.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
from dateutil.relativedelta import relativedelta

from .._clock import aware
from .._validation import check_batch
from ..errors import CapExceeded, NotFound, ValidationError
from ..events import CouponIssued
from ..models.commerce import Coupon, CouponTemplate
from ..money import Money, to_fen
from ._common import check_int, check_key, check_text, check_user_id, fingerprint, idempotent, require_users
from .products import Products, check_sku

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .promotions import Promotions

__all__ = ["COUPON_KINDS", "Coupons", "end_of_month"]

COUPON_KINDS = ("amount_off", "percent_off", "free_item")


def end_of_month(at: datetime, months_after: int, tz: Any) -> datetime:
    """The first instant after the month ``months_after`` months from ``at``
    (in the business time zone) ends: "valid until the end of the month"."""
    local = at.astimezone(tz)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first + relativedelta(months=months_after + 1)


def _user_ids(to: object) -> tuple[list[int], bool]:
    """``to`` as a list of user ids and whether it named a single user."""
    if isinstance(to, int) and not isinstance(to, bool):
        return [check_user_id(to)], True
    ids = getattr(to, "user_ids", to)
    if callable(ids):
        ids = ids()
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise ValidationError(
            f"issue to a user id, an iterable of user ids, or a segment snapshot (anything with .user_ids); "
            f"got {type(to).__name__}"
        )
    return sorted({check_user_id(u) for u in ids}), False


class Coupons:
    """``ws.coupons``: define templates, issue coupons, expire and look them up."""

    name = "coupons"

    def __init__(self, uow: UnitOfWork, *, pricing: Promotions) -> None:
        self._uow = uow
        self._pricing = pricing

    # -- templates ----------------------------------------------------------------
    def create(
        self,
        name: str,
        *,
        kind: str = "amount_off",
        amount: Money | None = None,
        threshold: Money = 0,
        percent: int | None = None,
        cap: Money | None = None,
        free_sku: str | None = None,
        min_qty: int = 1,
        skus: Iterable[str] = (),
        categories: Iterable[str] = (),
        new_customers_only: bool = False,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        valid_days: int | None = None,
        valid_months_end: int | None = None,
        per_user_limit: int | None = 1,
        total_limit: int | None = None,
        group: str = "coupon",
        priority: int = 100,
        loss_leader: bool = False,
        budget: Money | None = None,
    ) -> CouponTemplate:
        """Create a coupon template.

        - ``kind="amount_off"``: 满减, ``amount`` off once the eligible lines reach
          ``threshold`` (e.g. ``amount=30, threshold=199``).
        - ``kind="percent_off"``: ``percent`` (1-99) off, at most ``cap``.
        - ``kind="free_item"``: one unit of ``free_sku`` free when the cart holds
          ``min_qty`` of it (``min_qty=3``: buy three, pay two).

        ``skus`` / ``categories`` limit the eligible lines. Validity is absolute
        (``valid_from`` / ``valid_until``), and/or relative to issue:
        ``valid_days`` (e.g. 7) or ``valid_months_end`` (0: until the end of the
        issuing month, 1: the end of the next month). ``per_user_limit`` and
        ``total_limit`` cap issuing (``None``: no cap). ``group`` and ``priority``
        place it in the stacking rules (``ws.promotions.configure``).

        The margin guard checks the worst case of stacking the new coupon with
        every live offer and raises :class:`~siyu.errors.MarginViolation` if
        any eligible product could sell below its floor, unless ``loss_leader``
        is set with a ``budget`` and every such product is a traffic item.
        """
        amount_fen, percent_v = _kind_values(kind, amount, percent, free_sku, min_qty)
        _check_validity(valid_from, valid_until, valid_days, valid_months_end, loss_leader, budget)
        template = CouponTemplate(
            id=0,
            name=check_text(name, "name", max_length=64),
            kind=kind,
            amount_fen=amount_fen,
            threshold_fen=to_fen(threshold, name="threshold"),
            percent=percent_v,
            cap_fen=None if cap is None else to_fen(cap, name="cap"),
            free_sku=None if free_sku is None else check_sku(free_sku),
            min_qty=min_qty,
            skus=tuple(sorted({check_sku(s) for s in skus})),
            categories=tuple(sorted({check_text(c, "category", max_length=64) for c in categories})),
            new_customers_only=bool(new_customers_only),
            valid_from=valid_from,
            valid_until=valid_until,
            valid_days=None if valid_days is None else check_int(valid_days, "valid_days", minimum=1, maximum=3660),
            valid_months_end=None if valid_months_end is None else check_int(
                valid_months_end, "valid_months_end", minimum=0, maximum=120),
            per_user_limit=None if per_user_limit is None else check_int(per_user_limit, "per_user_limit", minimum=1),
            total_limit=None if total_limit is None else check_int(total_limit, "total_limit", minimum=1),
            group=check_text(group, "group", max_length=32),
            priority=check_int(priority, "priority", minimum=0, maximum=1_000_000),
            loss_leader=bool(loss_leader),
            budget_fen=None if budget is None else to_fen(budget, name="budget"),
            created_at=self._uow.now(),
        )
        return self._store(template)

    def _store(self, template: CouponTemplate) -> CouponTemplate:
        """Save a new template once its name is free, its products exist and the margin guard passes."""
        with self._uow.write() as tx:
            if tx.coupons.template_by_name(template.name) is not None:
                raise ValidationError(f"a coupon template named {template.name!r} exists; pick another name")
            if template.free_sku is not None or template.skus:
                Products.require(tx, [s for s in (template.free_sku, *template.skus) if s])
            self._pricing.check_offer(tx, template=template)
            template = attrs.evolve(template, id=tx.coupons.save_template(template))
            tx.meta.bump("commerce")
        return template

    def template(self, name_or_id: str | int) -> CouponTemplate:
        with self._uow.read() as tx:
            return self._template(tx, name_or_id)

    @staticmethod
    def _template(tx: Transaction, name_or_id: str | int) -> CouponTemplate:
        found = (tx.coupons.template(name_or_id) if isinstance(name_or_id, int)
                 else tx.coupons.template_by_name(str(name_or_id)))
        if found is None:
            raise NotFound(f"no coupon template {name_or_id!r}; create it with ws.coupons.create(...)")
        return found

    def templates(self) -> list[CouponTemplate]:
        with self._uow.read() as tx:
            return tx.coupons.templates()

    def retire(self, name_or_id: str | int) -> CouponTemplate:
        """Stop issuing a template; coupons already issued stay usable."""
        with self._uow.write() as tx:
            template = attrs.evolve(self._template(tx, name_or_id), active=False)
            tx.coupons.save_template(template)
            tx.meta.bump("commerce")
        return template

    # -- issue ---------------------------------------------------------------------------
    def _window(self, t: CouponTemplate, now: datetime) -> tuple[datetime, datetime | None]:
        start = max(now, t.valid_from) if t.valid_from is not None else now
        ends = [x for x in (t.valid_until,) if x is not None]
        if t.valid_days is not None:
            ends.append(start + timedelta(days=t.valid_days))
        if t.valid_months_end is not None:
            ends.append(end_of_month(start, t.valid_months_end, self._uow.tz))
        return start, min(ends) if ends else None

    def issue(self, template: str | int, to: object, *, key: str | None = None,
              valid_until: datetime | None = None) -> list[Coupon]:
        """Issue coupons of ``template`` to a user id, an iterable of ids, or a
        segment snapshot (anything with ``.user_ids``).

        For a single user, reaching ``per_user_limit`` raises
        :class:`~siyu.errors.CapExceeded`; for many, users at their limit are
        skipped. Going past ``total_limit`` raises CapExceeded and issues none.
        With ``key``, a retried call returns the first call's coupons.
        ``valid_until`` ends the coupons' validity earlier than the template would
        (a birthday coupon valid for the birthday week)."""
        ids, single = _user_ids(to)
        if key is not None:
            check_key(key)
        if valid_until is not None:
            aware(valid_until, "valid_until")
        now = self._uow.now()
        with self._uow.write() as tx:
            tx.coupons.lock_template(self._template(tx, template).id)
            t = self._template(tx, template)  # re-read under the lock: ``issued`` may have moved

            def run() -> list[int]:
                return self._issue(tx, t, ids, single, now, valid_until)

            if key is None:
                coupon_ids = run()
            else:
                coupon_ids = idempotent(tx, "coupons.issue", key, fingerprint(t.id, ids), run, json.dumps,
                                        json.loads)
            by_id = {c.id: c for uid in ids for c in tx.coupons.of_user(uid)}
        return [by_id[i] for i in coupon_ids if i in by_id]

    def _issue(self, tx: Transaction, t: CouponTemplate, ids: list[int], single: bool, now: datetime,
               valid_until: datetime | None = None) -> list[int]:
        if not t.active:
            raise ValidationError(f"coupon template {t.name!r} is retired; create a new one to issue more")
        start, until = self._window(t, now)
        if valid_until is not None:  # a benefit's window ends the coupon earlier (a birthday week)
            until = min(until, valid_until) if until is not None else valid_until
        if until is not None and until <= now:
            raise ValidationError(f"coupon template {t.name!r} ended on {until.isoformat()}; nothing to issue")
        require_users(tx, ids)
        if t.per_user_limit is not None:
            held = tx.coupons.issued_to(t.id, ids)
            over = [u for u in ids if held.get(u, 0) >= t.per_user_limit]
            if over and single:
                raise CapExceeded(
                    f"user {over[0]} already holds {held[over[0]]} coupon(s) of {t.name!r}; the per-user limit "
                    f"is {t.per_user_limit}"
                )
            ids = [u for u in ids if u not in set(over)]
        if t.total_limit is not None and t.issued + len(ids) > t.total_limit:
            raise CapExceeded(
                f"coupon template {t.name!r} has {t.total_limit - t.issued} of {t.total_limit} left to issue; "
                f"{len(ids)} were asked for. Issue to fewer users or raise total_limit with a new template"
            )
        coupons = [
            Coupon(id=0, code=f"{t.id}-{secrets.token_hex(5).upper()}", template_id=t.id, user_id=u,
                   issued_at=now, valid_from=start, valid_until=until)
            for u in ids
        ]
        new_ids = tx.coupons.issue(coupons)
        for cid, c in zip(new_ids, coupons, strict=True):
            tx.emit(CouponIssued(at=now, coupon_id=cid, code=c.code, template=t.name, user_id=c.user_id,
                                 valid_until=until))
        if new_ids:
            tx.meta.bump("coupons")
        return new_ids

    # -- read ----------------------------------------------------------------------------
    def get(self, code: str) -> Coupon:
        with self._uow.read() as tx:
            found = tx.coupons.by_codes([check_text(code, "code", max_length=64)])
        if code not in found:
            raise NotFound(f"no coupon with code {code!r}")
        return found[code]

    def of(self, user_id: int, *, usable: bool = False) -> list[Coupon]:
        """The user's coupons (only those usable now with ``usable=True``)."""
        uid = check_user_id(user_id)
        now = self._uow.now()
        with self._uow.read() as tx:
            coupons = tx.coupons.of_user(uid, "issued" if usable else None)
        return [c for c in coupons if not usable or c.usable_at(now)]

    def expire_due(self, *, batch: int = 1000) -> int:
        """Mark issued coupons whose validity has ended as ``expired``; returns how many."""
        check_batch(batch)
        now = self._uow.now()
        total = 0
        while True:
            with self._uow.write() as tx:
                due = tx.coupons.due(now, batch)
                if not due:
                    return total
                tx.coupons.set_status([c.id for c in due], "expired", None, None)
                tx.meta.bump("coupons")
                total += len(due)

    # -- used by orders -------------------------------------------------------------------
    @staticmethod
    def usable(tx: Transaction, user_id: int, codes: Sequence[str], now: datetime) -> list[Coupon]:
        """The coupons ``codes`` if ``user_id`` may redeem them at ``now`` (the order's
        ``paid_at``), else a clear error."""
        found = tx.coupons.by_codes(list(codes))
        result = []
        for code in codes:
            c = found.get(code)
            if c is None:
                raise NotFound(f"no coupon with code {code!r}; list the user's coupons with ws.coupons.of(user_id)")
            if c.user_id != user_id:
                raise ValidationError(f"coupon {code!r} belongs to another user, not to user {user_id}")
            if c.status != "issued":
                raise ValidationError(f"coupon {code!r} is {c.status}, it cannot be used again")
            if not c.usable_at(now):
                window = f"{c.valid_from.isoformat()} .. {c.valid_until.isoformat() if c.valid_until else 'open'}"
                raise ValidationError(
                    f"coupon {code!r} is not valid at {now.isoformat()} (the order's paid_at); it is valid {window}"
                )
            result.append(c)
        return result

    # -- merge participant ---------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> list[int]:
        ids = [c.id for c in tx.coupons.of_user(drop)]
        tx.coupons.move(ids, keep)
        tx.meta.bump("coupons")
        return ids

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: list[int], at: datetime) -> None:
        tx.coupons.move(list(record), drop)
        tx.meta.bump("coupons")


def _kind_values(
    kind: str, amount: Money | None, percent: int | None, free_sku: str | None, min_qty: int
) -> tuple[int, int]:
    """Check the arguments of a coupon ``kind``; its amount off in fen and its percent off."""
    if kind not in COUPON_KINDS:
        raise ValidationError(f"kind={kind!r} is not a coupon kind; use one of {', '.join(COUPON_KINDS)}")
    amount_fen = 0
    percent_v = 0
    if kind == "amount_off":
        if amount is None:
            raise ValidationError("an amount_off coupon needs amount=... (yuan off), e.g. amount=30, threshold=199")
        amount_fen = to_fen(amount, name="amount")
        if amount_fen <= 0:
            raise ValidationError("amount must be more than 0")
    elif kind == "percent_off":
        percent_v = check_int(percent, "percent", minimum=1, maximum=99)
    elif kind == "free_item":
        if free_sku is None:
            raise ValidationError("a free_item coupon needs free_sku=... (the SKU given free)")
        check_int(min_qty, "min_qty", minimum=1, maximum=1000)
    if kind != "percent_off" and percent is not None:
        raise ValidationError(f"percent= only applies to percent_off coupons, not {kind}")
    if kind != "amount_off" and amount is not None:
        raise ValidationError(f"amount= only applies to amount_off coupons, not {kind}")
    return amount_fen, percent_v


def _check_validity(
    valid_from: datetime | None, valid_until: datetime | None, valid_days: int | None,
    valid_months_end: int | None, loss_leader: bool, budget: Money | None,
) -> None:
    """Check a coupon template's validity window and loss-leader budget."""
    if valid_days is not None and valid_months_end is not None:
        raise ValidationError("give valid_days or valid_months_end, not both")
    if valid_from is not None:
        aware(valid_from, "valid_from")
    if valid_until is not None:
        aware(valid_until, "valid_until")
        if valid_from is not None and valid_until <= valid_from:
            raise ValidationError("valid_until must be after valid_from")
    if loss_leader and budget is None:
        raise ValidationError(
            "a loss leader needs budget=... (yuan the shop accepts to lose below the floor); "
            "without a budget the loss would be unbounded"
        )
