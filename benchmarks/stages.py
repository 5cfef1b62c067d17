"""Family `stages` (issue 4, "find out why"): what each stage of the embedded bootstrap costs.

The bootstrap's stages run one after the other here, in one process, each timed on its own, so
that their costs add up and can be compared with the floor (DuckDB's `read_json`): reading the
file, parsing (the batch's lines into Arrow columns by Arrow's JSON reader), checking (every
envelope against the contract, vectorised), mapping (the projections as columns, and any line
left to the per-event path), writing (DuckDB, first-wins by key, dimension derivation). In the
real command, writing runs on a thread of its own beside the rest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.measure import run_worker, say
from benchmarks.settings import Settings

__all__ = ["STAGES", "run", "time_stages"]

STAGES = ("read", "parse", "check", "map", "write")
LARGEST = 1_000_000


def run(settings: Settings) -> dict[str, Any]:
    """Time the stages on the largest stream of this run up to 10^6 events."""
    sizes = settings.capped(LARGEST)
    if not sizes:
        return {"not_measured": "no stream of at most 10^6 events in this run"}
    events = sizes[-1]
    say(f"stages: the bootstrap's stages one by one ({events:,} events)")
    ws = settings.workspace
    path, database = ws.events_file(events), ws.path(f"stages-{events}.duckdb")
    _, result = run_worker("stages", {"path": str(path), "database": str(database)})
    return {"events": events, **result}


def time_stages(path: str, database: str) -> dict[str, Any]:
    """Run the bootstrap of `path` into `database` stage by stage; seconds and µs per event."""
    from factflow.bootstrap.replay import DEFAULT_BATCH_SIZE
    from factflow.examples.banking import app
    from factflow.runtime import columnar
    from factflow.runtime.interpreter import tuned_for_batches
    from factflow.runtime.writer import BatchWriter
    from factflow.transport.files import read_lines
    from factflow.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(Path(database))
    warehouse.prepare(app.schema)
    processor = columnar.ColumnarProcessor(app)
    writer = BatchWriter(processor, warehouse)
    seconds = dict.fromkeys(STAGES, 0.0)
    events = 0

    def timed(owner: Any, name: str, stage: str) -> None:
        """Add the time of `owner.name` to `stage` (the outermost call of a recursion)."""
        original = getattr(owner, name)
        depth = 0

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal depth
            started = time.perf_counter()
            depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                depth -= 1
                if not depth:
                    seconds[stage] += time.perf_counter() - started

        setattr(owner, name, wrapper)

    timed(processor, "_screened", "parse")
    timed(processor, "_parse", "parse")
    timed(columnar, "_by_type", "check")
    timed(processor, "_checked", "check")
    timed(columnar, "_without_shared_ids", "check")
    batches = read_lines(Path(path), DEFAULT_BATCH_SIZE)
    with tuned_for_batches():
        while True:
            started = time.perf_counter()
            messages = next(batches, None)
            processing = time.perf_counter()
            seconds["read"] += processing - started
            if messages is None:
                break
            changes = processor.process(messages)  # parsing and checking are timed inside
            warehouse.stage(changes)  # nothing left to convert: the rows are Arrow already
            writing = time.perf_counter()
            writer.write_processed(messages, changes)
            done = time.perf_counter()
            seconds["map"] += writing - processing
            seconds["write"] += done - writing
            events += len(messages)
    warehouse.close()
    seconds["map"] -= seconds["parse"] + seconds["check"]
    return {
        "seconds": {stage: round(value, 3) for stage, value in seconds.items()},
        "micros_per_event": {
            stage: round(value / max(events, 1) * 1e6, 2) for stage, value in seconds.items()
        },
        "processed": events,
    }
