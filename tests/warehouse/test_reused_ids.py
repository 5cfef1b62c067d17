"""A checked change set (`check_stored_ids`) is refused whole when a row reuses a stored key and
envelope id with other values; any other stored key is absorbed first-wins, as unchecked."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from factflow.examples.banking import app
from factflow.model.dead_letter import DeadLetter
from factflow.pipeline.changes import ChangeSet
from factflow.warehouse.base import StoredRowsDiffer, Warehouse, rebuild_table

TRANSACTIONS = "fact_card_transaction"
USERS = "dim_user__changes"


def at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


def transaction(tx: str, event_id: str, when: datetime, amount: str = "10.00") -> tuple[Any, ...]:
    money = Decimal(amount)
    return (tx, "c-1", "u-1", money, "EUR", money, "DKK", "m", "travel", "DE", event_id, when)


def user_change(
    event_id: str, when: datetime, country: str | None, segment: str | None
) -> tuple[Any, ...]:
    return ("u-1", country, segment, event_id, when)


def rows(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    return warehouse.query(sql).rows


def write(warehouse: Warehouse, **parts: Any) -> None:
    changes = checked(**parts)
    changes.check_stored_ids = None
    warehouse.write(changes)


@pytest.fixture
def banking(warehouse: Warehouse) -> Warehouse:
    warehouse.prepare(app.schema)
    write(
        warehouse,
        facts={"fact_card_transaction": [transaction("t-1", "e-1", at(1))]},
        dimensions={"dim_user": [user_change("e-u", at(1), "DK", "plus")]},
    )
    return warehouse


def checked(**parts: Any) -> ChangeSet:
    changes = ChangeSet()
    changes.facts.update(parts.get("facts", {}))
    changes.dimension_changes.update(parts.get("dimensions", {}))
    changes.dead_letters.extend(parts.get("dead_letters", []))
    changes.check_stored_ids = lambda _: None
    return changes


def stored_amounts(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return rows(
        warehouse, f"SELECT transaction_id, event_id, amount FROM {TRANSACTIONS} ORDER BY 1"
    )


def test_a_fact_stored_under_its_key_and_id_with_other_values_refuses_the_whole_batch(
    banking: Warehouse,
) -> None:
    before = stored_amounts(banking)
    changes = checked(
        facts={
            TRANSACTIONS: [
                transaction("t-2", "e-2", at(2)),  # new, but the batch is refused whole
                transaction("t-1", "e-1", at(1), "99.00"),
            ]
        },
        dimensions={"dim_user": [user_change("e-3", at(3), "SE", None)]},
        dead_letters=[DeadLetter.of(b"junk", "not JSON")],
    )
    with pytest.raises(StoredRowsDiffer, match=TRANSACTIONS):
        banking.write(changes)
    assert stored_amounts(banking) == before
    assert rows(banking, f"SELECT count(*) FROM {USERS}") == [(1,)]
    assert banking.dead_letters() == []


def test_a_dimension_change_stored_with_other_values_refuses_the_batch(banking: Warehouse) -> None:
    changes = checked(
        facts={TRANSACTIONS: [transaction("t-2", "e-2", at(2))]},
        dimensions={"dim_user": [user_change("e-u", at(1), "DK", "standard")]},
    )
    with pytest.raises(StoredRowsDiffer, match=USERS):
        banking.write(changes)
    assert [r[0] for r in stored_amounts(banking)] == ["t-1"]  # the fact written first: undone
    assert rows(banking, "SELECT segment FROM dim_user") == [("plus",)]


def test_a_redelivery_with_the_same_values_is_absorbed(banking: Warehouse) -> None:
    """Same values however spelled: the same instant in another zone, 10.0 for 10.00."""
    plus_two = timezone(timedelta(hours=2))
    again = transaction("t-1", "e-1", at(1).astimezone(plus_two), "10.0")
    banking.write(
        checked(
            facts={TRANSACTIONS: [transaction("t-2", "e-2", at(2)), again, again]},
            dimensions={"dim_user": [user_change("e-u", at(1), "DK", "plus")]},
        )
    )
    assert [r[:2] for r in stored_amounts(banking)] == [("t-1", "e-1"), ("t-2", "e-2")]
    assert rows(banking, f"SELECT count(*) FROM {USERS}") == [(1,)]


def test_a_stored_key_under_another_envelope_id_is_absorbed_first_wins(
    banking: Warehouse,
) -> None:
    """Another envelope of the same transaction (republished under a new id) is no reuse."""
    banking.write(checked(facts={TRANSACTIONS: [transaction("t-1", "e-9", at(1), "99.00")]}))
    assert [r[:2] for r in stored_amounts(banking)] == [("t-1", "e-1")]


def test_without_the_check_a_stored_key_is_absorbed_whatever_its_values(
    banking: Warehouse,
) -> None:
    write(banking, facts={TRANSACTIONS: [transaction("t-1", "e-1", at(1), "99.00")]})
    assert [r[2] for r in stored_amounts(banking)] == [10]


def test_rows_refilling_a_rebuilt_table_are_not_checked(banking: Warehouse) -> None:
    shadow = banking.begin_rebuild(TRANSACTIONS)
    assert shadow == rebuild_table(TRANSACTIONS)
    first = checked(facts={TRANSACTIONS: [transaction("t-1", "e-1", at(1), "99.00")]})
    first.rebuild_into = {TRANSACTIONS: shadow}
    banking.write(first)
    again = checked(facts={TRANSACTIONS: [transaction("t-1", "e-1", at(1), "98.00")]})
    again.rebuild_into = {TRANSACTIONS: shadow}
    banking.write(again)
    assert banking.finish_rebuild(TRANSACTIONS) == 1
    assert [r[2] for r in stored_amounts(banking)] == [99]


def test_the_check_compares_utc_instants(banking: Warehouse) -> None:
    later = transaction("t-1", "e-1", datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    with pytest.raises(StoredRowsDiffer):
        banking.write(checked(facts={TRANSACTIONS: [later]}))
