"""Scenario 11 of issue 8 (the dashboard's 401s are in tests/insight/test_dashboard*.py):

* `factflow query` cannot change the warehouse, checked against the database's own tables (the
  dashboard reads through the same `open_warehouse(url, read_only=True).read`);
* names and values a user gives `factflow kpi --by/--where` are never spliced into SQL;
* a password in a connection URL never shows in logs, errors, dead-letter reasons or
  `factflow status`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from click.testing import CliRunner, Result

from conftest import rabbitmqctl, service_url
from factflow.cli import main
from factflow.cli.locations import open_warehouse
from factflow.examples.banking import app
from factflow.insight.metric_sql import Question, metric_sql
from filled_warehouse import filled_warehouse
from reliability.conftest import ReliabilityTable
from reliability.ledger import table_checksums

pytestmark = pytest.mark.reliability


def factflow(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with filled_warehouse(request.param, tmp_path) as url:
        yield request.param, url


def checksums(url: str) -> dict[str, str]:
    store = open_warehouse(url, read_only=True)
    try:
        return table_checksums(store)
    finally:
        store.close()


WRITES = [
    "INSERT INTO dim_user (user_id, inferred) VALUES ('intruder', true)",
    "UPDATE fact_card_transaction SET amount = amount + 1",
    "DELETE FROM fact_card_transaction",
    "DELETE FROM factflow_dead_letters",
    "TRUNCATE fact_card_transaction",
    "DROP TABLE dim_user",
    "DROP VIEW IF EXISTS v_card_transaction",
    "ALTER TABLE dim_user ADD COLUMN pwned INTEGER",
    "CREATE TABLE pwned AS SELECT * FROM dim_user",
    "CREATE OR REPLACE VIEW dim_user_view AS SELECT 1 AS one",
    "SELECT * INTO pwned FROM dim_user",
    "WITH gone AS (DELETE FROM dim_user RETURNING *) SELECT count(*) FROM gone",
    "SELECT 1; DELETE FROM fact_card_transaction",
    "COPY dim_user TO '{folder}/users.csv'",
    "COPY (SELECT * FROM dim_user) TO '{folder}/query.csv'",
    "COPY dim_user FROM '{folder}/users.csv'",
    "ATTACH '{folder}/other.duckdb' AS other",
    "EXPORT DATABASE '{folder}/export'",
    "SET memory_limit = '8GB'",
    "SET default_transaction_read_only = off",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA enable_profiling",
    "CHECKPOINT",
    "DO $$ BEGIN DELETE FROM fact_card_transaction; END $$",
    "BEGIN; DELETE FROM fact_card_transaction; COMMIT",
    "COMMIT; DELETE FROM fact_card_transaction",
    "SELECT * FROM dim_user FOR UPDATE",
    "VACUUM",
]


def test_factflow_query_cannot_write(
    filled: tuple[str, str], tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    """Each statement through `factflow query`; afterwards every table (model, dead letters)
    has the same rows and no file was written."""
    backend, url = filled
    folder = tmp_path / "out"
    folder.mkdir()
    before = checksums(url)
    accepted = []
    for statement in WRITES:
        result = factflow("query", statement.format(folder=folder), "--warehouse", url)
        if result.exit_code == 0:
            accepted.append(statement)  # allowed only if it changed nothing (checked below)
    after = checksums(url)
    written = sorted(p.name for p in folder.rglob("*"))
    passed = after == before and not written
    detail = f"{len(WRITES) - len(accepted)} of {len(WRITES)} refused; ran harmlessly: {accepted}"
    reliability_table.add_result(
        f"11 factflow query cannot write ({backend})", passed=passed, detail=detail
    )
    assert after == before, {
        t: (before.get(t), after.get(t)) for t in after if after[t] != before.get(t)
    }
    assert not written, written
    # Statements that are plain reads of a setting may run; none that writes may.
    assert not any(s.split()[0] in ("INSERT", "UPDATE", "DELETE", "DROP") for s in accepted)


HOSTILE_NAMES = [
    "segment; DROP TABLE dim_user",
    'segment" FROM dim_user; --',
    "1) OR (1=1",
    "currency/**/UNION/**/SELECT/**/user_id/**/FROM/**/dim_user",
]
HOSTILE_VALUES = [
    "EUR' OR '1'='1",
    "EUR'; DROP TABLE dim_user; --",
    "EUR\\'; DELETE FROM fact_card_transaction; --",
    "$1",
    "?",
    "%s",
    "') OR 1=1 --",
]


def test_kpi_names_and_values_from_users_never_reach_the_sql(
    filled: tuple[str, str], reliability_table: ReliabilityTable
) -> None:
    """Unknown `--by`/`--where` names are refused with the list of known ones; hostile values
    are parameters: they match nothing, and no table changes."""
    backend, url = filled
    before = checksums(url)
    problems = []
    for name in HOSTILE_NAMES:
        for option in ("--by", "--where"):
            argument = name if option == "--by" else f"{name}=EUR"
            result = factflow("kpi", "spend_by_currency", option, argument, "--warehouse", url)
            if result.exit_code == 0 or "it can by" not in result.output + str(result.exception):
                problems.append(f"{option} {argument!r}: {result.output.strip()[:200]}")
    for value in HOSTILE_VALUES:
        result = factflow(
            "kpi",
            "spend_by_currency",
            "--where",
            f"currency={value}",
            "--warehouse",
            url,
            "--format",
            "json",
        )
        if result.exit_code != 0 or json.loads(result.output)["rows"]:
            problems.append(f"value {value!r}: {result.output.strip()[:200]}")
        sql, parameters = metric_sql(
            app.kpi("spend_by_currency"),  # type: ignore[arg-type]
            app.schema,
            Question(where={"currency": [value]}),
            dialect=backend,
            placeholder=lambda n: f":p{n}",
        )
        if value in sql or parameters != [value]:
            problems.append(f"value {value!r} spliced into {sql!r}")
    after = checksums(url)
    reliability_table.add_result(
        f"11 kpi --by/--where: hostile names and values ({backend})",
        passed=not problems and after == before,
        detail="; ".join(problems)[:400],
    )
    assert not problems, problems
    assert after == before


# -- passwords in connection URLs ---------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_briefly(args: list[str], seconds: float, cwd: Path) -> str:
    """`factflow ARGS` for at most `seconds` (then SIGTERM); its stdout and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "factflow", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        output, _ = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    return output.decode(errors="replace")


