"""Users, their channel identities, consent records and merges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .._text import DEFAULT_PERSONAL, mask_value
from .._text import line_type as _line_type
from .._text import sms_reachable as _sms_reachable

#: Identity kinds siyu knows, with what each one is.
IDENTITY_KINDS: dict[str, str] = {
    "phone": "mobile number, stored in E.164 form (+8613800138000)",
    "email": "e-mail address, domain lower-cased",
    "wechat_unionid": "WeChat unionid: one person across the apps of one open-platform account",
    "wechat_openid": "WeChat openid: one person in one app (scope = the app id)",
    "wecom_external_userid": "WeCom external contact id (a person may have several)",
}


@attrs.frozen
class AttributeLimits:
    """How big a user's attributes may be (``siyu.models.users.ATTRIBUTE_LIMITS``).

    Attributes are profile fields that segments filter on (``attr.city = "上海"``),
    kept with the user row and read whenever the user is; they are not a place for
    documents. Longer content belongs in your own store, with its id as an attribute.
    """

    #: Longest attribute name (letters, digits and ``_``).
    max_name_length: int = 64
    #: Longest text value, in characters (an address, a note; ``source`` allows 64).
    max_text_length: int = 1024
    #: Most attributes one user may hold.
    max_count: int = 100


ATTRIBUTE_LIMITS = AttributeLimits()


def _masked(value: object) -> str:
    # Reprs end up in logs, tracebacks and CLI output: show 138****8000, never the number.
    return repr(mask_value(value))


def _masked_attributes(attributes: dict[str, Any]) -> str:
    return repr({k: mask_value(v) if k in DEFAULT_PERSONAL else v for k, v in attributes.items()})


@attrs.frozen(kw_only=True)
class Identity:
    """One way to reach or recognise a user on a channel.

    Its repr masks ``value`` (``'138****8000'``); read ``identity.value`` for the full value.
    """

    kind: str
    value: str = attrs.field(repr=_masked)
    scope: str = ""
    linked_at: datetime | None = None

    @property
    def line_type(self) -> str | None:
        """For a phone, the kind of line: ``"mobile"``, ``"landline"``,
        ``"mobile_or_landline"``, ``"toll_free"`` ... (``None`` for other kinds)."""
        return _line_type(self.value) if self.kind == "phone" else None

    @property
    def sms_reachable(self) -> bool | None:
        """For a phone, whether a text message can reach it (``False`` for a
        landline or a 400/800 number: the SMS channels refuse to send to it);
        ``None`` for other kinds."""
        return _sms_reachable(self.value) if self.kind == "phone" else None


@attrs.frozen(kw_only=True)
class Consent:
    """One consent decision. The latest record per (purpose, channel) is in force."""

    purpose: str
    channel: str
    granted: bool
    at: datetime
    source: str = ""
    notice_version: str = ""


@attrs.frozen(kw_only=True)
class User:
    """A customer of the shop, as known across channels.

    ``id`` is a dense integer (segments keep bitmaps of ids). ``status`` is
    ``"active"``, ``"merged"`` once merged into ``merged_into``, or
    ``"erased"`` after ``ws.privacy.erase``. The repr masks identities and
    personal attributes; the fields themselves hold the full values.
    """

    id: int
    created_at: datetime
    source: str | None = None
    source_campaign: str | None = None
    source_state: str | None = None
    attributes: dict[str, Any] = attrs.field(factory=dict, repr=_masked_attributes)
    identities: tuple[Identity, ...] = ()
    status: str = "active"
    merged_into: int | None = None
    last_active_at: datetime | None = None

    def identity(self, kind: str, scope: str | None = None) -> str | None:
        """The first identity value of ``kind`` (and ``scope`` if given), or ``None``."""
        for ident in self.identities:
            if ident.kind == kind and (scope is None or ident.scope == scope):
                return ident.value
        return None

    @property
    def phone(self) -> str | None:
        return self.identity("phone")


@attrs.frozen(kw_only=True)
class UpsertResult:
    """What :meth:`siyu.services.users.Users.upsert_many` did.

    ``ids`` has one user id per row, in row order (rows naming the same person
    share it); ``created``, ``updated`` and ``unchanged`` list each user once.
    """

    ids: list[int]
    created: list[int]
    updated: list[int]
    unchanged: list[int]


@attrs.frozen(kw_only=True)
class MergeRecord:
    """A merge of ``drop_id`` into ``keep_id``; ``undone_at`` is set by unmerge."""

    id: int
    keep_id: int
    drop_id: int
    at: datetime
    undone_at: datetime | None = None
