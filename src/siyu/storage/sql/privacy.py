"""Audit log, legal holds, tombstones, erasure and re-encryption in SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..._clock import from_us, from_us_required, to_us
from ..._text import ERASED
from ...models.privacy import AuditEntry, LegalHoldRecord, Tombstone
from ...privacy.keys import is_sealed
from ..contracts.privacy import NewAuditEntry, PrivacyStore
from .users import SEALED_KINDS

if TYPE_CHECKING:
    from ...privacy.keys import FieldCipher
    from .backend import SqlTransaction

_AUDIT = "id, at, actor, action, user_id, details, before_value, after_value"
#: Personal data other built-in components keep about a user, scrubbed on erasure:
#: (component, statement with {marks} for the user ids, leading parameters). Free-form text
#: (properties, reasons, notes, details, who applied a tag) is where an application or a
#: provider may have written a name or a phone number, so it goes with the person; ids,
#: amounts, labels from a fixed set and idempotency keys stay.
_SCRUB: list[tuple[str, str, tuple[Any, ...]]] = [
    # Subscription credits are filed under the recipient's address: drop the person's rows
    # while their messages still say which addresses were theirs.
    (
        "channels",
        "DELETE FROM channel_credits WHERE recipient IN (SELECT recipient FROM channel_outbox "
        "WHERE user_id IN ({marks}) AND recipient IS NOT NULL)",
        (),
    ),
    (
        "campaigns",
        "DELETE FROM channel_credits WHERE recipient IN (SELECT recipient FROM campaign_deliveries "
        "WHERE user_id IN ({marks}) AND recipient IS NOT NULL)",
        (),
    ),
    (
        "channels",
        "UPDATE channel_outbox SET recipient = ?, body = ?, variables = ? WHERE user_id IN ({marks})",
        ("erased", "", "{}"),
    ),
    (
        "campaigns",
        "UPDATE campaign_receipts SET detail = NULL, code = NULL WHERE delivery_id IN "
        "(SELECT id FROM campaign_deliveries WHERE user_id IN ({marks}))",
        (),
    ),
    ("campaigns", "UPDATE campaign_deliveries SET recipient = NULL, detail = NULL WHERE user_id IN ({marks})", ()),
    ("campaigns", "UPDATE campaign_suppressions SET reason = ? WHERE user_id IN ({marks})", (ERASED,)),
    ("referrals", "UPDATE referral_nodes SET device = NULL WHERE user_id IN ({marks})", ()),
    ("referrals", "UPDATE referral_log SET reason = ? WHERE invitee_id IN ({marks})", (ERASED,)),
    ("lifecycle", "UPDATE user_events SET properties = ? WHERE user_id IN ({marks})", ("{}",)),
    ("lifecycle", "UPDATE lifecycle_log SET reason = ? WHERE user_id IN ({marks})", (ERASED,)),
    # A fingerprint repeats the call's reason; a retry for an erased user is refused anyway.
    ("points", "UPDATE points_entries SET reason = ?, fingerprint = ? WHERE user_id IN ({marks})", (ERASED, ERASED)),
    ("commerce", "UPDATE tier_growth SET reason = ? WHERE user_id IN ({marks})", (ERASED,)),
    ("commerce", "UPDATE tier_history SET reason = ? WHERE user_id IN ({marks})", (ERASED,)),
    ("tags", "UPDATE user_tags SET applied_by = ? WHERE user_id IN ({marks})", (ERASED,)),
    ("tags", "UPDATE tag_log SET by_what = ? WHERE user_id IN ({marks})", (ERASED,)),
]
#: Messages held about a user, for exports: (component, query).
_MESSAGES: list[tuple[str, str]] = [
    (
        "channels",
        "SELECT 'outbox', channel, recipient, body, purpose, created_at FROM channel_outbox "
        "WHERE user_id = ? ORDER BY id",
    ),
    (
        "campaigns",
        "SELECT 'campaign', channel, recipient, status, purpose, created_at FROM campaign_deliveries "
        "WHERE user_id = ? ORDER BY id",
    ),
]
#: Audit details that say what kind of thing happened, never who it was about: kept on erasure.
_STRUCTURAL_DETAILS = frozenset({"action", "attributes", "channel", "kind", "purpose", "scope", "sections", "status"})
_HOLD = "id, user_id, reason, placed_at, placed_by, released_at, released_by"


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _scrub(value: Any, key: str = "") -> Any:
    """Audit details with every text replaced, except under the structural keys; numbers,
    booleans and the shape stay, so the entry still says what was done and how much."""
    if isinstance(value, dict):
        return {k: v if k in _STRUCTURAL_DETAILS else _scrub(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, key) for v in value]
    return ERASED if isinstance(value, str) else value


def _audit(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        id=row[0],
        at=from_us_required(row[1]),
        actor=row[2],
        action=row[3],
        user_id=row[4],
        details=json.loads(row[5]),
        before=None if row[6] is None else json.loads(row[6]),
        after=None if row[7] is None else json.loads(row[7]),
    )


def _hold(row: Sequence[Any]) -> LegalHoldRecord:
    return LegalHoldRecord(
        id=row[0],
        user_id=row[1],
        reason=row[2],
        placed_at=from_us_required(row[3]),
        placed_by=row[4],
        released_at=from_us(row[5]),
        released_by=row[6],
    )


class SqlPrivacyStore(PrivacyStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    # -- audit ----------------------------------------------------------------------------------
    def append_audit(self, entries: Sequence[NewAuditEntry]) -> list[int]:
        ids = self.tx.dialect.allocate_ids(self.tx, "audit_log", len(entries))
        self.tx.executemany(
            "INSERT INTO audit_log (id, at, actor, action, user_id, details, before_value, after_value) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, to_us(e.at), e.actor, e.action, e.user_id, _json(e.details), _json(e.before), _json(e.after))
                for i, e in zip(ids, entries, strict=True)
            ],
        )
        return ids

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
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("user_id", user_id), ("action", action), ("actor", actor)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("at >= ?")
            params.append(to_us(since))
        if until is not None:
            where.append("at < ?")
            params.append(to_us(until))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.tx.execute(f"SELECT {_AUDIT} FROM audit_log {clause} ORDER BY id LIMIT ?", (*params, limit))
        return [_audit(r) for r in rows]

    def purge_audit(self, before: datetime) -> int:
        row = self.tx.execute("SELECT COUNT(*) FROM audit_log WHERE at < ?", (to_us(before),)).fetchone()
        self.tx.execute("DELETE FROM audit_log WHERE at < ?", (to_us(before),))
        return int(row[0])

    # -- holds --------------------------------------------------------------------------------------
    def add_hold(self, user_id: int, reason: str, at: datetime, by: str) -> int:
        row = self.tx.execute(
            "INSERT INTO privacy_holds (user_id, reason, placed_at, placed_by) VALUES (?, ?, ?, ?) RETURNING id",
            (user_id, reason, to_us(at), by),
        ).fetchone()
        return int(row[0])

    def release_hold(self, hold_id: int, at: datetime, by: str) -> LegalHoldRecord | None:
        self.tx.execute(
            "UPDATE privacy_holds SET released_at = ?, released_by = ? WHERE id = ? AND released_at IS NULL",
            (to_us(at), by, hold_id),
        )
        row = self.tx.execute(f"SELECT {_HOLD} FROM privacy_holds WHERE id = ?", (hold_id,)).fetchone()
        return None if row is None else _hold(row)

    def holds(self, user_id: int) -> list[LegalHoldRecord]:
        rows = self.tx.execute(f"SELECT {_HOLD} FROM privacy_holds WHERE user_id = ? ORDER BY id", (user_id,))
        return [_hold(r) for r in rows]

    def held(self, user_ids: Iterable[int] | None = None) -> set[int]:
        if user_ids is None:
            return {int(r[0]) for r in self.tx.execute("SELECT user_id FROM privacy_holds WHERE released_at IS NULL")}
        found: set[int] = set()
        for marks, chunk in self.tx.in_chunks(sorted(set(user_ids))):
            found.update(
                int(r[0])
                for r in self.tx.execute(
                    f"SELECT user_id FROM privacy_holds WHERE released_at IS NULL AND user_id IN ({marks})", chunk
                )
            )
        return found

    # -- erasure ------------------------------------------------------------------------------------
    def add_tombstone(self, tombstone: Tombstone) -> None:
        self.tx.execute(
            "INSERT INTO privacy_tombstones (user_id, pseudonym, erased_at, erased_by, reason) VALUES (?, ?, ?, ?, ?)",
            (tombstone.user_id, tombstone.pseudonym, to_us(tombstone.erased_at), tombstone.erased_by, tombstone.reason),
        )

    def tombstone(self, user_id: int) -> Tombstone | None:
        row = self.tx.execute(
            "SELECT user_id, pseudonym, erased_at, erased_by, reason FROM privacy_tombstones WHERE user_id = ?",
            (user_id,),
        ).fetchone()
        if row is None:
            return None
        return Tombstone(
            user_id=row[0], pseudonym=row[1], erased_at=from_us_required(row[2]), erased_by=row[3], reason=row[4]
        )

    def merged_into(self, user_id: int) -> list[int]:
        rows = self.tx.execute("SELECT id FROM users WHERE merged_into = ? ORDER BY id", (user_id,))
        return [int(r[0]) for r in rows]

    def _components(self) -> set[str]:
        return {str(r[0]) for r in self.tx.execute("SELECT component FROM siyu_schema")}

    def messages(self, user_id: int) -> list[dict[str, Any]]:
        present = self._components()
        found: list[dict[str, Any]] = []
        for component, query in _MESSAGES:
            if component in present:
                for source, channel, recipient, body, purpose, at in self.tx.execute(query, (user_id,)):
                    found.append(
                        {
                            "source": source,
                            "channel": channel,
                            "recipient": recipient,
                            # An outbox row holds the text; a campaign delivery its status.
                            "content" if source == "outbox" else "status": body,
                            "purpose": purpose,
                            "at": from_us_required(at).isoformat(),
                        }
                    )
        return found

    def erase_person(self, user_ids: Iterable[int]) -> dict[str, int]:
        ids = sorted(set(user_ids))
        counts = {"identities": 0, "users": 0, "merge_records": 0, "audit_entries": 0}
        present = self._components()
        for marks, chunk in self.tx.in_chunks(ids):
            for component, statement, params in _SCRUB:
                if component in present:
                    self.tx.execute(statement.format(marks=marks), (*params, *chunk))
            row = self.tx.execute(f"SELECT COUNT(*) FROM identities WHERE user_id IN ({marks})", chunk).fetchone()
            counts["identities"] += int(row[0])
            self.tx.execute(f"DELETE FROM identities WHERE user_id IN ({marks})", chunk)
            row = self.tx.execute(
                f"SELECT COUNT(*) FROM user_merges WHERE keep_id IN ({marks}) OR drop_id IN ({marks})", chunk * 2
            ).fetchone()
            counts["merge_records"] += int(row[0])
            # A merge record lists the identities it moved: shred it (the merge can no longer be undone).
            self.tx.execute(
                f"UPDATE user_merges SET payload = ?, undone_at = COALESCE(undone_at, at) "
                f"WHERE keep_id IN ({marks}) OR drop_id IN ({marks})",
                ("{}", *chunk, *chunk),
            )
            self.tx.execute(
                f"UPDATE users SET attributes = ?, sealed = NULL, source_state = NULL, status = ? "
                f"WHERE id IN ({marks})",
                ("{}", "erased", *chunk),
            )
            counts["users"] += len(chunk)
            counts["audit_entries"] += self._scrub_audit(marks, chunk)
        return counts

    def _scrub_audit(self, marks: str, chunk: Sequence[int]) -> int:
        """The person's audit entries keep who acted, what and when; the masked before/after
        values go and the details' free text is replaced."""
        rows = self.tx.execute(f"SELECT id, details FROM audit_log WHERE user_id IN ({marks})", chunk).fetchall()
        self.tx.executemany(
            "UPDATE audit_log SET details = ?, before_value = NULL, after_value = NULL WHERE id = ?",
            [(_json(_scrub(json.loads(details))), row_id) for row_id, details in rows],
        )
        return len(rows)

    # -- keys ------------------------------------------------------------------------------------------
    def reseal(
        self, old: FieldCipher | None, new: FieldCipher, personal: frozenset[str], batch: int = 2000
    ) -> dict[str, int]:
        counts = {"identities": 0, "users": 0, "merge_records": 0}
        kinds = sorted(SEALED_KINDS)
        marks = ",".join("?" * len(kinds))
        last = 0
        while True:
            rows = self.tx.execute(
                f"SELECT id, kind, scope, value, sealed FROM identities WHERE kind IN ({marks}) AND id > ? "
                "ORDER BY id LIMIT ?",
                (*kinds, last, batch),
            ).fetchall()
            if not rows:
                break
            updates = []
            for row_id, kind, scope, value, sealed in rows:
                text = value if sealed is None else _open(old, sealed, f"identity:{kind}")
                updates.append((new.blind(kind, scope, text), new.seal(text, f"identity:{kind}"), row_id))
            self.tx.executemany("UPDATE identities SET value = ?, sealed = ? WHERE id = ?", updates)
            counts["identities"] += len(updates)
            last = rows[-1][0]
        last = 0
        while True:
            rows = self.tx.execute(
                "SELECT id, attributes, sealed FROM users WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                break
            updates = []
            for row_id, attributes, sealed in rows:
                plain: dict[str, Any] = json.loads(attributes)
                secret: dict[str, Any] = json.loads(_open(old, sealed, "user:attributes")) if sealed else {}
                moved = {k: plain.pop(k) for k in list(plain) if k in personal}
                if not moved and not secret:
                    continue
                secret.update(moved)
                blob = json.dumps(secret, ensure_ascii=False, sort_keys=True, default=str)
                clear = json.dumps(plain, ensure_ascii=False, sort_keys=True, default=str)
                updates.append((clear, new.seal(blob, "user:attributes"), row_id))
            if updates:
                self.tx.executemany("UPDATE users SET attributes = ?, sealed = ? WHERE id = ?", updates)
            counts["users"] += len(updates)
            last = rows[-1][0]
        merges = []
        for row_id, payload in self.tx.execute("SELECT id, payload FROM user_merges").fetchall():
            if payload == "{}":
                continue
            plain_payload = _open(old, payload, "user_merges:payload") if is_sealed(payload) else payload
            merges.append((new.seal(plain_payload, "user_merges:payload"), row_id))
        if merges:
            self.tx.executemany("UPDATE user_merges SET payload = ? WHERE id = ?", merges)
        counts["merge_records"] = len(merges)
        return counts


def _open(cipher: FieldCipher | None, token: str, context: str) -> str:
    if cipher is None:
        from ...errors import WrongKeyError

        raise WrongKeyError(f"found an encrypted {context} value but no current key to open it with")
    return cipher.open(token, context)
