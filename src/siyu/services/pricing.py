"""The pricing engine: stacking rules, best-combination search, worst-case margins.

Pure computation over fen, no storage: :class:`~siyu.services.promotions.Promotions`
loads the offers once and hands them here, so trying every legal combination
costs no database round trip.

An *offer* is an activity price or a coupon. Offers sit in *groups*; at most
one offer of a group applies unless the group is in ``StackingRules.multi``;
two groups combine only if the pair is listed in ``StackingRules.combinable``.
Offers apply in ``priority`` order (lower first); with ``base="discounted"``
each discount is computed on what earlier ones left, with ``base="original"``
on the original amounts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from ..errors import PriceBelowFloor, ValidationError
from ..models.commerce import Activity, CouponTemplate, Product, ProductRole
from ..money import to_yuan

__all__ = [
    "LOSS_ROLES",
    "CartLine",
    "Offer",
    "Quote",
    "QuoteLine",
    "StackingRules",
    "best_quote",
    "check_price",
    "floor_fen",
    "worst_unit",
]


@attrs.frozen(kw_only=True)
class StackingRules:
    """How offers combine, and the margin floor the guard enforces.

    ``combinable``: pairs of group names whose offers may apply together.
    ``multi``: groups whose offers may apply together with each other.
    ``base``: ``"discounted"`` (a later discount is computed on what earlier
    ones left) or ``"original"`` (every discount on the original amount).
    ``margin_floor``: the share of the selling price that must stay margin
    (``0`` = never below cost); a product's ``min_margin`` overrides it.
    ``guard``: the margin guard on (refuse risky offers, clamp quotes)."""

    combinable: frozenset[frozenset[str]] = frozenset({frozenset({"activity", "coupon"})})
    multi: frozenset[str] = frozenset({"activity"})
    base: str = "discounted"
    margin_floor: Decimal = Decimal(0)
    guard: bool = True

    def can_combine(self, a: str, b: str) -> bool:
        return (a == b and a in self.multi) or frozenset({a, b}) in self.combinable

    def to_json(self) -> dict[str, Any]:
        return {
            "combinable": sorted(sorted(pair) for pair in self.combinable),
            "multi": sorted(self.multi),
            "base": self.base,
            "margin_floor": str(self.margin_floor),
            "guard": self.guard,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackingRules:
        return cls(
            combinable=frozenset(frozenset(p) for p in data["combinable"]),
            multi=frozenset(data["multi"]),
            base=data["base"],
            margin_floor=Decimal(data["margin_floor"]),
            guard=bool(data["guard"]),
        )


@attrs.frozen(kw_only=True)
class Offer:
    """One activity or coupon a quote may use."""

    kind: str  # "activity" or "coupon"
    source_id: int
    name: str
    group: str
    priority: int
    loss_leader: bool = False
    budget_left_fen: int | None = None
    code: str | None = None
    template: CouponTemplate | None = None
    activity: Activity | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}" + (f" ({self.code})" if self.code else "")

    def eligible(self, product: Product) -> bool:
        if self.activity is not None:
            return product.sku in self.activity.prices_fen
        t = self.template
        assert t is not None
        if t.kind == "free_item":
            return product.sku == t.free_sku
        if t.skus and product.sku not in t.skus:
            return False
        return not (t.categories and product.category not in t.categories)

    @classmethod
    def of_template(cls, t: CouponTemplate, code: str | None = None) -> Offer:
        left = None if t.budget_fen is None else max(0, t.budget_fen - t.budget_used_fen)
        return cls(kind="coupon", source_id=t.id, name=t.name, group=t.group, priority=t.priority,
                   loss_leader=t.loss_leader, budget_left_fen=left, code=code, template=t)

    @classmethod
    def of_activity(cls, a: Activity) -> Offer:
        left = None if a.budget_fen is None else max(0, a.budget_fen - a.budget_used_fen)
        return cls(kind="activity", source_id=a.id, name=a.name, group=a.group, priority=a.priority,
                   loss_leader=a.loss_leader, budget_left_fen=left, activity=a)


@attrs.frozen(kw_only=True)
class CartLine:
    """A cart line: ``unit_fen`` is the base unit price (list or member price, or
    the caller's explicit price when ``explicit``; activities skip those).
    ``loss_fen``: the product's own loss budget the base price uses (a traffic or
    activity item priced below its floor)."""

    product: Product
    qty: int
    unit_fen: int
    explicit: bool = False
    loss_fen: int = 0


@attrs.frozen(kw_only=True)
class QuoteLine:
    """A priced line: what it would cost before and after offers, and why."""

    sku: str
    qty: int
    unit_fen: int
    amount_fen: int
    paid_fen: int
    role: ProductRole
    notes: tuple[str, ...] = ()
    #: The product's own loss budget the line uses (its price is below its floor).
    loss_fen: int = 0

    @property
    def amount(self) -> Decimal:
        return to_yuan(self.amount_fen)

    @property
    def paid(self) -> Decimal:
        return to_yuan(self.paid_fen)

    @property
    def discount(self) -> Decimal:
        return to_yuan(self.amount_fen - self.paid_fen)


@attrs.frozen(kw_only=True)
class Quote:
    """The best legal combination for a cart.

    ``lines`` explain each line; ``applied`` names the offers used (with the
    fen each saved); ``skipped`` says why other candidates were left out.
    ``budget_fen`` maps ``(kind, source_id)`` to loss-leader budget used;
    ``budget_lines`` splits it by line: ``(kind, source_id, line_no, fen)``."""

    user_id: int
    lines: tuple[QuoteLine, ...]
    applied: tuple[tuple[str, int], ...]
    coupon_codes: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    budget_lines: tuple[tuple[str, int, int, int], ...] = ()

    @property
    def budget_fen(self) -> tuple[tuple[str, int, int], ...]:
        total: dict[tuple[str, int], int] = {}
        for kind, source_id, _, fen in self.budget_lines:
            total[kind, source_id] = total.get((kind, source_id), 0) + fen
        return tuple((kind, source_id, fen) for (kind, source_id), fen in total.items())

    @property
    def subtotal_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)

    @property
    def total_fen(self) -> int:
        return sum(line.paid_fen for line in self.lines)

    @property
    def discount_fen(self) -> int:
        return self.subtotal_fen - self.total_fen

    @property
    def subtotal(self) -> Decimal:
        return to_yuan(self.subtotal_fen)

    @property
    def total(self) -> Decimal:
        return to_yuan(self.total_fen)

    @property
    def discount(self) -> Decimal:
        return to_yuan(self.discount_fen)

    def explain(self) -> str:
        """A human-readable, line-by-line explanation."""
        out = []
        for line in self.lines:
            out.append(f"{line.sku} x{line.qty}: {line.amount} -> {line.paid}")
            out.extend(f"    {note}" for note in line.notes)
        for label, fen in self.applied:
            out.append(f"applied {label}: -{to_yuan(fen)}")
        out.extend(f"skipped {why}" for why in self.skipped)
        out.append(f"total {self.total} (saved {self.discount} of {self.subtotal})")
        return "\n".join(out)


#: Roles that may sell below their floor, within a loss budget: 引流品 (traffic) and 活动品 (activity).
LOSS_ROLES = frozenset({ProductRole.TRAFFIC, ProductRole.ACTIVITY})


def floor_fen(product: Product, qty: int, rules: StackingRules) -> int:
    """The least a line of ``qty`` may sell for: cost / (1 - margin), rounded up."""
    margin = product.min_margin if product.min_margin is not None else rules.margin_floor
    if not margin:
        return product.cost_fen * qty
    return math.ceil(Fraction(product.cost_fen * qty) / (1 - Fraction(margin)))


def check_price(product: Product, unit_fen: int, rules: StackingRules, *, what: str = "price", units: int = 1,
                loss_left_fen: int | None = None) -> int:
    """The margin guard for a fixed unit price (list price, member price, 拼团 price,
    a flash-sale price set directly): raise :class:`~siyu.errors.PriceBelowFloor`
    if ``unit_fen`` is below the product's floor (cost, or cost / (1 - margin)),
    unless its role may sell at a loss (:data:`LOSS_ROLES`) and a loss budget
    with ``loss_left_fen`` left covers ``units`` sold at that price (``None``:
    the product has none). Returns the loss below the floor for those units (0
    when the price is at or above it). Does nothing with the guard off."""
    floor = floor_fen(product, 1, rules)
    if not rules.guard or unit_fen >= floor:
        return 0
    loss = (floor - unit_fen) * units
    if product.role in LOSS_ROLES and loss_left_fen is not None and loss <= loss_left_fen:
        return loss
    margin = product.min_margin if product.min_margin is not None else rules.margin_floor
    why = f"{product.sku} ({product.title}, {product.role.value}): {what} {to_yuan(unit_fen)} is below its floor " \
          f"{to_yuan(floor)} (cost {product.cost}, margin floor {margin})"
    if product.role not in LOSS_ROLES:
        fix = "raise the price or lower min_margin; only traffic and activity products may sell below their floor"
    elif loss_left_fen is None:
        fix = "raise the price, or give the product a loss budget (loss_budget=...) to sell it at a loss"
    else:
        fix = (f"raise the price, or raise the product's loss budget: selling {units} at this price loses "
               f"{to_yuan(loss)} and {to_yuan(loss_left_fen)} is left")
    if unit_fen < product.cost_fen and product.cost_fen > 0:
        fix += "; check that price= and cost= are not swapped"
    raise PriceBelowFloor(f"{why}. To fix: {fix}", sku=product.sku, price_fen=unit_fen, floor_fen=floor)


def _distribute(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` fen in proportion to ``weights`` (largest remainder)."""
    whole = sum(weights)
    if whole <= 0 or total <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    rest = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:rest]:
        shares[i] += 1
    return shares


