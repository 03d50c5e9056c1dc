"""What differs between SQL databases, in one place."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .backend import SqlTransaction


class Dialect:
    """SQLite's dialect; other databases override what differs."""

    name: ClassVar[str] = "sqlite"
    #: Substitutions for ``{pk}``, ``{bigint}`` ... in migration DDL.
    ddl_types: ClassVar[dict[str, str]] = {
        "pk": "INTEGER PRIMARY KEY",
        # Never reuses a position, even after the newest events were deleted.
        "pk_log": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "bigint": "INTEGER",
        "text": "TEXT",
        "blob": "BLOB",
        "real": "REAL",
    }
    #: Largest number of bound parameters one statement may carry.
    max_params: ClassVar[int] = 30_000
    #: Run all pending migration steps in one transaction (needs transactional DDL).
    migrate_in_one_transaction: ClassVar[bool] = False
    #: Rows a change counter is spread over (one where writers are serialized anyway).
    counter_shards: ClassVar[int] = 1
    #: Suffixes of a ``SELECT`` that locks its rows until the transaction ends (waiting, or
    #: leaving out rows another transaction holds). Empty where writers are serialized anyway.
    row_lock: ClassVar[str] = ""
    row_lock_skip: ClassVar[str] = ""

    def sql(self, statement: str) -> str:
        """Translate portable SQL (``?`` placeholders) to this database's."""
        return statement

    def ddl(self, statement: str) -> str:
        return statement.format(**self.ddl_types)

    def allocate_ids(self, tx: SqlTransaction, table: str, count: int) -> list[int]:
        """Reserve ``count`` new ids for ``table``.

        SQLite write transactions hold the database's write lock from their
        first statement (``BEGIN IMMEDIATE``), so ``MAX(id)`` cannot race.
        """
        row = tx.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
        start = int(row[0]) + 1
        return list(range(start, start + count))

    def allocate_positions(self, tx: SqlTransaction, count: int) -> list[int]:
        """The next ``count`` event-log positions, in commit order.

        SQLite serializes writers, so the next positions after the head are
        this transaction's alone and commit in order; they are gap-free."""
        head = self.log_head(tx)
        return list(range(head + 1, head + 1 + count))

    def log_head(self, tx: SqlTransaction) -> int:
        # AUTOINCREMENT's own counter: still right after the newest events were pruned.
        row = tx.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def log_appended(self, tx: SqlTransaction, last: int) -> None:
        """Record ``last`` as the newest position drawn. SQLite's counter saw only the
        first position of a run (a row's key); SQLite documents the table as writable."""
        tx.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'events' AND seq < ?", (last, last))

    def json_ids(self, column: str) -> str:
        """An aggregate folding the integers of ``column`` into one JSON array, as text.

        One text value per group is read with one ``json.loads`` call instead
        of a Python object per row: the difference at millions of rows."""
        return f"json_group_array({column})"

    def json_text(self, column: str, key: str) -> str:
        """The text value under ``key`` of the JSON object in ``column`` (``NULL`` when it is
        missing or not text), extracted by the database instead of a ``json.loads`` per row."""
        path = f"'$.{key}'"
        return f"CASE WHEN json_type({column}, {path}) = 'text' THEN json_extract({column}, {path}) END"

    def serialize(self, tx: SqlTransaction, space: str, keys: Iterable[object]) -> None:
        """See :meth:`siyu.storage.base.Transaction.serialize`: SQLite's write transactions
        hold the database's write lock from their first statement already."""

    def lock_rows(self, tx: SqlTransaction, table: str, ids: list[int]) -> list[int]:
        """Lock rows until the transaction ends; return the ids that exist."""
        found: list[int] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                r[0] for r in tx.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", chunk)
            )
        return found


class PyformatDialect(Dialect):
    """Base for drivers with ``%s`` placeholders (psycopg)."""

    def sql(self, statement: str) -> str:
        return _to_pyformat(statement)


@lru_cache(maxsize=4096)
def _to_pyformat(statement: str) -> str:
    # Portable SQL never puts '?' or '%' inside literals: values are always bound.
    return statement.replace("%", "%%").replace("?", "%s")
