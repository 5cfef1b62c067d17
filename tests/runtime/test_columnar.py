"""The column-wise processor gives exactly what the per-event one gives, whatever the lines."""

import random
from collections import Counter
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from banking_events import SETTLED, settled
from factflow import (
    App,
    Consumer,
    Dimension,
    Fact,
    Pipeline,
    ensure_dimensions,
    insert_first,
    update_dimension,
)
from factflow.examples.banking import app as banking
from factflow.examples.banking.events import TransactionSettled
from factflow.examples.banking.model import CardTransaction, User
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.pipeline.arrow import ArrowRows
from factflow.pipeline.changes import ChangeSet
from factflow.pipeline.projection import project
from factflow.runtime.columnar import ColumnarProcessor
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import BatchWriter
from factflow.warehouse.base import Warehouse

BANKING_TYPES = {
    "user.user_created",
    "user.user_updated",
    "account.account_opened",
    "account.balance_updated",
    "card.card_issued",
    "card.transaction_settled",
    "goal.goal_created",
    "goal.goal_deleted",
}


def outcome(changes: ChangeSet) -> dict[str, Any]:
    """What a change set holds, comparable whatever the path and the order of its rows."""
    return {
        "facts": {name: Counter(rows) for name, rows in changes.facts.items()},
        "dimension changes": {
            name: Counter(rows) for name, rows in changes.dimension_changes.items()
        },
        "references": {name: keys for name, keys in changes.references.items() if keys},
        "dead letters": Counter(
            (d.raw, d.reason, d.event_type, d.event_id) for d in changes.dead_letters
        ),
        "seen": changes.seen,
    }


def assert_same_as_per_event(
    messages: list[bytes], app: App = banking, **options: Any
) -> ChangeSet:
    """Process `messages` (with plain lines enough to be taken column-wise) both ways."""
    messages = PLAIN + messages
    columnar = ColumnarProcessor(app, **options).process(messages)
    assert outcome(columnar) == outcome(BatchProcessor(app, **options).process(messages))
    return columnar


#: Plain settled transactions: with them, a batch is long enough to be taken column-wise.
PLAIN = [settled(f"t-plain-{i}") for i in range(ColumnarProcessor.COLUMN_WISE_FROM)]


def column_wise(changes: ChangeSet) -> set[str]:
    """The tables whose rows were made column-wise."""
    tables = {**changes.facts, **changes.dimension_changes}
    return {name for name, rows in tables.items() if isinstance(rows, ArrowRows)}


def test_every_banking_pipeline_runs_column_wise() -> None:
    assert set(ColumnarProcessor(banking).plans) == BANKING_TYPES


def test_a_simulated_stream_gives_the_same_changes_and_is_taken_column_wise() -> None:
    messages = list(simulate(SimulationOptions(events=3000, seed=4)))
    changes = assert_same_as_per_event(messages)
    assert column_wise(changes) == {
        "fact_card_transaction",
        "fact_account_balance_change",
        "dim_user",
        "dim_account",
        "dim_card",
        "dim_goal",
    }


def test_duplicates_republications_shuffling_and_bad_lines_give_the_same_changes() -> None:
    options = SimulationOptions(
        events=4000, seed=9, duplicates=0.05, republications=0.05, shuffle_window=50, bad_lines=0.05
    )
    changes = assert_same_as_per_event(list(simulate(options)))
    assert changes.dead_letters  # the bad lines are there, with the per-event path's reasons


