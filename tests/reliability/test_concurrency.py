"""Scenario 9: a bootstrap overlapping live consumption (and re-run: invariant 5), two consumer
processes of one group with one of them killed, and SIGTERM while the consumer holds
prefetched, unacknowledged messages. RabbitMQ (a vhost of the test's own) → PostgreSQL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from factflow.transport.files import write_lines
from factflow.transport.rabbitmq import RabbitMQTransport
from factflow.warehouse.postgres import PostgresWarehouse
from reliability._input import stream as faulty_stream
from reliability.conftest import ReliabilityTable
from reliability.infra import (
    SteadyPublisher,
    declare_group,
    published,
    run_until_idle,
    start_consumer,
    stopped,
)
from reliability.ledger import Ledger, Verdict, table_checksums

pytestmark = [pytest.mark.reliability, pytest.mark.postgres, pytest.mark.rabbitmq]


def stream(seed: int, events: int) -> list[bytes]:
    """A stream with every delivery fault: duplicates, republications, disorder, bad lines."""
    return faulty_stream(
        events,
        seed,
        duplicates=0.03,
        republications=0.02,
        shuffle_window=150,
        bad_lines=0.01,
    )


def depths(amqp_url: str) -> dict[str, int]:
    with RabbitMQTransport(amqp_url) as broker:
        return {q: broker.depth(q) for q in ("kpi", "kpi.bootstrap", "kpi.dead-letter")}


def check(
    ledger: Ledger, amqp_url: str, pg_url: str, unchanged_since: dict[str, str] | None = None
) -> Verdict:
    with PostgresWarehouse(pg_url) as store:
        return ledger.check(store, queue_depths=depths(amqp_url), unchanged_since=unchanged_since)


def under_other_ids(messages: list[bytes]) -> list[bytes]:
    """The valid business events again in envelopes of new ids, as a bootstrap from the
    services' own data publishes them (balance updates have no business key: left out)."""
    ledger, again = Ledger(), []
    for raw in messages:
        entry = ledger.record(raw)
        if entry.expect == "landed" and entry.type != "account.balance_updated":
            envelope = json.loads(raw)
            envelope["id"] = str(uuid.uuid4())
            again.append(json.dumps(envelope).encode())
    return again


def bootstrap(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "factflow", "bootstrap", *args], capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]


@pytest.mark.slow
def test_a_bootstrap_overlapping_live_consumption_and_run_again_changes_nothing(
    amqp_url: str, pg_url: str, tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    live = stream(seed=91, events=5000)
    history = under_other_ids(live)
    ledger = Ledger()
    ledger.record_all(live)
    ledger.record_all(history)
    events = tmp_path / "history.jsonl"
    write_lines(events, history)
    declare_group(amqp_url)
    log = tmp_path / "service.log"
    service = start_consumer(amqp_url, pg_url, log, "--until-idle", "--max-wait", "5")
    publisher = SteadyPublisher(amqp_url, live, chunk=250, pause=0.1)
    # Through the broker's bootstrap queue while live events flow, and straight into the
    # warehouse while the service writes to it.
    bootstrap("--from", str(events), "--via", amqp_url, "--batch-size", "700",
              "--checkpoint", str(tmp_path / "via.json"))  # fmt: skip
    bootstrap("--from", str(events), "--warehouse", pg_url, "--batch-size", "900",
              "--checkpoint", str(tmp_path / "direct.json"))  # fmt: skip
    publisher.join()
    assert stopped(service, timeout=300) == 0, log.read_text()[-4000:]
    with PostgresWarehouse(pg_url) as store:
        before = table_checksums(store)
    bootstrap("--from", str(events), "--warehouse", pg_url, "--batch-size", "500",
              "--checkpoint", str(tmp_path / "again.json"))  # fmt: skip
    verdict = check(ledger, amqp_url, pg_url, unchanged_since=before)
    reliability_table.add("9 bootstrap overlapping live consumption, then run again (5)", verdict)
    verdict.assert_ok()


@pytest.mark.slow
def test_two_processes_of_one_group_one_killed(
    amqp_url: str, pg_url: str, tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    messages = stream(seed=92, events=8000)
    ledger = published(amqp_url, messages)
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    one = start_consumer(amqp_url, pg_url, logs[0], batch_size=300)
    two = start_consumer(amqp_url, pg_url, logs[1], "--until-idle", "--max-wait", "5",
                         batch_size=300)  # fmt: skip
    time.sleep(4)
    one.send_signal(signal.SIGKILL)  # what it held goes to the other process
    assert stopped(one) == -9
    assert stopped(two, timeout=300) == 0, logs[1].read_text()[-4000:]
    verdict = check(ledger, amqp_url, pg_url)
    reliability_table.add("9 two processes of one group, one killed with -9", verdict)
    verdict.assert_ok()


def transactions(pg_url: str) -> int:
    with PostgresWarehouse(pg_url) as store:
        try:
            return int(store.query("SELECT count(*) FROM fact_card_transaction").rows[0][0])
        except Exception:  # not made yet
            return 0


def test_sigterm_with_prefetched_unacknowledged_messages(
    amqp_url: str, pg_url: str, tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    messages = stream(seed=93, events=5000)
    ledger = published(amqp_url, messages)
    log = tmp_path / "service.log"
    service = start_consumer(amqp_url, pg_url, log, batch_size=200)
    # The prefetch (10000) exceeds the stream: after its first fetch the consumer holds every
    # message, acknowledging 200 at a time. Stop it once it wrote some.
    deadline = time.monotonic() + 60
    while transactions(pg_url) == 0:
        assert time.monotonic() < deadline and service.poll() is None, log.read_text()
        time.sleep(0.05)
    service.send_signal(signal.SIGTERM)
    assert stopped(service, timeout=60) == 0, log.read_text()[-4000:]
    assert "received SIGTERM" in log.read_text()
    held = depths(amqp_url)["kpi"]
    assert held > 0, "the consumer should have stopped mid-stream"  # and they came back
    run_until_idle(amqp_url, pg_url, log)
    verdict = check(ledger, amqp_url, pg_url)
    reliability_table.add(f"9 SIGTERM with {held} prefetched messages left unacknowledged", verdict)
    verdict.assert_ok()
