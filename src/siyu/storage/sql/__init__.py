"""One SQL implementation of the storage contract, shared by SQLite and PostgreSQL.

The stores (``users``, ``tags``, ``points`` ...) are written once in portable
SQL with ``?`` placeholders; a :class:`~siyu.storage.sql.dialect.Dialect`
isolates what differs (placeholders, DDL types, id allocation, row locks).
"""

from .backend import SqlBackend, SqlTransaction
from .dialect import Dialect

__all__ = ["Dialect", "SqlBackend", "SqlTransaction"]
