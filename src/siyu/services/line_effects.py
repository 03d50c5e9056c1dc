"""What each order line earned, and what a refund of it takes back.

An order earns points, growth value and commissions; they are split over its
lines when earned, so a refund reverses what the refunded units earned and not
a share of the whole order's (a traffic item that earned no points gives none
back). Within a line, a refund takes back the share of the line refunded: of
its units or of its money, whichever is larger (a free unit has no money), all
of it once the line or the order is refunded in full. Each refund takes
``floor(earned * share after) - floor(earned * share before)``, so partial
refunds never take more than the line earned and refunds adding up to the
whole order take back exactly everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from ..models.commerce import Order, OrderLine, Refund

__all__ = ["earned_back", "line_share", "reversal", "split"]


def split(total: int, weights: Sequence[int | Decimal | Fraction]) -> list[int]:
    """Split ``total`` (>= 0) in proportion to ``weights`` (>= 0; largest remainder,
    ties to the earlier line); a line of weight 0 gets nothing. All weights 0: all zeros."""
    if len(weights) == 1:
        return [total if total > 0 and weights[0] > 0 else 0]
    whole_numbers: list[int]
    if all(type(w) is int for w in weights):
        whole_numbers = [int(w) for w in weights]
    else:
        # Exact: scaled to one common denominator, then split in integers like the rest.
        exact = [Fraction(w) for w in weights]
        common = math.lcm(*(f.denominator for f in exact))
        whole_numbers = [f.numerator * (common // f.denominator) for f in exact]
    whole = sum(whole_numbers)
    if whole <= 0 or total <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in whole_numbers]
    rest = total - sum(shares)
    if rest:
        for i in sorted(range(len(weights)), key=lambda i: (-(total * whole_numbers[i] % whole), i))[:rest]:
            shares[i] += 1
    return shares


def line_share(line: OrderLine, refunded_fen: int, refunded_qty: int) -> Fraction:
    """The share of ``line`` refunded once this much money and these units came back."""
    if refunded_qty >= line.qty or (line.paid_fen > 0 and refunded_fen >= line.paid_fen):
        return Fraction(1)
    part = Fraction(refunded_qty, line.qty)
    if line.paid_fen > 0:
        part = max(part, Fraction(refunded_fen, line.paid_fen))
    return part


def reversal(order: Order, earned: Sequence[int], plan: Sequence[tuple[int, int, int]], full: bool) -> list[int]:
    """Per line, what this refund (``plan``: ``(line_no, qty, fen)``) takes back of
    ``earned`` (per line), given what earlier refunds of the order took."""
    adds = {n: (qty, fen) for n, qty, fen in plan}
    out = []
    for n, (line, amount) in enumerate(zip(order.lines, earned, strict=True)):
        qty, fen = adds.get(n, (0, 0))
        before = math.floor(amount * line_share(line, line.refunded_fen, line.refunded_qty))
        after_share = Fraction(1) if full else line_share(line, line.refunded_fen + fen, line.refunded_qty + qty)
        after = math.floor(amount * after_share)
        out.append(after - before)
    return out


def earned_back(order: Order, earlier: Sequence[Refund], plan: Sequence[tuple[int, int, int]],
                full: bool) -> tuple[int, int, tuple[tuple[int, int, int], ...]]:
    """What a refund takes back of the order's points and growth: ``(points,
    growth, per line (line_no, points, growth))``. Orders recorded before lines
    kept theirs take a share of the order's by money, less what ``earlier``
    refunds took (no per-line account)."""
    if all(ln.points is not None and ln.growth is not None for ln in order.lines):
        points = reversal(order, [ln.points or 0 for ln in order.lines], plan, full)
        growth = reversal(order, [ln.growth or 0 for ln in order.lines], plan, full)
        effects = tuple((n, p, g) for n, (p, g) in enumerate(zip(points, growth, strict=True)) if p or g)
        return sum(points), sum(growth), effects
    after = order.refunded_fen + sum(fen for _, _, fen in plan)
    points_target = order.points if full else order.points * after // max(1, order.total_fen)
    growth_target = order.growth if full else order.growth * after // max(1, order.total_fen)
    points_done = sum(r.points_reversed + r.points_shortfall for r in earlier)
    growth_done = sum(r.growth_reversed for r in earlier)
    return points_target - points_done, growth_target - growth_done, ()
