"""Configuration at the command line's edge: factflow.toml and the shared options."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from factflow.cli.locations import DEFAULT_APP, DEFAULT_TRANSPORT, DEFAULT_WAREHOUSE
from factflow.errors import ConfigurationError, FactflowError
from factflow.model.decoding import DEFAULT_MAX_MESSAGE_SIZE

__all__ = [
    "app_option",
    "fail",
    "load_defaults",
    "max_message_size_option",
    "transport_option",
    "warehouse_option",
]

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_FILE = Path("factflow.toml")
_SHARED = ("app", "warehouse", "transport", "group", "max_message_size")


def load_defaults(path: Path = CONFIG_FILE) -> dict[str, Any]:
    """Defaults for every command from `factflow.toml` (keys: app, warehouse, transport, group,
    max_message_size)."""
    if not path.exists():
        return {}
    try:
        settings = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise click.ClickException(f"{path}: {error}") from None
    unknown = set(settings) - set(_SHARED)
    if unknown:
        raise click.ClickException(
            f"{path}: unknown setting(s) {sorted(unknown)}; known: {', '.join(_SHARED)}"
        )
    commands = (
        "demo",
        "simulate",
        "bootstrap",
        "rebuild",
        "run",
        "publish",
        "kpi",
        "query",
        "dlq",
        "status",
        "serve",
    )
    return {command: dict(settings) for command in commands} | {
        "dlq": {command: dict(settings) for command in ("list", "show", "replay")},
        "contracts": {command: dict(settings) for command in ("export", "check")},
        "schema": {command: dict(settings) for command in ("show", "diff", "migrate")},
        "new": {command: dict(settings) for command in ("fact", "dimension")},
    }


def app_option(function: F) -> F:
    return click.option(
        "--app",
        envvar="FACTFLOW_APP",
        default=DEFAULT_APP,
        show_default=True,
        help="The app: an importable module with an `app`, or module:attribute.",
    )(function)


def warehouse_option(function: F) -> F:
    return click.option(
        "--warehouse",
        envvar="FACTFLOW_WAREHOUSE",
        default=DEFAULT_WAREHOUSE,
        show_default=True,
        help="Where the model lives, e.g. duckdb:///kpi.duckdb.",
    )(function)


def transport_option(function: F) -> F:
    return click.option(
        "--transport",
        envvar="FACTFLOW_TRANSPORT",
        default=DEFAULT_TRANSPORT,
        show_default=True,
        help="Where events travel, e.g. log:///factflow-log.",
    )(function)


def max_message_size_option(function: F) -> F:
    return click.option(
        "--max-message-size",
        envvar="FACTFLOW_MAX_MESSAGE_SIZE",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_MESSAGE_SIZE,
        show_default=True,
        help="Largest message in bytes; a larger one becomes a dead letter without being parsed.",
    )(function)


def fail(error: FactflowError) -> click.ClickException:
    """A factflow error as a command-line error (exit status 1, message without a traceback)."""
    kind = "configuration" if isinstance(error, ConfigurationError) else type(error).__name__
    return click.ClickException(f"{kind}: {error}")
