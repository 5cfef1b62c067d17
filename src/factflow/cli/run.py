"""`factflow run`: the long-running KPI service."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import click

from factflow._urls import redact
from factflow.cli.locations import load_app, open_transport, open_warehouse
from factflow.cli.output import stderr
from factflow.cli.settings import app_option, fail, transport_option, warehouse_option
from factflow.errors import FactflowError
from factflow.runtime.consumer import ConsumerOptions, run_consumer
from factflow.runtime.writer import BatchOutcome

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
    default=5000,
    show_default=True,
    help="Most events per warehouse transaction.",
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
def run(
    app: str,
    transport: str,
    warehouse: str,
    group: str,
    batch_size: int,
    max_wait: float,
    until_idle: bool,
) -> None:
    """Consume events and keep the warehouse up to date, until SIGTERM or Ctrl-C.

    Each batch is written in one transaction and acknowledged only after it committed; on
    SIGTERM/SIGINT the batch in hand is finished and acknowledged, then it exits 0.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the batch in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.perf_counter()
    try:
        the_app = load_app(app)
        source = open_transport(transport)
        store = open_warehouse(warehouse)
        log.info("consuming %s as group %r into %s", redact(transport), group, redact(warehouse))
        try:
            total: BatchOutcome = run_consumer(
                the_app,
                source,
                store,
                ConsumerOptions(
                    group=group, batch_size=batch_size, max_wait=max_wait, stop_when_idle=until_idle
                ),
                stop=stop,
            )
        finally:
            store.close()
            source.close()
    except FactflowError as error:
        raise fail(error) from None
    elapsed = time.perf_counter() - started
    stderr.print(
        f"events: {total.messages}  rows: {total.rows}  dead letters: {total.dead_letters}  "
        f"time: {elapsed:.1f}s"
    )
