"""`factflow schema show|diff|migrate`: the DDL of the model, how a live warehouse differs from it,
and the migration that brings the warehouse to the model."""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import click

from factflow._urls import redact
from factflow.cli.locations import load_app, open_warehouse
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import ConfigurationError, FactflowError
from factflow.pipeline.app import App
from factflow.warehouse.base import Warehouse
from factflow.warehouse.ddl import Dialect
from factflow.warehouse.migrations import diff, losses, migrate, render

__all__ = ["refuse_mismatched_schema", "schema"]

#: Backend name → the module defining its `DIALECT`, and the URL schemes that name it.
_BACKENDS = {"duckdb": "factflow.warehouse.duckdb", "postgresql": "factflow.warehouse.postgres"}
_SCHEMES = {"duckdb": "duckdb", "postgresql": "postgresql", "postgres": "postgresql"}


@click.group()
def schema() -> None:
    """The warehouse's tables: the DDL of the model, the differences of a live warehouse to it,
    and safe migrations (additive changes only, unless told otherwise)."""


@schema.command()
@app_option
@warehouse_option
@click.option(
    "--backend",
    type=click.Choice(sorted(_BACKENDS)),
    help="Print the DDL for this backend [default: the --warehouse's].",
)
def show(app: str, warehouse: str, backend: str | None) -> None:
    """Print the CREATE statements of the model's tables (and of the sequences numbering its
    dimensions' members)."""
    try:
        the_app = load_app(app)
        dialect = _dialect(backend or _backend(warehouse))
    except FactflowError as error:
        raise fail(error) from None
    statements = [
        *dialect.create_sequences(the_app.schema),
        *dialect.create_tables(the_app.schema).values(),
    ]
    click.echo(
        f"-- The tables of app {the_app.name!r} for {dialect.name}. factflow creates them, and\n"
        "-- its own factflow_* tables, when missing; `factflow schema migrate` evolves them."
    )
    for statement in statements:
        click.echo(f"\n{statement};")


@schema.command(name="diff")
@app_option
@warehouse_option
def diff_command(app: str, warehouse: str) -> None:
    """Compare the model with the warehouse: exit 0 when they match, 1 when they differ."""
    try:
        the_app = load_app(app)
        store = open_warehouse(warehouse, read_only=True)
        try:
            found = diff(store, the_app.schema)
            lost = losses(store, found.destructive)
        finally:
            store.close()
    except FactflowError as error:
        raise fail(error) from None
    click.echo(f"{redact(warehouse)} ({_version(found.version)}) against app {the_app.name!r}:")
    if not found.changes:
        click.echo("  the same tables and columns")
        return
    additive = [c for c in found.changes if not c.destructive]
    if additive:
        click.echo("additive (factflow schema migrate applies them):")
        click.echo(render(additive))
    if found.destructive:
        click.echo("destructive (factflow schema migrate --allow-destructive applies them):")
        click.echo(render(found.destructive, lost))
    if found.stops_writes:
        click.echo("factflow run and bootstrap refuse to write to it until it is migrated.")
    raise SystemExit(1)


@schema.command(name="migrate")
@app_option
@warehouse_option
@click.option(
    "--allow-destructive",
    is_flag=True,
    help="Also drop tables and columns the model no longer has, narrow types and require "
    "values, losing what they hold.",
)
@click.option("--dry-run", is_flag=True, help="Print the changes and their SQL; change nothing.")
def migrate_command(app: str, warehouse: str, allow_destructive: bool, dry_run: bool) -> None:
    """Bring the warehouse to the model in one transaction, and record the schema version.

    Additive changes (new tables, new nullable columns, wider types) are applied; destructive
    ones are refused, saying what they would lose, unless --allow-destructive. Exits 1 when
    what it refused still keeps `factflow run` from writing to the warehouse.
    """
    try:
        the_app = load_app(app)
        store = open_warehouse(warehouse, read_only=dry_run)
        try:
            if dry_run:
                _dry_run(store, the_app)
                return
            done = migrate(store, the_app.schema, allow_destructive=allow_destructive)
        finally:
            store.close()
    except FactflowError as error:
        raise fail(error) from None
    if done.applied:
        click.echo(f"migrated to schema version {done.version}:")
        click.echo(render(done.applied))
    elif not done.refused:
        click.echo(
            f"nothing to migrate: the warehouse matches the model ({_version(done.version)})"
        )
    if done.refused:
        click.echo("refused, as destructive (--allow-destructive applies them):")
        click.echo(render(done.refused, done.lost))
    if any(change.stops_writes for change in done.refused):
        click.echo("factflow run and bootstrap refuse to write to it until they are applied.")
        raise SystemExit(1)


def _dry_run(store: Warehouse, the_app: App) -> None:
    found = diff(store, the_app.schema)
    if not found.changes:
        click.echo(
            f"nothing to migrate: the warehouse matches the model ({_version(found.version)})"
        )
        return
    click.echo(f"{_version(found.version)}; a migration would change (a dry run: nothing now):")
    click.echo(render(found.changes, losses(store, found.destructive)))
    click.echo("\nin one transaction:")
    for statement in found.statements:
        click.echo(f"{statement};")


@contextmanager
def model_warehouse(warehouse: str, the_app: App, app: str) -> Iterator[Warehouse]:
    """The warehouse at `warehouse`, opened to write the app's rows, and closed after; refused
    (see `refuse_mismatched_schema`) when its tables differ from the model."""
    store = open_warehouse(warehouse)
    try:
        refuse_mismatched_schema(store, the_app, app, warehouse)
        yield store
    finally:
        store.close()


def refuse_mismatched_schema(store: Warehouse, the_app: App, app: str, warehouse: str) -> None:
    """Refuse to write the app's rows to a warehouse whose tables of the model differ from it.

    Tables the warehouse lacks are fine (`prepare` creates them), and so are tables and nullable
    columns the model no longer has.

    Raises:
        ConfigurationError: listing the differences and the command that fixes them.
    """
    found = diff(store, the_app.schema)
    if not found.stops_writes:
        return
    command = shlex.join(["factflow", "schema", "migrate", "--app", app, "--warehouse"])
    destructive = any(change.destructive for change in found.stops_writes)
    raise ConfigurationError(
        f"the tables of {redact(warehouse)} do not match the model of app {the_app.name!r}:\n"
        f"{render(found.stops_writes)}\n"
        f"migrate it first: {command} {shlex.quote(redact(warehouse))}"
        + (
            " --allow-destructive (`factflow schema diff` says what the changes marked ! or - "
            "would lose)"
            if destructive
            else ""
        )
    )


def _version(version: int | None) -> str:
    return "never migrated" if version is None else f"schema version {version}"


def _backend(warehouse: str) -> str:
    backend = _SCHEMES.get(urlsplit(warehouse).scheme)
    if backend is None:
        raise ConfigurationError(
            f"cannot tell the backend of {redact(warehouse)}: give --backend "
            f"({', '.join(sorted(_BACKENDS))}) or a duckdb:/// or postgresql:// --warehouse"
        )
    return backend


def _dialect(backend: str) -> Dialect:
    dialect = importlib.import_module(_BACKENDS[backend]).DIALECT
    assert isinstance(dialect, Dialect)
    return dialect
