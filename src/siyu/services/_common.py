"""Validation and idempotency helpers shared by the services."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import IdempotencyConflict, NotFound, UserMerged, ValidationError

if TYPE_CHECKING:
    from ..storage.base import Transaction

T = TypeVar("T")

MAX_KEY_LENGTH = 200


def check_key(key: object, name: str = "key") -> str:
    """An idempotency key: a non-empty string of at most 200 characters."""
    if not isinstance(key, str) or not key.strip():
        raise ValidationError(
            f"{name} must be a non-empty string that identifies this write, e.g. "
            f"'signin:2026-11-22:42'; got {key!r}"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"{name} is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    return key


def check_int(value: object, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValidationError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValidationError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_text(value: object, name: str, *, max_length: int = 200, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a str, got {type(value).__name__} {value!r}")
    if not allow_empty and not value.strip():
        raise ValidationError(f"{name} must not be empty")
    if len(value) > max_length:
        raise ValidationError(f"{name} is {len(value)} characters long; the limit is {max_length}")
    if any(ord(ch) < 32 and ch not in "\t" for ch in value):
        raise ValidationError(f"{name} contains control characters: {value!r}")
    return value


#: Ids are 64-bit signed integers in every backend.
MAX_ID = 2**63 - 1


def check_id(value: object, name: str) -> int:
    """A stored id: a positive int that fits the 64-bit columns."""
    return check_int(value, name, minimum=1, maximum=MAX_ID)


def check_user_id(value: object) -> int:
    return check_id(value, "user_id")


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
    return uid


def require_users(tx: Transaction, user_ids: Iterable[int], *, lock: bool = False) -> None:
    """:func:`require_user` for many active users at once, in one query."""
    ids = {check_user_id(u) for u in user_ids}
    found = tx.users.statuses(ids, lock=lock)
    missing = ids - set(found)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise NotFound(f"no user with id {min(missing)}{more}")
    for uid in sorted(ids):
        status, merged_into = found[uid]
        if status == "merged":
            raise UserMerged(uid, merged_into)


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
