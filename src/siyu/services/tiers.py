"""Membership tiers: growth value (成长值), thresholds, benefits, history.

Growth comes from spend (``growth_per_yuan`` of every order's paid amount) and
from activities (:meth:`Tiers.add_growth`). A user's tier is the highest whose
``threshold`` their growth over the rolling window (12 months by default)
reaches. Upgrades happen at once; downgrades when :meth:`Tiers.reevaluate`
runs (schedule it, e.g. nightly) -- or at once when a refund takes away the
growth that earned the tier.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from dateutil.relativedelta import relativedelta

from .._validation import check_mapping
from ..errors import NotFound, ValidationError
from ..events import TierChanged
from ..models.commerce import Tier, TierChange
from ..storage.contracts import GrowthEntry
from ._cache import VersionedCache
from ._common import check_int, check_key, check_text, require_user

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction

__all__ = ["Tiers"]

_CONFIG = "tiers.config"


class TiersMoved(TypedDict):
    """The tiers part of a merge record: the growth entries moved, and each user's tier before."""

    ids: list[int]
    keep: str | None
    drop: str | None


class Tiers:
    """``ws.tiers``: define tiers, read a user's tier and growth, re-evaluate."""

    name = "tiers"

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._cache = VersionedCache("commerce", lambda tx: (tx.tiers.tiers(), self._config(tx)))

    # -- configuration --------------------------------------------------------------
    def define(self, name: str, threshold: int, *, benefits: Mapping[str, Any] | None = None,
               rank: int | None = None) -> Tier:
        """Create or replace a tier reached at ``threshold`` growth.

        ``benefits`` is data: ``points_multiplier`` (e.g. ``"1.5"``),
        ``birthday_bonus`` (points), ``exclusive`` (list of SKUs) and anything
        your own rules read. Member prices live on products
        (``ws.products.add(..., member_prices={"gold": "89"})``). ``rank``
        defaults to the order of thresholds."""
        tier_name = check_text(name, "name", max_length=32)
        limit = check_int(threshold, "threshold", minimum=0)
        if rank is not None:
            check_int(rank, "rank", minimum=1, maximum=1000)
        data = dict(check_mapping(benefits or {}, "benefits", "{'points_multiplier': '1.5', 'free_shipping': True}"))
        if "points_multiplier" in data:
            value = data["points_multiplier"]
            if isinstance(value, float):
                raise ValidationError("points_multiplier must be a str or Decimal such as '1.5', not a float")
            try:
                multiplier = Decimal(str(value))
            except ArithmeticError:
                raise ValidationError(f"points_multiplier {value!r} is not a number") from None
            if multiplier < 0:
                raise ValidationError("points_multiplier must be >= 0")
            data["points_multiplier"] = str(multiplier)
        try:
            json.dumps(data)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"benefits must be JSON-able data: {exc}") from None
        with self._uow.write() as tx:
            tiers = [t for t in tx.tiers.tiers() if t.name != tier_name]
            clash = [t for t in tiers if t.threshold == limit]
            if clash:
                raise ValidationError(f"tier {clash[0].name!r} already starts at {limit}; thresholds must differ")
            tier = Tier(name=tier_name, threshold=limit,
                        rank=rank if rank is not None else sum(1 for t in tiers if t.threshold < limit) + 1,
                        benefits=data)
            if rank is None:
                for t in tiers:
                    if t.threshold > limit:
                        tx.tiers.save_tier(Tier(name=t.name, threshold=t.threshold, rank=t.rank + 1,
                                                benefits=t.benefits))
            tx.tiers.save_tier(tier)
            tx.meta.bump("commerce")
        return tier

    def configure(self, *, growth_per_yuan: int | None = None, window_months: int | None = None) -> dict[str, Any]:
        """Growth per yuan paid (default 1) and the rolling window (default 12 months; 0 = forever)."""
        with self._uow.write() as tx:
            config = self._config(tx)
            if growth_per_yuan is not None:
                config["growth_per_yuan"] = check_int(growth_per_yuan, "growth_per_yuan", minimum=0)
            if window_months is not None:
                config["window_months"] = check_int(window_months, "window_months", minimum=0)
            tx.meta.set(_CONFIG, json.dumps(config))
            tx.meta.bump("commerce")
        return config

    @staticmethod
    def _config(tx: Transaction) -> dict[str, Any]:
        raw = tx.meta.get(_CONFIG)
        config: dict[str, Any] = {"growth_per_yuan": 1, "window_months": 12}
        if raw:
            config.update(json.loads(raw))
        return config

    def _load(self, tx: Transaction) -> tuple[list[Tier], dict[str, Any]]:
        return self._cache.get(tx)

    def tiers(self) -> list[Tier]:
        """Every tier, lowest first."""
        with self._uow.read() as tx:
            return list(self._load(tx)[0])

    # -- read -----------------------------------------------------------------------
    def tier_in(self, tx: Transaction, user_id: int) -> Tier | None:
        tiers, _ = self._load(tx)
        if not tiers:
            return None
        name = tx.tiers.current([user_id]).get(user_id)
        return next((t for t in tiers if t.name == name), None)

    def tiers_in(self, tx: Transaction, user_ids: Iterable[int]) -> dict[int, Tier | None]:
        """Current tiers of many users with one query."""
        ids = sorted(set(user_ids))
        tiers, _ = self._load(tx)
        if not tiers:
            return dict.fromkeys(ids)
        by_name = {t.name: t for t in tiers}
        current = tx.tiers.current(ids)
        return {uid: by_name.get(current.get(uid, "")) for uid in ids}

    def of(self, user_id: int) -> Tier | None:
        """The user's current tier, or ``None``."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return self.tier_in(tx, uid)

    def _since(self, tx: Transaction, now: datetime) -> datetime | None:
        months = int(self._load(tx)[1]["window_months"])
        return None if months == 0 else now - relativedelta(months=months)

    def growth(self, user_id: int) -> int:
        """The user's growth value over the rolling window."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.tiers.growth(uid, self._since(tx, self._uow.now()))

    def history(self, user_id: int) -> list[TierChange]:
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.tiers.history(uid)

    # -- growth -------------------------------------------------------------------------
    def growth_for(self, tx: Transaction, paid_fen: int) -> int:
        return paid_fen * int(self._load(tx)[1]["growth_per_yuan"]) // 100

    def add_growth(self, user_id: int, amount: int, *, reason: str, key: str) -> Tier | None:
        """Add (or, negative, remove) growth for an activity (sign-in streak, review,
        event) and upgrade at once if a threshold is reached; returns the tier."""
        check_int(amount, "amount", minimum=-1_000_000_000, maximum=1_000_000_000)
        check_text(reason, "reason", max_length=128)
        ref = f"activity:{check_key(key)}"
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            if tx.tiers.growth_by_ref(ref) == 0 and amount:
                tx.tiers.add_growth([GrowthEntry(user_id=uid, amount=amount, at=self._uow.now(), reason=reason,
                                                 ref=ref)])
                self.settle(tx, [uid], reason=reason, downgrade=amount < 0)
            return self.tier_in(tx, uid)

    def settle(self, tx: Transaction, user_ids: Iterable[int], *, reason: str, downgrade: bool) -> None:
        """Move users to the tier their windowed growth earns (only up unless ``downgrade``)."""
        tiers, _ = self._load(tx)
        ids = sorted(set(user_ids))
        if not tiers or not ids:
            return
        now = self._uow.now()
        since = self._since(tx, now)
        current = tx.tiers.current(ids)
        grown = tx.tiers.growth_of(ids, since)
        rank = {t.name: t.rank for t in tiers}
        changes = []
        for uid in ids:
            growth = grown[uid]
            target = self._target(tiers, growth)
            old = current.get(uid)
            old_rank = rank.get(old, 0) if old is not None else 0
            new_rank = target.rank if target is not None else 0
            if new_rank > old_rank or (downgrade and new_rank < old_rank) or (old is not None and old not in rank):
                changes.append(TierChange(user_id=uid, at=now, old=old, new=target.name if target else None,
                                          growth=growth, reason=reason))
        self._apply(tx, changes)

    @staticmethod
    def _target(tiers: list[Tier], growth: int) -> Tier | None:
        reached = [t for t in tiers if growth >= t.threshold]
        return max(reached, key=lambda t: t.rank) if reached else None

    def _apply(self, tx: Transaction, changes: list[TierChange]) -> None:
        if not changes:
            return
        tx.tiers.set_current(changes)
        for c in changes:
            tx.emit(TierChanged(at=c.at, user_id=c.user_id, old=c.old, new=c.new, growth=c.growth, reason=c.reason))
        tx.meta.bump("tiers")

    def reevaluate(self) -> list[TierChange]:
        """Re-check every user against the rolling window: downgrade those whose
        growth fell below their tier, upgrade any that qualify. Run it
        periodically (e.g. nightly); returns the changes made."""
        now = self._uow.now()
        with self._uow.write() as tx:
            tiers, _ = self._load(tx)
            growth = tx.tiers.growth_since(self._since(tx, now))
            holders = set(growth)
            everyone = sorted(holders | set(self._holders(tx)))
            current = tx.tiers.current(everyone)
            rank = {t.name: t.rank for t in tiers}
            changes = []
            for uid in everyone:
                target = self._target(tiers, growth.get(uid, 0))
                old = current.get(uid)
                new = target.name if target is not None else None
                if new != old and (target is not None or old is not None):
                    if old is not None and old in rank and new is not None and rank[new] == rank[old]:
                        continue
                    changes.append(TierChange(user_id=uid, at=now, old=old, new=new, growth=growth.get(uid, 0),
                                              reason="reevaluate"))
            self._apply(tx, changes)
        return changes

    @staticmethod
    def _holders(tx: Transaction) -> list[int]:
        return list(tx.tiers.growth_since(None))

    def require_tier(self, tx: Transaction, name: str) -> Tier:
        tiers, _ = self._load(tx)
        for t in tiers:
            if t.name == name:
                return t
        raise NotFound(f"no tier {name!r}; define it with ws.tiers.define(name, threshold)")

    # -- merge participant ------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> TiersMoved:
        ids = tx.tiers.growth_ids(drop)
        before = tx.tiers.current([keep, drop])
        tx.tiers.move_growth(ids, keep)
        if drop in before:
            tx.tiers.set_current([TierChange(user_id=drop, at=at, old=before[drop], new=None, growth=0,
                                             reason=f"merge:{drop}->{keep}")])
        self.settle(tx, [keep], reason=f"merge:{drop}->{keep}", downgrade=False)
        return TiersMoved(ids=ids, keep=before.get(keep), drop=before.get(drop))

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: TiersMoved, at: datetime) -> None:
        tx.tiers.move_growth(record["ids"], drop)
        now_keep = tx.tiers.current([keep]).get(keep)
        changes = []
        if now_keep != record["keep"]:
            changes.append(TierChange(user_id=keep, at=at, old=now_keep, new=record["keep"], growth=0,
                                      reason=f"unmerge:{keep}->{drop}"))
        if record["drop"] is not None:
            changes.append(TierChange(user_id=drop, at=at, old=None, new=record["drop"], growth=0,
                                      reason=f"unmerge:{keep}->{drop}"))
        self._apply(tx, changes)
