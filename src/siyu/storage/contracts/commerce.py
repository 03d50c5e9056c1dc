"""Commerce stores: products, orders and refunds, coupons and activities, tiers.

Money crosses this boundary as integer fen, instants as aware ``datetime``.
Models passed in for insertion carry ``id=0``; the store assigns the id.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

import attrs

from ...models.commerce import Activity, Coupon, CouponTemplate, Order, Product, Refund, Tier, TierChange

__all__ = ["CouponStore", "GrowthEntry", "OrderStats", "OrderStore", "ProductStore", "TierStore"]


@attrs.frozen(kw_only=True)
class OrderStats:
    """Per-user order figures for segment metrics (``spend_fen`` net of refunds)."""

    orders: int
    spend_fen: int
    last_paid_at: datetime | None


@attrs.frozen(kw_only=True)
class GrowthEntry:
    """A change of a user's growth value (成长值); ``ref`` groups entries of one cause."""

    user_id: int
    amount: int
    at: datetime
    reason: str
    ref: str | None = None


class ProductStore(abc.ABC):
    @abc.abstractmethod
    def save(self, product: Product, at: datetime) -> None:
        """Insert or replace the product with this SKU."""

    @abc.abstractmethod
    def get_many(self, skus: Sequence[str]) -> dict[str, Product]: ...

    @abc.abstractmethod
    def all(self) -> list[Product]:
        """Every product, by SKU."""

    @abc.abstractmethod
    def use_loss_budget(self, used: Sequence[tuple[str, int]]) -> None:
        """Add ``(sku, fen)`` (negative: give back) to what the product's loss budget
        used (``Product.loss_used_fen``); :meth:`save` keeps what was used."""


