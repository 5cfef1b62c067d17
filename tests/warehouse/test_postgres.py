"""What only the PostgreSQL warehouse does: schemas, the same answers as DuckDB, reconnection,
read-only queries enforced by the database, and several writers at once."""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from banking_events import settled
from conftest import service_url
from factflow.bootstrap.rebuild import rebuild_fact
from factflow.bootstrap.replay import REFRESH_STATISTICS_ROWS, replay
from factflow.errors import ConfigurationError, TerminalError, WarehouseUnavailable
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.pipeline.changes import ChangeSet
from factflow.testing import Harness
from factflow.warehouse.duckdb import DuckDBWarehouse
from factflow.warehouse.postgres import PostgresWarehouse

pytestmark = pytest.mark.postgres


@pytest.fixture
def url() -> str:
    return service_url("postgres")


@pytest.fixture
def new_schema(url: str) -> Iterator[Callable[[], str]]:
    """Names of fresh schemas; every one is dropped afterwards, whatever the test left open."""
    names: list[str] = []

    def make() -> str:
        names.append(f"test_{uuid.uuid4().hex[:12]}")
        return names[-1]

    yield make
    with psycopg.connect(url, autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def store(url: str, new_schema: Callable[[], str]) -> Iterator[PostgresWarehouse]:
    with PostgresWarehouse(url, schema=new_schema()) as warehouse:
        warehouse.prepare(app.schema)
        yield warehouse


def with_parameter(url: str, parameter: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{parameter}"


def transaction(tx: str, event_id: str, amount: str = "10.00") -> tuple[Any, ...]:
    money = Decimal(amount)
    row = (tx, "c-1", "u-1", money, "EUR", money, "DKK", "m", "travel", "DE")
    return (*row, event_id, datetime(2026, 1, 1, tzinfo=UTC))


def facts(*rows: tuple[Any, ...]) -> ChangeSet:
    changes = ChangeSet()
    changes.facts["fact_card_transaction"] = list(rows)
    return changes


def count(warehouse: PostgresWarehouse, table: str) -> int:
    [(n,)] = warehouse.query(f"SELECT count(*) FROM {table}").rows
    return int(n)


def test_two_schemas_do_not_see_each_others_rows(url: str, new_schema: Callable[[], str]) -> None:
    with (
        PostgresWarehouse(url, schema=new_schema()) as first,
        PostgresWarehouse(url, schema=new_schema()) as second,
    ):
        for warehouse in (first, second):
            warehouse.prepare(app.schema)
        first.write(facts(transaction("t-1", "e-1")))
        assert count(first, "fact_card_transaction") == 1
        assert count(second, "fact_card_transaction") == 0


def test_the_schema_can_be_given_in_the_url(url: str, new_schema: Callable[[], str]) -> None:
    name = new_schema()
    with PostgresWarehouse(with_parameter(url, f"schema={name}")) as warehouse:
        assert warehouse.schema == name
        warehouse.prepare(app.schema)
        warehouse.write(facts(transaction("t-1", "e-1")))
        assert warehouse.query("SELECT current_schema()").rows == [(name,)]
    with PostgresWarehouse(url, schema=name, read_only=True) as reader:
        assert count(reader, "fact_card_transaction") == 1


def test_the_schema_is_kpi_unless_told_and_told_once(url: str) -> None:
    assert PostgresWarehouse(url).schema == "kpi"
    with pytest.raises(ConfigurationError, match="give the schema once"):
        PostgresWarehouse(with_parameter(url, "schema=a"), schema="b")


def test_passwords_never_appear_in_errors() -> None:
    # Nothing listens on port 1: the connection is refused at once.
    warehouse = PostgresWarehouse("postgresql://kpi:s3cret-pw@127.0.0.1:1/test?schema=x")
    with warehouse, pytest.raises(WarehouseUnavailable) as raised:
        warehouse.query("SELECT 1")
    assert "s3cret-pw" not in str(raised.value)
    assert "kpi:***@127.0.0.1:1" in str(raised.value)


def sorted_rows(rows: list[dict[str, Any]]) -> list[tuple[tuple[bool, str], ...]]:
    # Text collations differ between the engines; compare contents, not ORDER BY results.
    return sorted(tuple((v is None, str(v)) for v in row.values()) for row in rows)


def test_the_banking_model_and_kpis_are_the_same_as_on_duckdb(
    url: str, new_schema: Callable[[], str]
) -> None:
    options = SimulationOptions(
        events=2000, seed=1, duplicates=0.05, shuffle_window=100, bad_lines=0.01
    )
    messages = list(simulate(options))
    embedded = Harness(app, DuckDBWarehouse(None))
    server = Harness(app, PostgresWarehouse(url, schema=new_schema()))
    try:
        for harness in (embedded, server):
            harness.deliver(messages, batch_size=250)
        for name in app.kpis:
            assert server.kpi(name) == embedded.kpi(name), name
        assert any(embedded.kpi(name) for name in app.kpis)
        for table in app.schema.tables():
            expected = sorted_rows(embedded.rows(table.name))
            assert sorted_rows(server.rows(table.name)) == expected, table.name
        assert [(d.id, d.reason, d.raw) for d in server.dead_letters()] == [
            (d.id, d.reason, d.raw) for d in embedded.dead_letters()
        ]
        assert server.dead_letters()
    finally:
        embedded.close()
        server.close()


def terminate_backend(url: str, warehouse: PostgresWarehouse) -> None:
    """Close the warehouse's connection from the server side, as a restart would."""
    [(pid,)] = warehouse.query("SELECT pg_backend_pid()").rows
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):
            gone = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
            if gone.fetchone() is None:
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} did not end")


