"""Per-user facts in memory, kept current from the event log: what the reports read.

A report over a million users cannot afford to group millions of rows on
every call. What the funnel, RFM, repurchase and cohorts need from each user
is small and changes only when that user changes: when they were created
(and whether they were merged away), when they first reached WeCom, first
and second counted order, last counted order, how many counted orders and
their net, when they first invited someone who is still bound to them, and
when they first tracked an event of a kind a funnel uses. :class:`UserFacts`
holds those as NumPy columns indexed by user id (ids are dense).

They are kept current without any extra work on the write path. Every write
already logs its domain events in the same transaction (``OrderRecorded``,
``OrderRefunded``, ``UserCreated``, ``IdentityLinked``, ``UsersMerged``,
``EventTracked`` …). Before a report, the facts read the log from their
checkpoint up to the event horizon, collect the users those events are
about, and re-derive just those users from the raw rows. A report therefore
pays for the users that changed since the last report, not for the shop's
history. Referral bindings also change status without a logged event (a
fraud hold released), so the invite column is re-read whenever the
``referrals`` change counter moved (one small ``GROUP BY``).

The first report in a process (and :meth:`~siyu.analytics.Analytics.reindex`)
builds the columns from the raw rows, as does the first report after the log
was pruned past their checkpoint (``ws.event_log.prune`` records how far it
deleted, so events the facts never read cannot be skipped silently); rows written around siyu (a bulk SQL
load, which logs nothing) need a ``reindex()``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, pairwise
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from ..errors import StorageError
from ..storage.contracts.event_log import PRUNED_KEY
from .slots import Slots
from .timeline import Timeline

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction

__all__ = ["ATTRIBUTION", "NEVER", "FactsUnavailable", "UserFacts", "distinct_per_group", "reading"]

#: The attribution fields a report can break users down by.
ATTRIBUTION = ("source", "campaign", "state")
class FactsUnavailable(StorageError):
    """The per-user columns cannot hold this database's users (an id beyond 32 bits)."""


#: Ids the columns hold: the 32-bit ids segment bitmaps hold too (siyu gives out dense ids).
ID_LIMIT = 2**32
#: "Not reached": later than any instant, so ``t < until`` is false for every ``until``.
NEVER = np.iinfo(np.int64).max
Column = npt.NDArray[np.int64]

#: What each logged event type changes: the facts to re-derive (``ALL`` or one of ``USER``, ``LINKS``,
#: ``ORDERS``, ``EVENTS``), and the payload fields naming other users it changes.
ALL, USER, LINKS, ORDERS, EVENTS = "all", "user", "links", "orders", "events"
#: Not facets: the ids of the orders (``OrderRecorded``, ``OrderRefunded``) and tracked events the log names.
ORDER_IDS, EVENT_IDS = "order_ids", "event_ids"
#: Not facets either: instants (µs) of tracked events the log names, and a flag (user 0) that
#: activity may have moved between users.
EVENT_AT, MOVED = "event_at", "moved"
_MOVES = frozenset({"UsersMerged", "UsersUnmerged", "PersonalDataErased"})
_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "UserCreated": (USER, ()),
    "UserUpdated": (USER, ()),
    "IdentityLinked": (LINKS, ()),
    "IdentityUnlinked": (LINKS, ()),
    "UsersMerged": (ALL, ("keep_id", "drop_id")),
    "UsersUnmerged": (ALL, ("keep_id", "drop_id")),
    "PersonalDataErased": (ALL, ()),
    "OrderRecorded": (ORDERS, ()),
    "OrderRefunded": (ORDERS, ()),
    "ReferralBound": (ALL, ("inviter_id", "previous_inviter_id")),
    "ReferralUnbound": (ALL, ("inviter_id",)),
    "EventTracked": (EVENTS, ()),
}
#: How many log rows one read takes while catching up.
_PAGE = 20_000
#: Past this many changed users a full rebuild is cheaper than re-deriving them one chunk at a time.
_REBUILD_AT = 200_000


