"""Helpers for running tests against PostgreSQL in throw-away schemas.

``with_schema(url, name)`` adds ``schema=name`` to a ``postgresql://`` URL;
``drop_schema(url)`` drops that schema and everything in it. Give each test
(or test run) its own schema so parallel runs never see each other's data::

    url = with_schema(os.environ["SIYU_TEST_POSTGRES_URL"], "t_" + uuid.uuid4().hex[:12])
    try:
        ws = siyu.connect(url)
        ...
    finally:
        drop_schema(url)
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._url import StorageURL

_OWN_PARAMS = {"schema", "pool_min", "pool_max", "pool_timeout", "pgbouncer"}

__all__ = ["drop_schema", "empty_schema", "with_schema"]


def with_schema(url: str, schema: str) -> str:
    """``url`` with its ``schema=`` query parameter set to ``schema``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    query.append(("schema", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _admin_url(url: str) -> tuple[str, str]:
    parsed = StorageURL.parse(url)
    schema = parsed.param("schema")
    if not schema or schema == "public":
        raise ValueError(f"refusing to touch schema {schema!r}; these helpers are for throw-away test schemas")
    parts = urlsplit(url)
    libpq_query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _OWN_PARAMS]
    return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(libpq_query))), schema


def empty_schema(url: str) -> None:
    """Delete every row siyu stored in the schema (keeping its tables and schema
    versions) and restart its id sequences: a fresh database without re-migrating."""
    import psycopg

    base, schema = _admin_url(url)
    with psycopg.connect(base, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'siyu_schema'", (schema,)
            )
        ]
        sequences = [
            r[0] for r in conn.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (schema,))
        ]
        # DELETE, not TRUNCATE: on small test tables it is ~50x faster (no new files, no fsync).
        with conn.transaction():
            for table in tables:
                conn.execute(f'DELETE FROM "{schema}"."{table}"')
            for sequence in sequences:
                conn.execute(f"ALTER SEQUENCE \"{schema}\".\"{sequence}\" RESTART")


def drop_schema(url: str) -> None:
    """Drop the schema named by ``url``'s ``schema=`` parameter (if it exists)."""
    import psycopg

    base, schema = _admin_url(url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
