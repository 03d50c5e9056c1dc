"""Privacy (PIPL): encryption keys, consent checks, export, erasure, legal holds, audit.

``ws.privacy`` is the one place an application answers a person's requests
(个人信息主体权利): *what do you hold about me* (:meth:`Privacy.export`),
*delete it* (:meth:`Privacy.erase`), and the operator's duties: record who
did what (:meth:`Privacy.audit`), stop processing under a legal hold,
respect withdrawn consent at once (:meth:`Privacy.may_contact`).
"""

from __future__ import annotations

import json
import secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from dateutil.relativedelta import relativedelta

from .._text import DEFAULT_PERSONAL, DEFAULT_SENSITIVE, mask_value
from .._validation import MAX_BATCH, check_aware, check_many, check_mapping, check_optional_id, check_optional_text
from ..errors import (
    ConsentRequired,
    LegalHold,
    NotFound,
    PluginError,
    PolicyViolation,
    UserMerged,
    ValidationError,
    WrongKeyError,
)
from ..events import (
    ConsentRecorded,
    Event,
    IdentityLinked,
    IdentityUnlinked,
    PersonalDataErased,
    UsersMerged,
    UsersUnmerged,
)
from ..models.privacy import AuditEntry, LegalHoldRecord, Tombstone
from ..models.users import IDENTITY_KINDS
from ..privacy.keys import FieldCipher, key_from_env, key_id_of
from ..storage.contracts.privacy import NewAuditEntry
from ._common import check_int, check_text, check_user_id, require_user

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Backend, Transaction

__all__ = ["Eraser", "Exporter", "PersonalData", "Privacy", "open_key"]

#: Settings keys.
KEY_CHECK = "privacy.key_check"
#: The identity kinds sealed in this database (JSON list). A database from a siyu that
#: sealed fewer kinds (phone and e-mail only) is resealed once, when next opened with its key.
SEALED_KINDS = "privacy.sealed_kinds"
_ALL_KINDS = json.dumps(sorted(IDENTITY_KINDS))
PERSONAL = "privacy.personal"
SENSITIVE = "privacy.sensitive"
#: Consent purpose a person grants before sensitive personal information is stored.
SENSITIVE_PURPOSE = "sensitive_data"
#: Consent purpose whose withdrawal asks for non-personalized marketing only (PIPL art. 24).
PERSONALIZATION_PURPOSE = "personalization"
#: Audit entries are kept at least this long unless a shorter time is explicitly forced.
MIN_AUDIT_RETENTION = relativedelta(years=3)
_KEY_CHECK_TEXT = "siyu key check"

#: ``fn(ws, user_id) -> JSON-able``: an application's part of a person's export (``ws`` is
#: the workspace the export runs in).
Exporter = Callable[[Any, int], Any]
#: ``fn(tx, user_ids) -> count or dict``: remove a domain's personal data of these users
#: inside the erasure transaction (keep amounts and ids; drop names, addresses, texts).
Eraser = Callable[["Transaction", list[int]], Any]


def to_jsonable(value: Any) -> Any:
    """Convert models, datetimes, Decimals and sets into plain JSON values."""
    if attrs.has(type(value)):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


class _Auditor:
    """Writes audit entries for account changes other services announce as events."""

    _ACTIONS: ClassVar[dict[type[Event], str]] = {
        ConsentRecorded: "consent.recorded",
        IdentityLinked: "identity.linked",
        IdentityUnlinked: "identity.unlinked",
        UsersMerged: "users.merged",
        UsersUnmerged: "users.unmerged",
    }

    def __init__(self, privacy: Privacy) -> None:
        self._privacy = privacy

    @property
    def types(self) -> tuple[type[Event], ...]:
        return tuple(self._ACTIONS)

    def handle(self, events: Sequence[Event]) -> None:
        """The ``siyu.privacy.audit`` event consumer (one event per call)."""
        for event in events:
            self._audit(event)

    def _audit(self, event: Event) -> None:
        action = self._ACTIONS.get(type(event))
        if action is None:
            return
        details = {k: v for k, v in to_jsonable(event).items() if k not in {"at", "user_id"}}
        self._privacy.log(action, user_id=getattr(event, "user_id", None), details=details, at=event.at)


