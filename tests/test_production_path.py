"""The production path on the real servers: RabbitMQ (or NATS JetStream) → `factflow run` →
PostgreSQL, checked against the independent computation of every KPI — through kill -9 and
restarts, a warehouse outage under load, and two processes sharing one consumer group."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from banking_oracle import expected_kpis, parse_valid
from conftest import service_url
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.transport.publishing import Unroutable, outgoing
from factflow.warehouse.postgres import PostgresWarehouse
from tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONSUMED_DOMAINS = ("user", "account", "card", "goal")
SUBSCRIPTION = [f"{domain}.*" for domain in CONSUMED_DOMAINS]


@pytest.fixture
def warehouse_url() -> Iterator[str]:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    url = f"{service_url('postgres')}?schema={schema}"
    yield url
    with PostgresWarehouse(url) as store:
        store.drop_schema()


def start_service(
    transport: str, warehouse: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:  # the child keeps its own handle
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "factflow",
                "run",
                "--transport",
                transport,
                "--warehouse",
                warehouse,
                "--batch-size",
                "400",
                "--max-wait",
                "0.2",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )


def publish_file(messages: list[bytes], transport: str, tmp_path: Path) -> None:
    events = tmp_path / f"events-{uuid.uuid4().hex[:6]}.jsonl"
    events.write_bytes(b"\n".join(messages) + b"\n")
    result = subprocess.run(
        [sys.executable, "-m", "factflow", "publish", str(events), "--transport", transport],
        capture_output=True,
        check=False,
    )
    # Lines whose type cannot be read are refused (exit 1) and reported; the rest is published.
    assert result.returncode in (0, 1), result.stderr.decode()
    assert b"published" in result.stdout


def declare_queue(transport_url: str) -> None:
    """Declare the group's queue and bindings before publishing, as the service would."""
    from factflow.cli.locations import open_transport

    transport = open_transport(transport_url)
    transport.subscribe("kpi", SUBSCRIPTION).close()
    transport.close()


def assert_matches_the_contract(messages: list[bytes], warehouse_url: str) -> None:
    refused: list[Unroutable] = []
    routable = list(outgoing(messages, refused))
    consumed = [m.body for m in routable if m.domain in CONSUMED_DOMAINS]
    expected = expected_kpis(messages)
    with PostgresWarehouse(warehouse_url) as store:
        harness = Harness(app, store)
        for name in app.kpis:
            assert harness.kpi(name) == expected[name], (name, harness.kpi(name), expected[name])
        balances = {
            parsed.id
            for m in consumed
            if (parsed := parse_valid(m)) and parsed.type == "account.balance_updated"
        }
        assert store.query("SELECT count(*) FROM fact_account_balance_change").rows[0][0] == len(
            balances
        )
        assert {d.raw for d in store.dead_letters()} == {
            m for m in consumed if parse_valid(m) is None
        }


def until_idle(transport: str, warehouse: str, log: Path) -> None:
    """Run the service until it has found nothing to do for 3 s; it must exit 0."""
    service = start_service(transport, warehouse, log, "--until-idle", "--max-wait", "3")
    assert service.wait(timeout=300) == 0, log.read_text()


@pytest.mark.rabbitmq
def test_rabbitmq_to_postgres_survives_kill_9_and_gives_the_contract_kpis(
    amqp_url: str, warehouse_url: str, tmp_path: Path
) -> None:
    messages = list(
        simulate(
            SimulationOptions(
                events=15_000,
                seed=31,
                duplicates=0.03,
                republications=0.02,
                shuffle_window=300,
                bad_lines=0.005,
            )
        )
    )
    declare_queue(amqp_url)
    publish_file(messages, amqp_url, tmp_path)
    log = tmp_path / "service.log"
    rng = random.Random(9)
    killed_while_working = 0
    for _ in range(3):
        service = start_service(amqp_url, warehouse_url, log)
        time.sleep(rng.uniform(2.0, 3.5))
        if service.poll() is None:
            killed_while_working += 1
            service.send_signal(signal.SIGKILL)
        service.wait()
    until_idle(amqp_url, warehouse_url, log)
    assert killed_while_working >= 2, log.read_text()
    assert_matches_the_contract(messages, warehouse_url)


