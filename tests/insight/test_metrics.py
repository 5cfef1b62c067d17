"""Metric KPIs: asked by other groupings, filters and periods, on both backends, the answers
equal what the raw events say (computed here independently, from the simulated stream)."""

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from banking_oracle import Message, format_decimal, parse_valid
from factflow import App, Consumer, DeclarationError, Dimension, Fact, dimension, fact
from factflow.cli import main
from factflow.errors import ConfigurationError
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.insight import Insight, connect
from factflow.insight.definitions import Count, Metric, Sum
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.steps import insert_first
from filled_warehouse import EVENTS, filled_warehouse


@pytest.fixture(scope="module")
def stream() -> list[Message]:
    """The valid envelopes `filled_warehouse` delivers, first of each id, in event order."""
    seen: dict[str, Message] = {}
    for raw in simulate(SimulationOptions(events=EVENTS, seed=7)):
        message = parse_valid(raw)
        if message is not None:
            seen.setdefault(message.id, message)
    return sorted(seen.values(), key=lambda m: m.order)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def bank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Insight]:
    with (
        filled_warehouse(request.param, tmp_path) as url,
        connect(url, app="factflow.examples.banking") as insight,
    ):
        yield insight


def transactions(stream: list[Message]) -> list[Message]:
    first: dict[str, Message] = {}
    for message in stream:
        if message.type == "card.transaction_settled":
            first.setdefault(message.data["transaction_id"], message)
    return list(first.values())


def segment_at(stream: list[Message], user_id: str, moment: datetime) -> str:
    segment = "unknown"
    for message in stream:
        if (
            message.type in ("user.user_created", "user.user_updated")
            and message.data.get("user_id") == user_id
            and "segment" in message.data
            and message.occurred_at <= moment
        ):
            segment = message.data["segment"]
    return segment


def rows_of(bank: Insight, name: str, **question: Any) -> list[dict[str, Any]]:
    rows = bank.kpi(name, **question).to_pylist()
    return [
        {k: format_decimal(v) if isinstance(v, Decimal) else v for k, v in row.items()}
        for row in rows
    ]


def test_spend_by_month_of_the_users_who_were_plus_then(
    bank: Insight, stream: list[Message]
) -> None:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for t in transactions(stream):
        if segment_at(stream, t.data["user_id"], t.occurred_at) == "plus":
            sums[t.occurred_at.astimezone(UTC).strftime("%Y-%m")] += Decimal(
                t.data["billing_amount"]
            )
    expected = [{"month": m, "billing_amount": format_decimal(sums[m])} for m in sorted(sums)]
    assert expected, "the simulated stream has spend by plus users"

    found = rows_of(bank, "spend_by_currency", by=["month"], where={"segment": ["plus"]})

    assert found == expected


def test_active_users_per_card_product_within_a_period(
    bank: Insight, stream: list[Message]
) -> None:
    products = {
        m.data["card_id"]: m.data["product"] for m in stream if m.type == "card.card_issued"
    }
    since, until = date(2026, 2, 1), date(2026, 3, 31)
    users: dict[str, set[str]] = defaultdict(set)
    for t in transactions(stream):
        if since <= t.occurred_at.astimezone(UTC).date() <= until:
            users[products.get(t.data["card_id"], "unknown")].add(t.data["user_id"])
    expected = [{"product": p, "users": len(users[p])} for p in sorted(users)]
    assert len(expected) > 1

    found = rows_of(bank, "active_users_by_month", by=["product"], since=since, until=until)

    assert found == expected


def test_spend_per_utc_day_within_one_month(bank: Insight, stream: list[Message]) -> None:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for t in transactions(stream):
        moment = t.occurred_at.astimezone(UTC)
        if moment.strftime("%Y-%m") == "2026-02":
            sums[moment.strftime("%Y-%m-%d")] += Decimal(t.data["billing_amount"])
    expected = [{"day": d, "billing_amount": format_decimal(sums[d])} for d in sorted(sums)]
    assert len(expected) > 1

    found = rows_of(bank, "spend_by_currency", by=["day"], where={"month": ["2026-02"]})

    assert found == expected


