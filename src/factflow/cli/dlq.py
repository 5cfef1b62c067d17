"""`factflow dlq list`: the dead letters with their reasons."""

from __future__ import annotations

import base64

import click
import msgspec
from rich.table import Table

from factflow.cli.locations import open_warehouse
from factflow.cli.output import stdout
from factflow.cli.settings import fail, warehouse_option
from factflow.errors import FactflowError

__all__ = ["dlq"]


@click.group()
def dlq() -> None:
    """Dead letters: messages that could not be processed, kept with their reasons."""


def _raw_fields(raw: bytes) -> dict[str, str]:
    """The raw message exactly: as text when it is UTF-8, else as base64."""
    try:
        return {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"raw_base64": base64.b64encode(raw).decode("ascii")}


@dlq.command("list")
@warehouse_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most this many.")
@click.option(
    "--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def list_(warehouse: str, limit: int | None, output: str) -> None:
    """List dead letters, oldest first: when, event type and id, the reason, the raw message."""
    try:
        store = open_warehouse(warehouse, read_only=True)
        try:
            letters = store.dead_letters(limit)
        finally:
            store.close()
    except FactflowError as error:
        raise fail(error) from None
    if output == "json":
        for letter in letters:
            click.echo(
                msgspec.json.encode(
                    {
                        "id": letter.id,
                        "received_at": letter.received_at.isoformat() + "Z",
                        "event_type": letter.event_type,
                        "event_id": letter.event_id,
                        "reason": letter.reason,
                        **_raw_fields(letter.raw),
                    }
                ).decode()
            )
        return
    table = Table(
        "received (UTC)", "type", "id", "reason", "raw", title=f"{len(letters)} dead letters"
    )
    for letter in letters:
        raw = letter.raw.decode("utf-8", "replace")
        table.add_row(
            f"{letter.received_at:%Y-%m-%d %H:%M:%S}",
            letter.event_type or "?",
            letter.event_id or "?",
            letter.reason,
            raw if len(raw) <= 80 else raw[:77] + "...",
        )
    stdout.print(table)
