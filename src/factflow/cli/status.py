"""`factflow status`: per pipeline events, dead letters and last event time; the backlog."""

from __future__ import annotations

from typing import Any

import click
import msgspec
from rich.table import Table

from factflow.bootstrap.via import BootstrapQueue
from factflow.cli.locations import load_app, open_transport, open_warehouse
from factflow.cli.output import stdout
from factflow.cli.settings import app_option, fail, transport_option, warehouse_option
from factflow.errors import FactflowError
from factflow.warehouse.base import DEAD_LETTERS, EVENT_STATS, Warehouse

__all__ = ["status"]


@click.command()
@app_option
@transport_option
@warehouse_option
@click.option("--group", default="kpi", show_default=True)
@click.option(
    "--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def status(app: str, transport: str, warehouse: str, group: str, output: str) -> None:
    """Per pipeline: events processed, dead letters, last event time; per queue: its backlog."""
    try:
        the_app = load_app(app)
        store = open_warehouse(warehouse, read_only=True)
        try:
            pipelines = _pipelines(the_app.pipelines_by_type(group), store)
        finally:
            store.close()
        backlog, bootstrap_backlog = _backlogs(transport, group)
    except FactflowError as error:
        raise fail(error) from None
    if output == "json":
        click.echo(
            msgspec.json.encode(
                {
                    "group": group,
                    "pipelines": pipelines,
                    "backlog": backlog,
                    "bootstrap_backlog": bootstrap_backlog,
                }
            ).decode()
        )
        return
    table = Table(
        "event type",
        "pipeline",
        "events",
        "dead letters",
        "last event (UTC)",
        title=f"consumer group {group!r}",
    )
    for row in pipelines:
        table.add_row(
            row["event_type"],
            row["pipeline"],
            str(row["events"]),
            str(row["dead_letters"]),
            row["last_event_at"] or "-",
        )
    stdout.print(table)
    stdout.print(f"backlog: {backlog if backlog is not None else 'unknown for this transport'}")
    if bootstrap_backlog:
        stdout.print(f"bootstrap backlog: {bootstrap_backlog}")


def _pipelines(routes: dict[str, list[Any]], store: Warehouse) -> list[dict[str, Any]]:
    stats = {
        r[0]: r[1:]
        for r in _rows(store, f"SELECT event_type, events, last_occurred_at FROM {EVENT_STATS}")
    }
    dead = dict(
        _rows(store, f"SELECT event_type, count(*) FROM {DEAD_LETTERS} GROUP BY event_type")
    )
    rows = []
    for event_type, pipelines in sorted(routes.items()):
        events, last = stats.get(event_type, (0, None))
        for pipeline in pipelines:
            rows.append(
                {
                    "event_type": event_type,
                    "pipeline": pipeline.name,
                    "events": int(events),
                    "dead_letters": int(dead.get(event_type, 0)),
                    "last_event_at": last.isoformat() + "Z" if last is not None else None,
                }
            )
    return rows


def _rows(store: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    try:
        return store.query(sql).rows
    except Exception:  # not prepared yet: nothing processed
        return []


def _backlogs(transport: str, group: str) -> tuple[int | None, int | None]:
    """Messages waiting for `group`: in its queue, and in its bootstrap queue (if it has one)."""
    source = open_transport(transport)
    try:
        depth = getattr(source, "depth", None)
        if depth is None:
            return None, None
        bootstrap = int(depth(f"{group}.bootstrap")) if isinstance(source, BootstrapQueue) else None
        return int(depth(group)), bootstrap
    finally:
        source.close()