def test_lines_the_columns_do_not_take_as_they_are_give_the_same_changes() -> None:
    unusual = [
        settled("t-null", merchant=None),  # null where a string belongs
        settled("t-escape", merchant="Caf\\u00e9"),
        settled("t-number", amount=10),  # a JSON number for money
        settled("t-float-money", amount="1.23456"),
        settled("t-big-money", amount="123456789012345.0"),
        settled("t-extra", extra={"nested": [1, 2, None]}),
        settled("t-object", merchant={"name": "x"}),
        settled("t-other-types-field", segment=5),  # a name another type reads as text
        settled("t-long", merchant="x" * 600_000),  # longer than a block of Arrow's reader
        b'{"id":"e-dup-key","id":"e-dup-key-2","type":"card.transaction_settled"}',
        b"not json at all",
        settled("t-first-of-two") + b" " + settled("t-second-of-two"),  # two objects, one line
        b"",
        b"   ",
        b"[1, 2, 3]",
        b'"just a string"',
        b"\xff\xfe not utf-8",
        b'{"id":"e-nested","type":"card.transaction_settled","data":' + b"[" * 5000 + b"]" * 5000,
    ]
    unusual += [
        envelope_line("e-no-zone", occurred_at="2026-01-01T00:00:04"),
        envelope_line("e-feb-30", occurred_at="2026-02-30T00:00:04Z"),
        envelope_line("e-feb-29-not-leap", occurred_at="2026-02-29T00:00:04Z"),
        envelope_line("e-feb-29-leap", occurred_at="2028-02-29T00:00:04Z"),
        envelope_line("e-feb-29-no-leap-century", occurred_at="2100-02-29T00:00:04Z"),
        envelope_line("e-april-31", occurred_at="2026-04-31T00:00:04Z"),
        envelope_line("e-lower-t", occurred_at="2026-01-01t00:00:04z"),
        envelope_line("e-nanos", occurred_at="2026-01-01T00:00:04.123456789Z"),
        envelope_line("e-offset", occurred_at="2026-01-01T01:30:04.5+01:30"),
        envelope_line("e-leap", occurred_at="2026-12-31T23:59:60Z"),
        envelope_line("e-space", occurred_at="2026-01-01 00:00:04Z"),
        envelope_line("e-version-2", version=2),
        envelope_line("e-version-float", version=1.0),
        envelope_line("e-version-text", version="1"),
        envelope_line("", id=""),
        envelope_line("e-unknown-type", type="card.card_frozen"),
        envelope_line("e-other-domain", type="loan.loan_granted"),
        envelope_line("e-no-data", data=msgspec.UNSET),
        envelope_line("e-no-amount", data={k: v for k, v in SETTLED.items() if k != "amount"}),
        envelope_line("e-data-list", data=[1]),
        envelope_line("e-no-source", source=msgspec.UNSET),
        envelope_line("e-bad-segment", type="user.user_created", data=USER | {"segment": "gold"}),
        envelope_line("e-update-empty", type="user.user_updated", data={"user_id": "u-7"}),
        envelope_line(
            "e-update-null", type="user.user_updated", data={"user_id": "u-7", "country": None}
        ),
    ]
    changes = assert_same_as_per_event(unusual + PLAIN[:3])
    assert "fact_card_transaction" in column_wise(changes)


def test_lines_over_the_largest_message_size_give_the_same_dead_letters() -> None:
    lines = [settled("t-short"), settled("t-long", merchant="x" * 400)]
    changes = assert_same_as_per_event(lines, max_message_size=len(PLAIN[0]) + 50)
    assert len(changes.dead_letters) == 1


def test_an_id_on_two_lines_is_left_to_the_per_event_path_with_both() -> None:
    first = envelope_line("e-twice")
    differs = envelope_line("e-twice", data=SETTLED | {"amount": "99.00"})
    lowercase = envelope_line("e-twice", occurred_at="2026-01-01t00:00:04z")
    for messages in ([first, first], [first, differs], [first, lowercase], [lowercase, differs]):
        assert_same_as_per_event(messages)


def test_a_batch_parsed_in_slices_gives_the_same_changes_with_ids_shared_across_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ColumnarProcessor, "PARSED_AT_ONCE", 100)
    options = SimulationOptions(events=1000, seed=11, duplicates=0.05, bad_lines=0.05)
    messages = list(simulate(options))
    # One envelope in the first slice and the last, its id reused with other values between.
    first, reused = envelope_line("e-sliced"), envelope_line("e-sliced", data=SETTLED)
    messages = [first, *messages[:500], reused, *messages[500:], first]
    changes = assert_same_as_per_event(messages)
    assert [d.event_id for d in changes.dead_letters].count("e-sliced") == 1
    assert "fact_card_transaction" in column_wise(changes)


@pytest.mark.parametrize("seed", range(20))
def test_randomly_damaged_lines_give_the_same_changes(seed: int) -> None:
    rng = random.Random(seed)
    messages = list(simulate(SimulationOptions(events=400, seed=seed)))
    for index in rng.sample(range(len(messages)), 60):
        messages[index] = damaged(messages[index], rng)
    changes = assert_same_as_per_event(messages)
    assert "fact_card_transaction" in column_wise(changes)


def test_an_app_with_hand_written_maps_is_processed_per_event() -> None:
    def card_transaction(event: Any) -> Fact | Dimension:
        return project(CardTransaction).bound(TransactionSettled)(event)

    app = App(
        "cards",
        consumers=[
            Consumer("card").pipe(
                TransactionSettled,
                Pipeline(TransactionSettled)
                .map(card_transaction)
                .then(ensure_dimensions)
                .then(insert_first(CardTransaction)),
            )
        ],
    )
    processor = ColumnarProcessor(app)
    assert processor.plans == {}
    changes = assert_same_as_per_event([], app)
    assert column_wise(changes) == set()


