"""Connections to the banking services' PostgreSQL database, for the simulator and the sources.

`?schema=NAME` in the URL keeps the tables in that schema (created when writing), as the
PostgreSQL warehouse does; the password never appears in an error message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from factflow._urls import pop_query_parameter, redact, redact_text
from factflow.errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg

__all__ = ["connect"]


def connect(url: str, *, read_only: bool) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection (in a transaction, not autocommit) to the database at `url`.

    Raises `ConfigurationError` for another scheme than postgresql://, a missing psycopg, or a
    database that cannot be reached.
    """
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"{redact(url)}: the banking services keep their data in PostgreSQL; give a "
            "postgresql://user@host/database URL (?schema=NAME for a schema of its own)"
        )
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        raise ConfigurationError(
            "the banking services' database is PostgreSQL, which needs psycopg: "
            "pip install 'factflow[postgres]'"
        ) from None
    dsn, schema = pop_query_parameter(url, "schema")
    try:
        connection = psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as error:
        raise ConfigurationError(
            f"cannot connect to {redact(url)}: {redact_text(str(error).strip(), url)}"
        ) from None
    connection.read_only = read_only
    if schema:
        if not read_only:
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return connection