class OrderStore(abc.ABC):
    @abc.abstractmethod
    def by_keys(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """Orders recorded under idempotency keys: key -> (order id, fingerprint)."""

    @abc.abstractmethod
    def insert(self, orders: Sequence[Order], fingerprints: Sequence[str | None]) -> list[int]:
        """Insert orders with their lines (``id`` ignored); return the new ids in order."""

    @abc.abstractmethod
    def set_effects(self, rows: Sequence[tuple[int, int | None, int, int]]) -> None:
        """Record ``(order_id, points_entry_id, points, growth)`` an order caused."""

    @abc.abstractmethod
    def set_line_effects(self, rows: Sequence[tuple[int, int, int, int]]) -> None:
        """Record ``(order_id, line_no, points, growth)``: what each line earned (read
        back as ``OrderLine.points`` / ``growth``; ``None`` until recorded)."""

    @abc.abstractmethod
    def get(self, order_id: int) -> Order | None: ...

    @abc.abstractmethod
    def of_user(self, user_id: int) -> list[Order]:
        """The user's orders, oldest paid first."""

    @abc.abstractmethod
    def count_paid(self, user_id: int) -> int:
        """Orders of the user not fully refunded."""

    @abc.abstractmethod
    def apply_refund(self, order_id: int, lines: Sequence[tuple[int, int, int]]) -> None:
        """Add refunded ``(line_no, qty, fen)`` to the lines and the order."""

    @abc.abstractmethod
    def add_refund(self, refund: Refund, fingerprint: str) -> int: ...

    @abc.abstractmethod
    def refund_by_key(self, key: str) -> tuple[int, str] | None:
        """``(refund id, fingerprint)`` recorded under ``key``, or ``None``."""

    @abc.abstractmethod
    def refund(self, refund_id: int) -> Refund | None: ...

    @abc.abstractmethod
    def refunds(self, order_id: int) -> list[Refund]: ...

    @abc.abstractmethod
    def stats(self, since: datetime | None = None) -> dict[int, OrderStats]:
        """Per-user figures of orders paid at or after ``since`` (all if ``None``)."""

    @abc.abstractmethod
    def ids_of(self, user_id: int) -> list[int]: ...

    @abc.abstractmethod
    def move(self, order_ids: Sequence[int], user_id: int) -> None:
        """Reassign orders (and their refunds) to another user (merges)."""


class CouponStore(abc.ABC):
    @abc.abstractmethod
    def save_template(self, template: CouponTemplate) -> int:
        """Insert (``id == 0``) or update a template; return its id."""

    @abc.abstractmethod
    def lock_template(self, template_id: int) -> None:
        """Hold the template's row until the transaction ends, so concurrent issues
        from several processes cannot pass its limits together."""

    @abc.abstractmethod
    def template(self, template_id: int) -> CouponTemplate | None: ...

    @abc.abstractmethod
    def template_by_name(self, name: str) -> CouponTemplate | None: ...

    @abc.abstractmethod
    def templates(self) -> list[CouponTemplate]: ...

    @abc.abstractmethod
    def issued_to(self, template_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        """How many coupons of the template each user holds (any status)."""

    @abc.abstractmethod
    def issue(self, coupons: Sequence[Coupon]) -> list[int]:
        """Insert coupons (``id`` ignored) and raise their templates' issue counts."""

    @abc.abstractmethod
    def by_codes(self, codes: Sequence[str]) -> dict[str, Coupon]: ...

    @abc.abstractmethod
    def of_user(self, user_id: int, status: str | None = None) -> list[Coupon]: ...

    @abc.abstractmethod
    def set_status(self, coupon_ids: Sequence[int], status: str, order_id: int | None,
                   at: datetime | None) -> None: ...

    @abc.abstractmethod
    def due(self, now: datetime, limit: int) -> list[Coupon]:
        """Issued coupons whose validity ended at or before ``now``."""

    @abc.abstractmethod
    def save_activity(self, activity: Activity) -> int: ...

    @abc.abstractmethod
    def activities(self) -> list[Activity]: ...

    @abc.abstractmethod
    def use_budget(self, kind: str, source_id: int, fen: int) -> None:
        """Add ``fen`` (may be negative) to the loss-leader budget used by a
        template (``kind="coupon"``) or activity (``kind="activity"``)."""

    @abc.abstractmethod
    def move(self, coupon_ids: Sequence[int], user_id: int) -> None: ...


class TierStore(abc.ABC):
    @abc.abstractmethod
    def save_tier(self, tier: Tier) -> None: ...

    @abc.abstractmethod
    def delete_tier(self, name: str) -> None: ...

    @abc.abstractmethod
    def tiers(self) -> list[Tier]:
        """Every tier, lowest rank first."""

    @abc.abstractmethod
    def add_growth(self, entries: Sequence[GrowthEntry]) -> None: ...

    @abc.abstractmethod
    def growth(self, user_id: int, since: datetime | None) -> int:
        """Sum of the user's growth entries at or after ``since``."""

    @abc.abstractmethod
    def growth_of(self, user_ids: Sequence[int], since: datetime | None) -> dict[int, int]:
        """Growth at or after ``since`` of each of ``user_ids`` (0 for those without entries)."""

    @abc.abstractmethod
    def growth_by_ref(self, ref: str) -> int: ...

    @abc.abstractmethod
    def growth_since(self, since: datetime | None) -> dict[int, int]:
        """Every user's growth at or after ``since`` (users with entries only)."""

    @abc.abstractmethod
    def current(self, user_ids: Sequence[int]) -> dict[int, str]:
        """Current tier name of users that have one."""

    @abc.abstractmethod
    def set_current(self, changes: Sequence[TierChange]) -> None:
        """Set users' current tier (``new`` may be ``None``) and append the history."""

    @abc.abstractmethod
    def history(self, user_id: int) -> list[TierChange]: ...

    @abc.abstractmethod
    def growth_ids(self, user_id: int, refs: Sequence[str] | None = None) -> list[int]:
        """Ids of the user's growth entries (only those with one of ``refs``, if given)."""

    @abc.abstractmethod
    def move_growth(self, entry_ids: Sequence[int], user_id: int) -> None:
        """Reassign growth entries to another user (merges keep their dates)."""