class _Prepared:
    """Per-cart facts computed once and reused by every combination."""

    def __init__(self, lines: Sequence[CartLine], offers: Sequence[Offer], rules: StackingRules,
                 eligible: Sequence[list[int]] | None = None) -> None:
        self.lines = lines
        self.offers = offers
        self.rules = rules
        self.discounted = rules.base == "discounted"
        self.original = [line.unit_fen * line.qty for line in lines]
        self.floors = [floor_fen(line.product, line.qty, rules) if rules.guard else 0 for line in lines]
        self.may_lose = [line.product.role in LOSS_ROLES for line in lines]
        self.eligible: list[list[int]] = []
        self.targets: list[dict[int, int]] = []
        for n, offer in enumerate(offers):
            idx = eligible[n] if eligible is not None else [
                i for i, line in enumerate(lines)
                if offer.eligible(line.product) and not (offer.activity is not None and line.explicit)]
            self.eligible.append(idx)
            if offer.activity is not None:
                prices = offer.activity.prices_fen
                self.targets.append({i: prices[lines[i].product.sku] * lines[i].qty for i in idx})
            else:
                self.targets.append({})
        self.labels = [offer.label for offer in offers]
        self.order = {i: (offer.priority, offer.kind != "activity", i) for i, offer in enumerate(offers)}


