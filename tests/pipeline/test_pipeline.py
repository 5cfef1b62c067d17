from datetime import UTC, datetime
from typing import Any

import pytest

from factflow import (
    App,
    Consumer,
    DeclarationError,
    Dimension,
    Envelope,
    Event,
    Fact,
    Money,
    Pipeline,
    RejectedEvent,
    Work,
    dimension,
    ensure,
    ensure_dimensions,
    event,
    fact,
    insert_first,
    update_dimension,
)


@event("shop.order_placed")
class OrderPlaced(Event):
    order_id: str
    customer_id: str
    total: Money


@dimension(key="customer_id")
class Customer(Dimension):
    customer_id: str
    name: str | None = None


@fact(key="order_id", references={"customer_id": Customer})
class Order(Fact):
    order_id: str
    customer_id: str
    total: Money


def to_order(e: Envelope[OrderPlaced]) -> Order:
    return Order(order_id=e.data.order_id, customer_id=e.data.customer_id, total=e.data.total)


def placed(order_id: str, customer_id: str = "c-1", total: str = "10.00") -> Envelope[OrderPlaced]:
    return Envelope(
        id=f"e-{order_id}",
        type="shop.order_placed",
        source="shop",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        version=1,
        data=OrderPlaced(order_id=order_id, customer_id=customer_id, total=Money(total)),
    )


orders = Pipeline(OrderPlaced).map(to_order).then(ensure_dimensions).then(insert_first(Order))


def test_a_pipeline_stages_facts_with_their_envelope_id_and_event_time() -> None:
    work = orders.process([placed("o-1"), placed("o-2")])
    rows = work.changes.facts["fact_order"]
    assert list(rows) == [
        ("o-1", "c-1", Money("10.00"), "e-o-1", datetime(2026, 1, 1, tzinfo=UTC)),
        ("o-2", "c-1", Money("10.00"), "e-o-2", datetime(2026, 1, 1, tzinfo=UTC)),
    ]


def test_ensure_dimensions_collects_every_referenced_key() -> None:
    work = orders.process([placed("o-1", "c-1"), placed("o-2", "c-2")])
    assert work.changes.references == {"dim_customer": {"c-1", "c-2"}}


def test_ensure_one_dimension_collects_only_its_references() -> None:
    pipeline = Pipeline(OrderPlaced).map(to_order).then(ensure(Customer)).then(insert_first(Order))
    assert pipeline.process([placed("o-1")]).changes.references == {"dim_customer": {"c-1"}}


def test_an_event_the_map_function_fails_on_becomes_a_dead_letter_and_the_rest_go_on() -> None:
    def picky(e: Envelope[OrderPlaced]) -> Order:
        if e.data.order_id == "o-2":
            raise RejectedEvent("orders numbered 2 are cursed")
        return to_order(e)

    work = (
        Pipeline(OrderPlaced)
        .map(picky)
        .then(insert_first(Order))
        .process([placed("o-1"), placed("o-2"), placed("o-3")])
    )
    assert [row[0] for row in work.changes.facts["fact_order"]] == ["o-1", "o-3"]
    [letter] = work.changes.dead_letters
    assert letter.event_id == "e-o-2"
    assert "orders numbered 2 are cursed" in letter.reason


def test_an_unexpected_exception_in_map_names_the_function_and_the_error() -> None:
    def broken(e: Envelope[OrderPlaced]) -> Order:
        raise KeyError("oops")

    work = Pipeline(OrderPlaced).map(broken).then(insert_first(Order)).process([placed("o-1")])
    assert "broken raised KeyError" in work.changes.dead_letters[0].reason


def test_map_may_return_nothing_or_several_rows() -> None:
    def split(e: Envelope[OrderPlaced]) -> list[Fact | Dimension] | None:
        if e.data.order_id == "skip":
            return None
        return [to_order(e), Customer(customer_id=e.data.customer_id, name="Ada")]

    pipeline = (
        Pipeline(OrderPlaced).map(split).then(insert_first(Order)).then(update_dimension(Customer))
    )
    work = pipeline.process([placed("o-1"), placed("skip")])
    assert len(work.changes.facts["fact_order"]) == 1
    assert work.changes.dimension_changes["dim_customer"][0][:2] == ("c-1", "Ada")


def test_a_pipeline_that_maps_rows_it_never_stores_is_an_error_not_a_silent_loss() -> None:
    with pytest.raises(DeclarationError, match="has no step storing them"):
        Pipeline(OrderPlaced).map(to_order).process([placed("o-1")])


def test_any_plain_function_is_a_step() -> None:
    seen: list[int] = []

    def count(work: Work[Any]) -> None:
        seen.append(len(work.events))

    Pipeline(OrderPlaced).then(count).process([placed("o-1"), placed("o-2")])
    assert seen == [2]


def test_pipelines_are_immutable_builders() -> None:
    base = Pipeline(OrderPlaced)
    longer = base.map(to_order)
    assert base.steps == ()
    assert len(longer.steps) == 1
    assert "map(to_order)" in repr(longer)


def test_a_consumer_refuses_events_of_another_domain() -> None:
    with pytest.raises(DeclarationError, match="published to the 'shop' domain"):
        Consumer("card").pipe(OrderPlaced, orders)


def test_an_app_compiles_the_tables_its_pipelines_write() -> None:
    customers = (
        Pipeline(OrderPlaced)
        .map(lambda e: Customer(customer_id=e.data.customer_id))
        .then(update_dimension(Customer))
    )
    app = App(
        "shop", consumers=[Consumer("shop").pipe(OrderPlaced, orders).pipe(OrderPlaced, customers)]
    )
    assert [t.name for t in app.schema.tables()] == [
        "fact_order",
        "dim_customer__changes",
        "dim_customer",
    ]
    assert len(app.pipelines_by_type()["shop.order_placed"]) == 2


def test_asking_an_app_for_an_unknown_kpi_lists_the_known_ones() -> None:
    app = App("shop", consumers=[])
    with pytest.raises(DeclarationError, match="no KPI 'x'; known: none"):
        app.kpi("x")
