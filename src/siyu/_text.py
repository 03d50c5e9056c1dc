"""Rules about short texts that every layer shares: tag names, display masks, phone line types.

A leaf of the import graph (it imports only :mod:`siyu.errors`): models mask
their reprs with it, the segment parser and the channels read tag names with
it, and the services build on it. The public homes of these names are
:mod:`siyu.services.tags` (tag names), :mod:`siyu.identities` and
:mod:`siyu.privacy` (masks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import phonenumbers

from .errors import ValidationError

#: What free-form text about a person reads after :meth:`ws.privacy.erase <siyu.services.privacy.Privacy.erase>`.
ERASED = "[erased]"

__all__ = [
    "DEFAULT_GROUP",
    "ERASED",
    "DEFAULT_PERSONAL",
    "DEFAULT_SENSITIVE",
    "LINE_TYPES",
    "MAX_GROUP_LENGTH",
    "MAX_TAG_LENGTH",
    "mask",
    "mask_secrets",
    "mask_phone",
    "mask_value",
    "SMS_LINE_TYPES",
    "line_type",
    "sms_reachable",
    "split_tag",
]

# -- tag names -----------------------------------------------------------------------------

#: Where a bare tag name (no ``group/``) lives.
DEFAULT_GROUP = "default"
#: WeCom's limits for corp tag names and group names, kept so tags sync 1:1.
MAX_TAG_LENGTH = 30
MAX_GROUP_LENGTH = 15


def check_tag_part(value: str, what: str, limit: int, full: str) -> str:
    """One half of ``group/name`` (``what`` is ``"group"`` or ``"tag"``)."""
    if not value or value != value.strip():
        raise ValidationError(f"tag {full!r}: the {what} name is empty or has surrounding spaces")
    if len(value) > limit:
        raise ValidationError(
            f"tag {full!r}: the {what} name has {len(value)} characters; at most {limit} are allowed "
            "(WeCom's limit, so tags can be synced)"
        )
    if any(ord(ch) < 32 for ch in value):
        raise ValidationError(f"tag {full!r} contains control characters")
    return value


def split_tag(tag: object) -> tuple[str, str]:
    """``"group/name"`` -> ``("group", "name")``; a bare ``"name"`` is in :data:`DEFAULT_GROUP`."""
    if not isinstance(tag, str):
        raise ValidationError(f"a tag must be a str like 'lifecycle/customer', got {type(tag).__name__}")
    group, sep, name = tag.partition("/")
    if not sep:
        group, name = DEFAULT_GROUP, tag
    return check_tag_part(group, "group", MAX_GROUP_LENGTH, tag), check_tag_part(name, "tag", MAX_TAG_LENGTH, tag)


# -- masks -------------------------------------------------------------------------------------

#: Attribute names treated as personal information unless configured otherwise
#: (``ws.privacy.mark_personal``): sealed at rest when the workspace has a key, masked in reprs.
DEFAULT_PERSONAL: frozenset[str] = frozenset(
    {"name", "real_name", "nickname", "address", "birthday", "id_number", "health", "religion", "bank_account"}
)
#: Sensitive personal information (PIPL art. 28): needs the person's separate consent
#: (purpose ``"sensitive_data"``) before it is stored. Always also personal.
DEFAULT_SENSITIVE: frozenset[str] = frozenset({"id_number", "health", "religion", "bank_account"})

_PHONE_LIKE = re.compile(r"^\+?[\d\s\-]{7,20}$")


#: phonenumbers' line types, as siyu names them.
LINE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "mobile_or_landline",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "uan",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}
#: Line types a text message can reach. Where a number plan cannot tell mobiles from
#: landlines (``mobile_or_landline``: the US, Canada ...) the number is given the benefit.
SMS_LINE_TYPES = frozenset({"mobile", "mobile_or_landline", "personal", "unknown"})


def line_type(phone: str) -> str:
    """What kind of line a stored phone (E.164) is: ``"mobile"``, ``"landline"``,
    ``"mobile_or_landline"``, ``"toll_free"`` (400/800 numbers) ... or ``"unknown"``."""
    try:
        number = phonenumbers.parse(phone, "CN")
    except phonenumbers.NumberParseException:
        return "unknown"
    return LINE_TYPES.get(phonenumbers.number_type(number), "unknown")


def sms_reachable(phone: str) -> bool:
    """Whether a text message can reach this phone: ``False`` for landlines, 400/800
    numbers and other lines without SMS."""
    return line_type(phone) in SMS_LINE_TYPES


_NATIONAL_PREFIX = re.compile(r"^\s*(?:\+|00)\s*86[\s\-]*")


def mask_phone(value: str) -> str:
    """A phone with its middle digits hidden: ``138****8000``.

    A stored Chinese number (``+8613800138000``, ``+861012345678``) shows the
    way people write it (``138****8000``, ``010****5678``). Anything else keeps
    every character the user typed, one ``*`` per hidden digit, so an error
    about a mistyped number still shows its length and shape (``1380013800``
    -> ``138***3800``, ``+86 138-0013-8000`` -> ``+86 138-****-8000``). Eight
    digits or more show the first three and last four; shorter ones at most
    their last two.
    """
    if value.startswith("+86") and value[1:].isdigit():
        national = value[3:]
        # Mobiles are 11 digits starting with 1; landlines are written with their trunk 0
        # (Beijing's +86 10 1234 5678 is 010-1234 5678).
        mobile = len(national) == 11 and national.startswith("1")
        return _hide_digits(national if mobile else "0" + national, 0)
    prefix = _NATIONAL_PREFIX.match(value)
    return _hide_digits(value, prefix.end() if prefix else 0)


def _hide_digits(text: str, start: int) -> str:
    digits = [i for i, ch in enumerate(text) if i >= start and ch in "0123456789"]
    if len(digits) >= 8:
        shown = {*digits[:3], *digits[-4:]}
    elif len(digits) >= 4:
        shown = set(digits[-2:])
    else:
        shown = set()
    hidden = set(digits) - shown
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


def mask(kind: str, value: str) -> str:
    """A display form that does not reveal the identity (``138****8000``)."""
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return value[:4] + "***" if len(value) > 6 else "***"


def mask_value(value: object) -> str:
    """Mask any personal value for display: phones as ``138****8000``, e-mails as
    ``a***@example.com``, other text keeps its first characters (``张*``, ``上海***``)."""
    if value is None:
        return ""
    text = str(value)
    if _PHONE_LIKE.match(text):
        return mask_phone(re.sub(r"[\s\-]", "", text))
    if "@" in text:
        return mask("email", text)
    if len(text) <= 2:
        return text[:1] + "*" * (len(text) - 1)
    return text[:2] + "***"


def mask_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with each secret (and its percent-encoded form) replaced by ``***``.

    A short secret is replaced only where it stands alone (not inside a longer word
    or number), so masking a 4-character token does not mangle the rest of a log line."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            if len(form) >= _LONG_SECRET:
                text = text.replace(form, "***")
            else:
                text = re.sub(rf"(?<![0-9A-Za-z]){re.escape(form)}(?![0-9A-Za-z])", "***", text)
    return text


#: Secrets at least this long cannot plausibly occur in a log line by chance.
_LONG_SECRET = 12
