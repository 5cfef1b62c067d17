"""Scenarios 2 and 3: the servers fail under load while the consumer runs.

* PostgreSQL crashes (``pg_ctl stop -m immediate``) and stays down 30 s; PostgreSQL hangs on a
  lock held on a fact table for longer than the broker's heartbeat: the consumer waits and
  retries, turns nothing into dead letters for it, and loses nothing.
* RabbitMQ restarts (``stop_app``/``start_app``), and is paused with SIGSTOP past the heartbeat:
  the consumer reconnects and the unacknowledged messages come again, harmlessly.

Servers that are stopped or paused are private ones (`PrivatePostgres`, `PrivateRabbitMQ`),
never the machine's shared servers. Messages are published all along by a `SteadyPublisher`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from factflow.errors import TransportUnavailable
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.transport.rabbitmq import RabbitMQTransport
from factflow.warehouse.postgres import PostgresWarehouse
from reliability.conftest import ReliabilityTable
from reliability.infra import (
    PrivatePostgres,
    PrivateRabbitMQ,
    SteadyPublisher,
    declare_group,
    start_consumer,
    stopped,
)
from reliability.ledger import Ledger, Verdict, deliverable

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def stream(seed: int, events: int = 6000) -> list[bytes]:
    return deliverable(
        simulate(
            SimulationOptions(
                events=events,
                seed=seed,
                duplicates=0.02,
                republications=0.02,
                shuffle_window=100,
                bad_lines=0.01,
            )
        )
    )


def verdict_of(ledger: Ledger, amqp_url: str, warehouse_url: str) -> Verdict:
    with RabbitMQTransport(amqp_url) as broker:
        depths = {q: broker.depth(q) for q in ("kpi", "kpi.bootstrap", "kpi.dead-letter")}
    with PostgresWarehouse(warehouse_url) as store:
        return ledger.check(store, queue_depths=depths)


def complete(ledger: Ledger, warehouse_url: str, timeout: float = 300) -> None:
    """Wait until the warehouse holds everything of the ledger (or `timeout` ran out: then the
    verdict tells what is missing). Queue depths cannot tell: the broker counts the messages a
    consumer holds unacknowledged apart from those ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with PostgresWarehouse(warehouse_url) as store:
                if not ledger.check(store).lost:
                    return
        except Exception:  # down, or its tables not made yet: look again
            pass
        time.sleep(1)


def consume_through(
    fault: threading.Thread,
    amqp_url: str,
    warehouse_url: str,
    messages: list[bytes],
    ledger: Ledger,
    log: Path,
) -> None:
    """Run the consumer while `messages` (those of `ledger`) are published and `fault` runs; the
    consumer must survive the fault and bring the warehouse up to the ledger on its own, then
    stop on SIGTERM (exit 0). Not `--until-idle`: a publisher held up by the fault for longer
    than the idle wait would end the run early."""
    declare_group(amqp_url)
    service = start_consumer(amqp_url, warehouse_url, log)
    try:
        publisher = SteadyPublisher(amqp_url, messages, chunk=150, pause=0.15)
        fault.start()
        fault.join()
        assert service.poll() is None, "the consumer must ride out the fault:\n" + log.read_text()
        publisher.join()
        complete(ledger, warehouse_url)
        service.send_signal(signal.SIGTERM)
        assert stopped(service, timeout=120) == 0, log.read_text()[-4000:]
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


@pytest.mark.rabbitmq
def test_postgres_down_for_30_seconds_under_load(
    private_postgres: PrivatePostgres,
    amqp_url: str,
    tmp_path: Path,
    reliability_table: ReliabilityTable,
) -> None:
    messages = stream(seed=83)
    ledger = Ledger()
    ledger.record_all(messages)
    warehouse_url = private_postgres.url("kpi")

    def crash_for_30_seconds() -> None:
        time.sleep(3)
        private_postgres.stop("immediate")
        time.sleep(30)
        private_postgres.start()

    log = tmp_path / "service.log"
    consume_through(threading.Thread(target=crash_for_30_seconds), amqp_url, warehouse_url,
                    messages, ledger, log)  # fmt: skip
    verdict = verdict_of(ledger, amqp_url, warehouse_url)
    reliability_table.add("3 PostgreSQL crashed and down for 30 s under load", verdict)
    verdict.assert_ok()
    assert "warehouse unavailable" in log.read_text()


