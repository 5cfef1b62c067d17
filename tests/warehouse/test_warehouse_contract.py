"""The semantics every warehouse backend keeps; runs once per backend (the `warehouse` fixture)."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from factflow import TerminalError
from factflow.examples.banking import app
from factflow.model.dead_letter import DeadLetter
from factflow.pipeline.changes import ChangeSet
from factflow.warehouse.base import Warehouse


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def naive(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour)


def transaction(tx: str, event_id: str, when: datetime, amount: str = "10.00") -> tuple[Any, ...]:
    money = Decimal(amount)
    row = (tx, "c-1", "u-1", money, "EUR", money, "DKK", "m", "travel", "DE")
    return (*row, event_id, when)


def user_change(
    event_id: str, when: datetime, country: str | None, segment: str | None
) -> tuple[Any, ...]:
    return ("u-1", country, segment, event_id, when)


def write(warehouse: Warehouse, **parts: Any) -> None:
    changes = ChangeSet()
    for table, rows in parts.get("facts", {}).items():
        changes.facts[table] = rows
    for table, rows in parts.get("dimensions", {}).items():
        changes.dimension_changes[table] = rows
    for table, keys in parts.get("references", {}).items():
        changes.references[table] = keys
    changes.dead_letters.extend(parts.get("dead_letters", []))
    warehouse.write(changes)


def rows(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    return warehouse.query(sql).rows


@pytest.fixture
def banking(warehouse: Warehouse) -> Warehouse:
    warehouse.prepare(app.schema)
    return warehouse


def test_prepare_is_idempotent(banking: Warehouse) -> None:
    banking.prepare(app.schema)
    assert rows(banking, "SELECT count(*) FROM fact_card_transaction") == [(0,)]


def test_facts_are_inserted_first_wins_by_natural_key(banking: Warehouse) -> None:
    write(banking, facts={"fact_card_transaction": [transaction("t-1", "e-1", at(1))]})
    write(
        banking,
        facts={
            "fact_card_transaction": [
                transaction(
                    "t-1", "e-2", at(1), "99.00"
                ),  # the same transaction in another envelope
                transaction("t-2", "e-3", at(2)),
            ]
        },
    )
    assert rows(
        banking, "SELECT transaction_id, event_id, amount FROM fact_card_transaction ORDER BY 1"
    ) == [("t-1", "e-1", Decimal("10.00")), ("t-2", "e-3", Decimal("10.00"))]


def test_duplicates_within_one_batch_keep_the_earliest_event(banking: Warehouse) -> None:
    write(
        banking,
        facts={
            "fact_card_transaction": [
                transaction("t-1", "e-9", at(2)),
                transaction("t-1", "e-1", at(1)),
            ]
        },
    )
    assert rows(banking, "SELECT event_id FROM fact_card_transaction") == [("e-1",)]


def test_a_change_twice_in_one_batch_is_stored_once_and_changes_of_one_event_all(
    banking: Warehouse,
) -> None:
    once = user_change("e-1", at(1), "DK", "standard")
    other_user = ("u-2", "SE", "plus", "e-1", at(1))  # one event changing two users
    write(banking, dimensions={"dim_user": [once, once, other_user, CHANGES[1]]})
    assert rows(banking, "SELECT user_id, event_id FROM dim_user__changes ORDER BY 1, 2") == [
        ("u-1", "e-1"),
        ("u-1", "e-2"),
        ("u-2", "e-1"),
    ]


def test_event_time_is_stored_in_utc(banking: Warehouse) -> None:
    from datetime import timedelta, timezone

    plus_two = datetime(2026, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    write(banking, facts={"fact_card_transaction": [transaction("t-1", "e-1", plus_two)]})
    assert rows(banking, "SELECT occurred_at FROM fact_card_transaction") == [(naive(1, 12),)]


CHANGES = [
    user_change("e-1", at(1), "DK", "standard"),
    user_change("e-2", at(3), None, "plus"),
    user_change("e-3", at(5), "SE", None),
]


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]])
@pytest.mark.parametrize("batched", [True, False])
def test_dimension_changes_in_any_order_give_the_in_order_result(
    banking: Warehouse, order: list[int], batched: bool
) -> None:
    arriving = [CHANGES[i] for i in order]
    for batch in [arriving] if batched else [[c] for c in arriving]:
        write(banking, dimensions={"dim_user": batch})
    assert rows(banking, "SELECT user_id, country, segment, inferred FROM dim_user") == [
        ("u-1", "SE", "plus", False)
    ]
    assert rows(
        banking,
        "SELECT country, segment, valid_from, valid_to FROM dim_user__history ORDER BY valid_from",
    ) == [
        ("DK", "standard", naive(1), naive(3)),
        ("DK", "plus", naive(3), naive(5)),
        ("SE", "plus", naive(5), None),
    ]


def test_an_older_change_arriving_late_does_not_override_a_newer_one(banking: Warehouse) -> None:
    write(banking, dimensions={"dim_user": [user_change("e-2", at(3), None, "plus")]})
    write(banking, dimensions={"dim_user": [user_change("e-1", at(1), "DK", "standard")]})
    assert rows(banking, "SELECT country, segment FROM dim_user") == [("DK", "plus")]


def test_changes_at_the_same_instant_are_ordered_by_event_id(banking: Warehouse) -> None:
    write(
        banking,
        dimensions={
            "dim_user": [
                user_change("e-b", at(1), None, "plus"),
                user_change("e-a", at(1), "DK", "standard"),
            ]
        },
    )
    assert rows(banking, "SELECT country, segment FROM dim_user") == [("DK", "plus")]
    assert rows(banking, "SELECT segment, valid_from FROM dim_user__history") == [
        ("plus", naive(1))
    ]


def test_a_redelivered_change_changes_nothing(banking: Warehouse) -> None:
    for _ in range(2):
        write(banking, dimensions={"dim_user": CHANGES})
    assert rows(banking, "SELECT count(*) FROM dim_user__changes") == [(3,)]
    assert rows(banking, "SELECT count(*) FROM dim_user__history") == [(3,)]


def test_as_of_queries_read_the_version_valid_at_a_point_in_time(banking: Warehouse) -> None:
    write(banking, dimensions={"dim_user": CHANGES})
    as_of = (
        "SELECT segment FROM dim_user__history WHERE user_id = 'u-1' AND valid_from <= ? "
        "AND (valid_to IS NULL OR ? < valid_to)"
    )
    assert banking.query(as_of, (naive(2), naive(2))).rows == [("standard",)]
    assert banking.query(as_of, (naive(3), naive(3))).rows == [("plus",)]
    assert banking.query(as_of, (naive(1, 0), naive(1, 0))).rows == [("standard",)]
    assert banking.query(as_of, (datetime(2025, 12, 31),) * 2).rows == []


def test_unknown_references_become_inferred_members_then_real_ones(banking: Warehouse) -> None:
    write(banking, references={"dim_user": {"u-1", "u-2"}})
    assert rows(banking, "SELECT user_id, segment, inferred FROM dim_user ORDER BY 1") == [
        ("u-1", None, True),
        ("u-2", None, True),
    ]
    write(banking, dimensions={"dim_user": [CHANGES[0]]}, references={"dim_user": {"u-1"}})
    assert rows(banking, "SELECT user_id, segment, inferred FROM dim_user ORDER BY 1") == [
        ("u-1", "standard", False),
        ("u-2", None, True),
    ]


def test_dead_letters_keep_raw_bytes_and_reason_and_are_stored_once(banking: Warehouse) -> None:
    letter = DeadLetter.of(b"\xff not json", "not a valid JSON envelope")
    write(banking, dead_letters=[letter, letter])
    write(banking, dead_letters=[letter])
    [stored] = banking.dead_letters()
    assert (stored.raw, stored.reason) == (b"\xff not json", "not a valid JSON envelope")


def test_a_failing_batch_writes_nothing_not_even_its_dead_letters(banking: Warehouse) -> None:
    too_precise = transaction("t-2", "e-2", at(1), "1.000001")
    with pytest.raises(TerminalError, match="refused a value"):
        write(
            banking,
            facts={"fact_card_transaction": [transaction("t-1", "e-1", at(1)), too_precise]},
            dead_letters=[DeadLetter.of(b"x", "bad")],
        )
    assert rows(banking, "SELECT count(*) FROM fact_card_transaction") == [(0,)]
    assert banking.dead_letters() == []


def test_queries_are_read_only(banking: Warehouse) -> None:
    from factflow import ConfigurationError

    for statement in ("DELETE FROM dim_user", "DROP TABLE dim_user", "SELECT 1; DELETE FROM x"):
        with pytest.raises(ConfigurationError, match="read-only"):
            banking.query(statement)


def replay(warehouse: Warehouse, replayed: set[str], **parts: Any) -> None:
    """Write `parts` as the outcome of replaying the stored dead letters `replayed`."""
    changes = ChangeSet()
    for table, rows in parts.get("facts", {}).items():
        changes.facts[table] = rows
    changes.dead_letters.extend(parts.get("dead_letters", []))
    changes.replayed = replayed
    warehouse.write(changes)


FIXED = DeadLetter.of(b'{"id": "e-1"}', "card: RuntimeError: a bug", "card.x", "e-1")
BROKEN = DeadLetter.of(b'{"id": "e-2"}', "card: RuntimeError: another bug", "card.x", "e-2")


def test_a_replay_removes_the_letters_that_succeed_and_keeps_the_rest_with_the_new_reason(
    banking: Warehouse,
) -> None:
    write(banking, dead_letters=[FIXED, BROKEN])
    [received_at] = {d.received_at for d in banking.dead_letters()}
    still_broken = DeadLetter.of(BROKEN.raw, "card: ValueError: still a bug", "card.x", "e-2")
    replay(
        banking,
        {FIXED.id, BROKEN.id},
        facts={"fact_card_transaction": [transaction("t-1", "e-1", at(1))]},
        dead_letters=[still_broken],
    )
    [kept] = banking.dead_letters()
    assert (kept.id, kept.reason, kept.raw) == (BROKEN.id, still_broken.reason, BROKEN.raw)
    assert kept.received_at == received_at
    assert kept.replays == 1
    assert kept.replayed_at is not None and kept.replayed_at >= received_at
    assert rows(banking, "SELECT event_id FROM fact_card_transaction") == [("e-1",)]


def test_each_replay_that_fails_again_is_counted(banking: Warehouse) -> None:
    write(banking, dead_letters=[BROKEN])
    for _ in range(3):
        replay(banking, {BROKEN.id}, dead_letters=[BROKEN])
    [kept] = banking.dead_letters()
    assert (kept.replays, kept.reason) == (3, BROKEN.reason)


def test_a_replay_that_fails_to_write_removes_no_dead_letter(banking: Warehouse) -> None:
    write(banking, dead_letters=[FIXED, BROKEN])
    too_precise = transaction("t-1", "e-1", at(1), "1.000001")
    with pytest.raises(TerminalError, match="refused a value"):
        replay(
            banking,
            {FIXED.id, BROKEN.id},
            facts={"fact_card_transaction": [too_precise]},
            dead_letters=[DeadLetter.of(BROKEN.raw, "new reason")],
        )
    assert {(d.id, d.reason, d.replays) for d in banking.dead_letters()} == {
        (FIXED.id, FIXED.reason, 0),
        (BROKEN.id, BROKEN.reason, 0),
    }


def test_a_letter_failing_again_after_another_replay_removed_it_is_kept(
    banking: Warehouse,
) -> None:
    """Two replays at once: the one that finds the letter gone still keeps its failure."""
    replay(banking, {BROKEN.id}, dead_letters=[BROKEN])
    [kept] = banking.dead_letters()
    assert (kept.id, kept.reason, kept.raw) == (BROKEN.id, BROKEN.reason, BROKEN.raw)


def test_a_replay_keeps_the_known_type_of_a_letter_when_the_new_failure_has_none(
    banking: Warehouse,
) -> None:
    write(banking, dead_letters=[BROKEN])
    replay(banking, {BROKEN.id}, dead_letters=[DeadLetter.of(BROKEN.raw, "warehouse refused it")])
    [kept] = banking.dead_letters()
    assert (kept.event_type, kept.event_id, kept.reason) == (
        "card.x",
        "e-2",
        "warehouse refused it",
    )


def test_a_replay_leaves_live_dead_letters_of_the_same_batch_alone(banking: Warehouse) -> None:
    write(banking, dead_letters=[FIXED])
    arriving = DeadLetter.of(b"not json", "not a valid JSON envelope")
    replay(banking, {FIXED.id}, dead_letters=[arriving])
    [stored] = banking.dead_letters()
    assert (stored.id, stored.replays) == (arriving.id, 0)


LETTERS = [
    DeadLetter.of(b"1", "r", "card.transaction_settled", "e-1"),
    DeadLetter.of(b"2", "r", "card.card_issued", "e-2"),
    DeadLetter.of(b"3", "r", "cardx.card_issued", "e-3"),
    DeadLetter.of(b"4", "r", "user.user_created", "e-4"),
    DeadLetter.of(b"5", "r"),
]


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        (None, {"1", "2", "3", "4", "5"}),
        ("card.transaction_settled", {"1"}),
        ("card.*", {"1", "2"}),
        ("user.*", {"4"}),
        ("card.transaction", set()),
        ("goal.*", set()),
    ],
)
def test_dead_letters_are_read_by_event_type_or_by_domain(
    banking: Warehouse, event_type: str | None, expected: set[str]
) -> None:
    write(banking, dead_letters=LETTERS)
    letters = banking.dead_letters(event_type=event_type)
    assert {d.raw.decode() for d in letters} == expected


@pytest.mark.parametrize("pattern", ["*", "card*", "*.card_issued", "card.*.x", ".*", ""])
def test_an_event_type_pattern_that_is_neither_a_type_nor_a_domain_is_refused(
    banking: Warehouse, pattern: str
) -> None:
    from factflow import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"give a type .* or a domain \(card\.\*\)"):
        banking.dead_letters(event_type=pattern)


def test_dead_letters_are_read_in_pages_by_id(banking: Warehouse) -> None:
    write(banking, dead_letters=LETTERS)
    pages: list[list[str]] = []
    after = ""
    while page := banking.dead_letters(2, after_id=after):
        pages.append([d.id for d in page])
        after = page[-1].id
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == sorted(d.id for d in LETTERS)
    assert banking.dead_letters(2, event_type="card.*", after_id="") == sorted(
        (d for d in banking.dead_letters() if d.event_type and d.event_type.startswith("card.")),
        key=lambda d: d.id,
    )


def test_a_dead_letter_is_found_by_the_start_of_its_id(banking: Warehouse) -> None:
    write(banking, dead_letters=LETTERS)
    target = LETTERS[2]
    assert banking.dead_letters(2, id_prefix=target.id[:12]) == [
        d for d in banking.dead_letters() if d.id == target.id
    ]
    assert len(banking.dead_letters(id_prefix="")) == len(LETTERS)
    assert banking.dead_letters(id_prefix="not hex") == []


def rebuild_rows(warehouse: Warehouse, facts: list[tuple[Any, ...]]) -> None:
    changes = ChangeSet()
    changes.facts["fact_card_transaction"] = facts
    changes.rebuild_into["fact_card_transaction"] = "fact_card_transaction__rebuild"
    warehouse.write(changes)


def test_a_rebuild_fills_a_table_beside_the_fact_and_swaps_it_in_at_once(
    banking: Warehouse,
) -> None:
    write(
        banking,
        facts={
            "fact_card_transaction": [
                transaction("t-1", "e-1", at(1), "10.00"),
                transaction("t-2", "e-2", at(2), "20.00"),
            ]
        },
    )
    assert banking.begin_rebuild("CardTransaction") == "fact_card_transaction__rebuild"
    rebuild_rows(banking, [transaction("t-1", "e-1", at(1), "11.00")])  # a fixed pipeline
    # Until the swap, readers see the old table whole.
    amounts = "SELECT transaction_id, amount FROM fact_card_transaction ORDER BY 1"
    assert rows(banking, amounts) == [("t-1", Decimal("10.00")), ("t-2", Decimal("20.00"))]
    write(banking, facts={"fact_card_transaction": [transaction("t-3", "e-3", at(3))]})

    assert banking.finish_rebuild("fact_card_transaction") == 3

    # Rebuilt rows replace the old ones; rows the rebuild's source lacks (written meanwhile,
    # or older than the source) stay.
    assert rows(banking, amounts) == [
        ("t-1", Decimal("11.00")),
        ("t-2", Decimal("20.00")),
        ("t-3", Decimal("10.00")),
    ]
    assert rows(
        banking,
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'fact_card_transaction__rebuild'",
    ) == [(0,)]


def test_beginning_a_rebuild_again_starts_from_an_empty_table(banking: Warehouse) -> None:
    banking.begin_rebuild("fact_card_transaction")
    rebuild_rows(banking, [transaction("t-9", "e-9", at(1))])
    banking.begin_rebuild("fact_card_transaction")  # the first one was interrupted
    assert rows(banking, "SELECT count(*) FROM fact_card_transaction__rebuild") == [(0,)]


def test_a_rebuild_of_an_unknown_fact_names_the_facts(banking: Warehouse) -> None:
    with pytest.raises(KeyError, match="fact_card_transaction"):
        banking.begin_rebuild("fact_nothing")


def test_members_of_a_batch_that_failed_are_ensured_again(banking: Warehouse) -> None:
    too_precise = transaction("t-2", "e-2", at(1), "1.000001")
    with pytest.raises(TerminalError, match="refused a value"):
        write(
            banking,
            facts={"fact_card_transaction": [too_precise]},
            references={"dim_user": {"u-9"}},
        )
    write(banking, references={"dim_user": {"u-9"}})
    write(banking, references={"dim_user": {"u-9"}})  # known now: nothing to ensure
    assert rows(banking, "SELECT user_id, inferred FROM dim_user") == [("u-9", True)]
