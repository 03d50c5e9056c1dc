"""抽奖 / 盲盒 draws: published odds, capped prizes, limits, 保底 — and proof of fairness.

A draw is created as a *draft*, then *published*: its rules freeze and the
SHA-256 of its secret server seed (the *commitment*) becomes public. Each
draw's outcome is ``pick(seed, "draw:<id>:user:<user>:seq:<n>", weights)``
(:mod:`siyu.activities.fairness`); after the end the seed is *revealed* and
anyone can re-compute every outcome (:meth:`Draws.verify`). Nobody -- the shop
included -- can steer a draw to a chosen winner (内定) without the recomputation
showing it.

Guards: a capped prize is taken by a conditional decrement, so it is never
awarded beyond its stock; what a draw that lands on an exhausted prize gets
is the disclosed ``exhausted`` mode. Per-user limits per day (business time
zone) and per activity, the pity counter and the user's draw sequence live on
the user's row, locked while they draw. A retry with the same ``key``
returns the first record and charges once. Publishing is refused when a
prize is worth more than the legal cap on 抽奖式有奖销售 or a required
disclosure is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from .._clock import aware
from .._validation import check_id, check_mapping, check_optional_id
from ..errors import (
    ActivityClosed,
    ConsentRequired,
    IdempotencyConflict,
    NotFound,
    PolicyViolation,
    QuotaExceeded,
    SoldOut,
    ValidationError,
)
from ..events import DrawMade, DrawPublished, DrawRevealed
from ..models.activities import Draw, DrawRecord, DrawStatus, Prize, PrizeKind
from ..money import to_fen, to_yuan
from ..services._common import check_int, check_key, check_text, require_user
from ..storage.contracts.activities import PlayerState
from .fairness import commitment, new_seed, pick

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..services.coupons import Coupons
    from ..services.orders import Orders
    from ..services.points import Points
    from ..storage.base import Transaction

__all__ = ["LIMITS", "REQUIRED_RULES", "Draws", "VerifyReport", "verify_records"]

#: Legal limits as data (yuan), overridable per workspace by passing ``limits=`` to :meth:`Draws.publish`.
LIMITS: dict[str, int] = {
    # 《反不正当竞争法》: the top prize of a 抽奖式有奖销售 may not exceed 50,000 yuan
    # (cash, or the market price of goods).
    "promo.lottery.max_prize_value": 50_000,
    # 盲盒经营行为规范指引: no sales to children under 8; guardian consent below 18.
    "promo.blindbox.min_age": 8,
    "promo.blindbox.guardian_consent_below": 18,
}
#: Disclosures 《规范促销行为暂行规定》 requires before a prize promotion that a draw
#: cannot derive from its own prize table and window: ``rules=`` must give each.
REQUIRED_RULES: dict[str, str] = {
    "organizer": "主办方",
    "contact": "主办方联系方式",
    "participation": "参与条件和参与方式",
    "claim": "兑奖时间、兑奖条件和兑奖方式",
    "delivery": "奖品交付方式",
    "forfeit": "弃奖条件",
}
_EXHAUSTED = ("miss", "redraw")


class _Taken(Exception):
    """A draw record's unique key was taken (rolls back the draw's savepoint)."""


def _message(draw_id: int, user_id: int, seq: int) -> str:
    return f"draw:{draw_id}:user:{user_id}:seq:{seq}"


@attrs.frozen
class VerifyReport:
    """What :meth:`Draws.verify` found: ``ok`` when the seed matches the commitment
    and every record re-computes; ``problems`` says which did not and why."""

    ok: bool
    checked: int
    problems: tuple[str, ...]


def verify_records(draw: Draw, seed: str, records: Iterable[DrawRecord]) -> VerifyReport:
    """Re-compute ``records`` from the revealed ``seed`` and the published prize table.

    Checks that the seed hashes to the commitment, that every roll is what the
    seed gives for (draw, user, seq), that a user's draws are numbered 1, 2, 3
    ..., that a pity or redraw outcome is what the seed gives among the prizes it
    names, that pity came exactly when due, and that an exhausted roll gave the
    miss prize. Needs nothing but these values: anyone can run it."""
    problems: list[str] = []
    if draw.commitment != commitment(seed):
        problems.append("the seed does not hash to the published commitment")
    weights = [p.weight for p in draw.prizes]
    misses: dict[int, int] = {}
    seqs: dict[int, int] = {}
    checked = 0
    for rec in sorted(records, key=lambda r: (r.user_id, r.seq)):
        checked += 1
        seqs[rec.user_id] = seqs.get(rec.user_id, 0) + 1
        where = f"record {rec.id} (user {rec.user_id}, draw {rec.seq})"
        if rec.seq != seqs[rec.user_id]:
            problems.append(f"{where}: draws of a user must be numbered 1, 2, 3 ...")
        msg = _message(draw.id, rec.user_id, rec.seq)
        if pick(seed, msg, weights) != rec.rolled:
            problems.append(f"{where}: the seed rolls prize {pick(seed, msg, weights)}, the record says {rec.rolled}")
        due = draw.pity is not None and misses.get(rec.user_id, 0) + 1 >= draw.pity
        if rec.reason == "roll":
            expected = rec.rolled
        elif rec.reason == "exhausted":
            expected = next((n for n, p in enumerate(draw.prizes) if p.kind is PrizeKind.MISS), -1)
        else:
            if rec.reason.startswith("pity") and not due:
                problems.append(f"{where}: pity was applied before it was due")
            expected = rec.eligible[pick(seed, f"{msg}:{rec.reason}", [weights[i] for i in rec.eligible])] \
                if rec.eligible else -1
        if expected != rec.prize:
            problems.append(f"{where}: expected prize {expected} ({rec.reason}), the record says {rec.prize}")
        miss = draw.prizes[rec.prize].kind is PrizeKind.MISS
        if due and miss and rec.reason.startswith("roll"):
            problems.append(f"{where}: pity was due but not applied")
        misses[rec.user_id] = misses.get(rec.user_id, 0) + 1 if miss else 0
    return VerifyReport(ok=not problems, checked=checked, problems=tuple(problems))


def _prize(raw: Prize | Mapping[str, Any], index: int) -> Prize:
    if isinstance(raw, Prize):
        return raw
    if not isinstance(raw, Mapping):
        raise ValidationError(f"prizes[{index}]: expected a dict such as {{'name': ..., 'kind': 'points', "
                              f"'weight': 10, 'points': 100, 'value': '1'}}, got {raw!r}")
    unknown = set(raw) - {"name", "kind", "weight", "stock", "value", "points", "coupon", "sku"}
    if unknown:
        raise ValidationError(f"prizes[{index}]: unknown field(s) {sorted(unknown)}")
    kind = raw.get("kind", "miss")
    if kind not in {k.value for k in PrizeKind}:
        raise ValidationError(f"prizes[{index}]: kind must be one of {', '.join(k.value for k in PrizeKind)}")
    stock = raw.get("stock")
    return Prize(
        name=check_text(raw.get("name"), f"prizes[{index}].name", max_length=64), kind=PrizeKind(kind),
        weight=check_int(raw.get("weight"), f"prizes[{index}].weight", minimum=0, maximum=10**12),
        stock=None if stock is None else check_int(stock, f"prizes[{index}].stock", minimum=0, maximum=10**9),
        value_fen=to_fen(raw.get("value", 0), name=f"prizes[{index}].value"),
        points=check_int(raw.get("points", 0), f"prizes[{index}].points", minimum=0, maximum=10**9),
        coupon=None if raw.get("coupon") is None else check_text(raw["coupon"], f"prizes[{index}].coupon",
                                                                 max_length=64),
        sku=None if raw.get("sku") is None else check_text(raw["sku"], f"prizes[{index}].sku", max_length=64),
    )


class Draws:
    """``ws.draws``: create, publish, draw, reveal and verify 抽奖 / 盲盒 activities."""

    name = "draws"

    def __init__(self, uow: UnitOfWork, *, points: Points, coupons: Coupons, orders: Orders) -> None:
        self._uow = uow
        self._points = points
        self._coupons = coupons
        self._orders = orders

    # -- set up -------------------------------------------------------------------------
    def create(
        self,
        name: str,
        *,
        prizes: Sequence[Prize | Mapping[str, Any]],
        starts_at: datetime,
        ends_at: datetime,
        rules: Mapping[str, str] | None = None,
        exhausted: str = "miss",
        cost_points: int = 0,
        per_order: bool = False,
        per_user_day: int | None = None,
        per_user: int | None = None,
        pity: int | None = None,
        blind_box: bool = False,
    ) -> Draw:
        """Create a draft draw.

        ``prizes``: dicts with ``name``, ``kind`` ("miss", "points", "coupon",
        "product"), ``weight`` (the odds are weight / total), optional ``stock``
        (a cap), ``value`` (yuan: the cash value or the goods' market price),
        and what to deliver: ``points``, ``coupon`` (a template name) or ``sku``.
        ``exhausted``: what a roll on a prize with no stock left gives --
        ``"miss"`` (the miss prize) or ``"redraw"`` (again among prizes in
        stock). ``cost_points`` per draw; ``per_order=True``: one draw per paid
        order of the user. ``per_user_day`` / ``per_user`` cap draws per
        business day and per activity. ``pity=N``: nobody misses N times in a
        row (the N-th draw gives a prize). ``blind_box``: a 盲盒, age-checked.
        ``rules``: the texts of :data:`REQUIRED_RULES`, needed to publish."""
        aware(starts_at, "starts_at")
        aware(ends_at, "ends_at")
        if ends_at <= starts_at:
            raise ValidationError("ends_at must be after starts_at (the window is [starts_at, ends_at))")
        if exhausted not in _EXHAUSTED:
            raise ValidationError(f"exhausted must be 'miss' or 'redraw', got {exhausted!r}")
        if isinstance(prizes, str | bytes) or not isinstance(prizes, Sequence) or not prizes:
            raise ValidationError("prizes must be a non-empty list of prize dicts")
        table = tuple(_prize(p, n) for n, p in enumerate(prizes))
        if sum(p.weight for p in table) <= 0:
            raise ValidationError("the prize weights must add up to more than 0")
        missing = [p for p in table if p.kind is PrizeKind.MISS]
        if len(missing) > 1:
            raise ValidationError("give at most one miss prize (未中奖)")
        if missing and missing[0].stock is not None:
            raise ValidationError("the miss prize cannot have a stock")
        if exhausted == "miss" and not missing and any(p.stock is not None for p in table):
            raise ValidationError("exhausted='miss' needs a miss prize (kind 'miss') for rolls on prizes that ran out")
        if pity is not None and (check_int(pity, "pity", minimum=1, maximum=10_000) and
                                 not any(p.kind is not PrizeKind.MISS and p.weight > 0 for p in table)):
            raise ValidationError("pity needs at least one prize that is not a miss")
        text = {check_text(k, "rules key", max_length=32): check_text(v, f"rules[{k!r}]", max_length=2000)
                for k, v in (rules or {}).items()}
        draw = Draw(
            id=0, name=check_text(name, "name", max_length=64), status=DrawStatus.DRAFT, prizes=table,
            starts_at=starts_at, ends_at=ends_at, rules=text, exhausted=exhausted,
            cost_points=check_int(cost_points, "cost_points", minimum=0, maximum=10**9), per_order=bool(per_order),
            per_user_day=None if per_user_day is None else check_int(per_user_day, "per_user_day", minimum=1),
            per_user=None if per_user is None else check_int(per_user, "per_user", minimum=1),
            pity=pity, blind_box=bool(blind_box), seed=new_seed(), created_at=self._uow.now(),
        )
        with self._uow.write() as tx:
            return self._public(attrs.evolve(draw, id=tx.draws.add_draw(draw)))

    @staticmethod
    def _public(draw: Draw) -> Draw:
        """The draw as anyone may see it: the seed only once revealed."""
        return draw if draw.status is DrawStatus.REVEALED else attrs.evolve(draw, seed=None)

    def _draw(self, tx: Transaction, draw_id: int) -> Draw:
        found = tx.draws.draw(check_int(draw_id, "draw_id", minimum=1))
        if found is None:
            raise NotFound(f"no draw with id {draw_id}; list them with ws.draws.all()")
        return found

    def get(self, draw_id: int) -> Draw:
        with self._uow.read() as tx:
            return self._public(self._draw(tx, draw_id))

    def all(self) -> list[Draw]:
        with self._uow.read() as tx:
            return [self._public(d) for d in tx.draws.draws()]

    def publish(self, draw_id: int, *, limits: Mapping[str, int] | None = None) -> Draw:
        """Freeze the rules and publish the seed commitment (before the start).

        Refused (:class:`~siyu.errors.PolicyViolation`, nothing changed) when a
        prize is worth more than ``promo.lottery.max_prize_value`` (50,000 yuan by
        default, see :data:`LIMITS`), when a prize has no value stated, or when a
        text of :data:`REQUIRED_RULES` is missing -- and points or coupon prizes
        also need ``rules["terms"]`` (their exchange rules, scope and validity)."""
        caps = {**LIMITS, **check_mapping(limits or {}, "limits", "{'promo.lottery.max_prize_value': 50000}")}
        now = self._uow.now()
        with self._uow.write() as tx:
            draw = self._draw(tx, draw_id)
            if draw.status is not DrawStatus.DRAFT:
                raise PolicyViolation(f"draw {draw.id} is {draw.status.value}; its published rules cannot change")
            if now >= draw.ends_at:
                raise ActivityClosed(f"draw {draw.id} ended at {draw.ends_at.isoformat()}; nothing to publish")
            problems = self._legal_problems(tx, draw, caps)
            if problems:
                raise PolicyViolation(f"draw {draw.id} cannot be published: " + "; ".join(problems))
            draw = attrs.evolve(draw, status=DrawStatus.PUBLISHED, commitment=commitment(draw.seed or ""))
            tx.draws.save_draw(draw)
            tx.emit(DrawPublished(at=now, draw_id=draw.id, commitment=draw.commitment or "",
                                  starts_at=draw.starts_at, ends_at=draw.ends_at))
            return self._public(draw)

    def _legal_problems(self, tx: Transaction, draw: Draw, caps: Mapping[str, int]) -> list[str]:
        cap_fen = caps["promo.lottery.max_prize_value"] * 100
        problems = [f"prize {p.name!r} is worth {p.value} yuan, above the {to_yuan(cap_fen)} yuan cap on "
                    "抽奖式有奖销售" for p in draw.prizes if p.value_fen > cap_fen]
        problems += [f"prize {p.name!r} states no value (奖金金额或者奖品价格): give value=..."
                     for p in draw.prizes if p.kind is not PrizeKind.MISS and p.value_fen <= 0]
        problems += [f"rules[{key!r}] ({label}) is missing" for key, label in REQUIRED_RULES.items()
                     if not draw.rules.get(key)]
        if any(p.kind in (PrizeKind.POINTS, PrizeKind.COUPON) for p in draw.prizes) and not draw.rules.get("terms"):
            problems.append("rules['terms'] is missing: points and coupon prizes need their exchange rules, scope "
                            "and validity")
        for p in draw.prizes:
            if p.kind is PrizeKind.COUPON and (p.coupon is None or tx.coupons.template_by_name(p.coupon) is None):
                problems.append(f"prize {p.name!r} names no existing coupon template (coupon=...)")
            if p.kind is PrizeKind.PRODUCT and (p.sku is None or not tx.products.get_many([p.sku])):
                problems.append(f"prize {p.name!r} names no existing product (sku=...)")
            if p.kind is PrizeKind.POINTS and p.points <= 0:
                problems.append(f"prize {p.name!r} gives no points (points=...)")
        return problems

    def disclosure(self, draw_id: int) -> str:
        """The published rules: prizes with value, odds and numbers, time, method, the
        exhausted and pity rules, limits and the texts of :data:`REQUIRED_RULES`."""
        draw = self.get(draw_id)
        tz = self._uow.tz
        lines = [f"{draw.name}", f"活动时间：{draw.starts_at.astimezone(tz):%Y-%m-%d %H:%M} 至 "
                 f"{draw.ends_at.astimezone(tz):%Y-%m-%d %H:%M}（{tz}），每次参与即时开奖"]
        for (name, odds), p in zip(draw.odds(), draw.prizes, strict=True):
            count = "不限量" if p.stock is None else f"共 {p.stock} 份"
            lines.append(f"- {name}（{p.kind.value}，价值 {p.value} 元）："
                         f"中奖概率 {odds * 100:.4f}%，{count}")
        lines.append("奖品抽完后：" + ("抽中该奖品视为未中奖" if draw.exhausted == "miss"
                                   else "在尚有库存的奖品中重新抽取"))
        if draw.pity:
            lines.append(f"保底：连续 {draw.pity - 1} 次未中奖后，下一次必中奖")
        if draw.cost_points:
            lines.append(f"每次消耗 {draw.cost_points} 积分")
        if draw.per_order:
            lines.append("每笔已支付订单可抽一次")
        if draw.per_user_day:
            lines.append(f"每人每日限 {draw.per_user_day} 次")
        if draw.per_user:
            lines.append(f"每人限 {draw.per_user} 次")
        lines += [f"{label}：{draw.rules[key]}" for key, label in REQUIRED_RULES.items() if key in draw.rules]
        if draw.commitment:
            lines.append("开奖方式：HMAC-SHA256（服务器种子，活动/用户/次序），"
                         f"种子承诺 SHA-256 {draw.commitment}，活动结束后公开种子供验证")
        return "\n".join(lines)

    # -- draw ---------------------------------------------------------------------------
    def draw(self, draw_id: int, user_id: int, *, key: str, order_id: int | None = None, age: int | None = None,
             guardian_consent: bool = False) -> DrawRecord:
        """Draw once for ``user_id``; returns the record (``record.prize`` indexes
        the prize table). The prize is delivered at once through the existing
        services: points credited, a coupon issued; a product prize is a record
        to ship.

        ``key`` makes it idempotent: a retry returns the first record and charges
        once; the same key for another draw or user raises
        :class:`~siyu.errors.IdempotencyConflict`. Raises
        :class:`~siyu.errors.ActivityClosed` outside the window or before
        publication, :class:`~siyu.errors.QuotaExceeded` past a per-user limit,
        :class:`~siyu.errors.InsufficientPoints` when the points cost is not
        covered. ``order_id`` (with ``per_order``) is the paid order this draw
        uses. Blind boxes need the buyer's ``age``: under 8 refused, under 18
        only with ``guardian_consent``."""
        check_key(key)
        now = self._uow.now()
        with self._uow.write() as tx:
            first = tx.draws.record_by_key(key)
            if first is not None:
                return self._repeat(first, draw_id, user_id)
            draw = self._draw(tx, draw_id)
            uid = require_user(tx, user_id)
            self._check_open(draw, now)
            self._check_age(draw, age, guardian_consent)
            if draw.per_order:
                self._check_order(uid, order_id)
            elif order_id is not None:
                raise ValidationError(f"draw {draw.id} does not take orders; leave order_id out")
            state = tx.draws.player(draw.id, uid)
            # The user's row is locked now: a concurrent retry of this key has committed or rolled back.
            first = tx.draws.record_by_key(key)
            if first is not None:
                return self._repeat(first, draw_id, user_id)
            day = int(now.astimezone(self._uow.tz).strftime("%Y%m%d"))
            today = state.day_count if state.day == day else 0
            if draw.per_user_day is not None and today >= draw.per_user_day:
                raise QuotaExceeded(f"user {uid} made {today} of the {draw.per_user_day} draw(s) a day of draw "
                                    f"{draw.id}; the count starts again at 00:00 ({self._uow.tz})")
            if draw.per_user is not None and state.draws >= draw.per_user:
                raise QuotaExceeded(f"user {uid} made all {draw.per_user} draw(s) of draw {draw.id}")
            seq = state.draws + 1
            try:
                # A record refused by a unique key (the key used by another user at the same moment, or
                # the order used already) must not keep the prize unit its outcome took.
                with tx.savepoint():
                    rolled, prize, reason, eligible = self._outcome(tx, draw, uid, seq, state)
                    record = DrawRecord(id=0, draw_id=draw.id, user_id=uid, seq=seq, key=key, rolled=rolled,
                                        prize=prize, reason=reason, eligible=eligible, at=now, order_id=order_id,
                                        cost_points=draw.cost_points)
                    rid = tx.draws.add_record(record)
                    if rid is None:
                        raise _Taken
            except _Taken:
                again = tx.draws.record_by_key(key)
                if again is not None:
                    return self._repeat(again, draw_id, user_id)
                raise IdempotencyConflict(f"order {order_id} was already used for a draw of draw {draw.id}") from None
            record = attrs.evolve(record, id=rid)
            miss = draw.prizes[prize].kind is PrizeKind.MISS
            tx.draws.save_player(draw.id, uid, PlayerState(draws=seq, misses=state.misses + 1 if miss else 0, day=day,
                                                           day_count=today + 1))
            if draw.cost_points:
                self._points.spend(uid, draw.cost_points, reason=f"draw {draw.id}", key=f"draw:{draw.id}:{rid}:cost")
            self._deliver(draw.prizes[prize], uid, draw.id, rid)
            tx.emit(DrawMade(at=now, draw_id=draw.id, record_id=rid, user_id=uid, seq=seq,
                             prize=draw.prizes[prize].name, kind=draw.prizes[prize].kind.value, reason=reason))
            return record

    @staticmethod
    def _repeat(first: DrawRecord, draw_id: int, user_id: int) -> DrawRecord:
        if (first.draw_id, first.user_id) != (draw_id, user_id):
            raise IdempotencyConflict(f"draw key {first.key!r} was used for draw {first.draw_id} by user "
                                      f"{first.user_id}; use a new key for each draw")
        return first

    def _check_open(self, draw: Draw, now: datetime) -> None:
        if draw.status is not DrawStatus.PUBLISHED:
            raise ActivityClosed(f"draw {draw.id} is {draw.status.value}; only a published draw takes draws")
        if not draw.starts_at <= now < draw.ends_at:
            tz = self._uow.tz
            raise ActivityClosed(f"draw {draw.id} runs [{draw.starts_at.astimezone(tz).isoformat()}, "
                                 f"{draw.ends_at.astimezone(tz).isoformat()}); not now")

    @staticmethod
    def _check_age(draw: Draw, age: int | None, guardian_consent: bool) -> None:
        if not draw.blind_box:
            return
        if age is None:
            raise ValidationError("a blind box needs the buyer's age (age=...) to apply the age rules")
        years = check_int(age, "age", minimum=0, maximum=150)
        if years < LIMITS["promo.blindbox.min_age"]:
            raise PolicyViolation(f"blind boxes are not sold to children under {LIMITS['promo.blindbox.min_age']}")
        if years < LIMITS["promo.blindbox.guardian_consent_below"] and not guardian_consent:
            raise ConsentRequired("a buyer under 18 needs a guardian's consent (guardian_consent=True once recorded)")

    def _check_order(self, user_id: int, order_id: int | None) -> None:
        if order_id is None:
            raise ValidationError("this draw takes one paid order per draw: pass order_id=...")
        order = self._orders.get(check_int(order_id, "order_id", minimum=1))
        if order.user_id != user_id:
            raise PolicyViolation(f"order {order_id} belongs to user {order.user_id}, not to user {user_id}")
        if order.status != "paid":
            raise PolicyViolation(f"order {order_id} is {order.status}; only a paid order earns a draw")

    def _outcome(self, tx: Transaction, draw: Draw, user_id: int, seq: int,
                 state: PlayerState) -> tuple[int, int, str, tuple[int, ...]]:
        """What this draw gives: (rolled, prize, reason, eligible), the prize's unit taken."""
        seed = draw.seed or ""
        weights = [p.weight for p in draw.prizes]
        msg = _message(draw.id, user_id, seq)
        rolled = pick(seed, msg, weights)
        left = tx.draws.prizes_left(draw.id)
        hits = [n for n, p in enumerate(draw.prizes) if p.kind is not PrizeKind.MISS and p.weight > 0]
        miss_at = next((n for n, p in enumerate(draw.prizes) if p.kind is PrizeKind.MISS), None)
        choice, reason = rolled, "roll"
        eligible: tuple[int, ...] = ()
        pity = draw.pity is not None and state.misses + 1 >= draw.pity
        tries = 0
        if pity and draw.prizes[rolled].kind is PrizeKind.MISS:
            choice, reason, eligible = self._among(seed, msg, "pity", 0, hits, weights, left)
        while choice < 0 or not tx.draws.take_prize(draw.id, choice):
            if choice >= 0:
                left[choice] = 0
            tries += 1
            # A due pity is kept even when the prize rolled ran out: nobody misses `pity` times in a row.
            if draw.exhausted == "miss" and not pity and miss_at is not None:
                choice, reason, eligible = miss_at, "exhausted", ()
                continue
            pool = hits if pity else [n for n, w in enumerate(weights) if w > 0]
            choice, reason, eligible = self._among(seed, msg, "pity" if pity else "redraw", tries, pool, weights,
                                                   left)
            if choice < 0:
                if miss_at is None:
                    raise SoldOut(f"draw {draw.id} has no prize left to give")
                choice, reason, eligible = miss_at, "exhausted", ()
        return rolled, choice, reason, eligible

    @staticmethod
    def _among(seed: str, msg: str, kind: str, attempt: int, pool: Sequence[int], weights: Sequence[int],
               left: Mapping[int, int | None]) -> tuple[int, str, tuple[int, ...]]:
        eligible = tuple(n for n in pool if left.get(n) != 0)
        reason = kind if attempt == 0 else f"{kind}:{attempt}"
        if not eligible:
            return -1, reason, ()
        return eligible[pick(seed, f"{msg}:{reason}", [weights[n] for n in eligible])], reason, eligible

    def _deliver(self, prize: Prize, user_id: int, draw_id: int, record_id: int) -> None:
        key = f"draw:{draw_id}:{record_id}:prize"
        if prize.kind is PrizeKind.POINTS:
            self._points.earn(user_id, prize.points, reason=f"draw {draw_id} prize", key=key)
        elif prize.kind is PrizeKind.COUPON and prize.coupon is not None:
            self._coupons.issue(prize.coupon, user_id, key=key)

    # -- after the end --------------------------------------------------------------------
    def records(self, draw_id: int, *, user_id: int | None = None) -> list[DrawRecord]:
        check_id(draw_id, "draw_id")
        check_optional_id(user_id, "user_id")
        with self._uow.read() as tx:
            return tx.draws.records(draw_id, user_id=user_id)

    def prizes_left(self, draw_id: int) -> dict[str, int | None]:
        """Units left per prize name (``None``: no cap)."""
        with self._uow.read() as tx:
            draw = self._draw(tx, draw_id)
            left = tx.draws.prizes_left(draw.id)
        return {p.name: left.get(n) for n, p in enumerate(draw.prizes)}

    def reveal(self, draw_id: int) -> Draw:
        """Publish the server seed once the draw has ended; returns the draw with its seed."""
        now = self._uow.now()
        with self._uow.write() as tx:
            draw = self._draw(tx, draw_id)
            if draw.status is DrawStatus.REVEALED:
                return draw
            if draw.status is not DrawStatus.PUBLISHED or now < draw.ends_at:
                raise ActivityClosed(f"draw {draw.id} can be revealed only after it ended "
                                     f"({draw.ends_at.isoformat()}); revealing earlier would let people predict draws")
            draw = attrs.evolve(draw, status=DrawStatus.REVEALED)
            tx.draws.save_draw(draw)
            tx.emit(DrawRevealed(at=now, draw_id=draw.id, seed=draw.seed or ""))
            return draw

    def verify(self, draw_id: int, *, seed: str | None = None) -> VerifyReport:
        """Re-compute every record of a revealed draw (or with ``seed``, any draw:
        to check a seed you were given) -- see :func:`verify_records`."""
        with self._uow.read() as tx:
            draw = self._draw(tx, draw_id)
            records = tx.draws.records(draw.id)
        if seed is None:
            if draw.status is not DrawStatus.REVEALED:
                raise ActivityClosed(f"draw {draw.id} is not revealed yet; verify after ws.draws.reveal()")
            seed = draw.seed or ""
        return verify_records(draw, seed, records)
