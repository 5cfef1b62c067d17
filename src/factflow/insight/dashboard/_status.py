"""Live pipeline status: events processed, events per second, last event time, dead letters."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from factflow.errors import ConfigurationError
from factflow.warehouse.base import DEAD_LETTERS, EVENT_STATS, Warehouse

__all__ = ["Throughput", "pipeline_status"]


class Throughput:
    """Events per second, from the totals of processed events seen at each look over the last
    `window` seconds: the warehouse keeps counts, not rates, so the rate is their difference
    over time. Every page polling the status feeds the same samples."""

    def __init__(
        self, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def observe(self, total: int) -> float | None:
        """Record `total` events now; the rate since the oldest sample in the window, or None
        until two looks at least a second apart have been made."""
        now = self._clock()
        with self._lock:
            if self._samples and total < self._samples[-1][1]:
                self._samples.clear()  # the warehouse was emptied or replaced: start again
            self._samples.append((now, total))
            # Keep the newest sample older than the window, so that the rate spans all of it.
            while len(self._samples) > 1 and self._samples[1][0] <= now - self._window:
                self._samples.popleft()
            then, before = self._samples[0]
        if now - then < 1.0:
            return None
        return (total - before) / (now - then)


def pipeline_status(store: Warehouse, *, timeout: float | None) -> dict[str, Any]:
    """Per event type: events processed, dead letters and the last event's time (UTC), and
    their totals, as `factflow status` counts them."""
    stats = _rows(store, f"SELECT event_type, events, last_occurred_at FROM {EVENT_STATS}", timeout)
    dead = _rows(
        store, f"SELECT event_type, count(*) AS n FROM {DEAD_LETTERS} GROUP BY event_type", timeout
    )
    per_type: dict[str, dict[str, Any]] = {}
    for row in stats:
        per_type[str(row["event_type"])] = {
            "events": int(row["events"]),
            "dead_letters": 0,
            "last_event_at": _instant(row["last_occurred_at"]),
        }
    for row in dead:
        # A dead letter may have no type (not even JSON): it is counted under "".
        entry = per_type.setdefault(
            str(row["event_type"] or ""), {"events": 0, "dead_letters": 0, "last_event_at": None}
        )
        entry["dead_letters"] = int(row["n"])
    last = [entry["last_event_at"] for entry in per_type.values() if entry["last_event_at"]]
    return {
        "events": sum(entry["events"] for entry in per_type.values()),
        "dead_letters": sum(entry["dead_letters"] for entry in per_type.values()),
        "last_event_at": max(last) if last else None,
        "event_types": [{"event_type": name, **per_type[name]} for name in sorted(per_type)],
    }


def _rows(store: Warehouse, sql: str, timeout: float | None) -> list[dict[str, Any]]:
    try:
        rows: list[dict[str, Any]] = store.read(sql, timeout=timeout).to_pylist()
    except ConfigurationError:
        return []  # factflow's tables are not there yet: nothing processed
    return rows


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    # Stored as naive UTC (DuckDB) or aware (PostgreSQL): one form on the page.
    naive = value.replace(tzinfo=None) - (value.utcoffset() or timedelta())
    return naive.isoformat() + "Z"
