"""What factflow is compared with, each run in a worker process on the same event file.

* `read_json`: DuckDB parses the file into one flat table; the physical floor of "parse and
  store".
* `decode`: factflow's own envelope decoding, alone, over the file's lines in batches.
* `per_event`: the talk's design done plainly in Python on DuckDB: one transaction per event,
  look-up-then-insert per referenced dimension, insert-if-absent fact.
* `dlt`: dlt loading the same events into DuckDB, one table per type, merged on `id`.

Each returns a JSON object with the `seconds` of its timed part (from opening the store to
closing it, so a checkpoint on close counts), the `events` read and what it stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

__all__ = ["decode", "dlt_load", "per_event", "read_json"]

DECODE_BATCH = 5000  # the runtime's default batch size


def read_json(path: str, database: str) -> dict[str, Any]:
    """`CREATE TABLE t AS SELECT * FROM read_json(...)` of the whole file into a new DuckDB file."""
    started = time.perf_counter()
    con = duckdb.connect(database)
    con.execute(
        "CREATE TABLE t AS SELECT * FROM read_json(?, format = 'newline_delimited')", [path]
    )
    row = con.execute("SELECT count(*) FROM t").fetchone()
    con.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "events": row[0] if row else 0}


def decode(path: str) -> dict[str, Any]:
    """factflow's `EventDecoder.decode_batch` over the lines, as `read_lines` yields them."""
    from factflow.cli.locations import load_app
    from factflow.model.decoding import EventDecoder
    from factflow.transport.files import read_lines

    decoder = EventDecoder(load_app("factflow.examples.banking").events)
    started = time.perf_counter()
    events = dead = 0
    for lines in read_lines(Path(path), DECODE_BATCH):
        envelopes, _, letters = decoder.decode_batch(lines)
        events += len(envelopes)
        dead += len(letters)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "events": events + dead, "dead_letters": dead}


# -- the talk's per-event design -----------------------------------------------------------

_MONEY = "DECIMAL(18, 2)"
_PER_EVENT_SCHEMA = f"""
CREATE TABLE dim_user (user_id VARCHAR PRIMARY KEY, country VARCHAR, segment VARCHAR,
    inferred BOOLEAN, updated_at TIMESTAMPTZ);
CREATE TABLE dim_account (account_id VARCHAR PRIMARY KEY, user_id VARCHAR, currency VARCHAR,
    inferred BOOLEAN, updated_at TIMESTAMPTZ);
CREATE TABLE dim_card (card_id VARCHAR PRIMARY KEY, user_id VARCHAR, account_id VARCHAR,
    product VARCHAR, inferred BOOLEAN, updated_at TIMESTAMPTZ);
CREATE TABLE dim_goal (goal_id VARCHAR PRIMARY KEY, user_id VARCHAR, name VARCHAR,
    category VARCHAR, target_amount {_MONEY}, currency VARCHAR, deleted BOOLEAN,
    inferred BOOLEAN, updated_at TIMESTAMPTZ);
CREATE TABLE fact_card_transaction (transaction_id VARCHAR PRIMARY KEY, card_id VARCHAR,
    user_id VARCHAR, amount {_MONEY}, currency VARCHAR, billing_amount {_MONEY},
    billing_currency VARCHAR, merchant VARCHAR, merchant_category VARCHAR,
    merchant_country VARCHAR, event_id VARCHAR, occurred_at TIMESTAMPTZ);
CREATE TABLE fact_account_balance_change (event_id VARCHAR PRIMARY KEY, account_id VARCHAR,
    user_id VARCHAR, balance {_MONEY}, available {_MONEY}, usable {_MONEY}, currency VARCHAR,
    occurred_at TIMESTAMPTZ);
"""
_DIMENSION_OF = {"user_id": "dim_user", "account_id": "dim_account", "card_id": "dim_card"}


@dataclass(frozen=True)
class _Handler:
    """How the per-event design applies one event type."""

    table: str
    key: str  # the natural key column: a field of `data`, or `event_id` (the envelope id)
    fields: tuple[str, ...]  # the fields of `data` written to `table`
    references: tuple[str, ...] = ()  # fields of `data` naming another dimension's key
    dimension: bool = False  # upsert (a dimension) rather than insert-if-absent (a fact)
    constants: dict[str, Any] = field(default_factory=dict)


