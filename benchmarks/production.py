"""Family `production` (issue 4, item 3): RabbitMQ → `factflow run` → PostgreSQL.

Against two limits measured in the same run, on the same stream:

* the raw consume rate of the same queue: pika (the client factflow uses), the same prefetch,
  acknowledging every 5000 messages as factflow does, and no processing at all;
* raw `COPY` of the same final rows: every model table factflow wrote, copied by PostgreSQL's
  binary COPY into empty tables of the same definition (keys and indexes included).

Each case gets the queue full: the stream is published anew (`factflow publish`) before it.
`factflow run --until-idle` runs with 1, then 2 processes of the consumer group, each into a
schema of its own. Everything lives in a throwaway vhost (made with `rabbitmqctl`) and throwaway
schemas, removed afterwards. Servers: `FACTFLOW_TEST_AMQP_URL` and `FACTFLOW_TEST_POSTGRES_URL`,
as for the tests.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.embedded import APP, CLI_ENV, stopped_line
from benchmarks.measure import Measured, factflow, record, run_process, run_worker, say
from benchmarks.settings import Settings

__all__ = [
    "AMQP_URL",
    "POSTGRES_URL",
    "drop_schemas",
    "postgres_unavailable",
    "raw_consume",
    "raw_copy",
    "run",
    "unavailable",
    "with_schema",
]

AMQP_URL = os.environ.get("FACTFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get(
    "FACTFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
GROUP = "kpi"  # the banking app's consumer group, hence the queue's name
PREFETCH = 10_000  # factflow's default prefetch
ACK_EVERY = 5000  # factflow's default batch
STALL_SECONDS = 30.0  # a raw consumer that receives nothing this long gives up


def postgres_unavailable() -> str | None:
    """Why factflow cannot use the PostgreSQL server here, or None when it can."""
    try:
        importlib.import_module("factflow.warehouse.postgres")
    except Exception as error:
        return f"factflow's PostgreSQL warehouse does not import ({error})"
    return _no_answer("PostgreSQL", POSTGRES_URL, 5432)


def unavailable() -> str | None:
    """Why the production path cannot be measured here, or None when it can."""
    try:
        importlib.import_module("factflow.transport.rabbitmq")
    except Exception as error:
        return f"factflow's RabbitMQ transport does not import ({error})"
    reason = _no_answer("RabbitMQ", AMQP_URL, 5672) or postgres_unavailable()
    if reason is None and shutil.which("rabbitmqctl") is None:
        reason = "rabbitmqctl is needed to make a throwaway vhost, and is not on PATH"
    return reason


def with_schema(url: str, schema: str) -> str:
    """The PostgreSQL warehouse URL with factflow's `schema` parameter."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def drop_schemas(schemas: list[str]) -> None:
    """Drop throwaway schemas and everything in them."""
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as con:
        for schema in schemas:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _no_answer(name: str, url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), 3).close()
    except OSError as error:
        return f"{name} does not answer at {host}:{port} ({error})"
    return None


def run(settings: Settings) -> dict[str, Any]:
    """Measure the production path at every size up to `settings.production_max`."""
    reason = unavailable()
    if reason is not None:
        return {"measured": False, "reason": reason}
    sizes = settings.capped(settings.production_max)
    if not sizes:
        return {
            "measured": False,
            "reason": f"no size of this run is <= {settings.production_max:,}",
        }
    cases: list[dict[str, Any]] = []
    for events in sizes:
        say(f"production: {events:,} events")
        cases.extend(_measure_size(settings.workspace.events_file(events), events))
    return {
        "measured": True,
        "cases": cases,
        "not_measured": [
            {"case": "production", "events": n, "reason": "above --production-max"}
            for n in settings.sizes
            if n > settings.production_max
        ],
    }


def _measure_size(path: Path, events: int) -> list[dict[str, Any]]:
    suffix = uuid.uuid4().hex[:10]
    vhost = f"factflow_bench_{suffix}"
    amqp = _vhost_url(vhost)
    schemas = {1: f"bench_{suffix}_1", 2: f"bench_{suffix}_2"}
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl(
            "set_permissions", "-p", vhost, urlsplit(AMQP_URL).username or "guest", ".*", ".*", ".*"
        )
        _declare_queue(amqp)
        cases = []
        published = _publish(path, amqp, events)
        say("  raw consume (pika, no processing)")
        measured, result = run_worker(
            "raw_consume",
            {
                "url": amqp,
                "queue": GROUP,
                "events": events,
                "prefetch": PREFETCH,
                "ack_every": ACK_EVERY,
            },
        )
        cases.append(
            record(
                "raw_consume",
                events,
                result["seconds"],
                measured.peak_rss,
                processed=result["events"],
                process_seconds=round(measured.seconds, 3),
                publish_seconds=published,
            )
        )
        for consumers in (1, 2):
            published = _publish(path, amqp, events)
            cases.append(_factflow_run(amqp, schemas[consumers], events, consumers, published))
        say("  raw COPY of the final rows")
        measured, result = run_worker(
            "raw_copy",
            {"url": POSTGRES_URL, "schema": schemas[1], "copy_schema": f"bench_{suffix}_copy"},
        )
        cases.append(
            record(
                "raw_copy",
                events,
                result["seconds"],
                measured.peak_rss,
                rows=result["rows"],
                tables=result["tables"],
            )
        )
        return cases
    finally:
        drop_schemas([*schemas.values(), f"bench_{suffix}_copy"])
        _rabbitmqctl("delete_vhost", vhost, check=False)