_State = tuple[tuple[int, ...], tuple[int, ...], int]
"""Line amounts after some offers, the offers applied (in order), coupons that saved something."""


def _wanted(prep: _Prepared, index: int, current: Sequence[int]) -> dict[int, int] | None:
    """Per-line discounts an offer wants on ``current`` (None: its condition is not met)."""
    offer = prep.offers[index]
    ref = current if prep.discounted else prep.original
    if offer.activity is not None:
        return {i: ref[i] - target for i, target in prep.targets[index].items() if ref[i] > target}
    t = offer.template
    assert t is not None
    idx = prep.eligible[index]
    base = sum(ref[i] for i in idx)
    if base <= 0 or base < t.threshold_fen:
        return None
    if t.kind == "free_item":
        free = {i: ref[i] // prep.lines[i].qty for i in idx if prep.lines[i].qty >= t.min_qty}
        return free or None
    if t.kind == "amount_off":
        off = min(t.amount_fen, base)
    else:
        off = base * t.percent // 100
        if t.cap_fen is not None:
            off = min(off, t.cap_fen)
    return dict(zip(idx, _distribute(off, [ref[i] for i in idx]), strict=True))


def _take(prep: _Prepared, index: int, current: list[int],
          left: int | None) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
    """What an offer takes from each line: ``{line: (taken, wanted)}`` and the loss-leader budget each
    line used. Never below a line's floor (beyond a loss leader's budget on traffic and activity items),
    never below 0."""
    wanted = _wanted(prep, index, current)
    taken: dict[int, tuple[int, int]] = {}
    used: dict[int, int] = {}
    if not wanted:
        return taken, used
    leader = prep.offers[index].loss_leader
    for i, want in wanted.items():
        want = min(want, current[i])
        if want <= 0:
            continue
        allowed = current[i] - prep.floors[i]
        if allowed < 0:
            allowed = 0
        if want > allowed and leader and prep.may_lose[i]:
            extra = want - allowed if left is None else min(want - allowed, left)
            if left is not None:
                left -= extra
            if extra:
                used[i] = extra
            allowed += extra
        taken[i] = (want if want < allowed else allowed, want)
    return taken, used


def _bound(prep: _Prepared, current: Sequence[int], rest: Sequence[int]) -> int:
    """An upper bound of what offers ``rest`` can still take off ``current``."""
    total = 0
    for index in rest:
        t = prep.offers[index].template
        if t is None or not prep.discounted:
            return sum(current)  # activities and original-base stacking: no cheap bound
        base = sum(current[i] for i in prep.eligible[index])
        if t.kind == "amount_off":
            total += min(t.amount_fen, base)
        elif t.kind == "percent_off":
            total += min(base * t.percent // 100, t.cap_fen if t.cap_fen is not None else base)
        else:
            total += max((current[i] for i in prep.eligible[index]), default=0)
    return total


def _apply(prep: _Prepared, state: _State, index: int) -> _State:
    current = list(state[0])
    taken, _ = _take(prep, index, current, prep.offers[index].budget_left_fen)
    saved = 0
    for i, (take, _) in taken.items():
        current[i] -= take
        saved += take
    coupon = 1 if saved and prep.offers[index].kind == "coupon" else 0
    return tuple(current), (*state[1], index), state[2] + coupon


def _explain(prep: _Prepared, state: _State) -> tuple[list[list[str]], list[tuple[str, int]],
                                                       list[tuple[str, int, int, int]], list[str]]:
    """Replay the winning combination, writing down what each offer did and why."""
    notes: list[list[str]] = [[] for _ in prep.lines]
    applied: list[tuple[str, int]] = []
    budget: list[tuple[str, int, int, int]] = []
    unmet: list[str] = []
    current = list(prep.original)
    for index in state[1]:
        label = prep.labels[index]
        if _wanted(prep, index, current) is None:
            unmet.append(f"{label}: its condition is not met by this cart")
            continue
        taken, used = _take(prep, index, current, prep.offers[index].budget_left_fen)
        for i, (take, want) in sorted(taken.items()):
            if take == 0:
                notes[i].append(f"{label}: nothing on this line (it is at its margin floor)")
            elif take < want:
                notes[i].append(f"{label}: -{to_yuan(take)} (limited from -{to_yuan(want)} by the margin floor)")
            elif take:
                notes[i].append(f"{label}: -{to_yuan(take)}")
            current[i] -= take
        saved = sum(take for take, _ in taken.values())
        if saved:
            applied.append((label, saved))
            offer = prep.offers[index]
            budget.extend((offer.kind, offer.source_id, i, fen) for i, fen in sorted(used.items()))
        else:
            unmet.append(f"{label}: no saving left on this cart (margin floor)")
    return notes, applied, budget, unmet


def _combinations(offers: Sequence[Offer], rules: StackingRules, max_multi: int = 8) -> Iterable[tuple[int, ...]]:
    groups: dict[str, list[int]] = {}
    for index, offer in enumerate(offers):
        groups.setdefault(offer.group, []).append(index)
    names = sorted(groups)
    choices: list[list[tuple[int, ...]]] = []
    for name in names:
        members = groups[name]
        # Fuller combinations first: a good best is found early, so the bound in
        # best_quote prunes most of the rest without applying them.
        if name in rules.multi:
            if len(members) <= max_multi:
                opts = [c for r in range(len(members), -1, -1) for c in itertools.combinations(members, r)]
            else:
                opts = [tuple(members), *((m,) for m in members), ()]
        else:
            opts = [*((m,) for m in members), ()]
        choices.append(opts)
    for pick in itertools.product(*choices):
        used = [names[g] for g, c in enumerate(pick) if c]
        if all(rules.can_combine(a, b) for a, b in itertools.combinations(used, 2)):
            yield tuple(i for c in pick for i in c)


def _loss_note(line: CartLine) -> tuple[str, ...]:
    if not line.loss_fen:
        return ()
    return (f"below its floor: {to_yuan(line.loss_fen)} of the product's loss budget",)


def best_quote(user_id: int, lines: Sequence[CartLine], offers: Sequence[Offer], rules: StackingRules,
               skipped: Sequence[str] = (), *, required: set[str] | None = None) -> Quote:
    """Try every legal combination; return the cheapest for the user (ties: the
    one that uses fewer coupons, so the user keeps them). With ``required``
    (coupon codes), only combinations using all of them count.

    Combinations share prefixes (activities apply before coupons), so states
    are memoized by the offers applied so far; explanations are built only
    for the winner."""
    eligible = [[i for i, line in enumerate(lines)
                 if offer.eligible(line.product) and not (offer.activity is not None and line.explicit)]
                for offer in offers]
    live = [i for i in range(len(offers)) if eligible[i]]
    not_eligible = [f"{offers[i].label}: nothing in the cart is eligible" for i in range(len(offers))
                    if not eligible[i]]
    sub = [offers[i] for i in live]
    if not sub and not required:
        plain = tuple(QuoteLine(sku=line.product.sku, qty=line.qty, unit_fen=line.unit_fen,
                                amount_fen=line.unit_fen * line.qty, paid_fen=line.unit_fen * line.qty,
                                role=line.product.role, notes=_loss_note(line), loss_fen=line.loss_fen)
                      for line in lines)
        return Quote(user_id=user_id, lines=plain, applied=(), coupon_codes=(),
                     skipped=tuple([*skipped, *not_eligible]))
    prep = _Prepared(lines, sub, rules, [eligible[i] for i in live])
    memo: dict[tuple[int, ...], _State] = {(): (tuple(prep.original), (), 0)}
    best: tuple[tuple[int, int, int], tuple[int, ...], _State] | None = None
    for combo in _combinations(sub, rules):
        if required and not required <= {sub[i].code for i in combo}:
            continue
        ordered = tuple(sorted(combo, key=prep.order.__getitem__))
        state = memo.get(ordered)
        if state is None:
            cut = len(ordered)
            while ordered[:cut] not in memo:
                cut -= 1
            state = memo[ordered[:cut]]
            if best is not None and sum(state[0]) - _bound(prep, state[0], ordered[cut:]) >= best[0][0]:
                continue  # cannot beat the best so far, and a tie would only use more coupons
            for n in range(cut, len(ordered)):
                state = _apply(prep, state, ordered[n])
                memo[ordered[: n + 1]] = state
        rank = (sum(state[0]), state[2], len(combo))
        if best is None or rank < best[0]:
            best = (rank, combo, state)
    if best is None:
        missing = sorted(required or ())
        raise ValidationError(
            f"coupon(s) {', '.join(missing)} cannot be used together on this cart under the stacking rules "
            "(ws.promotions.rules()); use fewer coupons"
        )
    _, combo, state = best
    notes, applied, budget, unmet = _explain(prep, state)
    used_labels = {label for label, _ in applied}
    codes = tuple(code for i in combo if (code := sub[i].code) and prep.labels[i] in used_labels)
    left_out = [f"{prep.labels[i]}: cannot stack with the better combination" for i in range(len(sub))
                if i not in combo]
    qlines = tuple(
        QuoteLine(sku=line.product.sku, qty=line.qty, unit_fen=line.unit_fen, amount_fen=prep.original[i],
                  paid_fen=state[0][i], role=line.product.role, notes=(*_loss_note(line), *notes[i]),
                  loss_fen=line.loss_fen)
        for i, line in enumerate(lines)
    )
    return Quote(user_id=user_id, lines=qlines, applied=tuple(applied), coupon_codes=codes,
                 skipped=tuple([*skipped, *not_eligible, *unmet, *left_out]), budget_lines=tuple(budget))


# -- worst case (the margin guard) ---------------------------------------------------------
def _worst_discount(offer: Offer, product: Product, ref: Fraction) -> Fraction:
    """The largest per-unit discount ``offer`` can give ``product`` when a unit is
    worth ``ref``: amount-off coupons spread over the smallest cart that meets
    their threshold, percentages uncapped unless the cap binds for that cart."""
    if ref <= 0:
        return Fraction(0)
    if offer.activity is not None:
        return max(Fraction(0), ref - offer.activity.prices_fen[product.sku])
    t = offer.template
    assert t is not None
    smallest = max(Fraction(t.threshold_fen), ref)
    if t.kind == "free_item":
        return ref / max(1, t.min_qty)
    if t.kind == "amount_off":
        return min(ref, Fraction(t.amount_fen) * ref / smallest)
    d = ref * t.percent / 100
    if t.cap_fen is not None:
        d = min(d, Fraction(t.cap_fen) * ref / smallest)
    return min(ref, d)


def worst_unit(product: Product, combo: Sequence[Offer], rules: StackingRules) -> Fraction:
    """The lowest unit revenue ``product`` can reach under ``combo``, starting from
    its lowest base price (list price or any member price)."""
    orig = Fraction(min([product.price_fen, *product.member_prices_fen.values()]))
    unit = orig
    for offer in sorted(combo, key=lambda o: (o.priority, o.kind != "activity")):
        ref = unit if rules.base == "discounted" else orig
        unit -= min(unit, _worst_discount(offer, product, ref))
    return unit


def worst_combinations(new: Offer, others: Sequence[Offer], product: Product,
                       rules: StackingRules) -> Iterable[tuple[Offer, ...]]:
    """Every maximal legal combination containing ``new`` among offers eligible
    for ``product`` (more discounts are never better for the margin, so only
    maximal ones matter)."""
    pool = [o for o in others if o.eligible(product)]
    groups: dict[str, list[Offer]] = {}
    for o in pool:
        groups.setdefault(o.group, []).append(o)
    names = sorted(g for g in groups if g == new.group or rules.can_combine(g, new.group))
    choices: list[list[tuple[Offer, ...]]] = []
    for name in names:
        members = [m for m in groups[name] if m != new]
        if name == new.group:
            choices.append([tuple(members)] if name in rules.multi else [()])
        elif name in rules.multi:
            choices.append([(), tuple(members)])
        else:
            choices.append([(), *((m,) for m in members)])
    for pick in itertools.product(*choices):
        used = [names[i] for i, c in enumerate(pick) if c and names[i] != new.group]
        if all(rules.can_combine(a, b) for a, b in itertools.combinations([*used, new.group], 2)):
            yield (new, *(o for c in pick for o in c))
