"""Users: identities across channels, source attribution, consent, merge."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._clock import aware
from ..errors import IdentityConflict, NotFound, ValidationError
from ..events import (
    ConsentRecorded,
    IdentityLinked,
    IdentityUnlinked,
    UserCreated,
    UsersMerged,
    UsersUnmerged,
    UserUpdated,
)
from ..identities import mask, normalize
from ..models.users import ATTRIBUTE_LIMITS, IDENTITY_KINDS, Consent, Identity, MergeRecord, UpsertResult, User
from ..storage.contracts import NewUser
from ..storage.contracts.users import IDENTITY_SPACE, identity_key
from ._common import check_id, check_many, check_text, check_user_id, require_user
from .user_upsert import upsert_many

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .privacy import Privacy

__all__ = ["MergeParticipant", "Users", "attribute_source"]

_ADD_FIELDS = {
    "phone",
    "email",
    "wechat_unionid",
    "wechat_openid",
    "wecom_external_userid",
    "app",
    "source",
    "campaign",
    "state",
    "attributes",
    "created_at",
}


#: What one participant moved in a merge (its part of the merge record). It is stored as
#: JSON with the merge and handed back to ``unmerge`` as read from there, so it is made
#: of JSON values only: lists (not tuples), dicts with ``str`` keys, numbers, text, ``None``.
R = TypeVar("R")


class MergeParticipant(Protocol[R]):
    """A domain that owns per-user data and moves it when users merge.

    ``merge`` moves ``drop``'s data to ``keep`` inside the merge's transaction and
    returns a record of what it moved (its own type ``R``, made of JSON values);
    ``unmerge`` gets that record back and moves it home.
    """

    name: str

    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> R: ...

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: R, at: datetime) -> None: ...


def _source_fields(source: str | None, campaign: str | None, state: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value, limit in (("source", source, 64), ("source_campaign", campaign, 64),
                               ("source_state", state, 30)):
        if value is not None:
            fields[name] = check_text(value, name, max_length=limit)
    return fields


def attribute_source(tx: Transaction, user_id: int, *, source: str | None, campaign: str | None,
                     state: str | None, now: datetime) -> None:
    """Set a user's source attribution inside ``tx`` (checked values; ``None`` leaves a
    field as it is): for the domain whose change tells where a user came from."""
    fields = _source_fields(source, campaign, state)
    if fields:
        tx.users.update(user_id, **fields)
        tx.emit(UserUpdated(at=now, user_id=user_id, changed=tuple(sorted(fields))))
        tx.meta.bump("users")


def _check_attributes(attributes: object) -> dict[str, Any]:
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise ValidationError(f"attributes must be a dict, got {type(attributes).__name__}")
    limits = ATTRIBUTE_LIMITS
    result: dict[str, Any] = {}
    for key, value in attributes.items():
        if (not isinstance(key, str) or not key or len(key) > limits.max_name_length
                or not key.replace("_", "a").isalnum()):
            raise ValidationError(
                f"attribute name {key!r} must be 1-{limits.max_name_length} letters, digits or '_' "
                "(it is used in segments as attr.NAME)"
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValidationError(
                f"attribute {key!r} must be a str, int, float, bool or None, got {type(value).__name__}"
            )
        if isinstance(value, str) and len(value) > limits.max_text_length:
            raise ValidationError(
                f"attribute {key!r} is {len(value):,} characters long; the limit is {limits.max_text_length:,} "
                "(attributes are profile fields for segments: keep long content in your own store and put "
                "its id here)"
            )
        result[key] = value
    if len(result) > limits.max_count:
        raise ValidationError(f"{len(result)} attributes given; a user holds at most {limits.max_count}")
    try:
        json.dumps(result, allow_nan=False)
    except ValueError as exc:
        raise ValidationError(f"attributes cannot be stored: {exc}") from None
    return result


def check_attribute_count(attributes: Mapping[str, Any], user_id: int) -> None:
    """Refuse a change that leaves a user with more attributes than the limit."""
    if len(attributes) > ATTRIBUTE_LIMITS.max_count:
        raise ValidationError(
            f"user {user_id} would hold {len(attributes)} attributes; the limit is {ATTRIBUTE_LIMITS.max_count} "
            "(delete some with attributes={name: None})"
        )


def _opt_text(value: object, name: str, max_length: int = 64) -> str | None:
    return None if value is None else check_text(value, name, max_length=max_length)


class Users:
    """``ws.users``: create, find, link, consent, merge."""

    def __init__(
        self, uow: UnitOfWork, *, privacy: Privacy, merge_participants: Sequence[MergeParticipant[Any]] = ()
    ) -> None:
        self._uow = uow
        self._privacy = privacy
        self._participants: list[MergeParticipant[Any]] = list(merge_participants)

    def add_merge_participant(self, participant: MergeParticipant[Any]) -> None:
        """Let a domain outside siyu move its per-user data in :meth:`merge` / :meth:`unmerge`
        (siyu's own domains are declared where the workspace is built)."""
        self._participants.append(participant)

    # -- create ---------------------------------------------------------------
    def _prepare(self, fields: Mapping[str, Any], now: datetime) -> tuple[NewUser, list[Identity]]:
        unknown = set(fields) - _ADD_FIELDS
        if unknown:
            raise ValidationError(
                f"unknown field(s) {sorted(unknown)}; ws.users.add takes {', '.join(sorted(_ADD_FIELDS))}"
            )
        created_at = fields.get("created_at")
        created = aware(created_at, "created_at") if created_at is not None else now
        app = fields.get("app") or ""
        identities: list[Identity] = []
        for kind in IDENTITY_KINDS:
            raw = fields.get(kind)
            if raw is None:
                continue
            values = raw if isinstance(raw, list | tuple) and kind == "wecom_external_userid" else [raw]
            for one in values:
                value, scope = normalize(kind, one, app if kind == "wechat_openid" else "")
                identities.append(Identity(kind=kind, value=value, scope=scope, linked_at=created))
        if app and not fields.get("wechat_openid"):
            raise ValidationError("app= only goes with wechat_openid=")
        new = NewUser(
            created_at=created,
            source=_opt_text(fields.get("source"), "source"),
            source_campaign=_opt_text(fields.get("campaign"), "campaign"),
            source_state=_opt_text(fields.get("state"), "state", 30),
            attributes=_check_attributes(fields.get("attributes")),
        )
        return new, identities

    def add(
        self,
        *,
        phone: str | None = None,
        email: str | None = None,
        wechat_unionid: str | None = None,
        wechat_openid: str | None = None,
        app: str | None = None,
        wecom_external_userid: str | list[str] | None = None,
        source: str | None = None,
        campaign: str | None = None,
        state: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> User:
        """Create a user.

        ``source`` is where they came from (``"douyin_live"``), ``campaign``
        and ``state`` the campaign and channel-QR ``state`` that brought them.
        Raises :class:`~siyu.errors.IdentityConflict` if an identity already
        belongs to someone (look them up with :meth:`find` instead).
        """
        fields = {k: v for k, v in locals().items() if k != "self" and v is not None}
        return self.get(self.add_many([fields])[0])

    def add_many(self, rows: Iterable[Mapping[str, Any]]) -> list[int]:
        """Create many users in one transaction; all or nothing. Returns their ids."""
        now = self._uow.now()
        prepared = []
        for index, row in enumerate(check_many(rows, "rows", "[{'phone': '13800138000'}]")):
            if not isinstance(row, Mapping):
                raise ValidationError(f"row {index}: expected a dict of user fields, got {type(row).__name__}")
            try:
                prepared.append(self._prepare(row, now))
            except ValidationError as exc:
                raise type(exc)(f"row {index}: {exc}") from None
        seen: dict[tuple[str, str, str], int] = {}
        for index, (_, identities) in enumerate(prepared):
            for ident in identities:
                token = (ident.kind, ident.scope, ident.value)
                if token in seen:
                    raise IdentityConflict(
                        f"row {index}: {ident.kind} {mask(ident.kind, ident.value)} also appears in row "
                        f"{seen[token]}; each identity can belong to one user only"
                    )
                seen[token] = index
        with self._uow.write() as tx:
            # All of them in one call: two imports holding some each never wait in a circle.
            tx.serialize(IDENTITY_SPACE, [identity_key(*token) for token in seen])
            by_kind: dict[tuple[str, str], list[str]] = {}
            for kind, scope, value in seen:
                by_kind.setdefault((kind, scope), []).append(value)
            for (kind, scope), values in by_kind.items():
                taken = tx.users.find_identities(kind, scope, values)
                if taken:
                    value, owner = next(iter(taken.items()))
                    raise IdentityConflict(
                        f"row {seen[(kind, scope, value)]}: {kind} {mask(kind, value)} already belongs to "
                        f"user {owner}; find them with ws.users.find({kind}=...) instead of adding"
                    )
            for new, _ in prepared:
                self._privacy.check_attributes(tx, None, new.attributes, {})
            ids = tx.users.create([new for new, _ in prepared])
            tx.users.add_identities(
                [(uid, ident) for uid, (_, identities) in zip(ids, prepared, strict=True) for ident in identities]
            )
            for uid, (new, _) in zip(ids, prepared, strict=True):
                tx.emit(UserCreated(at=now, user_id=uid, source=new.source))
            tx.meta.bump("users")
        return ids

    def upsert_many(self, rows: Iterable[Mapping[str, Any]]) -> UpsertResult:
        """Create the users who are new and update the ones already known, matching
        each row by its identities; all or nothing. Takes the fields of :meth:`add`.

        A matched user gets the row's identities they lack, its attributes (``None``
        deletes one) and, where they have none yet, its ``source`` / ``campaign`` /
        ``state`` (first touch is kept). A row whose identities belong to two users
        raises :class:`~siyu.errors.IdentityConflict`. Returns who was created,
        updated and left unchanged (:class:`~siyu.models.users.UpsertResult`), so
        importing the same file twice reports every row as unchanged.
        """
        return upsert_many(self, self._uow, self._privacy, rows)

    # -- read -----------------------------------------------------------------
    def get(self, user_id: int) -> User:
        """The user with ``user_id``; raises :class:`~siyu.errors.NotFound`."""
        uid = check_user_id(user_id)
        with self._uow.read() as tx:
            user = tx.users.get(uid)
        if user is None:
            raise NotFound(f"no user with id {uid}")
        return user

    def find(self, *, app: str | None = None, **identity: str) -> User | None:
        """The user holding one identity, e.g. ``find(phone="+86 138-0013-8000")``;
        ``None`` if nobody does. A merged user is followed to the one it merged into."""
        if len(identity) != 1:
            raise ValidationError(
                f"find takes exactly one identity, e.g. find(phone='13800138000'); got {sorted(identity) or 'none'}"
            )
        (kind, raw), = identity.items()
        value, scope = normalize(kind, raw, app or "")
        with self._uow.read() as tx:
            owner = tx.users.find_identity(kind, scope, value)
            user = tx.users.get(owner) if owner is not None else None
        return user

    def find_many(self, kind: str, values: Iterable[str], *, app: str | None = None) -> dict[str, int]:
        """``value -> user id`` for the values of one identity kind that somebody holds, in
        one read (``find_many("wecom_external_userid", ids)``); merged users are followed
        to the one they merged into. Values nobody holds are left out."""
        normal: dict[str, str] = {}
        scope = app or ""
        for raw in check_many(values, "values", "['wmXXXX']"):
            value, scope = normalize(kind, raw, app or "")
            normal[raw] = value
        if not normal:
            return {}
        with self._uow.read() as tx:
            owners = tx.users.find_identities(kind, scope, list(set(normal.values())))
            statuses = tx.users.statuses(set(owners.values()))
        kept = {u: (into if status == "merged" and into is not None else u) for u, (status, into) in statuses.items()}
        return {raw: kept.get(owners[value], owners[value]) for raw, value in normal.items() if value in owners}

    def count(self) -> int:
        """Active users (merged-away users are not counted)."""
        with self._uow.read() as tx:
            return tx.users.count()

    def ids(self) -> list[int]:
        """Ids of all active users, ascending."""
        with self._uow.read() as tx:
            return tx.users.ids()

    # -- change ---------------------------------------------------------------
    def update(
        self,
        user_id: int,
        *,
        attributes: Mapping[str, Any] | None = None,
        source: str | None = None,
        campaign: str | None = None,
        state: str | None = None,
    ) -> User:
        """Merge ``attributes`` into the user's (a ``None`` value deletes a key);
        set source attribution fields that are given."""
        changes = _check_attributes(attributes)
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            user = tx.users.get(uid)
            assert user is not None
            fields: dict[str, Any] = {}
            if attributes is not None:
                self._privacy.check_attributes(tx, uid, changes, user.attributes)
                merged = dict(user.attributes)
                for key, value in changes.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                check_attribute_count(merged, uid)
                fields["attributes"] = merged
            fields.update(_source_fields(source, campaign, state))
            if fields:
                tx.users.update(uid, **fields)
                tx.emit(UserUpdated(at=now, user_id=uid, changed=tuple(sorted(fields))))
                tx.meta.bump("users")
            result = tx.users.get(uid)
        assert result is not None
        return result

    def link(self, user_id: int, kind: str, value: str, *, app: str | None = None) -> User:
        """Attach an identity to a user. Linking what the user already has is a no-op;
        an identity held by someone else raises :class:`~siyu.errors.IdentityConflict`."""
        normal, scope = normalize(kind, value, app or "")
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            owner = tx.users.find_identity(kind, scope, normal)
            if owner is not None and owner != uid:
                raise IdentityConflict(
                    f"{kind} {mask(kind, normal)} belongs to user {owner}; unlink it there first, "
                    f"or merge the two users with ws.users.merge(keep=..., drop=...)"
                )
            if owner is None:
                tx.users.add_identities([(uid, Identity(kind=kind, value=normal, scope=scope, linked_at=now))])
                tx.emit(IdentityLinked(at=now, user_id=uid, kind=kind, scope=scope))
                tx.meta.bump("users")
            user = tx.users.get(uid)
        assert user is not None
        return user

    def unlink(self, user_id: int, kind: str, value: str, *, app: str | None = None) -> bool:
        """Detach an identity; ``False`` if the user did not have it."""
        normal, scope = normalize(kind, value, app or "")
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            if tx.users.find_identity(kind, scope, normal) != uid:
                return False
            tx.users.remove_identity(uid, Identity(kind=kind, value=normal, scope=scope))
            tx.emit(IdentityUnlinked(at=now, user_id=uid, kind=kind, scope=scope))
            tx.meta.bump("users")
        return True

    # -- consent --------------------------------------------------------------
    def consent(
        self,
        user_id: int,
        *,
        purpose: str,
        channel: str = "*",
        granted: bool = True,
        source: str = "",
        notice_version: str = "",
        at: datetime | None = None,
    ) -> Consent:
        """Record that the user granted (or withdrew, ``granted=False``) consent
        for ``purpose`` (``"marketing"``, ...) on ``channel`` (``"sms"``, ``"*"`` for all)."""
        if not isinstance(granted, bool):
            raise ValidationError(f"granted must be True or False, got {granted!r}")
        record = Consent(
            purpose=check_text(purpose, "purpose", max_length=64),
            channel=check_text(channel, "channel", max_length=64),
            granted=granted,
            at=aware(at, "at") if at is not None else self._uow.now(),
            source=check_text(source, "source", max_length=128, allow_empty=True),
            notice_version=check_text(notice_version, "notice_version", max_length=64, allow_empty=True),
        )
        with self._uow.write() as tx:
            record_consent(tx, user_id, record)
        return record

    def consents(self, user_id: int) -> list[Consent]:
        """Every consent record of the user, oldest first."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.users.consents(uid)

    def has_consent(self, user_id: int, *, purpose: str, channel: str) -> bool:
        """Whether the latest record for ``purpose`` on ``channel`` (or on ``"*"``) grants it."""
        decision: bool | None = None
        for record in self.consents(user_id):
            if record.purpose == purpose and record.channel in (channel, "*"):
                decision = record.granted
        return bool(decision)

    # -- merge ----------------------------------------------------------------
    def merge(self, *, keep: int, drop: int) -> MergeRecord:
        """Merge user ``drop`` into ``keep``: identities, tags, points (and what
        later domains register) move to ``keep``; ``drop`` is marked merged.
        Recorded, and undone by :meth:`unmerge`.

        From now on ``drop`` accepts no writes: every call that would change a
        user's data (tag, points, coupon, order, event, consent, identity,
        referral, campaign suppression, legal hold ...) refuses it with
        :class:`~siyu.errors.UserMerged`, which names ``keep``. Reads of
        ``drop`` (history, consents, export) still work. That is what keeps
        :meth:`unmerge` able to put everything back."""
        keep_id, drop_id = check_user_id(keep), check_user_id(drop)
        if keep_id == drop_id:
            raise ValidationError("keep and drop are the same user; nothing to merge")
        now = self._uow.now()
        with self._uow.write() as tx:
            for uid in sorted((keep_id, drop_id)):  # a fixed lock order cannot deadlock
                require_user(tx, uid, lock=True)
            kept, dropped = tx.users.get(keep_id), tx.users.get(drop_id)
            assert kept is not None and dropped is not None
            identities = tx.users.identities(drop_id)
            for ident in identities:
                tx.users.move_identity(ident, keep_id)
            added = {k: v for k, v in dropped.attributes.items() if k not in kept.attributes}
            fields: dict[str, Any] = {"attributes": {**kept.attributes, **added}}
            if kept.source is None and dropped.source is not None:
                fields.update(source=dropped.source, source_campaign=dropped.source_campaign,
                              source_state=dropped.source_state)
            tx.users.update(keep_id, **fields)
            tx.users.update(drop_id, status="merged", merged_into=keep_id)
            record: dict[str, Any] = {
                "identities": [[i.kind, i.scope, i.value] for i in identities],
                "attributes_added": sorted(added),
                "source_taken": "source" in fields,
                "keep_before": {
                    "source": kept.source,
                    "source_campaign": kept.source_campaign,
                    "source_state": kept.source_state,
                },
            }
            for participant in self._participants:
                record[participant.name] = participant.merge(tx, keep_id, drop_id, now)
            merge_id = tx.users.add_merge(keep_id, drop_id, now, json.dumps(record, ensure_ascii=False))
            tx.emit(UsersMerged(at=now, merge_id=merge_id, keep_id=keep_id, drop_id=drop_id))
            tx.meta.bump("users")
            stored = tx.users.get_merge(merge_id)
        assert stored is not None
        return stored[0]

    def unmerge(self, merge_id: int) -> MergeRecord:
        """Undo a merge: what moved goes back and the dropped user is active again.

        Points that ``keep`` has already spent out of the moved lots cannot
        come back; what is left of them does. Undoing merges newest first
        always succeeds; an older merge whose ``keep`` was merged again since is
        refused until that later merge is undone.
        """
        check_id(merge_id, "merge_id")
        now = self._uow.now()
        with self._uow.write() as tx:
            stored = tx.users.get_merge(merge_id)
            if stored is None:
                raise NotFound(f"no merge with id {merge_id}")
            merge, payload = stored
            if merge.undone_at is not None:
                raise ValidationError(f"merge {merge_id} was already undone at {merge.undone_at.isoformat()}")
            for uid in sorted((merge.keep_id, merge.drop_id)):
                tx.users.lock(uid)
            kept, dropped = tx.users.get(merge.keep_id), tx.users.get(merge.drop_id)
            assert kept is not None and dropped is not None
            if kept.status != "active" or dropped.merged_into != merge.keep_id:
                raise ValidationError(
                    f"merge {merge_id} cannot be undone: user {merge.keep_id} has since been merged or "
                    "changed in a way that conflicts; undo the later merges first"
                )
            record = json.loads(payload)
            for participant in reversed(self._participants):
                if participant.name in record:
                    participant.unmerge(tx, merge.keep_id, merge.drop_id, record[participant.name], now)
            for kind, scope, value in record["identities"]:
                tx.users.move_identity(Identity(kind=kind, scope=scope, value=value), merge.drop_id)
            attributes = {k: v for k, v in kept.attributes.items() if k not in set(record["attributes_added"])}
            fields: dict[str, Any] = {"attributes": attributes}
            if record["source_taken"]:
                fields.update(record["keep_before"])
            tx.users.update(merge.keep_id, **fields)
            tx.users.update(merge.drop_id, status="active", merged_into=None)
            tx.users.mark_unmerged(merge_id, now)
            tx.emit(UsersUnmerged(at=now, merge_id=merge_id, keep_id=merge.keep_id, drop_id=merge.drop_id))
            tx.meta.bump("users")
            result = tx.users.get_merge(merge_id)
        assert result is not None
        return result[0]


def record_consent(tx: Transaction, user_id: int, record: Consent) -> None:
    """Add a consent record to an active user, with its ``ConsentRecorded`` event, inside ``tx``."""
    uid = require_user(tx, user_id, lock=True)
    tx.users.add_consent(uid, record)
    tx.emit(ConsentRecorded(at=record.at, user_id=uid, purpose=record.purpose, channel=record.channel,
                            granted=record.granted))
    tx.meta.bump("consents")
