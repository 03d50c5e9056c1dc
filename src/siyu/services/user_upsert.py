"""``ws.users.upsert_many``: create the people who are new, update the ones already known.

Rows are matched to users by identity (phone, e-mail, unionid, openid, WeCom id),
in order, so a later row that shares an identity with an earlier one of the same
call updates the user that row created or matched. What an update changes:

* identities of the row the user does not hold yet are linked to them;
* each attribute given is set (``None`` deletes it);
* ``source``, ``campaign`` and ``state`` are first-touch attribution: they are
  filled in when the user has none, never overwritten;
* ``created_at`` applies to new users only.

A row whose identities belong to two different users is refused
(:class:`~siyu.errors.IdentityConflict`): merging people is a decision for
``ws.users.merge``, not a side effect of an import. Every row is checked before
anything is written; errors name the row (``row 3: ...``), and a failed call
leaves storage as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import IdentityConflict, SiyuError, ValidationError
from ..events import IdentityLinked, UserCreated, UserUpdated
from ..identities import mask
from ..models.users import ATTRIBUTE_LIMITS, Identity, UpsertResult
from ..storage.contracts import NewUser
from ..storage.contracts.users import IDENTITY_SPACE, identity_key
from ._common import check_many

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .privacy import Privacy
    from .users import Users

__all__ = ["upsert_many"]

#: First-touch attribution fields, as NewUser and the user row name them.
_ATTRIBUTION = ("source", "source_campaign", "source_state")
_Token = tuple[str, str, str]


@attrs.define
class _Target:
    """One user the call creates (``user_id is None``) or updates, as it will end up."""

    user_id: int | None
    created_at: datetime
    fields: dict[str, Any]  # source, source_campaign, source_state
    attributes: dict[str, Any]
    held: set[_Token]
    added: list[Identity] = attrs.field(factory=list)
    changed: set[str] = attrs.field(factory=set)


def upsert_many(users: Users, uow: UnitOfWork, privacy: Privacy, rows: Iterable[Mapping[str, Any]]) -> UpsertResult:
    now = uow.now()
    prepared: list[tuple[NewUser, list[Identity]]] = []
    for index, row in enumerate(check_many(rows, "rows", "[{'phone': '13800138000'}]")):
        if not isinstance(row, Mapping):
            raise ValidationError(f"row {index}: expected a dict of user fields, got {type(row).__name__}")
        try:
            new, identities = users._prepare(row, now)
        except ValidationError as exc:
            raise type(exc)(f"row {index}: {exc}") from None
        if not identities:
            raise ValidationError(
                f"row {index}: no identity to match on; give at least one of phone, email, wechat_unionid, "
                "wechat_openid (with app) or wecom_external_userid"
            )
        prepared.append((new, identities))
    with uow.write() as tx, tx.savepoint():
        # Every identity of the call held at once (see Transaction.serialize), before any is looked up.
        tx.serialize(IDENTITY_SPACE, sorted({identity_key(*_token(i)) for _, identities in prepared
                                            for i in identities}))
        owners = _owners(tx, prepared)
        targets: dict[tuple[str, int], _Target] = {}
        claimed: dict[_Token, tuple[str, int]] = {}
        row_keys: list[tuple[str, int]] = []
        for index, (new, identities) in enumerate(prepared):
            try:
                key = _match(tx, index, identities, owners, claimed, targets, new)
                _apply(privacy, tx, targets[key], new, identities, now)
            except SiyuError as exc:
                raise type(exc)(f"row {index}: {exc}") from None
            for ident in identities:
                claimed[_token(ident)] = key
            row_keys.append(key)
        ids = _write(tx, targets, now)
    by_row = [ids[key] for key in row_keys]
    created = sorted(ids[k] for k, t in targets.items() if t.user_id is None)
    updated = sorted(ids[k] for k, t in targets.items() if t.user_id is not None and t.changed)
    unchanged = sorted(ids[k] for k, t in targets.items() if t.user_id is not None and not t.changed)
    return UpsertResult(ids=by_row, created=created, updated=updated, unchanged=unchanged)


def _token(ident: Identity) -> _Token:
    return (ident.kind, ident.scope, ident.value)


def _owners(tx: Transaction, prepared: list[tuple[NewUser, list[Identity]]]) -> dict[_Token, int]:
    """Who holds each identity of the call today, one query per identity kind."""
    by_kind: dict[tuple[str, str], set[str]] = {}
    for _, identities in prepared:
        for ident in identities:
            by_kind.setdefault((ident.kind, ident.scope), set()).add(ident.value)
    owners: dict[_Token, int] = {}
    for (kind, scope), values in by_kind.items():
        for value, owner in tx.users.find_identities(kind, scope, sorted(values)).items():
            owners[(kind, scope, value)] = owner
    return owners


def _match(
    tx: Transaction,
    index: int,
    identities: list[Identity],
    owners: dict[_Token, int],
    claimed: dict[_Token, tuple[str, int]],
    targets: dict[tuple[str, int], _Target],
    new: NewUser,
) -> tuple[str, int]:
    """The target this row updates, or a new one it creates."""
    found: dict[tuple[str, int], Identity] = {}
    for ident in identities:
        token = _token(ident)
        key = claimed.get(token) or (("user", owners[token]) if token in owners else None)
        if key is not None:
            found.setdefault(key, ident)
    if len(found) > 1:
        (k1, i1), (k2, i2) = list(found.items())[:2]
        raise IdentityConflict(
            f"its {i1.kind} {mask(i1.kind, i1.value)} belongs to {_who(k1)} and its {i2.kind} "
            f"{mask(i2.kind, i2.value)} to {_who(k2)}; if they are one person, merge them first "
            "(ws.users.merge(keep=..., drop=...)), else fix the row"
        )
    if not found:
        key = ("new", index)
        targets[key] = _Target(
            user_id=None,
            created_at=new.created_at,
            fields={"source": None, "source_campaign": None, "source_state": None},
            attributes={},
            held=set(),
        )
        return key
    (key,) = found
    if key not in targets:
        uid = key[1]
        status, merged_into = tx.users.statuses([uid], lock=True).get(uid, ("missing", None))
        user = tx.users.get(uid)
        if status != "active" or user is None:
            raise ValidationError(
                f"its identities belong to user {uid}, who is {status}"
                + (f" into user {merged_into}" if merged_into else "")
                + "; update that user instead"
            )
        targets[key] = _Target(
            user_id=uid,
            created_at=user.created_at,
            fields={"source": user.source, "source_campaign": user.source_campaign,
                    "source_state": user.source_state},
            attributes=dict(user.attributes),
            held={_token(i) for i in user.identities},
        )
    return key


def _who(key: tuple[str, int]) -> str:
    return f"user {key[1]}" if key[0] == "user" else f"the user row {key[1]} creates"


def _apply(privacy: Privacy, tx: Transaction, target: _Target, new: NewUser, identities: list[Identity],
           now: datetime) -> None:
    """Fold one row into its target (nothing is written yet)."""
    for ident in identities:
        token = _token(ident)
        if token not in target.held:
            target.held.add(token)
            target.added.append(ident if target.user_id is None else attrs.evolve(ident, linked_at=now))
            target.changed.add("identities")
    changes: dict[str, Any] = {}
    for name, value in new.attributes.items():
        present = name in target.attributes
        if value is None:
            if present:
                changes[name] = None
        elif not present or type(target.attributes[name]) is not type(value) or target.attributes[name] != value:
            changes[name] = value
    if changes:
        privacy.check_attributes(tx, target.user_id, changes, target.attributes)
        for name, value in changes.items():
            if value is None:
                target.attributes.pop(name)
            else:
                target.attributes[name] = value
        if len(target.attributes) > ATTRIBUTE_LIMITS.max_count:
            raise ValidationError(
                f"the user would hold {len(target.attributes)} attributes; the limit is {ATTRIBUTE_LIMITS.max_count}"
            )
        target.changed.add("attributes")
    for name in _ATTRIBUTION:
        value = getattr(new, name)
        if value is not None and target.fields[name] is None:
            target.fields[name] = value
            target.changed.add(name)


def _write(tx: Transaction, targets: dict[tuple[str, int], _Target], now: datetime) -> dict[tuple[str, int], int]:
    ids: dict[tuple[str, int], int] = {}
    fresh = [(key, t) for key, t in targets.items() if t.user_id is None]
    if fresh:
        new_ids = tx.users.create([
            NewUser(created_at=t.created_at, attributes=t.attributes, **t.fields) for _, t in fresh
        ])
        for (key, _), uid in zip(fresh, new_ids, strict=True):
            ids[key] = uid
        tx.users.add_identities([(uid, i) for (_, t), uid in zip(fresh, new_ids, strict=True) for i in t.added])
        for (_, t), uid in zip(fresh, new_ids, strict=True):
            tx.emit(UserCreated(at=now, user_id=uid, source=t.fields["source"]))
    for key, target in targets.items():
        if target.user_id is None:
            continue
        uid = ids[key] = target.user_id
        if not target.changed:
            continue
        fields = {name: target.fields[name] for name in target.changed if name in target.fields}
        if "attributes" in target.changed:
            fields["attributes"] = target.attributes
        if fields:
            tx.users.update(uid, **fields)
            tx.emit(UserUpdated(at=now, user_id=uid, changed=tuple(sorted(fields))))
        if target.added:
            tx.users.add_identities([(uid, i) for i in target.added])
            for ident in target.added:
                tx.emit(IdentityLinked(at=now, user_id=uid, kind=ident.kind, scope=ident.scope))
    if fresh or any(t.changed for t in targets.values()):
        tx.meta.bump("users")
    return ids
