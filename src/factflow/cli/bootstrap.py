"""`factflow bootstrap --from FILE|URL`: the sidekick, replaying an event file or the app's
bootstrap sources through the same pipelines, into the warehouse or through the broker."""

from __future__ import annotations

import time
from pathlib import Path

import click

from factflow._urls import redact
from factflow.bootstrap.checkpoints import Checkpoint, CheckpointFile, checkpoint_path
from factflow.bootstrap.replay import DEFAULT_BATCH_SIZE, replay
from factflow.bootstrap.via import BootstrapQueue, publish_batches
from factflow.cli.locations import load_app, open_transport
from factflow.cli.output import stderr, stdout
from factflow.cli.replaying import Replaying, check_source, source_option, sources_option
from factflow.cli.schema import model_warehouse
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import ConfigurationError, FactflowError
from factflow.pipeline.app import App
from factflow.runtime.writer import BatchOutcome

__all__ = ["bootstrap"]


@click.command()
@app_option
@source_option
@sources_option
@warehouse_option
@click.option(
    "--via",
    metavar="URL",
    help=(
        "Publish to the consumer group's bootstrap queue on this broker (amqp://…) for the "
        "running service to consume beside live events, instead of writing the warehouse."
    ),
)
@click.option(
    "--group",
    default="kpi",
    show_default=True,
    help="With --via: the consumer group whose bootstrap queue gets the events.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Events per warehouse transaction (or per confirmed publish with --via).",
)
@click.option(
    "--resume", is_flag=True, help="Go on from where an interrupted run of this bootstrap stopped."
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The checkpoint file (default: one per source and destination in .factflow/).",
)
def bootstrap(
    app: str,
    source: str,
    names: tuple[str, ...],
    warehouse: str,
    via: str | None,
    group: str,
    batch_size: int,
    resume: bool,
    checkpoint: Path | None,
) -> None:
    """Replay existing data through the app's pipelines into the warehouse.

    From an event file, every envelope; from a URL, what the app's bootstrap sources read there
    (the services' own data, as the events they publish). Bad input becomes dead letters (see
    `factflow dlq list`); running it again changes nothing. A checkpoint is kept after every
    batch: after an interruption, `--resume` goes on from there.
    """
    check_source(source, names)
    started = time.perf_counter()
    try:
        the_app = load_app(app)
        destination = f"{redact(via)} group {group}" if via else redact(warehouse)
        replaying = Replaying(the_app, source, names, batch_size)
        store = CheckpointFile(checkpoint or checkpoint_path(replaying.describe(), destination))
        progress = _start(store, replaying.describe(), destination, resume)
        try:
            if via:
                total = _publish(the_app, replaying, progress, store, via, group)
            else:
                total = _write(the_app, replaying, progress, store, warehouse, app)
        except BaseException:
            if progress.events:
                stderr.print(
                    f"stopped after {progress.events:,} events; the checkpoint is in "
                    f"{store.path}: run the same command with --resume to go on from there"
                )
            raise
        store.remove()  # done: a later run starts from the beginning again
    except FactflowError as error:
        raise fail(error) from None
    elapsed = time.perf_counter() - started
    rate = f"{total.messages / max(elapsed, 1e-9):,.0f} events/s"
    if via:
        stdout.print(
            f"published: {total.messages}  to: {group}'s bootstrap queue  "
            f"time: {elapsed:.2f}s  rate: {rate}"
        )
    else:
        stdout.print(
            f"events: {total.messages}  rows: {total.rows}  dead letters: "
            f"{total.dead_letters}  time: {elapsed:.2f}s  rate: {rate}"
        )


def _start(store: CheckpointFile, source: str, destination: str, resume: bool) -> Checkpoint:
    saved = store.load()
    if resume and saved is None:
        stderr.print(f"no checkpoint in {store.path}: starting from the beginning")
    if resume and saved is not None:
        stderr.print(f"resuming after {saved.events:,} events (checkpoint {store.path})")
        return saved
    if saved is not None:
        stderr.print(
            f"an earlier run stopped after {saved.events:,} events; starting from the "
            "beginning (--resume would go on from there)"
        )
    return Checkpoint(source=source, destination=destination)


def _write(
    app: App,
    replaying: Replaying,
    progress: Checkpoint,
    store: CheckpointFile,
    warehouse: str,
    reference: str,
) -> BatchOutcome:
    with (
        model_warehouse(warehouse, app, reference) as target,
        replaying.progress_bar(progress) as advance,
    ):

        def committed(outcome: BatchOutcome, position: object) -> None:
            advance(outcome, position)
            store.save(progress)

        return replay(app, replaying.batches(progress), target, on_batch=committed)


def _publish(
    app: App,
    replaying: Replaying,
    progress: Checkpoint,
    store: CheckpointFile,
    via: str,
    group: str,
) -> BatchOutcome:
    if group not in app.groups:
        raise ConfigurationError(
            f"app {app.name!r} has no consumer group {group!r} to bootstrap through; its "
            f"groups: {', '.join(app.groups) or 'none'}"
        )
    transport = open_transport(via)
    try:
        if not isinstance(transport, BootstrapQueue):
            raise ConfigurationError(
                f"--via {redact(via)}: this transport has no bootstrap queues; use a RabbitMQ "
                "URL (amqp://…), or bootstrap straight into the warehouse without --via"
            )
        total = BatchOutcome()
        with replaying.progress_bar(progress) as advance:

            def confirmed(published: int, position: object) -> None:
                outcome = BatchOutcome(messages=published)
                total.add(outcome)
                advance(outcome, position)
                store.save(progress)

            publish_batches(replaying.batches(progress), transport, group, on_batch=confirmed)
        return total
    finally:
        transport.close()
