"""Versioned schema: each component (module here) owns its forward migrations.

A component module defines ``COMPONENT`` (its name), ``ORDER`` (when it runs
relative to others) and ``MIGRATIONS``: a list of ``(version, [ddl, ...])``
with versions 1, 2, 3 ... Each step runs in its own transaction together with
the version bump, so an interrupted migration is simply run again. Opening a
database whose schema is newer than this siyu fails with a clear error.
Components version independently, so domains evolve without renumbering
each other's migrations.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import TYPE_CHECKING

from ....errors import SchemaVersionError

if TYPE_CHECKING:
    from ..backend import SqlBackend, SqlTransaction

_BOOTSTRAP = "CREATE TABLE IF NOT EXISTS siyu_schema (component {text} PRIMARY KEY, version {bigint} NOT NULL)"


def components() -> list[ModuleType]:
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.COMPONENT))


def migrate(backend: SqlBackend) -> dict[str, int]:
    """Bring every component's schema up to date; return the versions.

    Migrators serialize across processes (SQLite's write lock, PostgreSQL's
    ``siyu.migrate`` lock, see ``Transaction.serialize``), and each step re-reads the version
    under that lock, so concurrent first opens migrate exactly once. Where the
    dialect has transactional DDL and says so (``migrate_in_one_transaction``),
    every pending step runs in one transaction: one commit instead of dozens.
    """
    dialect = backend.dialect
    if dialect.migrate_in_one_transaction:
        with backend.transaction(write=True) as tx:
            tx.serialize("siyu.migrate")
            tx.execute(dialect.ddl(_BOOTSTRAP))
            return {module.COMPONENT: _upgrade(tx, module, None) for module in components()}
    with backend.transaction(write=True) as tx:
        tx.execute(dialect.ddl(_BOOTSTRAP))
    versions: dict[str, int] = {}
    for module in components():
        for version, _ in sorted(module.MIGRATIONS):
            with backend.transaction(write=True) as tx:
                tx.serialize("siyu.migrate")
                _upgrade(tx, module, version)
        versions[module.COMPONENT] = _latest(module)
    return versions


def _latest(module: ModuleType) -> int:
    steps = sorted(module.MIGRATIONS)
    return int(steps[-1][0]) if steps else 0


def _upgrade(tx: SqlTransaction, module: ModuleType, only: int | None) -> int:
    """Run ``module``'s pending steps (just step ``only`` if given); return its latest version."""
    latest = _latest(module)
    row = tx.execute("SELECT version FROM siyu_schema WHERE component = ?", (module.COMPONENT,)).fetchone()
    current = int(row[0]) if row else 0
    if current > latest:
        raise SchemaVersionError(
            f"the database's {module.COMPONENT!r} schema is version {current}, newer than "
            f"this siyu knows ({latest}); upgrade siyu to open it"
        )
    for version, statements in sorted(module.MIGRATIONS):
        if version <= current or (only is not None and version != only):
            continue
        for statement in statements:
            tx.execute(tx.dialect.ddl(statement))
        tx.execute(
            "INSERT INTO siyu_schema (component, version) VALUES (?, ?) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (module.COMPONENT, version),
        )
        current = version
    return latest
