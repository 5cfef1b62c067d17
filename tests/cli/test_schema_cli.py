"""`factflow schema show|diff|migrate`, and `run`/`bootstrap` refusing a warehouse whose tables
differ from the model (a warehouse an older version of the banking app made)."""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest
from click.testing import CliRunner, Result

from conftest import service_url
from factflow.cli import main
from factflow.examples.banking import app
from factflow.warehouse.duckdb import DuckDBWarehouse
from factflow.warehouse.postgres import PostgresWarehouse

APP = "factflow.examples.banking"


def factflow(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def factflow_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """In a process of its own: `run` installs signal handlers and configures logging."""
    return subprocess.run(
        [sys.executable, "-m", "factflow", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def made_by_an_older_app(path: Path) -> str:
    """A DuckDB warehouse of the banking app from before users had a segment, plus a table the
    app no longer has, holding two rows."""
    with DuckDBWarehouse(path) as store:
        store.prepare(app.schema)
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE dim_user DROP COLUMN segment")
        con.execute("CREATE TABLE fact_old_signup (user_id VARCHAR)")
        con.execute("INSERT INTO fact_old_signup VALUES ('u-1'), ('u-2')")
    return f"duckdb:///{path}"


def test_schema_show_prints_ddl_that_creates_the_models_tables_on_a_fresh_duckdb() -> None:
    result = factflow("schema", "show", "--app", APP, "--backend", "duckdb")
    assert result.exit_code == 0, result.output
    with duckdb.connect() as con:
        con.execute(result.output)
        created = {name for (name,) in con.execute("SHOW TABLES").fetchall()}
    assert created == {table.name for table in app.schema.tables()}


@pytest.mark.postgres
def test_schema_show_for_postgresql_is_valid_there_too() -> None:
    result = factflow("schema", "show", "--app", APP, "--warehouse", "postgresql://kpi@db/x")
    assert result.exit_code == 0, result.output
    assert "numeric(18, 4)" in result.output
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with PostgresWarehouse(service_url("postgres"), schema=schema) as store:
        try:
            store.migrate([result.output])
            tables = {row[0] for row in store.query("SELECT tablename FROM pg_tables").rows}
        finally:
            store.drop_schema()
    assert {table.name for table in app.schema.tables()} <= tables


def test_schema_diff_exits_0_when_the_warehouse_matches_the_model(tmp_path: Path) -> None:
    warehouse = f"duckdb:///{tmp_path}/kpi.duckdb"
    assert factflow("schema", "migrate", "--app", APP, "--warehouse", warehouse).exit_code == 0
    result = factflow("schema", "diff", "--app", APP, "--warehouse", warehouse)
    assert result.exit_code == 0, result.output
    assert "schema version 1" in result.output
    assert "the same tables and columns" in result.output


def test_schema_diff_exits_1_listing_additive_and_destructive_changes(tmp_path: Path) -> None:
    warehouse = made_by_an_older_app(tmp_path / "kpi.duckdb")
    result = factflow("schema", "diff", "--app", APP, "--warehouse", warehouse)
    assert result.exit_code == 1
    assert result.output.splitlines()[1:] == [
        "additive (factflow schema migrate applies them):",
        "  + column dim_user.segment VARCHAR",
        "destructive (factflow schema migrate --allow-destructive applies them):",
        "  - table fact_old_signup: 2 rows would be lost",
        "factflow run and bootstrap refuse to write to it until it is migrated.",
    ]


def test_schema_migrate_applies_what_is_additive_and_refuses_what_would_lose_data(
    tmp_path: Path,
) -> None:
    warehouse = made_by_an_older_app(tmp_path / "kpi.duckdb")

    dry = factflow("schema", "migrate", "--app", APP, "--warehouse", warehouse, "--dry-run")
    assert dry.exit_code == 0
    assert 'ALTER TABLE "dim_user" ADD COLUMN "segment" VARCHAR;' in dry.output
    assert 'DROP TABLE "fact_old_signup";' in dry.output
    assert factflow("schema", "diff", "--app", APP, "--warehouse", warehouse).exit_code == 1

    migrated = factflow("schema", "migrate", "--app", APP, "--warehouse", warehouse)
    assert migrated.exit_code == 0  # what it refused does not keep the app from writing
    assert migrated.output.splitlines() == [
        "migrated to schema version 1:",
        "  + column dim_user.segment VARCHAR",
        "refused, as destructive (--allow-destructive applies them):",
        "  - table fact_old_signup: 2 rows would be lost",
    ]

    dropped = factflow(
        "schema", "migrate", "--app", APP, "--warehouse", warehouse, "--allow-destructive"
    )
    assert dropped.exit_code == 0, dropped.output
    assert dropped.output.splitlines() == [
        "migrated to schema version 2:",
        "  - table fact_old_signup",
    ]
    assert factflow("schema", "diff", "--app", APP, "--warehouse", warehouse).exit_code == 0


def test_schema_migrate_exits_1_when_what_it_refused_keeps_the_app_from_writing(
    tmp_path: Path,
) -> None:
    warehouse = made_by_an_older_app(tmp_path / "kpi.duckdb")
    with duckdb.connect(str(tmp_path / "kpi.duckdb")) as con:
        con.execute("ALTER TABLE fact_card_transaction ALTER COLUMN amount SET DATA TYPE VARCHAR")
    result = factflow("schema", "migrate", "--app", APP, "--warehouse", warehouse)
    assert result.exit_code == 1
    assert (
        "  ! column fact_card_transaction.amount: VARCHAR → DECIMAL(18, 4) (not a widening): "
        "0 values would be cast, losing what DECIMAL(18, 4) cannot keep" in result.output
    )
    assert result.output.endswith(
        "factflow run and bootstrap refuse to write to it until they are applied.\n"
    )


def test_run_refuses_a_warehouse_whose_tables_differ_naming_the_command_that_fixes_it(
    tmp_path: Path,
) -> None:
    warehouse = made_by_an_older_app(tmp_path / "kpi.duckdb")
    run = ("run", "--app", APP, "--transport", "log:///log", "--warehouse", warehouse)

    refused = factflow_process(*run, "--until-idle", cwd=tmp_path)
    assert refused.returncode == 1
    assert "+ column dim_user.segment VARCHAR" in refused.stderr
    assert "fact_old_signup" not in refused.stderr  # a table the app no longer writes is harmless
    fix = f"factflow schema migrate --app {APP} --warehouse {warehouse}"
    assert fix in refused.stderr

    assert factflow(*fix.split()[1:]).exit_code == 0
    started = factflow_process(*run, "--until-idle", cwd=tmp_path)
    assert started.returncode == 0, started.stderr


def test_bootstrap_refuses_a_warehouse_whose_tables_differ(tmp_path: Path) -> None:
    warehouse = made_by_an_older_app(tmp_path / "kpi.duckdb")
    events = tmp_path / "events.jsonl"
    events.write_text("")
    result = factflow("bootstrap", "--app", APP, "--from", str(events), "--warehouse", warehouse)
    assert result.exit_code == 1
    assert "factflow schema migrate --app" in result.output


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A schema of this test's own, with a password in the URL (the test server trusts)."""
    base = urlsplit(service_url("postgres"))
    netloc = f"{base.username or 'postgres'}:s3cret@{base.hostname}:{base.port or 5432}"
    url = base._replace(netloc=netloc, query=f"schema=test_{uuid.uuid4().hex[:12]}").geturl()
    yield url
    with PostgresWarehouse(url) as store:
        store.drop_schema()


@pytest.mark.postgres
def test_schema_commands_on_postgresql(postgres_url: str) -> None:
    assert factflow("schema", "migrate", "--app", APP, "--warehouse", postgres_url).exit_code == 0
    with PostgresWarehouse(postgres_url) as store:
        store.migrate(
            [
                # The views over the facts read dim_user.segment: PostgreSQL keeps it for them.
                "DROP VIEW v_card_transaction",
                "DROP VIEW v_account_balance_change",
                "ALTER TABLE dim_user DROP COLUMN segment",
                "ALTER TABLE dim_goal ADD COLUMN x text",
            ]
        )
    result = factflow("schema", "diff", "--app", APP, "--warehouse", postgres_url)
    assert result.exit_code == 1
    assert "schema version 1" in result.output
    assert "  + column dim_user.segment text" in result.output
    assert "  - column dim_goal.x text: 0 values would be lost" in result.output
    assert "s3cret" not in result.output

    kept = factflow("schema", "migrate", "--app", APP, "--warehouse", postgres_url)
    assert kept.exit_code == 0
    assert "migrated to schema version 2" in kept.output
    assert "  - column dim_goal.x text: 0 values would be lost" in kept.output

    result = factflow(
        "schema", "migrate", "--app", APP, "--warehouse", postgres_url, "--allow-destructive"
    )
    assert result.exit_code == 0, result.output
    assert "migrated to schema version 3" in result.output
    assert factflow("schema", "diff", "--app", APP, "--warehouse", postgres_url).exit_code == 0