def test_a_write_after_the_connection_was_closed_by_the_server_succeeds_on_retry(
    url: str, store: PostgresWarehouse
) -> None:
    store.write(facts(transaction("t-1", "e-1")))
    terminate_backend(url, store)
    changes = facts(transaction("t-2", "e-2"))
    try:
        store.write(changes)
    except WarehouseUnavailable:
        store.write(changes)  # what the runtime does: retry the same batch
    assert count(store, "fact_card_transaction") == 2


def test_a_read_after_the_connection_was_closed_by_the_server_reconnects(
    url: str, store: PostgresWarehouse
) -> None:
    terminate_backend(url, store)
    assert count(store, "fact_card_transaction") == 0


@pytest.mark.parametrize(
    "statement",
    [
        "WITH gone AS (DELETE FROM dim_user RETURNING *) SELECT count(*) FROM gone",
        "SELECT * INTO copy_of_users FROM dim_user",
        "EXPLAIN ANALYZE DELETE FROM dim_user",
        "SELECT * FROM dim_user FOR UPDATE",
        "TRUNCATE dim_user",
        "SELECT 1; /* ; */ DELETE FROM dim_user",
    ],
)
def test_statements_that_write_are_refused(store: PostgresWarehouse, statement: str) -> None:
    changes = ChangeSet()
    changes.references["dim_user"] = {"u-1"}
    store.write(changes)
    with pytest.raises(ConfigurationError, match="read-only"):
        store.query(statement)
    assert count(store, "dim_user") == 1


def test_a_query_cannot_redirect_later_writes(store: PostgresWarehouse) -> None:
    store.query("SELECT set_config('search_path', 'public', false)")
    store.write(facts(transaction("t-1", "e-1")))
    assert count(store, "fact_card_transaction") == 1


def test_question_marks_are_parameters_only_outside_literals_and_comments(
    store: PostgresWarehouse,
) -> None:
    sql = (
        "SELECT ? || '?''%' || E'\\'?' || $q$?%$q$ AS a, \"?\" FROM (SELECT ? AS \"?\") AS t"
        " -- what? 100%\n /* nested /* ? */ ? */"
    )
    result = store.query(sql, ("x", 5))
    assert result.columns == ("a", "?")
    assert result.rows == [("x?'%'??%", 5)]
    assert store.query("SELECT '%?' AS b").rows == [("%?",)]


def test_a_read_only_warehouse_refuses_to_write(url: str, store: PostgresWarehouse) -> None:
    with PostgresWarehouse(url, schema=store.schema, read_only=True) as reader:
        for attempt in (lambda: reader.prepare(app.schema), lambda: reader.write(ChangeSet())):
            with pytest.raises(ConfigurationError, match="read-only"):
                attempt()
        assert count(reader, "dim_user") == 0


@pytest.mark.parametrize(
    ("amount", "reason"),
    [("1e15", "numeric field overflow"), ("NaN", "at most 4 decimal places, got NaN")],
)
def test_amounts_money_cannot_hold_are_refused(
    store: PostgresWarehouse, amount: str, reason: str
) -> None:
    with pytest.raises(TerminalError, match=f"refused a value.*{reason}"):
        store.write(facts(transaction("t-1", "e-1", amount)))
    assert count(store, "fact_card_transaction") == 0


