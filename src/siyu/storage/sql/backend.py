"""The shared SQL backend: transactions, stores, migrations."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from ..._url import StorageURL
from ...errors import ValidationError
from ..base import Backend, Transaction
from .analytics import SqlAnalyticsStore
from .bargains import SqlBargainStore
from .benefits import SqlBenefitStore
from .campaigns import SqlCampaignStore
from .channels import SqlChannelStore
from .community import SqlGroupStore
from .coupons import SqlCouponStore
from .dialect import Dialect
from .draws import SqlDrawStore
from .event_log import SqlEventLogStore
from .fission import SqlFissionStore
from .flash_sales import SqlFlashSaleStore
from .lifecycle import SqlActivityStore, SqlLifecycleStore, SqlTagRuleStore
from .meta import SqlIdempotencyStore, SqlMetaStore
from .orders import SqlOrderStore
from .points import SqlPointsStore
from .presale import SqlPresaleStore
from .privacy import SqlPrivacyStore
from .products import SqlProductStore
from .referrals import SqlReferralStore
from .segments import SqlSegmentStore
from .staff import SqlStaffStore
from .tags import SqlTagStore
from .tiers import SqlTierStore
from .users import SqlUserStore
from .wallet import SqlPointsMallStore, SqlWalletStore


class _Savepoint:
    """A savepoint opened lazily, by the first statement inside the block.

    Observers see every event of a bulk write and ignore most of them; a
    savepoint that was never needed costs nothing. A plain class rather than a
    generator context manager because a bulk delivery enters one per event and
    observer.
    """

    __slots__ = ("events", "mark", "tx")

    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx
        self.mark: list[Any] = [None, False]
        self.events = 0

    def __enter__(self) -> None:
        tx = self.tx
        tx._savepoints += 1
        self.mark = [f"siyu_sp_{tx._savepoints}", False]
        self.events = len(tx.events)
        tx._open.append(self.mark)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        tx, (name, opened) = self.tx, self.mark
        tx._open.pop()
        if exc_type is None:
            if opened:
                tx._run(f"RELEASE SAVEPOINT {name}")
            return
        if opened:
            tx._run(f"ROLLBACK TO SAVEPOINT {name}")
            tx._run(f"RELEASE SAVEPOINT {name}")
            tx.run_after_rollback()
        del tx.events[self.events :]
        del tx.event_correlations[self.events :]


@contextmanager
def _unstorable_values() -> Iterator[None]:
    """The last line of defence for values no column can hold (the driver refuses them
    before the statement runs); services validate first, so reaching this is a missing
    check, and the caller's transaction rolls back on the error like on any other."""
    try:
        yield
    except OverflowError as exc:
        raise ValidationError(f"a number is too large to store (at most {2**63 - 1}): {exc}") from None
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"a text contains {exc.object[exc.start:exc.end]!r}, a lone surrogate that is not valid Unicode; "
            "decode the input with errors='replace' (or fix its source) and try again"
        ) from None


