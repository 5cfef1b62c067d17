"""Rebuilding one fact table through a changed pipeline: refilled beside it, swapped in at once,
never read empty; on both warehouses."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest

from banking_events import SETTLED, settled
from factflow import App, Consumer, Envelope, Pipeline, ensure_dimensions, insert_first
from factflow.bootstrap.files import bootstrap_file, file_batches
from factflow.bootstrap.rebuild import rebuild_fact
from factflow.examples.banking import app as banking
from factflow.examples.banking.events import TransactionSettled
from factflow.examples.banking.model import CardTransaction
from factflow.examples.banking.pipelines import card_transaction
from factflow.testing import envelope
from factflow.warehouse.base import Warehouse


def doubled_amounts(event: Envelope[TransactionSettled]) -> CardTransaction:
    """A buggy version of the pipeline's map: the amount counted twice."""
    row = card_transaction(event)
    row.amount = row.amount * 2
    return row


def buggy_banking() -> App:
    pipeline = (
        Pipeline(TransactionSettled)
        .map(doubled_amounts)
        .then(ensure_dimensions)
        .then(insert_first(CardTransaction))
    )
    return App("buggy", consumers=[Consumer("card").pipe(TransactionSettled, pipeline)])


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "history.jsonl"
    lines = [settled(f"t-{n}", amount=f"{n}.00") for n in range(1, 201)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def amounts(warehouse: Warehouse) -> dict[str, Decimal]:
    rows = warehouse.query("SELECT transaction_id, amount FROM fact_card_transaction").rows
    return dict(rows)


def test_a_rebuild_through_the_fixed_pipeline_replaces_every_row(
    warehouse: Warehouse, history: Path
) -> None:
    bootstrap_file(buggy_banking(), history, warehouse)
    assert amounts(warehouse)["t-7"] == Decimal("14.00")

    outcome = rebuild_fact(banking, "CardTransaction", file_batches(history, 50), warehouse)

    assert outcome.fact == "fact_card_transaction"
    assert outcome.rows == 200
    assert outcome.replayed.messages == 200
    assert amounts(warehouse) == {f"t-{n}": Decimal(f"{n}.00") for n in range(1, 201)}


def test_rows_the_source_lacks_stay_and_other_tables_are_untouched(
    warehouse: Warehouse, history: Path
) -> None:
    bootstrap_file(banking, history, warehouse)
    live_only = envelope("card.transaction_settled", SETTLED | {"transaction_id": "t-live"})
    user = envelope("user.user_created", {"user_id": "u-9", "country": "DK", "segment": "plus"})
    path = history.with_name("live.jsonl")
    path.write_bytes(live_only + b"\n" + user + b"\n")
    bootstrap_file(banking, path, warehouse)
    users_before = warehouse.query("SELECT * FROM dim_user ORDER BY 1").rows

    rebuild_fact(banking, "fact_card_transaction", file_batches(history, 50), warehouse)

    assert "t-live" in amounts(warehouse)
    assert len(amounts(warehouse)) == 201
    assert warehouse.query("SELECT * FROM dim_user ORDER BY 1").rows == users_before


@pytest.mark.postgres
def test_readers_never_see_the_table_empty_or_half_filled_during_a_rebuild(
    history: Path,
) -> None:
    import uuid

    from conftest import service_url
    from factflow.warehouse.postgres import PostgresWarehouse

    url = f"{service_url('postgres')}?schema=test_{uuid.uuid4().hex[:12]}"
    writer, reader = PostgresWarehouse(url), PostgresWarehouse(url)
    try:
        bootstrap_file(buggy_banking(), history, writer)
        seen: list[tuple[int, Decimal]] = []
        done = threading.Event()

        def read() -> None:
            sql = "SELECT count(*), sum(amount) FROM fact_card_transaction"
            while not done.is_set():
                count, amount = reader.query(sql).rows[0]
                seen.append((count, amount))

        watcher = threading.Thread(target=read)
        watcher.start()
        try:
            rebuild_fact(banking, "CardTransaction", file_batches(history, 20), writer)
        finally:
            done.set()
            watcher.join()
        total = sum(Decimal(n) for n in range(1, 201))
        # Every read saw the old table whole or the new one whole, nothing in between.
        assert len(seen) > 1
        assert set(seen) <= {(200, total * 2), (200, total)}
        after = reader.query("SELECT count(*), sum(amount) FROM fact_card_transaction").rows
        assert after == [(200, total)]
    finally:
        writer.drop_schema()
        writer.close()
        reader.close()
