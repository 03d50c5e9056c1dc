"""SQLite backends: the embedded default and the in-memory one."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from .._url import StorageURL
from ..errors import StorageError, ValidationError
from .base import Capability
from .holders import FileHolders, Holders, ProcessHolders
from .sql import Dialect, SqlBackend

#: How long a writer waits for another process's write lock before failing.
BUSY_TIMEOUT_MS = 30_000


class SQLiteBackend(SqlBackend):
    """An SQLite database file, in WAL mode.

    URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.
    Several processes may share the file: write transactions start with
    ``BEGIN IMMEDIATE`` so they queue for the write lock instead of failing
    half-way; readers never block writers (WAL).
    """

    scheme: ClassVar[str] = "sqlite"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {Capability.MULTI_PROCESS, Capability.DURABLE, Capability.ENCRYPTION}
    )
    dialect = Dialect()

    def __init__(self, url: StorageURL) -> None:
        super().__init__(url)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = self._open(url)
        self.migrate()

    def _database(self, url: StorageURL) -> str:
        if not url.path:
            raise ValidationError(
                f"{url.masked()!r} names no file; use 'sqlite:///shop.db' (relative) or "
                "'sqlite:////var/data/shop.db' (absolute), or 'memory://' for a throw-away database"
            )
        path = Path(url.path)
        if not path.parent.exists():
            raise ValidationError(f"directory {str(path.parent)!r} for {url.masked()!r} does not exist")
        return str(path)

    def _open(self, url: StorageURL) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._database(url), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across application crashes in WAL mode; only a power
            # loss can drop the last commits, never corrupt the file.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")
            # Zero freed space, so erased personal data does not linger in free pages.
            conn.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {url.masked()}: {exc}") from exc
        return conn

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError("this workspace is closed; open a new one with siyu.connect()")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.OperationalError as exc:
                raise StorageError(f"could not start a transaction on {self.url.masked()}: {exc}") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK")
                    raise StorageError(f"commit failed on {self.url.masked()}: {exc}") from exc

    @functools.cached_property
    def holders(self) -> Holders:
        # Next to the database, like SQLite's own -wal and -shm files.
        return FileHolders(Path(self._database(self.url) + "-holders"))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if "holders" in self.__dict__:
            self.holders.close()


class MemoryBackend(SQLiteBackend):
    """A private in-memory database that vanishes when the workspace closes.

    URL: ``memory://``. It is SQLite in memory, so it behaves exactly like
    the file backend; ideal for tests and dry runs.
    """

    scheme: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[str]] = frozenset({Capability.ENCRYPTION})

    # Migrating an empty database runs a few hundred DDL statements; a process
    # opens many memory workspaces (tests do it for every case), so the first
    # one keeps a migrated copy and the rest clone it with SQLite's backup API.
    _template: ClassVar[tuple[sqlite3.Connection, dict[str, int]] | None] = None
    _template_lock: ClassVar[threading.Lock] = threading.Lock()

    def _open(self, url: StorageURL) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        return conn

    def migrate(self) -> None:
        with MemoryBackend._template_lock:
            template, conn = MemoryBackend._template, self._conn
            assert conn is not None  # migrated right after opening
            if template is not None:
                template[0].backup(conn)
                self._versions = dict(template[1])
                return
            super().migrate()
            copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            conn.backup(copy)
            MemoryBackend._template = (copy, dict(self._versions))

    @functools.cached_property
    def holders(self) -> Holders:
        return ProcessHolders()

    def describe(self) -> str:
        return "in-memory SQLite backend"
