"""The consumer loop with suspect messages (returned unacknowledged twice or more): each is
written and acknowledged alone, and the switch to one at a time is logged once per run of them
(no server needed)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path

import pytest

from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.runtime.consumer import ConsumerOptions, run_consumer
from factflow.runtime.writer import BatchOutcome
from factflow.transport.base import Fetched, Subscription
from factflow.transport.log import LogTransport
from factflow.transport.publishing import outgoing
from factflow.warehouse.duckdb import DuckDBWarehouse

OPTIONS = ConsumerOptions(batch_size=50, max_wait=0.01, stop_when_idle=True)


class Suspecting:
    """The embedded log, whose first `count` messages come as a broker hands out suspect
    messages: one per fetch, marked `suspect`."""

    def __init__(self, inner: LogTransport, count: int) -> None:
        self.inner, self.count = inner, count
        self.commits = 0

    def subscribe(self, group: str, event_types: Collection[str]) -> Subscription:
        return _Suspecting(self, self.inner.subscribe(group, event_types))

    def publish(self, messages: object) -> int:
        raise NotImplementedError

    def close(self) -> None:
        self.inner.close()


class _Suspecting:
    def __init__(self, owner: Suspecting, inner: Subscription) -> None:
        self.owner, self.inner = owner, inner

    def fetch(self, max_messages: int, max_wait: float) -> Sequence[bytes]:
        if self.owner.count > 0:
            self.owner.count -= 1
            return Fetched(self.inner.fetch(1, max_wait), suspect=True)
        return self.inner.fetch(max_messages, max_wait)

    def commit(self, batches: int | None = None) -> None:
        self.owner.commits += 1
        self.inner.commit(batches)

    def close(self) -> None:
        self.inner.close()


def test_fetched_is_a_list_of_bodies_marked_or_not() -> None:
    assert Fetched([b"a", b"b"]) == [b"a", b"b"]
    assert not Fetched([b"a"]).suspect
    assert Fetched([b"a"], suspect=True).suspect
    assert "suspect=True" in repr(Fetched([b"a"], suspect=True))


def test_suspect_messages_are_written_and_acknowledged_one_at_a_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = LogTransport(tmp_path / "log")
    log.publish(outgoing(simulate(SimulationOptions(events=300, seed=3)), []))
    transport = Suspecting(log, count=7)
    batches: list[BatchOutcome] = []
    with DuckDBWarehouse(None) as warehouse, caplog.at_level(logging.WARNING):
        total = run_consumer(app, transport, warehouse, OPTIONS, on_batch=batches.append)
    assert total.messages == 300
    sizes = [batch.messages for batch in batches]
    assert sizes[:7] == [1] * 7
    assert sum(sizes[7:]) == 293 and min(sizes[7:]) > 1  # the rest in batches again
    assert transport.commits == len(batches)  # each acknowledged right after its commit
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith("writing messages returned unacknowledged twice or more one at")
    assert warnings[1] == "wrote 7 suspect messages one at a time"
    assert log.depth("kpi") == 0
    transport.close()


def test_nothing_is_logged_without_suspect_messages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = LogTransport(tmp_path / "log")
    log.publish(outgoing(simulate(SimulationOptions(events=120, seed=3)), []))
    with DuckDBWarehouse(None) as warehouse, caplog.at_level(logging.WARNING):
        run_consumer(app, log, warehouse, OPTIONS)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    log.close()
