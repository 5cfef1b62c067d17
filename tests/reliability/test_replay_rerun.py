"""Invariant 5 for dead letters: `factflow dlq replay` after a fix turns them into rows, and
running the same replay again changes nothing (identical table checksums).

Yesterday's app had bugs: it failed on some transactions, card issues and user updates, and it
had no pipeline for goals yet (unknown event types). A stream with bad lines went through it; the
fixed app (the banking example) then replays the dead letters, as the command line does, in
pages. Everything valid lands where it belongs (invariants 1 to 4); the bad lines stay dead
letters, each with one more attempt counted per replay, and a second replay leaves every table
as it was but for that count.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import service_url
from factflow.cli.locations import open_warehouse
from factflow.examples.banking.events import CardIssued, TransactionSettled, UserUpdated
from factflow.examples.banking.model import Card, CardTransaction, User
from factflow.examples.banking.pipelines import (
    CONSUMERS,
    card_from_issued,
    card_transaction,
    user_from_updated,
)
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.model.envelope import Envelope
from factflow.pipeline.app import App, Consumer
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.steps import ensure_dimensions, insert_first, update_dimension
from factflow.testing import Harness
from factflow.warehouse.base import Warehouse
from factflow.warehouse.postgres import PostgresWarehouse
from reliability.conftest import ReliabilityTable
from reliability.ledger import Ledger, Verdict, deliverable, table_checksums

pytestmark = pytest.mark.reliability

MESSAGES = deliverable(
    simulate(
        SimulationOptions(
            events=3000,
            seed=88,
            duplicates=0.03,
            republications=0.02,
            shuffle_window=100,
            bad_lines=0.02,
        )
    )
)


def unlucky(key: str) -> bool:
    """One key in about six: those yesterday's bugs fail on."""
    return hashlib.blake2b(key.encode(), digest_size=1).digest()[0] % 6 == 0


def buggy_transaction(event: Envelope[TransactionSettled]) -> CardTransaction:
    if unlucky(event.data.transaction_id):
        raise RuntimeError(f"a bug in the mapping: {event.data.transaction_id}")
    return card_transaction(event)


def buggy_card(event: Envelope[CardIssued]) -> Card:
    if unlucky(event.data.card_id):
        raise RuntimeError(f"a bug in the mapping: {event.data.card_id}")
    return card_from_issued(event)


def buggy_user_update(event: Envelope[UserUpdated]) -> User:
    if unlucky(event.data.user_id):
        raise ValueError(f"a bug in the mapping: {event.data.user_id}")
    return user_from_updated(event)


def yesterdays_app() -> App:
    """The banking app with bugs in three pipelines, and no consumer of goals yet."""
    [user, account, _card, _goal] = CONSUMERS
    card_pipeline = (
        Pipeline(TransactionSettled)
        .map(buggy_transaction)
        .then(ensure_dimensions)
        .then(insert_first(CardTransaction))
    )
    return App(
        "banking",
        consumers=[
            Consumer("user", pipes=[
                user.pipes[0],
                (UserUpdated, Pipeline(UserUpdated).map(buggy_user_update)
                 .then(update_dimension(User))),
            ]),
            account,
            Consumer("card", pipes=[
                (CardIssued, Pipeline(CardIssued).map(buggy_card).then(ensure_dimensions)
                 .then(update_dimension(Card))),
                (TransactionSettled, card_pipeline),
            ]),
        ],
    )  # fmt: skip


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path}/kpi.duckdb"
        return
    url = f"{service_url('postgres')}?schema=rel_{uuid.uuid4().hex[:12]}"
    yield url
    with PostgresWarehouse(url) as store:
        store.drop_schema()


def replay(warehouse_url: str) -> str:
    """`factflow dlq replay` of the fixed app, as a process; its summary line."""
    result = subprocess.run(
        [sys.executable, "-m", "factflow", "dlq", "replay", "--app", "factflow.examples.banking",
         "--warehouse", warehouse_url, "--batch-size", "97"],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return result.stdout.decode().strip().splitlines()[-1]


def attempts(store: Warehouse) -> dict[str, int]:
    return {letter.id: letter.replays for letter in store.dead_letters()}


def test_a_replay_after_a_fix_lands_everything_and_run_again_changes_nothing(
    warehouse_url: str, reliability_table: ReliabilityTable
) -> None:
    ledger = Ledger()
    ledger.record_all(MESSAGES)
    store = open_warehouse(warehouse_url)
    try:
        Harness(yesterdays_app(), store).deliver(MESSAGES, shuffled=True, duplicated=True, seed=4)
        dead_at_first = len(store.dead_letters())
    finally:
        store.close()
    bad_lines = sum(entry.expect == "dead_letter" for entry in ledger.entries.values())
    assert dead_at_first > 2 * bad_lines  # the bugs and the goals made dead letters too

    first = replay(warehouse_url)
    store = open_warehouse(warehouse_url, read_only=True)
    try:
        verdict: Verdict = ledger.check(store)  # everything valid landed, once
        before = table_checksums(store)
        counted = attempts(store)
    finally:
        store.close()
    backend = warehouse_url.partition(":")[0]
    scenario = f"inv. 5 dead letters replayed after a fix, then again: nothing changes ({backend})"
    if not verdict.ok:
        reliability_table.add(scenario, verdict)
    verdict.assert_ok()
    assert f"replayed: {dead_at_first}  now stored: {dead_at_first - bad_lines}  " in first
    assert set(counted.values()) == {1} and len(counted) == bad_lines, counted

    second = replay(warehouse_url)
    store = open_warehouse(warehouse_url, read_only=True)
    try:
        verdict = ledger.check(store, unchanged_since=before)
        counted_again = attempts(store)
    finally:
        store.close()
    reliability_table.add(scenario, verdict)
    verdict.assert_ok()
    assert f"replayed: {bad_lines}  now stored: 0  still dead: {bad_lines}" in second
    # The one column the checksums leave out of the dead letters: one more attempt each.
    assert counted_again == {letter: count + 1 for letter, count in counted.items()}
