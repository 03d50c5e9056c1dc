"""Helpers the services share: users that must exist, idempotent writes.

The plain value checks live on the ground floor (:mod:`siyu._validation`) and
are re-exported here for the services that import them from this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .._validation import (
    MAX_ID,
    MAX_KEY_LENGTH,
    check_id,
    check_int,
    check_key,
    check_many,
    check_text,
    check_user_id,
)
from ..errors import IdempotencyConflict, NotFound, UserErased, UserMerged

if TYPE_CHECKING:
    from ..storage.base import Transaction

T = TypeVar("T")

__all__ = [
    "MAX_ID",
    "MAX_KEY_LENGTH",
    "check_id",
    "check_int",
    "check_key",
    "check_many",
    "check_text",
    "check_found",
    "check_user_id",
    "fingerprint",
    "idempotent",
    "require_user",
    "require_users",
]


def require_user(tx: Transaction, user_id: object, *, lock: bool = False, active: bool = True) -> int:
    """Validate a user id and check it exists (optionally taking its write lock)."""
    uid = check_user_id(user_id)
    exists = tx.users.lock(uid) if lock else bool(tx.users.exists([uid]))
    if not exists:
        raise NotFound(
            f"no user with id {uid}; create one with ws.users.add(...) or look it up with ws.users.find(...)"
        )
    if active:
        status, merged_into = tx.users.statuses([uid]).get(uid, ("active", None))
        if status == "merged":
            raise UserMerged(uid, merged_into)
        if status == "erased":
            raise _erased(tx, uid)
    return uid


def _erased(tx: Transaction, user_id: int) -> UserErased:
    # A record merged into the erased user has no tombstone of its own: no date then.
    tombstone = tx.privacy.tombstone(user_id)
    return UserErased(user_id, None if tombstone is None else tombstone.erased_at)


def require_users(tx: Transaction, user_ids: Iterable[int], *, lock: bool = False) -> None:
    """:func:`require_user` for many active users at once, in one query."""
    ids = {check_user_id(u) for u in user_ids}
    check_found(ids, tx.users.statuses(ids, lock=lock), tx)


def check_found(ids: set[int], found: dict[int, tuple[str, int | None]], tx: Transaction) -> None:
    """Raise for a user of ``ids`` missing from ``found`` (``tx.users.statuses``), merged away or erased."""
    missing = ids - set(found)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise NotFound(f"no user with id {min(missing)}{more}; create one with ws.users.add(...) or look it up "
                       "with ws.users.find(...)")
    for uid in sorted(ids):
        status, merged_into = found[uid]
        if status == "merged":
            raise UserMerged(uid, merged_into)
        if status == "erased":
            raise _erased(tx, uid)


def fingerprint(*parts: Any) -> str:
    """A stable string for the arguments of a keyed write."""
    return json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))


def idempotent(
    tx: Transaction,
    scope: str,
    key: str,
    print_: str,
    run: Callable[[], T],
    encode: Callable[[T], str],
    decode: Callable[[str], T],
) -> T:
    """Run ``run`` once per ``(scope, key)``; a repeat returns the first result.

    A repeat with different arguments (a different fingerprint) is refused.
    """
    stored = tx.idempotency.get(scope, key)
    if stored is not None:
        if stored[0] != print_:
            raise IdempotencyConflict(
                f"key {key!r} was already used for a different {scope} request; "
                "use a new key for a new request, or repeat the original arguments to get the first result"
            )
        return decode(stored[1])
    result = run()
    tx.idempotency.put(scope, key, print_, encode(result))
    return result