@attrs.frozen(kw_only=True)
class PersonalData:
    """One domain's part of a person's data, declared where the workspace is built:
    ``export(user_id)`` returns its section of :meth:`Privacy.export` (JSON-able, or
    ``None`` for nothing), ``erase(tx, user_ids)`` removes its personal data inside
    the erasure transaction and returns what it removed."""

    name: str
    export: Callable[[int], object] | None = None
    erase: Eraser | None = None


def open_key(uow: UnitOfWork, secret_key: str | bytes | None) -> FieldCipher | None:
    """The cipher for ``secret_key`` (default ``SIYU_SECRET_KEY``) once checked against the
    database: :class:`~siyu.errors.WrongKeyError` for another key, or for none when the data
    is sealed. The first connection with a key seals what is stored, once, atomically."""
    secret = secret_key if secret_key is not None else key_from_env()
    cipher = FieldCipher(secret) if secret else None
    with uow.read() as tx:
        check = tx.meta.get(KEY_CHECK)
    if check is not None:
        if cipher is None:
            raise WrongKeyError(
                "this database's personal data is encrypted; connect with its key: "
                "siyu.connect(url, secret_key=...) or set SIYU_SECRET_KEY"
            )
        _verify(cipher, check)
        _seal_every_kind(uow, cipher)
        return cipher
    if cipher is None:
        return None
    with uow.write() as tx:
        check = tx.meta.get(KEY_CHECK)
        if check is not None:  # another process got there first
            _verify(cipher, check)
            return cipher
        counts = tx.privacy.reseal(None, cipher, _names(tx, PERSONAL, DEFAULT_PERSONAL))
        tx.meta.set(KEY_CHECK, cipher.seal(_KEY_CHECK_TEXT, KEY_CHECK))
        tx.meta.set(SEALED_KINDS, _ALL_KINDS)
        _audit(tx, "privacy.encryption_enabled", at=uow.now(), details={"key_id": cipher.key_id, **counts})
    return cipher


def _seal_every_kind(uow: UnitOfWork, cipher: FieldCipher) -> None:
    """Seal the identity kinds an older siyu left in clear (it sealed phones and e-mails only)."""
    with uow.read() as tx:
        if tx.meta.get(SEALED_KINDS) == _ALL_KINDS:
            return
    with uow.write() as tx:
        if tx.meta.get(SEALED_KINDS) == _ALL_KINDS:  # another process got there first
            return
        counts = tx.privacy.reseal(cipher, cipher, _names(tx, PERSONAL, DEFAULT_PERSONAL))
        tx.meta.set(SEALED_KINDS, _ALL_KINDS)
        _audit(tx, "privacy.identities_sealed", at=uow.now(), details={"kinds": json.loads(_ALL_KINDS), **counts})
        tx.meta.bump("users")


def _names(tx: Transaction, setting: str, default: frozenset[str]) -> frozenset[str]:
    raw = tx.meta.get(setting)
    return frozenset(json.loads(raw)) if raw else default


def _audit(
    tx: Transaction,
    action: str,
    *,
    at: datetime,
    actor: str = "system",
    user_id: int | None = None,
    details: Mapping[str, Any] | None = None,
    before: Any = None,
    after: Any = None,
) -> int:
    entry = NewAuditEntry(
        at=at,
        actor=actor,
        action=action,
        user_id=user_id,
        details=to_jsonable(dict(details or {})),
        before=to_jsonable(before),
        after=to_jsonable(after),
    )
    return tx.privacy.append_audit([entry])[0]


