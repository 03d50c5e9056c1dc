"""Validating and normalizing channel identities (phone, e-mail, WeChat, WeCom).

Phones go through Google's libphonenumber (the ``phonenumbers`` package):
every common spelling of a Chinese mobile number (``13800138000``,
``138-0013-8000``, ``+86 138 0013 8000``, ``0086 13800138000``,
``8613800138000``) becomes the same E.164 value ``+8613800138000``.
"""

from __future__ import annotations

import re

import phonenumbers

from ._text import mask, mask_phone
from .errors import InvalidPhone, ValidationError
from .models.users import IDENTITY_KINDS

__all__ = ["mask", "normalize", "normalize_phone"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OPAQUE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_SCOPED = {"wechat_openid"}


def normalize_phone(value: object, region: str = "CN") -> str:
    """Parse a phone number and return it in E.164 form."""
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
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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

