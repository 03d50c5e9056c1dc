"""``ws.recommendations``: products for a user, and products that go with a product."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from .._clock import to_us
from .._validation import check_int
from ..analytics.facts import UserFacts
from ..campaigns.variables import VariableSource
from ..errors import NotFound
from ..money import to_yuan
from ..services._common import require_user
from ..services.products import check_sku
from . import ranking
from .catalog import Catalog
from .interactions import Interactions, Rows
from .model import ItemModel
from .models import CartSuggestion, Evaluation, Recommendation

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..analytics import Analytics
    from ..services.promotions import Promotions
    from ..services.tiers import Tiers
    from ..storage.base import Transaction

__all__ = ["Recommendations"]

#: How fast co-occurrence evidence fades: a purchase this old counts half.
HALF_LIFE = timedelta(days=90)
#: How fast a user's own interest fades: what they viewed this long ago counts half.
INTEREST_HALF_LIFE = timedelta(days=7)
#: A model that takes ``t`` seconds to build is rebuilt after a write at most every
#: ``REBUILD_SHARE * t`` seconds (so rebuilding takes at most about 1% of the time): a small
#: shop's model (built in milliseconds) follows every write, a large one's lags a little.
REBUILD_SHARE = 100
#: A model built faster than this (seconds) is always rebuilt at once.
QUICK_BUILD = 0.05
#: How many related products :meth:`Recommendations.for_cart` prices with the cart.
CART_CANDIDATES = 10
#: Most products one call returns.
MAX_K = 200
#: Campaign template variables: ``rec_<n>_sku`` / ``rec_<n>_title``, ``n`` up to :data:`MAX_VARIABLE`.
_VARIABLE = re.compile(r"rec_([1-9][0-9]?)_(sku|title)")
MAX_VARIABLE = 20


class Recommendations:
    """``ws.recommendations``: :meth:`similar` (bought or viewed together) and
    :meth:`for_user` (personal picks), each result explained by its reasons.

    The model is built from counted order lines (units kept after refunds) and
    tracked ``product_view``, ``added_to_cart`` and ``product_favorited`` events
    whose ``properties`` carry a ``sku``, read through the same per-user facts
    as ``ws.analytics`` and caught up from the event log before a call when
    anything was written. A model that takes ``t`` seconds to build (a large
    shop: seconds) is rebuilt after writes at most every ``100 * t``, so its
    picks may lag the latest writes by that much; one built in under 50 ms
    (a small shop's) follows every write. Erased users' orders and events leave the model on the next call,
    whatever its age. Inactive products are never recommended, nor exclusive
    products to users outside their tiers.
    """

    def __init__(self, uow: UnitOfWork, *, analytics: Analytics, tiers: Tiers, promotions: Promotions) -> None:
        self._uow = uow
        self._promotions = promotions
        self._analytics = analytics
        self._tiers = tiers
        self._lock = threading.Lock()
        self._interactions = Interactions()
        self._erased = np.zeros(0, dtype=np.int64)
        self._model: ItemModel | None = None
        self._catalog: Catalog | None = None
        self._head = -1
        self._products = -1
        #: Whether rows changed since the model was built, when it was built and how long it took.
        self._stale = False
        self._built_at = 0.0
        self._build_seconds = 0.0

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
                                    context=() if code is None else (code,), exclude_bought=bool(exclude_bought))

    def for_cart(self, user_id: int, cart: Sequence[Mapping[str, Any]], k: int = 3) -> list[CartSuggestion]:
        """Up to ``k`` products to add to ``cart`` (搭配), as ``ws.promotions.quote`` takes carts:
        those that go with what is in it (and with the user's history), and first those that
        unlock an offer or a coupon the cart misses, such as a threshold it falls short of.

        Each suggestion carries the :class:`Recommendation` and ``saves``: how much more
        the cart's discounts come to with one unit of it added (``Decimal`` yuan), with
        the ``unlocks`` offers it newly qualifies for. Nothing is stored."""
        k = check_int(k, "k", minimum=1, maximum=MAX_K)
        base = self._promotions.quote(user_id, cart)
        in_cart = sorted({line.sku for line in base.lines})
        with self._analytics.facts(event_rows=True) as (tx, facts):
            uid = require_user(tx, user_id)
            model, catalog = self._current(tx, facts)
            tier = self._tiers.tier_in(tx, uid)
            context = tuple(catalog.products[sku] for sku in in_cart if sku in catalog.products)
            picks = ranking.for_user(model, catalog, uid, max(k, CART_CANDIDATES),
                                     tier=None if tier is None else tier.name, context=context, exclude_bought=True)
        offers = {name for name, _ in base.applied}
        found = []
        for rank, pick in enumerate(p for p in picks if p.sku not in in_cart):
            quote = self._promotions.quote(uid, [*cart, {"sku": pick.sku, "qty": 1}])
            unlocks = tuple(sorted({name for name, _ in quote.applied} - offers))
            saves = to_yuan(quote.discount_fen - base.discount_fen)
            found.append((not unlocks, -saves if unlocks else 0, rank,
                          CartSuggestion(recommendation=pick, saves=saves, unlocks=unlocks)))
        return [suggestion for *_, suggestion in sorted(found, key=lambda f: f[:3])[:k]]

    def evaluate(self, holdout_days: int = 14, k: int = 10) -> Evaluation:
        """Hit rate and NDCG @``k`` of :meth:`for_user` on the last ``holdout_days`` held out,
        against the popularity baseline: whether recommending helps before anyone is messaged.

        The model is rebuilt from the orders and events before the holdout; each customer who
        bought, in the holdout, a product they had not bought before is asked for ``k`` picks,
        and a pick is right when it is one of those products."""
        days = check_int(holdout_days, "holdout_days", minimum=1, maximum=3650)
        k = check_int(k, "k", minimum=1, maximum=MAX_K)
        cutoff = to_us(self._uow.now() - timedelta(days=days))
        with self._analytics.facts(event_rows=True) as (tx, facts):
            _, catalog = self._current(tx, facts)
            rows = self._interactions.rows(facts, self._erased)
            before = rows.at < cutoff
            model = self._build(len(self._interactions.skus), Rows(
                rows.user[before], rows.item[before], rows.at[before], rows.base[before], rows.bought[before]))
            bought_before = set(zip(model.pair_user[model.bought].tolist(), model.pair_item[model.bought].tolist(),
                                    strict=True))
            later: dict[int, set[int]] = {}
            for uid, item in zip(rows.user[~before & rows.bought].tolist(), rows.item[~before & rows.bought].tolist(),
                                 strict=True):
                if (uid, item) not in bought_before:
                    later.setdefault(uid, set()).add(item)
            tiers = self._tiers.tiers_in(tx, later)
        codes = catalog.products
        scores = np.zeros((len(later), 4))
        for row, (uid, wanted) in enumerate(sorted(later.items())):
            tier = tiers.get(uid)
            name = None if tier is None else tier.name
            picks = [codes[r.sku] for r in ranking.for_user(model, catalog, uid, k, tier=name, exclude_bought=True)]
            scores[row] = (*_hit_ndcg(picks, wanted, k),
                           *_hit_ndcg(ranking.popular(model, catalog, uid, k, tier=name), wanted, k))
        means = scores.mean(axis=0) if len(later) else np.zeros(4)
        return Evaluation(holdout_days=days, k=k, users=len(later), hit_rate=float(means[0]), ndcg=float(means[1]),
                          popularity_hit_rate=float(means[2]), popularity_ndcg=float(means[3]))

    # -- campaigns ---------------------------------------------------------------------------
    def variable_source(self) -> VariableSource:
        """Campaign template variables ``rec_<n>_sku`` and ``rec_<n>_title`` (``n`` from 1 to
        20): each user's own ``n``-th pick of :meth:`for_user`. A user with fewer picks is
        skipped with reason ``missing_variable``. The workspace registers it."""
        return VariableSource(provides=lambda name: _variable(name) is not None, values=self._variables)

    def _variables(self, tx: Transaction, user_ids: Sequence[int], names: Sequence[str]) -> dict[int, dict[str, str]]:
        wanted = [(name, found) for name in names if (found := _variable(name)) is not None]
        k = max(n for _, (n, _) in wanted)
        model, catalog = self._model_in(tx)
        tiers = self._tiers.tiers_in(tx, user_ids)
        out: dict[int, dict[str, str]] = {}
        for uid in user_ids:
            tier = tiers.get(uid)
            picks = ranking.for_user(model, catalog, uid, k, tier=None if tier is None else tier.name,
                                     exclude_bought=True)
            out[uid] = {name: getattr(picks[n - 1], field) for name, (n, field) in wanted if n <= len(picks)}
        return out

    def _model_in(self, tx: Transaction) -> tuple[ItemModel, Catalog]:
        """The model for a caller's transaction (a campaign batch, which may be a write): the
        one last built, or, before any, one built from what the transaction sees."""
        with self._lock:
            if self._model is not None and self._catalog is not None:
                return self._model, self._catalog
        private = UserFacts()
        private.refresh(tx, tx.event_log.head(), event_rows=True)
        interactions = Interactions()
        interactions.catch_up(tx, private)
        rows = interactions.rows(private, np.array(tx.analytics.erased_users(), dtype=np.int64))
        model = self._build(len(interactions.skus), rows)
        for product in (products := tx.products.all()):
            interactions.code(product.sku)
        catalog = Catalog.build(interactions.skus, interactions.codes, products)
        with self._lock:
            if self._model is None:
                # Kept for the next batches; the first call outside rebuilds it from the shared
                # facts (nothing is marked built), so a rolled-back write cannot stay in it.
                self._model, self._catalog = model, catalog
        return model, catalog

    # -- upkeep --------------------------------------------------------------------------------
    def _current(self, tx: Transaction, facts: UserFacts) -> tuple[ItemModel, Catalog]:
        """The model and catalog as of ``tx``: rebuilt when the log moved and what the model
        reads changed, the catalog when the products did."""
        head, products = tx.event_log.head(), tx.meta.version("products")
        with self._lock:
            rebuilt = force = False
            if self._model is None or head != self._head:
                changed = self._interactions.catch_up(tx, facts)
                erased = np.array(tx.analytics.erased_users(), dtype=np.int64)
                # An erasure takes effect at once; other changes may wait for the next rebuild.
                force = self._model is None or not np.array_equal(erased, self._erased)
                self._erased = erased
                self._stale = self._stale or changed or force
                self._head = head
            if self._stale and (force or self._build_seconds < QUICK_BUILD
                                or time.monotonic() - self._built_at >= REBUILD_SHARE * self._build_seconds):
                started = time.monotonic()
                self._model = self._build(len(self._interactions.skus), self._interactions.rows(facts, self._erased))
                self._built_at = time.monotonic()
                self._build_seconds = self._built_at - started
                self._stale, rebuilt = False, True
            if rebuilt or self._catalog is None or products != self._products:
                catalog = tx.products.all()
                for product in catalog:
                    self._interactions.code(product.sku)
                self._catalog = Catalog.build(self._interactions.skus, self._interactions.codes, catalog)
                self._products = products
            assert self._model is not None
            return self._model, self._catalog

    @staticmethod
    def _build(n_items: int, rows: Rows) -> ItemModel:
        return ItemModel.build(n_items, rows.user, rows.item, rows.at, rows.base, rows.bought,
                               half_life_us=_us(HALF_LIFE), interest_half_life_us=_us(INTEREST_HALF_LIFE))

    @staticmethod
    def _product_code(catalog: Catalog, sku: str) -> int:
        code = catalog.products.get(sku)
        if code is None:
            raise NotFound(f"no product with sku {sku!r}; add it with ws.products.add(...) or pass an existing sku")
        return code


def _variable(name: str) -> tuple[int, str] | None:
    """``rec_3_title`` -> ``(3, "title")``; ``None`` for any other name."""
    found = _VARIABLE.fullmatch(name)
    if found is None or not 1 <= int(found[1]) <= MAX_VARIABLE:
        return None
    return int(found[1]), found[2]


def _hit_ndcg(picks: Sequence[int], wanted: set[int], k: int) -> tuple[float, float]:
    """Whether any pick is wanted, and the picks' NDCG@k with every wanted product relevant."""
    gains = [1 / np.log2(rank + 2) for rank, item in enumerate(picks) if item in wanted]
    ideal = sum(1 / np.log2(rank + 2) for rank in range(min(len(wanted), k)))
    return float(bool(gains)), float(sum(gains) / ideal)


def _us(span: timedelta) -> int:
    return span // timedelta(microseconds=1)