@pytest.mark.rabbitmq
def test_postgres_down_when_the_consumer_starts(
    private_postgres: PrivatePostgres,
    amqp_url: str,
    tmp_path: Path,
    reliability_table: ReliabilityTable,
) -> None:
    messages = stream(seed=87, events=2000)
    ledger = Ledger()
    ledger.record_all(messages)
    warehouse_url = private_postgres.url("kpi")
    private_postgres.stop("fast")

    def start_late() -> None:
        time.sleep(6)
        private_postgres.start()

    log = tmp_path / "service.log"
    try:
        consume_through(threading.Thread(target=start_late), amqp_url, warehouse_url,
                        messages, ledger, log)  # fmt: skip
    finally:
        with PostgresWarehouse(warehouse_url) as store:  # its tables, if the service made none
            store.prepare(app.schema)
        verdict = verdict_of(ledger, amqp_url, warehouse_url)
        reliability_table.add("3 PostgreSQL down when the consumer starts (6 s)", verdict)
    verdict.assert_ok()
    assert "warehouse unavailable, retrying in" in log.read_text()  # it waited, as it should


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_postgres_hanging_on_a_lock_past_the_heartbeat(
    pg_url: str, amqp_url: str, tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    messages = stream(seed=85)
    ledger = Ledger()
    ledger.record_all(messages)
    with PostgresWarehouse(pg_url) as store:
        store.prepare(app.schema)
    schema = pg_url.partition("schema=")[2]
    conninfo = pg_url.partition("?")[0]
    # A heartbeat of 4 s: the writer, stuck on the lock, cannot answer the broker's heartbeats.
    amqp = f"{amqp_url}?heartbeat=4"

    def hold_a_lock() -> None:
        time.sleep(3)
        with psycopg.connect(conninfo) as locker:
            locker.execute(
                f'LOCK TABLE "{schema}".fact_card_transaction, "{schema}".dim_user__changes '
                "IN ACCESS EXCLUSIVE MODE"
            )
            time.sleep(20)
        # leaving `with` commits: the lock is released

    log = tmp_path / "service.log"
    consume_through(threading.Thread(target=hold_a_lock), amqp, pg_url, messages, ledger, log)
    verdict = verdict_of(ledger, amqp, pg_url)
    reliability_table.add("3 PostgreSQL hanging 20 s on a table lock (heartbeat 4 s)", verdict)
    verdict.assert_ok()


@pytest.mark.postgres
def test_rabbitmq_restarted_during_consumption(
    private_rabbitmq: PrivateRabbitMQ,
    pg_url: str,
    tmp_path: Path,
    reliability_table: ReliabilityTable,
) -> None:
    messages = stream(seed=82)
    ledger = Ledger()
    ledger.record_all(messages)

    def restart() -> None:
        time.sleep(4)
        private_rabbitmq.stop_app()
        time.sleep(5)
        private_rabbitmq.start_app()

    log = tmp_path / "service.log"
    amqp = private_rabbitmq.url
    consume_through(threading.Thread(target=restart), amqp, pg_url, messages, ledger, log)
    verdict = verdict_of(ledger, private_rabbitmq.url, pg_url)
    reliability_table.add("2 RabbitMQ restarted (stop_app/start_app) during consumption", verdict)
    verdict.assert_ok()
    assert "transport unavailable" in log.read_text()


@pytest.mark.postgres
def test_rabbitmq_paused_past_the_heartbeat(
    private_rabbitmq: PrivateRabbitMQ,
    pg_url: str,
    tmp_path: Path,
    reliability_table: ReliabilityTable,
) -> None:
    messages = stream(seed=86)
    ledger = Ledger()
    ledger.record_all(messages)
    amqp = f"{private_rabbitmq.url}?heartbeat=4"

    def pause() -> None:
        time.sleep(4)
        private_rabbitmq.pause()
        time.sleep(15)  # well past two heartbeats
        private_rabbitmq.resume()

    log = tmp_path / "service.log"
    consume_through(threading.Thread(target=pause), amqp, pg_url, messages, ledger, log)
    verdict = verdict_of(ledger, amqp, pg_url)
    reliability_table.add("2 RabbitMQ paused (SIGSTOP) 15 s, heartbeat 4 s", verdict)
    verdict.assert_ok()


def raises_unavailable(action: Callable[[], object]) -> bool:
    try:
        action()
    except TransportUnavailable:
        return True
    return False


def test_an_empty_fetch_from_a_paused_broker_is_unavailable_not_idle(
    private_rabbitmq: PrivateRabbitMQ, reliability_table: ReliabilityTable
) -> None:
    """Found by the scenario above: a fetch that waited less than pika's heartbeat detection
    returned nothing, so a consumer run `--until-idle` could stop with the queue full; and a
    connection to a paused broker raised pika's own handshake timeout, not
    `TransportUnavailable`, crashing the consumer's reconnection and the publisher."""
    url = f"{private_rabbitmq.url}?heartbeat=2"
    declare_group(url)
    with RabbitMQTransport(url) as broker:
        subscription = broker.subscribe("kpi", ["card.*"])
        assert subscription.fetch(10, 0.2) == []  # empty and answering: idle
        private_rabbitmq.pause()
        try:
            raised = raises_unavailable(lambda: subscription.fetch(10, 1.0))
            with RabbitMQTransport(f"{url}&stack_timeout=2") as late:
                connecting_raised = raises_unavailable(lambda: late.depth("kpi"))
        finally:
            private_rabbitmq.resume()
    reliability_table.add_result(
        "2 paused broker (heartbeat 2 s): an empty fetch, a new connection are unavailable",
        passed=raised and connecting_raised,
    )
    assert raised, "a paused broker must not look like an empty queue"
    assert connecting_raised, "a handshake that times out must be TransportUnavailable"
