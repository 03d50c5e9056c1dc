"""What ``ws.recommendations`` returns: a product, its score and why it was chosen."""

from __future__ import annotations

import enum
from decimal import Decimal

import attrs

__all__ = ["CartSuggestion", "Evaluation", "Reason", "ReasonKind", "Recommendation"]


class ReasonKind(enum.StrEnum):
    """Why a product was recommended."""

    #: Customers who bought ``sku`` also bought it (``users`` of them, after refunds and erasures).
    CO_BOUGHT = "co_bought"
    #: Customers who viewed or bought ``sku`` also viewed or bought it (but not both bought).
    CO_VIEWED = "co_viewed"
    #: The user's recent interest in ``category`` (views and purchases there).
    CATEGORY = "category"
    #: Among the shop's most popular products lately (new users, or nothing closer to go on).
    POPULAR = "popular"


@attrs.frozen(kw_only=True)
class Reason:
    """One reason a product was recommended.

    ``sku`` names the product it goes with (``CO_BOUGHT``, ``CO_VIEWED``) and
    ``users`` how many customers did both; ``category`` is the category of a
    ``CATEGORY`` reason. :attr:`text` says it in a sentence for people."""

    kind: ReasonKind
    sku: str | None = None
    category: str | None = None
    users: int = 0

    @property
    def text(self) -> str:
        """The reason in words: ``"bought together with TEA by 3 customers"``."""
        people = f"{self.users} customer" + ("" if self.users == 1 else "s")
        if self.kind is ReasonKind.CO_BOUGHT:
            return f"bought together with {self.sku} by {people}"
        if self.kind is ReasonKind.CO_VIEWED:
            return f"viewed together with {self.sku} by {people}"
        if self.kind is ReasonKind.CATEGORY:
            return f"recent interest in {self.category}"
        return "popular lately"


@attrs.frozen(kw_only=True)
class Recommendation:
    """A recommended product: ``sku`` and ``title``, its ``score`` (higher is better;
    comparable only within one answer) and the ``reasons`` for it, strongest first."""

    sku: str
    title: str
    score: float
    reasons: tuple[Reason, ...]


@attrs.frozen(kw_only=True)
class Evaluation:
    """How well :meth:`~siyu.recommendations.Recommendations.for_user` would have predicted
    the last ``holdout_days``: a model built from what happened before them, asked for
    ``k`` picks for each customer who bought something new in them (``users``).

    ``hit_rate``: the share of those customers with at least one of their new products
    among the picks; ``ndcg``: normalised discounted cumulative gain of the picks (1.0: the
    new products ranked first). ``popularity_*``: the same for the ``k`` most popular
    products each customer had not bought, the baseline to beat."""

    holdout_days: int
    k: int
    users: int
    hit_rate: float
    ndcg: float
    popularity_hit_rate: float
    popularity_ndcg: float

    @property
    def lift(self) -> float | None:
        """``hit_rate / popularity_hit_rate`` (``None`` when popularity hit nobody)."""
        return self.hit_rate / self.popularity_hit_rate if self.popularity_hit_rate else None


@attrs.frozen(kw_only=True)
class CartSuggestion:
    """A product to add to a cart (搭配): the ``recommendation``, how much more the cart's
    discounts come to with one unit of it (``saves``, yuan) and the offers or coupons it
    newly qualifies the cart for (``unlocks``, as named in ``Quote.applied``)."""

    recommendation: Recommendation
    saves: Decimal
    unlocks: tuple[str, ...]