_TRANSACTION = (
    "transaction_id",
    "card_id",
    "user_id",
    "amount",
    "currency",
    "billing_amount",
    "billing_currency",
    "merchant",
    "merchant_category",
    "merchant_country",
)
_HANDLERS = {
    "user.user_created": _Handler("dim_user", "user_id", ("country", "segment"), dimension=True),
    "user.user_updated": _Handler("dim_user", "user_id", ("country", "segment"), dimension=True),
    "account.account_opened": _Handler(
        "dim_account", "account_id", ("user_id", "currency"), ("user_id",), dimension=True
    ),
    "account.balance_updated": _Handler(
        "fact_account_balance_change",
        "event_id",
        ("account_id", "user_id", "balance", "available", "usable", "currency"),
        ("user_id", "account_id"),
    ),
    "card.card_issued": _Handler(
        "dim_card",
        "card_id",
        ("user_id", "account_id", "product"),
        ("user_id", "account_id"),
        dimension=True,
    ),
    "card.transaction_settled": _Handler(
        "fact_card_transaction", "transaction_id", _TRANSACTION, ("user_id", "card_id")
    ),
    "goal.goal_created": _Handler(
        "dim_goal",
        "goal_id",
        ("user_id", "name", "category", "target_amount", "currency"),
        ("user_id",),
        dimension=True,
        constants={"deleted": False},
    ),
    "goal.goal_deleted": _Handler(
        "dim_goal",
        "goal_id",
        ("user_id",),
        ("user_id",),
        dimension=True,
        constants={"deleted": True},
    ),
}


def per_event(path: str, database: str) -> dict[str, Any]:
    """One transaction per event: look up each referenced dimension and insert it if missing,
    then upsert the event's dimension or insert its fact unless its key is already there.

    Simpler than factflow (it keeps only the latest dimension values, by arrival, with no
    history by event time), so it does less work per event, not more.
    """
    started = time.perf_counter()
    con = duckdb.connect(database)
    con.execute(_PER_EVENT_SCHEMA)
    events = skipped = 0
    for line in _lines(path):
        event = json.loads(line)
        handler = _HANDLERS.get(event.get("type"))
        if handler is None:
            skipped += 1
            continue
        con.begin()
        _apply(con, handler, event)
        con.commit()
        events += 1
    con.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "events": events + skipped, "skipped": skipped}


def _apply(con: duckdb.DuckDBPyConnection, handler: _Handler, event: dict[str, Any]) -> None:
    data = event["data"]
    for name in handler.references:
        table = _DIMENSION_OF[name]
        if con.execute(f"SELECT 1 FROM {table} WHERE {name} = ?", [data[name]]).fetchone() is None:
            con.execute(f"INSERT INTO {table} ({name}, inferred) VALUES (?, true)", [data[name]])
    key = event["id"] if handler.key == "event_id" else data[handler.key]
    found = con.execute(f"SELECT 1 FROM {handler.table} WHERE {handler.key} = ?", [key]).fetchone()
    values = {name: data[name] for name in handler.fields if name in data} | handler.constants
    if handler.dimension:
        values |= {"inferred": False, "updated_at": event["occurred_at"]}
        if found is None:
            values[handler.key] = key
            _insert(con, handler.table, values)
        else:
            assignments = ", ".join(f"{name} = ?" for name in values)
            con.execute(
                f"UPDATE {handler.table} SET {assignments} WHERE {handler.key} = ?",
                [*values.values(), key],
            )
    elif found is None:
        values |= {"event_id": event["id"], "occurred_at": event["occurred_at"]}
        _insert(con, handler.table, values)


def _insert(con: duckdb.DuckDBPyConnection, table: str, values: dict[str, Any]) -> None:
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    con.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))


# -- dlt -----------------------------------------------------------------------------------


def dlt_load(path: str, database: str, pipelines_dir: str) -> dict[str, Any]:
    """dlt's DuckDB destination: a table per event type, `write_disposition="merge"` on `id`.

    Events are handed to dlt the way its documentation recommends for speed: as pages (lists
    of dicts), one page per type per batch of lines.
    """
    import dlt

    pipeline = dlt.pipeline(
        pipeline_name="factflow_bench",
        destination=dlt.destinations.duckdb(database),
        dataset_name="events",
        pipelines_dir=pipelines_dir,
    )

    @dlt.resource(name="events", write_disposition="merge", primary_key="id")
    def events() -> Iterator[Any]:
        batch: list[bytes] = []
        for line in _lines(path):
            batch.append(line)
            if len(batch) == DECODE_BATCH:
                yield from _pages(batch)
                batch = []
        yield from _pages(batch)

    started = time.perf_counter()
    pipeline.run(events())
    seconds = time.perf_counter() - started
    con = duckdb.connect(database, read_only=True)
    tables = [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'events' "
            "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'"
        ).fetchall()
    ]
    rows = 0
    for name in tables:
        counted = con.execute(f'SELECT count(*) FROM events."{name}"').fetchone()
        rows += counted[0] if counted else 0
    con.close()
    return {"seconds": seconds, "events": rows, "tables": len(tables)}


def _pages(lines: list[bytes]) -> Iterator[Any]:
    import dlt

    by_type: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        event = json.loads(line)
        by_type.setdefault(event["type"].replace(".", "__"), []).append(event)
    for table, page in by_type.items():
        yield dlt.mark.with_table_name(page, table)


def _lines(path: str) -> Iterator[bytes]:
    with Path(path).open("rb") as file:
        for line in file:
            if not line.isspace():
                yield line
