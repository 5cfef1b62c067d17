"""`factflow kpi [NAME]`: list the app's KPIs, or answer one."""

from __future__ import annotations

import click

from factflow.cli.locations import load_app, open_warehouse
from factflow.cli.output import kpi_json, kpi_table, stdout
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import FactflowError
from factflow.insight.kpi import answer

__all__ = ["kpi"]


@click.command()
@click.argument("name", required=False)
@app_option
@warehouse_option
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help='json prints {"kpi": NAME, "rows": [...]} with decimals as strings.',
)
def kpi(name: str | None, app: str, warehouse: str, output: str) -> None:
    """Answer the KPI NAME; without NAME, list the KPIs with their descriptions."""
    try:
        the_app = load_app(app)
        if name is None:
            for known in the_app.kpis.values():
                stdout.print(f"[bold]{known.name}[/bold]\n    {known.description}")
            return
        definition = the_app.kpi(name)
        store = open_warehouse(warehouse, read_only=True)
        try:
            rows = answer(the_app, name, store)
        finally:
            store.close()
    except FactflowError as error:
        raise fail(error) from None
    if output == "json":
        click.echo(kpi_json(name, rows))
    else:
        stdout.print(kpi_table(name, definition.description, rows))
