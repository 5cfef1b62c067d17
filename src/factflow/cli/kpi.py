"""`factflow kpi [NAME]`: list the app's KPIs, or answer one."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

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
    "--by",
    multiple=True,
    metavar="NAME",
    help="Group a metric KPI by NAME instead of its own grouping (repeat for several: "
    "--by month --by segment); `factflow kpi` lists what each KPI can be grouped by.",
)
@click.option(
    "--where",
    multiple=True,
    metavar="NAME=VALUE",
    help="Keep only rows whose NAME is VALUE (repeat: the same NAME twice keeps either value).",
)
@click.option(
    "--from",
    "since",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Only facts that occurred on or after this day (UTC), YYYY-MM-DD.",
)
@click.option(
    "--to",
    "until",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Only facts that occurred on or before this day (UTC), YYYY-MM-DD.",
)
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
def kpi(
    name: str | None,
    app: str,
    warehouse: str,
    by: tuple[str, ...],
    where: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    output: str,
    out: Path | None,
) -> None:
    """Answer the KPI NAME; without NAME, list the KPIs with their descriptions.

    A metric KPI can be asked by other groupings and for part of the data:
    `factflow kpi spend_by_currency --by month --where segment=plus --from 2026-01-01`.
    """
    try:
        the_app = load_app(app)
        if name is None:
            for known in the_app.kpis.values():
                owner = f"  [dim](owner: {known.owner})[/dim]" if known.owner else ""
                stdout.print(f"[bold]{known.name}[/bold]{owner}\n    {known.description}")
                if known.group_bys:
                    stdout.print(f"    [dim]--by/--where: {', '.join(known.group_bys)}[/dim]")
            return
        definition = the_app.kpi(name)
        question: dict[str, Any] = {
            "by": by,
            "where": _filters(where),
            "since": since.date() if since else None,
            "until": until.date() if until else None,
        }
        store = open_warehouse(warehouse, read_only=True)
        try:
            if output in ("csv", "parquet"):
                _write_table(answer_table(the_app, name, store, **question), output, out)
                return
            rows = answer(the_app, name, store, **question)
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


def _filters(conditions: tuple[str, ...]) -> dict[str, list[str]]:
    """`("segment=plus", "currency=EUR", "currency=USD")` → name → the values it may take."""
    filters: dict[str, list[str]] = {}
    for condition in conditions:
        name, equals, value = condition.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(
                f"{condition!r}: write NAME=VALUE, e.g. --where segment=plus", param_hint="--where"
            )
        filters.setdefault(name.strip(), []).append(value)
    return filters


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
