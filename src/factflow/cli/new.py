"""`factflow new app|fact|dimension`: scaffolding for a team's own KPI app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from factflow.errors import ConfigurationError
from factflow.scaffold import Change, Thing, new_app, new_thing

__all__ = ["new"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def new() -> None:
    """Scaffold a KPI app, then the facts and dimensions in it (docs/add-a-kpi.md).

    \b
        mkdir lending && cd lending
        factflow new app lending
        factflow new dimension library book --event book_added
        factflow new fact library loan --event book_borrowed
        pytest
    """


@new.command("app")
@click.argument("name")
def new_app_command(name: str) -> None:
    """A new app NAME, in the current folder (empty).

    Writes the package NAME (the App, its consumers and KPIs), factflow.toml naming it,
    pyproject.toml (pytest, ruff and mypy settings) and tests/.
    """
    try:
        changes = new_app(Path.cwd(), name)
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    _report(changes)
    click.echo(
        "\nNext, in this folder:\n"
        "  factflow new dimension DOMAIN NAME   (DOMAIN as in the event types: library for\n"
        "  factflow new fact DOMAIN NAME         library.book_borrowed)\n"
        "  pytest\n"
        "A walk-through: docs/add-a-kpi.md in factflow."
    )


def _thing_options(kind: Literal["fact", "dimension"]) -> Callable[[F], F]:
    default_event = "NAME_recorded" if kind == "fact" else "NAME_updated"

    options = (
        click.argument("domain"),
        click.argument("name"),
        click.option(
            "--event",
            "event_name",
            metavar="EVENT",
            help=(
                f"The event it is made of, as in DOMAIN.EVENT (default: {default_event}); "
                "say what happened, e.g. book_borrowed."
            ),
        ),
        click.option("--key", metavar="FIELD", help="The natural key (default: NAME_id)."),
        click.option(
            "--app",
            envvar="FACTFLOW_APP",
            metavar="PACKAGE",
            help="The app's package in this folder (default: the app of factflow.toml).",
        ),
    )

    def add(function: F) -> F:
        # Applied last to first, as stacked decorators are: the arguments keep their order.
        for option in reversed(options):
            function = option(function)
        return function

    return add


@new.command("fact")
@_thing_options("fact")
def new_fact_command(
    domain: str, name: str, event_name: str | None, key: str | None, app: str | None
) -> None:
    """A fact NAME, made of an event of DOMAIN.

    Adds a section to the module DOMAIN.py of the app: the event class, the fact, the map
    function and the pipeline (bound in the app's consumers.py), and a bootstrap source to
    write; and a test that passes at once.
    """
    _scaffold("fact", domain, name, event_name, key, app, scd=1)


@new.command("dimension")
@_thing_options("dimension")
@click.option(
    "--scd",
    type=click.Choice(["1", "2"]),
    default="1",
    show_default=True,
    help="1 keeps the latest value of each attribute; 2 also keeps each version by event time.",
)
def new_dimension_command(
    domain: str, name: str, event_name: str | None, key: str | None, app: str | None, scd: str
) -> None:
    """A dimension NAME, changed by an event of DOMAIN.

    Adds a section to the module DOMAIN.py of the app: the event class, the dimension, the map
    function and the pipeline (bound in the app's consumers.py), and a bootstrap source to
    write; and a test that passes at once.
    """
    _scaffold("dimension", domain, name, event_name, key, app, scd=2 if scd == "2" else 1)


def _scaffold(
    kind: Literal["fact", "dimension"],
    domain: str,
    name: str,
    event_name: str | None,
    key: str | None,
    app: str | None,
    *,
    scd: Literal[1, 2],
) -> None:
    if not app:
        raise click.UsageError(
            "which app? Run this in the folder `factflow new app` made (its factflow.toml "
            "names the app), or give --app PACKAGE"
        )
    try:
        thing = Thing.parse(kind, domain, name, event_name=event_name, key=key, scd=scd)
        changes = new_thing(Path.cwd(), app, thing)
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    _report(changes)
    module = changes[0].path
    row = thing.row_class
    click.echo(
        f"\nNext: declare the fields of {thing.event_class} and {row} in {module}, map them in "
        f"{thing.map_function},\ngive the events of {changes[-1].path} those fields, and run "
        "pytest."
    )


def _report(changes: list[Change]) -> None:
    for change in changes:
        click.echo(f"{change.action} {change.path}: {change.what}")
