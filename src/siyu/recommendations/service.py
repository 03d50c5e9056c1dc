"""``ws.recommendations``: products for a user, and products that go with a product."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from .._validation import check_int
from ..errors import NotFound
from ..services._common import require_user
from ..services.products import check_sku
from . import ranking
from .catalog import Catalog
from .interactions import Interactions
from .model import ItemModel
from .models import Recommendation

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..analytics import Analytics
    from ..analytics.facts import UserFacts
    from ..services.tiers import Tiers
    from ..storage.base import Transaction

__all__ = ["Recommendations"]

#: How fast co-occurrence evidence fades: a purchase this old counts half.
HALF_LIFE = timedelta(days=90)
#: How fast a user's own interest fades: what they viewed this long ago counts half.
INTEREST_HALF_LIFE = timedelta(days=7)
#: Most products one call returns.
MAX_K = 200


class Recommendations:
    """``ws.recommendations``: :meth:`similar` (bought or viewed together) and
    :meth:`for_user` (personal picks), each result explained by its reasons.

    The model is built from counted order lines (units kept after refunds) and
    tracked ``product_view``, ``added_to_cart`` and ``product_favorited`` events
    whose ``properties`` carry a ``sku``, read through the same per-user facts
    as ``ws.analytics`` and caught up from the event log before a call when
    anything was written. Erased users' orders and events leave the model on
    the next call. Inactive products are never recommended, nor exclusive
    products to users outside their tiers.
    """

    def __init__(self, uow: UnitOfWork, *, analytics: Analytics, tiers: Tiers) -> None:
        self._uow = uow
        self._analytics = analytics
        self._tiers = tiers
        self._lock = threading.Lock()
        self._interactions = Interactions()
        self._erased = np.zeros(0, dtype=np.int64)
        self._model: ItemModel | None = None
        self._catalog: Catalog | None = None
        self._head = -1
        self._products = -1

    def similar(self, sku: str, k: int = 10) -> list[Recommendation]:
        """Up to ``k`` active products most often bought or viewed by the same customers as
        ``sku``, best first, each with reasons naming ``sku`` and how many customers did both.
        Exclusive products are left out (no user to check the tier of: use :meth:`for_user`
        with ``context_sku``). Raises :class:`~siyu.errors.NotFound` for a sku that is not a product."""
        sku = check_sku(sku)
        k = check_int(k, "k", minimum=1, maximum=MAX_K)
        with self._analytics.facts(event_rows=True) as (tx, facts):
            model, catalog = self._current(tx, facts)
            code = self._product_code(catalog, sku)
            return ranking.similar(model, catalog, code, k)

    def for_user(self, user_id: int, k: int = 10, context_sku: str | None = None, *,
                 exclude_bought: bool = True) -> list[Recommendation]:
        """Up to ``k`` products for the user, best first.

        Products bought or viewed together with what the user recently showed
        interest in (the last week counts most), products of the categories
        they spend their attention on, then the shop's popular products (all a
        new user gets). ``context_sku``: the product the user is looking at,
        weighed as much as their whole history and never recommended itself.
        Products the user bought on a counted order are left out unless
        ``exclude_bought=False``; so are inactive products and exclusive
        products their tier may not buy."""
        k = check_int(k, "k", minimum=1, maximum=MAX_K)
        context = None if context_sku is None else check_sku(context_sku)
        with self._analytics.facts(event_rows=True) as (tx, facts):
            uid = require_user(tx, user_id)
            model, catalog = self._current(tx, facts)
            code = None if context is None else self._product_code(catalog, context)
            tier = self._tiers.tier_in(tx, uid)
            return ranking.for_user(model, catalog, uid, k, tier=None if tier is None else tier.name,
                                    context=code, exclude_bought=bool(exclude_bought))

    # -- upkeep --------------------------------------------------------------------------------
    def _current(self, tx: Transaction, facts: UserFacts) -> tuple[ItemModel, Catalog]:
        """The model and catalog as of ``tx``: rebuilt when the log moved and what the model
        reads changed, the catalog when the products did."""
        head, products = tx.event_log.head(), tx.meta.version("products")
        with self._lock:
            rebuilt = False
            if self._model is None or head != self._head:
                changed = self._interactions.catch_up(tx, facts)
                erased = np.array(tx.analytics.erased_users(), dtype=np.int64)
                if changed or self._model is None or not np.array_equal(erased, self._erased):
                    self._erased = erased
                    rows = self._interactions.rows(facts, erased)
                    self._model = ItemModel.build(
                        len(self._interactions.skus), rows.user, rows.item, rows.at, rows.base, rows.bought,
                        half_life_us=_us(HALF_LIFE), interest_half_life_us=_us(INTEREST_HALF_LIFE))
                    rebuilt = True
                self._head = head
            if rebuilt or self._catalog is None or products != self._products:
                catalog = tx.products.all()
                for product in catalog:
                    self._interactions.code(product.sku)
                self._catalog = Catalog.build(self._interactions.skus, self._interactions.codes, catalog)
                self._products = products
            assert self._model is not None
            return self._model, self._catalog

    @staticmethod
    def _product_code(catalog: Catalog, sku: str) -> int:
        code = catalog.products.get(sku)
        if code is None:
            raise NotFound(f"no product with sku {sku!r}; add it with ws.products.add(...) or pass an existing sku")
        return code


def _us(span: timedelta) -> int:
    return span // timedelta(microseconds=1)
