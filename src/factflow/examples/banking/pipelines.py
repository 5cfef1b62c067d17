"""Pipelines from the banking events to the model, and the consumers that run them.

Every map here is a projection (`project`): the row's fields are the event's fields of the same
names, so a bootstrap runs them column by column over whole batches."""

from __future__ import annotations

from typing import TypeVar

from factflow.model.declare import Dimension, Event
from factflow.pipeline.app import Consumer
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.projection import Projection, project
from factflow.pipeline.steps import ensure_dimensions, insert_first, update_dimension

from .events import (
    AccountOpened,
    BalanceUpdated,
    CardIssued,
    GoalCreated,
    GoalDeleted,
    TransactionSettled,
    UserCreated,
    UserUpdated,
)
from .model import Account, AccountBalanceChange, Card, CardTransaction, Goal, User

__all__ = ["CONSUMERS"]

# The maps, by name (tests and a team's own pipelines reuse them).
user_from_created = project(User).bound(UserCreated)
# A user update leaves out what did not change: the projection makes it None, "unchanged".
user_from_updated = project(User).bound(UserUpdated)
account_from_opened = project(Account).bound(AccountOpened)
balance_change = project(AccountBalanceChange).bound(BalanceUpdated)
card_from_issued = project(Card).bound(CardIssued)
card_transaction = project(CardTransaction).bound(TransactionSettled)
goal_from_created = project(Goal, constants={"deleted": False}).bound(GoalCreated)
goal_from_deleted = project(Goal, constants={"deleted": True}).bound(GoalDeleted)


P = TypeVar("P", bound=Event)


def _dimension_pipeline(event: type[P], projection: Projection) -> Pipeline[P]:
    """Project, make the dimensions it refers to exist, record the change."""
    dimension = projection.row_class
    assert issubclass(dimension, Dimension)
    return Pipeline(event).map(projection).then(ensure_dimensions).then(update_dimension(dimension))


CONSUMERS = (
    Consumer("user")
    .pipe(UserCreated, Pipeline(UserCreated).map(user_from_created).then(update_dimension(User)))
    .pipe(UserUpdated, Pipeline(UserUpdated).map(user_from_updated).then(update_dimension(User))),
    Consumer("account")
    .pipe(AccountOpened, _dimension_pipeline(AccountOpened, account_from_opened))
    .pipe(
        BalanceUpdated,
        Pipeline(BalanceUpdated)
        .map(balance_change)
        .then(ensure_dimensions)
        .then(insert_first(AccountBalanceChange)),
    ),
    Consumer("card")
    .pipe(CardIssued, _dimension_pipeline(CardIssued, card_from_issued))
    .pipe(
        TransactionSettled,
        Pipeline(TransactionSettled)
        .map(card_transaction)
        .then(ensure_dimensions)
        .then(insert_first(CardTransaction)),
    ),
    Consumer("goal")
    .pipe(GoalCreated, _dimension_pipeline(GoalCreated, goal_from_created))
    .pipe(GoalDeleted, _dimension_pipeline(GoalDeleted, goal_from_deleted)),
)
