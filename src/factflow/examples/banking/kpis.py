"""The five KPIs of banking.md, as read-only SQL over the model (DuckDB and PostgreSQL alike)."""

from __future__ import annotations

from factflow.pipeline.app import Kpi

__all__ = ["KPIS"]

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
    Kpi(
        "active_users_by_month",
        description=(
            "Distinct users with at least one settled transaction, per calendar month (UTC)."
        ),
        sql="""
            SELECT substr(CAST(occurred_at AS VARCHAR), 1, 7) AS month,
                   count(DISTINCT user_id) AS users
            FROM fact_card_transaction
            GROUP BY 1
            ORDER BY 1
        """,
        owner="analytics",
        measures=["users"],
    ),
    Kpi(
        "spend_by_currency",
        description="Sum of billing_amount per transaction currency and billing currency.",
        sql="""
            SELECT currency, billing_currency, sum(billing_amount) AS billing_amount
            FROM fact_card_transaction
            GROUP BY 1, 2
            ORDER BY 1, 2
        """,
        owner="analytics",
        measures=["billing_amount"],
    ),
    Kpi(
        "goals_by_category",
        description="Number of goals that are not deleted, per category.",
        sql="""
            SELECT category, count(*) AS goals
            FROM dim_goal
            WHERE category IS NOT NULL AND NOT coalesce(deleted, false)
            GROUP BY 1
            ORDER BY 1
        """,
        owner="analytics",
        measures=["goals"],
    ),
    Kpi(
        "spend_by_segment",
        description=(
            "Sum of billing_amount per billing currency and per the user's segment as it was "
            "when the transaction occurred ('unknown' when none was set by then)."
        ),
        sql="""
            SELECT coalesce(h.segment, 'unknown') AS segment, t.billing_currency,
                   sum(t.billing_amount) AS billing_amount
            FROM fact_card_transaction AS t
            LEFT JOIN dim_user__history AS h
              ON h.user_id = t.user_id
             AND h.valid_from <= t.occurred_at
             AND (h.valid_to IS NULL OR t.occurred_at < h.valid_to)
            GROUP BY 1, 2
            ORDER BY 1, 2
        """,
        owner="analytics",
        measures=["billing_amount"],
    ),
)
