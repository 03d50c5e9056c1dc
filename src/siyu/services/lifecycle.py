"""The lifecycle stage machine: 新加好友 → 有互动 → 有意向 → 已购 → 复购, plus 沉睡 / 流失 / 召回.

The current stage is the user's tag in the exclusive ``lifecycle`` tag group,
so segments see it (``tag:lifecycle/dormant``); every move is also written
to a history with its reason and announced as a
:class:`~siyu.events.LifecycleChanged` event.

A freshly created user has no stage until their first tracked event, order
or the next ``sweep()`` (which gives every stage-less user ``new``): creating
users stays a plain insert, and bulk imports are not slowed by a tag write
per user. Run ``sweep()`` daily, as for dormancy.

What moves a user:

=============================  ============================================
signal                         move
=============================  ============================================
``sweep()`` (new users)        (none) → ``new``
a tracked interaction          ``new`` → ``interacted``; ``dormant``/``lost`` → ``recalled``
a tracked intent event         ``new``/``interacted``/``recalled`` → ``intent``;
                               ``dormant``/``lost`` → ``recalled``
a paid order (OrderRecorded)   any → ``customer`` (first order) or ``repeat`` (2nd+)
a full refund (OrderRefunded)  ``repeat`` → ``customer`` (one counted order left);
                               ``customer``/``repeat`` → ``intent`` (none left)
an unmerge                     the same, for a user whose counted orders no longer
                               back their ``customer``/``repeat``
``sweep()``                    no activity for ``dormant_after_days`` → ``dormant``
``mark_lost(user, reason)``    any → ``lost`` (deleted or blocked us)
=============================  ============================================

An order *counts* until it is refunded in full, as in analytics (a 0-yuan
order always counts). Refunds never move a user who is not ``customer`` or
``repeat``: ``dormant``, ``lost`` and ``recalled`` say whether the user is
still with us, which a refund does not change (the refund still counts, so
their next order makes them ``customer`` again, not ``repeat``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._clock import aware
from .._validation import check_many
from ..errors import ValidationError
from ..events import Event, LifecycleChanged, OrderRecorded, OrderRefunded, UsersUnmerged
from ..models.lifecycle import StageChange
from ._common import check_int, check_text, check_user_id, require_user, require_users

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .tags import Tags

__all__ = ["DEFAULT_DORMANT_DAYS", "DEFAULT_INTENT_EVENTS", "GROUP", "STAGES", "STAGE_TAGS", "Lifecycle"]

#: The tag group holding the stage.
GROUP = "lifecycle"
#: Every stage, in the order of the main path, then the off-path ones.
STAGES = ("new", "interacted", "intent", "customer", "repeat", "dormant", "lost", "recalled")
#: The stage tags, created on first use; segments know them from the start (valid, empty).
STAGE_TAGS = tuple(f"{GROUP}/{stage}" for stage in STAGES)
#: Days without any activity after which ``sweep()`` moves a user to ``dormant``.
DEFAULT_DORMANT_DAYS = 30
#: Tracked event kinds that show buying intent (any other kind is an interaction).
DEFAULT_INTENT_EVENTS = frozenset({
    "added_to_cart", "checkout_started", "product_favorited", "coupon_claimed", "price_inquiry", "wishlist_added",
})
_AWAY = ("dormant", "lost")
#: Stages ``sweep()`` may move to dormant.
_CAN_SLEEP = ("new", "interacted", "intent", "customer", "repeat", "recalled")
_SETTINGS = "lifecycle.settings"


def next_stage(current: str | None, signal: str) -> str | None:
    """The stage a signal moves a user to, or ``None`` to stay. ``signal`` is
    ``"created"``, ``"interaction"``, ``"intent"``, ``"order"``, ``"repeat_order"``,
    ``"refund"`` (one counted order is left), ``"last_refund"`` (none is left),
    ``"dormant"`` or ``"lost"``."""
    target: str | None = None
    if signal == "created":
        target = "new" if current is None else None
    elif signal == "interaction":
        target = "recalled" if current in _AWAY else "interacted" if current in (None, "new") else None
    elif signal == "intent":
        target = "recalled" if current in _AWAY else "intent" if current in (None, "new", "interacted",
                                                                               "recalled") else None
    elif signal == "order":
        target = None if current == "repeat" else "customer"
    elif signal == "repeat_order":
        target = "repeat"
    elif signal == "refund":
        target = "customer" if current == "repeat" else None
    elif signal == "last_refund":
        target = "intent" if current in ("customer", "repeat") else None
    elif signal == "dormant":
        target = "dormant" if current in _CAN_SLEEP else None
    elif signal == "lost":
        target = "lost"
    else:
        raise ValueError(f"unknown lifecycle signal {signal!r}")
    return None if target == current else target


#: What changes a user's counted orders: ``(kind, user_id, ref, at)`` with kind ``"order"`` or
#: ``"refund"`` (``ref`` is the order id) or ``"unmerge"`` (``ref`` is the merge id).
_Op = tuple[str, int, int, datetime]


class _Observer:
    """The stage machine's event consumer (``siyu.lifecycle``): a ``record_many`` of
    thousands of orders is counted in one pass."""

    #: The event classes it reads.
    types = (OrderRecorded, OrderRefunded, UsersUnmerged)

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    def handle(self, events: Sequence[Event]) -> None:
        workspace = self.lifecycle._uow
        ops: list[_Op] = []
        for e in events:
            if isinstance(e, OrderRecorded):
                ops.append(("order", e.user_id, e.order_id, e.paid_at))
            elif isinstance(e, OrderRefunded) and e.full and e.order_total_fen > 0:
                ops.append(("refund", e.user_id, e.order_id, e.at))
            elif isinstance(e, UsersUnmerged):
                # Refunds made while merged may have taken the orders that held up a stage.
                ops.extend(("unmerge", uid, e.merge_id, e.at) for uid in (e.keep_id, e.drop_id))
        if ops:
            with workspace.write() as tx:
                self.lifecycle._apply_orders(tx, ops)


class Lifecycle:
    """``ws.lifecycle``: each user's stage, its history, counts and the sweep."""

    name = "lifecycle"

    def __init__(self, uow: UnitOfWork, *, tags: Tags) -> None:
        self._uow = uow
        self._tags = tags
        self._group_ready = False
        #: The ``siyu_on_events`` plugin that moves stages after orders and refunds.
        self.observer = _Observer(self)

    # -- settings ----------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """``{"dormant_after_days": int, "intent_events": sorted list}``."""
        with self._uow.read() as tx:
            return self._settings(tx)

    def _settings(self, tx: Transaction) -> dict[str, Any]:
        stored = tx.meta.get(_SETTINGS)
        data = json.loads(stored) if stored else {}
        return {
            "dormant_after_days": int(data.get("dormant_after_days", DEFAULT_DORMANT_DAYS)),
            "intent_events": sorted(data.get("intent_events", DEFAULT_INTENT_EVENTS)),
        }

    def configure(self, *, dormant_after_days: int | None = None,
                  intent_events: Iterable[str] | None = None) -> dict[str, Any]:
        """Change how many idle days make a user dormant, and which tracked
        event kinds count as intent (stored in the workspace, for every process)."""
        with self._uow.write() as tx:
            data = self._settings(tx)
            if dormant_after_days is not None:
                data["dormant_after_days"] = check_int(dormant_after_days, "dormant_after_days", minimum=1,
                                                       maximum=3650)
            if intent_events is not None:
                if isinstance(intent_events, str):
                    raise ValidationError("intent_events must be a list of event kinds, not one string")
                kinds = check_many(intent_events, "intent_events", "['add_to_cart', 'coupon_claimed']")
                data["intent_events"] = sorted({check_text(k, "event kind", max_length=64) for k in kinds})
            tx.meta.set(_SETTINGS, json.dumps(data))
        return data

    # -- reading -------------------------------------------------------------------------
    def stage(self, user_id: int) -> str | None:
        """The user's current stage, or ``None`` if they have none yet."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.lifecycle.stages(GROUP, [uid]).get(uid)

    def stages(self, user_ids: Iterable[int]) -> dict[int, str]:
        """``user_id -> stage`` for the users among ``user_ids`` that have one, in one read."""
        ids = sorted({check_user_id(u) for u in check_many(user_ids, "user_ids", "[1, 2]")})
        if not ids:
            return {}
        with self._uow.read() as tx:
            return tx.lifecycle.stages(GROUP, ids)

    def counts(self) -> dict[str, int]:
        """Active users per stage (every stage present, zeros included)."""
        with self._uow.read() as tx:
            found = tx.lifecycle.counts(GROUP)
        counts = {stage: found.pop(stage, 0) for stage in STAGES}
        counts.update(found)  # tags someone put in the group by hand stay visible
        return counts

    def history(self, user_id: int) -> list[StageChange]:
        """The user's stage changes, oldest first."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.lifecycle.history(uid)

    # -- moving users ---------------------------------------------------------------------
    def _ensure_group(self, tx: Transaction) -> None:
        if self._group_ready:
            return
        group = tx.tags.get_group(GROUP)
        if group is None or not group.exclusive:
            self._tags.define_group(GROUP, exclusive=True, description="lifecycle stage (siyu.lifecycle)")
            tx.after_commit(self._mark_group_ready)
        else:
            self._group_ready = True

    def _mark_group_ready(self) -> None:
        self._group_ready = True

    def _move(
        self, tx: Transaction, moves: Mapping[int, tuple[str, str]], at: datetime | Mapping[int, datetime]
    ) -> list[StageChange]:
        """Apply ``{user_id: (to_stage, reason)}`` in bulk, recording history and events;
        ``at`` is when, for everyone or per user."""
        if not moves:
            return []
        self._ensure_group(tx)
        current = tx.lifecycle.stages(GROUP, sorted(moves))
        changes = [
            StageChange(user_id=uid, from_stage=current.get(uid), to_stage=stage,
                        at=at if isinstance(at, datetime) else at[uid], reason=reason)
            for uid, (stage, reason) in sorted(moves.items())
            if current.get(uid) != stage
        ]
        by_stage: dict[str, list[int]] = {}
        for change in changes:
            by_stage.setdefault(change.to_stage, []).append(change.user_id)
        for stage, ids in by_stage.items():
            self._tags.apply_many(ids, f"{GROUP}/{stage}", by="lifecycle")
        tx.lifecycle.record(changes)
        for change in changes:
            tx.emit(LifecycleChanged(at=change.at, user_id=change.user_id, from_stage=change.from_stage,
                                     to_stage=change.to_stage, reason=change.reason))
        if changes:
            tx.meta.bump("lifecycle")
        return changes

    def apply_activity(self, tx: Transaction, activity: Mapping[int, Sequence[tuple[str, datetime]]]) -> None:
        """Move users after tracked events (called by ``ws.events`` inside its transaction).
        ``activity`` maps a user to their new ``(kind, at)`` events."""
        if not activity:
            return
        intent_kinds = set(self._settings(tx)["intent_events"])
        current = tx.lifecycle.stages(GROUP, sorted(activity))
        away = [u for u in activity if current.get(u) in _AWAY]
        since = tx.lifecycle.last_changes(away) if away else {}
        moves: dict[int, tuple[str, str]] = {}
        at_latest = max(at for events in activity.values() for _, at in events)
        for uid, events in activity.items():
            stage = current.get(uid)
            # An event from before the user went away (a late import) does not recall them.
            relevant = [(k, at) for k, at in events if uid not in since or at >= since[uid]]
            if not relevant:
                continue
            intent = [k for k, _ in relevant if k in intent_kinds]
            signal, kind = ("intent", intent[0]) if intent else ("interaction", relevant[-1][0])
            target = next_stage(stage, signal)
            if target is not None:
                moves[uid] = (target, f"event:{kind}")
        self._move(tx, moves, at_latest)

    def record_order(self, user_id: int, order_id: int, *, at: datetime | None = None) -> str | None:
        """Count a paid order for the stage machine (idempotent per ``order_id``) and
        move the user to ``customer`` or ``repeat``. Called for every
        :class:`~siyu.events.OrderRecorded`; returns the new stage, or ``None``."""
        order = check_int(order_id, "order_id", minimum=1)
        when = self._uow.now() if at is None else aware(at, "at")
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            return self._apply_orders(tx, [("order", uid, order, when)]).get(0)

    def record_refund(self, user_id: int, order_id: int, *, at: datetime | None = None) -> str | None:
        """The order was refunded in full, so it no longer counts (idempotent per
        ``order_id``): ``repeat`` moves to ``customer`` if one counted order is
        left, ``customer``/``repeat`` to ``intent`` if none is. Called for every
        full :class:`~siyu.events.OrderRefunded`; call it yourself for orders
        you passed to :meth:`record_order`. An order not recorded yet is
        remembered for ``user_id`` and will not count when it comes. Returns
        the new stage, or ``None``."""
        order = check_int(order_id, "order_id", minimum=1)
        when = self._uow.now() if at is None else aware(at, "at")
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            return self._apply_orders(tx, [("refund", uid, order, when)]).get(0)

    def _apply_orders(self, tx: Transaction, ops: Sequence[_Op]) -> dict[int, str]:
        """Apply orders, full refunds and unmerges, in order, as one call of
        :meth:`record_order` / :meth:`record_refund` each would; return
        ``{index in ops: stage moved to}``.

        A refund counts against whoever holds the order now (merges move
        orders), not the user named in the event. Users move in rounds (each
        user's first change, then their second ...), so the history and tag
        log read exactly as if the changes had come one by one, while each
        round is a handful of bulk statements."""
        owners = tx.lifecycle.order_owners(sorted({ref for kind, _, ref, _ in ops if kind != "unmerge"}))
        fresh: list[tuple[int, int, datetime]] = []
        refunded: list[tuple[int, int, datetime]] = []
        queue: dict[int, list[tuple[int, int, str, datetime]]] = {}  # user: [(op index, delta, reason, at)]
        for index, (kind, uid, ref, at) in enumerate(ops):
            if kind == "order" and ref not in owners:
                owners[ref] = (uid, True)
                fresh.append((ref, uid, at))
                queue.setdefault(uid, []).append((index, 1, f"order:{ref}", at))
            elif kind == "refund" and ref not in owners:
                owners[ref] = (uid, False)  # heard of before its order, which then never counts
                refunded.append((ref, uid, at))
            elif kind == "refund" and owners[ref][1]:
                holder = owners[ref][0]
                owners[ref] = (holder, False)
                refunded.append((ref, holder, at))
                queue.setdefault(holder, []).append((index, -1, f"refund:{ref}", at))
            elif kind == "unmerge":
                queue.setdefault(uid, []).append((index, 0, f"unmerge:{ref}", at))
        if not queue and not refunded:
            return {}
        tx.users.statuses(queue, lock=True)
        seen = tx.lifecycle.order_counts(list(queue))  # before this batch's changes
        tx.lifecycle.add_orders(fresh)
        tx.lifecycle.refund_orders(refunded)
        if fresh:
            active: dict[int, datetime] = {}
            for _, uid, at in fresh:
                active[uid] = max(at, active.get(uid, at))
            tx.activity.touch(active)
            tx.meta.bump("activity")
        stages: dict[int, str | None] = dict(tx.lifecycle.stages(GROUP, sorted(queue)))
        moved: dict[int, str] = {}
        for step in range(max((len(items) for items in queue.values()), default=0)):
            moves: dict[int, tuple[str, str]] = {}
            when: dict[int, datetime] = {}
            for uid, items in queue.items():
                if step >= len(items):
                    continue
                index, delta, reason, at = items[step]
                count = seen[uid] = seen.get(uid, 0) + delta
                if delta > 0:
                    signal: str | None = "repeat_order" if count >= 2 else "order"
                else:
                    signal = None if count >= 2 else "refund" if count == 1 else "last_refund"
                target = next_stage(stages.get(uid), signal) if signal else None
                if target is not None:
                    moves[uid], when[uid] = (target, reason), at
                    stages[uid] = moved[index] = target
            self._move(tx, moves, when)
        return moved

    def mark_lost(self, user_id: int, reason: str) -> bool:
        """The user deleted or blocked us (WeCom ``del_follow_user``, an SMS
        unsubscribe...). ``False`` if they were already lost."""
        why = check_text(reason, "reason", max_length=100)
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            return bool(self._move(tx, {uid: ("lost", f"lost:{why}")}, now))

    def mark_lost_many(self, reasons: Mapping[int, str]) -> int:
        """:meth:`mark_lost` for many users in one write (``user_id -> reason``); returns how
        many became lost (the others already were)."""
        if not isinstance(reasons, Mapping):
            raise ValidationError(
                f"reasons must map user ids to reasons, e.g. {{7: 'unsubscribed'}}; got {reasons!r:.80}")
        why = {check_user_id(u): check_text(r, "reason", max_length=100) for u, r in reasons.items()}
        if not why:
            return 0
        now = self._uow.now()
        with self._uow.write() as tx:
            require_users(tx, why, lock=True)
            return len(self._move(tx, {u: ("lost", f"lost:{r}") for u, r in why.items()}, now))

    def sweep(self) -> dict[str, int]:
        """Time-based moves: users idle for ``dormant_after_days`` (measured from
        their last activity, or their creation if never active) become
        ``dormant``; users without any stage become ``new``. Run it daily (a
        cron job or scheduler). Returns how many users moved to each stage."""
        now = self._uow.now()
        with self._uow.write() as tx:
            days = self._settings(tx)["dormant_after_days"]
            cutoff = now - timedelta(days=days)
            moves: dict[int, tuple[str, str]] = dict.fromkeys(tx.lifecycle.without_stage(GROUP), ("new", "sweep"))
            for uid in tx.lifecycle.inactive_since(GROUP, _CAN_SLEEP, cutoff):
                moves[uid] = ("dormant", f"sweep:idle {days}d")
            changes = self._move(tx, moves, now)
        result: dict[str, int] = {}
        for change in changes:
            result[change.to_stage] = result.get(change.to_stage, 0) + 1
        return result

    # -- merge participant ------------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> list[int]:
        return tx.lifecycle.move_user(drop, keep)

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: list[int], at: datetime) -> None:
        tx.lifecycle.restore_user(record, drop)


