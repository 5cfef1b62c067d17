"""Dead letters back into the stream: after a fix, a replay turns them into rows, on every
warehouse; whatever fails again stays a dead letter with its new reason, and nothing is lost."""

from collections.abc import Collection, Iterator
from typing import Any

import pytest

from banking_events import SETTLED, settled
from factflow import App, ConfigurationError, Consumer, Envelope, Pipeline, insert_first
from factflow.errors import WarehouseUnavailable
from factflow.examples.banking import app as banking
from factflow.examples.banking.events import TransactionSettled, UserCreated
from factflow.examples.banking.model import CardTransaction, User
from factflow.examples.banking.pipelines import card_transaction, user_from_created
from factflow.model.dead_letter import DeadLetter
from factflow.model.schema import Schema
from factflow.pipeline.changes import ChangeSet
from factflow.pipeline.steps import ensure_dimensions, update_dimension
from factflow.runtime.replay import ReplayOutcome, replay_dead_letters
from factflow.runtime.writer import Backoff
from factflow.testing import Harness, envelope
from factflow.warehouse.base import QueryResult, StoredDeadLetter, Warehouse
from factflow.warehouse.ddl import Dialect


def bank(
    *,
    failing: Collection[str] = (),
    failing_users: Collection[str] = (),
    bug: str = "a bug in the mapping",
) -> App:
    """Card transactions and users, with a mapping that fails on the ids given."""

    def transaction(event: Envelope[TransactionSettled]) -> CardTransaction:
        if event.data.transaction_id in failing:
            raise RuntimeError(f"{bug}: {event.data.transaction_id}")
        return card_transaction(event)

    def user(event: Envelope[UserCreated]) -> User:
        if event.data.user_id in failing_users:
            raise ValueError(f"{bug}: {event.data.user_id}")
        return user_from_created(event)

    card_pipeline = (
        Pipeline(TransactionSettled)
        .map(transaction)
        .then(ensure_dimensions)
        .then(insert_first(CardTransaction))
    )
    user_pipeline = Pipeline(UserCreated).map(user).then(update_dimension(User))
    return App(
        "bank",
        consumers=[
            Consumer("card").pipe(TransactionSettled, card_pipeline),
            Consumer("user").pipe(UserCreated, user_pipeline),
        ],
    )


def created(user_id: str) -> bytes:
    return envelope("user.user_created", {"user_id": user_id, "country": "DK", "segment": "plus"})


def transactions(harness: Harness) -> list[str]:
    return [r["transaction_id"] for r in harness.rows("fact_card_transaction")]


def letters(warehouse: Warehouse) -> dict[bytes, StoredDeadLetter]:
    return {d.raw: d for d in warehouse.dead_letters()}


@pytest.fixture
def broken(warehouse: Warehouse) -> Iterator[Harness]:
    """Ten transactions delivered to a bank that fails on t-3, t-5 and t-7."""
    harness = Harness(bank(failing={"t-3", "t-5", "t-7"}), warehouse)
    harness.deliver([settled(f"t-{i}") for i in range(10)])
    assert len(harness.dead_letters()) == 3
    yield harness


def test_after_a_fix_the_dead_letters_become_facts_and_are_removed(broken: Harness) -> None:
    outcome = replay_dead_letters(bank(), broken.warehouse)
    assert outcome == ReplayOutcome(replayed=3, stored=3, still_dead=0, rows=3)
    assert transactions(broken) == [f"t-{i}" for i in range(10)]
    assert broken.dead_letters() == []


def test_letters_that_fail_again_keep_their_new_reason_and_when_they_arrived(
    broken: Harness,
) -> None:
    before = letters(broken.warehouse)
    outcome = replay_dead_letters(bank(failing={"t-5"}, bug="another bug"), broken.warehouse)
    assert (outcome.stored, outcome.still_dead) == (2, 1)
    assert transactions(broken) == [f"t-{i}" for i in range(10) if i != 5]
    [kept] = broken.dead_letters()
    assert kept.reason.endswith("RuntimeError: another bug: t-5")
    assert (kept.id, kept.received_at) == (before[kept.raw].id, before[kept.raw].received_at)
    assert kept.replays == 1 and kept.replayed_at is not None


def test_replaying_twice_changes_nothing_more(broken: Harness) -> None:
    half_fixed = bank(failing={"t-5"})
    replay_dead_letters(half_fixed, broken.warehouse)
    model = broken.rows("fact_card_transaction"), broken.rows("dim_card")
    reasons = {d.id: d.reason for d in broken.dead_letters()}
    outcome = replay_dead_letters(half_fixed, broken.warehouse)
    assert (outcome.replayed, outcome.stored, outcome.still_dead) == (1, 0, 1)
    assert (broken.rows("fact_card_transaction"), broken.rows("dim_card")) == model
    assert {d.id: d.reason for d in broken.dead_letters()} == reasons
    assert [d.replays for d in broken.dead_letters()] == [2]


