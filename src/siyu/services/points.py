"""Points: an append-only ledger of lots.

An earn opens a *lot* (optionally pending until a date, optionally expiring).
A spend consumes lots earliest-expiry-first and records which lots it took
from, so reversing a spend puts points back into the lots they came from,
with their original expiry. Expiry and reversal are ledger entries too.
Every write takes an idempotency key; the balance can never go negative.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import aware
from .._text import ERASED
from ..errors import IdempotencyConflict, InsufficientPoints, NotFound, ValidationError
from ..events import PointsEarned, PointsExpired, PointsReversed, PointsSpent
from ..models.points import PointsEntry, PointsLot
from ..storage.contracts import NewEntry
from ._common import (
    check_found,
    check_id,
    check_int,
    check_key,
    check_many,
    check_text,
    check_user_id,
    require_user,
)

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction

__all__ = ["MAX_POINTS", "Credit", "Points"]

#: The largest single earn or spend (guards against unit mistakes such as fen for yuan).
MAX_POINTS = 1_000_000_000
_EARN_LIKE = {"earn", "merge_in"}


def _stamp(value: datetime | None, memo: dict[Any, str] | None = None) -> str:
    if value is None:
        return ""
    if memo is None:
        return value.isoformat()
    # Bulk rows mostly share a few expiry dates; isoformat is the costly part of a
    # fingerprint. The offset is part of the key because isoformat shows it.
    token = (value, value.utcoffset())
    text = memo.get(token)
    if text is None:
        text = memo[token] = value.isoformat()
    return text


def _earn_print(
    user_id: int,
    amount: int,
    reason: str,
    available: datetime | None,
    expires: datetime | None,
    memo: dict[Any, str] | None = None,
) -> str:
    return f"earn|{user_id}|{amount}|{reason}|{_stamp(available, memo)}|{_stamp(expires, memo)}"


@attrs.frozen(kw_only=True)
class Credit:
    """One earn another service books inside its own transaction, already validated
    (an order's purchase points, a rule's award, an invite task's reward)."""

    user_id: int
    amount: int
    reason: str
    key: str
    expires_at: datetime | None = None
    available_at: datetime | None = None


def _conflict(key: str, previous: str) -> IdempotencyConflict:
    if previous == ERASED:
        # Erasure drops the reason the fingerprint repeated, so a retry cannot be told apart.
        return IdempotencyConflict(
            f"key {key!r} was used for a points write of a person since erased; a retry of that write has "
            "nothing left to do, a new write needs a new key"
        )
    return IdempotencyConflict(f"key {key!r} was already used for a different points write; "
                               "use a new key for a new write")


class Points:
    """``ws.points``: earn, spend, reverse, expire; balances and history."""

    name = "points"

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    # -- validation -----------------------------------------------------------------
    def _earn_row(
        self, row: Mapping[str, Any] | Sequence[Any], now: datetime, memo: dict[Any, str] | None = None
    ) -> NewEntry:
        """Validate one earn row. ``memo`` caches results for values repeated
        across the rows of one bulk call (reasons, expiry stamps)."""
        if isinstance(row, Mapping):
            fields = dict(row)
        elif isinstance(row, Sequence) and not isinstance(row, str) and 4 <= len(row) <= 6:
            fields = dict(zip(("user_id", "amount", "reason", "key", "expires_at", "available_at"), row, strict=False))
        else:
            raise ValidationError(
                "an earn row is a dict with user_id, amount, reason, key (and optional expires_at, "
                f"available_at) or a tuple in that order; got {row!r}"
            )
        unknown = set(fields) - {"user_id", "amount", "reason", "key", "expires_at", "available_at"}
        if unknown:
            raise ValidationError(f"unknown earn field(s) {sorted(unknown)}")
        user_id = check_user_id(fields.get("user_id"))
        amount = check_int(fields.get("amount"), "amount", minimum=1, maximum=MAX_POINTS)
        raw_reason = fields.get("reason", "")
        reason = memo.get(raw_reason) if memo is not None and type(raw_reason) is str else None
        if reason is None:
            reason = check_text(raw_reason, "reason", max_length=128)
            if memo is not None:
                memo[reason] = reason
        key = check_key(fields.get("key"))
        expires = fields.get("expires_at")
        available = fields.get("available_at")
        if expires is not None:
            expires = aware(expires, "expires_at")
        if available is not None:
            available = aware(available, "available_at")
        if expires is not None and expires <= (available or now):
            raise ValidationError(
                f"expires_at={expires.isoformat()} is not after the points become available "
                f"({(available or now).isoformat()}); such points could never be used"
            )
        return NewEntry(
            user_id=user_id,
            kind="earn",
            amount=amount,
            reason=reason,
            at=now,
            key=key,
            fingerprint=_earn_print(user_id, amount, reason, available, expires, memo),
            available_at=available,
            expires_at=expires,
        )

    @staticmethod
    def _dedupe(rows: list[NewEntry], existing: dict[str, tuple[int, str]]) -> tuple[list[NewEntry], dict[str, str]]:
        """Split rows into new ones and repeats; refuse a key reused with other arguments."""
        fresh: list[NewEntry] = []
        seen: dict[str, str] = {}
        for row in rows:
            assert row.key is not None and row.fingerprint is not None
            previous = existing[row.key][1] if row.key in existing else seen.get(row.key)
            if previous is not None:
                if previous != row.fingerprint:
                    raise _conflict(row.key, previous)
                continue
            seen[row.key] = row.fingerprint
            fresh.append(row)
        return fresh, seen

    # -- earn ---------------------------------------------------------------------
    def earn(
        self,
        user_id: int,
        amount: int,
        *,
        reason: str,
        key: str,
        expires_at: datetime | None = None,
        available_at: datetime | None = None,
    ) -> PointsEntry:
        """Credit ``amount`` points. ``available_at`` keeps them pending until then
        (e.g. after the return window); ``expires_at`` is when they lapse.
        Repeating a ``key`` returns the first entry and credits nothing."""
        # Read back in the writing transaction: no second transaction (and round trips) for it.
        with self._uow.write() as tx:
            entry_id = self.earn_many(
                [{"user_id": user_id, "amount": amount, "reason": reason, "key": key,
                  "expires_at": expires_at, "available_at": available_at}]
            )[0]
            entry = tx.points.entry(entry_id)
        assert entry is not None
        return entry

    def earn_many(self, rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> list[int]:
        """Credit many earns in one transaction (all or nothing); returns entry ids
        in row order (a repeated key yields the id of its first entry)."""
        now = self._uow.now()
        entries = []
        memo: dict[Any, str] = {}
        for index, row in enumerate(check_many(rows, "rows", "[(user_id, 10, 'sign-in', 'signin:42')]")):
            try:
                entries.append(self._earn_row(row, now, memo))
            except ValidationError as exc:
                raise type(exc)(f"row {index}: {exc}") from None
        if not entries:
            return []
        with self._uow.write() as tx:
            return self._book(tx, entries, now)

    def credit(self, tx: Transaction, credits: Sequence[Credit], now: datetime) -> list[int]:
        """Book validated earns inside ``tx``, the transaction of the change that earned
        them; returns entry ids in order (a repeated key yields its first entry's id)."""
        for c in credits:  # the invariants of the ledger, whoever computed the amount
            check_int(c.amount, "amount", minimum=1, maximum=MAX_POINTS)
            if c.expires_at is not None and c.expires_at <= (c.available_at or now):
                raise ValidationError(f"expires_at={c.expires_at.isoformat()} is not after the points become "
                                      f"available ({(c.available_at or now).isoformat()})")
        entries = [
            NewEntry(user_id=c.user_id, kind="earn", amount=c.amount, reason=c.reason, at=now, key=c.key,
                     fingerprint=_earn_print(c.user_id, c.amount, c.reason, c.available_at, c.expires_at),
                     available_at=c.available_at, expires_at=c.expires_at)
            for c in credits
        ]
        return self._book(tx, entries, now) if entries else []

    def _book(self, tx: Transaction, entries: list[NewEntry], now: datetime) -> list[int]:
        # The users' rows first (in id order): a second process earning with the same key for
        # the same user waits here, then finds the key taken instead of racing to insert it.
        found = tx.users.statuses({e.user_id for e in entries}, lock=True)
        existing = tx.points.by_keys([e.key for e in entries if e.key])
        fresh, _ = self._dedupe(entries, existing)
        check_found({e.user_id for e in fresh}, found, tx)
        ids = tx.points.append(fresh)
        by_key = {key: entry_id for key, (entry_id, _) in existing.items()}
        for entry_id, entry in zip(ids, fresh, strict=True):
            assert entry.key is not None
            by_key[entry.key] = entry_id
            tx.emit(PointsEarned(at=now, user_id=entry.user_id, entry_id=entry_id, amount=entry.amount,
                                 reason=entry.reason, key=entry.key))
        if fresh:
            tx.meta.bump("points")
        return [by_key[e.key] for e in entries if e.key]

    # -- spend ----------------------------------------------------------------------
    def spend(self, user_id: int, amount: int, *, reason: str, key: str) -> PointsEntry:
        """Debit ``amount`` points, earliest-expiring lots first.

        Raises :class:`~siyu.errors.InsufficientPoints` (and changes nothing)
        if the available balance is smaller."""
        with self._uow.write() as tx:  # read back in the writing transaction, as earn does
            entry_id = self.spend_many([{"user_id": user_id, "amount": amount, "reason": reason, "key": key}])[0]
            entry = tx.points.entry(entry_id)
        assert entry is not None
        return entry

    def spend_many(self, rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> list[int]:
        """Debit many spends in one transaction; if any lacks points, none happens."""
        now = self._uow.now()
        entries: list[NewEntry] = []
        for index, row in enumerate(check_many(rows, "rows", "[(user_id, 10, 'redeem', 'redeem:42')]")):
            if not isinstance(row, Mapping):
                if isinstance(row, Sequence) and not isinstance(row, str) and len(row) == 4:
                    row = dict(zip(("user_id", "amount", "reason", "key"), row, strict=True))
                else:
                    raise ValidationError(f"row {index}: a spend row is a dict or (user_id, amount, reason, key)")
            unknown = set(row) - {"user_id", "amount", "reason", "key"}
            if unknown:
                raise ValidationError(f"row {index}: unknown spend field(s) {sorted(unknown)}")
            try:
                user_id = check_user_id(row.get("user_id"))
                amount = check_int(row.get("amount"), "amount", minimum=1, maximum=MAX_POINTS)
                reason = check_text(row.get("reason", ""), "reason", max_length=128)
                key = check_key(row.get("key"))
            except ValidationError as exc:
                raise type(exc)(f"row {index}: {exc}") from None
            entries.append(NewEntry(user_id=user_id, kind="spend", amount=-amount, reason=reason, at=now,
                                    key=key, fingerprint=f"spend|{user_id}|{amount}|{reason}"))
        if not entries:
            return []
        with self._uow.write() as tx:
            found = tx.users.statuses({e.user_id for e in entries}, lock=True)  # before the keys: see _book
            existing = tx.points.by_keys([e.key for e in entries if e.key])
            fresh, _ = self._dedupe(entries, existing)
            users = {e.user_id for e in fresh}
            check_found(users, found, tx)
            lots_by_user = {
                uid: [[lot.entry_id, lot.remaining] for lot in lots]
                for uid, lots in tx.points.usable_lots_of(sorted(users), now).items()
            }
            plans = [self._take(lots_by_user.setdefault(e.user_id, []), -e.amount, e.user_id) for e in fresh]
            ids = tx.points.append(fresh)
            tx.points.consume_many(
                [(entry_id, lot, amount) for entry_id, takes in zip(ids, plans, strict=True) for lot, amount in takes]
            )
            by_key = {key: entry_id for key, (entry_id, _) in existing.items()}
            for entry_id, entry in zip(ids, fresh, strict=True):
                assert entry.key is not None
                by_key[entry.key] = entry_id
                tx.emit(PointsSpent(at=now, user_id=entry.user_id, entry_id=entry_id, amount=-entry.amount,
                                    reason=entry.reason, key=entry.key))
            if fresh:
                tx.meta.bump("points")
        return [by_key[e.key] for e in entries if e.key]

    @staticmethod
    def _take(lots: list[list[int]], amount: int, user_id: int) -> list[tuple[int, int]]:
        """Plan taking ``amount`` from ``lots`` (``[lot_id, remaining]``, in spending order),
        updating ``remaining`` in place."""
        available = sum(lot[1] for lot in lots)
        if available < amount:
            raise InsufficientPoints(
                f"user {user_id} has {available} points available, {amount} are needed; "
                "check ws.points.balance() before spending",
                requested=amount,
                available=available,
            )
        takes: list[tuple[int, int]] = []
        need = amount
        for lot in lots:
            if need == 0:
                break
            take = min(lot[1], need)
            if take:
                lot[1] -= take
                need -= take
                takes.append((lot[0], take))
        return takes

    # -- reverse ----------------------------------------------------------------------
    def reverse(self, entry_id: int, *, key: str, amount: int | None = None, reason: str = "reverse") -> PointsEntry:
        """Undo an earn or a spend, wholly or ``amount`` of it (e.g. a partial refund).

        Reversing an earn takes its points back: from its own lot first, then
        (if some were spent already) from the user's other lots; if the user
        no longer has enough, :class:`~siyu.errors.InsufficientPoints` is raised.
        Reversing a spend returns points to the lots they came from, keeping
        those lots' expiry."""
        eid = check_id(entry_id, "entry_id")
        check_key(key)
        check_text(reason, "reason", max_length=128)
        if amount is not None:
            check_int(amount, "amount", minimum=1, maximum=MAX_POINTS)
        now = self._uow.now()
        with self._uow.write() as tx:
            return self.reverse_in(tx, eid, key=key, amount=amount, reason=reason, now=now)

    def reverse_in(self, tx: Transaction, entry_id: int, *, key: str, amount: int | None, reason: str,
                   now: datetime) -> PointsEntry:
        """:meth:`reverse` with validated values, inside ``tx`` (a refund's transaction)."""
        eid = entry_id
        print_ = f"reverse|{eid}|{amount}|{reason}"
        reversed_entry = tx.points.entry(eid)
        if reversed_entry is not None:  # lock its user (and whom they were merged into) before the key check
            self._chain(tx, reversed_entry.user_id)
        existing = tx.points.by_keys([key])
        if key in existing:
            if existing[key][1] != print_:
                raise _conflict(key, existing[key][1])
            repeat = tx.points.entry(existing[key][0])
            assert repeat is not None
            return repeat
        target = tx.points.entry(eid)
        if target is None:
            raise NotFound(f"no points entry with id {eid}")
        if target.kind not in _EARN_LIKE | {"spend"}:
            raise ValidationError(
                f"entry {eid} is a {target.kind!r} entry; only earn and spend entries can be reversed"
            )
        chain = self._chain(tx, target.user_id)
        holder = chain[-1]
        left = abs(target.amount) - tx.points.reversed_amount(eid)
        want = left if amount is None else amount
        if left <= 0:
            raise ValidationError(f"entry {eid} is already fully reversed")
        if want > left:
            raise ValidationError(f"entry {eid} has only {left} points left to reverse, not {want}")
        if target.kind == "spend":
            gives = self._give_back(tx, eid, want)
            sign = want
        else:
            # The earn's points now sit with whoever holds its lot: the earner, or the
            # user the earner was merged into (the merge moved the lot into a merge_in lot).
            first = self._descendants(tx, chain, eid)
            lots = [[lot.entry_id, lot.remaining] for lot in tx.points.usable_lots(holder, now)]
            # Take from the reversed earn's own lot first, even if it is still pending.
            lots = [[i, n] for i, n in first if n > 0] + [lot for lot in lots if lot[0] not in dict(first)]
            takes = self._take(lots, want, holder)
            sign = -want
        [new_id] = tx.points.append(
            [NewEntry(user_id=holder if target.kind != "spend" else target.user_id, kind="reverse", amount=sign,
                      reason=reason, at=now, key=key, fingerprint=print_, ref_entry_id=eid)]
        )
        if target.kind == "spend":
            tx.points.restore(new_id, gives)
            # The spender was merged away: the points come back to their lots and go on
            # along the merges, one merge at a time under that merge's tag, so undoing a
            # merge (see unmerge) takes them back exactly as it takes back what it moved.
            back = [(lot, amount) for lot_id, amount in gives if (lot := tx.points.lot(lot_id)) is not None]
            for source, target_user in pairwise(chain):
                moved = self._move(tx, source, target_user, back, now, _merge_tag(source, target_user))
                back = [(lot, amount) for in_id, amount in moved if (lot := tx.points.lot(in_id)) is not None]
        else:
            tx.points.consume(new_id, takes)
        tx.emit(PointsReversed(at=now, user_id=holder if target.kind != "spend" else target.user_id,
                               entry_id=new_id, reversed_entry_id=eid, amount=sign, key=key))
        tx.meta.bump("points")
        entry = tx.points.entry(new_id)
        assert entry is not None
        return entry

    @staticmethod
    def _give_back(tx: Transaction, spend_id: int, amount: int) -> list[tuple[int, int]]:
        """Which lots a spend's reversal returns points to: what the spend took,
        less what earlier reversals of it returned, latest-expiring lots first."""
        taken = dict(tx.points.allocations(spend_id))
        spend = tx.points.entry(spend_id)
        assert spend is not None  # the caller found it
        for entry in tx.points.entries(spend.user_id):
            if entry.kind == "reverse" and entry.ref_entry_id == spend_id:
                for lot_id, given in tx.points.allocations(entry.id):
                    taken[lot_id] = taken.get(lot_id, 0) + given
        gives: list[tuple[int, int]] = []
        need = amount
        for lot_id in sorted(taken, reverse=True):
            if need == 0:
                break
            give = min(taken[lot_id], need)
            if give > 0:
                gives.append((lot_id, give))
                need -= give
        return gives

    # -- expire -----------------------------------------------------------------------
    def expire_due(self, *, batch: int = 1000) -> list[PointsEntry]:
        """Write ``expire`` entries for every lot whose expiry has passed (by the
        workspace clock). Safe to run as often as you like: it does nothing twice.
        Balances already ignore expired points before this runs."""
        check_int(batch, "batch", minimum=1)
        now = self._uow.now()
        written: list[PointsEntry] = []
        while True:
            with self._uow.write() as tx:
                due = tx.points.due_lots(now, batch)
                if not due:
                    break
                ids = tx.points.append(
                    [NewEntry(user_id=lot.user_id, kind="expire", amount=-lot.remaining, reason="expired", at=now,
                              ref_entry_id=lot.entry_id) for lot in due]
                )
                for entry_id, lot in zip(ids, due, strict=True):
                    tx.points.consume(entry_id, [(lot.entry_id, lot.remaining)])
                    tx.emit(PointsExpired(at=now, user_id=lot.user_id, entry_id=entry_id, amount=lot.remaining))
                    written.append(PointsEntry(id=entry_id, user_id=lot.user_id, kind="expire", amount=-lot.remaining,
                                               reason="expired", at=now, ref_entry_id=lot.entry_id))
                tx.meta.bump("points")
        return written

    # -- read -------------------------------------------------------------------------
    def balance(self, user_id: int) -> int:
        """Points usable now: available, not expired."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.points.balance(uid, self._uow.now())

    def pending(self, user_id: int) -> int:
        """Points earned but not available yet."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.points.pending(uid, self._uow.now())

    def history(self, user_id: int) -> list[PointsEntry]:
        """The user's ledger, oldest first."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.points.entries(uid)

    def lots(self, user_id: int) -> list[PointsLot]:
        """The user's lots with points left (pending and expired-but-not-swept included)."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.points.lots(uid)

    def entry(self, entry_id: int) -> PointsEntry:
        with self._uow.read() as tx:
            entry = tx.points.entry(check_id(entry_id, "entry_id"))
        if entry is None:
            raise NotFound(f"no points entry with id {entry_id}")
        return entry

    def expiring(self, *, within: timedelta) -> list[PointsLot]:
        """Lots that expire within ``within`` from now: the list for expiry reminders."""
        if not isinstance(within, timedelta) or within <= timedelta(0):
            raise ValidationError(f"within must be a positive timedelta, got {within!r}")
        now = self._uow.now()
        with self._uow.read() as tx:
            return tx.points.expiring(now, now + within)

    # -- merge participant ----------------------------------------------------------------
    @staticmethod
    def _chain(tx: Transaction, user_id: int) -> list[int]:
        """``user_id`` and the users it was merged into, in turn: the last one holds
        its points now. Each is locked for the write."""
        chain = [require_user(tx, user_id, lock=True, active=False)]
        for _ in range(64):  # merges cannot form a cycle; the bound only guards bad data
            status, merged_into = tx.users.statuses([chain[-1]]).get(chain[-1], ("active", None))
            if status != "merged" or merged_into is None:
                break
            chain.append(require_user(tx, merged_into, lock=True, active=False))
        return chain

    @staticmethod
    def _descendants(tx: Transaction, chain: list[int], entry_id: int) -> list[tuple[int, int]]:
        """``(lot id, remaining)`` of the lots of the holder (``chain[-1]``) that carry the
        points of earn ``entry_id``: its own lot, or the merge_in lots each merge made
        of it, oldest first. A reversal of that earn takes from these before any other."""
        lineage = {entry_id}
        for user in chain[1:]:
            lineage.update(e.id for e in tx.points.entries(user)
                           if e.kind == "merge_in" and e.ref_entry_id in lineage)
        return [(lot.entry_id, lot.remaining) for lot_id in sorted(lineage)
                if (lot := tx.points.lot(lot_id)) is not None and lot.user_id == chain[-1]]

    def _move(self, tx: Transaction, source: int, target: int, lots: list[tuple[PointsLot, int]], at: datetime,
              tag: str) -> list[list[int]]:
        moved: list[list[int]] = []
        for lot, amount in lots:
            if amount <= 0:
                continue
            [out_id, in_id] = tx.points.append(
                [
                    NewEntry(user_id=source, kind="merge_out", amount=-amount, reason=tag, at=at,
                             ref_entry_id=lot.entry_id),
                    NewEntry(user_id=target, kind="merge_in", amount=amount, reason=tag, at=at,
                             ref_entry_id=lot.entry_id, available_at=lot.available_at, expires_at=lot.expires_at),
                ]
            )
            tx.points.consume(out_id, [(lot.entry_id, amount)])
            moved.append([in_id, amount])
        tx.meta.bump("points")
        return moved

    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> list[list[int]]:
        lots = [(lot, lot.remaining) for lot in tx.points.lots(drop) if lot.expires_at is None or lot.expires_at > at]
        return self._move(tx, drop, keep, lots, at, _merge_tag(drop, keep))

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: list[list[int]], at: datetime) -> None:
        """Give ``drop`` back what is left of the points the merge moved, wherever they sit
        on ``keep`` now: in the lots the merge made, in lots points that followed the merge
        later were put in (a spend of drop's reversed while merged), or in lots they came
        back to ``keep`` in when a later merge of ``keep`` was undone first."""
        moved = {int(in_id): int(amount) for in_id, amount in record}
        tag = _merge_tag(drop, keep)
        origins = set(moved) | {e.id for e in tx.points.entries(keep) if e.kind == "merge_in" and e.reason == tag}
        back = []
        for lot in tx.points.lots(keep):
            if lot.remaining <= 0:
                continue
            if lot.entry_id in moved:
                back.append((lot, min(moved[lot.entry_id], lot.remaining)))
            elif self._descends(tx, lot.entry_id, origins):
                back.append((lot, lot.remaining))
        self._move(tx, keep, drop, back, at, f"unmerge:{keep}->{drop}")

    @staticmethod
    def _descends(tx: Transaction, entry_id: int, origins: set[int]) -> bool:
        """Whether the lot of ``entry_id`` holds points of one of the ``origins`` lots,
        carried over by merges and unmerges (each merge_in entry names the lot it came from)."""
        for _ in range(64):  # a ref chain is as long as the merges it went through
            if entry_id in origins:
                return True
            entry = tx.points.entry(entry_id)
            if entry is None or entry.kind != "merge_in" or entry.ref_entry_id is None:
                return False
            entry_id = entry.ref_entry_id
        return False


def _merge_tag(drop: int, keep: int) -> str:
    """The reason on the merge_out/merge_in entries of points a merge of ``drop`` into ``keep`` moved."""
    return f"merge:{drop}->{keep}"
