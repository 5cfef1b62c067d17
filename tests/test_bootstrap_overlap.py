"""A bootstrap overlapping the live stream on the real servers: the same business events under
other envelope ids, replayed twice (through the broker's bootstrap queue while live events flow,
and straight into the warehouse while the service writes), never count twice: every KPI equals
the independent computation over the live stream alone."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from banking_oracle import expected_kpis, parse_valid
from conftest import service_url
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.transport.files import write_lines
from factflow.transport.rabbitmq import RabbitMQTransport
from factflow.warehouse.postgres import PostgresWarehouse
from test_production_path import declare_queue, publish_file, start_service

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.fixture
def warehouse_url() -> Iterator[str]:
    url = f"{service_url('postgres')}?schema=test_{uuid.uuid4().hex[:12]}"
    yield url
    with PostgresWarehouse(url) as store:
        store.drop_schema()


def under_other_ids(messages: list[bytes]) -> list[bytes]:
    """The valid business events of `messages` again, each in an envelope of a new id, as a
    bootstrap from a service's own data would publish them.

    Balance updates are left out: their fact is keyed by the envelope id (banking.md gives a
    balance update no business key), so no bootstrap can replay them safely (docs/banking.md).
    """
    again = []
    for raw in messages:
        parsed = parse_valid(raw)
        if parsed is None or parsed.type == "account.balance_updated":
            continue
        envelope = json.loads(raw)
        envelope["id"] = str(uuid.uuid4())
        again.append(json.dumps(envelope).encode())
    return again


def bootstrap(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "factflow", "bootstrap", *args],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()


def test_a_bootstrap_overlapping_live_traffic_counts_every_business_event_once(
    amqp_url: str, warehouse_url: str, tmp_path: Path
) -> None:
    live = list(
        simulate(
            SimulationOptions(
                events=6000, seed=41, duplicates=0.02, shuffle_window=200, bad_lines=0.003
            )
        )
    )
    history = tmp_path / "history.jsonl"
    write_lines(history, under_other_ids(live))
    declare_queue(amqp_url)
    log = tmp_path / "service.log"
    service = start_service(amqp_url, warehouse_url, log, "--until-idle", "--max-wait", "4")
    try:
        half = len(live) // 2
        publish_file(live[:half], amqp_url, tmp_path)
        # Through the broker, while live events flow into the same consumer group ...
        via = threading.Thread(
            target=bootstrap,
            args=("--from", str(history), "--via", amqp_url, "--batch-size", "700",
                  "--checkpoint", str(tmp_path / "via.json")),
        )  # fmt: skip
        via.start()
        publish_file(live[half:], amqp_url, tmp_path)
        via.join()
        # ... and again straight into the warehouse, while the service still writes to it.
        bootstrap("--from", str(history), "--warehouse", warehouse_url, "--batch-size", "900",
                  "--checkpoint", str(tmp_path / "direct.json"))  # fmt: skip
        assert service.wait(timeout=300) == 0, log.read_text()
    finally:
        if service.poll() is None:
            service.kill()
    with RabbitMQTransport(amqp_url) as broker:
        assert broker.depth("kpi.bootstrap") == 0  # the service took the bootstrap queue's share
    expected = expected_kpis(live)
    with PostgresWarehouse(warehouse_url) as store:
        harness = Harness(app, store)
        for name in app.kpis:
            assert harness.kpi(name) == expected[name], name
        transactions = {
            json.loads(raw)["data"]["transaction_id"]
            for raw in live
            if (parsed := parse_valid(raw)) and parsed.type == "card.transaction_settled"
        }
        assert store.query("SELECT count(*) FROM fact_card_transaction").rows == [
            (len(transactions),)
        ]


def bootstrap_backlog_eventually(amqp_url: str, warehouse_url: str) -> int:
    """The bootstrap backlog `factflow status` reports, once the broker's count settled."""
    backlog, deadline = -1, time.monotonic() + 15
    while time.monotonic() < deadline:
        result = subprocess.run(
            [sys.executable, "-m", "factflow", "status", "--transport", amqp_url,
             "--warehouse", warehouse_url, "--format", "json"],
            capture_output=True, check=True,
        )  # fmt: skip
        report = json.loads(result.stdout)
        if report["bootstrap_backlog"] == backlog:
            break
        backlog = report["bootstrap_backlog"]
        time.sleep(0.5)
    return backlog


def test_a_bootstrap_through_the_broker_reaches_the_warehouse_through_the_service(
    amqp_url: str, warehouse_url: str, tmp_path: Path
) -> None:
    history = tmp_path / "history.jsonl"
    messages = list(simulate(SimulationOptions(events=3000, seed=42, bad_lines=0.005)))
    write_lines(history, messages)
    declare_queue(amqp_url)
    bootstrap("--from", str(history), "--via", amqp_url, "--checkpoint", str(tmp_path / "c.json"))
    with RabbitMQTransport(amqp_url) as broker:
        assert broker.depth("kpi") == 0  # nothing went to the live queue
    assert bootstrap_backlog_eventually(amqp_url, warehouse_url) == len(messages)
    service = start_service(
        amqp_url, warehouse_url, tmp_path / "service.log", "--until-idle", "--max-wait", "3"
    )
    assert service.wait(timeout=300) == 0
    expected = expected_kpis(messages)
    with PostgresWarehouse(warehouse_url) as store:
        harness = Harness(app, store)
        for name in app.kpis:
            assert harness.kpi(name) == expected[name], name
        # Unreadable lines went through the broker too, and were kept as dead letters.
        assert {d.raw for d in store.dead_letters()} == {
            m for m in messages if parse_valid(m) is None
        }
