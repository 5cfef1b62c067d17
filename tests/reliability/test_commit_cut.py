"""Scenario 4: the warehouse connection cut during COMMIT, so that the consumer cannot know
whether its batch committed. Either the COMMIT reached PostgreSQL (committed, answer lost) or it
did not (rolled back): the consumer retries the batch, and nothing is lost or doubled.

The cut is made by `CommitCutter`, a proxy reading the client's side of PostgreSQL's protocol,
in front of the shared server (only this test's connections go through it).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from factflow.transport.rabbitmq import RabbitMQTransport
from factflow.warehouse.postgres import PostgresWarehouse
from reliability._input import stream
from reliability.conftest import ReliabilityTable
from reliability.infra import CommitCutter, published, run_until_idle

pytestmark = [pytest.mark.reliability, pytest.mark.postgres, pytest.mark.rabbitmq]

CUTS = (4, 7, 8, 12, 17)  # COMMITs counted through the proxy from the consumer's start


@pytest.mark.parametrize(
    "deliver",
    # The rolled-back case is an ordinary lost connection: left to `make reliability`.
    [True, pytest.param(False, marks=pytest.mark.slow)],
    ids=["committed", "rolled-back"],
)
def test_a_connection_cut_at_commit_loses_and_doubles_nothing(
    deliver: bool, amqp_url: str, pg_url: str, tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    messages = stream(events=4000, seed=84, duplicates=0.03, republications=0.02, bad_lines=0.01)
    ledger = published(amqp_url, messages)
    target = urlsplit(pg_url)
    schema = pg_url.partition("schema=")[2]
    cutter = CommitCutter(
        (target.hostname or "127.0.0.1", target.port or 5432), CUTS, deliver=deliver
    )
    log = tmp_path / "service.log"
    try:
        run_until_idle(amqp_url, cutter.url(schema), log)
    finally:
        cutter.close()
    assert cutter.cuts == len(CUTS), (cutter.commits, log.read_text()[-3000:])

    with RabbitMQTransport(amqp_url) as broker:
        depths = {q: broker.depth(q) for q in ("kpi", "kpi.bootstrap", "kpi.dead-letter")}
    with PostgresWarehouse(pg_url) as store:
        verdict = ledger.check(store, queue_depths=depths)
    outcome = "reached the server" if deliver else "never reached the server"
    reliability_table.add(f"4 connection cut at COMMIT, which {outcome}", verdict)
    verdict.assert_ok()
    assert "warehouse unavailable" in log.read_text()  # it noticed, and retried
