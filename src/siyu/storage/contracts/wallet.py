"""The member wallet: stored value, gift cards and the points mall's rewards.

Balances move only through conditional updates (:meth:`WalletStore.apply`,
:meth:`WalletStore.card_apply`, :meth:`PointsMallStore.take_stock`) that
refuse to go below zero and take the row's lock, so they stay right when
several writers run at once without any wider lock.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from ...models.wallet import (
    GiftCard,
    GiftCardEntry,
    Recharge,
    RechargePlan,
    Redemption,
    Reward,
    WalletBalance,
    WalletEntry,
)

__all__ = ["PointsMallStore", "WalletStore"]


class WalletStore(abc.ABC):
    # -- recharge plans -------------------------------------------------------------
    @abc.abstractmethod
    def save_plan(self, plan: RechargePlan) -> int:
        """Insert a plan (``id`` 0) or update one; return its id."""

    @abc.abstractmethod
    def plan(self, name: str) -> RechargePlan | None: ...

    @abc.abstractmethod
    def plans(self) -> list[RechargePlan]: ...

    # -- accounts -------------------------------------------------------------------
    @abc.abstractmethod
    def balance(self, user_id: int, *, lock: bool = False) -> WalletBalance:
        """The member's balances (zero if the wallet was never used); ``lock`` holds
        the account row until the transaction ends (creating it if missing)."""

    @abc.abstractmethod
    def apply(self, user_id: int, principal_fen: int, bonus_fen: int, *, kind: str, ref: str, at: datetime,
              key: str | None = None) -> WalletEntry | None:
        """Add the signed deltas to the account and append the ledger entry, atomically;
        ``None`` (and nothing written) if either balance would go below zero."""

    @abc.abstractmethod
    def entry_by_key(self, key: str) -> WalletEntry | None: ...

    @abc.abstractmethod
    def entries(self, user_id: int) -> list[WalletEntry]:
        """The member's ledger, oldest first."""

    @abc.abstractmethod
    def entries_by_ref(self, ref: str) -> list[WalletEntry]:
        """Entries written for ``ref`` (an order, a card ...), oldest first."""

    @abc.abstractmethod
    def totals(self) -> tuple[int, int]:
        """``(principal, bonus)`` outstanding over every account."""

    @abc.abstractmethod
    def ledger_totals(self, before: datetime | None = None) -> tuple[int, int]:
        """``(principal, bonus)`` summed over ledger entries (those before ``before`` only)."""

    # -- recharges ------------------------------------------------------------------
    @abc.abstractmethod
    def add_recharge(self, recharge: Recharge) -> int | None:
        """Insert a pending recharge; ``None`` if its ``payment_id`` exists already."""

    @abc.abstractmethod
    def recharge(self, payment_id: str) -> Recharge | None: ...

    @abc.abstractmethod
    def recharges(self, user_id: int) -> list[Recharge]: ...

    @abc.abstractmethod
    def settle_recharge(self, payment_id: str, *, status: str, at: datetime, note: str = "") -> bool:
        """Move a ``pending`` recharge to ``status``; ``False`` if it was not pending
        (another delivery of the same callback got there first)."""

    # -- gift cards -----------------------------------------------------------------
    @abc.abstractmethod
    def add_cards(self, cards: Sequence[tuple[GiftCard, str]]) -> list[int]:
        """Insert cards with the hash of each code; return their ids."""

    @abc.abstractmethod
    def card(self, card_id: int) -> GiftCard | None: ...

    @abc.abstractmethod
    def card_by_hash(self, code_hash: str) -> GiftCard | None: ...

    @abc.abstractmethod
    def cards(self, *, batch: str | None = None, owner_id: int | None = None) -> list[GiftCard]: ...

    @abc.abstractmethod
    def activate_cards(self, card_ids: Sequence[int], at: datetime) -> int:
        """Mark ``inactive`` cards ``active`` (sold at ``at``); return how many changed."""

    @abc.abstractmethod
    def claim_card(self, card_id: int, user_id: int) -> bool:
        """Make ``user_id`` the owner of an unowned card, or confirm they own it already;
        ``False`` if another member owns it."""

    @abc.abstractmethod
    def move_cards(self, card_ids: Sequence[int], owner_id: int) -> None:
        """Give the cards a new owner (users merged or unmerged)."""

    @abc.abstractmethod
    def card_apply(self, card_id: int, amount_fen: int, *, kind: str, user_id: int | None, ref: str,
                   at: datetime) -> GiftCardEntry | None:
        """Add signed ``amount_fen`` to an active card's balance with a ledger entry;
        ``None`` (nothing written) if the balance would go below zero."""

    @abc.abstractmethod
    def card_entries(self, card_id: int) -> list[GiftCardEntry]: ...

    @abc.abstractmethod
    def card_totals(self, before: datetime | None = None) -> int:
        """Balances outstanding on active cards (as of ``before``, from their ledgers)."""


class PointsMallStore(abc.ABC):
    @abc.abstractmethod
    def save_reward(self, reward: Reward) -> int:
        """Insert a reward (``id`` 0) or update its terms; return its id."""

    @abc.abstractmethod
    def reward(self, reward_id: int) -> Reward | None: ...

    @abc.abstractmethod
    def reward_by_name(self, name: str) -> Reward | None: ...

    @abc.abstractmethod
    def rewards(self) -> list[Reward]: ...

    @abc.abstractmethod
    def take_stock(self, reward_id: int, qty: int) -> bool:
        """Count ``qty`` more redeemed if the stock allows it (unlimited always does)."""

    @abc.abstractmethod
    def give_stock(self, reward_id: int, qty: int) -> None: ...

    @abc.abstractmethod
    def add_redemption(self, redemption: Redemption) -> int: ...

    @abc.abstractmethod
    def redemption(self, redemption_id: int) -> Redemption | None: ...

    @abc.abstractmethod
    def redemption_by_key(self, key: str) -> Redemption | None: ...

    @abc.abstractmethod
    def redemptions(self, *, user_id: int | None = None, reward_id: int | None = None,
                    since: datetime | None = None) -> list[Redemption]: ...

    @abc.abstractmethod
    def move_redemption(self, redemption_id: int, *, from_status: Sequence[str], to_status: str, at: datetime,
                        refund_entry_id: int | None = None, coupon_codes: Sequence[str] = (),
                        note: str = "") -> bool:
        """Change the status if it is one of ``from_status``; ``False`` otherwise."""
