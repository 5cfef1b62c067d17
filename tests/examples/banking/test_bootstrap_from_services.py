"""One simulation as an event stream and as the services' own tables, bootstrapped both ways.

`factflow simulate --out --to` writes both; `factflow bootstrap` fills one warehouse from the
file and another from the tables through the banking app's bootstrap sources. Where the tables
keep the history a KPI needs, both give the same answer as the independent oracle; where they do
not (spend_by_segment), the difference is exactly the documented one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from banking_oracle import KPI_NAMES, Message, expected_kpis, parse_valid
from conftest import service_url
from factflow._urls import pop_query_parameter
from factflow.bootstrap.sources import bootstrap_sources
from factflow.cli import main
from factflow.examples.banking import app
from factflow.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.postgres

SIMULATION = [
    "--events", "4000", "--seed", "13", "--duplicates", "0.03", "--republications", "0.03",
    "--shuffle-window", "300", "--bad-lines", "0.01",
]  # fmt: skip
#: The KPIs whose history the services' tables keep.
RECOVERABLE = ("travel_card_foreign_visa_users", "active_users_by_month", "spend_by_currency",
               "goals_by_category")  # fmt: skip
Rows = list[dict[str, Any]]


def factflow(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def in_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@dataclass(frozen=True)
class Simulation:
    messages: list[bytes]
    events: Path
    source: str  # the services' database, with ?schema=
    folder: Path


@pytest.fixture(scope="module")
def simulation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulation]:
    server = service_url("postgres")
    schema = f"bank_{uuid.uuid4().hex[:12]}"
    folder = tmp_path_factory.mktemp("simulation")
    events = folder / "events.jsonl"
    source = in_schema(server, schema)
    try:
        result = factflow("simulate", *SIMULATION, "--out", str(events), "--to", source)
        assert result.exit_code == 0, result.output
        yield Simulation(events.read_bytes().splitlines(), events, source, folder)
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def bootstrap(source: str, warehouse: str, *more: str) -> Result:
    result = factflow(
        "bootstrap", "--app", "factflow.examples.banking", "--from", source,
        "--warehouse", warehouse, "--batch-size", "700", *more,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def kpis(warehouse: str) -> dict[str, Rows]:
    answers = {}
    for name in KPI_NAMES:
        result = factflow("kpi", name, "--warehouse", warehouse, "--format", "json")
        assert result.exit_code == 0, result.output
        answers[name] = json.loads(result.output)["rows"]
    return answers


@pytest.fixture(scope="module")
def from_file(simulation: Simulation) -> dict[str, Rows]:
    warehouse = f"duckdb:///{simulation.folder}/from_file.duckdb"
    bootstrap(str(simulation.events), warehouse)
    return kpis(warehouse)


@pytest.fixture(scope="module")
def from_services(simulation: Simulation) -> dict[str, Rows]:
    warehouse = f"duckdb:///{simulation.folder}/from_services.duckdb"
    bootstrap(simulation.source, warehouse)
    return kpis(warehouse)


def valid(messages: list[bytes]) -> list[Message]:
    return [m for m in map(parse_valid, messages) if m is not None]


def table(source: str, sql: str) -> list[tuple[Any, ...]]:
    url, schema = pop_query_parameter(source, "schema")
    with psycopg.connect(url) as connection:
        connection.execute(f"SET search_path TO {schema}")
        return connection.execute(sql).fetchall()


# -- simulate --to ----------------------------------------------------------------------------


def test_simulate_to_writes_the_services_tables_of_the_same_business_events(
    simulation: Simulation,
) -> None:
    messages = valid(simulation.messages)

    def distinct(kind: str, field: str) -> set[str]:
        return {m.data[field] for m in messages if m.type == kind}

    assert {r[0] for r in table(simulation.source, "SELECT user_id FROM users")} == distinct(
        "user.user_created", "user_id"
    )
    assert {r[0] for r in table(simulation.source, "SELECT card_id FROM cards")} == distinct(
        "card.card_issued", "card_id"
    )
    transactions = table(
        simulation.source, "SELECT transaction_id, billing_amount, created_at FROM transactions"
    )
    settled = {
        m.data["transaction_id"]: (Decimal(m.data["billing_amount"]), m.occurred_at)
        for m in messages
        if m.type == "card.transaction_settled"
    }
    assert {t: (amount, at) for t, amount, at in transactions} == settled
    deleted = table(simulation.source, "SELECT goal_id FROM goals WHERE deleted_at IS NOT NULL")
    assert {r[0] for r in deleted} == distinct("goal.goal_deleted", "goal_id")


def test_simulate_refuses_to_write_over_existing_tables(simulation: Simulation) -> None:
    result = factflow("simulate", "--events", "10", "--to", simulation.source)
    assert result.exit_code == 1
    assert "already holds a table of the banking services" in result.output
    assert "?schema=NAME" in result.output


# -- bootstrap from the services' tables ------------------------------------------------------


def test_every_kpi_whose_history_the_tables_keep_equals_the_event_stream(
    simulation: Simulation, from_file: dict[str, Rows], from_services: dict[str, Rows]
) -> None:
    oracle = expected_kpis(simulation.messages)
    assert from_file == oracle
    for name in RECOVERABLE:
        assert from_services[name] == oracle[name], name
    assert oracle["travel_card_foreign_visa_users"][0]["users"] > 0


def as_the_users_table_tells(messages: list[bytes]) -> list[bytes]:
    """The stream as the `users` table of current state still tells it: per user, a creation
    if it never changed, else one change at its last change time with its final country and
    segment. Everything else of the stream stays."""
    kept: list[bytes] = []
    changes: dict[str, dict[datetime, Message]] = {}
    for raw in messages:
        message = parse_valid(raw)
        if message is None:
            continue
        if message.type in ("user.user_created", "user.user_updated"):
            # A re-publication under another id is the same change: one per user and instant.
            changes.setdefault(message.data["user_id"], {})[message.occurred_at] = message
        else:
            kept.append(raw)
    for user_id, by_time in changes.items():
        state: dict[str, str] = {}
        for at in sorted(by_time):
            state |= {
                k: by_time[at].data[k] for k in ("country", "segment") if k in by_time[at].data
            }
        kind = "user.user_created" if len(by_time) == 1 else "user.user_updated"
        last = {"occurred_at": max(by_time).isoformat(), "version": 1, "source": "user-service"}
        data = {"user_id": user_id} | state
        kept.append(
            json.dumps({"id": f"state-{user_id}", "type": kind, **last, "data": data}).encode()
        )
    return kept


def test_spend_by_segment_knows_a_segment_only_from_the_user_s_last_change_on(
    simulation: Simulation, from_file: dict[str, Rows], from_services: dict[str, Rows]
) -> None:
    current_state = expected_kpis(as_the_users_table_tells(simulation.messages))
    assert from_services["spend_by_segment"] == current_state["spend_by_segment"]
    assert from_services["spend_by_segment"] != from_file["spend_by_segment"]

    def per_currency(rows: Rows) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = {}
        for row in rows:
            currency = row["billing_currency"]
            sums[currency] = sums.get(currency, Decimal(0)) + Decimal(row["billing_amount"])
        return sums

    # Nothing is lost: spend whose segment is unknown is spend moved to "unknown".
    assert per_currency(from_services["spend_by_segment"]) == per_currency(
        from_file["spend_by_segment"]
    )
    assert {r["segment"] for r in from_services["spend_by_segment"]} == {
        "plus", "standard", "unknown",
    }  # fmt: skip


def test_a_bootstrap_overlapping_the_live_stream_changes_no_kpi(
    simulation: Simulation, from_file: dict[str, Rows]
) -> None:
    warehouse = f"duckdb:///{simulation.folder}/overlap.duckdb"
    bootstrap(str(simulation.events), warehouse)
    bootstrap(simulation.source, warehouse)
    assert kpis(warehouse) == from_file


def model(store: DuckDBWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    tables = [t for (t,) in store.query("SELECT table_name FROM duckdb_tables()").rows]
    return {
        t: store.query(f"SELECT * FROM {t} ORDER BY ALL").rows
        for t in tables
        if t != "factflow_event_stats"  # counts deliveries, not the model
    }


def test_running_the_source_bootstrap_again_changes_nothing(simulation: Simulation) -> None:
    with DuckDBWarehouse(None) as store:
        first = bootstrap_sources(app, simulation.source, store, batch_size=500)
        before = model(store)
        again = bootstrap_sources(app, simulation.source, store)
        assert model(store) == before
    assert first.messages == again.messages > 0
    assert first.dead_letters == again.dead_letters == 0
    assert before["fact_account_balance_change"] == []  # balances are not replayed


def test_one_source_can_be_run_alone(simulation: Simulation) -> None:
    warehouse = f"duckdb:///{simulation.folder}/transactions_only.duckdb"
    result = bootstrap(simulation.source, warehouse, "--source", "transactions")
    settled = {
        m.data["transaction_id"]
        for m in valid(simulation.messages)
        if m.type == "card.transaction_settled"
    }
    assert f"events: {len(settled)} " in result.output
    with DuckDBWarehouse(warehouse.removeprefix("duckdb:///"), read_only=True) as store:
        assert store.query("SELECT count(*) FROM dim_card WHERE NOT inferred").rows == [(0,)]


def test_a_database_without_the_services_tables_is_refused_with_what_to_do(
    simulation: Simulation,
) -> None:
    empty = in_schema(service_url("postgres"), f"empty_{uuid.uuid4().hex[:12]}")
    result = factflow(
        "bootstrap", "--from", empty, "--warehouse", f"duckdb:///{simulation.folder}/empty.duckdb"
    )
    assert result.exit_code == 1
    assert "has no table 'users'" in result.output
    assert "factflow simulate --to URL" in result.output