class UserFacts:
    """The columns, and how they catch up. ``refresh`` under the lock, then read the columns.

    Columns (``NEVER`` where a user has not reached it; ``last_paid`` is
    ``-1`` and counts are 0 for users with no counted order):
    ``created`` (alive users only: merged and missing ids are ``NEVER``),
    ``wecom`` (first WeCom identity or ``added_wecom`` event),
    ``first_paid``, ``second_paid``, ``last_paid``, ``orders``, ``net``,
    ``invited``, and ``events[kind]`` for the event kinds asked for so far.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.position: int | None = None
        self.referrals_version = -1
        self.size = 0
        self.created: Column = _column(0, NEVER)
        self.linked: Column = _column(0, NEVER)
        self.first_paid: Column = _column(0, NEVER)
        self.second_paid: Column = _column(0, NEVER)
        self.last_paid: Column = _column(0, -1)
        self.orders: Column = _column(0, 0)
        self.net: Column = _column(0, 0)
        self.invited: Column = _column(0, NEVER)
        self.events: dict[str, Column] = {}
        #: Per attribution field (``source``, ``campaign``, ``state``): each user's value (merged
        #: ones too) as a code into :attr:`labels` (``-1``: no such user).
        self.attribution: dict[str, Column] = {f: _column(0, -1) for f in ATTRIBUTION}
        self.labels: dict[str, list[str | None]] = {f: [] for f in ATTRIBUTION}
        self._codes: dict[str, dict[str | None, int]] = {f: {} for f in ATTRIBUTION}
        #: Orders, indexed by order id: buyer (``-1``: no such order), ``paid_at``, net fen,
        #: whether counted (1) and the channel as a code into :attr:`channels`.
        self.order_user: Column = _column(0, -1)
        self.order_paid: Column = _column(0, 0)
        self.order_net: Column = _column(0, 0)
        self.order_counted: Column = _column(0, 0)
        self.order_channel: Column = _column(0, 0)
        self.channels: list[str | None] = [None]
        self._channel_codes: dict[str | None, int] = {None: 0}
        #: Tracked events, indexed by event id, once a traffic report asked for them
        #: (:meth:`want_event_rows`): user (``-1``: no such event), kind as a code into
        #: :attr:`kinds`, and instant.
        self.has_event_rows = False
        self.event_user: Column = _column(0, -1)
        self.event_kind: Column = _column(0, 0)
        self.event_at: Column = _column(0, 0)
        self.kinds: list[str] = []
        self._kind_codes: dict[str, int] = {}
        #: The tracked events by instant (built by the first traffic report that reads a window).
        self.timeline = Timeline()
        #: The store's activity rollup per cohort metric, once a cohort report asked (with unions
        #: of its hours and days); dropped when a merge may have moved activity.
        self._activity: dict[str, Slots] = {}

    # -- columns ------------------------------------------------------------------------------
    @property
    def wecom(self) -> Column:
        """First reach of WeCom: the earlier of the first identity link and the first ``added_wecom`` event."""
        return np.minimum(self.linked, self.event("added_wecom"))

    def event(self, kind: str) -> Column:
        """First instant of each user's ``kind`` events (loaded by :meth:`want_events` first)."""
        return self.events[kind]

    def groups(self, field: str) -> tuple[Column, list[str | None]]:
        """Each user's ``field`` value as a code into the returned labels; ``-1`` for merged users
        and ids with no user (the users a breakdown leaves out)."""
        codes = np.where(self.created != NEVER, self.attribution[field], -1)
        return codes, list(self.labels[field])

    def max_paid(self) -> int:
        """The latest counted order's ``paid_at`` (``-1`` with no counted order)."""
        return int(self.last_paid.max()) if self.size else -1

    # -- catching up ------------------------------------------------------------------------
    def refresh(self, tx: Transaction, horizon: int, kinds: Iterable[str] = (), *, event_rows: bool = False,
                advance: bool = True) -> None:
        """Bring the columns up to the log's ``horizon`` (call holding :attr:`lock`). With
        ``advance=False`` the checkpoint stays where it was (``horizon`` is only what a
        transaction sees, not a proven horizon): the next refresh reads those rows again,
        which re-derives the same users and changes nothing."""
        pruned = tx.meta.get(PRUNED_KEY)
        if self.position is None or (pruned is not None and int(pruned) > self.position):
            # Never built, or the log was pruned past the checkpoint: the changes are no longer all in it.
            self.rebuild(tx, horizon)
        else:
            changed = self._changed_since(tx, horizon)
            if changed is None:
                self.rebuild(tx, horizon)
            else:
                self._rederive(tx, changed)
                if advance:
                    self.position = max(self.position, horizon)
        version = tx.meta.version("referrals")
        if version != self.referrals_version:
            self._load_invites(tx)
            self.referrals_version = version
        for kind in kinds:
            if kind not in self.events:
                self.events[kind] = self._scatter(tx.analytics.first_events(kind, None), NEVER)
        if event_rows and not self.has_event_rows:
            self._set_event_rows(tx.analytics.event_rows(None))
            self.has_event_rows = True
        self._grow(self.size, force=True)

    def rebuild(self, tx: Transaction, horizon: int) -> None:
        """Derive every column again from the raw rows."""
        store = tx.analytics
        users = store.user_rows(None)
        self.size = 0
        self._grow((users[-1][0] + 1) if users else 0)
        self.created = _column(self.size, NEVER)
        self.attribution = {f: _column(self.size, -1) for f in ATTRIBUTION}
        self.labels = {f: [] for f in ATTRIBUTION}
        self._codes = {f: {} for f in ATTRIBUTION}
        if users:
            uids, created, merged = _ints(users, 0, 1, 2)
            self.created[uids] = np.where(merged == 0, created, NEVER)
            for index, field in enumerate(ATTRIBUTION, start=3):
                self.attribution[field][uids] = self._codes_of(field, list(map(itemgetter(index), users)))
        self.linked = self._scatter(store.first_links("wecom_external_userid", None), NEVER)
        kinds = {"added_wecom", *self.events}
        self.events = {kind: self._scatter(store.first_events(kind, None), NEVER) for kind in kinds}
        self.first_paid, self.second_paid = _column(self.size, NEVER), _column(self.size, NEVER)
        self.last_paid, self.orders, self.net = _column(self.size, -1), _column(self.size, 0), _column(self.size, 0)
        self._set_orders(store.counted_orders(None))
        self.order_user = _column(0, -1)
        for name in ("order_paid", "order_net", "order_counted", "order_channel"):
            setattr(self, name, _column(0, 0))
        self._set_order_rows(store.order_rows(None))
        if self.has_event_rows:
            self.event_user = _column(0, -1)
            self.event_kind, self.event_at = _column(0, 0), _column(0, 0)
            self.timeline.forget()
            self._set_event_rows(store.event_rows(None))
        self._load_invites(tx)
        self.referrals_version = tx.meta.version("referrals")
        self._activity.clear()
        self.position = horizon

    def _changed_since(self, tx: Transaction, horizon: int) -> dict[str, set[int]] | None:
        """Per kind of fact, the users the log names between the checkpoint and ``horizon``
        (``None``: so many that a rebuild is cheaper)."""
        assert self.position is not None
        changed: dict[str, set[int]] = {ALL: set(), USER: set(), LINKS: set(), ORDERS: set(), EVENTS: set(),
                                        ORDER_IDS: set(), EVENT_IDS: set(), EVENT_AT: set(), MOVED: set()}
        after = self.position
        while after < horizon:
            rows = tx.analytics.log_changes(after, horizon, list(_TYPES), _PAGE)
            if not rows:
                break
            for _, kind_of_row, user_id, occurred_at, payload in rows:
                facet, fields = _TYPES[kind_of_row]
                if kind_of_row in _MOVES:
                    changed[MOVED].add(0)
                elif facet == EVENTS and self._activity:
                    changed[EVENT_AT].add(occurred_at)
                if facet == EVENTS:
                    tracked = json.loads(payload)
                    kind = tracked.get("kind")
                    if kind is None:
                        facet = ALL  # a redacted payload: re-derive everything of the user
                    else:
                        if self.has_event_rows:
                            changed[EVENT_IDS].add(int(tracked["event_id"]))
                        if kind not in self.events:
                            continue  # a kind no first-event column follows
                if facet == ORDERS:
                    order_id = json.loads(payload).get("order_id")
                    if order_id is None:
                        facet = ALL  # a redacted payload: re-derive everything of the user
                    else:
                        changed[ORDER_IDS].add(int(order_id))
                if user_id is not None:
                    changed[facet].add(user_id)
                    if kind_of_row == "PersonalDataErased":
                        # Erasing a person erases the records merged into them too, under one event.
                        changed[facet].update(tx.privacy.merged_into(user_id))
                if fields:
                    found: dict[str, Any] = json.loads(payload)
                    changed[facet].update(int(found[f]) for f in fields if found.get(f) is not None)
            if sum(map(len, changed.values())) > _REBUILD_AT:
                return None
            after = rows[-1][0]
        return changed

    def _rederive(self, tx: Transaction, changed: dict[str, set[int]]) -> None:
        store = tx.analytics
        every = changed[ALL]
        changed_orders = changed[ORDER_IDS]
        if changed[MOVED]:
            self._activity.clear()
        if not any(changed.values()):
            return
        wanted = {facet: sorted(users | every) for facet, users in changed.items()
                  if facet not in (ALL, ORDER_IDS, EVENT_IDS, EVENT_AT, MOVED)}
        self._grow(max((max(users) for users in wanted.values() if users), default=0) + 1)
        if users := wanted[USER]:
            self.created[np.array(users)] = NEVER
            for column in self.attribution.values():
                column[np.array(users)] = -1
            for uid, created, merged, *values in store.user_rows(users):
                if not merged:
                    self.created[uid] = created
                for field, value in zip(ATTRIBUTION, values, strict=True):
                    self.attribution[field][uid] = self._code(field, value)
        if users := wanted[LINKS]:
            _reset(self.linked, users, store.first_links("wecom_external_userid", users))
        if users := wanted[EVENTS]:
            for kind, column in self.events.items():
                _reset(column, users, store.first_events(kind, users))
        if users := wanted[ORDERS]:
            ids = np.array(users, dtype=np.int64)
            self.first_paid[ids], self.second_paid[ids] = NEVER, NEVER
            self.last_paid[ids], self.orders[ids], self.net[ids] = -1, 0, 0
            self._set_orders(store.counted_orders(users))
        # Orders and events moved between users (a merge) are found through their users, the others by id.
        # A row gone from the database (erased) must not stay here: clear what is re-read, then read it.
        if changed_orders or every:
            _forget(self.order_user, changed_orders, every)
            self._set_order_rows(store.order_rows(sorted(changed_orders), sorted(every)))
        if self.has_event_rows and (changed[EVENT_IDS] or every):
            _forget(self.event_user, changed[EVENT_IDS], every)
            self._set_event_rows(store.event_rows(sorted(changed[EVENT_IDS]), sorted(every)))
        if self._activity:
            paid = self.order_paid[np.array(sorted(changed_orders), dtype=np.int64)].tolist()
            self._reload_slots(tx, changed[EVENT_AT], set(paid))

    def _reload_slots(self, tx: Transaction, events: set[int], orders: set[int]) -> None:
        """Re-read the rollup's slots holding these instants (the store re-derived them on write)."""
        for metric, held in list(self._activity.items()):
            instants = orders | events if metric == "active" else orders
            wanted = sorted({at // held.slot_us for at in instants})
            if not wanted:
                continue
            loaded = tx.analytics.activity_slots(metric, wanted)
            if loaded is None:
                self._activity.pop(metric)
                continue
            held.update({slot: loaded[1].get(slot) for slot in wanted})

    def activity(self, tx: Transaction, bounds: Sequence[int], metric: str) -> list[BitMap] | None:
        """Users active in each bucket (as ``AnalyticsStore.activity``), from the rollup's slots
        held in memory; ``None`` when the store keeps no current rollup or a boundary is off a slot."""
        if tx.analytics.activity_slots(metric, []) is None:
            self._activity.pop(metric, None)
            return None
        held = self._activity.get(metric)
        if held is None:
            loaded = tx.analytics.activity_slots(metric, None)
            if loaded is None:
                return None
            held = self._activity[metric] = Slots(loaded[0], loaded[1])
        slot_us = held.slot_us
        if any(b % slot_us for b in bounds[:-1]):
            return None
        whole = bounds[-1] // slot_us  # slots before this one end by the last bound
        starts = [b // slot_us for b in bounds[:-1]] + [whole]
        found = [held.union(lo, max(lo, hi)) for lo, hi in pairwise(starts)]
        if bounds[-1] % slot_us:
            # The slot `until` cuts: its users, checked against the raw rows by the store.
            cut = tx.analytics.activity([whole * slot_us, bounds[-1]], metric)
            if cut is None:
                return None
            found[-1] |= cut[0]
        return found

    def _load_invites(self, tx: Transaction) -> None:
        self.invited = self._scatter(tx.analytics.first_invites(), NEVER)

    # -- helpers -------------------------------------------------------------------------------
    def _grow(self, size: int, *, force: bool = False) -> None:
        """Extend every column to ``size`` users (``force``: also align columns built meanwhile)."""
        if size <= self.size and not force:
            return
        if size > ID_LIMIT:
            raise FactsUnavailable(
                f"user id {size - 1} is above {ID_LIMIT - 1}: ws.analytics keeps per-user columns indexed by id, "
                "as segments keep 32-bit bitmaps; siyu gives out dense ids, so re-number users written around it"
            )
        size = max(size, self.size)
        for name, fill in (("created", NEVER), ("linked", NEVER), ("first_paid", NEVER), ("second_paid", NEVER),
                           ("last_paid", -1), ("orders", 0), ("net", 0), ("invited", NEVER)):
            setattr(self, name, _extend(getattr(self, name), size, fill))
        self.events = {k: _extend(v, size, NEVER) for k, v in self.events.items()}
        self.attribution = {k: _extend(v, size, -1) for k, v in self.attribution.items()}
        self.size = size

    def _scatter(self, pairs: Sequence[tuple[int, int]], fill: int) -> Column:
        column = _column(self.size, fill)
        if pairs:
            ids, values = _ints(pairs, 0, 1)
            self._grow(int(ids.max()) + 1)
            column = _extend(column, self.size, fill)
            column[ids] = values
        return column

    def _code(self, field: str, value: str | None) -> int:
        codes = self._codes[field]
        code = codes.get(value)
        if code is None:
            code = codes[value] = len(self.labels[field])
            self.labels[field].append(value)
        return code

    def _codes_of(self, field: str, values: list[str | None]) -> Column:
        """:meth:`_code` of each value, without a Python call per value (a million users)."""
        for value in dict.fromkeys(values):  # new values get codes in the order they are met
            self._code(field, value)
        return np.fromiter(map(self._codes[field].__getitem__, values), dtype=np.int64, count=len(values))

    def _set_order_rows(self, rows: Sequence[tuple[int, int, int, int, bool, str | None]]) -> None:
        """Store orders by id (rows as :meth:`~siyu.storage.contracts.analytics.AnalyticsStore.order_rows`)."""
        if not rows:
            return
        oids, users, paid, net, counted = _ints(rows, 0, 1, 2, 3, 4)
        channels = list(map(itemgetter(5), rows))
        size = int(oids.max()) + 1
        if size > len(self.order_user):
            self.order_user = _extend(self.order_user, size, -1)
            for name in ("order_paid", "order_net", "order_counted", "order_channel"):
                setattr(self, name, _extend(getattr(self, name), size, 0))
        self.order_user[oids] = users
        self.order_paid[oids] = paid
        self.order_net[oids] = net
        self.order_counted[oids] = counted
        known = self._channel_codes
        for name in set(channels) - known.keys():
            known[name] = len(self.channels)
            self.channels.append(name)
        self.order_channel[oids] = np.fromiter(map(known.__getitem__, channels), dtype=np.int64, count=len(rows))

    def _set_event_rows(self, rows: Sequence[tuple[int, int, str, int]]) -> None:
        """Store tracked events by id (rows as ``AnalyticsStore.event_rows``)."""
        if not rows:
            return
        eids, users, instants = _ints(rows, 0, 1, 3)
        kinds = list(map(itemgetter(2), rows))
        size = int(eids.max()) + 1
        if size > len(self.event_user):
            # Room to grow: events arrive by the thousand, and each extension copies the columns.
            size = max(size, len(self.event_user) * 5 // 4)
            self.event_user = _extend(self.event_user, size, -1)
            self.event_kind, self.event_at = _extend(self.event_kind, size, 0), _extend(self.event_at, size, 0)
        self.event_user[eids] = users
        known = self._kind_codes
        for name in set(kinds) - known.keys():
            known[name] = len(self.kinds)
            self.kinds.append(name)
        self.event_kind[eids] = np.fromiter(map(known.__getitem__, kinds), dtype=np.int64, count=len(rows))
        self.timeline.stored(eids, instants, self.event_at[eids])
        self.event_at[eids] = instants

    def kind_code(self, kind: str) -> int:
        """The code of an event kind in :attr:`event_kind` (``-1``: never tracked)."""
        return self._kind_codes.get(kind, -1)

    def _set_orders(self, rows: Sequence[tuple[int, int, int]]) -> None:
        """Fold counted orders (by user, then ``paid_at``) into the order columns of their users."""
        if not rows:
            return
        users, paid, net = _ints(rows, 0, 1, 2)
        self._grow(int(users.max()) + 1)
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        owners = users[starts]
        counts = ends - starts
        self.orders[owners] = counts
        self.first_paid[owners] = paid[starts]
        again = counts >= 2
        self.second_paid[owners[again]] = paid[starts[again] + 1]
        self.last_paid[owners] = paid[ends - 1]
        self.net[owners] = np.add.reduceat(net, starts)


#: Largest ``groups x users`` table :func:`distinct_per_group` marks directly (bytes); above it, it sorts.
_MARK_LIMIT = 64_000_000


def distinct_per_group(groups: Column, users: Column, n: int) -> Column:
    """How many distinct users each group code ``0..n-1`` holds (``groups`` and ``users`` pair up).

    Marking a ``groups x users`` table of booleans is one scattered write per row and no sort:
    a few milliseconds for a million rows in a handful of groups. Many groups fall back to sorting."""
    span = int(users.max(initial=0)) + 1
    if n * span <= _MARK_LIMIT:
        seen = np.zeros(n * span, dtype=bool)
        seen[groups * span + users] = True
        counts: Column = np.count_nonzero(seen.reshape(n, span), axis=1)
        return counts
    sorted_counts: Column = np.bincount(np.unique(groups * span + users) // span, minlength=n)
    return sorted_counts


def _forget(owners: Column, ids: set[int], users: set[int]) -> None:
    """Mark rows (orders or events, by id) as absent: those in ``ids`` and those owned by ``users``."""
    known = np.array(sorted(i for i in ids if i < len(owners)), dtype=np.int64)
    owners[known] = -1
    if users:
        owners[np.isin(owners, np.array(sorted(users), dtype=np.int64))] = -1


def _reset(column: Column, users: list[int], pairs: Sequence[tuple[int, int]]) -> None:
    column[np.array(users, dtype=np.int64)] = NEVER
    for uid, at in pairs:
        column[uid] = at


def _ints(rows: Sequence[Sequence[Any]], *columns: int) -> Column:
    """Integer ``columns`` of ``rows`` as one array per column (unpack it), read without a
    Python call per value: a million rows from the database in a fraction of a second."""
    pick = itemgetter(*columns)
    flat = np.fromiter(chain.from_iterable(map(pick, rows)), dtype=np.int64, count=len(rows) * len(columns))
    found: Column = flat.reshape(len(rows), len(columns)).T
    return found


def _column(size: int, fill: int) -> Column:
    return np.full(size, fill, dtype=np.int64)


def _extend(column: Column, size: int, fill: int) -> Column:
    if len(column) >= size:
        return column
    return np.concatenate([column, _column(size - len(column), fill)])


@contextmanager
def reading(uow: UnitOfWork, facts: UserFacts, horizon: Callable[[], int], kinds: Iterable[str] = (), *,
            event_rows: bool = False) -> Iterator[tuple[Transaction, UserFacts]]:
    """A read transaction and the facts caught up with what it sees.

    The log's horizon (no event at or below it can still be in flight) is
    fixed before the transaction starts, so every event up to it is visible
    in the transaction's snapshot. Inside a caller's read transaction the
    facts catch up to what it sees without moving their checkpoint; inside a
    write (which may still roll back), or before the facts were ever built,
    a private copy is derived from the raw rows instead: slower, and rare,
    since reports are reads."""
    if uow.in_transaction():
        with uow.read() as tx:
            if tx.write or facts.position is None:
                private = UserFacts()
                private.refresh(tx, tx.event_log.head(), kinds, event_rows=event_rows)
                yield tx, private
            else:
                with facts.lock:
                    facts.refresh(tx, tx.event_log.head(), kinds, event_rows=event_rows, advance=False)
                    yield tx, facts
        return
    upto = horizon()
    with uow.read() as tx, facts.lock:
        facts.refresh(tx, upto, kinds, event_rows=event_rows)
        yield tx, facts
