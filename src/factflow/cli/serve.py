"""`factflow serve`: the web dashboard over the warehouse, opened read-only, behind a token."""

from __future__ import annotations

import os
import secrets
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from factflow.cli.locations import load_app, open_warehouse
from factflow.cli.settings import app_option, fail, warehouse_option
from factflow.errors import FactflowError
from factflow.pipeline.app import App
from factflow.warehouse.base import Warehouse

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["serve"]

INSTALL = "pip install 'factflow[dashboard]'"


@click.command()
@app_option
@warehouse_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on; 0.0.0.0 for every interface.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8050,
    show_default=True,
    help="The port to listen on; 0 picks a free one.",
)
@click.option("--headline", help="The KPI on the front of the page (default: the app's first).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Stop a KPI's query after SECONDS.",
)
def serve(
    app: str, warehouse: str, host: str, port: int, headline: str | None, timeout: float
) -> None:
    """Serve the dashboard: the headline KPI on the front, every KPI as a chart and a table,
    filters, CSV downloads and live pipeline status, over a JSON API under /api/.

    Every page and endpoint but /api/health needs the token: FACTFLOW_TOKEN, or one made up
    and printed at start-up. Send it as `Authorization: Bearer TOKEN`, or open the printed
    address once (?token=…): a cookie keeps it. Nothing is ever written to the warehouse.
    """
    given = os.environ.get("FACTFLOW_TOKEN")
    if given is not None and not given.strip():
        raise click.UsageError("FACTFLOW_TOKEN is empty: set a secret, or unset it to get one")
    token = given or secrets.token_urlsafe(24)
    try:
        the_app = load_app(app)
        dashboard = _dashboard(the_app, warehouse, token, headline, timeout)
    except FactflowError as error:
        raise fail(error) from None
    listener = _listen(host, port)
    address = _address(host, listener.getsockname()[1])
    if given is None:
        click.echo(f"factflow dashboard: {address}?token={token}")
    else:
        click.echo(f"factflow dashboard: {address} (token: FACTFLOW_TOKEN)")
    _run(dashboard, listener)


def _dashboard(
    app: App, warehouse: str, token: str, headline: str | None, timeout: float
) -> Starlette:
    try:
        import uvicorn  # noqa: F401  (served by it: missing, it is better said now)

        from factflow.insight.dashboard import create_app, probe
    except ModuleNotFoundError as error:
        package = (error.name or "").partition(".")[0]
        if package in ("starlette", "uvicorn", "plotly"):
            raise click.ClickException(f"the dashboard needs {package}: {INSTALL}") from None
        raise

    def open_reader() -> Warehouse:
        return open_warehouse(warehouse, read_only=True)

    # A wrong URL or a missing file is better said before serving; a busy or unreachable
    # warehouse is not a reason to stop: the page says so until it answers.
    unready = probe(open_reader)
    if unready is not None:
        click.echo(f"warning: {unready.message}", err=True)
    return create_app(
        app,
        open_reader,
        token=token,
        # DuckDB: opened per request, so that a writer can take the file in between.
        keep_open=urlsplit(warehouse).scheme != "duckdb",
        headline=headline,
        timeout=timeout,
    )


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host`:`port`, bound here so that the printed address has the port
    that `--port 0` picked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error}; give another --port "
            "(0 picks a free one) or --host"
        ) from None


def _address(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/"


def _run(dashboard: Starlette, listener: socket.socket) -> None:
    import uvicorn

    # No access log: a first request carries the token in its address (?token=…).
    config = uvicorn.Config(dashboard, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[listener])
