"""Gift cards (礼品卡): prepaid codes, sold, then spent into a wallet or on an order.

A code is 16 characters of Crockford base32 (no I, L, O or U, so it reads
aloud), 75 random bits and a check character: a mistyped code is refused
before any lookup, and guessing a valid one is hopeless. The shop sees the
full code once, when the card is issued; storage keeps only its SHA-256 hash
and the last four characters.

Cards are issued ``inactive`` with a zero balance; the sale (``activate``) puts
their value on them and makes them usable. The
first member to use a card owns it; another member is refused. Anonymous
(不记名) cards hold at most 1,000 yuan and stay valid at least three years;
named (记名) cards hold at most 5,000 yuan and never expire (the prepaid rules
of ``ws.wallet.settings()``). Every balance change is a ledger entry with the
balance before and after.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from .._clock import aware
from .._validation import check_int, check_key, check_many, check_text
from ..errors import InsufficientFunds, NotFound, PolicyViolation, ValidationError
from ..events import GiftCardChanged
from ..models.wallet import GiftCard, GiftCardEntry
from ..money import Money, to_fen, to_yuan
from ..services._common import require_user
from .rules import check_cap, check_purchase, check_validity

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .stored_value import Wallet

__all__ = ["GiftCards", "check_code", "new_code"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
# Crockford's readings of the letters people confuse.
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})


def _check_char(body: str) -> str:
    # Odd weights are invertible mod 32: every single-character typo changes the sum,
    # and so does a swap of two neighbours unless their values differ by exactly 16.
    total = sum((2 * i + 1) * _VALUE[c] for i, c in enumerate(body))
    return _ALPHABET[total % 32]


def new_code() -> str:
    """A fresh card code, ``XXXX-XXXX-XXXX-XXXX``."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(15))
    raw = body + _check_char(body)
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def check_code(code: object) -> str:
    """The normalized code (upper case, no dashes or spaces), or ValidationError."""
    if not isinstance(code, str):
        raise ValidationError(f"a gift card code is a string like 'ABCD-EFGH-JKMN-PQR7', got {type(code).__name__}")
    raw = code.upper().replace("-", "").replace(" ", "").translate(_ALIASES)
    if len(raw) != 16 or any(c not in _VALUE for c in raw) or _check_char(raw[:15]) != raw[15]:
        raise ValidationError("that is not a valid gift card code (16 characters, the last one a check); "
                              "check it for typos")
    return raw


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class GiftCards:
    """``ws.gift_cards``: issue, sell (activate), redeem, look up."""

    name = "gift_cards"

    def __init__(self, uow: UnitOfWork, *, wallet: Wallet) -> None:
        self._uow = uow
        self._wallet = wallet

    def issue(self, value: Money, *, count: int = 1, named: bool = False, expires_at: datetime | None = None,
              batch: str = "") -> list[GiftCard]:
        """Create ``count`` inactive cards of ``value`` yuan each; the returned cards carry
        their ``code`` (shown this once). Anonymous cards may hold at most the
        anonymous cap and must not expire before the minimum validity; named cards
        take the named cap and no expiry."""
        fen = to_fen(value, name="value")
        if fen <= 0:
            raise ValidationError("value must be more than 0")
        count = check_int(count, "count", minimum=1, maximum=10_000)
        batch = check_text(batch, "batch", max_length=64, allow_empty=True)
        now = self._uow.now()
        if expires_at is not None:
            expires_at = aware(expires_at, "expires_at")
        with self._uow.write() as tx:
            rules = self._wallet._settings(tx).rules
            check_cap(rules, named=bool(named), balance_fen=0, adding_fen=fen, what=f"a card of {to_yuan(fen)} yuan")
            check_validity(rules, named=bool(named), issued=now, expires_at=expires_at)
            cards = []
            for _ in range(count):
                code = new_code()
                raw = check_code(code)
                cards.append((GiftCard(id=0, last4=raw[-4:], value_fen=fen, balance_fen=0, named=bool(named),
                                       status="inactive", owner_id=None, expires_at=expires_at, created_at=now,
                                       batch=batch, code=code), _hash(raw)))
            ids = tx.wallet.add_cards(cards)
            for cid in ids:
                tx.emit(GiftCardChanged(at=now, card_id=cid, kind="issued", amount_fen=0, balance_fen=0,
                                        user_id=None))
        return [attrs.evolve(card, id=cid) for cid, (card, _) in zip(ids, cards, strict=True)]

    def activate(self, codes: Iterable[str], *, buyer: str = "person", method: str = "online",
                 real_name: str | None = None) -> list[GiftCard]:
        """Sell cards: they become usable. One call is one purchase, so the prepaid
        rules apply to its total: anonymous cards worth 10,000 yuan or more need
        ``real_name`` (your reference to the buyer's ID check: siyu does not keep ID
        numbers), and an ``organisation`` buying 5,000 or a ``person`` 50,000 yuan
        must pay with ``method="bank_transfer"``."""
        raws = [check_code(c) for c in ([codes] if isinstance(codes, str) else check_many(codes, "codes", "['GC-1']"))]
        if not raws:
            raise ValidationError("give at least one code to activate")
        if real_name is not None:
            real_name = check_text(real_name, "real_name", max_length=128)
        now = self._uow.now()
        with self._uow.write() as tx:
            cards = [self._card(tx, raw) for raw in raws]
            fresh = [c for c in cards if c.status == "inactive"]
            check_purchase(self._wallet._settings(tx).rules, total_fen=sum(c.value_fen for c in fresh),
                           named=all(c.named for c in fresh), buyer=buyer, method=method, real_name=real_name)
            tx.wallet.activate_cards([c.id for c in fresh], now)
            for card in fresh:
                # The sale puts the value on the card: its ledger then sums to its balance.
                sold = tx.wallet.card_apply(card.id, card.value_fen, kind="sold", user_id=None,
                                            ref=f"sale|{buyer}|{method}|{real_name or ''}", at=now)
                assert sold is not None
                tx.emit(GiftCardChanged(at=now, card_id=card.id, kind="sold", amount_fen=card.value_fen,
                                        balance_fen=sold.balance_after_fen, user_id=None))
            out = [tx.wallet.card(c.id) for c in cards]
        return [c for c in out if c is not None]

    def get(self, code: str) -> GiftCard:
        """The card of ``code`` (its balance, owner, expiry)."""
        with self._uow.read() as tx:
            return self._card(tx, check_code(code))

    def history(self, code: str) -> list[GiftCardEntry]:
        """The card's balance changes, each with the balance before and after."""
        with self._uow.read() as tx:
            return tx.wallet.card_entries(self._card(tx, check_code(code)).id)

    def of(self, user_id: int) -> list[GiftCard]:
        """The cards a member owns."""
        with self._uow.read() as tx:
            return tx.wallet.cards(owner_id=require_user(tx, user_id, active=False))

    @staticmethod
    def _card(tx: Transaction, raw: str) -> GiftCard:
        card = tx.wallet.card_by_hash(_hash(raw))
        if card is None:
            raise NotFound(f"no gift card ending in {raw[-4:]}")
        return card

    def redeem(self, code: str, user_id: int, *, amount: Money | None = None, order_id: int | None = None,
               key: str | None = None) -> GiftCardEntry:
        """Spend a card: ``amount`` yuan of it (default: all that is left) into the
        member's wallet as principal, or, with ``order_id``, directly against that
        order. The first redemption makes ``user_id`` the card's owner; anyone else is
        refused afterwards. Inactive (unsold), void and expired cards are refused.
        ``key`` makes it idempotent (a retry returns the first entry)."""
        raw = check_code(code)
        fen = None if amount is None else to_fen(amount, name="amount")
        if fen is not None and fen <= 0:
            raise ValidationError("amount must be more than 0")
        if order_id is not None:
            order_id = check_int(order_id, "order_id", minimum=1)
        if key is not None:
            key = check_key(key)
        now = self._uow.now()
        with self._uow.write() as tx:
            uid = require_user(tx, user_id)
            card = self._card(tx, raw)
            ref = f"card:{card.id}:{key}" if key else ""
            if key:
                for entry in tx.wallet.card_entries(card.id):
                    if entry.ref.endswith(f"|{ref}"):
                        return entry
            if card.status != "active":
                raise PolicyViolation(
                    f"gift card ...{card.last4} is {card.status}; only sold (active) cards can be used")
            if card.expires_at is not None and card.expires_at <= now:
                raise PolicyViolation(f"gift card ...{card.last4} expired on {card.expires_at.isoformat()}")
            if not tx.wallet.claim_card(card.id, uid):
                raise PolicyViolation(f"gift card ...{card.last4} belongs to another member")
            want = card.balance_fen if fen is None else fen
            if want <= 0:
                raise InsufficientFunds(f"gift card ...{card.last4} has nothing left", requested_fen=0,
                                        available_fen=0)
            target = f"order:{order_id}" if order_id is not None else "wallet"
            taken = tx.wallet.card_apply(card.id, -want, kind="redeem", user_id=uid, ref=f"{target}|{ref}", at=now)
            if taken is None:
                left = tx.wallet.card(card.id)
                raise InsufficientFunds(
                    f"gift card ...{card.last4} has {to_yuan(left.balance_fen if left else 0)} yuan left, "
                    f"{to_yuan(want)} was asked for", requested_fen=want,
                    available_fen=left.balance_fen if left else 0)
            if order_id is None:
                self._wallet.credit_in(tx, uid, want, ref=f"card:{card.id}", now=now)
            tx.emit(GiftCardChanged(at=now, card_id=card.id, kind="redeemed", amount_fen=-want,
                                    balance_fen=taken.balance_after_fen, user_id=uid))
        return taken
