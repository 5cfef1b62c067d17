"""`factflow bootstrap --from FILE|URL`: the sidekick, replaying an event file or the app's
bootstrap sources through the same pipelines."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click

from factflow.bootstrap.files import DEFAULT_BATCH_SIZE, FilePosition, file_batches
from factflow.bootstrap.replay import replay
from factflow.bootstrap.sources import SourcePosition, bootstrap_sources
from factflow.cli.locations import load_app, open_warehouse, redact
from factflow.cli.output import progress, stdout
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import ConfigurationError, FactflowError
from factflow.pipeline.app import App
from factflow.runtime.writer import BatchOutcome
from factflow.warehouse.base import Warehouse

__all__ = ["bootstrap"]


@click.command()
@app_option
@click.option(
    "--from",
    "source",
    required=True,
    metavar="FILE|URL",
    help=(
        "An event file (.jsonl, .jsonl.gz or .parquet), or the location the app's bootstrap "
        "sources read, e.g. postgresql://reader@db/service."
    ),
)
@click.option(
    "--source",
    "names",
    multiple=True,
    metavar="NAME",
    help="With a URL: run only this bootstrap source of the app (repeatable; default: all).",
)
@warehouse_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Events per warehouse transaction.",
)
def bootstrap(
    app: str, source: str, names: tuple[str, ...], warehouse: str, batch_size: int
) -> None:
    """Replay existing data through the app's pipelines into the warehouse.

    From an event file, every envelope; from a URL, what the app's bootstrap sources read there
    (the services' own data, as the events they publish). Bad input becomes dead letters (see
    `factflow dlq list`); running it again changes nothing.
    """
    from_url = "://" in source
    if not from_url and not Path(source).is_file():
        raise click.BadParameter(
            f"no event file {source!r}; give a .jsonl, .jsonl.gz or .parquet file, or the "
            "URL the app's bootstrap sources read",
            param_hint="--from",
        )
    if names and not from_url:
        raise click.UsageError("--source selects bootstrap sources, which read from a URL")
    started = time.perf_counter()
    running = BatchOutcome()
    try:
        the_app = load_app(app)
        store = open_warehouse(warehouse)
        try:
            if from_url:
                total = _from_sources(the_app, source, names, store, batch_size, running, started)
            else:
                total = _from_file(the_app, Path(source), store, batch_size, running, started)
        finally:
            store.close()
    except FactflowError as error:
        raise fail(error) from None
    elapsed = time.perf_counter() - started
    stdout.print(
        f"events: {total.messages}  rows: {total.rows}  dead letters: {total.dead_letters}  "
        f"time: {elapsed:.2f}s  rate: {total.messages / max(elapsed, 1e-9):,.0f} events/s"
    )


def _from_file(
    app: App, path: Path, store: Warehouse, batch_size: int, running: BatchOutcome, started: float
) -> BatchOutcome:
    with progress(unit="bytes") as bar:
        task = bar.add_task("bootstrap", total=path.stat().st_size, rate="")
        rate = _rate(running, started)

        def committed(outcome: BatchOutcome, position: FilePosition) -> None:
            running.add(outcome)
            bar.update(task, completed=position.bytes, rate=rate())

        return replay(app, file_batches(path, batch_size), store, on_batch=committed)


def _from_sources(
    app: App,
    location: str,
    names: tuple[str, ...],
    store: Warehouse,
    batch_size: int,
    running: BatchOutcome,
    started: float,
) -> BatchOutcome:
    if not app.sources:
        raise ConfigurationError(
            f"--from {redact(location)} is a URL, which the app's bootstrap sources would read, "
            f"but app {app.name!r} declares none; give an event file (.jsonl, .jsonl.gz, "
            ".parquet), or declare sources with App(..., sources=[...])"
        )
    with progress(unit="events") as bar:
        task = bar.add_task("bootstrap", total=None, rate="")
        rate = _rate(running, started)

        def committed(outcome: BatchOutcome, position: SourcePosition) -> None:
            running.add(outcome)
            bar.update(
                task,
                description=f"bootstrap {position.source}",
                completed=running.messages,
                rate=rate(),
            )

        return bootstrap_sources(
            app, location, store, names=names, batch_size=batch_size, on_batch=committed
        )


def _rate(running: BatchOutcome, started: float) -> Callable[[], str]:
    def rate() -> str:
        elapsed = time.perf_counter() - started
        return f"{running.messages / max(elapsed, 1e-9):,.0f} events/s"

    return rate
