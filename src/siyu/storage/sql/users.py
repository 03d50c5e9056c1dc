"""Users, identities, consents and merges in SQL.

When the workspace has a secret key (``tx.backend.cipher``), personal data is
sealed here, so every SQL backend encrypts it the same way:

- identities of every kind (phone, e-mail, WeChat unionid and openid, WeCom
  external_userid): ``value`` holds the keyed blind index (lookups stay
  indexed equality matches), ``sealed`` the AES-GCM ciphertext;
- attributes marked personal (setting ``privacy.personal``): moved out of the
  ``attributes`` JSON into the sealed ``users.sealed`` column;
- merge records: their payload (which lists moved identities) is sealed.

Without a key everything is stored as given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ..._text import DEFAULT_PERSONAL
from ...errors import WrongKeyError
from ...models.users import IDENTITY_KINDS, Consent, Identity, MergeRecord, User
from ...privacy.keys import is_sealed
from ..contracts import NewUser, UserStore
from ..contracts.users import IDENTITY_SPACE, identity_key

if TYPE_CHECKING:
    from ...privacy.keys import FieldCipher
    from .backend import SqlTransaction

#: Identity kinds sealed under the workspace key: all of them. A WeChat or WeCom id
#: points at one person as surely as a phone number does (PIPL personal information).
SEALED_KINDS = frozenset(IDENTITY_KINDS)
#: Settings key holding the JSON list of attribute names sealed as personal data.
PERSONAL_SETTING = "privacy.personal"

_COLUMNS = (
    "id, created_at, source, source_campaign, source_state, attributes, status, merged_into, "
    "last_active_at"
)
_UPDATABLE = {
    "attributes",
    "status",
    "merged_into",
    "source",
    "source_campaign",
    "source_state",
    "last_active_at",
}


def _dump(attributes: dict[str, Any]) -> str:
    return json.dumps(attributes, ensure_ascii=False, sort_keys=True, default=str)


def _need_key(what: str) -> WrongKeyError:
    return WrongKeyError(
        f"this database holds encrypted {what}; connect with its key: "
        "siyu.connect(url, secret_key=...) or set SIYU_SECRET_KEY"
    )


class SqlUserStore(UserStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx
        self.cipher: FieldCipher | None = tx.backend.cipher
        self._personal: frozenset[str] | None = None

    # -- sealing helpers ------------------------------------------------------------------
    def personal_names(self) -> frozenset[str]:
        """Attribute names sealed as personal data (read once per transaction)."""
        if self._personal is None:
            raw = self.tx.meta.get(PERSONAL_SETTING)
            self._personal = frozenset(json.loads(raw)) if raw else DEFAULT_PERSONAL
        return self._personal

    def _split(self, attributes: dict[str, Any]) -> tuple[str, str | None]:
        """``(attributes JSON, sealed personal JSON or None)`` as stored."""
        if self.cipher is None:
            return _dump(attributes), None
        personal = self.personal_names()
        secret = {k: v for k, v in attributes.items() if k in personal}
        if not secret:
            return _dump(attributes), None
        plain = {k: v for k, v in attributes.items() if k not in personal}
        return _dump(plain), self.cipher.seal(_dump(secret), "user:attributes")

    def _join(self, attributes: str, sealed: str | None) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(attributes)
        if sealed:
            if self.cipher is None:
                raise _need_key("personal attributes")
            result.update(json.loads(self.cipher.open(sealed, "user:attributes")))
        return result

    def token(self, kind: str, scope: str, value: str) -> str:
        """What the ``identities.value`` column holds for an identity: its blind index if sealed."""
        if self.cipher is not None and kind in SEALED_KINDS:
            return self.cipher.blind(kind, scope, value)
        return value

    def _open_identity(self, kind: str, value: str, sealed: str | None) -> str:
        if sealed is None:
            return value
        if self.cipher is None:
            raise _need_key(f"{kind} identities")
        return self.cipher.open(sealed, f"identity:{kind}")

    # -- users ------------------------------------------------------------------------------
    def create(self, users: Sequence[NewUser]) -> list[int]:
        ids = self.tx.dialect.allocate_ids(self.tx, "users", len(users))
        self.tx.executemany(
            "INSERT INTO users (id, created_at, source, source_campaign, source_state, attributes, sealed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (i, to_us(u.created_at), u.source, u.source_campaign, u.source_state, *self._split(u.attributes))
                for i, u in zip(ids, users, strict=True)
            ],
        )
        return ids

    def get(self, user_id: int) -> User | None:
        row = self.tx.execute(f"SELECT {_COLUMNS}, sealed FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            return None
        return User(
            id=row[0],
            created_at=from_us_required(row[1]),
            source=row[2],
            source_campaign=row[3],
            source_state=row[4],
            attributes=self._join(row[5], row[9]),
            identities=tuple(self.identities(user_id)),
            status=row[6],
            merged_into=row[7],
            last_active_at=from_us(row[8]),
        )

    def exists(self, user_ids: Iterable[int]) -> set[int]:
        found: set[int] = set()
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            found.update(r[0] for r in self.tx.execute(f"SELECT id FROM users WHERE id IN ({marks})", chunk))
        return found

    def lock(self, user_id: int) -> bool:
        return bool(self.tx.dialect.lock_rows(self.tx, "users", [user_id]))

    def statuses(self, user_ids: Iterable[int], *, lock: bool = False) -> dict[int, tuple[str, int | None]]:
        ids = sorted(set(user_ids))
        # Locked in id order, chunk after chunk, so that two writers never wait in a circle.
        suffix = f" ORDER BY id{self.tx.dialect.row_lock}" if lock else ""
        found: dict[int, tuple[str, int | None]] = {}
        for marks, chunk in self.tx.in_chunks(ids):
            for uid, status, merged_into in self.tx.execute(
                f"SELECT id, status, merged_into FROM users WHERE id IN ({marks}){suffix}", chunk
            ):
                found[uid] = (status, merged_into)
        return found

    def update(self, user_id: int, **fields: Any) -> None:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update user columns {sorted(unknown)}")
        values: list[Any] = []
        columns: list[str] = []
        for name, value in fields.items():
            if name == "attributes":
                plain, sealed = self._split(value)
                columns.extend(("attributes", "sealed"))
                values.extend((plain, sealed))
                continue
            if isinstance(value, datetime):
                value = to_us(value)
            columns.append(name)
            values.append(value)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.tx.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*values, user_id))

    def count(self, status: str | None = "active") -> int:
        if status is None:
            return int(self.tx.execute("SELECT COUNT(*) FROM users").fetchone()[0])
        return int(self.tx.execute("SELECT COUNT(*) FROM users WHERE status = ?", (status,)).fetchone()[0])

    def ids(self, status: str | None = "active") -> list[int]:
        if status is None:
            return [r[0] for r in self.tx.execute("SELECT id FROM users ORDER BY id")]
        return [r[0] for r in self.tx.execute("SELECT id FROM users WHERE status = ? ORDER BY id", (status,))]

    def find_identity(self, kind: str, scope: str, value: str) -> int | None:
        if self.tx.write:  # a write that looks an identity up may be about to claim it
            self.tx.serialize(IDENTITY_SPACE, [identity_key(kind, scope, value)])
        row = self.tx.execute(
            "SELECT user_id FROM identities WHERE kind = ? AND scope = ? AND value = ?",
            (kind, scope, self.token(kind, scope, value)),
        ).fetchone()
        return None if row is None else int(row[0])

    def find_identities(self, kind: str, scope: str, values: Sequence[str]) -> dict[str, int]:
        if self.tx.write:
            self.tx.serialize(IDENTITY_SPACE, [identity_key(kind, scope, v) for v in values])
        by_token = {self.token(kind, scope, v): v for v in values}
        found: dict[str, int] = {}
        for marks, chunk in self.tx.in_chunks(list(by_token)):
            for token, user_id in self.tx.execute(
                f"SELECT value, user_id FROM identities WHERE kind = ? AND scope = ? AND value IN ({marks})",
                (kind, scope, *chunk),
            ):
                found[by_token[token]] = user_id
        return found

    def add_identities(self, rows: Sequence[tuple[int, Identity]]) -> None:
        cipher = self.cipher
        self.tx.executemany(
            "INSERT INTO identities (user_id, kind, scope, value, sealed, linked_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    user_id,
                    i.kind,
                    i.scope,
                    self.token(i.kind, i.scope, i.value),
                    cipher.seal(i.value, f"identity:{i.kind}") if cipher and i.kind in SEALED_KINDS else None,
                    to_us(i.linked_at) if i.linked_at else 0,
                )
                for user_id, i in rows
            ],
        )

    def identities(self, user_id: int) -> list[Identity]:
        return [
            Identity(kind=k, scope=s, value=self._open_identity(k, v, sealed), linked_at=from_us(at))
            for k, s, v, sealed, at in self.tx.execute(
                "SELECT kind, scope, value, sealed, linked_at FROM identities WHERE user_id = ? ORDER BY id",
                (user_id,),
            )
        ]

    def move_identity(self, identity: Identity, to_user_id: int) -> None:
        self.tx.execute(
            "UPDATE identities SET user_id = ? WHERE kind = ? AND scope = ? AND value = ?",
            (to_user_id, identity.kind, identity.scope, self.token(identity.kind, identity.scope, identity.value)),
        )

    def remove_identity(self, user_id: int, identity: Identity) -> None:
        self.tx.execute(
            "DELETE FROM identities WHERE user_id = ? AND kind = ? AND scope = ? AND value = ?",
            (user_id, identity.kind, identity.scope, self.token(identity.kind, identity.scope, identity.value)),
        )

    def add_consent(self, user_id: int, consent: Consent) -> None:
        self.tx.execute(
            "INSERT INTO consents (user_id, purpose, channel, granted, at, source, notice_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                user_id,
                consent.purpose,
                consent.channel,
                int(consent.granted),
                to_us(consent.at),
                consent.source,
                consent.notice_version,
            ),
        )

    def consents(self, user_id: int) -> list[Consent]:
        return [
            Consent(
                purpose=p, channel=c, granted=bool(g), at=from_us_required(at), source=s, notice_version=n
            )
            for p, c, g, at, s, n in self.tx.execute(
                "SELECT purpose, channel, granted, at, source, notice_version FROM consents "
                "WHERE user_id = ? ORDER BY at, id",
                (user_id,),
            )
        ]

    def add_merge(self, keep_id: int, drop_id: int, at: datetime, payload: str) -> int:
        # The payload lists the identities that moved, so it is personal data too.
        stored = self.cipher.seal(payload, "user_merges:payload") if self.cipher else payload
        row = self.tx.execute(
            "INSERT INTO user_merges (keep_id, drop_id, at, payload) VALUES (?, ?, ?, ?) RETURNING id",
            (keep_id, drop_id, to_us(at), stored),
        ).fetchone()
        return int(row[0])

    def get_merge(self, merge_id: int) -> tuple[MergeRecord, str] | None:
        row = self.tx.execute(
            "SELECT id, keep_id, drop_id, at, payload, undone_at FROM user_merges WHERE id = ?", (merge_id,)
        ).fetchone()
        if row is None:
            return None
        record = MergeRecord(
            id=row[0], keep_id=row[1], drop_id=row[2], at=from_us_required(row[3]), undone_at=from_us(row[5])
        )
        payload = str(row[4])
        if is_sealed(payload):
            if self.cipher is None:
                raise _need_key("merge records")
            payload = self.cipher.open(payload, "user_merges:payload")
        return record, payload

    def mark_unmerged(self, merge_id: int, at: datetime) -> None:
        self.tx.execute("UPDATE user_merges SET undone_at = ? WHERE id = ?", (to_us(at), merge_id))
