"""How the bootstrap's rate changes as the warehouse grows: per million events, the rate, the
share of the time the writing thread was busy, and the seconds of each kind of statement.

    .venv/bin/python -m benchmarks.timeline EVENTS.jsonl [--every 1000000]

A tool for finding out why long streams are slower (not part of `make bench`, whose figures are
end to end): it runs `bootstrap_file` into a new DuckDB file with the warehouse's statements timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from factflow.bootstrap.files import bootstrap_file
from factflow.examples.banking import app
from factflow.runtime.writer import BatchOutcome
from factflow.warehouse import duckdb as backend

_TIMED = ("write", "_insert_first", "_record_changes", "_ensure_members", "_count_events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("events", type=Path)
    parser.add_argument("--every", type=int, default=1_000_000)
    args = parser.parse_args()
    seconds: defaultdict[str, float] = defaultdict(float)
    for name in _TIMED:
        setattr(
            backend.DuckDBWarehouse, name, _timed(getattr(backend.DuckDBWarehouse, name), seconds)
        )
    with tempfile.TemporaryDirectory() as scratch:
        warehouse = backend.DuckDBWarehouse(Path(scratch) / "timeline.duckdb")
        done, marked, marked_at, before = 0, 0, time.perf_counter(), dict(seconds)

        def report(outcome: BatchOutcome) -> None:
            nonlocal done, marked, marked_at, before
            done += outcome.messages
            if done - marked >= args.every:
                now = time.perf_counter()
                elapsed = now - marked_at
                spent = {k: round(v - before.get(k, 0.0), 1) for k, v in sorted(seconds.items())}
                busy = (seconds["write"] - before.get("write", 0.0)) / elapsed
                print(f"{done:>11,} events: {(done - marked) / elapsed:>9,.0f}/s, writer busy"
                      f" {busy:.0%}, seconds {spent}", flush=True)  # fmt: skip
                marked, marked_at, before = done, now, dict(seconds)

        bootstrap_file(app, args.events, warehouse, on_batch=report)
        warehouse.close()


def _timed(method: Callable[..., Any], seconds: defaultdict[str, float]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            name = method.__name__
            if name == "_insert_first":
                name += f":{args[1].name}"
            seconds[name] += time.perf_counter() - started

    return timed


if __name__ == "__main__":
    main()
