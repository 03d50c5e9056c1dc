"""The built-in storage backends, registered like any plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..hookspecs import hookimpl


@hookimpl
def siyu_register_storage_backends(register: Callable[[type[Any]], None]) -> None:
    from .sqlite import MemoryBackend, SQLiteBackend

    register(SQLiteBackend)
    register(MemoryBackend)
    # The class imports psycopg only when a postgresql:// URL is opened.
    from .postgresql import PostgresBackend

    register(PostgresBackend)
