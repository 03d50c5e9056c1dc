"""From the model and the catalog to a ranked, explained list (no storage here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .catalog import Catalog
from .model import ItemModel
from .models import Reason, ReasonKind, Recommendation

__all__ = ["for_user", "popular", "similar"]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

#: How many of the user's products (by recent interest) the neighbours are gathered from.
SEEDS = 20
#: Weight of category affinity against co-occurrence (a product in a category the user
#: spends all their attention on, as popular as the best-seller, scores this much).
CATEGORY_WEIGHT = 0.2
#: Weight of popularity: small, so it only orders what nothing else distinguishes.
POPULAR_WEIGHT = 1e-3


def similar(model: ItemModel, catalog: Catalog, item: int, k: int) -> list[Recommendation]:
    """The ``k`` products that go best with ``item``, each explained by its co-occurrences."""
    if item >= model.n_items:
        return []
    found = model.neighbours(item)
    mask = catalog.allowed(model.n_items, None) & (found.score > 0)
    mask[item] = False
    picked = _top(found.score, mask, catalog, k)
    sku = catalog.skus[item]
    out = []
    for j in picked:
        reasons = []
        if found.co_bought[j]:
            reasons.append(Reason(kind=ReasonKind.CO_BOUGHT, sku=sku, users=int(found.co_bought[j])))
        if found.co_viewed[j]:
            reasons.append(Reason(kind=ReasonKind.CO_VIEWED, sku=sku, users=int(found.co_viewed[j])))
        out.append(_recommendation(catalog, int(j), float(found.score[j]), reasons))
    return out


def for_user(model: ItemModel, catalog: Catalog, user_id: int, k: int, *, tier: str | None,
             context: Sequence[int] = (), exclude_bought: bool) -> list[Recommendation]:
    """The ``k`` products for ``user_id``: neighbours of what they recently showed interest in
    (and of ``context``, the products they are looking at or have in their cart, together
    weighing as much as their history), their categories, then popularity."""
    n = model.n_items
    pairs = model.user_pairs(user_id)
    items = model.pair_item[pairs]
    weights = model.interest[pairs]
    if weights.sum() > 0:
        weights = weights / weights.sum()
    context = [c for c in context if c < n]
    if context:
        items = np.append(items, context)
        weights = np.append(weights, np.full(len(context), 1.0 / len(context)))
    order = np.lexsort((catalog.rank[items], -weights))[:SEEDS]
    co = np.zeros(n)
    best = np.zeros(n)
    best_seed = np.full(n, -1, dtype=np.int64)
    for seed, weight in zip(items[order].tolist(), weights[order].tolist(), strict=True):
        part = weight * model.neighbours(seed).score
        stronger = part > best
        best_seed[stronger], best[stronger] = seed, part[stronger]
        co += part
    popular = model.popularity / model.popularity.max() if n and model.popularity.max() > 0 else np.zeros(n)
    affinity = np.zeros(len(catalog.categories) + 1)
    categories = catalog.category[items]
    np.add.at(affinity, categories, weights)  # -1 (no category) lands in the spare last slot
    affinity[-1] = 0.0
    total = affinity[:-1].sum()
    per_item = catalog.category[:n]
    by_category = CATEGORY_WEIGHT * popular * (affinity[per_item] / total if total > 0 else 0.0)
    score = co + by_category + POPULAR_WEIGHT * popular
    mask = catalog.allowed(n, tier) & (score > 0)
    mask[context] = False
    if exclude_bought:
        mask[model.pair_item[pairs][model.bought[pairs]]] = False
    out = []
    for j in _top(score, mask, catalog, k):
        reasons = []
        if co[j] > 0:
            seed = int(best_seed[j])
            found = model.neighbours(seed)
            if found.co_bought[j]:
                reasons.append(Reason(kind=ReasonKind.CO_BOUGHT, sku=catalog.skus[seed],
                                      users=int(found.co_bought[j])))
            else:
                reasons.append(Reason(kind=ReasonKind.CO_VIEWED, sku=catalog.skus[seed],
                                      users=int(found.co_viewed[j])))
        if by_category[j] > 0:
            category = Reason(kind=ReasonKind.CATEGORY, category=catalog.categories[per_item[j]])
            reasons.insert(0 if by_category[j] > co[j] else len(reasons), category)
        if not reasons:
            reasons.append(Reason(kind=ReasonKind.POPULAR))
        out.append(_recommendation(catalog, int(j), float(score[j]), reasons))
    return out


def popular(model: ItemModel, catalog: Catalog, user_id: int, k: int, *, tier: str | None) -> list[int]:
    """Codes of the ``k`` most popular products the user may see and has not bought."""
    pairs = model.user_pairs(user_id)
    mask = catalog.allowed(model.n_items, tier) & (model.popularity > 0)
    mask[model.pair_item[pairs][model.bought[pairs]]] = False
    return _top(model.popularity, mask, catalog, k)


def _top(score: Floats, mask: Bools, catalog: Catalog, k: int) -> list[int]:
    """The ``k`` best codes under ``mask``: highest score, then lowest sku."""
    candidates = np.flatnonzero(mask)
    order = np.lexsort((catalog.rank[candidates], -score[candidates]))[:k]
    picked: list[int] = candidates[order].tolist()
    return picked


def _recommendation(catalog: Catalog, item: int, score: float, reasons: list[Reason]) -> Recommendation:
    return Recommendation(sku=catalog.skus[item], title=catalog.titles.get(item, catalog.skus[item]),
                          score=score, reasons=tuple(reasons))
