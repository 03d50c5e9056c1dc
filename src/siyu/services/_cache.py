"""A cache of slowly-changing configuration, invalidated by a change counter."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from ..storage.base import Transaction

T = TypeVar("T")

# Counter values seen by each read transaction: a read sees one snapshot, so
# several caches on the same counter need only one query per transaction.
_SEEN: weakref.WeakKeyDictionary[Transaction, dict[str, int]] = weakref.WeakKeyDictionary()


def _version(tx: Transaction, counter: str) -> int:
    if tx.write:
        return tx.meta.version(counter)
    seen = _SEEN.setdefault(tx, {})
    if counter not in seen:
        seen[counter] = tx.meta.version(counter)
    return seen[counter]


class VersionedCache(Generic[T]):
    """Values loaded per ``tx.meta.version(counter)``.

    Read transactions share one cached value (it is committed data). A write
    transaction keeps its own copy: what it sees may roll back, and caching it
    under a counter value that is later reused would serve stale data.
    """

    def __init__(self, counter: str, load: Callable[[Transaction], T]) -> None:
        self._counter = counter
        self._load = load
        self._shared: tuple[int, T] | None = None
        self._per_tx: weakref.WeakKeyDictionary[Transaction, tuple[int, T]] = weakref.WeakKeyDictionary()

    def get(self, tx: Transaction) -> T:
        version = _version(tx, self._counter)
        if not tx.write:
            if self._shared is None or self._shared[0] != version:
                self._shared = (version, self._load(tx))
            return self._shared[1]
        own = self._per_tx.get(tx)
        if own is None or own[0] != version:
            own = (version, self._load(tx))
            self._per_tx[tx] = own
        return own[1]
