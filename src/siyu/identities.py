"""Validating and normalizing channel identities (phone, e-mail, WeChat, WeCom).

Phones go through Google's libphonenumber (the ``phonenumbers`` package):
every common spelling of a Chinese mobile number (``13800138000``,
``138-0013-8000``, ``+86 138 0013 8000``, ``0086 13800138000``,
``8613800138000``) becomes the same E.164 value ``+8613800138000``.
"""

from __future__ import annotations

import re

import phonenumbers

from ._text import LINE_TYPES, SMS_LINE_TYPES, line_type, mask, mask_phone, sms_reachable
from .errors import InvalidPhone, ValidationError
from .models.users import IDENTITY_KINDS

__all__ = ["line_type", "mask", "normalize", "normalize_phone", "sms_phone", "sms_reachable"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OPAQUE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_SCOPED = {"wechat_openid"}


def normalize_phone(value: object, region: str = "CN") -> str:
    """Parse a phone number and return it in E.164 form."""
    return phonenumbers.format_number(_parse_phone(value, region), phonenumbers.PhoneNumberFormat.E164)


def sms_phone(value: object, region: str = "CN") -> str:
    """Like :func:`normalize_phone`, and refuse a number a text message cannot reach
    (a landline, a 400/800 number) with :class:`~siyu.errors.InvalidPhone`."""
    number = _parse_phone(value, region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    kind = LINE_TYPES.get(phonenumbers.number_type(number), "unknown")
    if kind not in SMS_LINE_TYPES:
        what = "a landline" if kind == "landline" else f"a {kind.replace('_', '-')} number"
        raise InvalidPhone(
            f"phone {mask_phone(e164)} is {what}: SMS cannot reach it; nothing was sent "
            "(reach this customer on another channel)"
        )
    return e164


def _parse_phone(value: object, region: str) -> phonenumbers.PhoneNumber:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidPhone(f"phone must be a string such as '13800138000', got {type(value).__name__}")
    text = str(value).strip()
    digits = re.sub(r"[\s\-().]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = "+" + digits
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(
            f"phone {mask_phone(text)!r} is not a phone number ({exc}); use e.g. '13800138000'"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            f"phone {mask_phone(text)!r} is not a valid number for its region; check the digits "
            "(Chinese mobiles have 11 digits starting with 1)"
        )
    return number


def normalize(kind: str, value: object, scope: str = "") -> tuple[str, str]:
    """Validate an identity; return ``(value, scope)`` in normal form."""
    if not isinstance(kind, str) or kind not in IDENTITY_KINDS:
        raise ValidationError(
            f"unknown identity kind {kind!r}; known kinds: {', '.join(sorted(IDENTITY_KINDS))}"
        )
    if not isinstance(scope, str):
        raise ValidationError(f"app must be a str app id such as 'wx1234', got {type(scope).__name__}")
    if kind in _SCOPED:
        if not scope.strip():
            raise ValidationError(
                f"{kind} is per app: pass the app id as app='wx...' (an openid means nothing without it)"
            )
    elif scope:
        raise ValidationError(f"{kind} has no app scope; drop app={scope!r}")
    if kind == "phone":
        return normalize_phone(value), ""
    if not isinstance(value, str):
        raise ValidationError(f"{kind} must be a str, got {type(value).__name__}")
    text = value.strip()
    if kind == "email":
        if not _EMAIL.match(text) or len(text) > 254:
            raise ValidationError(f"email {mask(kind, text)!r} is not an e-mail address like 'name@example.com'")
        local, _, domain = text.rpartition("@")
        return f"{local}@{domain.lower()}", ""
    if not _OPAQUE.match(text):
        raise ValidationError(
            f"{kind} {text[:40]!r} is not a valid id: expected 1-128 letters, digits, '-' or '_'"
        )
    return text, scope.strip()
