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
    from ..backend import SqlBackend

_BOOTSTRAP = "CREATE TABLE IF NOT EXISTS siyu_schema (component {text} PRIMARY KEY, version {bigint} NOT NULL)"


def components() -> list[ModuleType]:
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.COMPONENT))


def migrate(backend: SqlBackend) -> dict[str, int]:
    dialect = backend.dialect
    with backend.transaction(write=True) as tx:
        tx.execute(dialect.ddl(_BOOTSTRAP))
    versions: dict[str, int] = {}
    for module in components():
        steps = sorted(module.MIGRATIONS)
        latest = steps[-1][0] if steps else 0
        for version, statements in steps:
            with backend.transaction(write=True) as tx:
                row = tx.execute(
                    "SELECT version FROM siyu_schema WHERE component = ?", (module.COMPONENT,)
                ).fetchone()
                current = int(row[0]) if row else 0
                if current > latest:
                    raise SchemaVersionError(
                        f"the database's {module.COMPONENT!r} schema is version {current}, newer than "
                        f"this siyu knows ({latest}); upgrade siyu to open it"
                    )
                if current >= version:
                    continue
                for statement in statements:
                    tx.execute(dialect.ddl(statement))
                tx.execute(
                    "INSERT INTO siyu_schema (component, version) VALUES (?, ?) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (module.COMPONENT, version),
                )
        versions[module.COMPONENT] = latest
    return versions
