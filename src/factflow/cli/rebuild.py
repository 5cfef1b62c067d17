"""`factflow rebuild FACT --from FILE|URL`: refill one fact table for a changed pipeline."""

from __future__ import annotations

import time

import click

from factflow.bootstrap.checkpoints import Checkpoint
from factflow.bootstrap.rebuild import rebuild_fact
from factflow.bootstrap.replay import DEFAULT_BATCH_SIZE
from factflow.cli.locations import load_app
from factflow.cli.output import stdout
from factflow.cli.replaying import Replaying, check_source, source_option, sources_option
from factflow.cli.schema import model_warehouse
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import ConfigurationError, FactflowError

__all__ = ["rebuild"]


@click.command()
@click.argument("fact")
@app_option
@source_option
@sources_option
@warehouse_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Events per warehouse transaction.",
)
def rebuild(
    fact: str, app: str, source: str, names: tuple[str, ...], warehouse: str, batch_size: int
) -> None:
    """Empty and refill fact FACT (its table or class name) from existing data, through the
    app's current pipelines, while the service keeps running.

    The table is refilled beside the fact and swapped in in one transaction: queries never see
    it empty or half full. Rows the source lacks (events it does not have, or written by the
    service meanwhile) are kept. On DuckDB, which has one writer per file, stop `factflow run`
    first; on PostgreSQL the service may keep writing.
    """
    check_source(source, names)
    started = time.perf_counter()
    try:
        the_app = load_app(app)
        try:
            spec = the_app.schema.fact(fact)
        except KeyError as error:
            raise ConfigurationError(str(error.args[0])) from None
        replaying = Replaying(the_app, source, names, batch_size)
        progress = Checkpoint(source=replaying.describe(), destination=warehouse)
        with (
            model_warehouse(warehouse, the_app, app) as target,
            replaying.progress_bar(progress) as advance,
        ):
            outcome = rebuild_fact(
                the_app, spec.name, replaying.batches(progress), target, on_batch=advance
            )
    except FactflowError as error:
        raise fail(error) from None
    elapsed = time.perf_counter() - started
    stdout.print(
        f"rebuilt: {outcome.fact}  rows: {outcome.rows}  events: {outcome.replayed.messages}  "
        f"dead letters: {outcome.replayed.dead_letters}  time: {elapsed:.2f}s"
    )