def test_several_values_of_one_filter_keep_either(bank: Insight, stream: list[Message]) -> None:
    counts: dict[str, int] = defaultdict(int)
    deleted = {m.data["goal_id"]: m.order for m in stream if m.type == "goal.goal_deleted"}
    for goal in (m for m in stream if m.type == "goal.goal_created"):
        if goal.data["currency"] in ("DKK", "EUR") and not (
            goal.data["goal_id"] in deleted and deleted[goal.data["goal_id"]] > goal.order
        ):
            counts[goal.data["category"]] += 1
    expected = [{"category": c, "goals": counts[c]} for c in sorted(counts)]

    found = rows_of(bank, "goals_by_category", where={"currency": ["DKK", "EUR"]})

    assert found == expected


def test_a_filter_value_is_data_never_sql(bank: Insight) -> None:
    found = rows_of(
        bank, "spend_by_currency", where={"currency": ["DKK' OR 'a' = 'a", 'x"; DROP TABLE x']}
    )
    assert found == []


def test_names_a_kpi_cannot_be_asked_by_are_refused_listing_those_it_can() -> None:
    bank = Insight(_empty_warehouse(), app)
    with pytest.raises(ConfigurationError, match=r"'merchant'.*it can by: month, day, currency"):
        bank.kpi("spend_by_currency", by=["merchant"])
    with pytest.raises(ConfigurationError, match="answered by its own SQL"):
        bank.kpi("travel_card_foreign_visa_users", by=["month"])
    with pytest.raises(ConfigurationError, match="no --from or --to"):
        bank.kpi("goals_by_category", since=date(2026, 1, 1))


def test_a_metric_over_what_the_model_lacks_is_refused_when_the_app_is_declared() -> None:
    @dimension(key="shop_id")
    class Shop(Dimension):
        shop_id: str
        city: str | None = None

    @dimension(key="buyer_id")
    class Buyer(Dimension):
        buyer_id: str
        city: str | None = None

    @fact(key="sale_id", references={"shop_id": Shop, "buyer_id": Buyer})
    class Sale(Fact):
        sale_id: str
        shop_id: str
        buyer_id: str

    def shop_app(metric: Metric) -> App:
        pipeline = Pipeline(app.events[0]).map(lambda _: []).then(insert_first(Sale))
        consumer = Consumer(app.events[0].__factflow_event__.domain).pipe(app.events[0], pipeline)
        return App("shops", consumers=[consumer], kpis=[metric])

    with pytest.raises(DeclarationError, match="neither a column of fact_sale nor an attribute"):
        shop_app(Metric("m", description="", of=Sale, measure=Count(), by=["country"]))
    with pytest.raises(DeclarationError, match=r"shop\.city, buyer\.city"):
        shop_app(Metric("m", description="", of=Sale, measure=Count(), by=["city"]))
    with pytest.raises(DeclarationError, match="measures 'price'"):
        shop_app(Metric("m", description="", of=Sale, measure=Sum("price")))
    assert shop_app(Metric("m", description="", of=Sale, measure=Count(), by=["shop.city"]))


def test_factflow_kpi_groups_filters_and_limits_a_metric(tmp_path: Path) -> None:
    with filled_warehouse("duckdb", tmp_path) as url:
        runner = CliRunner()
        base = ["kpi", "spend_by_segment", "--app", "factflow.examples.banking"]
        asked = runner.invoke(
            main,
            [
                *base,
                *("--warehouse", url, "--by", "month", "--where", "billing_currency=DKK"),
                *("--from", "2026-01-01", "--to", "2026-12-31", "--format", "json"),
            ],
        )
        bad = runner.invoke(main, [*base, "--warehouse", url, "--where", "segment"])
        listed = runner.invoke(main, ["kpi", "--app", "factflow.examples.banking"])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.output)
    assert answer["kpi"] == "spend_by_segment"
    assert [set(row) for row in answer["rows"]] == [{"month", "billing_amount"}] * 5
    assert bad.exit_code == 2
    assert "write NAME=VALUE" in bad.output
    assert "--by/--where: month, day, currency" in listed.output


def _empty_warehouse() -> Any:
    from factflow.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(read_only=False)
