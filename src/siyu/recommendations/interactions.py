"""Who bought or viewed which product, kept current beside the analytics facts.

The analytics facts (:class:`~siyu.analytics.facts.UserFacts`) already hold,
by order id, each order's buyer, ``paid_at``, net and whether it counts, and
by event id each tracked event's user, kind and instant, all caught up from
the event log (and cleared for rows that left). What they lack is the
product: this module adds it, an order's lines (sku and units kept after
refunds) and a tracked event's ``sku`` property, and reads only what is new
or changed: orders above the highest id seen, orders whose net moved (a
refund), events above the highest id seen. Owners, instants and whether an
order still counts are always taken from the facts, so a merge, a refund or
an order gone is followed without reading anything here.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt

from ..analytics.facts import UserFacts
from ..storage.base import Transaction

__all__ = ["EVENT_WEIGHTS", "PURCHASE_WEIGHT", "Interactions", "Rows"]

Ints = npt.NDArray[np.int64]

#: Base weight of a purchase (one counted order line with units kept).
PURCHASE_WEIGHT = 1.0
#: Tracked event kinds whose ``sku`` property counts as interest in a product, and their base weights.
EVENT_WEIGHTS = {"product_view": 0.25, "added_to_cart": 0.5, "product_favorited": 0.5}
_UNREAD, _NONE = -2, -1
#: Past this many changed orders one read of every line is cheaper than reading them by id.
_RELOAD_ALL = 50_000


@attrs.frozen
class Rows:
    """One row per interaction, as :meth:`~siyu.recommendations.model.ItemModel.build` takes them."""

    user: Ints
    item: Ints
    at: Ints
    base: npt.NDArray[np.float64]
    bought: npt.NDArray[np.bool_]


class Interactions:
    """Order lines and product events by id, with products as dense codes (:attr:`skus`)."""

    def __init__(self) -> None:
        self.skus: list[str] = []
        self.codes: dict[str, int] = {}
        self._line_order: Ints = np.zeros(0, dtype=np.int64)
        self._line_item: Ints = np.zeros(0, dtype=np.int64)
        #: Each order's buyer and net as last read (``None``: nothing read yet).
        self._seen: npt.NDArray[np.int64] | None = None
        #: Each event's product code (``_NONE``: no product, ``_UNREAD``: not looked at yet).
        self._event_item: Ints = np.zeros(0, dtype=np.int64)

    def code(self, sku: str) -> int:
        """The dense code of ``sku`` (given one on first sight)."""
        found = self.codes.get(sku)
        if found is None:
            found = self.codes[sku] = len(self.skus)
            self.skus.append(sku)
        return found

    def _codes_of(self, skus: Sequence[str]) -> Ints:
        """Codes of many skus: one dictionary look-up per distinct sku, not per row."""
        for sku in sorted(set(skus) - self.codes.keys()):
            self.code(sku)
        return np.fromiter(map(self.codes.__getitem__, skus), dtype=np.int64, count=len(skus))

    def catch_up(self, tx: Transaction, facts: UserFacts) -> bool:
        """Read the lines and events that are new or changed since the last call; whether any were."""
        store = tx.analytics
        first = self._seen is None
        # An order whose buyer or net moved since the last read (new, late-committed, refunded,
        # merged, gone) has its lines read again; the facts found it through the log.
        seen = _extend(self._seen, len(facts.order_user))
        current = np.stack([facts.order_user, facts.order_net])
        changed = np.flatnonzero((seen != current).any(axis=0))
        if first or len(changed) > _RELOAD_ALL:
            rows = store.order_line_items(None)
            self._line_order, self._line_item = _empty(), _empty()
        else:
            rows = store.order_line_items(changed.tolist()) if len(changed) else []
            keep = ~np.isin(self._line_order, changed)
            self._line_order, self._line_item = self._line_order[keep], self._line_item[keep]
        kept = [(order, sku) for order, sku, units in rows if units > 0]
        if kept:
            orders, skus = zip(*kept, strict=True)
            self._line_order = np.concatenate([self._line_order, np.array(orders, dtype=np.int64)])
            self._line_item = np.concatenate([self._line_item, self._codes_of(skus)])
        self._seen = current.copy()
        # Events the facts hold, of a product kind, not looked at yet.
        size = len(facts.event_user)
        if len(self._event_item) < size:
            self._event_item = np.concatenate([self._event_item, np.full(size - len(self._event_item), _UNREAD)])
        codes = [facts.kind_code(kind) for kind in EVENT_WEIGHTS]
        unread = np.flatnonzero((self._event_item[:size] == _UNREAD) & (facts.event_user >= 0)
                                & np.isin(facts.event_kind, [c for c in codes if c >= 0]))
        if len(unread):
            self._event_item[unread] = _NONE
            found = store.event_items(unread.tolist() if not first else None, sorted(EVENT_WEIGHTS))
            if found:
                ids = np.array([e for e, _ in found], dtype=np.int64)
                inside = ids < size
                self._event_item[ids[inside]] = self._codes_of([sku for _, sku in found])[inside]
        return bool(first or len(changed) or len(unread))

    def rows(self, facts: UserFacts, erased: Ints) -> Rows:
        """Every interaction that still counts: counted orders' lines with units kept and
        product events, of users still there and not erased."""
        orders = self._line_order
        buyer = facts.order_user[orders]
        keep = (buyer >= 0) & (facts.order_counted[orders] == 1) & ~np.isin(buyer, erased)
        users = [buyer[keep]]
        items = [self._line_item[keep]]
        at = [facts.order_paid[orders[keep]]]
        base = [np.full(int(keep.sum()), PURCHASE_WEIGHT)]
        ids = np.flatnonzero(self._event_item[:len(facts.event_user)] >= 0)
        owner = facts.event_user[ids]
        weights = np.array([EVENT_WEIGHTS.get(kind, 0.0) for kind in facts.kinds] or [0.0])
        weight = weights[facts.event_kind[ids]]
        keep = (owner >= 0) & (weight > 0) & ~np.isin(owner, erased)
        users.append(owner[keep])
        items.append(self._event_item[ids[keep]])
        at.append(facts.event_at[ids[keep]])
        base.append(weight[keep])
        bought = np.zeros(sum(len(u) for u in users), dtype=bool)
        bought[:len(users[0])] = True
        return Rows(np.concatenate(users), np.concatenate(items), np.concatenate(at), np.concatenate(base), bought)


def _empty() -> Ints:
    return np.zeros(0, dtype=np.int64)


def _extend(seen: npt.NDArray[np.int64] | None, size: int) -> npt.NDArray[np.int64]:
    """Last read's ``(buyer, net)`` columns for ``size`` orders (ids never read: no buyer)."""
    out = np.zeros((2, size), dtype=np.int64)
    out[0] = -1
    if seen is not None:
        out[:, :seen.shape[1]] = seen[:, :size]
    return out
