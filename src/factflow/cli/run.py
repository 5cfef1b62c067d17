"""`factflow run`: the long-running KPI service."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from types import FrameType
from urllib.parse import urlsplit

import click

from factflow._urls import redact
from factflow.cli.locations import load_app, open_transport, open_warehouse
from factflow.cli.logs import configure_logging
from factflow.cli.schema import refuse_mismatched_schema
from factflow.cli.settings import (
    app_option,
    fail,
    max_message_size_option,
    transport_option,
    warehouse_option,
)
from factflow.errors import FactflowError
from factflow.runtime.consumer import (
    DEFAULT_BATCH_SIZE,
    LOG_BATCH_SIZE,
    ConsumerOptions,
    run_consumer,
)
from factflow.runtime.http import serve_metrics
from factflow.runtime.metrics import Metrics
from factflow.runtime.writer import Backoff, BatchOutcome, wait_while_unavailable

__all__ = ["run"]

log = logging.getLogger("factflow.cli")


@click.command()
@app_option
@transport_option
@warehouse_option
@click.option("--group", default="kpi", show_default=True, help="The consumer group to read as.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help=f"Most events per warehouse transaction.  [default: {LOG_BATCH_SIZE} from the embedded"
    f" log, {DEFAULT_BATCH_SIZE} from a broker]",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds to wait for a batch to fill.",
)
@click.option(
    "--until-idle", is_flag=True, help="Exit once caught up instead of waiting for more events."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /metrics (Prometheus) and /healthz on this port.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    show_default=True,
    help="auto: JSON lines unless stderr is a terminal.",
)
@click.option("--log-level", default="INFO", show_default=True)
@max_message_size_option
def run(
    app: str,
    transport: str,
    warehouse: str,
    group: str,
    batch_size: int | None,
    max_wait: float,
    until_idle: bool,
    metrics_port: int | None,
    log_format: str,
    log_level: str,
    max_message_size: int,
) -> None:
    """Consume events and keep the warehouse up to date, until SIGTERM or Ctrl-C.

    Each batch is written in one transaction and acknowledged only after it committed; on
    SIGTERM/SIGINT the batch in hand is finished and acknowledged, then it exits 0. A lost
    broker is reconnected and a warehouse that is down is retried, both with backoff, also
    when the warehouse is down at the start (SIGTERM/SIGINT stops the waiting, with exit 0).
    """
    configure_logging(
        log_level, json_lines={"auto": None, "json": True, "console": False}[log_format]
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the batch in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    metrics = Metrics()
    server = serve_metrics(metrics, metrics_port) if metrics_port is not None else None
    started = time.perf_counter()
    backoff = Backoff()
    total = BatchOutcome()
    try:
        the_app = load_app(app)
        source = open_transport(transport)
        try:
            with contextlib.closing(open_warehouse(warehouse)) as store:
                # A service started while its database is down waits for it; the one-shot
                # commands check the schema without waiting.
                schema_checked = wait_while_unavailable(
                    lambda: refuse_mismatched_schema(store, the_app, app, warehouse), backoff, stop
                )
                if schema_checked:
                    log.info(
                        "consuming",
                        extra={
                            "transport": redact(transport),
                            "warehouse": redact(warehouse),
                            "group": group,
                            "app": the_app.name,
                            "metrics_port": metrics_port,
                        },
                    )
                    total = run_consumer(
                        the_app,
                        source,
                        store,
                        ConsumerOptions(
                            group=group,
                            batch_size=batch_size or _default_batch_size(transport),
                            max_wait=max_wait,
                            stop_when_idle=until_idle,
                            backoff=backoff,
                            max_message_size=max_message_size,
                        ),
                        stop=stop,
                        metrics=metrics,
                    )
        finally:
            source.close()
    except FactflowError as error:
        raise fail(error) from None
    finally:
        if server is not None:
            server.shutdown()
    elapsed = time.perf_counter() - started
    log.info(
        "stopped",
        extra={
            "events": total.messages,
            "rows": total.rows,
            "dead_letters": total.dead_letters,
            "seconds": round(elapsed, 3),
        },
    )


def _default_batch_size(transport: str) -> int:
    """Larger batches from the embedded log, which shares no prefetch window with a broker."""
    return LOG_BATCH_SIZE if urlsplit(transport).scheme == "log" else DEFAULT_BATCH_SIZE
