"""分销 distribution commissions, inside the legal guards.

China's 《禁止传销条例》 (2005) treats three things as pyramid selling: paying
for recruiting people (拉人头), entry fees (入门费, including buying goods to
join) and paying uplines on their downline's sales (团队计酬). Courts treat
schemes of 3 or more levels as criminal pyramid selling. So here:

- a commission exists only because of a real, paid order — never because
  someone was recruited; becoming a distributor costs nothing (a distributor
  is simply anyone with invitees — no purchase unlocks commissions);
- at most **2 paid levels** (the buyer's inviter and that inviter's inviter)
  unless ``accept_pyramid_selling_risk=True`` is passed explicitly;
- each commission is computed on one order for the buyer's own upline only,
  never on a downline's total ("team") sales;
- commissions stay *pending* for the return window, then settle; a refund
  reduces or voids them, before or after settlement, by what the refunded
  lines earned (each entry is split over the order's lines when earned);
- traffic products (引流品, role ``"traffic"``) earn nothing by default.

Orders arrive as :class:`~siyu.events.OrderRecorded` /
:class:`~siyu.events.OrderRefunded` events; each is processed once (keyed
by order id / refund id), so a redelivered event changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import attrs

from ..._clock import from_us_required, to_us
from ..._validation import check_id, check_many
from ...errors import PyramidSchemeRisk, ValidationError
from ...events import CommissionAdjusted, CommissionRecorded, CommissionSettled, OrderRecorded, OrderRefunded
from ...models.referrals import CommissionEntry, CommissionLine, CommissionSettings
from ...money import to_yuan
from ...storage.contracts.fission import CommissionRow
from .._common import check_text, require_user
from ..line_effects import split

if TYPE_CHECKING:
    from ..._uow import UnitOfWork
    from ...storage.base import Transaction
    from ..referrals import Referrals

__all__ = ["LEGAL_MAX_LEVELS", "Commissions"]

#: Paid levels allowed without an explicit override (see the module docstring).
LEGAL_MAX_LEVELS = 2
_KEY = "referrals.commissions"
_PPM = 1_000_000


def _rate(value: object, level: int) -> Decimal:
    if isinstance(value, float | bool):
        raise ValidationError(f"level {level} rate: give a Decimal or a str like '0.10', not {value!r}")
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"level {level} rate {value!r} is not a number") from None
    if not Decimal(0) < rate < Decimal(1):
        raise ValidationError(f"level {level} rate must be between 0 and 1 (e.g. '0.10' for 10%), got {rate}")
    if (rate * _PPM) != int(rate * _PPM):
        raise ValidationError(f"level {level} rate {rate} has more precision than one part per million")
    return rate


class Commissions:
    """``ws.referrals.commissions``: configure rates, read ledgers, settle."""

    def __init__(self, uow: UnitOfWork, referrals: Referrals) -> None:
        self._uow = uow
        self._referrals = referrals

    # -- settings ------------------------------------------------------------------------------
    def settings(self) -> CommissionSettings:
        with self._uow.read() as tx:
            return self._settings(tx)

    @staticmethod
    def _settings(tx: Transaction) -> CommissionSettings:
        raw = tx.meta.get(_KEY)
        if raw is None:
            return CommissionSettings()
        data = json.loads(raw)
        return CommissionSettings(
            rates=tuple(Decimal(r) / _PPM for r in data["rates_ppm"]),
            return_window=timedelta(seconds=data["return_window_s"]),
            excluded_roles=tuple(data["excluded_roles"]),
            pyramid_risk_accepted=bool(data["pyramid_risk_accepted"]),
        )

    def configure(
        self,
        *,
        rates: Sequence[Decimal | str | int] | None = None,
        return_window: timedelta | None = None,
        excluded_roles: Iterable[str] | None = None,
        accept_pyramid_selling_risk: bool = False,
    ) -> CommissionSettings:
        """Set the commission rules; arguments not given keep their value.

        ``rates``: one rate per paid level, level 1 (the buyer's inviter)
        first, e.g. ``["0.10", "0.05"]``; an empty list turns commissions off.
        More than :data:`LEGAL_MAX_LEVELS` (2) rates raise
        :class:`~siyu.errors.PyramidSchemeRisk` unless
        ``accept_pyramid_selling_risk=True``.

        ``accept_pyramid_selling_risk``: **legal risk.** Paying commissions on
        3 or more levels is treated as pyramid selling (传销) under
        《禁止传销条例》 Art. 7, and organisers of schemes with ≥ 3 levels and
        ≥ 30 participants face criminal liability; WeChat also bans
        multi-level distribution on its platforms. Pass ``True`` only after
        your lawyer has confirmed the scheme is lawful where you operate.
        """
        with self._uow.write() as tx:
            current = self._settings(tx)
            new_rates = current.rates if rates is None else tuple(
                _rate(r, i) for i, r in enumerate(check_many(rates, "rates", "['0.10', '0.05']"), 1)
            )
            if sum(new_rates, Decimal(0)) >= 1:
                raise ValidationError(f"the rates add up to {sum(new_rates)}: commissions would exceed the sale")
            if not isinstance(accept_pyramid_selling_risk, bool):
                raise ValidationError("accept_pyramid_selling_risk must be True or False")
            if len(new_rates) > LEGAL_MAX_LEVELS and not accept_pyramid_selling_risk:
                raise PyramidSchemeRisk(
                    f"{len(new_rates)} paid levels requested; at most {LEGAL_MAX_LEVELS} are allowed because "
                    "commissions on 3+ levels are treated as pyramid selling (传销) under 《禁止传销条例》. "
                    "Use 1 or 2 rates, or pass accept_pyramid_selling_risk=True after legal review"
                )
            window = current.return_window if return_window is None else return_window
            if not isinstance(window, timedelta) or window < timedelta():
                raise ValidationError(f"return_window must be a timedelta >= 0, got {return_window!r}")
            roles = current.excluded_roles if excluded_roles is None else tuple(
                check_text(r, "role", max_length=32) for r in check_many(excluded_roles, "excluded_roles", "['staff']"))
            settings = CommissionSettings(rates=new_rates, return_window=window, excluded_roles=roles,
                                          pyramid_risk_accepted=accept_pyramid_selling_risk and
                                          len(new_rates) > LEGAL_MAX_LEVELS)
            tx.meta.set(_KEY, json.dumps({
                "rates_ppm": [int(r * _PPM) for r in settings.rates],
                "return_window_s": settings.return_window.total_seconds(),
                "excluded_roles": list(settings.excluded_roles),
                "pyramid_risk_accepted": settings.pyramid_risk_accepted,
            }))
        return settings

    # -- order events ------------------------------------------------------------------------------
    def _on_order(self, tx: Transaction, event: OrderRecorded) -> None:
        if not tx.fission.claim_event("order", event.order_id, event.at):
            return
        settings = self._settings(tx)
        eligible = [(n if line.line_no is None else line.line_no, line.paid_fen) for n, line in enumerate(event.lines)
                    if line.role not in settings.excluded_roles and line.paid_fen > 0]
        base = sum(fen for _, fen in eligible)
        if base <= 0 or not settings.rates:
            return
        rows: list[CommissionRow] = []
        current = event.user_id
        for level, rate in enumerate(settings.rates, 1):
            binding = tx.referrals.binding(current)
            if binding is None or binding.status != "active":
                break  # a held binding earns nothing, and nothing above it does either
            ppm = int(rate * _PPM)
            amount = base * ppm // _PPM
            if amount > 0:
                # The basis per line, recorded here where it is computed, is what refunds take back.
                shares = split(amount, [fen for _, fen in eligible])
                rows.append(CommissionRow(
                    id=0, distributor_id=binding.inviter_id, order_id=event.order_id, buyer_id=event.user_id,
                    level=level, base_fen=base, rate_ppm=ppm, original_fen=amount, amount_fen=amount,
                    refunded_base_fen=0, status="pending", created_at=event.at,
                    settle_after=event.paid_at + settings.return_window, settled_at=None,
                    excluded_roles=settings.excluded_roles,
                    lines=tuple((n, fen, share, 0) for (n, fen), share in zip(eligible, shares, strict=True))))
            current = binding.inviter_id
        ids = tx.fission.add_commissions(rows)
        for entry_id, row in zip(ids, rows, strict=False):
            tx.emit(CommissionRecorded(at=event.at, entry_id=entry_id, distributor_id=row.distributor_id,
                                       order_id=row.order_id, level=row.level, amount_fen=row.amount_fen))

    def _on_refund(self, tx: Transaction, event: OrderRefunded) -> None:
        """Reduce the order's commissions; the caller made sure the refund is new.

        Each refunded line takes back what it earned: what is left of its own part
        of the entry is the rate times the line's money not refunded (recomputed
        from the line's cumulative refunded money, so a line refunded in full
        leaves nothing and rounding never leaves a fen behind), never more than
        the line earned; lines not refunded keep theirs. Entries from before lines were kept
        are reduced over the whole entry, with the roles excluded when the
        commission was earned: a configuration changed since must not move what
        was earned."""
        for row in tx.fission.commissions(order_id=event.order_id):
            lines: tuple[tuple[int, int, int, int], ...] | None = None
            excluded = CommissionSettings().excluded_roles if row.excluded_roles is None else row.excluded_roles
            if row.lines is not None:
                lines = _refund_lines(row.lines, event, excluded)
                refunded_total = sum(refunded for _, _, _, refunded in lines)
                target = sum(_line_left(amount, base, refunded, row.rate_ppm) for _, base, amount, refunded in lines)
            else:
                if event.full:
                    refunded = row.base_fen
                elif event.lines:
                    refunded = sum(line.paid_fen for line in event.lines if line.role not in excluded)
                else:
                    refunded = row.base_fen * event.amount_fen // max(event.order_total_fen, 1)
                refunded_total = min(row.base_fen, row.refunded_base_fen + refunded)
                target = (row.base_fen - refunded_total) * row.rate_ppm // _PPM
            delta = target - row.amount_fen
            if delta == 0 and refunded_total == row.refunded_base_fen:
                continue
            status = "voided" if target == 0 else row.status
            tx.fission.update_commission(row.id, amount_fen=target, refunded_base_fen=refunded_total, status=status,
                                         **({} if lines is None else {"lines": lines}))
            tx.fission.add_adjustment(event.refund_id, row.id, delta, event.at)
            tx.emit(CommissionAdjusted(at=event.at, entry_id=row.id, distributor_id=row.distributor_id,
                                       order_id=row.order_id, refund_id=event.refund_id, delta_fen=delta,
                                       remaining_fen=target))

    # -- settlement and ledgers ------------------------------------------------------------------
    def settle_due(self) -> list[CommissionEntry]:
        """Settle every pending commission whose return window is over. Idempotent;
        run it daily. Returns what this call settled."""
        now = self._uow.now()
        with self._uow.write() as tx:
            due = tx.fission.commissions(status="pending", due_by=now)
            # As storage keeps it (microseconds, UTC), so the entries returned equal a later read.
            settled_at = from_us_required(to_us(now))
            for row in due:
                tx.fission.update_commission(row.id, status="settled", settled_at=settled_at)
                tx.emit(CommissionSettled(at=now, entry_id=row.id, distributor_id=row.distributor_id,
                                          amount_fen=row.amount_fen))
            # Built from the rows just updated, not by re-reading every settled commission ever.
            return [_entry(attrs.evolve(row, status="settled", settled_at=settled_at)) for row in due]

    def ledger(self, distributor_id: int, *, status: str | None = None) -> list[CommissionEntry]:
        """A distributor's commissions, oldest first (``status``: ``"pending"``,
        ``"settled"`` or ``"voided"``)."""
        if status not in (None, "pending", "settled", "voided"):
            raise ValidationError(f"status must be 'pending', 'settled' or 'voided', got {status!r}")
        with self._uow.read() as tx:
            uid = require_user(tx, distributor_id, active=False)
            return [_entry(r) for r in tx.fission.commissions(distributor_id=uid, status=status)]

    def of_order(self, order_id: int) -> list[CommissionEntry]:
        check_id(order_id, "order_id")
        with self._uow.read() as tx:
            return [_entry(r) for r in tx.fission.commissions(order_id=order_id)]

    def balance(self, distributor_id: int) -> dict[str, Decimal]:
        """``{"pending": ..., "settled": ..., "voided": ...}`` in yuan; ``voided``
        is what refunds took back (from pending and settled commissions)."""
        with self._uow.read() as tx:
            uid = require_user(tx, distributor_id, active=False)
            rows = tx.fission.commissions(distributor_id=uid)
        return {
            "pending": to_yuan(sum(r.amount_fen for r in rows if r.status == "pending")),
            "settled": to_yuan(sum(r.amount_fen for r in rows if r.status == "settled")),
            "voided": to_yuan(sum(r.original_fen - r.amount_fen for r in rows)),
        }


def _line_left(amount: int, base: int, refunded: int, rate_ppm: int) -> int:
    """What is left of a line's ``amount`` once ``refunded`` of its ``base`` came back."""
    return amount if refunded == 0 else min(amount, (base - refunded) * rate_ppm // _PPM)


def _refund_lines(lines: tuple[tuple[int, int, int, int], ...], event: OrderRefunded,
                  excluded: tuple[str, ...]) -> tuple[tuple[int, int, int, int], ...]:
    """The entry's lines with this refund's money added to each line's refunded base."""
    if event.full:
        return tuple((n, base, amount, base) for n, base, amount, _ in lines)
    back: dict[int, int] = {}
    loose = 0
    for line in event.lines:
        if line.line_no is None:
            loose += 0 if line.role in excluded else line.paid_fen
        else:
            back[line.line_no] = back.get(line.line_no, 0) + line.paid_fen
    if any(line.line_no is None for line in event.lines) or not event.lines:
        # A refund event without line numbers (from an older siyu): its money is spread over the
        # entry's lines by what is left of them, as the order's own refunds spread an amount.
        money = loose if event.lines else \
            sum(base for _, base, _, _ in lines) * event.amount_fen // max(event.order_total_fen, 1)
        left = [base - refunded for _, base, _, refunded in lines]
        for (n, *_), fen in zip(lines, split(min(money, sum(left)), left), strict=True):
            back[n] = back.get(n, 0) + fen
    return tuple((n, base, amount, min(base, refunded + back.get(n, 0))) for n, base, amount, refunded in lines)


def _entry(row: CommissionRow) -> CommissionEntry:
    return CommissionEntry(
        id=row.id, distributor_id=row.distributor_id, order_id=row.order_id, buyer_id=row.buyer_id,
        level=row.level, base=to_yuan(row.base_fen), rate=Decimal(row.rate_ppm) / _PPM,
        original=to_yuan(row.original_fen), amount=to_yuan(row.amount_fen), status=row.status,
        created_at=row.created_at, settle_after=row.settle_after, settled_at=row.settled_at,
        lines=tuple(CommissionLine(line_no=n, base=to_yuan(base), earned=to_yuan(amount), refunded=to_yuan(refunded),
                                   amount=to_yuan(_line_left(amount, base, refunded, row.rate_ppm)))
                    for n, base, amount, refunded in row.lines or ()),
    )

