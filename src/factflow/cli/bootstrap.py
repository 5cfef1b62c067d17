"""`factflow bootstrap --from FILE.jsonl`: the sidekick, replaying an event file."""

from __future__ import annotations

import time
from pathlib import Path

import click

from factflow.bootstrap.files import DEFAULT_BATCH_SIZE, bootstrap_file
from factflow.cli.locations import load_app, open_warehouse
from factflow.cli.output import progress, stdout
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import FactflowError
from factflow.runtime.writer import BatchOutcome

__all__ = ["bootstrap"]


@click.command()
@app_option
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An event file: .jsonl or .jsonl.gz, one envelope per line.",
)
@warehouse_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Events per warehouse transaction.",
)
def bootstrap(app: str, source: Path, warehouse: str, batch_size: int) -> None:
    """Replay every event of a file through the app's pipelines into the warehouse.

    Bad lines become dead letters (see `factflow dlq list`); running it again changes nothing.
    """
    started = time.perf_counter()
    running = BatchOutcome()
    try:
        the_app = load_app(app)
        store = open_warehouse(warehouse)
        try:
            with progress(unit="bytes") as bar:
                task = bar.add_task("bootstrap", total=source.stat().st_size, rate="")

                def advance(bytes_read: int) -> None:
                    elapsed = time.perf_counter() - started
                    bar.update(
                        task,
                        completed=bytes_read,
                        rate=f"{running.messages / max(elapsed, 1e-9):,.0f} events/s",
                    )

                total = bootstrap_file(
                    the_app,
                    source,
                    store,
                    batch_size=batch_size,
                    on_batch=running.add,
                    on_progress=advance,
                )
        finally:
            store.close()
    except FactflowError as error:
        raise fail(error) from None
    elapsed = time.perf_counter() - started
    stdout.print(
        f"events: {total.messages}  rows: {total.rows}  dead letters: {total.dead_letters}  "
        f"time: {elapsed:.2f}s  rate: {total.messages / max(elapsed, 1e-9):,.0f} events/s"
    )
