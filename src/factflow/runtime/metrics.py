"""What a running consumer tells Prometheus and health checks about itself."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from factflow.runtime.writer import BatchOutcome

__all__ = ["Metrics"]


class Metrics:
    """The consumer's metrics in a registry of their own (nothing global).

    | metric | meaning |
    |---|---|
    | `factflow_events_total{event_type}` | envelopes written (as rows or dead letters) |
    | `factflow_events_per_second` | throughput over the last batches |
    | `factflow_dead_letters_total` | messages set aside as dead letters |
    | `factflow_batch_seconds` | time to process and write one batch (histogram) |
    | `factflow_warehouse_retries_total` | writes retried because the warehouse was unavailable |
    | `factflow_transport_reconnects_total` | times the transport was lost and reopened |
    | `factflow_backlog` | messages waiting for the group (bytes on the embedded log) |
    | `factflow_event_lag_seconds{event_type}` | now minus the latest `occurred_at` written |
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("factflow_events", "Envelopes written", ["event_type"], registry=r)
        self.rate = Gauge("factflow_events_per_second", "Recent throughput", registry=r)
        self.dead_letters = Counter("factflow_dead_letters", "Dead letters kept", registry=r)
        self.batch_seconds = Histogram(
            "factflow_batch_seconds",
            "Seconds to process and write one batch",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.retries = Counter("factflow_warehouse_retries", "Warehouse writes retried", registry=r)
        self.reconnects = Counter(
            "factflow_transport_reconnects", "Transport reconnections", registry=r
        )
        self.backlog_gauge = Gauge("factflow_backlog", "Messages waiting", registry=r)
        self.event_lag = Gauge(
            "factflow_event_lag_seconds",
            "Now minus latest event time",
            ["event_type"],
            registry=r,
        )
        self._latest: dict[str, datetime] = {}
        self._window: list[tuple[float, int]] = []
        self.last_heartbeat = time.monotonic()
        self.connected = True

    def batch_written(self, outcome: BatchOutcome, seconds: float) -> None:
        now = time.monotonic()
        self.connected = True
        self.batch_seconds.observe(seconds)
        self.dead_letters.inc(outcome.dead_letters)
        self.retries.inc(outcome.retries)
        for event_type, (count, latest) in outcome.seen.items():
            self.events.labels(event_type).inc(count)
            known = self._latest.get(event_type)
            if known is None or latest > known:
                self._latest[event_type] = latest
        self._window = [(t, n) for t, n in self._window if now - t <= 10.0]
        self._window.append((now, outcome.messages))
        span = max(now - self._window[0][0], seconds, 1e-6)
        self.rate.set(sum(n for _, n in self._window) / span)
        self.refresh_lag()

    def refresh_lag(self) -> None:
        now = datetime.now(UTC)
        for event_type, latest in self._latest.items():
            self.event_lag.labels(event_type).set((now - latest).total_seconds())

    def heartbeat(self) -> None:
        self.last_heartbeat = time.monotonic()

    def reconnecting(self) -> None:
        self.connected = False
        self.reconnects.inc()

    def backlog(self, messages: int) -> None:
        self.backlog_gauge.set(messages)

    def healthy(self, stale_after: float) -> bool:
        """Alive: the loop went round recently and the transport is connected."""
        return self.connected and time.monotonic() - self.last_heartbeat <= stale_after
