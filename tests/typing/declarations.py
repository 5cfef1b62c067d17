"""Checked by mypy --strict (see pyproject): the declaration API type-checks for users."""

from __future__ import annotations

from factflow import (
    App,
    Consumer,
    Dimension,
    Envelope,
    Event,
    Fact,
    Kpi,
    Money,
    Pipeline,
    Work,
    dimension,
    ensure,
    ensure_dimensions,
    event,
    fact,
    insert_first,
    update_dimension,
)


@event("shop.order_placed", version=1)
class OrderPlaced(Event):
    order_id: str
    customer_id: str
    total: Money


@dimension(key="customer_id", scd=2)
class Customer(Dimension):
    customer_id: str
    tier: str | None = None


@fact(key="order_id", references={"customer_id": Customer})
class Order(Fact):
    order_id: str
    customer_id: str
    total: Money


def to_order(placed: Envelope[OrderPlaced]) -> Order:
    data: OrderPlaced = placed.data
    return Order(order_id=data.order_id, customer_id=data.customer_id, total=data.total)


def audit(work: Work[OrderPlaced]) -> None:
    for placed in work.events:
        if placed.data.total < 0:
            work.reject(placed, "negative total")


orders: Pipeline[OrderPlaced] = (
    Pipeline(OrderPlaced)
    .then(audit)
    .map(to_order)
    .then(ensure_dimensions)
    .then(ensure(Customer))
    .then(insert_first(Order))
)
customers = (
    Pipeline(OrderPlaced)
    .map(lambda placed: Customer(customer_id=placed.data.customer_id))
    .then(update_dimension(Customer))
)
app = App(
    "shop",
    consumers=[
        Consumer("shop", group="kpi").pipe(OrderPlaced, orders).pipe(OrderPlaced, customers)
    ],
    kpis=[
        Kpi(
            "orders",
            description="Orders.",
            sql="SELECT count(*) AS orders FROM fact_order",
            measures=["orders"],
        )
    ],
)
