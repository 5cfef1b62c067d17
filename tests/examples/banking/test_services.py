"""The services' own state, folded from one simulation's business events (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest

from banking_oracle import parse_valid
from factflow.examples.banking.services import COLUMNS, Row, ServiceState
from factflow.examples.banking.simulator import SimulationOptions, simulate

OPTIONS = SimulationOptions(events=3000, seed=5, duplicates=0.05, republications=0.05)


@pytest.fixture(scope="module")
def recorded() -> tuple[ServiceState, list[Row], list[bytes]]:
    transactions: list[Row] = []
    state = ServiceState(transactions.append)
    messages = list(simulate(OPTIONS, record=state.record))
    return state, transactions, messages


def business(messages: list[bytes], kind: str) -> list[Any]:
    """The distinct business events of one type, in time order: a re-publication under another
    id is the same event (in the simulation no two business events share an instant)."""
    valid = [m for m in map(parse_valid, messages) if m is not None and m.type == kind]
    distinct = {m.occurred_at: m for m in sorted(valid, key=lambda m: m.order)}
    return list(distinct.values())


def as_dicts(state: ServiceState, table: str) -> dict[str, dict[str, Any]]:
    return {row[0]: dict(zip(COLUMNS[table], row, strict=True)) for row in state.rows(table)}


def test_every_transaction_goes_out_once_as_its_row(
    recorded: tuple[ServiceState, list[Row], list[bytes]],
) -> None:
    state, transactions, messages = recorded
    settled = business(messages, "card.transaction_settled")
    assert state.transactions == len(transactions) == len(settled)
    first = settled[0]
    assert transactions[0] == (
        *(first.data[c] for c in COLUMNS["transactions"][:-1]),
        first.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    )


def test_users_keep_their_current_country_and_segment_and_when_they_last_changed(
    recorded: tuple[ServiceState, list[Row], list[bytes]],
) -> None:
    state, _, messages = recorded
    users = as_dicts(state, "users")
    expected: dict[str, dict[str, Any]] = {}
    changes = sorted(
        business(messages, "user.user_created") + business(messages, "user.user_updated"),
        key=lambda m: m.order,
    )
    for change in changes:
        user = expected.setdefault(change.data["user_id"], {})
        user.update({k: change.data[k] for k in ("country", "segment") if k in change.data})
        user["changes"] = user.get("changes", 0) + 1
    assert set(users) == set(expected)
    assert all(
        (users[u]["country"], users[u]["segment"]) == (e["country"], e["segment"])
        for u, e in expected.items()
    )
    changed = {u for u, row in users.items() if row["updated_at"] != row["created_at"]}
    assert changed == {u for u, e in expected.items() if e["changes"] > 1}
    assert changed, "some users should have changed"


def test_deleted_goals_stay_with_the_time_of_their_deletion(
    recorded: tuple[ServiceState, list[Row], list[bytes]],
) -> None:
    state, _, messages = recorded
    goals = as_dicts(state, "goals")
    deleted = {m.data["goal_id"] for m in business(messages, "goal.goal_deleted")}
    assert len(goals) == len(business(messages, "goal.goal_created"))
    assert {g for g, row in goals.items() if row["deleted_at"] is not None} == deleted
    assert deleted


def test_accounts_keep_the_latest_reported_balance(
    recorded: tuple[ServiceState, list[Row], list[bytes]],
) -> None:
    state, _, messages = recorded
    accounts = as_dicts(state, "accounts")
    latest = {m.data["account_id"]: m.data for m in business(messages, "account.balance_updated")}
    assert {a: row["balance"] for a, row in accounts.items() if row["balance"]} == {
        a: data["balance"] for a, data in latest.items()
    }


def test_only_the_bank_s_events_and_kept_tables_are_known() -> None:
    state = ServiceState(lambda row: None)
    with pytest.raises(ValueError, match=r"publish no 'loan\.loan_opened' events"):
        state.record("loan.loan_opened", "2026-01-01T00:00:00Z", {})
    with pytest.raises(ValueError, match="transactions go to on_transaction"):
        state.rows("transactions")
