"""`factflow kpi [NAME]`: list the app's KPIs, or answer one."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pyarrow as pa
from rich.console import Console

from factflow.cli.locations import load_app, open_warehouse
from factflow.cli.output import kpi_json, kpi_table, stdout
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import FactflowError
from factflow.insight.formats import csv_text, write_parquet
from factflow.insight.kpi import answer, answer_table

__all__ = ["kpi"]


@click.command()
@click.argument("name", required=False)
@app_option
@warehouse_option
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help='json prints {"kpi": NAME, "rows": [...]} with decimals as strings; csv and parquet '
    "keep decimals exact too (parquet: decimal columns).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the answer to this file instead of standard output.",
)
def kpi(name: str | None, app: str, warehouse: str, output: str, out: Path | None) -> None:
    """Answer the KPI NAME; without NAME, list the KPIs with their descriptions."""
    try:
        the_app = load_app(app)
        if name is None:
            for known in the_app.kpis.values():
                owner = f"  [dim](owner: {known.owner})[/dim]" if known.owner else ""
                stdout.print(f"[bold]{known.name}[/bold]{owner}\n    {known.description}")
            return
        definition = the_app.kpi(name)
        store = open_warehouse(warehouse, read_only=True)
        try:
            if output in ("csv", "parquet"):
                _write_table(answer_table(the_app, name, store), output, out)
                return
            rows = answer(the_app, name, store)
        finally:
            store.close()
    except FactflowError as error:
        raise fail(error) from None
    if output == "json":
        _write_text(kpi_json(name, rows) + "\n", out)
    elif out is None:
        stdout.print(kpi_table(name, definition.description, rows))
    else:
        with out.open("w") as file:
            Console(file=file, width=10_000, color_system=None).print(
                kpi_table(name, definition.description, rows)
            )


def _write_table(table: pa.Table, output: str, out: Path | None) -> None:
    if output == "parquet":
        write_parquet(table, out if out is not None else sys.stdout.buffer)
    else:
        _write_text(csv_text(table), out)


def _write_text(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