def test_text_with_a_nul_character_is_refused(store: PostgresWarehouse) -> None:
    # PostgreSQL text cannot hold NUL (DuckDB's can): the runtime makes the event a dead letter.
    row = transaction("t-\x00", "e-1")
    with pytest.raises(TerminalError, match="refused a value"):
        store.write(facts(row))


def test_concurrent_prepare_does_not_fail(url: str, new_schema: Callable[[], str]) -> None:
    for _ in range(5):
        name = new_schema()
        warehouses = [PostgresWarehouse(url, schema=name) for _ in range(3)]
        errors = run_together([lambda w=w: w.prepare(app.schema) for w in warehouses])
        assert errors == []
        assert count(warehouses[0], "dim_user") == 0
        for warehouse in warehouses:
            warehouse.close()


def run_together(work: list[Callable[[], None]]) -> list[BaseException]:
    start = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_writers_of_one_dimension_keep_the_in_order_result(
    url: str, store: PostgresWarehouse
) -> None:
    # Two writers change the same users at the same moments, one transaction per change: each
    # must derive the current and historical rows from the other's changes too.
    users = [f"u-{i}" for i in range(150)]
    first = [(user, "DK", None, f"a-{user}", datetime(2026, 1, 1, tzinfo=UTC)) for user in users]
    second = [(user, None, "plus", f"b-{user}", datetime(2026, 1, 2, tzinfo=UTC)) for user in users]
    other = PostgresWarehouse(url, schema=store.schema)
    other.prepare(app.schema)

    def writer(warehouse: PostgresWarehouse, rows: list[tuple[Any, ...]]) -> Callable[[], None]:
        def write_each() -> None:
            for row in rows:
                one = ChangeSet()
                one.dimension_changes["dim_user"] = [row]
                while True:
                    try:
                        warehouse.write(one)
                        break
                    except WarehouseUnavailable:  # a deadlock, say: the runtime would retry
                        continue

        return write_each

    errors = run_together([writer(store, first), writer(other, second)])
    other.close()
    assert errors == []
    assert store.query("SELECT DISTINCT country, segment, updated_at FROM dim_user").rows == [
        ("DK", "plus", datetime(2026, 1, 2))
    ]
    assert store.query(
        "SELECT country, segment, valid_from, valid_to, count(*) FROM dim_user__history "
        "GROUP BY 1, 2, 3, 4 ORDER BY 3"
    ).rows == [
        ("DK", None, datetime(2026, 1, 1), datetime(2026, 1, 2), len(users)),
        ("DK", "plus", datetime(2026, 1, 2), None, len(users)),
    ]


def test_a_naive_timestamp_counts_as_utc_as_in_duckdb(store: PostgresWarehouse) -> None:
    row = (*transaction("t-1", "e-1")[:-1], datetime(2026, 1, 1, 12))
    store.write(facts(row))
    assert store.query("SELECT occurred_at FROM fact_card_transaction").rows == [
        (datetime(2026, 1, 1, 12),)
    ]


def test_a_replay_of_many_rows_leaves_the_planner_knowing_the_tables_sizes(
    store: PostgresWarehouse,
) -> None:
    count = REFRESH_STATISTICS_ROWS + 500
    batches = [([settled(f"t-{i}") for i in range(count)], "the only batch")]

    replay(app, batches, store, prepared=True)

    # What ANALYZE records: without it, a table PostgreSQL never looked at has no row estimate.
    assert estimated_rows(store, "fact_card_transaction") == count


def test_a_rebuild_refreshes_the_statistics_of_the_table_it_swapped_in(
    store: PostgresWarehouse,
) -> None:
    count = REFRESH_STATISTICS_ROWS + 500
    batches = [([settled(f"t-{i}") for i in range(count)], "the only batch")]

    rebuild_fact(app, "CardTransaction", batches, store)

    assert estimated_rows(store, "fact_card_transaction") == count


def estimated_rows(store: PostgresWarehouse, table: str) -> float:
    [(estimated,)] = store.query(
        "SELECT reltuples FROM pg_class WHERE oid = ?::regclass", (table,)
    ).rows
    return float(estimated)
