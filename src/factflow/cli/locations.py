"""Open apps, warehouses and transports from the names and URLs users type."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl, urlsplit

from factflow._urls import redact
from factflow.errors import ConfigurationError
from factflow.pipeline.app import App
from factflow.transport.base import Transport
from factflow.warehouse.base import Warehouse

__all__ = ["load_app", "open_transport", "open_warehouse", "redact"]

DEFAULT_APP = "factflow.examples.banking"
DEFAULT_WAREHOUSE = "duckdb:///factflow.duckdb"
DEFAULT_TRANSPORT = "log:///factflow-log"


def load_app(reference: str) -> App:
    """`package.module` (its `app` attribute) or `package.module:attribute`, installed or in
    the working directory (as `python -m` finds it: an app made by `factflow new app`)."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = _import(module_name)
    except ImportError as error:
        raise ConfigurationError(
            f"cannot import the app module {module_name!r}: {error}. Give --app as an importable "
            "module (for example factflow.examples.banking) or module:attribute"
        ) from None
    app = getattr(module, attribute or "app", None)
    if not isinstance(app, App):
        raise ConfigurationError(
            f"{module_name} has no factflow App named {attribute or 'app'!r}; "
            "define `app = App(...)` in it or give --app module:attribute"
        )
    return app


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        here = str(Path.cwd())
        if error.name != name.partition(".")[0] or here in sys.path:
            raise
    # Not installed: look in the working directory too, after everything installed, and only
    # for this import (the package's own imports work from then on, through its __path__).
    sys.path.append(here)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(here)


def _local_path(url: str, scheme: str) -> Path:
    """The path of `scheme:///relative` or `scheme:////absolute` (SQLAlchemy's convention)."""
    rest = url[len(scheme) + 3 :].partition("?")[0]
    if not rest.startswith("/") or rest == "/":
        raise ConfigurationError(
            f"{redact(url)}: write {scheme}:///relative/path or {scheme}:////absolute/path"
        )
    return Path(rest[1:])


def open_warehouse(url: str, *, read_only: bool = False) -> Warehouse:
    scheme = urlsplit(url).scheme
    if scheme == "duckdb":
        from factflow.warehouse.duckdb import DuckDBWarehouse

        path = _local_path(url, scheme)
        if read_only and not path.exists():
            raise ConfigurationError(
                f"no warehouse at {path}: fill it first (factflow bootstrap, run or demo)"
            )
        options = dict(parse_qsl(urlsplit(url).query))
        unknown = set(options) - {"memory_limit"}
        if unknown:
            raise ConfigurationError(
                f"{redact(url)}: unknown option(s) {sorted(unknown)}; known: memory_limit"
            )
        return DuckDBWarehouse(
            None if str(path) == ":memory:" else path,
            read_only=read_only,
            memory_limit=options.get("memory_limit"),
        )
    if scheme in ("postgresql", "postgres"):
        from factflow.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url, read_only=read_only)
    raise ConfigurationError(
        f"unsupported warehouse {redact(url)}: use duckdb:///path.duckdb or "
        "postgresql://user@host/db"
    )


def open_transport(url: str) -> Transport:
    scheme = urlsplit(url).scheme
    if scheme == "log":
        from factflow.transport.log import LogTransport

        return LogTransport(_local_path(url, scheme))
    if scheme in ("amqp", "amqps"):
        from factflow.transport.rabbitmq import RabbitMQTransport

        return RabbitMQTransport(url)
    if scheme in ("nats", "tls"):
        from factflow.transport.nats import NatsTransport

        return NatsTransport(url)
    raise ConfigurationError(
        f"unsupported transport {redact(url)}: use log:///path, amqp://user:pass@host/vhost "
        "or nats://host:4222"
    )
