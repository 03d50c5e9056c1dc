"""Coupon templates, issued coupons and activity prices in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from ..._clock import from_us, to_us
from ...models.commerce import Activity, Coupon, CouponTemplate
from ..contracts.commerce import CouponStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_COUPON = "id, code, template_id, user_id, issued_at, valid_from, valid_until, status, order_id, redeemed_at"
_TEMPLATE_STATE = {"id", "name", "issued", "budget_used_fen", "active", "created_at"}
_TIMES = {"valid_from", "valid_until", "starts_at", "ends_at"}


def _spec(obj: Any, state: set[str]) -> str:
    data = {}
    for field in attrs.fields(type(obj)):
        if field.name in state:
            continue
        value = getattr(obj, field.name)
        if field.name in _TIMES and value is not None:
            value = to_us(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[field.name] = value
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def _unspec(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    for name in _TIMES & set(data):
        data[name] = from_us(data[name])
    for name in ("skus", "categories"):
        if name in data:
            data[name] = tuple(data[name])
    return data


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at(value: int) -> datetime:
    # The same instant as _clock.from_us, built faster: quotes load every coupon a user holds.
    return _EPOCH + timedelta(microseconds=value)


def _coupon(r: Sequence[Any]) -> Coupon:
    return Coupon(id=r[0], code=r[1], template_id=r[2], user_id=r[3], issued_at=_at(r[4]),
                  valid_from=_at(r[5]), valid_until=None if r[6] is None else _at(r[6]), status=r[7],
                  order_id=r[8], redeemed_at=None if r[9] is None else _at(r[9]))


class SqlCouponStore(CouponStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def save_template(self, template: CouponTemplate) -> int:
        spec = _spec(template, _TEMPLATE_STATE)
        if template.id:
            self.tx.execute(
                "UPDATE coupon_templates SET spec = ?, active = ? WHERE id = ?",
                (spec, int(template.active), template.id),
            )
            return template.id
        [tid] = self.tx.dialect.allocate_ids(self.tx, "coupon_templates", 1)
        assert template.created_at is not None
        self.tx.execute(
            "INSERT INTO coupon_templates (id, name, spec, issued, budget_used, active, created_at) "
            "VALUES (?, ?, ?, 0, 0, ?, ?)",
            (tid, template.name, spec, int(template.active), to_us(template.created_at)),
        )
        return tid

    def lock_template(self, template_id: int) -> None:
        self.tx.dialect.lock_rows(self.tx, "coupon_templates", [template_id])

    def _templates(self, where: str, params: Sequence[Any]) -> list[CouponTemplate]:
        return [
            CouponTemplate(id=r[0], name=r[1], issued=r[3], budget_used_fen=r[4], active=bool(r[5]),
                           created_at=from_us(r[6]), **_unspec(r[2]))
            for r in self.tx.execute(
                "SELECT id, name, spec, issued, budget_used, active, created_at FROM coupon_templates "
                f"WHERE {where} ORDER BY id",
                params,
            )
        ]

    def template(self, template_id: int) -> CouponTemplate | None:
        found = self._templates("id = ?", (template_id,))
        return found[0] if found else None

    def template_by_name(self, name: str) -> CouponTemplate | None:
        found = self._templates("name = ?", (name,))
        return found[0] if found else None

    def templates(self) -> list[CouponTemplate]:
        return self._templates("1 = 1", ())

    def issued_to(self, template_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for marks, chunk in self.tx.in_chunks(list(user_ids)):
            for uid, n in self.tx.execute(
                f"SELECT user_id, COUNT(*) FROM coupons WHERE template_id = ? AND user_id IN ({marks}) "
                "GROUP BY user_id",
                [template_id, *chunk],
            ):
                counts[int(uid)] = int(n)
        return counts

    def issue(self, coupons: Sequence[Coupon]) -> list[int]:
        if not coupons:
            return []
        ids = self.tx.dialect.allocate_ids(self.tx, "coupons", len(coupons))
        self.tx.executemany(
            f"INSERT INTO coupons ({_COUPON}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (cid, c.code, c.template_id, c.user_id, to_us(c.issued_at), to_us(c.valid_from),
                 None if c.valid_until is None else to_us(c.valid_until), c.status, None, None)
                for cid, c in zip(ids, coupons, strict=True)
            ],
        )
        per_template: dict[int, int] = {}
        for c in coupons:
            per_template[c.template_id] = per_template.get(c.template_id, 0) + 1
        self.tx.executemany(
            "UPDATE coupon_templates SET issued = issued + ? WHERE id = ?",
            [(n, tid) for tid, n in per_template.items()],
        )
        return ids

    def by_codes(self, codes: Sequence[str]) -> dict[str, Coupon]:
        found: dict[str, Coupon] = {}
        for marks, chunk in self.tx.in_chunks(list(codes)):
            for r in self.tx.execute(f"SELECT {_COUPON} FROM coupons WHERE code IN ({marks})", chunk):
                found[r[1]] = _coupon(r)
        return found

    def of_user(self, user_id: int, status: str | None = None) -> list[Coupon]:
        if status is None:
            rows = self.tx.execute(f"SELECT {_COUPON} FROM coupons WHERE user_id = ? ORDER BY id", (user_id,))
        else:
            rows = self.tx.execute(
                f"SELECT {_COUPON} FROM coupons WHERE user_id = ? AND status = ? ORDER BY id", (user_id, status)
            )
        return [_coupon(r) for r in rows]

    def set_status(self, coupon_ids: Sequence[int], status: str, order_id: int | None,
                   at: datetime | None) -> None:
        self.tx.executemany(
            "UPDATE coupons SET status = ?, order_id = ?, redeemed_at = ? WHERE id = ?",
            [(status, order_id, None if at is None else to_us(at), cid) for cid in coupon_ids],
        )

    def due(self, now: datetime, limit: int) -> list[Coupon]:
        return [
            _coupon(r)
            for r in self.tx.execute(
                f"SELECT {_COUPON} FROM coupons WHERE status = 'issued' AND valid_until <= ? ORDER BY id LIMIT ?",
                (to_us(now), limit),
            )
        ]

    def save_activity(self, activity: Activity) -> int:
        spec = _spec(activity, {"id", "name", "budget_used_fen", "active"})
        if activity.id:
            self.tx.execute("UPDATE activities SET spec = ?, active = ? WHERE id = ?",
                            (spec, int(activity.active), activity.id))
            return activity.id
        [aid] = self.tx.dialect.allocate_ids(self.tx, "activities", 1)
        self.tx.execute(
            "INSERT INTO activities (id, name, spec, budget_used, active) VALUES (?, ?, ?, 0, ?)",
            (aid, activity.name, spec, int(activity.active)),
        )
        return aid

    def activities(self) -> list[Activity]:
        return [
            Activity(id=r[0], name=r[1], budget_used_fen=r[3], active=bool(r[4]), **_unspec(r[2]))
            for r in self.tx.execute("SELECT id, name, spec, budget_used, active FROM activities ORDER BY id")
        ]

    def use_budget(self, kind: str, source_id: int, fen: int) -> None:
        table = "coupon_templates" if kind == "coupon" else "activities"
        self.tx.execute(f"UPDATE {table} SET budget_used = budget_used + ? WHERE id = ?", (fen, source_id))

    def move(self, coupon_ids: Sequence[int], user_id: int) -> None:
        for marks, chunk in self.tx.in_chunks(list(coupon_ids)):
            self.tx.execute(f"UPDATE coupons SET user_id = ? WHERE id IN ({marks})", [user_id, *chunk])
