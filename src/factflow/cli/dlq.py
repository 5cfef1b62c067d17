"""`factflow dlq list/show/replay`: the dead letters, one of them in full, and replaying them."""

from __future__ import annotations

import base64
import time
from typing import Any

import click
import msgspec
from rich.table import Table

from factflow.cli.locations import load_app, open_warehouse
from factflow.cli.output import progress, stdout
from factflow.cli.schema import model_warehouse
from factflow.cli.settings import app_option, fail, max_message_size_option, warehouse_option
from factflow.errors import ConfigurationError, FactflowError
from factflow.runtime.replay import DEFAULT_BATCH_SIZE, ReplayOutcome, replay_dead_letters
from factflow.warehouse.base import StoredDeadLetter

__all__ = ["dlq"]

#: How much of a dead letter's id the table shows; `dlq show` takes any unique start of it.
SHORT_ID = 12

_type_option = click.option(
    "--type",
    "event_type",
    default=None,
    metavar="TYPE",
    help="Only dead letters of this event type (card.transaction_settled) or domain (card.*).",
)
_format_option = click.option(
    "--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True
)


@click.group()
def dlq() -> None:
    """Dead letters: messages that could not be processed, kept with their reasons."""


def _raw_fields(raw: bytes) -> dict[str, str]:
    """The raw message exactly: as text when it is UTF-8, else as base64."""
    try:
        return {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_base64": base64.b64encode(raw).decode("ascii")}


def _utc(instant: Any) -> str | None:
    return None if instant is None else instant.isoformat() + "Z"


def _as_json(letter: StoredDeadLetter) -> str:
    return msgspec.json.encode(
        {
            "id": letter.id,
            "received_at": _utc(letter.received_at),
            "event_type": letter.event_type,
            "event_id": letter.event_id,
            "reason": letter.reason,
            "replays": letter.replays,
            "replayed_at": _utc(letter.replayed_at),
            **_raw_fields(letter.raw),
        }
    ).decode()


@dlq.command("list")
@warehouse_option
@_type_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most this many.")
@_format_option
def list_(warehouse: str, event_type: str | None, limit: int | None, output: str) -> None:
    """List dead letters, oldest first: id, when, event type and id, the reason, the raw message.

    `factflow dlq show ID` prints one in full.
    """
    try:
        store = open_warehouse(warehouse, read_only=True)
        try:
            letters = store.dead_letters(limit, event_type=event_type)
        finally:
            store.close()
    except FactflowError as error:
        raise fail(error) from None
    if output == "json":
        for letter in letters:
            click.echo(_as_json(letter))
        return
    table = Table(title=f"{len(letters)} dead letters")
    table.add_column("dead letter", no_wrap=True, min_width=SHORT_ID)  # whole, for `dlq show`
    for header in ("received (UTC)", "type", "event id", "reason", "raw"):
        table.add_column(header)
    for letter in letters:
        raw = letter.raw.decode("utf-8", "replace")
        table.add_row(
            letter.id[:SHORT_ID],
            f"{letter.received_at:%Y-%m-%d %H:%M:%S}",
            letter.event_type or "?",
            letter.event_id or "?",
            letter.reason,
            raw if len(raw) <= 80 else raw[:77] + "...",
        )
    stdout.print(table)


@dlq.command()
@click.argument("letter_id", metavar="ID")
@warehouse_option
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def show(letter_id: str, warehouse: str, output: str) -> None:
    """Show one dead letter in full: its reason, its history and the raw message.

    ID is its id as `factflow dlq list` shows it, or any unique start of it.
    """
    try:
        store = open_warehouse(warehouse, read_only=True)
        try:
            found = store.dead_letters(2, id_prefix=letter_id.strip().lower())
        finally:
            store.close()
        if not found:
            raise ConfigurationError(
                f"no dead letter {letter_id!r}; `factflow dlq list` shows their ids"
            )
        if len(found) > 1:
            raise ConfigurationError(
                f"several dead letters start with {letter_id!r} "
                f"({', '.join(d.id for d in found)}, …); give more of the id"
            )
    except FactflowError as error:
        raise fail(error) from None
    [letter] = found
    if output == "json":
        click.echo(_as_json(letter))
        return
    click.echo(f"id:          {letter.id}")
    click.echo(f"received at: {_utc(letter.received_at)}")
    click.echo(f"event type:  {letter.event_type or '?'}")
    click.echo(f"event id:    {letter.event_id or '?'}")
    if letter.replays:
        click.echo(f"replayed:    {letter.replays} times, last at {_utc(letter.replayed_at)}")
    click.echo(f"reason:      {letter.reason}")
    raw = _raw_fields(letter.raw)
    if "raw" in raw:
        click.echo(f"raw ({len(letter.raw)} bytes):\n{raw['raw']}")
    else:
        click.echo(f"raw ({len(letter.raw)} bytes, not UTF-8, as base64):\n{raw['raw_base64']}")


@dlq.command()
@app_option
@warehouse_option
@_type_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Dead letters per warehouse transaction.",
)
@max_message_size_option
def replay(
    app: str, warehouse: str, event_type: str | None, batch_size: int, max_message_size: int
) -> None:
    """Run dead letters through the app's current pipelines again, after a fix.

    Those that now succeed become rows and are removed; those that fail again stay, with their
    new reason. Each batch is one transaction: interrupted, nothing is lost, and running it
    again finishes the job.
    """
    started = time.perf_counter()
    try:
        the_app = load_app(app)
        with (
            model_warehouse(warehouse, the_app, app) as store,
            progress(unit="dead letters") as bar,
        ):
            task = bar.add_task("replay", total=None, rate="")

            def advance(done: ReplayOutcome, total: int) -> None:
                elapsed = time.perf_counter() - started
                bar.update(
                    task,
                    total=total,
                    completed=done.replayed,
                    rate=f"{done.replayed / max(elapsed, 1e-9):,.0f}/s",
                )

            outcome = replay_dead_letters(
                the_app,
                store,
                event_type,
                batch_size=batch_size,
                on_progress=advance,
                max_message_size=max_message_size,
            )
    except FactflowError as error:
        raise fail(error) from None
    elapsed = time.perf_counter() - started
    stdout.print(
        f"replayed: {outcome.replayed}  now stored: {outcome.stored}  "
        f"still dead: {outcome.still_dead}  time: {elapsed:.2f}s"
    )
