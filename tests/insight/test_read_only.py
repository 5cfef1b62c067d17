"""Guarantee 6: what `factflow query` and `factflow.insight` run cannot change the warehouse.

The statements below go to the database as they are (nothing is screened by factflow): the
database refuses them, because the warehouse is opened read-only.
"""

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from factflow.cli.locations import open_warehouse
from factflow.errors import ConfigurationError
from factflow.warehouse.base import Warehouse
from filled_warehouse import dump, filled_warehouse

WRITES = [
    "INSERT INTO dim_user (user_id, inferred) VALUES ('intruder', true)",
    "UPDATE fact_card_transaction SET amount = 0",
    "DELETE FROM fact_card_transaction",
    "TRUNCATE fact_card_transaction",
    "DROP TABLE dim_user",
    "DROP VIEW v_card_transaction",
    "CREATE TABLE stolen AS SELECT * FROM dim_user",
    "CREATE VIEW v_stolen AS SELECT * FROM dim_user",
    "ALTER TABLE dim_user ADD COLUMN note text",
    "COMMENT ON TABLE dim_user IS 'changed'",
    "WITH gone AS (DELETE FROM dim_user RETURNING *) SELECT count(*) FROM gone",
    "SELECT 1; DELETE FROM fact_card_transaction",
    "DELETE FROM fact_card_transaction; SELECT 1",
    "SELECT * FROM dim_user FOR UPDATE",
]
DUCKDB_ONLY = [
    "COPY dim_user FROM '{folder}/users.csv'",
    "COPY dim_user TO '{folder}/users.csv'",
    "EXPORT DATABASE '{folder}/export'",
    "ATTACH '{folder}/other.duckdb' AS other",
    "SELECT * FROM read_csv('{folder}/users.csv')",
    "INSTALL httpfs",
    "SET memory_limit = '8GB'",
]
POSTGRES_ONLY = [
    "COPY dim_user TO PROGRAM 'touch {folder}/pwned'",
    "COPY dim_user TO '{folder}/users.csv'",
    "COPY dim_user FROM '{folder}/users.csv'",
    "CREATE TEMP TABLE scratch AS SELECT * FROM dim_user",
    "SET TRANSACTION READ WRITE",
    "COMMIT",
    "DO $$ BEGIN DELETE FROM fact_card_transaction; END $$",
    "SELECT set_config('transaction_read_only', 'off', true)",
    "LOCK TABLE dim_user",
    "VACUUM dim_user",
]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def reader(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """A filled warehouse, opened read-only as `factflow query` opens it."""
    with filled_warehouse(request.param, tmp_path) as url:
        store = open_warehouse(url, read_only=True)
        yield store
        store.close()


def test_every_statement_that_would_change_something_is_refused_and_nothing_changes(
    reader: Warehouse, tmp_path: Path
) -> None:
    before = dump(reader)
    own = DUCKDB_ONLY if reader.dialect.name == "duckdb" else POSTGRES_ONLY
    for statement in [*WRITES, *own]:
        with pytest.raises(ConfigurationError) as refused:
            reader.read(statement.format(folder=tmp_path))
        assert "Traceback" not in str(refused.value)
    assert dump(reader) == before
    assert not list(tmp_path.glob("*.csv")) and not (tmp_path / "pwned").exists()


def test_the_refusal_says_what_the_database_said(reader: Warehouse) -> None:
    with pytest.raises(ConfigurationError, match=r"refused the statement.*(read-only|query)"):
        reader.read("DELETE FROM dim_user")


def test_a_duckdb_temporary_table_lives_in_memory_only(tmp_path: Path) -> None:
    # DuckDB keeps temporary objects in the connection's memory, even on a read-only file.
    with filled_warehouse("duckdb", tmp_path) as url:
        with open_warehouse(url, read_only=True) as reader:
            before = dump(reader)
            reader.read("CREATE TEMP TABLE scratch AS SELECT * FROM dim_user")
            assert dump(reader) == before
        with (
            open_warehouse(url, read_only=True) as again,
            pytest.raises(ConfigurationError, match="scratch"),
        ):
            again.read("SELECT * FROM scratch")


@pytest.mark.postgres
def test_a_query_cannot_leave_postgresql_reads_writable_or_locks_held(tmp_path: Path) -> None:
    with (
        filled_warehouse("postgres", tmp_path) as url,
        open_warehouse(url, read_only=True) as reader,
    ):
        reader.read("SELECT set_config('default_transaction_read_only', 'off', false)")
        reader.read("SELECT pg_advisory_lock(424242)")
        [mode] = reader.read("SELECT current_setting('transaction_read_only') AS m").column(0)
        assert mode.as_py() == "on"
        held = reader.read(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' "
            "AND objid = 424242 AND pid = pg_backend_pid()"
        )
        assert held.column("n").to_pylist() == [0]
        with pytest.raises(ConfigurationError, match="in a read-only transaction"):
            reader.read("SELECT * FROM dim_user FOR UPDATE")


def test_read_runs_only_on_a_warehouse_opened_read_only(tmp_path: Path) -> None:
    with (
        filled_warehouse("duckdb", tmp_path) as url,
        open_warehouse(url) as writer,
        pytest.raises(ConfigurationError, match="read-only"),
    ):
        writer.read("SELECT 1")


def test_a_query_longer_than_its_timeout_is_stopped(reader: Warehouse) -> None:
    slow = (
        "SELECT count(*) FROM range(1000000000) AS a, range(1000) AS b"
        if reader.dialect.name == "duckdb"
        else "SELECT pg_sleep(5)"
    )
    with pytest.raises(ConfigurationError, match=r"longer than 0\.2 s"):
        reader.read(slow, timeout=0.2)
    assert reader.read("SELECT 1 AS one").to_pylist() == [{"one": 1}]


def test_answers_keep_decimals_exact_with_their_scale(reader: Warehouse) -> None:
    table = reader.read(
        "SELECT amount, sum(amount) OVER () AS total, CAST($1 AS DECIMAL(18, 4)) AS given "
        "FROM fact_card_transaction LIMIT 1",
        ["0.0001"],
    )
    assert table.schema.field("amount").type == pa.decimal128(18, 4)
    assert table.schema.field("total").type == pa.decimal128(38, 4)
    assert table.column("given").to_pylist() == [Decimal("0.0001")]


def test_column_types_match_on_both_backends(reader: Warehouse) -> None:
    table = reader.read(
        "SELECT user_id, count(*) AS n, max(occurred_at) AS last, true AS flag "
        "FROM fact_card_transaction GROUP BY user_id"
    )
    assert table.schema.types == [pa.string(), pa.int64(), pa.timestamp("us"), pa.bool_()]
