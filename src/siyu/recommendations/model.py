"""Item-to-item co-occurrence over decayed interactions, in NumPy.

Every interaction (a product bought on a counted order line, or viewed, added
to a cart or favorited in a tracked event) carries a base weight and decays
by half every ``half_life``. Per user and product the weights add up to
``r[u, i]``; a product's popularity is ``pop[i] = sum_u r[u, i]``.

How well ``j`` goes with ``i`` is the cosine of their columns::

    sim(i, j) = sum_u r[u, i] * r[u, j] / sqrt(pop[i] * pop[j])

Dividing by ``sqrt(pop[j])`` is the popularity correction: a best-seller that
everyone buys co-occurs with everything, and without it would top every list.

No ``items x items`` matrix is kept (10,000 products would be 800 MB). The
pairs are held twice, by user and by product; ``sim(i, .)`` is one gather over
the users of ``i`` and one ``bincount``, computed on demand and cached per
product until the model is rebuilt. Exponential decay is shift-invariant, so
weights are taken relative to the latest interaction rather than the clock:
the same data gives the same model whenever it is built.
"""

from __future__ import annotations

import threading

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["ItemModel", "Neighbours"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

#: How many products' neighbour vectors a model keeps at hand.
_CACHED = 2048


@attrs.frozen
class Neighbours:
    """``sim(i, .)`` for one product ``i`` over every product, with how many users
    bought both (``co_bought``) and how many interacted with both without both
    buying (``co_viewed``). ``score[i]`` and its counts are 0."""

    score: Floats
    co_bought: Ints
    co_viewed: Ints


class ItemModel:
    """The decayed user-product weights, held by user and by product. Build with :meth:`build`."""

    def __init__(self, n_items: int, pair_user: Ints, pair_item: Ints, weight: Floats, interest: Floats,
                 bought: Bools) -> None:
        self.n_items = n_items
        #: Pairs sorted by (user, item): the user, the item, the long-decay weight ``r``,
        #: the short-decay weight (recent interest) and whether the user bought it.
        self.pair_user, self.pair_item = pair_user, pair_item
        self.weight, self.interest, self.bought = weight, interest, bought
        order = np.argsort(pair_item, kind="stable")
        self._by_item = order
        self._item_start = np.searchsorted(pair_item[order], np.arange(n_items + 1))
        self.popularity: Floats = np.bincount(pair_item, weights=weight, minlength=n_items).astype(np.float64)
        self._cache: dict[int, Neighbours] = {}
        self._lock = threading.Lock()

    @classmethod
    def build(cls, n_items: int, user: Ints, item: Ints, at: Ints, base: Floats, bought: Bools, *,
              half_life_us: int, interest_half_life_us: int) -> ItemModel:
        """A model from one row per interaction: ``user``, ``item`` (a code below ``n_items``),
        instant ``at`` (µs), ``base`` weight and whether it was a purchase."""
        if len(user) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(n_items, empty, empty, np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool))
        age = (at - at.max()).astype(np.float64)
        keys, inverse = np.unique(user * n_items + item, return_inverse=True)
        weight = np.bincount(inverse, weights=base * np.exp2(age / half_life_us)).astype(np.float64)
        interest = np.bincount(inverse, weights=base * np.exp2(age / interest_half_life_us)).astype(np.float64)
        was_bought = np.zeros(len(keys), dtype=bool)
        was_bought[inverse[bought]] = True
        return cls(n_items, keys // n_items, keys % n_items, weight, interest, was_bought)

    def user_pairs(self, user_id: int) -> slice:
        """The user's pairs (a slice of the ``pair_*`` columns)."""
        lo, hi = np.searchsorted(self.pair_user, [user_id, user_id + 1])
        return slice(int(lo), int(hi))

    def neighbours(self, item: int) -> Neighbours:
        """``sim(item, .)`` and the co-occurrence counts behind it (cached per item)."""
        with self._lock:
            found = self._cache.get(item)
        if found is not None:
            return found
        n = self.n_items
        mine = self._by_item[self._item_start[item]:self._item_start[item + 1]]
        users = self.pair_user[mine]
        lo = np.searchsorted(self.pair_user, users)
        hi = np.searchsorted(self.pair_user, users, side="right")
        lengths = hi - lo
        owner = np.repeat(np.arange(len(users)), lengths)
        # The pairs of every user of `item`, as one index: each user's run lo..hi-1.
        pairs = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths) + lo[owner]
        others = self.pair_item[pairs]
        co = np.bincount(others, weights=self.weight[mine][owner] * self.weight[pairs], minlength=n)
        both = self.bought[mine][owner] & self.bought[pairs]
        co_bought = np.bincount(others[both], minlength=n).astype(np.int64)
        co_viewed = np.bincount(others[~both], minlength=n).astype(np.int64)
        norm = np.sqrt(self.popularity[item] * self.popularity)
        score = np.divide(co, norm, out=np.zeros(n), where=norm > 0)
        score[item], co_bought[item], co_viewed[item] = 0.0, 0, 0
        found = Neighbours(score, co_bought, co_viewed)
        with self._lock:
            if len(self._cache) >= _CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[item] = found
        return found
