"""The prepaid-card rules as versioned data, and the checks that apply them.

Stored value and gift cards are 单用途商业预付卡 under the 《单用途商业预付卡管理办法
（试行）》 (商务部令 2012 年第 9 号). Its limits are data, not code: a shop whose
local rules differ, or a later amendment, passes its own :class:`PrepaidRules`
to ``ws.wallet.configure(rules=...)``; the version string is stored with the
settings and shown in the liability report.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import attrs
from dateutil.relativedelta import relativedelta

from ..errors import CapExceeded, PolicyViolation, ValidationError
from ..money import to_yuan

__all__ = ["BUYERS", "ISSUER_TIERS", "PAYMENT_METHODS", "SPEND_RULES", "PrepaidRules", "check_purchase",
           "check_validity", "split_spend"]

#: How a payment from stored value is split between principal and bonus.
SPEND_RULES = ("proportional", "bonus_first", "principal_first")
#: 规模 / 集团 / 品牌 issuers: they hold different escrow ratios.
ISSUER_TIERS = ("scale", "group", "brand")
BUYERS = ("person", "organisation")
PAYMENT_METHODS = ("online", "bank_transfer", "cash", "card")


@attrs.frozen(kw_only=True)
class PrepaidRules:
    """Limits on prepaid value, in fen and years (defaults: 商务部令 2012 年第 9 号).

    - ``named_max_fen``: most a 记名 card (a member's wallet) may hold: 5,000 yuan.
    - ``anonymous_max_fen``: most a 不记名 card may hold: 1,000 yuan.
    - ``anonymous_min_validity_years``: a 不记名 card is valid at least 3 years;
      记名 cards have no expiry.
    - ``realname_anonymous_fen``: buying 不记名 cards worth this much at once
      (10,000 yuan) needs a real-name record.
    - ``bank_transfer_org_fen`` / ``bank_transfer_person_fen``: an organisation
      buying 5,000 yuan or a person 50,000 yuan at once pays by bank transfer.
    - ``escrow_ratios``: share of last quarter's prepaid balance an issuer of
      each tier keeps in the escrow account (资金存管): 20 / 30 / 40 %.
    """

    version: str = "MOFCOM-2012-9"
    named_max_fen: int = 500_000
    anonymous_max_fen: int = 100_000
    anonymous_min_validity_years: int = 3
    realname_anonymous_fen: int = 1_000_000
    bank_transfer_org_fen: int = 500_000
    bank_transfer_person_fen: int = 5_000_000
    escrow_ratios: Mapping[str, Decimal] = attrs.field(
        factory=lambda: {"scale": Decimal("0.20"), "group": Decimal("0.30"), "brand": Decimal("0.40")})

    def __attrs_post_init__(self) -> None:
        for name in ("named_max_fen", "anonymous_max_fen", "realname_anonymous_fen", "bank_transfer_org_fen",
                     "bank_transfer_person_fen", "anonymous_min_validity_years"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValidationError(f"PrepaidRules.{name} must be a positive int, got {value!r}")
        if set(self.escrow_ratios) != set(ISSUER_TIERS):
            raise ValidationError(f"PrepaidRules.escrow_ratios needs a ratio for each of {ISSUER_TIERS}")
        for tier, ratio in self.escrow_ratios.items():
            if not isinstance(ratio, Decimal) or not Decimal(0) <= ratio <= Decimal(1):
                raise ValidationError(f"escrow ratio for {tier!r} must be a Decimal between 0 and 1, got {ratio!r}")

    def max_fen(self, *, named: bool) -> int:
        return self.named_max_fen if named else self.anonymous_max_fen

    def to_dict(self) -> dict[str, object]:
        data = attrs.asdict(self)
        data["escrow_ratios"] = {k: str(v) for k, v in self.escrow_ratios.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PrepaidRules:
        values = dict(data)
        ratios = values.get("escrow_ratios")
        if isinstance(ratios, Mapping):
            values["escrow_ratios"] = {str(k): Decimal(str(v)) for k, v in ratios.items()}
        return cls(**values)  # type: ignore[arg-type]


def check_cap(rules: PrepaidRules, *, named: bool, balance_fen: int, adding_fen: int, what: str) -> None:
    """Refuse a top-up that would take a card above its legal maximum."""
    cap = rules.max_fen(named=named)
    if balance_fen + adding_fen > cap:
        kind = "a named (记名)" if named else "an anonymous (不记名)"
        raise CapExceeded(
            f"{what} would take {kind} card to {to_yuan(balance_fen + adding_fen)} yuan; the prepaid-card rules "
            f"({rules.version}) allow at most {to_yuan(cap)} yuan. Top up at most {to_yuan(max(0, cap - balance_fen))}"
        )


def check_purchase(rules: PrepaidRules, *, total_fen: int, named: bool, buyer: str, method: str,
                   real_name: str | None) -> None:
    """The checks on one purchase of prepaid value (a recharge or a sale of cards)."""
    if buyer not in BUYERS:
        raise ValidationError(f"buyer={buyer!r} is not one of {', '.join(BUYERS)}")
    if method not in PAYMENT_METHODS:
        raise ValidationError(f"method={method!r} is not one of {', '.join(PAYMENT_METHODS)}")
    if not named and total_fen >= rules.realname_anonymous_fen and not real_name:
        raise PolicyViolation(
            f"buying {to_yuan(total_fen)} yuan of anonymous (不记名) cards at once needs a real-name record "
            f"(from {to_yuan(rules.realname_anonymous_fen)} yuan); pass real_name=<your reference to the buyer's "
            "ID check>"
        )
    limit = rules.bank_transfer_org_fen if buyer == "organisation" else rules.bank_transfer_person_fen
    if total_fen >= limit and method != "bank_transfer":
        raise PolicyViolation(
            f"an {buyer} buying {to_yuan(total_fen)} yuan of prepaid value at once must pay by bank transfer "
            f"(from {to_yuan(limit)} yuan); pass method='bank_transfer'"
        )


def check_validity(rules: PrepaidRules, *, named: bool, issued: datetime, expires_at: datetime | None) -> None:
    """记名 cards never expire; 不记名 cards are valid at least the rules' minimum."""
    if named:
        if expires_at is not None:
            raise ValidationError("named (记名) cards have no expiry; leave expires_at=None")
        return
    if expires_at is None:
        return
    shortest = issued + relativedelta(years=rules.anonymous_min_validity_years)
    if expires_at < shortest:
        raise PolicyViolation(
            f"an anonymous (不记名) card must stay valid at least {rules.anonymous_min_validity_years} years, until "
            f"{shortest.isoformat()} or later; expires_at={expires_at.isoformat()} is too early"
        )


def split_spend(principal_fen: int, bonus_fen: int, amount_fen: int, rule: str) -> tuple[int, int]:
    """How much of ``amount_fen`` comes from principal and how much from bonus.

    ``proportional`` takes each in proportion to what is left (rounded to the
    nearest fen, half to principal); the other two empty one bucket first."""
    if amount_fen > principal_fen + bonus_fen:
        raise ValueError("amount exceeds the balance")
    if rule == "bonus_first":
        from_bonus = min(bonus_fen, amount_fen)
        return amount_fen - from_bonus, from_bonus
    if rule == "principal_first":
        from_principal = min(principal_fen, amount_fen)
        return from_principal, amount_fen - from_principal
    total = principal_fen + bonus_fen
    if total == 0:
        return 0, 0
    share = (2 * amount_fen * principal_fen + total) // (2 * total)
    share = max(amount_fen - bonus_fen, min(principal_fen, share))
    return share, amount_fen - share
