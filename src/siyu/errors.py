"""Every error siyu raises on purpose.

All of them derive from :class:`SiyuError`, so ``except siyu.errors.SiyuError``
catches anything the SDK reports about bad input or a refused operation. Each
message says what was wrong and how to fix it. When a call raises, storage is
exactly as it was before the call.

The tree::

    SiyuError
    ├── ValidationError              bad argument (type, range, format)
    │   ├── InvalidPhone
    │   ├── InvalidMoney
    │   ├── TemplateError            a campaign template cannot be filled for some users
    │   └── SegmentSyntaxError       a segment expression does not parse
    │       └── SegmentReferenceError  it parses but names an unknown tag,
    │                                  segment, attribute or metric, or
    │                                  compares values of the wrong kind
    ├── NotFound                     (also a KeyError)
    │   ├── UserMerged               the user was merged into another; write to that one
    │   ├── UnknownInviteCode        no invite code like that
    │   ├── UnknownBackendError      no storage backend for a URL scheme
    │   └── UnknownChannelError      no channel by that name
    ├── Conflict                     the request clashes with stored state
    │   ├── IdentityConflict         identity already belongs to another user
    │   ├── IdempotencyConflict      key reused with different arguments
    │   ├── InsufficientPoints       spend/reversal larger than the balance
    │   ├── InsufficientFunds        a stored-value or gift-card debit larger than the balance
    │   ├── ReferralCycle            a binding would make a referral cycle
    │   ├── AlreadyBound             the invitee is bound to another inviter
    │   ├── GroupBuyFull             a 拼团 group has no free slot
    │   ├── AlreadyJoined            the user already holds a slot in the group
    │   ├── GroupBuyClosed           the group buy completed, failed or expired
    │   ├── AlreadyDecided           a campaign's A/B winner was already decided
    │   ├── SoldOut                  a flash sale or prize has no units left
    │   ├── ReservationClosed        a flash-sale reservation was already paid,
    │   │                            released or refunded (or its hold ran out)
    │   ├── AlreadyHelped            the helper already helped this bargain attempt
    │   ├── BargainClosed            the bargain attempt succeeded, failed or expired
    │   ├── InvalidTransition        a campaign's status does not allow the operation
    │   └── ConcurrentWrite          another process wrote the same rows at the same moment; retry
    ├── PolicyViolation              a business or legal guard refused
    │   ├── ConsentRequired
    │   ├── CapExceeded
    │   │   └── QuotaExceeded        a per-user limit of an activity (units, helps, draws)
    │   ├── ActivityClosed           a flash sale, bargain or draw is outside its window
    │   ├── MarginViolation
    │   │   └── PriceBelowFloor      a price itself is below cost or the margin floor
    │   ├── SelfInvite               a user cannot invite themselves
    │   ├── NotNewUser               only new users may be bound as invitees
    │   ├── CampaignClosed           the referral campaign has not started or has ended
    │   ├── PyramidSchemeRisk        a commission setup beyond the legal guards
    │   ├── LegalHold                a legal hold blocks erasing/processing a person's data
    │   └── UserErased               the user was erased; erasure is final, nothing more is written
    ├── PluginError                  a plugin is broken or registered twice
    ├── StorageError                 the backend failed (I/O, schema, driver)
    │   ├── SchemaVersionError
    │   └── WrongKeyError            the secret key cannot open this database's personal data
    └── ChannelError                 a channel failed; ``retryable`` says if a
        │                            later attempt may succeed
        ├── CallbackRejected         an inbound callback/webhook failed its
        │                            signature, decryption or replay checks
        └── InvalidMessage           a message, batch or template a channel
                                     refuses before any call (also a ValidationError)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "ActivityClosed",
    "ConcurrentWrite",
    "AlreadyBound",
    "AlreadyHelped",
    "BargainClosed",
    "QuotaExceeded",
    "ReservationClosed",
    "SoldOut",
    "AlreadyDecided",
    "TemplateError",
    "CallbackRejected",
    "CapExceeded",
    "ChannelError",
    "AlreadyJoined",
    "CampaignClosed",
    "Conflict",
    "ConsentRequired",
    "IdempotencyConflict",
    "IdentityConflict",
    "InsufficientFunds",
    "InsufficientPoints",
    "InvalidTransition",
    "InvalidMessage",
    "InvalidMoney",
    "GroupBuyClosed",
    "GroupBuyFull",
    "InvalidPhone",
    "LegalHold",
    "MarginViolation",
    "NotFound",
    "NotNewUser",
    "PluginError",
    "PolicyViolation",
    "PriceBelowFloor",
    "PyramidSchemeRisk",
    "ReferralCycle",
    "SchemaVersionError",
    "SegmentReferenceError",
    "SegmentSyntaxError",
    "SelfInvite",
    "SiyuError",
    "StorageError",
    "UnknownBackendError",
    "UnknownChannelError",
    "UnknownInviteCode",
    "UserErased",
    "UserMerged",
    "ValidationError",
    "WrongKeyError",
]


class SiyuError(Exception):
    """Root of every error siyu raises on purpose."""


class ValidationError(SiyuError, ValueError):
    """An argument has the wrong type, range or format."""


class InvalidPhone(ValidationError):
    """A phone number could not be parsed or is not a valid number."""


class InvalidMoney(ValidationError):
    """A money amount is a float, negative where it must not be, or has sub-fen digits."""


class TemplateError(ValidationError):
    """A campaign template uses a variable that has no value (for some users, or
    in a variant), or renders longer than the channel allows. ``problems``
    lists each one."""

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class SegmentSyntaxError(ValidationError):
    """A segment expression does not parse.

    ``line`` and ``column`` are 1-based; ``expected`` says what the parser
    wanted; ``str(err)`` shows the expression with a caret under the problem.
    """

    def __init__(
        self, message: str, *, text: str = "", line: int = 1, column: int = 1, expected: str = ""
    ) -> None:
        self.text = text
        self.line = line
        self.column = column
        self.expected = expected
        self.reason = message
        lines = text.splitlines() or [""]
        shown = lines[line - 1] if 0 < line <= len(lines) else ""
        caret = " " * (column - 1) + "^"
        super().__init__(f"{message} (line {line}, column {column})\n  {shown}\n  {caret}")


class SegmentReferenceError(SegmentSyntaxError):
    """A segment expression parses but names a tag, segment, attribute or
    metric that does not exist, or compares a metric with the wrong kind of
    value. Like a syntax error it points at the offending atom."""


class NotFound(SiyuError, KeyError):
    """The thing asked for does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UserMerged(NotFound):
    """A write named a user that was merged into another (``ws.users.merge``).

    A merged-away id accepts no writes: its data lives under ``merged_into``
    now, so tag, credit, message ... that user instead (or undo the merge with
    ``ws.users.unmerge``). Reads of the merged-away id still work.
    """

    def __init__(self, user_id: int, merged_into: int | None, *, advice: str = "") -> None:
        super().__init__(
            f"user {user_id} was merged into user {merged_into}; "
            + (advice or f"write to user {merged_into} instead (ws.users.find(...) follows merges), "
               "or undo the merge with ws.users.unmerge(merge_id)")
        )
        self.user_id = user_id
        self.merged_into = merged_into


