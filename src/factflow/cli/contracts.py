"""`factflow contracts export|check`: the JSON Schemas of the events an app reads, and the check
a team's CI runs against them."""

from __future__ import annotations

from pathlib import Path

import click

from factflow.cli.locations import load_app
from factflow.cli.output import stdout
from factflow.cli.settings import app_option, fail
from factflow.errors import FactflowError
from factflow.model.contracts import check_contracts, export_contracts

__all__ = ["contracts"]


@click.group()
def contracts() -> None:
    """Event contracts: export the JSON Schema of every event type and version the app reads,
    and check later declarations against them."""


@contracts.command()
@app_option
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(app: str, directory: Path) -> None:
    """Write one JSON Schema per event type and version into DIRECTORY."""
    try:
        written = export_contracts(load_app(app).event_versions, directory)
    except FactflowError as error:
        raise fail(error) from None
    for path in written:
        stdout.print(str(path))
    stdout.print(f"exported: {len(written)} contracts to {directory}")


@contracts.command()
@app_option
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def check(app: str, directory: Path) -> None:
    """Compare the app's declarations with the contracts in DIRECTORY; exit 1 on a change that
    breaks events already published (removed, renamed or retyped fields, ...)."""
    try:
        changes = check_contracts(load_app(app).event_versions, directory)
    except FactflowError as error:
        raise fail(error) from None
    for change in changes:
        stdout.print(str(change))
    breaking = [c for c in changes if c.kind == "breaking"]
    if breaking:
        stdout.print(f"{len(breaking)} breaking change(s)")
        raise SystemExit(1)
    stdout.print("compatible" + (f" ({len(changes)} change(s))" if changes else ""))