class SqlTransaction(Transaction):
    """A transaction on one DB-API connection."""

    def __init__(self, backend: SqlBackend, conn: Any, *, write: bool) -> None:
        super().__init__(write=write)
        self.backend = backend
        self.conn = conn
        self.dialect = backend.dialect
        self._savepoints = 0
        #: Savepoints entered, innermost last, as ``[name, opened]``.
        self._open: list[list[Any]] = []

    def savepoint(self) -> _Savepoint:
        return _Savepoint(self)

    def serialize(self, space: str, keys: Iterable[object] = ("",)) -> None:
        self.dialect.serialize(self, space, keys)

    def _run(self, statement: str) -> None:
        self.backend._execute(self.conn, statement, ())

    def _open_savepoints(self) -> None:
        for mark in self._open:
            if not mark[1]:
                self._run(f"SAVEPOINT {mark[0]}")
                mark[1] = True

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        if self._open and not self._open[-1][1]:
            self._open_savepoints()
        with _unstorable_values():
            return self.backend._execute(self.conn, self.dialect.sql(statement), params)

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        if self._open and not self._open[-1][1]:
            self._open_savepoints()
        with _unstorable_values():
            self.backend._executemany(self.conn, self.dialect.sql(statement), rows)

    def in_chunks(self, values: Sequence[Any], size: int = 500) -> Iterator[tuple[str, list[Any]]]:
        """Yield ``(placeholders, chunk)`` to build ``IN (...)`` queries of bounded size."""
        for start in range(0, len(values), size):
            chunk = list(values[start : start + size])
            yield ",".join("?" * len(chunk)), chunk

    @cached_property
    def users(self) -> SqlUserStore:
        return SqlUserStore(self)

    @cached_property
    def tags(self) -> SqlTagStore:
        return SqlTagStore(self)

    @cached_property
    def points(self) -> SqlPointsStore:
        return SqlPointsStore(self)

    @cached_property
    def meta(self) -> SqlMetaStore:
        return SqlMetaStore(self)

    @cached_property
    def idempotency(self) -> SqlIdempotencyStore:
        return SqlIdempotencyStore(self)

    @cached_property
    def privacy(self) -> SqlPrivacyStore:
        return SqlPrivacyStore(self)

    @cached_property
    def referrals(self) -> SqlReferralStore:
        return SqlReferralStore(self)

    @cached_property
    def fission(self) -> SqlFissionStore:
        return SqlFissionStore(self)

    @cached_property
    def products(self) -> SqlProductStore:
        return SqlProductStore(self)

    @cached_property
    def orders(self) -> SqlOrderStore:
        return SqlOrderStore(self)

    @cached_property
    def coupons(self) -> SqlCouponStore:
        return SqlCouponStore(self)

    @cached_property
    def tiers(self) -> SqlTierStore:
        return SqlTierStore(self)

    @cached_property
    def channels(self) -> SqlChannelStore:
        return SqlChannelStore(self)

    @cached_property
    def campaigns(self) -> SqlCampaignStore:
        return SqlCampaignStore(self)

    @cached_property
    def segments(self) -> SqlSegmentStore:
        return SqlSegmentStore(self)

    @cached_property
    def lifecycle(self) -> SqlLifecycleStore:
        return SqlLifecycleStore(self)

    @cached_property
    def activity(self) -> SqlActivityStore:
        return SqlActivityStore(self)

    @cached_property
    def tag_rules(self) -> SqlTagRuleStore:
        return SqlTagRuleStore(self)

    @cached_property
    def event_log(self) -> SqlEventLogStore:
        return SqlEventLogStore(self)

    @cached_property
    def analytics(self) -> SqlAnalyticsStore:
        return SqlAnalyticsStore(self)

    @cached_property
    def flash_sales(self) -> SqlFlashSaleStore:
        return SqlFlashSaleStore(self)

    @cached_property
    def wallet(self) -> SqlWalletStore:
        return SqlWalletStore(self)

    @cached_property
    def points_mall(self) -> SqlPointsMallStore:
        return SqlPointsMallStore(self)

    @cached_property
    def bargains(self) -> SqlBargainStore:
        return SqlBargainStore(self)

    @cached_property
    def draws(self) -> SqlDrawStore:
        return SqlDrawStore(self)

    @cached_property
    def staff(self) -> SqlStaffStore:
        return SqlStaffStore(self)

    @cached_property
    def benefits(self) -> SqlBenefitStore:
        return SqlBenefitStore(self)

    @cached_property
    def groups(self) -> SqlGroupStore:
        return SqlGroupStore(self)

    @cached_property
    def presales(self) -> SqlPresaleStore:
        return SqlPresaleStore(self)


class SqlBackend(Backend):
    """Base of the SQL backends. Subclasses supply connections and the dialect."""

    dialect: Dialect
    #: The advisory-lock key of the event log's commit fence (PostgreSQL only).
    event_fence_key: int = 0
    #: Names this database's advisory locks apart from other siyu schemas' (PostgreSQL only).
    lock_namespace: str = ""

    def __init__(self, url: StorageURL) -> None:
        super().__init__(url)
        self._versions: dict[str, int] = {}

    # -- what a driver supplies -------------------------------------------------
    @abc.abstractmethod
    def _connection(self, *, write: bool) -> Any:
        """A context manager yielding a connection inside an open transaction;
        it commits on success and rolls back on error."""

    def _execute(self, conn: Any, statement: str, params: Sequence[Any]) -> Any:
        return conn.execute(statement, params)

    def _executemany(self, conn: Any, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        conn.executemany(statement, rows)

    # -- the contract -------------------------------------------------------------
    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[SqlTransaction]:
        with self._connection(write=write) as conn:
            tx = SqlTransaction(self, conn, write=write)
            try:
                yield tx
            except BaseException:
                tx.run_after_rollback()
                raise

    def event_horizon(self) -> int:
        # Writers are serialized and commit their positions in order: whatever is visible is final.
        with self.transaction(write=False) as tx:
            head: int = tx.event_log.head()
            return head

    def migrate(self) -> None:
        from .schema import migrate

        self._versions = migrate(self)

    def schema_versions(self) -> dict[str, int]:
        return dict(self._versions)
