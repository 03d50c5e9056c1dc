"""The storage backend contract.

A backend is chosen by URL scheme and opened once per workspace. Every
service call runs inside one :class:`Transaction`: all its writes commit
together or not at all. A write transaction serializes with every other
writer that touches the same user (``tx.users.lock``), across processes,
and with writers of the same keys it names in :meth:`Transaction.serialize`;
writes about different people never wait for each other.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from .._url import StorageURL
from .contracts import IdempotencyStore, MetaStore, PointsStore, TagStore, UserStore
from .contracts.activities import BargainStore, DrawStore, FlashSaleStore
from .contracts.analytics import AnalyticsStore
from .contracts.benefits import BenefitStore
from .contracts.campaigns import CampaignStore
from .contracts.channels import ChannelStore
from .contracts.commerce import CouponStore, OrderStore, ProductStore, TierStore
from .contracts.community import GroupStore
from .contracts.event_log import EventLogStore
from .contracts.fission import FissionStore
from .contracts.lifecycle import ActivityStore, LifecycleStore, TagRuleStore
from .contracts.presale import PresaleStore
from .contracts.privacy import PrivacyStore
from .contracts.referrals import ReferralStore
from .contracts.segments import SegmentStore
from .contracts.staff import StaffStore
from .contracts.wallet import PointsMallStore, WalletStore
from .holders import Holders

if TYPE_CHECKING:
    from ..events import Event
    from ..privacy.keys import FieldCipher

__all__ = ["Backend", "Capability", "Transaction"]


class Capability:
    """Names of optional backend features; the contract suite checks what is declared."""

    #: Several processes can use one database at once, safely.
    MULTI_PROCESS = "multi_process"
    #: Data survives closing the workspace.
    DURABLE = "durable"
    #: PII can be stored encrypted (see the privacy guide).
    ENCRYPTION = "encryption"


class Transaction(abc.ABC):
    """One atomic unit of work, exposing the domain stores.

    Services append events with :meth:`emit`; the workspace dispatches them
    only after a successful commit.
    """

    def __init__(self, *, write: bool) -> None:
        self.write = write
        self.events: list[Event] = []
        #: The correlation id of each event in :attr:`events` (the call that caused it).
        self.event_correlations: list[str] = []
        #: The correlation id given to events emitted from now on.
        self.correlation = ""
        self._after_commit: list[Callable[[], None]] = []
        self._after_rollback: list[Callable[[], None]] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self.event_correlations.append(self.correlation)

    def serialize(self, space: str, keys: Iterable[object] = ("",)) -> None:  # noqa: B027 (a no-op by default)
        """Hold off, until this transaction ends, every other write that serializes on one
        of the same ``(space, key)`` pairs (waiting for those that hold them first).

        For invariants no single row lock covers: one identity per phone before its user
        row exists, no cycle in the referral graph. Keys may share a lock (a backend may
        stripe them), never the other way round, and a transaction takes its keys in one
        call, so two writers never wait for each other in opposite orders. A backend that
        runs one writer at a time (SQLite, memory) has nothing to do."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit inside this transaction: an exception in the block undoes
        the block's writes and events only, then propagates."""
        raise NotImplementedError(f"{type(self).__name__} does not support savepoints")

    def after_rollback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when this transaction, or a savepoint in it, rolls back
        (caches built from its uncommitted state must then be dropped)."""
        self._after_rollback.append(callback)

    def run_after_rollback(self) -> None:
        for callback in self._after_rollback:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never on rollback)."""
        self._after_commit.append(callback)

    def run_after_commit(self) -> None:
        for callback in self._after_commit:
            callback()

    @property
    @abc.abstractmethod
    def users(self) -> UserStore: ...

    @property
    @abc.abstractmethod
    def tags(self) -> TagStore: ...

    @property
    @abc.abstractmethod
    def points(self) -> PointsStore: ...

    @property
    @abc.abstractmethod
    def meta(self) -> MetaStore: ...

    @property
    @abc.abstractmethod
    def idempotency(self) -> IdempotencyStore: ...

    @property
    @abc.abstractmethod
    def privacy(self) -> PrivacyStore: ...

    @property
    @abc.abstractmethod
    def referrals(self) -> ReferralStore: ...

    @property
    @abc.abstractmethod
    def fission(self) -> FissionStore: ...

    @property
    @abc.abstractmethod
    def products(self) -> ProductStore: ...

    @property
    @abc.abstractmethod
    def orders(self) -> OrderStore: ...

    @property
    @abc.abstractmethod
    def coupons(self) -> CouponStore: ...

    @property
    @abc.abstractmethod
    def tiers(self) -> TierStore: ...

    @property
    @abc.abstractmethod
    def channels(self) -> ChannelStore: ...

    @property
    @abc.abstractmethod
    def segments(self) -> SegmentStore: ...

    @property
    @abc.abstractmethod
    def lifecycle(self) -> LifecycleStore: ...

    @property
    @abc.abstractmethod
    def activity(self) -> ActivityStore: ...

    @property
    @abc.abstractmethod
    def tag_rules(self) -> TagRuleStore: ...

    @property
    @abc.abstractmethod
    def campaigns(self) -> CampaignStore: ...

    @property
    @abc.abstractmethod
    def analytics(self) -> AnalyticsStore: ...

    @property
    @abc.abstractmethod
    def event_log(self) -> EventLogStore: ...

    @property
    @abc.abstractmethod
    def flash_sales(self) -> FlashSaleStore: ...

    @property
    @abc.abstractmethod
    def wallet(self) -> WalletStore: ...

    @property
    @abc.abstractmethod
    def points_mall(self) -> PointsMallStore: ...

    @property
    @abc.abstractmethod
    def bargains(self) -> BargainStore: ...

    @property
    @abc.abstractmethod
    def draws(self) -> DrawStore: ...

    @property
    @abc.abstractmethod
    def staff(self) -> StaffStore: ...

    @property
    @abc.abstractmethod
    def benefits(self) -> BenefitStore: ...

    @property
    @abc.abstractmethod
    def groups(self) -> GroupStore: ...

    @property
    @abc.abstractmethod
    def presales(self) -> PresaleStore: ...


class Backend(abc.ABC):
    """A storage backend. Subclasses set ``scheme`` and, optionally, ``aliases``.

    The class docstring of each backend states its URL format.
    """

    scheme: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, url: StorageURL) -> None:
        self.url = url
        #: Seals personal data when the workspace has a secret key (set by ``ws.privacy``).
        self.cipher: FieldCipher | None = None

    @functools.cached_property
    def holders(self) -> Holders:
        """Claim holders and the proof that one is gone (see :mod:`siyu.storage.holders`).
        This default knows only its own process; a backend shared by several processes
        overrides it, or their crashed claims wait for a person."""
        return Holders()

    @abc.abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[Transaction]:
        """Open a transaction; commit when the block ends, roll back on an exception."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    @abc.abstractmethod
    def schema_versions(self) -> dict[str, int]:
        """Schema version of each component, after migrations."""

    @abc.abstractmethod
    def event_horizon(self) -> int:
        """The highest event-log position readers may read up to: no transaction
        still in flight can commit an event at or below it."""

    def describe(self) -> str:
        return f"{self.scheme} backend at {self.url.masked()}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url.masked()}>"


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
