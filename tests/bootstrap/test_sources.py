"""Bootstrap sources: declared on the app, replayed with stable ids through the same pipelines."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from banking_events import SETTLED, settled
from factflow import App, BootstrapSource, SourceEvent, bootstrap_source
from factflow.bootstrap.sources import (
    SourcePosition,
    bootstrap_sources,
    select_sources,
    source_batches,
)
from factflow.errors import ConfigurationError, DeclarationError
from factflow.examples.banking import app as banking
from factflow.examples.banking.events import GoalCreated, TransactionSettled, UserCreated
from factflow.model.declare import Event
from factflow.model.types import Money
from factflow.pipeline.sources import BOOTSTRAP_NAMESPACE
from factflow.testing import Harness, envelope

START = datetime(2026, 1, 1, tzinfo=UTC)


def transaction(transaction_id: str, minutes: int = 0) -> SourceEvent:
    data = SETTLED | {"transaction_id": transaction_id}
    for money in ("amount", "billing_amount"):
        data[money] = Money(data[money])
    return SourceEvent(
        TransactionSettled(**data),
        key=transaction_id,
        occurred_at=START + timedelta(minutes=minutes),
    )


@bootstrap_source(service="card-service")
def card_ledger(location: str) -> Iterator[SourceEvent]:
    """Three transactions, whatever the location."""
    for number in range(3):
        yield transaction(f"t-{number}", number)


@bootstrap_source(name="people", service="user-service")
def user_table(location: str) -> Iterator[SourceEvent]:
    yield SourceEvent(
        UserCreated(user_id="u-1", country="DK", segment="plus"), key="u-1", occurred_at=START
    )


def with_sources(*sources: BootstrapSource) -> App:
    return App("banking", consumers=banking.consumers, kpis=banking.kpis.values(), sources=sources)


# -- SourceEvent ------------------------------------------------------------------------------


def test_the_envelope_id_is_derived_from_type_and_key_alone() -> None:
    first, again = transaction("t-1", 0), transaction("t-1", 30)
    assert first.envelope_id() == again.envelope_id()
    expected = uuid.uuid5(BOOTSTRAP_NAMESPACE, "card.transaction_settled t-1")
    assert first.envelope_id() == str(expected)
    assert transaction("t-2").envelope_id() != first.envelope_id()
    goal = SourceEvent(
        GoalCreated(
            goal_id="t-1",
            user_id="u-1",
            name="Trip",
            category="travel",
            target_amount=Money("100.00"),
            currency="EUR",
        ),
        key="t-1",
        occurred_at=START,
    )
    assert goal.envelope_id() != first.envelope_id()  # the same key of another type


def test_an_event_is_encoded_as_the_service_would_publish_it() -> None:
    encoded = json.loads(transaction("t-1", 90).encode("card-service"))
    assert encoded == {
        "id": transaction("t-1").envelope_id(),
        "type": "card.transaction_settled",
        "source": "card-service",
        "occurred_at": "2026-01-01T01:30:00Z",
        "version": 1,
        "data": SETTLED,
    }


def test_a_time_without_zone_or_an_empty_key_is_refused() -> None:
    data = UserCreated(user_id="u-1", country="DK", segment="plus")
    with pytest.raises(ValueError, match="has no time zone"):
        SourceEvent(data, key="u-1", occurred_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="non-empty key"):
        SourceEvent(data, key="", occurred_at=START)


def test_a_payload_that_is_not_a_declared_event_is_refused() -> None:
    class Undeclared(Event):
        user_id: str

    with pytest.raises(DeclarationError, match="not declared with @event"):
        SourceEvent(Undeclared(user_id="u-1"), key="u-1", occurred_at=START).encode("x")


# -- declaring sources on the app ---------------------------------------------------------------


def test_sources_are_declared_by_name_and_service() -> None:
    app = with_sources(card_ledger, user_table)
    assert list(app.sources) == ["card_ledger", "people"]
    assert app.source("people").service == "user-service"
    assert card_ledger.service == "card-service"
    assert BootstrapSource(card_ledger.read, name="ledger").service == "ledger"


def test_an_app_refuses_two_sources_of_one_name_or_anything_else() -> None:
    with pytest.raises(DeclarationError, match="two bootstrap sources named 'card_ledger'"):
        with_sources(card_ledger, card_ledger)
    with pytest.raises(DeclarationError, match="takes BootstrapSource objects"):
        App("x", consumers=(), sources=[card_ledger.read])  # type: ignore[list-item]
    with pytest.raises(DeclarationError, match="needs a name"):
        BootstrapSource(lambda location: [])
    with pytest.raises(DeclarationError, match="no bootstrap source 'nope'; known: card_ledger"):
        with_sources(card_ledger).source("nope")


def test_selecting_sources_by_name_or_all_of_them() -> None:
    app = with_sources(card_ledger, user_table)
    assert select_sources(app) == [card_ledger, user_table]
    assert select_sources(app, ["people"]) == [user_table]
    with pytest.raises(ConfigurationError, match="no bootstrap source 'nope'"):
        select_sources(app, ["nope"])
    with pytest.raises(ConfigurationError, match="declares no bootstrap sources"):
        select_sources(App("bare", consumers=banking.consumers))


# -- running them -----------------------------------------------------------------------------


def test_batches_never_mix_sources_and_count_each_source_s_events() -> None:
    positions = [
        (len(messages), position)
        for messages, position in source_batches([card_ledger, user_table], "any://", 2)
    ]
    assert positions == [
        (2, SourcePosition("card_ledger", 2)),
        (1, SourcePosition("card_ledger", 3)),
        (1, SourcePosition("people", 1)),
    ]


def test_each_source_gets_the_location() -> None:
    locations: list[str] = []

    @bootstrap_source()
    def spy(location: str) -> Iterator[SourceEvent]:
        locations.append(location)
        return iter(())

    list(source_batches([spy], "postgresql://reader@db/cards", 10))
    assert locations == ["postgresql://reader@db/cards"]


def test_a_bootstrap_fills_the_model_and_running_it_again_changes_nothing() -> None:
    app = with_sources(card_ledger, user_table)
    harness = Harness(app)
    first = bootstrap_sources(app, "any://", harness.warehouse, batch_size=2)
    tables = {t: harness.rows(t) for t in ("fact_card_transaction", "dim_user__changes")}
    again = bootstrap_sources(app, "any://", harness.warehouse)
    assert (first.messages, first.dead_letters) == (again.messages, again.dead_letters) == (4, 0)
    assert {t: harness.rows(t) for t in tables} == tables
    assert len(tables["fact_card_transaction"]) == 3
    assert harness.rows("dim_user")[0]["segment"] == "plus"


def test_events_already_delivered_live_under_other_ids_count_once() -> None:
    app = with_sources(card_ledger)
    harness = Harness(app)
    live = [settled(f"t-{n}", occurred_at=f"2026-01-01T00:0{n}:00Z") for n in range(2)]
    harness.deliver([envelope("card.transaction_settled", json.loads(m)["data"]) for m in live])
    bootstrap_sources(app, "any://", harness.warehouse)
    assert harness.kpi("spend_by_currency") == [
        {"currency": "EUR", "billing_currency": "DKK", "billing_amount": "223.80"}
    ]


def test_a_failing_source_is_named_and_what_came_before_stays() -> None:
    @bootstrap_source()
    def broken(location: str) -> Iterator[SourceEvent]:
        yield transaction("t-1")
        yield transaction("t-2")
        raise OSError("the database went away")

    app = with_sources(broken)
    harness = Harness(app)
    with pytest.raises(OSError, match="went away") as raised:
        bootstrap_sources(app, "any://", harness.warehouse, batch_size=1)
    assert "while reading bootstrap source 'broken'" in raised.value.__notes__
    assert len(harness.rows("fact_card_transaction")) == 2
