"""Tracked events in time order: what lets a traffic report read only its window.

The event columns of :class:`~siyu.analytics.facts.UserFacts` are indexed by
event id. A report over the last twelve days would otherwise compare the
instant of every event the shop ever tracked. :class:`Timeline` keeps the
event ids sorted by instant, so a window is two binary searches and a slice.

It is built once (one sort) the first time a traffic report asks, and kept
in step as the facts catch up: events new to it are merged in at their
place (one insertion, no sort of the whole). Events that went away (erased)
stay in it and are dropped when read, because their user is ``-1`` then. An
event that comes back with a different instant (never seen in practice:
siyu does not move events in time) makes it sort again on the next read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .facts import Column

__all__ = ["Timeline"]


class Timeline:
    """Event ids by instant; :meth:`window` reads it, :meth:`stored` keeps it in step."""

    def __init__(self) -> None:
        self.built = False
        self._ids: Column = np.zeros(0, dtype=np.int64)
        self._at: Column = np.zeros(0, dtype=np.int64)
        #: Which event ids the order holds.
        self._held: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)

    def forget(self) -> None:
        """Drop the order: the next :meth:`window` sorts again."""
        self.built = False
        self._ids = self._at = np.zeros(0, dtype=np.int64)
        self._held = np.zeros(0, dtype=bool)

    def stored(self, ids: Column, at: Column, before: Column) -> None:
        """Events ``ids`` now happen at ``at`` (``before``: the instants the columns held for them)."""
        if not self.built:
            return
        if not len(ids):
            return
        if int(ids.max()) >= len(self._held):
            self._held = np.concatenate([self._held, np.zeros(int(ids.max()) + 1 - len(self._held), dtype=bool)])
        known = self._held[ids]
        if np.any(at[known] != before[known]):
            self.forget()
            return
        fresh, fresh_at = ids[~known], at[~known]
        if not len(fresh):
            return
        order = np.argsort(fresh_at, kind="stable")
        fresh, fresh_at = fresh[order], fresh_at[order]
        places = np.searchsorted(self._at, fresh_at, side="right")
        self._ids = np.insert(self._ids, places, fresh)
        self._at = np.insert(self._at, places, fresh_at)
        self._held[fresh] = True

    def window(self, user: Column, at: Column, since_us: int, until_us: int) -> Column:
        """Ids of the events (of a user) in ``[since_us, until_us)``, in time order."""
        if not self.built:
            valid = np.flatnonzero(user >= 0)
            order = np.argsort(at[valid], kind="stable")
            self._ids = valid[order]
            self._at = at[self._ids]
            self._held = np.zeros(len(user), dtype=bool)
            self._held[valid] = True
            self.built = True
        lo, hi = np.searchsorted(self._at, [since_us, until_us], side="left")
        ids = self._ids[lo:hi]
        found: Column = ids[user[ids] >= 0]
        return found
