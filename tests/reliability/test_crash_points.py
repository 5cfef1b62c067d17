"""Scenario 1: the consumer killed with SIGKILL at exact points of a batch — with the
warehouse transaction complete but not committed, and after the commit but before the
acknowledgement — then restarted. RabbitMQ → `factflow run` → PostgreSQL.

The points are reached through the product's test hook `FACTFLOW_FAULT` (factflow._faults):
the process kills itself there, so each kill lands where it is meant to, every time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from factflow.transport.rabbitmq import RabbitMQTransport
from factflow.warehouse.postgres import PostgresWarehouse
from reliability._input import stream
from reliability.conftest import ReliabilityTable
from reliability.infra import (
    published,
    run_until_idle,
    start_consumer,
    stopped,
)

pytestmark = [pytest.mark.reliability, pytest.mark.postgres, pytest.mark.rabbitmq]

SCENARIOS = {
    "write-before-commit": "1 kill -9 with the batch written, before COMMIT",
    "commit-before-ack": "1 kill -9 after COMMIT, before the acknowledgement",
}


@pytest.mark.parametrize("point", sorted(SCENARIOS))
def test_a_consumer_killed_at_an_exact_point_loses_and_doubles_nothing(
    point: str, amqp_url: str, pg_url: str, tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    messages = stream(events=2500, seed=81, duplicates=0.03, republications=0.02, bad_lines=0.01)
    ledger = published(amqp_url, messages)
    log = tmp_path / "service.log"
    facts_after_kill = []
    for arrival in (3, 1, 2):  # die at the 3rd batch, then at the 1st of the next run, ...
        service = start_consumer(
            amqp_url, pg_url, log, env={"FACTFLOW_FAULT": f"{point}:{arrival}"}
        )
        assert stopped(service) == -9, log.read_text()[-3000:]  # it died at the point
        with PostgresWarehouse(pg_url) as store:
            facts_after_kill.append(
                store.query("SELECT count(*) FROM fact_card_transaction").rows[0][0]
            )
    run_until_idle(amqp_url, pg_url, log)

    with RabbitMQTransport(amqp_url) as broker:
        depths = {q: broker.depth(q) for q in ("kpi", "kpi.bootstrap", "kpi.dead-letter")}
    with PostgresWarehouse(pg_url) as store:
        verdict = ledger.check(store, queue_depths=depths)
    reliability_table.add(SCENARIOS[point], verdict)
    verdict.assert_ok()
    if point == "commit-before-ack":
        # The kills landed after commits: what they wrote stayed, and came again unharmed.
        assert facts_after_kill[0] > 0, facts_after_kill
