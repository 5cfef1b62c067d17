"""Helpers shared by the input-side scenarios (test_input_*.py): warehouses, writers, streams."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from conftest import service_url
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import BatchWriter
from factflow.warehouse.base import Warehouse
from reliability.ledger import deliverable

__all__ = [
    "concurrently",
    "postgres_schema",
    "stream",
    "write_in_batches",
    "writer",
]


def stream(events: int, seed: int, **options: Any) -> list[bytes]:
    """Simulated banking messages a consumer group of the four domains receives."""
    return deliverable(simulate(SimulationOptions(events=events, seed=seed, **options)))


def writer(store: Warehouse) -> BatchWriter:
    """What a consumer writes a batch with: decoding, pipelines, one transaction."""
    return BatchWriter(BatchProcessor(app, warehouse=store), store)


def write_in_batches(
    store: Warehouse, messages: Sequence[bytes], *, seed: int, most: int = 97
) -> None:
    """Write `messages` in a shuffled order, in batches of random sizes up to `most`."""
    rng = random.Random(seed)
    order = list(messages)
    rng.shuffle(order)
    batches = writer(store)
    at = 0
    while at < len(order):
        size = rng.randint(1, most)
        batches.write(order[at : at + size])
        at += size


def concurrently(*work: Callable[[], None]) -> None:
    """Run every callable on a thread of its own, started together; re-raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(work))

    def run(job: Callable[[], None]) -> None:
        try:
            start.wait()
            job()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a writer thread hangs"
    if errors:
        raise errors[0]


@contextmanager
def postgres_schema() -> Iterator[Callable[[], Warehouse]]:
    """A fresh PostgreSQL schema; yields a function opening one more connection to it (each
    a warehouse of its own, as separate consumer processes have). Dropped afterwards."""
    from factflow.warehouse.postgres import PostgresWarehouse

    schema = f"test_{uuid.uuid4().hex[:12]}"
    url = service_url("postgres")
    opened: list[PostgresWarehouse] = []

    def connect() -> Warehouse:
        store = PostgresWarehouse(url, schema=schema)
        store.prepare(app.schema)
        opened.append(store)
        return store

    try:
        yield connect
    finally:
        for store in opened[1:]:
            store.close()
        first = opened[0] if opened else PostgresWarehouse(url, schema=schema)
        first.drop_schema()
        first.close()