def test_a_short_batch_is_processed_per_event() -> None:
    short = ColumnarProcessor(banking).process(PLAIN[: ColumnarProcessor.COLUMN_WISE_FROM - 1])
    assert len(short.facts["fact_card_transaction"]) == ColumnarProcessor.COLUMN_WISE_FROM - 1
    assert column_wise(short) == set()


def test_an_id_stored_with_other_values_is_set_aside_by_doing_the_batch_again_per_event(
    warehouse: Warehouse,
) -> None:
    warehouse.prepare(banking.schema)
    writer = BatchWriter(ColumnarProcessor(banking, warehouse=warehouse), warehouse)
    writer.write([*PLAIN, envelope_line("e-1")])
    changed = envelope_line("e-1", data=SETTLED | {"transaction_id": "t-e-1", "amount": "99.00"})
    outcome = writer.write([changed, *PLAIN, envelope_line("e-2")])
    assert (outcome.messages, outcome.dead_letters) == (len(PLAIN) + 2, 1)
    [letter] = warehouse.dead_letters()
    assert letter.raw == changed and "already stored in fact_card_transaction" in letter.reason
    [(count, amount)] = warehouse.query(
        "SELECT count(*), sum(amount) FROM fact_card_transaction WHERE transaction_id LIKE 't-e-%'"
    ).rows
    assert (count, amount) == (2, 2 * Decimal(SETTLED["amount"]))


def test_a_pipeline_storing_other_rows_than_it_projects_is_left_per_event() -> None:
    mixed = (
        Pipeline(TransactionSettled)
        .map(project(CardTransaction))
        .then(insert_first(CardTransaction))
        .then(update_dimension(User))
    )
    app = App("mixed", consumers=[Consumer("card").pipe(TransactionSettled, mixed)])
    assert ColumnarProcessor(app).plans == {}


USER = {"user_id": "u-1", "country": "DE", "segment": "plus"}


def envelope_line(id_: str, **changes: Any) -> bytes:
    """A settled-transaction envelope with `changes` to its envelope fields (UNSET drops one)."""
    document: dict[str, Any] = {
        "id": id_,
        "type": "card.transaction_settled",
        "source": "card-service",
        "occurred_at": "2026-01-01T00:00:04.226Z",
        "version": 1,
        "data": SETTLED | {"transaction_id": f"t-{id_}"},
    } | changes
    return msgspec.json.encode({k: v for k, v in document.items() if v is not msgspec.UNSET})


def damaged(line: bytes, rng: random.Random) -> bytes:
    """`line` with one random change of the kinds publishers get wrong."""
    document = msgspec.json.decode(line)
    data = document.get("data") or {}
    kind = rng.randrange(6)
    if kind == 0:
        at = rng.randrange(len(line))
        return line[:at] + bytes([rng.randrange(256)]) + line[at + 1 :]
    if kind == 1 and data:
        data.pop(rng.choice(list(data)))
    elif kind == 2 and data:
        data[rng.choice(list(data))] = rng.choice([None, 1, 2.5, True, [], {}, "", "x" * 3])
    elif kind == 3:
        document[rng.choice(list(document))] = rng.choice([None, 1, "", "2026-01-01"])
    elif kind == 4:
        document["id"] = "shared-id"
    else:
        return line[: rng.randrange(len(line))]
    return msgspec.json.encode(document)


def test_text_reaches_the_warehouse_as_it_was_sent(warehouse: Warehouse) -> None:
    merchants = ['Caf\u00e9 "Zum Hirsch", Berlin', "two\nlines", "", " ", "\\N", "NULL", "a\tb"]
    warehouse.prepare(banking.schema)
    writer = BatchWriter(ColumnarProcessor(banking, warehouse=warehouse), warehouse)
    lines = [settled(f"t-text-{i}", merchant=m) for i, m in enumerate(merchants)]
    assert column_wise(ColumnarProcessor(banking).process([*PLAIN, *lines])) >= {
        "fact_card_transaction"
    }
    writer.write([*PLAIN, *lines])
    stored = warehouse.query(
        "SELECT transaction_id, merchant FROM fact_card_transaction "
        "WHERE transaction_id LIKE 't-text-%' ORDER BY transaction_id"
    ).rows
    assert stored == sorted((f"t-text-{i}", m) for i, m in enumerate(merchants))


def test_two_envelopes_on_one_line_beside_a_blank_one_are_not_taken_for_two_lines() -> None:
    double = settled("t-first-of-two") + b" " + settled("t-second-of-two")
    for blank in (b"", b"  "):
        changes = assert_same_as_per_event([double, blank])
        assert len(changes.dead_letters) == 2
