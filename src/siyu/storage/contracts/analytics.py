"""Read-side aggregates behind ``ws.analytics``.

The answers run to millions of rows on a large shop, so instants here are
integer microseconds since the Unix epoch (UTC, as in storage) and user sets
are plain lists of ids; the service turns them into bitmaps and datetimes.

Shared definitions every implementation honours:

- *users* are users of any status except ``"merged"`` (a merged user's
  history belongs to the user it was merged into);
- a *counted order* is an order not fully refunded (``refunded < total``,
  or a zero-total order); its *net* is ``total - refunded`` in fen;
- a *bucket list* is sorted boundaries ``b0 < b1 < ... < bn``; bucket ``i``
  is ``[b_i, b_{i+1})``. Instants outside ``[b0, bn)`` belong to no bucket.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyroaring import BitMap

__all__ = ["AnalyticsStore"]


class AnalyticsStore(abc.ABC):
    # -- who reached what (funnel steps) --------------------------------------------------
    @abc.abstractmethod
    def users_created(self, since: int | None, until: int) -> list[int]:
        """Users created in ``[since, until)`` (``since=None``: from the start), ascending."""

    @abc.abstractmethod
    def count_created(self, since: int | None, until: int) -> int:
        """How many users were created in ``[since, until)``."""

    @abc.abstractmethod
    def users_outside(self, until: int) -> list[int]:
        """Users of any status that are not users created before ``until``:
        merged users, and users created at or after ``until``."""

    @abc.abstractmethod
    def attribution(self, field: str) -> dict[str | None, list[int]]:
        """Every user grouped by an attribution field: ``"source"``, ``"campaign"``
        (``source_campaign``) or ``"state"`` (``source_state``)."""

    @abc.abstractmethod
    def identity_linked(self, kind: str, since: int | None, until: int) -> list[int]:
        """Users whose first identity of ``kind`` was linked in ``[since, until)``."""

    @abc.abstractmethod
    def event_reached(self, kind: str, since: int | None, until: int) -> list[int]:
        """Users whose first tracked event of ``kind`` happened in ``[since, until)``."""

    @abc.abstractmethod
    def nth_order_reached(self, n: int, since: int | None, until: int) -> list[int]:
        """Users whose ``n``-th counted order (1 = first) was paid in ``[since, until)``."""

    @abc.abstractmethod
    def order_counts(self, until: int) -> list[tuple[int, int]]:
        """``(user_id, counted orders paid before until)`` of every buyer."""

    @abc.abstractmethod
    def invited_reached(self, since: int | None, until: int) -> list[int]:
        """Users whose first invitee still bound to them (an active binding) was bound in ``[since, until)``."""

    @abc.abstractmethod
    def event_counts(self, kind: str) -> list[tuple[int, int]]:
        """``(user_id, how many events of kind they tracked)`` of every user with one."""

    @abc.abstractmethod
    def event_kinds(self) -> list[str]:
        """Every tracked event kind recorded so far, sorted."""

    # -- cohorts ------------------------------------------------------------------------------
    @abc.abstractmethod
    def cohort_sizes(self, bounds: Sequence[int]) -> dict[int, int]:
        """Users created in each bucket: ``{bucket: users}`` (empty buckets left out)."""

    @abc.abstractmethod
    def cohort_activity(self, bounds: Sequence[int], metric: str) -> dict[tuple[int, int], int]:
        """``{(cohort bucket, activity bucket): distinct users}`` for users created in
        the cohort bucket who were active in the later (or same) bucket.

        ``metric="active"``: a tracked event or a counted order in the bucket;
        ``metric="ordered"``: a counted order in the bucket."""

    def cohort_matrix(
        self, bounds: Sequence[int], metric: str
    ) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
        """``(cohort_sizes(bounds), cohort_activity(bounds, metric))`` in one call, so a
        store that keeps the cohorts' members at hand reads them once."""
        return self.cohort_sizes(bounds), self.cohort_activity(bounds, metric)

    def activity(self, bounds: Sequence[int], metric: str) -> list[BitMap] | None:
        """Users active in each bucket (as in :meth:`cohort_activity`), or ``None`` when the
        store keeps nothing that answers it faster than :meth:`cohort_matrix` (the default)."""
        return None

    def activity_slots(self, metric: str, slots: Sequence[int] | None) -> tuple[int, dict[int, BitMap]] | None:
        """The store's activity rollup, if it keeps one and it is current: ``(slot length in
        microseconds, {slot: users active in it})`` for ``metric`` (``"active"``: events or
        counted orders, ``"ordered"``: counted orders), for the given slots (``None``: every
        slot). ``None`` (the default) when the store keeps none."""
        return None

    # -- upkeep -------------------------------------------------------------------------------
    def reindex(self) -> None:  # noqa: B027 - a store with nothing derived has nothing to rebuild
        """Rebuild whatever the store derives from its rows to answer faster (after
        rows were written around siyu). A store that derives nothing does nothing."""

    # -- orders -------------------------------------------------------------------------------
    @abc.abstractmethod
    def buyer_history(self, until: int) -> list[tuple[int, int, int | None]]:
        """``(user_id, first counted order paid_at, second one or None)`` of every
        user with a counted order paid before ``until``."""

    @abc.abstractmethod
    def buyer_values(self, until: int) -> list[tuple[int, int, int, int]]:
        """Per buyer (counted orders paid before ``until``), by user id:
        ``(user_id, last paid_at, counted orders, net fen)``."""

    @abc.abstractmethod
    def order_totals(
        self, since: int | None, until: int, by: str | None, bounds: Sequence[int] = ()
    ) -> list[tuple[str | int | None, int, int, int]]:
        """Counted orders paid in ``[since, until)``, grouped, as
        ``(key, orders, distinct buyers, net fen)``.

        ``by``: ``None`` (one row, key ``None``), ``"channel"`` (the order's
        channel), ``"source"`` (the buyer's source) or ``"period"`` (the
        bucket index in ``bounds``)."""

    @abc.abstractmethod
    def buyers_by_bucket(self, bounds: Sequence[int]) -> list[tuple[int, bool, int, int, int]]:
        """Counted orders per bucket, split by whether the buyer's first counted
        order ever falls in that same bucket: ``(bucket, new, buyers, orders, net fen)``."""

    # -- per-user facts (the source of ws.analytics' in-memory columns) ------------------------
    @abc.abstractmethod
    def user_rows(
        self, user_ids: Sequence[int] | None
    ) -> list[tuple[int, int, bool, str | None, str | None, str | None]]:
        """``(user_id, created_at, merged, source, campaign, state)`` of the given users
        (``None``: every user), by id."""

    @abc.abstractmethod
    def first_links(self, kind: str, user_ids: Sequence[int] | None) -> list[tuple[int, int]]:
        """``(user_id, first linked_at)`` of users with an identity of ``kind`` (``None``: every user)."""

    @abc.abstractmethod
    def first_events(self, kind: str, user_ids: Sequence[int] | None) -> list[tuple[int, int]]:
        """``(user_id, instant of their first event of kind)`` (``None``: every user)."""

    @abc.abstractmethod
    def counted_orders(self, user_ids: Sequence[int] | None) -> list[tuple[int, int, int]]:
        """``(user_id, paid_at, net fen)`` of every counted order of the given users
        (``None``: every user), ordered by user id, then ``paid_at``."""

    @abc.abstractmethod
    def order_rows(
        self, order_ids: Sequence[int] | None, user_ids: Sequence[int] = ()
    ) -> list[tuple[int, int, int, int, bool, str | None]]:
        """``(order_id, user_id, paid_at, net fen, counted, channel)`` of the given orders and of
        every order of ``user_ids`` (``order_ids=None``: every order), by id."""

    @abc.abstractmethod
    def event_rows(
        self, event_ids: Sequence[int] | None, user_ids: Sequence[int] = ()
    ) -> list[tuple[int, int, str, int]]:
        """``(event_id, user_id, kind, at)`` of the given tracked events and of every event of
        ``user_ids`` (``event_ids=None``: every event), by id."""

    @abc.abstractmethod
    def order_line_items(self, order_ids: Sequence[int] | None) -> list[tuple[int, str, int]]:
        """``(order_id, sku, units kept)`` of every line of the given orders (``None``: every
        order), by order id; units kept are the line's quantity less its refunded quantity."""

    @abc.abstractmethod
    def event_items(self, event_ids: Sequence[int] | None, kinds: Sequence[str]) -> list[tuple[int, str]]:
        """``(event_id, sku)`` of the given tracked events (``None``: every event) of ``kinds``
        whose properties name a non-empty text ``sku``, by id."""

    @abc.abstractmethod
    def erased_users(self) -> list[int]:
        """Ids of users whose personal data was erased, ascending."""

    @abc.abstractmethod
    def log_changes(
        self, after: int, upto: int, types: Sequence[str], limit: int
    ) -> list[tuple[int, str, int | None, int, str]]:
        """The event log's rows in ``(after, upto]`` of ``types``, oldest first, at most ``limit``:
        ``(position, type, user_id, occurred_at, payload)`` as stored (what the reports' facts
        catch up from, without building a :class:`~siyu.storage.contracts.event_log.LogRow` each)."""

    @abc.abstractmethod
    def first_invites(self) -> list[tuple[int, int]]:
        """``(inviter_id, first bound_at)`` over active bindings, of every user who invited someone."""