def _factflow_run(
    amqp: str, schema: str, events: int, consumers: int, published: float
) -> dict[str, Any]:
    say(f"  factflow run, {consumers} consumer process(es)")
    warehouse = with_schema(POSTGRES_URL, schema)
    command = factflow(
        "run",
        "--until-idle",
        "--app",
        APP,
        "--transport",
        amqp,
        "--warehouse",
        warehouse,
        "--log-format",
        "json",
    )
    started = time.perf_counter()
    with ThreadPoolExecutor(consumers) as pool:
        runs: list[Measured] = list(
            pool.map(lambda _: run_process(command, env=CLI_ENV), range(consumers))
        )
    seconds = time.perf_counter() - started
    stopped = [stopped_line(m.stderr) for m in runs]
    return record(
        f"factflow_run_{consumers}",
        events,
        seconds,
        max(m.peak_rss for m in runs),
        consumers=consumers,
        processed=sum(s.get("events") or 0 for s in stopped),
        in_warehouse=_events_in(schema),
        inner_seconds=max((s.get("seconds") or 0.0) for s in stopped),
        publish_seconds=published,
    )


def _publish(path: Path, amqp: str, events: int) -> float:
    say(f"  factflow publish ({events:,}) to RabbitMQ")
    measured = run_process(factflow("publish", str(path), "--transport", amqp), env=CLI_ENV)
    return round(measured.seconds, 3)


def _declare_queue(amqp: str) -> None:
    """Declare the group's queue and bindings, as `factflow run` would, before publishing."""
    from factflow.cli.locations import load_app
    from factflow.runtime.processor import BatchProcessor
    from factflow.transport.rabbitmq import RabbitMQTransport

    subscription = BatchProcessor(load_app(APP), GROUP).subscription
    with RabbitMQTransport(amqp) as transport:
        transport.subscribe(GROUP, subscription).close()


def _vhost_url(vhost: str) -> str:
    return urlsplit(AMQP_URL)._replace(path=f"/{vhost}").geturl()


def _rabbitmqctl(*arguments: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *arguments], check=check, capture_output=True)


def _events_in(schema: str) -> int | None:
    import psycopg

    with psycopg.connect(POSTGRES_URL) as con:
        row = con.execute(f'SELECT sum(events) FROM "{schema}".factflow_event_stats').fetchone()
    return None if row is None or row[0] is None else int(row[0])


# -- in workers ----------------------------------------------------------------------------


def raw_consume(url: str, queue: str, events: int, prefetch: int, ack_every: int) -> dict[str, Any]:
    """Consume `events` messages of `queue` with pika and nothing else: the ceiling."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    received = 0
    last_tag = 0

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        nonlocal received, last_tag
        received += 1
        last_tag = method.delivery_tag

    started = time.perf_counter()
    channel.basic_consume(queue, on_message, auto_ack=False)
    acked = 0
    quiet_since = time.monotonic()
    while received < events:
        before = received
        connection.process_data_events(time_limit=1)
        if received > before:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > STALL_SECONDS:
            break  # the queue holds fewer messages than expected; `events` in the result says
        if received - acked >= ack_every or received >= events:
            channel.basic_ack(delivery_tag=last_tag, multiple=True)
            channel.basic_qos(prefetch_count=prefetch)  # a round trip: the ack has arrived
            acked = received
    seconds = time.perf_counter() - started
    connection.close()
    return {"seconds": seconds, "events": received}


def raw_copy(url: str, schema: str, copy_schema: str) -> dict[str, Any]:
    """Binary `COPY` of every model table of `schema` into same-shaped empty tables."""
    import psycopg

    with psycopg.connect(url) as con:
        tables = [
            name
            for (name,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                " AND table_type = 'BASE TABLE' AND (table_name LIKE 'fact%%'"
                " OR table_name LIKE 'dim%%') ORDER BY 1",
                [schema],
            ).fetchall()
        ]
        dumps: dict[str, bytes] = {}
        for table in tables:
            with con.cursor().copy(
                f'COPY (SELECT * FROM "{schema}"."{table}") TO STDOUT (FORMAT BINARY)'
            ) as copy:
                dumps[table] = b"".join(bytes(chunk) for chunk in copy)
        con.execute(f'CREATE SCHEMA "{copy_schema}"')
        for table in tables:
            con.execute(
                f'CREATE TABLE "{copy_schema}"."{table}" (LIKE "{schema}"."{table}" INCLUDING ALL)'
            )
        con.commit()
        started = time.perf_counter()
        rows = 0
        for table, data in dumps.items():
            with con.cursor().copy(
                f'COPY "{copy_schema}"."{table}" FROM STDIN (FORMAT BINARY)'
            ) as copy:
                copy.write(data)
        con.commit()
        seconds = time.perf_counter() - started
        for table in tables:
            counted = con.execute(f'SELECT count(*) FROM "{copy_schema}"."{table}"').fetchone()
            rows += counted[0] if counted else 0
    return {"seconds": seconds, "rows": rows, "tables": len(tables)}
