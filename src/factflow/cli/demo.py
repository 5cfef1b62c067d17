"""`factflow demo`: the whole path on the embedded default, no server needed."""

from __future__ import annotations

import shutil
import time
from itertools import islice
from pathlib import Path

import click

from factflow.cli.output import kpi_table, progress, stdout
from factflow.cli.settings import fail
from factflow.errors import FactflowError
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.insight.kpi import answer
from factflow.runtime.consumer import LOG_BATCH_SIZE, ConsumerOptions, run_consumer
from factflow.runtime.writer import BatchOutcome
from factflow.transport.log import LogTransport
from factflow.transport.publishing import Unroutable, outgoing
from factflow.warehouse.duckdb import DuckDBWarehouse

__all__ = ["demo"]


@click.command()
@click.option(
    "--events",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="How many events to simulate.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("factflow-demo"),
    show_default=True,
    help="Where the demo keeps its log and warehouse (emptied first).",
)
def demo(events: int, seed: int, directory: Path) -> None:
    """Simulate the bank's services, consume their events into DuckDB, and print every KPI.

    The stream is as messy as real life: duplicates, re-publications under new ids, out-of-order
    arrival and a few bad messages, which end up as dead letters.
    """
    log_dir, warehouse_path = directory / "log", directory / "warehouse.duckdb"
    shutil.rmtree(log_dir, ignore_errors=True)
    for stale in (warehouse_path, warehouse_path.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    options = SimulationOptions(
        events=events,
        seed=seed,
        duplicates=0.02,
        republications=0.01,
        shuffle_window=500,
        bad_lines=0.002,
    )
    refused: list[Unroutable] = []
    started = time.perf_counter()
    try:
        transport = LogTransport(log_dir)
        with DuckDBWarehouse(warehouse_path) as warehouse, progress() as bar:
            publishing = bar.add_task("simulate + publish", total=events, rate="")
            stream = simulate(options)
            while chunk := list(islice(stream, 5000)):
                transport.publish(outgoing(chunk, refused))
                bar.advance(publishing, len(chunk))
            consuming = bar.add_task("consume", total=events - len(refused), rate="")
            consumed = BatchOutcome()

            def advance(outcome: BatchOutcome) -> None:
                consumed.add(outcome)
                rate = consumed.messages / max(time.perf_counter() - started, 1e-9)
                bar.update(consuming, completed=consumed.messages, rate=f"{rate:,.0f}/s")

            run_consumer(
                app,
                transport,
                warehouse,
                ConsumerOptions(batch_size=LOG_BATCH_SIZE, stop_when_idle=True, max_wait=0.05),
                on_batch=advance,
            )
            transport.close()
            elapsed = time.perf_counter() - started
            for kpi in app.kpis.values():
                stdout.print(kpi_table(kpi.name, kpi.description, answer(app, kpi.name, warehouse)))
                stdout.print()
            dead = warehouse.dead_letters()
    except FactflowError as error:
        raise fail(error) from None
    stdout.print(
        f"{events} events in {elapsed:.1f}s: {consumed.messages} consumed, {len(dead)} dead "
        f"letters kept, {len(refused)} unroutable messages refused at publishing."
    )
    for letter in dead[:3]:
        stdout.print(f"  dead letter: {letter.reason}")
    stdout.print(
        f"\nExplore: factflow kpi --warehouse duckdb:///{warehouse_path}  ·  "
        f"factflow dlq list --warehouse duckdb:///{warehouse_path}"
    )
