"""Checks of plain values every layer shares: ids, counts, keys, short texts.

A leaf of the import graph (it imports only :mod:`siyu.errors`), so models,
parsers, channels and services can all validate the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from .errors import ValidationError

T = TypeVar("T")

__all__ = ["MAX_BATCH", "MAX_ID", "MAX_KEY_LENGTH", "check_aware", "check_batch", "check_choice", "check_decimal",
           "check_duration",
           "check_id", "check_int", "check_key", "check_many", "check_mapping", "check_optional_id",
           "check_optional_text",
           "check_text", "check_unicode", "check_user_id"]

MAX_KEY_LENGTH = 200

#: Ids are 64-bit signed integers in every backend.
MAX_ID = 2**63 - 1

#: The most rows one batch (a claim, an expiry pass) takes in one transaction.
MAX_BATCH = 100_000


def check_key(key: object, name: str = "key") -> str:
    """An idempotency key: a non-empty string of at most 200 characters."""
    if not isinstance(key, str) or not key.strip():
        raise ValidationError(
            f"{name} must be a non-empty string that identifies this write, e.g. "
            f"'signin:2026-11-22:42'; got {key!r}"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"{name} is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    check_unicode(key, name)
    return key


def check_unicode(value: str, name: str) -> str:
    """Refuse a lone surrogate (``"\\ud800"``): Python strings may hold one, but no database,
    file or provider can store it, so it would fail later, half way through a write."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(
                f"{name} contains {value[exc.start:exc.end]!r} at position {exc.start}, a lone surrogate that is "
                "not valid Unicode; decode the input with errors='replace' (or fix its source)"
            ) from None
    return value


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
    return check_unicode(value, name)


def check_id(value: object, name: str) -> int:
    """A stored id: a positive int that fits the 64-bit columns."""
    return check_int(value, name, minimum=1, maximum=MAX_ID)


def check_user_id(value: object) -> int:
    return check_id(value, "user_id")


def check_many(values: Iterable[T], name: str, example: str) -> list[T]:
    """The items of a batch argument (rows, user ids), read once: a list, tuple, set or
    generator is fine; a number, a string or a single dict is refused (iterating a string
    or a dict would quietly read its characters or keys as the items)."""
    if isinstance(values, str | bytes | bytearray | Mapping) or not isinstance(values, Iterable):
        raise ValidationError(
            f"{name} must be a list (or another iterable) of items, got {type(values).__name__} {values!r:.80}; "
            f"e.g. {example}"
        )
    return list(values)


def check_optional_text(value: object, name: str, *, max_length: int = 200) -> str | None:
    """:func:`check_text`, or ``None`` (a filter left out)."""
    return None if value is None else check_text(value, name, max_length=max_length)


def check_choice(value: object, name: str, choices: Collection[str]) -> str:
    """A name that must be one of ``choices`` (a variant, a registered channel ...): a
    wrong type is refused as such rather than failing a dictionary lookup."""
    text = check_text(value, name)
    if text not in choices:
        known = ", ".join(repr(c) for c in sorted(choices)) or "none yet"
        raise ValidationError(f"{name}={text!r} is not one of {known}")
    return text


def check_batch(value: object, name: str = "batch") -> int:
    """How many rows one transaction takes: 1 .. :data:`MAX_BATCH`."""
    return check_int(value, name, minimum=1, maximum=MAX_BATCH)


def check_mapping(value: object, name: str, example: str) -> Mapping[Any, Any]:
    """A dict-like argument (settings, prices by sku, details)."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a dict, got {type(value).__name__} {value!r:.80}; e.g. {example}")
    return value


def check_aware(value: object, name: str) -> datetime:
    """A timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime, got {type(value).__name__} {value!r:.80}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{name}={value.isoformat()} has no timezone; pass an aware datetime "
            "(e.g. datetime(..., tzinfo=ZoneInfo('Asia/Shanghai')))"
        )
    return value


def check_duration(value: object, name: str, *, positive: bool = False) -> timedelta:
    """A ``timedelta`` that is >= 0 (or > 0 with ``positive``)."""
    if not isinstance(value, timedelta):
        raise ValidationError(
            f"{name} must be a timedelta, e.g. timedelta(days=30); got {type(value).__name__} {value!r:.80}"
        )
    if value < timedelta(0) or (positive and not value):
        raise ValidationError(f"{name} must be {'>' if positive else '>='} 0, got {value}")
    return value


def check_optional_id(value: object, name: str) -> int | None:
    """:func:`check_id`, or ``None`` (a filter left out)."""
    return None if value is None else check_id(value, name)


def check_decimal(value: object, name: str, *, example: str) -> Decimal:
    """A finite number given exactly: a Decimal, an int or a numeric str (a float is refused:
    ``0.1`` is not one tenth in binary)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValidationError(
            f"{name} must be a Decimal, int or str such as {example}; got {type(value).__name__} {value!r:.80}"
        )
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValidationError(f"{name}={value!r:.80} is not a number; give e.g. {example}") from None
    if not number.is_finite():
        raise ValidationError(f"{name} must be a finite number such as {example}, got {value!r}")
    return number