class UnknownBackendError(NotFound):
    """No storage backend is registered for a URL scheme."""


class UnknownChannelError(NotFound):
    """No channel is registered under a name."""


class Conflict(SiyuError):
    """The request clashes with what is stored."""


class ConcurrentWrite(Conflict):
    """Another process wrote the same rows at the same moment (PostgreSQL chose this call to
    give way: a deadlock, a serialization failure or a duplicate key it could not see coming).
    Nothing was written; the same call made again succeeds or fails on the stored state."""


class IdentityConflict(Conflict):
    """An identity (phone, openid, ...) already belongs to another user."""


class IdempotencyConflict(Conflict):
    """An idempotency key was reused with different arguments."""


class InsufficientPoints(Conflict):
    """A spend or reversal needs more points than the user has available."""

    def __init__(self, message: str, *, requested: int = 0, available: int = 0) -> None:
        super().__init__(message)
        self.requested = requested
        self.available = available


class InsufficientFunds(Conflict):
    """A stored-value or gift-card debit (or refund) needs more than the balance holds."""

    def __init__(self, message: str, *, requested_fen: int = 0, available_fen: int = 0) -> None:
        super().__init__(message)
        self.requested_fen = requested_fen
        self.available_fen = available_fen


class PolicyViolation(SiyuError):
    """A business, platform or legal guard refused the operation."""


class ConsentRequired(PolicyViolation):
    """The user has not consented to this purpose on this channel."""


class CapExceeded(PolicyViolation):
    """A contact budget or platform cap would be exceeded."""


class QuotaExceeded(CapExceeded):
    """A per-user limit of an activity would be exceeded: flash-sale units per
    user (per sale or per day), bargain attempts or helps, draws per day."""


class ActivityClosed(PolicyViolation):
    """The flash sale, bargain or draw is not running at this instant (before
    its start, at or after its end, or ended early)."""


class MarginViolation(PolicyViolation):
    """A price, coupon or promotion could sell a product below cost or floor."""


class PriceBelowFloor(MarginViolation):
    """A price set on a product (list price, member price, 拼团 price, any fixed
    promotional price) is below its cost or margin floor, and the product may not
    sell at a loss. ``sku``, ``price_fen`` and ``floor_fen`` say which and by how much."""

    def __init__(self, message: str, *, sku: str = "", price_fen: int = 0, floor_fen: int = 0) -> None:
        super().__init__(message)
        self.sku = sku
        self.price_fen = price_fen
        self.floor_fen = floor_fen


