from datetime import UTC, datetime
from typing import Any

import pytest

from factflow import DeclarationError, Pipeline, project, update_dimension
from factflow.examples.banking.events import GoalDeleted, TransactionSettled, UserUpdated
from factflow.examples.banking.model import Account, CardTransaction, Goal, User
from factflow.model.envelope import Envelope
from factflow.model.types import Money


def envelope_of(data: Any) -> Envelope[Any]:
    return Envelope(
        id="e-1",
        type=type(data).__factflow_event__.type,
        source="test",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        version=1,
        data=data,
    )


SETTLED = TransactionSettled(
    transaction_id="t-1",
    card_id="c-1",
    user_id="u-1",
    amount=Money("10.00"),
    currency="EUR",
    billing_amount=Money("74.60"),
    billing_currency="DKK",
    merchant="Hotel",
    merchant_category="travel",
    merchant_country="DE",
)


def test_a_projection_copies_the_fields_of_the_same_names() -> None:
    row = project(CardTransaction)(envelope_of(SETTLED))
    assert row == CardTransaction(
        transaction_id="t-1",
        card_id="c-1",
        user_id="u-1",
        amount=Money("10.00"),
        currency="EUR",
        billing_amount=Money("74.60"),
        billing_currency="DKK",
        merchant="Hotel",
        merchant_category="travel",
        merchant_country="DE",
    )


def test_a_field_left_out_of_the_event_becomes_none_that_is_unchanged() -> None:
    row = project(User).bound(UserUpdated)(envelope_of(UserUpdated(user_id="u-1", segment="plus")))
    assert row == User(user_id="u-1", country=None, segment="plus")


def test_renamed_fields_and_constants() -> None:
    projection = project(Account, rename={"account_id": "card_id"}, constants={"currency": "EUR"})
    row = projection.bound(TransactionSettled)(envelope_of(SETTLED))
    assert row == Account(account_id="c-1", user_id="u-1", currency="EUR")


def test_row_fields_the_event_lacks_keep_their_defaults() -> None:
    projection = project(Goal, constants={"deleted": True}).bound(GoalDeleted)
    row = projection(envelope_of(GoalDeleted(goal_id="g-1", user_id="u-1")))
    assert row == Goal(goal_id="g-1", user_id="u-1", deleted=True)
    assert projection.sources == {"goal_id": "goal_id", "user_id": "user_id"}


def test_a_pipeline_refuses_a_projection_its_event_cannot_fill() -> None:
    with pytest.raises(
        DeclarationError, match=r"of GoalDeleted: the event has no field for card_id, amount, "
    ):
        Pipeline(GoalDeleted).map(project(CardTransaction, rename={"transaction_id": "goal_id"}))
    with pytest.raises(DeclarationError, match=r"card_id \(from `account_id`\)"):
        Pipeline(TransactionSettled).map(project(CardTransaction, rename={"card_id": "account_id"}))


def test_a_projection_names_fields_its_row_does_not_have() -> None:
    with pytest.raises(DeclarationError, match=r"\['colour'\] are not fields of User"):
        project(User, constants={"colour": "red"})
    with pytest.raises(DeclarationError, match="both renamed and constant"):
        project(User, rename={"country": "x"}, constants={"country": "DE"})
    with pytest.raises(DeclarationError, match="not declared with @fact or @dimension"):
        project(UserUpdated)  # type: ignore[arg-type]


def test_a_projecting_pipeline_reads_like_its_steps() -> None:
    pipeline = Pipeline(UserUpdated).map(project(User)).then(update_dimension(User))
    assert repr(pipeline) == (
        "<Pipeline user.user_updated: map(project(User)) → update_dimension(User)>"
    )