class Privacy:
    """``ws.privacy``: keys, consent checks, export, erasure, legal holds, audit log."""

    def __init__(self, uow: UnitOfWork, *, backend: Backend, personal_data: Sequence[PersonalData] = ()) -> None:
        self._uow = uow
        self._backend = backend
        self._domains = tuple(personal_data)
        self._exporters: dict[str, Exporter] = {}
        self._erasers: dict[str, Eraser] = {}
        self._local = threading.local()
        self._per_tx: weakref.WeakKeyDictionary[Transaction, tuple[frozenset[str], frozenset[str]]] = (
            weakref.WeakKeyDictionary()
        )
        #: The event consumer writing audit entries for account changes.
        self.auditor = _Auditor(self)

    # -- keys ------------------------------------------------------------------------------------
    @property
    def key_id(self) -> str | None:
        """Identifier of the workspace key (not the key), or ``None`` when data is stored in clear."""
        cipher = self._backend.cipher
        return None if cipher is None else cipher.key_id

    @property
    def encrypted(self) -> bool:
        return self._backend.cipher is not None

    def rotate_key(self, new_key: str | bytes) -> dict[str, int]:
        """Re-encrypt every personal value under ``new_key`` (one transaction) and switch
        this workspace to it. Other processes must reconnect with the new key; until
        they do, they get :class:`~siyu.errors.WrongKeyError` rather than wrong data.
        Also turns encryption on for a workspace that had no key. Returns counts."""
        new = FieldCipher(new_key)
        old = self._backend.cipher
        if old is not None and old.key_id == new.key_id:
            raise ValidationError("the new key is the key in use; generate another with `siyu privacy generate-key`")
        with self._uow.write() as tx:
            counts = tx.privacy.reseal(old, new, _names(tx, PERSONAL, DEFAULT_PERSONAL))
            tx.meta.set(KEY_CHECK, new.seal(_KEY_CHECK_TEXT, KEY_CHECK))
            tx.meta.set(SEALED_KINDS, _ALL_KINDS)
            self._append(
                tx,
                "privacy.key_rotated",
                details={"from_key_id": old.key_id if old else None, "to_key_id": new.key_id, **counts},
            )
            tx.meta.bump("users")
            tx.after_commit(lambda: setattr(self._backend, "cipher", new))
        return counts

    # -- personal and sensitive attributes ---------------------------------------------------------
    def _guarded(self, tx: Transaction) -> tuple[frozenset[str], frozenset[str]]:
        # Read once per transaction: a bulk import checks every row against the same sets.
        cached = self._per_tx.get(tx)
        if cached is None:
            cached = (_names(tx, PERSONAL, DEFAULT_PERSONAL), _names(tx, SENSITIVE, DEFAULT_SENSITIVE))
            self._per_tx[tx] = cached
        return cached

    def personal_attributes(self) -> frozenset[str]:
        """Attribute names treated as personal information (sealed at rest with a key)."""
        with self._uow.read() as tx:
            return _names(tx, PERSONAL, DEFAULT_PERSONAL)

    def sensitive_attributes(self) -> frozenset[str]:
        """Attribute names that are sensitive personal information (need separate consent)."""
        with self._uow.read() as tx:
            return _names(tx, SENSITIVE, DEFAULT_SENSITIVE)

    def mark_personal(self, *names: str, sensitive: bool = False) -> frozenset[str]:
        """Treat attributes ``names`` as personal (and, with ``sensitive=True``, as sensitive).

        Values already stored under those names are sealed now when the
        workspace has a key. Returns the personal attribute names.
        """
        checked = [check_text(n, "attribute name", max_length=64) for n in names]
        if not checked:
            raise ValidationError("name at least one attribute, e.g. mark_personal('wechat_name')")
        with self._uow.write() as tx:
            personal = _names(tx, PERSONAL, DEFAULT_PERSONAL) | set(checked)
            tx.meta.set(PERSONAL, json.dumps(sorted(personal)))
            if sensitive:
                marked = _names(tx, SENSITIVE, DEFAULT_SENSITIVE) | set(checked)
                tx.meta.set(SENSITIVE, json.dumps(sorted(marked)))
            cipher = self._backend.cipher
            counts = tx.privacy.reseal(cipher, cipher, personal) if cipher is not None else {}
            self._append(
                tx, "privacy.attributes_marked", details={"names": sorted(checked), "sensitive": sensitive, **counts}
            )
            tx.meta.bump("users")
        return frozenset(personal)

    def check_attributes(
        self, tx: Transaction, user_id: int | None, changes: Mapping[str, Any], before: Mapping[str, Any]
    ) -> None:
        """Called by ``ws.users`` before attributes are stored: refuse sensitive values
        without the person's separate consent; audit personal changes (masked)."""
        if not changes:
            return
        personal, sensitive = self._guarded(tx)
        touched = sorted(k for k in changes if k in personal or k in sensitive)
        if not touched:
            return
        wanted = [k for k in touched if k in sensitive and changes[k] is not None]
        if wanted and (user_id is None or not self._consented(tx, user_id, SENSITIVE_PURPOSE)):
            who = "a new user" if user_id is None else f"user {user_id}"
            raise ConsentRequired(
                f"{', '.join(wanted)} is sensitive personal information; {who} must give separate consent "
                f"first: ws.users.consent(user_id, purpose={SENSITIVE_PURPOSE!r}, notice_version=...)"
                + (", after ws.users.add(...) without it" if user_id is None else "")
            )
        if user_id is not None:
            self._append(
                tx,
                "user.personal_changed",
                user_id=user_id,
                details={"attributes": touched},
                before={k: mask_value(before[k]) for k in touched if k in before},
                after={k: mask_value(changes[k]) for k in touched if changes[k] is not None},
            )

    # -- consent ------------------------------------------------------------------------------------
    def _consented(self, tx: Transaction, user_id: int, purpose: str, channel: str = "*") -> bool | None:
        decision: bool | None = None
        for record in tx.users.consents(user_id):
            if record.purpose == purpose and record.channel in (channel, "*"):
                decision = record.granted
        return decision

    def may_contact(self, user_id: int, *, purpose: str = "marketing", channel: str = "*") -> bool:
        """Whether siyu may process this person for ``purpose`` on ``channel`` right now:
        the latest consent grants it, the user is active (not erased or merged away)
        and no legal hold blocks processing. Campaigns call this before every send,
        so a withdrawal takes effect at once."""
        uid = check_user_id(user_id)
        with self._uow.read() as tx:
            user = tx.users.get(uid)
            if user is None or user.status != "active":
                return False
            if any(h.active for h in tx.privacy.holds(uid)):
                return False
            return bool(self._consented(tx, uid, purpose, channel))

    def personalization_allowed(self, user_id: int) -> bool:
        """``False`` once the person refused personalized marketing (consent purpose
        ``"personalization"`` withdrawn): campaigns must then send their non-personalized
        variant (PIPL art. 24). Allowed until refused."""
        uid = check_user_id(user_id)
        with self._uow.read() as tx:
            require_user(tx, uid, active=False)
            return self._consented(tx, uid, PERSONALIZATION_PURPOSE) is not False

    # -- export ---------------------------------------------------------------------------------------
    def register_exporter(self, name: str, exporter: Exporter) -> None:
        """Add a domain's part to :meth:`export`: ``exporter(ws, user_id)`` returns JSON-able data."""
        if name in self._exporters or name in _OWN_SECTIONS or any(d.name == name for d in self._domains):
            raise PluginError(f"an exporter named {name!r} is already registered; pick another name")
        self._exporters[name] = exporter

    def register_eraser(self, name: str, eraser: Eraser) -> None:
        """Add a domain's step to :meth:`erase`: ``eraser(tx, user_ids)`` removes that domain's
        personal data (names, addresses, free text) inside the erasure transaction."""
        if name in self._erasers or any(d.name == name and d.erase is not None for d in self._domains):
            raise PluginError(f"an eraser named {name!r} is already registered; pick another name")
        self._erasers[name] = eraser

    def export(self, user_id: int) -> dict[str, Any]:
        """Everything held about a person, as JSON-able data (values in full: it is their own).

        Sections: ``user`` (profile and identities), ``consents``, ``tags``,
        ``points``, ``legal_holds``, ``erasure``, ``audit`` (what was done with
        their data), plus one per registered exporter (orders, referrals,
        messages ... as those domains register). The export is audited.
        """
        uid = check_user_id(user_id)
        with self._uow.write() as tx:
            require_user(tx, uid, active=False)
            user = tx.users.get(uid)
            assert user is not None
            data: dict[str, Any] = {
                "format": "siyu.privacy.export/1",
                "exported_at": self._uow.now().isoformat(),
                "user": to_jsonable(user),
                "consents": to_jsonable(tx.users.consents(uid)),
                "legal_holds": to_jsonable(tx.privacy.holds(uid)),
                "erasure": to_jsonable(tx.privacy.tombstone(uid)),
                "messages": tx.privacy.messages(uid),
                "audit": to_jsonable(tx.privacy.audit(user_id=uid, limit=100_000)),
            }
            for domain in self._domains:
                section = domain.export(uid) if domain.export is not None else None
                if section is not None:
                    data[domain.name] = to_jsonable(section)
            for name, exporter in self._exporters.items():
                section = exporter(self._uow, uid)
                if section is not None:
                    data[name] = to_jsonable(section)
            self._append(tx, "privacy.export", user_id=uid, details={"sections": sorted(data)})
        json.dumps(data, ensure_ascii=False)  # fail here, not in the caller, if a section is not JSON
        return data

    # -- erasure --------------------------------------------------------------------------------------
    def erase(self, user_id: int, *, reason: str = "data subject request") -> Tombstone:
        """Erase a person's personal data everywhere; keep ledgers and aggregates consistent.

        Identities, attributes (clear and sealed), merge records and what
        registered erasers remove (order addresses, messages ...) are deleted;
        the user row, points ledger, tags and consents stay under the user id,
        which from now on is a pseudonym. Writes a :class:`Tombstone` and an
        audit entry. Refused with :class:`~siyu.errors.LegalHold` while a hold is
        active. Erasing twice returns the first tombstone.
        """
        uid = check_user_id(user_id)
        why = check_text(reason, "reason", max_length=200)
        now = self._uow.now()
        with self._uow.write() as tx:
            require_user(tx, uid, lock=True, active=False)
            done = tx.privacy.tombstone(uid)
            if done is not None:
                return done
            user = tx.users.get(uid)
            assert user is not None
            if user.status == "merged":
                raise UserMerged(uid, user.merged_into,
                                 advice=f"erase user {user.merged_into}: that erases the merged-away record too")
            ids = sorted(self._aliases(tx, uid))
            # A hold placed on a record before it was merged away still protects it.
            held = [h for alias in ids for h in tx.privacy.holds(alias) if h.active]
            if held:
                raise LegalHold(
                    f"user {held[0].user_id} is under legal hold #{held[0].id} ({held[0].reason}); erasure of "
                    f"user {uid} is blocked until it is released with ws.privacy.release_hold({held[0].id})"
                )
            counts: dict[str, Any] = {}
            for domain in self._domains:
                if domain.erase is not None:
                    counts[domain.name] = to_jsonable(domain.erase(tx, ids))
            for name, eraser in self._erasers.items():
                counts[name] = to_jsonable(eraser(tx, ids))
            counts.update(tx.privacy.erase_person(ids))
            tombstone = Tombstone(
                user_id=uid, pseudonym=f"anon-{secrets.token_hex(8)}", erased_at=now, erased_by=self.actor, reason=why
            )
            tx.privacy.add_tombstone(tombstone)
            self._append(
                tx,
                "privacy.erase",
                user_id=uid,
                details={"reason": why, "pseudonym": tombstone.pseudonym, "user_ids": ids, "removed": counts},
            )
            tx.emit(PersonalDataErased(at=now, user_id=uid, pseudonym=tombstone.pseudonym))
            tx.meta.bump("users")
        return tombstone

    def _aliases(self, tx: Transaction, user_id: int) -> set[int]:
        """The user and every user merged into them (transitively)."""
        found = {user_id}
        frontier = [user_id]
        while frontier:
            for uid in tx.privacy.merged_into(frontier.pop()):
                if uid not in found:
                    found.add(uid)
                    frontier.append(uid)
        return found

    def tombstone(self, user_id: int) -> Tombstone | None:
        """The erasure record of a user, or ``None`` if not erased."""
        uid = check_user_id(user_id)
        with self._uow.read() as tx:
            return tx.privacy.tombstone(uid)

    # -- legal holds ----------------------------------------------------------------------------------
    def hold(self, user_id: int, *, reason: str) -> LegalHoldRecord:
        """Place a legal hold: erasure and processing other than storage stop until released."""
        why = check_text(reason, "reason", max_length=200)
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id, lock=True)
            hold_id = tx.privacy.add_hold(uid, why, now, self.actor)
            self._append(tx, "privacy.hold_placed", user_id=uid, details={"hold_id": hold_id, "reason": why})
            record = next(h for h in tx.privacy.holds(uid) if h.id == hold_id)
        return record

    def release_hold(self, hold_id: int) -> LegalHoldRecord:
        """Release a legal hold (idempotent)."""
        hid = check_int(hold_id, "hold_id", minimum=1)
        with self._uow.write() as tx:
            record = tx.privacy.release_hold(hid, self._uow.now(), self.actor)
            if record is None:
                raise NotFound(f"no legal hold #{hid}; list a user's holds with ws.privacy.holds(user_id)")
            self._append(tx, "privacy.hold_released", user_id=record.user_id, details={"hold_id": hid})
        return record

    def held(self, user_ids: Iterable[int] | None = None) -> set[int]:
        """The users (of ``user_ids``, or all) under an active legal hold, in one query:
        for bulk senders such as campaigns, which must not process them."""
        with self._uow.read() as tx:
            return tx.privacy.held(None if user_ids is None else [
                check_user_id(u) for u in check_many(user_ids, "user_ids", "[1, 2, 3]")
            ])

    def holds(self, user_id: int) -> list[LegalHoldRecord]:
        """A user's legal holds, active and released, oldest first."""
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.privacy.holds(uid)

    # -- audit log ------------------------------------------------------------------------------------
    @property
    def actor(self) -> str:
        """Who the current thread acts as in audit entries (``"system"`` by default)."""
        return getattr(self._local, "actor", None) or "system"

    @contextmanager
    def acting_as(self, actor: str) -> Iterator[None]:
        """Attribute every audit entry written in this block to ``actor``
        (``"operator:alice"``, ``"cli"``)::

            with ws.privacy.acting_as("operator:alice"):
                ws.privacy.erase(42)
        """
        name = check_text(actor, "actor", max_length=128)
        previous = getattr(self._local, "actor", None)
        self._local.actor = name
        try:
            yield
        finally:
            self._local.actor = previous

    def _append(
        self,
        tx: Transaction,
        action: str,
        *,
        user_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        before: Any = None,
        after: Any = None,
        at: datetime | None = None,
    ) -> int:
        return _audit(tx, action, at=at or self._uow.now(), actor=self.actor, user_id=user_id, details=details,
                      before=before, after=after)

    def log(
        self,
        action: str,
        *,
        user_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        before: Any = None,
        after: Any = None,
        at: datetime | None = None,
    ) -> int:
        """Append an entry to the audit log (in the current transaction if there is one).

        Pass masked values only (:func:`siyu.privacy.mask_value`): the log is
        kept for years and must not become a copy of the personal data.
        """
        name = check_text(action, "action", max_length=64)
        if user_id is not None:
            check_user_id(user_id)
        if details is not None:
            check_mapping(details, "details", "{'field': 'phone', 'by': 'support'}")
        if at is not None:
            check_aware(at, "at")
        with self._uow.write() as tx:
            return self._append(tx, name, user_id=user_id, details=details, before=before, after=after, at=at)

    def audit(
        self,
        *,
        user_id: int | None = None,
        action: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Audit entries matching every given filter, oldest first."""
        check_optional_id(user_id, "user_id")
        check_optional_text(action, "action", max_length=64)
        check_optional_text(actor, "actor")
        for bound, name in ((since, "since"), (until, "until")):
            if bound is not None:
                check_aware(bound, name)
        check_int(limit, "limit", minimum=1, maximum=MAX_BATCH)
        with self._uow.read() as tx:
            return tx.privacy.audit(
                user_id=user_id, action=action, actor=actor, since=since, until=until, limit=limit
            )

    def purge_audit(self, *, older_than: relativedelta | None = None, force: bool = False) -> int:
        """Delete audit entries older than ``older_than`` (default: 3 years).

        Keeping less than 3 years is refused unless ``force=True`` (do that only
        when your legal team says so). The purge itself is audited.
        """
        if older_than is not None and not isinstance(older_than, relativedelta | timedelta):
            raise ValidationError(
                f"older_than must be a relativedelta (or timedelta), e.g. relativedelta(years=5); got "
                f"{type(older_than).__name__} {older_than!r:.80}"
            )
        keep = older_than or MIN_AUDIT_RETENTION
        now = self._uow.now()
        if now - keep > now - MIN_AUDIT_RETENTION and not force:
            raise PolicyViolation(
                "audit entries are kept at least 3 years; pass a longer older_than, or force=True if a "
                "shorter retention is really required"
            )
        cutoff = now - keep
        with self._uow.write() as tx:
            removed = tx.privacy.purge_audit(cutoff)
            self._append(tx, "privacy.audit_purged", details={"before": cutoff.isoformat(), "removed": removed})
        return removed


#: The sections :meth:`Privacy.export` writes itself.
_OWN_SECTIONS = frozenset({"format", "exported_at", "user", "consents", "legal_holds", "erasure", "messages", "audit"})


def _verify(cipher: FieldCipher, check: str) -> None:
    stored = key_id_of(check)
    if stored != cipher.key_id:
        raise WrongKeyError(
            f"the secret key given (key id {cipher.key_id}) is not the key this database's personal data is "
            f"encrypted with (key id {stored}); connect with that key, or rotate with `siyu privacy rotate-key`"
        )
    if cipher.open(check, KEY_CHECK) != _KEY_CHECK_TEXT:
        raise WrongKeyError("the key check of this database did not decrypt correctly; nothing was decrypted")
