"""A warehouse whose dead letters were kept by an earlier factflow gains the replay columns in
place the next time it is prepared; before that, reading them says how to upgrade."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest

from conftest import service_url
from factflow.errors import ConfigurationError
from factflow.examples.banking import app
from factflow.warehouse.base import Warehouse
from factflow.warehouse.duckdb import DuckDBWarehouse

#: The dead letters as the first releases made them, with one letter in them.
EARLIER = (
    "CREATE TABLE factflow_dead_letters (id {text} PRIMARY KEY, event_type {text}, "
    "event_id {text}, reason {text} NOT NULL, raw {blob} NOT NULL, "
    "received_at timestamp NOT NULL); "
    "INSERT INTO factflow_dead_letters VALUES "
    "('d-1', 'card.x', 'e-1', 'a bug', 'raw', '2026-01-01 00:00:00')"
)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def earlier(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Warehouse, Warehouse]]:
    """The same earlier warehouse opened read-only and for writing (not prepared yet)."""
    if request.param == "duckdb":
        path = tmp_path / "earlier.duckdb"
        with duckdb.connect(str(path)) as connection:
            connection.execute(EARLIER.format(text="VARCHAR", blob="BLOB"))
        writer = DuckDBWarehouse(path)
        yield writer, writer  # one DuckDB file, one connection
        writer.close()
        return
    from factflow.warehouse.postgres import PostgresWarehouse

    url, schema = service_url("postgres"), f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}")
        connection.execute(EARLIER.format(text="text", blob="bytea"))
    reader = PostgresWarehouse(url, schema=schema, read_only=True)
    writer = PostgresWarehouse(url, schema=schema)
    try:
        yield reader, writer
    finally:
        reader.close()
        writer.drop_schema()
        writer.close()


def test_reading_earlier_dead_letters_says_how_to_upgrade_them(
    earlier: tuple[Warehouse, Warehouse],
) -> None:
    reader, _ = earlier
    with pytest.raises(ConfigurationError, match="open it for writing once"):
        reader.dead_letters()


def test_prepare_adds_the_replay_columns_and_keeps_every_letter(
    earlier: tuple[Warehouse, Warehouse],
) -> None:
    reader, writer = earlier
    writer.prepare(app.schema)
    writer.prepare(app.schema)  # and then finds nothing to add
    [letter] = reader.dead_letters()
    assert (letter.id, letter.reason, letter.raw) == ("d-1", "a bug", b"raw")
    assert (letter.replays, letter.replayed_at) == (0, None)
