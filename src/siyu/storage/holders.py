"""Claim holders: who holds a claim, and whether that holder is provably gone.

A process that claims work (campaign delivery records) writes a *holder* id
next to it. Another process may take the work over only when the holder is
gone, and "it has been a while" is no proof: a live sender can be slow. So each
backend proves it with a lock the operating system or the database releases
when the holder dies, even by ``kill -9``:

* SQLite file: an ``flock`` on a file in ``<database>-holders/`` (one per
  workspace connection), held until the workspace closes or the process ends;
* PostgreSQL: a session advisory lock held by a dedicated connection; behind
  PgBouncer's transaction pooling (no session outlives a transaction) a lease
  row the holder renews, gone once it has not been renewed for
  :data:`LEASE_SECONDS`;
* in memory (one process): a registry in the process.

A holder id is ``<process token>:<run>``: the token is the locked one, the run
is one claiming run inside that process, known to the process until it ends.
So a run that stopped (an exception) frees its claims at once for its own
process, and a process that died frees all of its claims for everyone. A
backend that cannot prove anything about another process (a plugin backend
without this support) reports its holders as alive: their claims wait.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["AdvisoryHolders", "FileHolders", "Holders", "LeaseHolders", "ProcessHolders"]

log = logging.getLogger("siyu.storage")

# Process tokens acquired by this process (token -> pid, so a forked child does not
# mistake its parent's token for its own) and the runs alive in it.
_LOCAL: dict[str, int] = {}
_RUNS: set[str] = set()
_GUARD = threading.Lock()


class Holders:
    """Claim holders of one backend; this base knows only its own process."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._lock = threading.Lock()

    # -- the process token --------------------------------------------------------------
    def token(self) -> str:
        """This connection's process token, acquired on first use and held until :meth:`close`."""
        with self._lock:
            if self._token is None:
                token = uuid.uuid4().hex
                self._acquire(token)
                with _GUARD:
                    _LOCAL[token] = os.getpid()
                self._token = token
            return self._token

    def _acquire(self, token: str) -> None:
        """Take the lock that proves ``token``'s process is alive."""

    def _release(self, token: str) -> None:
        """Let the lock go (the process keeps running; its runs have ended)."""

    def _foreign_gone(self, tokens: set[str]) -> set[str]:
        """Which tokens of *other* processes (or connections) are provably gone."""
        return set()

    def close(self) -> None:
        with self._lock:
            token, self._token = self._token, None
            if token is None:
                return
            with _GUARD:
                _LOCAL.pop(token, None)
            self._release(token)

    # -- runs -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def run(self) -> Iterator[str]:
        """A holder id for one claiming run, alive until the block ends."""
        holder = f"{self.token()}:{uuid.uuid4().hex[:12]}"
        with _GUARD:
            _RUNS.add(holder)
        try:
            yield holder
        finally:
            with _GUARD:
                _RUNS.discard(holder)

    def gone(self, holders: Iterable[str]) -> set[str]:
        """The holder ids (from :meth:`run`) that are provably gone."""
        pid = os.getpid()
        out: set[str] = set()
        foreign: dict[str, list[str]] = {}
        with _GUARD:
            for holder in set(holders):
                token = holder.partition(":")[0]
                if _LOCAL.get(token) == pid:
                    if holder not in _RUNS:
                        out.add(holder)
                else:
                    foreign.setdefault(token, []).append(holder)
        if foreign:
            for token in self._foreign_gone(set(foreign)):
                out.update(foreign[token])
        return out


class ProcessHolders(Holders):
    """For a database that lives inside this process (``memory://``): a holder this
    process does not know cannot be alive."""

    def _foreign_gone(self, tokens: set[str]) -> set[str]:
        return set(tokens)


class FileHolders(Holders):
    """Tokens are ``flock``-ed files in a directory next to the database."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self._fd: int | None = None

    def _acquire(self, token: str) -> None:
        import fcntl

        self.directory.mkdir(exist_ok=True)
        fd = os.open(self.directory / token, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd

    def _release(self, token: str) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.directory / token)
        os.close(fd)  # closing the last descriptor releases the flock

    def _foreign_gone(self, tokens: set[str]) -> set[str]:
        import fcntl

        gone = set()
        for token in tokens:
            if not token.isalnum():  # a token is a uuid hex; never a path
                continue
            path = self.directory / token
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                gone.add(token)  # released and removed by a holder that closed
                continue
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # held: that process is alive
                continue
            gone.add(token)  # the lock was free: its holder died (the OS released it)
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)
        return gone


def advisory_key(token: str) -> int:
    """The signed 64-bit advisory-lock key of a holder token."""
    digest = hashlib.blake2b(f"siyu-holder:{token}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryHolders(Holders):
    """Tokens are PostgreSQL session advisory locks, each held by its own connection."""

    def __init__(self, connect: Callable[[], Any], read: Callable[[str, tuple[Any, ...]], list[Any]]) -> None:
        super().__init__()
        self._connect = connect
        self._read = read
        self._conn: Any = None

    def _acquire(self, token: str) -> None:
        conn = self._connect()
        conn.execute("SELECT pg_advisory_lock(%s)", (advisory_key(token),))
        self._conn = conn

    def _release(self, token: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # ending the session releases its advisory locks

    def _foreign_gone(self, tokens: set[str]) -> set[str]:
        # pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits).
        parts = {}
        for token in tokens:
            key = advisory_key(token) & 0xFFFF_FFFF_FFFF_FFFF
            parts[(key >> 32, key & 0xFFFF_FFFF)] = token
        held = self._read(
            "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (),
        )
        alive = {parts[(int(c), int(o))] for c, o in held if (int(c), int(o)) in parts}
        return set(tokens) - alive


#: How long a lease holder's row proves it alive without renewal (renewed every third of it).
LEASE_SECONDS = 30


class LeaseHolders(Holders):
    """Tokens are rows of ``siyu_holders`` whose lease the holding process renews from a
    background thread; a token whose lease ran out (by the database's clock) is gone. For
    connection poolers that hand each transaction another server session, where a session
    lock would stay behind on a pooled connection."""

    def __init__(self, write: Callable[[str, tuple[Any, ...]], None],
                 read: Callable[[str, tuple[Any, ...]], list[Any]], *, seconds: int = LEASE_SECONDS) -> None:
        super().__init__()
        self._write, self._read, self.seconds = write, read, seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _renew(self, token: str) -> None:
        self._write(
            "INSERT INTO siyu_holders (token, expires_at) VALUES (?, ? + CAST(EXTRACT(EPOCH FROM clock_timestamp()) "
            "AS BIGINT)) ON CONFLICT (token) DO UPDATE SET expires_at = excluded.expires_at",
            (token, self.seconds),
        )

    def _acquire(self, token: str) -> None:
        self._renew(token)
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.seconds / 3):
                try:
                    self._renew(token)
                except Exception as exc:  # the next beat tries again; the lease has two more
                    log.warning("could not renew the claim lease of %s: %r", token, exc)

        self._thread = threading.Thread(target=beat, name="siyu-holder-lease", daemon=True)
        self._thread.start()

    def _release(self, token: str) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with contextlib.suppress(Exception):  # closing must not fail because the database went first
            self._write("DELETE FROM siyu_holders WHERE token = ?", (token,))

    def _foreign_gone(self, tokens: set[str]) -> set[str]:
        wanted = sorted(tokens)
        alive = {
            str(row[0])
            for row in self._read(
                f"SELECT token FROM siyu_holders WHERE token IN ({','.join('?' * len(wanted))}) "
                "AND expires_at > CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT)",
                tuple(wanted),
            )
        }
        return set(tokens) - alive