def test_a_fact_already_stored_under_another_envelope_is_not_counted_twice(
    broken: Harness,
) -> None:
    broken.deliver([settled("t-3")])  # the same transaction, republished, while t-3 was dead
    replay_dead_letters(bank(), broken.warehouse)
    assert transactions(broken).count("t-3") == 1


def test_messages_that_cannot_be_decoded_stay_dead_letters(warehouse: Warehouse) -> None:
    harness = Harness(bank(), warehouse)
    harness.deliver([b"this is not json", settled("t-1", amount="x")])
    before = letters(warehouse)
    outcome = replay_dead_letters(bank(), warehouse)
    assert (outcome.replayed, outcome.stored, outcome.still_dead) == (2, 0, 2)
    after = letters(warehouse)
    assert {raw: d.reason for raw, d in after.items()} == {
        raw: d.reason for raw, d in before.items()
    }
    assert "not a valid JSON envelope" in after[b"this is not json"].reason


def test_an_event_type_the_app_has_learnt_to_handle_becomes_rows(warehouse: Warehouse) -> None:
    issued = envelope(
        "card.card_issued",
        {"card_id": "c-1", "user_id": "u-1", "account_id": "a-1", "product": "travel_card"},
    )
    harness = Harness(bank(), warehouse)
    harness.deliver([issued])
    [letter] = harness.dead_letters()
    assert "unknown event type 'card.card_issued'" in letter.reason
    outcome = replay_dead_letters(banking, warehouse)  # the app with a pipeline for cards
    assert outcome.stored == 1
    assert [(r["card_id"], r["product"]) for r in harness.rows("dim_card")] == [
        ("c-1", "travel_card")
    ]
    assert harness.dead_letters() == []


@pytest.mark.parametrize(
    ("event_type", "replayed"),
    [
        ("card.transaction_settled", {b"t-3"}),
        ("card.*", {b"t-3"}),
        ("user.user_created", {b"u-2"}),
        ("user.*", {b"u-2"}),
        ("goal.*", set()),
        (None, {b"t-3", b"u-2", b"not json"}),
    ],
)
def test_a_type_or_a_domain_replays_only_its_dead_letters(
    warehouse: Warehouse, event_type: str | None, replayed: set[bytes]
) -> None:
    harness = Harness(bank(failing={"t-3"}, failing_users={"u-2"}), warehouse)
    harness.deliver([settled("t-3"), created("u-2"), b"not json"])
    replay_dead_letters(bank(), warehouse, event_type)
    # What was replayed became rows, except the message that is not JSON: it was tried again.
    assert {_marker(d.raw): d.replays for d in harness.dead_letters()} == {
        marker: int(marker in replayed)
        for marker in (b"t-3", b"u-2", b"not json")
        if marker not in replayed or marker == b"not json"
    }


def _marker(raw: bytes) -> bytes:
    # Quoted: an envelope id such as "test-3162" contains t-3 too.
    return next((m for m in (b"t-3", b"u-2") if b'"%s"' % m in raw), raw)


def test_a_malformed_type_is_refused_before_anything_is_touched(broken: Harness) -> None:
    with pytest.raises(ConfigurationError, match="give a type"):
        replay_dead_letters(bank(), broken.warehouse, "card*")
    assert len(broken.dead_letters()) == 3


def test_letters_are_replayed_in_pages_and_progress_is_reported(warehouse: Warehouse) -> None:
    harness = Harness(bank(failing={f"t-{i}" for i in range(7)}), warehouse)
    harness.deliver([settled(f"t-{i}") for i in range(7)])
    seen: list[tuple[int, int]] = []
    outcome = replay_dead_letters(
        bank(failing={"t-4"}),
        warehouse,
        batch_size=2,
        on_progress=lambda done, total: seen.append((done.replayed, total)),
    )
    assert seen == [(2, 7), (4, 7), (6, 7), (7, 7)]
    assert (outcome.stored, outcome.still_dead) == (6, 1)


def test_two_messages_of_one_envelope_id_are_never_confused(warehouse: Warehouse) -> None:
    """The processor knows raw bytes by envelope id; one page must not hold two of one id."""
    first = envelope("card.transaction_settled", _data("t-a"), id="e-same")
    second = envelope("card.transaction_settled", _data("t-b"), id="e-same")
    harness = Harness(bank(failing={"t-a", "t-b"}), warehouse)
    harness.deliver([first])
    harness.deliver([second])
    assert len(harness.dead_letters()) == 2
    outcome = replay_dead_letters(bank(failing={"t-b"}), warehouse)
    assert (outcome.stored, outcome.still_dead) == (1, 1)
    assert transactions(harness) == ["t-a"]
    assert [d.raw for d in harness.dead_letters()] == [second]


def _data(transaction_id: str) -> dict[str, Any]:
    return SETTLED | {"transaction_id": transaction_id}


