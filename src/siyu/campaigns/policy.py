"""The contact policy: who may be sent a message -- one rule for campaign runs and
direct sends alike.

A user may be contacted on a medium (``"sms"``, ``"wecom"`` ...) for a purpose when

* the latest consent record for that purpose on that medium (or on ``"*"``)
  grants it -- transactional messages need none;
* the user is not on the campaign suppression list for that medium (or for all
  media), does not hold the lifecycle-lost tag, and is under no legal hold.

Campaigns apply it to whole audiences with bitmaps (:meth:`ContactPolicy.without_consent`,
:meth:`ContactPolicy.unreachable`), next to the gates that only campaigns have (budget,
platform caps, quiet hours: :mod:`siyu.campaigns.gates`). A message sent directly
through a channel of the workspace (``ws.channels.get("sms_aliyun").send(...)``) is
checked message by message with :meth:`ContactPolicy.screen`: the channel asks, it
does not decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pyroaring import BitMap

from .._validation import check_many, check_text
from ..channels.base import DeliveryResult, Message, Status
from ..errors import ValidationError
from ..identities import normalize
from ..models.users import Consent
from ..services._common import check_user_id
from ..services.users import record_consent
from .gates import lost_users, medium_of, suppressed_users

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..channels.service import ChannelService
    from ..storage.base import Transaction

__all__ = ["ContactPolicy"]


class ContactPolicy:
    """The one contact policy of a workspace (consent, suppression, lost, legal hold).

    The workspace builds it and hands it to its channels (for direct sends) and to
    campaigns (for audiences); nothing else decides whether a user may be contacted.
    """

    def __init__(self, uow: UnitOfWork, *, channels: ChannelService) -> None:
        self._uow = uow
        self._channels = channels

    def medium(self, channel: str) -> str:
        """The medium a channel name stands for in consents and on the suppression list
        (``"sms_aliyun"`` -> ``"sms"``)."""
        return medium_of(self._channels, channel)

    # -- the bitmap form: whole audiences ------------------------------------------------------
    def without_consent(self, tx: Transaction, purpose: str, medium: str, users: BitMap) -> BitMap:
        """Those of ``users`` whose latest consent for ``purpose`` on ``medium`` (or ``"*"``)
        does not grant it."""
        if not users:
            return BitMap()
        return users - BitMap(tx.campaigns.consented(purpose, medium, users))

    def unreachable(self, tx: Transaction, medium: str) -> BitMap:
        """Users no marketing message on ``medium`` may reach whatever their consent: the
        suppression list of the medium (or of all media), lost users and legal holds."""
        return suppressed_users(tx, self._channels, medium) | lost_users(tx)

    # -- opt-outs ----------------------------------------------------------------------------
    def opt_out(self, medium: str, *, phone: str, source: str) -> int | None:
        """Withdraw the marketing consent on ``medium`` of the user holding ``phone`` (an
        SMS "R"/"TD" reply); the user's id, or ``None`` for a number nobody holds."""
        value, scope = normalize("phone", phone, "")
        with self._uow.write() as tx:
            owner = tx.users.find_identity("phone", scope, value)
            user = tx.users.get(owner) if owner is not None else None
            if user is None:
                return None
            record_consent(tx, user.id, _opt_out_record(medium, source, self._uow.now()))
        return user.id

    # -- the per-message form: direct sends ----------------------------------------------------
    def screen(self, medium: str, messages: Sequence[Message]) -> list[DeliveryResult | Consent | None]:
        """For each message: ``None`` when no rule applies (transactional, or no ``user_id``),
        the consent record that allows a marketing message, or the refusing result
        (``unknown_user``, ``consent_required``, ``suppressed``). One read for the batch."""
        check_text(medium, "medium")
        messages = check_many(messages, "messages", "[Message(to='13800138000', body='hi')]")
        for message in messages:
            if not isinstance(message, Message):
                raise ValidationError(
                    f"messages must hold Message objects, got {type(message).__name__} {message!r:.80}"
                )
        decisions: list[DeliveryResult | Consent | None] = [None] * len(messages)
        marketing = [(i, m) for i, m in enumerate(messages) if m.purpose == "marketing" and m.user_id is not None]
        if not marketing:
            return decisions
        with self._uow.read() as tx:
            blocked = self.unreachable(tx, medium)
            known = tx.users.exists({check_user_id(m.user_id) for _, m in marketing})
            records = {uid: tx.users.consents(uid) for uid in known}
        for index, message in marketing:
            uid = message.user_id
            assert uid is not None
            if uid not in known:
                decisions[index] = DeliveryResult(message, Status.FAILED_PERMANENT, code="unknown_user",
                                                  detail=f"no user {uid}; nothing was sent")
                continue
            consent = _latest(records[uid], "marketing", medium)
            if consent is None or not consent.granted:
                decisions[index] = DeliveryResult(
                    message, Status.FAILED_PERMANENT, code="consent_required",
                    detail=f"user {uid} has no active marketing consent on {medium!r}; nothing was sent",
                )
            elif uid in blocked:
                decisions[index] = DeliveryResult(
                    message, Status.FAILED_PERMANENT, code="suppressed",
                    detail=f"user {uid} is on the suppression list for {medium!r} (or all media), lost, "
                    "or under a legal hold; nothing was sent",
                )
            else:
                decisions[index] = consent
        return decisions


def _opt_out_record(medium: str, source: str, at: datetime) -> Consent:
    return Consent(purpose="marketing", channel=medium, granted=False, at=at,
                   source=check_text(source, "source", max_length=128, allow_empty=True))


def _latest(records: Sequence[Consent], purpose: str, medium: str) -> Consent | None:
    """The record that decides: the latest for ``purpose`` on ``medium`` or ``"*"`` (records
    come oldest first)."""
    decision = None
    for record in records:
        if record.purpose == purpose and record.channel in (medium, "*"):
            decision = record
    return decision