SECRET = f"S3cret-{uuid.uuid4().hex[:8]}"


def test_a_password_never_shows_when_servers_are_unreachable(
    tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    """Wrong ports with a password in the URL: `factflow run` (retrying, logging JSON and
    console lines), `factflow status` and `factflow query` say what failed, never the
    password."""
    amqp = f"amqp://kpi:{SECRET}@127.0.0.1:{closed_port()}/"
    postgres = f"postgresql://kpi:{SECRET}@127.0.0.1:{closed_port()}/test"
    duck = f"duckdb:///{tmp_path / 'kpi.duckdb'}"
    log = f"log:///{tmp_path / 'log'}"
    outputs = {
        "run, broker down (json)": run_briefly(
            ["run", "--transport", amqp, "--warehouse", duck, "--log-format", "json"], 4, tmp_path
        ),
        "run, broker down (console)": run_briefly(
            [
                "run",
                "--transport",
                amqp,
                "--warehouse",
                duck,
                "--log-format",
                "console",
                "--log-level",
                "DEBUG",
            ],
            4,
            tmp_path,
        ),
        "run, warehouse down": run_briefly(
            ["run", "--transport", log, "--warehouse", postgres, "--log-format", "json"],
            6,
            tmp_path,
        ),
        "status, both down": run_briefly(
            ["status", "--transport", amqp, "--warehouse", postgres], 30, tmp_path
        ),
        "status --format json, broker down": run_briefly(
            ["status", "--transport", amqp, "--warehouse", duck, "--format", "json"], 30, tmp_path
        ),
        "query, warehouse down": run_briefly(
            ["query", "SELECT 1", "--warehouse", postgres], 30, tmp_path
        ),
        "dlq list, warehouse down": run_briefly(
            ["dlq", "list", "--warehouse", postgres], 30, tmp_path
        ),
    }
    leaked = [name for name, output in outputs.items() if SECRET in output]
    silent = [name for name, output in outputs.items() if "127.0.0.1" not in output]
    reliability_table.add_result(
        "11 password in URL, servers unreachable: run/status/query/dlq output",
        passed=not leaked and not silent,
        detail=f"leaked in: {leaked}; no error shown in: {silent}",
    )
    assert not leaked, {name: outputs[name][-2000:] for name in leaked}
    # Each says where it failed (the host), so the masking hides the password only.
    assert not silent, {name: outputs[name][-2000:] for name in silent}


@pytest.mark.rabbitmq
def test_a_wrong_rabbitmq_password_is_not_repeated(tmp_path: Path) -> None:
    base = urlsplit(service_url("rabbitmq"))
    wrong = base._replace(netloc=f"guest:{SECRET}@{base.hostname}:{base.port}").geturl()
    output = run_briefly(
        ["run", "--transport", wrong, "--warehouse", f"duckdb:///{tmp_path / 'k.duckdb'}"],
        30,
        tmp_path,
    )
    assert "refused" in output and SECRET not in output, output


@pytest.fixture
def rabbitmq_user(amqp_url: str) -> Iterator[str]:
    """`amqp_url` with a user of its own whose password is `SECRET`; deleted afterwards."""
    parts = urlsplit(amqp_url)
    user = f"ff_{uuid.uuid4().hex[:10]}"
    vhost = parts.path.lstrip("/")
    rabbitmqctl("add_user", user, SECRET)
    try:
        rabbitmqctl("set_permissions", "-p", vhost.replace("%2F", "/"), user, ".*", ".*", ".*")
        yield parts._replace(
            netloc=f"{user}:{quote(SECRET)}@{parts.hostname}:{parts.port}"
        ).geturl()
    finally:
        rabbitmqctl("delete_user", user)


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_a_password_never_shows_in_a_working_service(
    rabbitmq_user: str, tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    """A real run with passwords in both URLs (PostgreSQL here trusts loopback, so any password
    connects): the service's log, the dead letters' reasons and `factflow status` (both
    formats) hold no password."""
    from factflow.transport.base import Outgoing
    from factflow.transport.rabbitmq import RabbitMQTransport
    from factflow.warehouse.postgres import PostgresWarehouse

    pg = urlsplit(service_url("postgres"))
    schema = f"test_{uuid.uuid4().hex[:12]}"
    warehouse = pg._replace(
        netloc=f"{pg.username}:{SECRET}@{pg.hostname}:{pg.port}", query=f"schema={schema}"
    ).geturl()
    good = json.dumps(
        {
            "id": "e-1",
            "type": "user.user_created",
            "source": "s",
            "occurred_at": "2026-03-01T12:00:00Z",
            "version": 1,
            "data": {"user_id": "u-1", "country": "DK", "segment": "plus"},
        }
    ).encode()
    bad = [b"not json", good.replace(b'"plus"', b'"pl\xffus"'), good.replace(b"user_id", b"x")]
    try:
        with RabbitMQTransport(rabbitmq_user) as broker:
            broker.subscribe("kpi", ["user.*"]).close()
            broker.publish(
                Outgoing(type="user.user_created", id=f"m-{i}", body=body)
                for i, body in enumerate([good, *bad])
            )
        log = run_briefly(
            [
                "run",
                "--transport",
                rabbitmq_user,
                "--warehouse",
                warehouse,
                "--until-idle",
                "--max-wait",
                "1",
                "--log-format",
                "json",
                "--log-level",
                "DEBUG",
            ],
            120,
            tmp_path,
        )
        status = [
            run_briefly(
                [
                    "status",
                    "--transport",
                    rabbitmq_user,
                    "--warehouse",
                    warehouse,
                    "--format",
                    output,
                ],
                60,
                tmp_path,
            )
            for output in ("table", "json")
        ]
        with PostgresWarehouse(warehouse) as store:
            reasons = [letter.reason for letter in store.dead_letters()]
    finally:
        with PostgresWarehouse(service_url("postgres"), schema=schema) as store:
            store.drop_schema()
    leaks = [
        where
        for where, text in [("log", log), ("status", status[0]), ("status json", status[1])]
        + [("dead letter", r) for r in reasons]
        if SECRET in text
    ]
    reliability_table.add_result(
        "11 password in URL, working service: log, dead letters, status",
        passed=not leaks and len(reasons) == 3,
        published=4,
        detail=f"leaked in {leaks}; {len(reasons)} dead letters",
    )
    assert not leaks, (log[-3000:], status)
    assert len(reasons) == 3, (reasons, log[-3000:])
    assert json.loads(status[1])["pipelines"], status[1]
