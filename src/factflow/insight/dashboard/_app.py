"""The dashboard's routes: the page, its static files, and the JSON API under `/api/`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import msgspec
from plotly.offline import get_plotlyjs
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from factflow.errors import ConfigurationError
from factflow.insight.dashboard._access import TokenGate
from factflow.insight.dashboard._questions import (
    answer_json,
    ask,
    kpi_summary,
    parse_question,
)
from factflow.insight.dashboard._readers import Readers, WarehouseUnready
from factflow.insight.dashboard._status import Throughput, pipeline_status
from factflow.insight.formats import csv_text
from factflow.pipeline.app import App
from factflow.warehouse.base import Warehouse

__all__ = ["create_app"]

HEALTH_PATHS = frozenset({"/api/health", "/healthz"})
_PACKAGE = "factflow.insight.dashboard"
_SECURITY_HEADERS = {
    # Everything the page needs is served from here: nothing else may load or run.
    # Plotly sets inline styles on the charts it draws, hence 'unsafe-inline' for styles.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def create_app(
    app: App,
    open_reader: Callable[[], Warehouse],
    *,
    token: str,
    keep_open: bool = False,
    headline: str | None = None,
    timeout: float | None = 30.0,
) -> Starlette:
    """The dashboard of `app` as an ASGI application (serve it with uvicorn).

    Args:
        app: the app whose KPIs it shows.
        open_reader: opens the warehouse read-only (``open_warehouse(url, read_only=True)``).
        token: what every request but the health check must carry (see `TokenGate`).
        keep_open: keep connections open between requests (PostgreSQL); DuckDB files are
            opened per request, so that a writer can open them in between.
        headline: the KPI on the front of the page; the app's first KPI by default.
        timeout: seconds after which a KPI's query is stopped.

    Raises:
        ConfigurationError: the app has no KPIs, or no KPI named `headline`.
    """
    if not app.kpis:
        raise ConfigurationError(f"app {app.name!r} has no KPIs to show: declare some first")
    front = headline or next(iter(app.kpis))
    if front not in app.kpis:
        known = ", ".join(app.kpis)
        raise ConfigurationError(f"app {app.name!r} has no KPI {front!r}; known: {known}")
    readers = Readers(open_reader, keep_open=keep_open)
    throughput = Throughput()
    index = (files(_PACKAGE) / "static" / "index.html").read_bytes()
    charts = _plotly_js()

    def page(request: Request) -> Response:
        return Response(index, media_type="text/html; charset=utf-8")

    def chart_library(request: Request) -> Response:
        # The browser may have no way out to a CDN: the chart library is served from here.
        return Response(
            charts, media_type="text/javascript", headers={"cache-control": "max-age=86400"}
        )

    def health(request: Request) -> Response:
        return _json({"status": "ok"})

    def kpis(request: Request) -> Response:
        return _json(
            {
                "app": app.name,
                "headline": front,
                "kpis": [kpi_summary(app, name) for name in app.kpis],
            }
        )

    def kpi(request: Request) -> Response:
        name = request.path_params["name"]
        as_csv = name.endswith(".csv")
        name = name.removesuffix(".csv")
        if name not in app.kpis:
            known = ", ".join(app.kpis)
            return _error(404, f"no KPI {name!r} in app {app.name!r}; known: {known}")
        try:
            question = parse_question(request.query_params.multi_items())
            with readers.reading() as store:
                table = ask(app, name, store, question, timeout=timeout)
        except WarehouseUnready as unready:
            return _unready(unready)
        except ConfigurationError as error:
            return _error(400, str(error))
        if as_csv or question.format == "csv":
            return Response(
                csv_text(table),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}.csv"'},
            )
        return _json(answer_json(app, name, table, question))

    def status(request: Request) -> Response:
        checked_at = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
        try:
            with readers.reading() as store:
                found = pipeline_status(store, timeout=timeout)
        except WarehouseUnready as unready:
            return _json(
                {"warehouse": unready.state, "message": unready.message, "checked_at": checked_at}
            )
        rate = throughput.observe(found["events"])
        return _json(
            {
                "warehouse": "ok",
                "message": None,
                "checked_at": checked_at,
                "events_per_second": None if rate is None else round(rate, 2),
                **found,
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        readers.close()

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/health", health),
            Route("/healthz", health),
            Route("/api/kpis", kpis),
            Route("/api/kpi/{name}", kpi),
            Route("/api/status", status),
            Route("/static/plotly.min.js", chart_library),
            Mount("/static", StaticFiles(packages=[(_PACKAGE, "static")])),
        ],
        middleware=[
            Middleware(_SecurityHeaders),
            Middleware(TokenGate, token=token, open_paths=HEALTH_PATHS),
            Middleware(GZipMiddleware, minimum_size=1024),
        ],
        lifespan=lifespan,
    )


class _SecurityHeaders:
    """Adds `_SECURITY_HEADERS` to every response, refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _plotly_js() -> bytes:
    return str(get_plotlyjs()).encode()


def _json(body: dict[str, Any], status_code: int = 200) -> Response:
    # msgspec, not json: answers hold dates; decimals are strings already (to_json_rows).
    return Response(msgspec.json.encode(body), status_code, media_type="application/json")


def _error(status_code: int, message: str) -> Response:
    return _json({"error": message}, status_code)


def _unready(unready: WarehouseUnready) -> Response:
    response = _json({"error": unready.message, "warehouse": unready.state}, 503)
    response.headers["retry-after"] = "5"
    return response