def test_a_value_the_warehouse_refuses_keeps_its_letter_with_that_reason(
    broken: Harness,
) -> None:
    def precise(event: Envelope[TransactionSettled]) -> CardTransaction:
        from factflow.model.types import Money

        fact = card_transaction(event)
        if event.data.transaction_id == "t-5":
            fact.amount = Money("0.000001")  # more decimal places than the warehouse keeps
        return fact

    pipeline = Pipeline(TransactionSettled).map(precise).then(insert_first(CardTransaction))
    fixed = App("fixed", consumers=[Consumer("card").pipe(TransactionSettled, pipeline)])
    outcome = replay_dead_letters(fixed, broken.warehouse)
    assert (outcome.stored, outcome.still_dead) == (2, 1)
    [kept] = broken.dead_letters()
    assert b'"t-5"' in kept.raw
    assert kept.reason.startswith("warehouse refused it: ")
    assert kept.event_type == "card.transaction_settled"


class Faulty:
    """A warehouse that fails its `write` number `fail_at` (counting from 1) with `error`."""

    def __init__(self, inner: Warehouse, error: BaseException, fail_at: int) -> None:
        self.inner, self.error, self.fail_at, self.writes = inner, error, fail_at, 0

    @property
    def dialect(self) -> Dialect:
        return self.inner.dialect

    def prepare(self, schema: Schema) -> None:
        self.inner.prepare(schema)

    def stage(self, changes: ChangeSet) -> None:
        self.inner.stage(changes)

    def refresh_statistics(self) -> None:
        self.inner.refresh_statistics()

    def write(self, changes: ChangeSet) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise self.error
        self.inner.write(changes)

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> QueryResult:
        return self.inner.query(sql, parameters)

    def dead_letters(
        self,
        limit: int | None = None,
        *,
        event_type: str | None = None,
        after_id: str | None = None,
        id_prefix: str | None = None,
    ) -> list[StoredDeadLetter]:
        return self.inner.dead_letters(
            limit, event_type=event_type, after_id=after_id, id_prefix=id_prefix
        )

    def close(self) -> None:
        self.inner.close()


def test_a_crash_in_the_middle_of_a_replay_loses_no_dead_letter(broken: Harness) -> None:
    crashing = Faulty(broken.warehouse, RuntimeError("the process died"), fail_at=2)
    with pytest.raises(RuntimeError, match="the process died"):
        replay_dead_letters(bank(), crashing, batch_size=1)
    # The first letter is a fact now, the others are still dead letters: none is both or neither.
    stored = {t for t in ("t-3", "t-5", "t-7") if t in transactions(broken)}
    dead = {
        t
        for t in ("t-3", "t-5", "t-7")
        for d in broken.dead_letters()
        if f'"{t}"'.encode() in d.raw
    }
    assert len(stored) == 1 and stored | dead == {"t-3", "t-5", "t-7"} and not stored & dead
    replay_dead_letters(bank(), broken.warehouse)
    assert transactions(broken) == [f"t-{i}" for i in range(10)]
    assert broken.dead_letters() == []


def test_an_unavailable_warehouse_is_retried(broken: Harness) -> None:
    flaky = Faulty(broken.warehouse, WarehouseUnavailable("restarting"), fail_at=1)
    outcome = replay_dead_letters(bank(), flaky, backoff=Backoff(first=0.001))
    assert (outcome.stored, outcome.retries) == (3, 1)
    assert broken.dead_letters() == []


def test_a_replay_does_not_count_the_events_again(broken: Harness) -> None:
    def counted() -> list[Any]:
        return broken.warehouse.query("SELECT * FROM factflow_event_stats").rows

    before = counted()
    replay_dead_letters(bank(), broken.warehouse)
    assert counted() == before


def test_an_event_several_pipelines_fail_on_keeps_every_reason(warehouse: Warehouse) -> None:
    def fail(work: Any) -> None:
        raise RuntimeError("the audit step is broken")

    audit = Pipeline(TransactionSettled).named("audit").map(card_transaction).then(fail)
    twice = bank(failing={"t-1"}, bug="still broken")
    twice = App(
        "twice", consumers=[*twice.consumers, Consumer("card").pipe(TransactionSettled, audit)]
    )
    harness = Harness(bank(failing={"t-1"}), warehouse)
    harness.deliver([settled("t-1")])
    replay_dead_letters(twice, warehouse)
    [kept] = harness.dead_letters()
    assert "still broken: t-1" in kept.reason
    assert "audit: RuntimeError: the audit step is broken" in kept.reason


def test_a_replay_writes_the_removal_and_the_rows_in_one_change_set(broken: Harness) -> None:
    """What the warehouse receives: the rows, the failures, and the letters they settle."""
    written: list[ChangeSet] = []

    class Spy(Faulty):
        def write(self, changes: ChangeSet) -> None:
            written.append(changes)
            super().write(changes)

    replay_dead_letters(bank(failing={"t-5"}), Spy(broken.warehouse, RuntimeError(), fail_at=0))
    [changes] = written
    assert len(changes.replayed) == 3
    assert len(changes.facts["fact_card_transaction"]) == 2
    [again] = changes.dead_letters
    assert isinstance(again, DeadLetter) and again.id in changes.replayed
