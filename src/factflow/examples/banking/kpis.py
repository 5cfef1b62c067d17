"""The five KPIs of banking.md: the talk's question as SQL over the model, the others as metrics
that can be grouped and filtered (`factflow kpi spend_by_currency --by month --where segment=plus`).
Both answer alike on DuckDB and PostgreSQL."""

from __future__ import annotations

from factflow.insight.definitions import Count, CountDistinct, Kpi, Metric, Sum

from .model import CardTransaction, Goal

__all__ = ["KPIS"]

#: What a transaction metric can be grouped and filtered by: its time, its own columns, and the
#: user's segment (as it was then) and country, and the card's product.
_TRANSACTION_GROUP_BYS = [
    "month",
    "day",
    "currency",
    "billing_currency",
    "merchant_category",
    "merchant_country",
    "segment",
    "country",
    "product",
]

_NOT_DELETED_TRAVEL_GOAL = """
    SELECT user_id FROM dim_goal
    WHERE category = 'travel' AND NOT coalesce(deleted, false) AND user_id IS NOT NULL"""

KPIS = (
    Kpi(
        "travel_card_foreign_visa_users",
        description=(
            "The talk's question: distinct users who have been issued a travel_card, have a "
            "travel goal that is not deleted, and have a settled transaction on a visa_standard "
            "card in a foreign currency."
        ),
        sql=f"""
            SELECT count(DISTINCT t.user_id) AS users
            FROM fact_card_transaction AS t
            JOIN dim_card AS c ON c.card_id = t.card_id
            WHERE c.product = 'visa_standard'
              AND t.currency <> t.billing_currency
              AND t.user_id IN (SELECT user_id FROM dim_card WHERE product = 'travel_card')
              AND t.user_id IN ({_NOT_DELETED_TRAVEL_GOAL})
        """,
        owner="analytics",
        measures=["users"],
        empty_row={"users": 0},
    ),
    Metric(
        "active_users_by_month",
        description=(
            "Distinct users with at least one settled transaction, per calendar month (UTC)."
        ),
        of=CardTransaction,
        measure=CountDistinct("user_id", name="users"),
        by=["month"],
        group_bys=_TRANSACTION_GROUP_BYS,
        owner="analytics",
    ),
    Metric(
        "spend_by_currency",
        description="Sum of billing_amount per transaction currency and billing currency.",
        of=CardTransaction,
        measure=Sum("billing_amount"),
        by=["currency", "billing_currency"],
        group_bys=_TRANSACTION_GROUP_BYS,
        owner="analytics",
    ),
    Metric(
        "goals_by_category",
        description="Number of goals that are not deleted, per category.",
        of=Goal,
        measure=Count(name="goals"),
        by=["category"],
        group_bys=["currency", "segment", "country"],
        filters=["category IS NOT NULL", "NOT coalesce(deleted, false)"],
        owner="analytics",
    ),
    Metric(
        "spend_by_segment",
        description=(
            "Sum of billing_amount per billing currency and per the user's segment as it was "
            "when the transaction occurred ('unknown' when none was set by then)."
        ),
        of=CardTransaction,
        measure=Sum("billing_amount"),
        by=["segment", "billing_currency"],
        group_bys=_TRANSACTION_GROUP_BYS,
        owner="analytics",
    ),
)
