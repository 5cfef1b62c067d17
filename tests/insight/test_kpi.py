from decimal import Decimal

import pytest

from factflow.examples.banking import app
from factflow.insight.kpi import format_decimal, to_json_rows
from factflow.testing import Harness, envelope


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1234.5000", "1234.50"),
        ("12.345", "12.345"),
        ("0", "0.00"),
        ("100", "100.00"),
        ("-130.00", "-130.00"),
        ("1E+2", "100.00"),
        ("0.0001", "0.0001"),
    ],
)
def test_decimals_print_exactly_with_at_least_two_places(value: str, text: str) -> None:
    assert format_decimal(Decimal(value)) == text


def test_json_rows_turn_decimals_into_strings_and_keep_counts_as_numbers() -> None:
    assert to_json_rows([{"users": 3, "amount": Decimal("2.50")}]) == [
        {"users": 3, "amount": "2.50"}
    ]


def test_kpis_on_an_empty_warehouse_return_their_zero_row_or_no_rows() -> None:
    harness = Harness(app)
    assert harness.kpi("travel_card_foreign_visa_users") == [{"users": 0}]
    for name in (
        "active_users_by_month",
        "spend_by_currency",
        "goals_by_category",
        "spend_by_segment",
    ):
        assert harness.kpi(name) == []


def user(user_id: str, when: str, **data: str) -> bytes:
    kind = "user.user_created" if "country" in data and "segment" in data else "user.user_updated"
    return envelope(kind, {"user_id": user_id, **data}, occurred_at=when)


def spend(tx: str, user_id: str, when: str, amount: str, currency: str = "DKK") -> bytes:
    return envelope(
        "card.transaction_settled",
        {
            "transaction_id": tx,
            "card_id": "c-1",
            "user_id": user_id,
            "amount": amount,
            "currency": currency,
            "billing_amount": amount,
            "billing_currency": "DKK",
            "merchant": "m",
            "merchant_category": "groceries",
            "merchant_country": "DK",
        },
        occurred_at=when,
    )


def test_spend_by_segment_uses_the_segment_at_the_time_of_each_transaction() -> None:
    harness = Harness(app)
    harness.deliver(
        [
            spend("t-0", "u-1", "2026-01-01T00:00:00Z", "1.00"),  # before any segment: unknown
            spend("t-1", "u-1", "2026-01-05T00:00:00Z", "10.00"),  # standard
            spend("t-2", "u-1", "2026-02-05T00:00:00Z", "20.00"),  # plus
            user("u-1", "2026-02-01T00:00:00Z", segment="plus"),  # arrives before created
            user("u-1", "2026-01-02T00:00:00Z", country="DK", segment="standard"),
            user("u-1", "2026-03-01T00:00:00Z", country="SE"),  # no segment: unchanged
            spend("t-3", "u-1", "2026-03-05T00:00:00Z", "30.00"),  # still plus
        ]
    )
    assert harness.kpi("spend_by_segment") == [
        {"segment": "plus", "billing_currency": "DKK", "billing_amount": "50.00"},
        {"segment": "standard", "billing_currency": "DKK", "billing_amount": "10.00"},
        {"segment": "unknown", "billing_currency": "DKK", "billing_amount": "1.00"},
    ]
    assert harness.kpi("active_users_by_month") == [
        {"month": "2026-01", "users": 1},
        {"month": "2026-02", "users": 1},
        {"month": "2026-03", "users": 1},
    ]


def test_a_goal_deleted_before_its_creation_arrives_is_not_counted() -> None:
    harness = Harness(app)
    created = {
        "goal_id": "g-1",
        "user_id": "u-1",
        "name": "Japan",
        "category": "travel",
        "target_amount": "5000.00",
        "currency": "DKK",
    }
    harness.deliver(
        [
            envelope(
                "goal.goal_deleted",
                {"goal_id": "g-1", "user_id": "u-1"},
                occurred_at="2026-02-01T00:00:00Z",
            ),
            envelope("goal.goal_created", created, occurred_at="2026-01-01T00:00:00Z"),
            envelope(
                "goal.goal_created",
                created | {"goal_id": "g-2", "category": "home"},
                occurred_at="2026-01-01T00:00:00Z",
            ),
        ]
    )
    assert harness.kpi("goals_by_category") == [{"category": "home", "goals": 1}]
