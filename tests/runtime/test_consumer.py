"""The consumer loop on the embedded log: batching, acknowledging after commit, reconnecting."""

import threading
from collections.abc import Collection, Sequence
from pathlib import Path

from factflow.errors import TransportUnavailable
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.runtime.consumer import ConsumerOptions, run_consumer
from factflow.runtime.metrics import Metrics
from factflow.runtime.writer import Backoff
from factflow.transport.base import Subscription
from factflow.transport.log import LogTransport
from factflow.transport.publishing import outgoing
from factflow.warehouse.duckdb import DuckDBWarehouse

FAST = ConsumerOptions(
    batch_size=300, max_wait=0.01, stop_when_idle=True, backoff=Backoff(first=0.001, longest=0.01)
)


def published(path: Path, events: int = 2000) -> LogTransport:
    transport = LogTransport(path)
    transport.publish(outgoing(simulate(SimulationOptions(events=events, seed=2)), []))
    return transport


class DroppingTransport:
    """The real embedded log, whose subscriptions drop the connection now and then."""

    def __init__(self, inner: LogTransport, drop_every: int) -> None:
        self.inner = inner
        self.drop_every = drop_every
        self.calls = 0
        self.subscriptions = 0

    def subscribe(self, group: str, event_types: Collection[str]) -> Subscription:
        self.subscriptions += 1
        return _Dropping(self, self.inner.subscribe(group, event_types))

    def publish(self, messages: object) -> int:
        raise NotImplementedError

    def close(self) -> None:
        self.inner.close()


class _Dropping:
    def __init__(self, owner: DroppingTransport, inner: Subscription) -> None:
        self.owner, self.inner = owner, inner

    def _maybe_drop(self) -> None:
        self.owner.calls += 1
        if self.owner.calls % self.owner.drop_every == 0:
            raise TransportUnavailable("connection reset by peer")

    def fetch(self, max_messages: int, max_wait: float) -> Sequence[bytes]:
        self._maybe_drop()
        return self.inner.fetch(max_messages, max_wait)

    def commit(self, batches: int | None = None) -> None:
        self._maybe_drop()
        self.inner.commit(batches)

    def close(self) -> None:
        self.inner.close()


def test_the_consumer_reads_until_idle_and_acknowledges_everything(tmp_path: Path) -> None:
    transport = published(tmp_path / "log")
    with DuckDBWarehouse(None) as warehouse:
        total = run_consumer(app, transport, warehouse, FAST)
    assert total.messages == 2000
    assert transport.depth("kpi") == 0
    transport.close()


def test_a_dropped_transport_is_reopened_and_nothing_is_lost(tmp_path: Path) -> None:
    transport = published(tmp_path / "log")
    # Every 4th call: the consumer fetches the next batch before it acknowledges the one it
    # wrote, so dropping every 3rd call would always hit an acknowledgement and never let one
    # through (a real network drops at random).
    dropping = DroppingTransport(transport, drop_every=4)
    with DuckDBWarehouse(None) as reference, DuckDBWarehouse(None) as warehouse:
        run_consumer(app, published(tmp_path / "again"), reference, FAST)
        metrics = Metrics()
        run_consumer(app, dropping, warehouse, FAST, metrics=metrics)
        assert dropping.subscriptions > 3
        assert metrics.reconnects._value.get() == dropping.subscriptions - 1
        for table in ("fact_card_transaction", "dim_user", "dim_goal"):
            sql = f"SELECT * FROM {table} ORDER BY 1"
            assert warehouse.query(sql).rows == reference.query(sql).rows
    assert transport.depth("kpi") == 0
    transport.close()


def test_stop_finishes_the_batch_in_hand_and_acknowledges_it(tmp_path: Path) -> None:
    transport = published(tmp_path / "log")
    stop = threading.Event()
    batches: list[int] = []

    def stop_after_first(outcome: object) -> None:
        batches.append(1)
        stop.set()

    with DuckDBWarehouse(None) as warehouse:
        total = run_consumer(app, transport, warehouse, FAST, stop=stop, on_batch=stop_after_first)
    assert batches == [1]
    assert total.messages == 300
    with transport.subscribe("kpi", ["user.*", "account.*", "card.*", "goal.*"]) as again:
        remaining = 0
        while chunk := again.fetch(5000, 0.01):
            remaining += len(chunk)
    assert remaining == 2000 - 300
    transport.close()


def test_metrics_count_events_dead_letters_and_batches(tmp_path: Path) -> None:
    transport = LogTransport(tmp_path / "log")
    messages = list(simulate(SimulationOptions(events=1000, seed=4, bad_lines=0.02)))
    transport.publish(outgoing(messages, []))
    metrics = Metrics()
    with DuckDBWarehouse(None) as warehouse:
        total = run_consumer(app, transport, warehouse, FAST, metrics=metrics)
    transport.close()
    counted = sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "factflow_events"
        for sample in family.samples
        if sample.name == "factflow_events_total"
    )
    # The simulator's bad lines all fail decoding; every other envelope is counted by type.
    assert counted == total.messages - total.dead_letters
    assert metrics.dead_letters._value.get() == total.dead_letters > 0
    assert metrics.batch_seconds._sum.get() > 0
    assert metrics.healthy(stale_after=60)
