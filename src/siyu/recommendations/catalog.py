"""The products as columns over the recommendation model's product codes."""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt

from ..models.commerce import Product, ProductRole

__all__ = ["Catalog"]


@attrs.frozen
class Catalog:
    """Per product code: whether it may be recommended at all (a product of the shop,
    active), its category as a code into :attr:`categories` (``-1``: none), the tiers an
    exclusive product is limited to, its title, its rank among the skus (ties between
    equal scores go to the lower sku, so answers are deterministic)."""

    skus: list[str]
    active: npt.NDArray[np.bool_]
    category: npt.NDArray[np.int64]
    categories: list[str]
    exclusive: dict[int, frozenset[str]]
    titles: dict[int, str]
    rank: npt.NDArray[np.int64]
    #: The shop's products: sku -> code.
    products: dict[str, int]

    @classmethod
    def build(cls, skus: list[str], codes: dict[str, int], products: list[Product]) -> Catalog:
        """Columns for ``skus`` (codes ``0..n-1``; every product must have a code in ``codes``)."""
        n = len(skus)
        active = np.zeros(n, dtype=bool)
        category = np.full(n, -1, dtype=np.int64)
        categories = sorted({p.category for p in products if p.category})
        category_code = {c: i for i, c in enumerate(categories)}
        exclusive, titles = {}, {}
        for product in products:
            code = codes[product.sku]
            active[code] = product.active
            titles[code] = product.title
            if product.category:
                category[code] = category_code[product.category]
            if product.role is ProductRole.EXCLUSIVE and product.tiers:
                exclusive[code] = frozenset(product.tiers)
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(np.array(skus, dtype=object), kind="stable")] = np.arange(n)
        return cls(list(skus), active, category, categories, exclusive, titles, rank,
                   {p.sku: codes[p.sku] for p in products})

    def allowed(self, n: int, tier: str | None) -> npt.NDArray[np.bool_]:
        """Which of the first ``n`` codes may be shown to a user of ``tier``."""
        mask = self.active[:n].copy()
        for code, tiers in self.exclusive.items():
            if code < n and tier not in tiers:
                mask[code] = False
        return mask