class UnknownInviteCode(NotFound):
    """An invite code that was never issued (or was mistyped)."""


class ReferralCycle(Conflict):
    """Binding the invitee under that inviter would close a loop in the referral graph."""


class AlreadyBound(Conflict):
    """The invitee is already bound to another inviter (and the protection window
    keeps them there); ``binding`` is the binding in force, ``inviter_id`` its inviter."""

    def __init__(self, message: str, *, binding: object = None, inviter_id: int | None = None) -> None:
        super().__init__(message)
        self.binding = binding
        self.inviter_id = inviter_id


class GroupBuyFull(Conflict):
    """A 拼团 group buy already has as many members as its size."""


class AlreadyJoined(Conflict):
    """The user already holds a slot in this group buy (one slot per user)."""


class AlreadyDecided(Conflict):
    """``decide`` was called on a campaign whose winner is already chosen."""


class InvalidTransition(Conflict):
    """A campaign's status does not allow what was asked (a cancelled campaign
    cannot be sent, a pilot must come before any send ...). ``status`` is the
    campaign's status, ``to`` the status the operation needed; the allowed
    moves are :data:`siyu.campaigns.TRANSITIONS`."""

    def __init__(self, message: str, *, status: str, to: str) -> None:
        super().__init__(message)
        self.status = status
        self.to = to


class SoldOut(Conflict):
    """A flash sale has fewer units left than were asked for (some may come
    back when unpaid reservations are released), or a prize has none left."""


class ReservationClosed(Conflict):
    """The reservation is no longer held: it was paid, released (cancelled or
    its hold ran out) or refunded. ``status`` says which."""

    def __init__(self, message: str, *, status: str = "") -> None:
        super().__init__(message)
        self.status = status


class AlreadyHelped(Conflict):
    """The helper already helped this bargain attempt (one help per helper per attempt)."""


class BargainClosed(Conflict):
    """The bargain attempt is no longer open: it reached its floor price, failed,
    or its deadline or the activity's end has passed."""


class GroupBuyClosed(Conflict):
    """The group buy is no longer open (completed, failed or past its expiry)."""


class SelfInvite(PolicyViolation):
    """A user tried to invite themselves."""


class NotNewUser(PolicyViolation):
    """The invitee is already a customer (or otherwise not new), so the binding is refused."""


class CampaignClosed(PolicyViolation):
    """The referral campaign has not started yet or has already ended."""


class PyramidSchemeRisk(PolicyViolation):
    """A commission setup would pay more than 2 levels, pay for recruiting alone,
    or otherwise cross the guards derived from 《禁止传销条例》."""


class PluginError(SiyuError):
    """A plugin is broken, misspells a hook, or registers a name twice."""


class StorageError(SiyuError):
    """The storage backend failed."""


class SchemaVersionError(StorageError):
    """The database schema is newer than this siyu, or a migration failed."""


class WrongKeyError(StorageError):
    """The workspace's secret key is missing or is not the one the personal data was
    encrypted with; nothing is decrypted (see the privacy guide)."""


class LegalHold(PolicyViolation):
    """A legal hold on the user blocks erasure and any processing except storage."""


class UserErased(PolicyViolation):
    """A write named a user whose personal data was erased (``ws.privacy.erase``).

    Erasure is final: the id is a pseudonym now and accepts no new data (points,
    events, tags, attributes, consents ...). Reads still answer. A person who comes
    back is a new user: add them with ``ws.users.add``.
    """

    def __init__(self, user_id: int, erased_at: datetime | None) -> None:
        when = f" on {erased_at.date().isoformat()}" if erased_at is not None else ""
        super().__init__(
            f"user {user_id} was erased{when} (ws.privacy.erase) and erasure is final: nothing more can be written "
            "for them; if the person comes back, add them as a new user with ws.users.add(...)"
        )
        self.user_id = user_id
        self.erased_at = erased_at


class ChannelError(SiyuError):
    """A channel could not deliver.

    ``retryable`` is true when the same request may succeed later (rate limit,
    5xx, network), false when it never will (bad credentials, invalid template).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        code: str | int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.retry_after = retry_after


class CallbackRejected(ChannelError):
    """An inbound callback or webhook was refused: bad signature, stale timestamp,
    undecryptable or malformed payload. Answer the sender with HTTP 403/400 and
    do not act on the payload. ``code`` carries the provider's error number
    (e.g. WeCom's ``-40001``) where one exists."""


class InvalidMessage(ValidationError, ChannelError):
    """A channel refused a message, batch or template before any network call:
    too many recipients or attachments, text too long, a template that breaks
    the provider's rules, a missing variable. Never retryable; fix the input.
    It is both a :class:`ValidationError` and a :class:`ChannelError`."""
