"""`factflow query "SQL"`: one query over the warehouse, opened read-only; the database refuses
anything that would change it. As a table on the terminal, CSV, JSON or Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pyarrow as pa
from rich.console import Console
from rich.table import Table
from rich.text import Text

from factflow.cli.locations import load_app, open_warehouse
from factflow.cli.output import stdout
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import ConfigurationError, FactflowError
from factflow.insight.formats import (
    FORMATS,
    csv_text,
    json_text,
    text_rows,
    unique_names,
    write_parquet,
)
from factflow.model.schema import Schema
from factflow.warehouse.views import model_comments, model_views

__all__ = ["query"]


@click.command()
@click.argument("sql", required=False)
@app_option
@warehouse_option
@click.option(
    "--format",
    "output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="csv and json print decimals exactly (json as strings); parquet keeps decimal columns.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the answer to FILE instead of standard output.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop the query after SECONDS.",
)
def query(
    sql: str | None,
    app: str,
    warehouse: str,
    output: str,
    out: Path | None,
    timeout: float | None,
) -> None:
    """Run SQL, one query, over the warehouse opened read-only: the database itself refuses any
    statement that would change something (exit status 1, nothing changed).

    SQL `-` reads the query from standard input. Without SQL, list the tables and views of the
    app's model. The views `v_<fact>` join each fact to its dimensions, for example:

    \b
        factflow query --format csv "SELECT user_segment_at_event, sum(amount)
            FROM v_card_transaction GROUP BY 1"
    """
    if sql is None:
        try:
            schema = load_app(app).schema
        except FactflowError as error:
            raise fail(error) from None
        stdout.print(_model_tables(schema))
        return
    if sql == "-":
        sql = sys.stdin.read()
    if output == "parquet" and out is None and sys.stdout.isatty():
        raise click.UsageError("Parquet is binary: give --out FILE (or redirect the output)")
    try:
        store = open_warehouse(warehouse, read_only=True)
        try:
            answer = unique_names(store.read(sql, timeout=timeout))
        finally:
            store.close()
        _write(answer, output, out)
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    except FactflowError as error:
        raise fail(error) from None


def _write(answer: pa.Table, output: str, out: Path | None) -> None:
    if output == "parquet":
        write_parquet(answer, out if out is not None else sys.stdout.buffer)
        return
    if output in ("csv", "json"):
        text = csv_text(answer) if output == "csv" else json_text(answer) + "\n"
        if out is None:
            click.echo(text, nl=False)
        else:
            out.write_text(text)
        return
    if out is None:
        stdout.print(_table(answer))
        return
    with out.open("w") as file:
        Console(file=file, width=10_000, color_system=None).print(_table(answer))


def _table(answer: pa.Table) -> Table:
    rows = text_rows(answer)
    count = f"{len(rows)} row" + ("" if len(rows) == 1 else "s")
    table = Table(caption=count, caption_justify="left")
    for name, kind in zip(answer.column_names, answer.schema.types, strict=True):
        numeric = pa.types.is_integer(kind) or pa.types.is_decimal(kind)
        table.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        # Text, not markup: a value may hold square brackets.
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(v) for v in row))
    return table


def _model_tables(schema: Schema) -> Table:
    """The views and tables of the model, each with the first line of its comment."""
    comments = model_comments(schema)
    table = Table(title="What to query", title_justify="left")
    table.add_column("table or view")
    table.add_column("holds")
    names = [view.name for view in model_views(schema)]
    names += [fact.table.name for fact in schema.facts]
    for dim in schema.dimensions:
        names += [dim.current.name] + ([dim.history.name] if dim.history else [])
    names += [dim.changes.name for dim in schema.dimensions]
    for name in names:
        table.add_row(name, Text((comments.get((name, None), "").splitlines() or [""])[0]))
    return table
