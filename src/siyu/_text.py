"""Rules about short texts that every layer shares: tag names and display masks.

A leaf of the import graph (it imports only :mod:`siyu.errors`): models mask
their reprs with it, the segment parser and the channels read tag names with
it, and the services build on it. The public homes of these names are
:mod:`siyu.services.tags` (tag names), :mod:`siyu.identities` and
:mod:`siyu.privacy` (masks).
"""

from __future__ import annotations

import re

from .errors import ValidationError

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_PERSONAL",
    "DEFAULT_SENSITIVE",
    "MAX_GROUP_LENGTH",
    "MAX_TAG_LENGTH",
    "mask",
    "mask_phone",
    "mask_value",
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


def mask_phone(value: str) -> str:
    digits = value[-11:] if len(value) >= 11 else value
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


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