@pytest.mark.rabbitmq
def test_a_warehouse_outage_under_load_loses_nothing(
    amqp_url: str, warehouse_url: str, tmp_path: Path
) -> None:
    messages = list(
        simulate(SimulationOptions(events=8000, seed=32, duplicates=0.02, bad_lines=0.005))
    )
    target = urlsplit(warehouse_url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432))
    through_proxy = target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}").geturl()
    declare_queue(amqp_url)
    log = tmp_path / "service.log"
    service = start_service(amqp_url, through_proxy, log, "--until-idle", "--max-wait", "5")
    try:
        half = len(messages) // 2
        publisher = threading.Thread(
            target=publish_file, args=(messages[:half], amqp_url, tmp_path)
        )
        publisher.start()
        # Once the service works on the warehouse: a connection attempted while the proxy is
        # cut hangs until it is restored, and an outage nobody met would prove nothing.
        deadline = time.monotonic() + 60
        while '"consuming"' not in log.read_text():
            assert time.monotonic() < deadline and service.poll() is None, log.read_text()
            time.sleep(0.05)
        time.sleep(0.5)
        proxy.cut()  # the warehouse goes away under load ...
        publish_file(messages[half:], amqp_url, tmp_path)
        time.sleep(3)
        assert service.poll() is None, "the service must wait for the warehouse, not exit"
        proxy.restore()  # ... and comes back
        publisher.join()
        assert service.wait(timeout=300) == 0, log.read_text()
    finally:
        if service.poll() is None:
            service.kill()
        proxy.close()
    assert "warehouse unavailable" in log.read_text()
    assert_matches_the_contract(messages, warehouse_url)


@pytest.mark.rabbitmq
def test_two_processes_of_one_group_share_the_load(
    amqp_url: str, warehouse_url: str, tmp_path: Path
) -> None:
    messages = list(
        simulate(SimulationOptions(events=12_000, seed=33, duplicates=0.02, shuffle_window=200))
    )
    declare_queue(amqp_url)
    publish_file(messages, amqp_url, tmp_path)
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    services = [
        start_service(
            amqp_url, warehouse_url, log, "--log-format", "json", "--until-idle", "--max-wait", "3"
        )
        for log in logs
    ]
    for service, log in zip(services, logs, strict=True):
        assert service.wait(timeout=300) == 0, log.read_text()
    for log in logs:
        stopped = [json.loads(line) for line in log.read_text().splitlines() if '"stopped"' in line]
        assert stopped and stopped[-1]["events"] > 0, log.read_text()
    assert_matches_the_contract(messages, warehouse_url)


@pytest.mark.nats
def test_nats_jetstream_to_postgres_gives_the_contract_kpis(
    warehouse_url: str, nats_prefix: str, tmp_path: Path
) -> None:
    nats_url = f"{service_url('nats')}?prefix={nats_prefix}&ack_wait=5"
    messages = list(
        simulate(
            SimulationOptions(
                events=8000,
                seed=34,
                duplicates=0.03,
                republications=0.02,
                shuffle_window=200,
                bad_lines=0.005,
            )
        )
    )
    declare_queue(nats_url)
    publish_file(messages, nats_url, tmp_path)
    log = tmp_path / "service.log"
    service = start_service(nats_url, warehouse_url, log)
    time.sleep(2)
    service.send_signal(signal.SIGKILL)
    service.wait()
    # What the killed process held comes back after `ack_wait` (5 s here): wait longer idle.
    service = start_service(nats_url, warehouse_url, log, "--until-idle", "--max-wait", "8")
    assert service.wait(timeout=300) == 0, log.read_text()
    assert_matches_the_contract(messages, warehouse_url)
