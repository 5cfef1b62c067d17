"""The banking app's bootstrap sources: the services' own tables (`services.py`) read back as the
events those services publish, with stable natural keys and the business times they kept.

`factflow bootstrap --app factflow.examples.banking --from postgresql://…/bank --warehouse …`
runs them. What current state cannot give back, they do not make up (docs/bootstrap.md):

* a user changed since creation is one `user_updated` at `updated_at` with the current country
  and segment; the earlier values (and so a `user_created`) are gone from the `users` table;
* balances are not replayed: `AccountBalanceChange` facts are keyed by envelope id, so a
  balance replayed under another id than the live stream's would count twice;
* a deleted goal is its `goal_created` and its `goal_deleted` (the table keeps `deleted_at`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

from factflow._urls import redact
from factflow.errors import ConfigurationError
from factflow.model.types import Money
from factflow.pipeline.sources import BootstrapSource, SourceEvent, bootstrap_source

from ._postgres import connect
from .events import (
    AccountOpened,
    CardIssued,
    GoalCreated,
    GoalDeleted,
    TransactionSettled,
    UserCreated,
    UserUpdated,
)

__all__ = ["SOURCES", "accounts", "cards", "goals", "transactions", "users"]

#: Rows fetched per round trip from the server-side cursor: bounded memory, few round trips.
_FETCH = 10_000


def _rows(location: str, table: str, columns: str) -> Iterator[tuple[Any, ...]]:
    """Every row of `table`, in key order (so that positions mean the same on every run)."""
    import psycopg

    connection = connect(location, read_only=True)
    try:
        with connection.cursor(name=f"factflow_bootstrap_{table}") as cursor:
            cursor.itersize = _FETCH
            try:
                # Fixed text: the table and column names are this module's own.
                cursor.execute(f"SELECT {columns} FROM {table} ORDER BY 1")
            except psycopg.errors.UndefinedTable:
                raise ConfigurationError(
                    f"{redact(location)} has no table {table!r}: point --from at the banking "
                    "services' database, or fill one with `factflow simulate --to URL`"
                ) from None
            yield from cursor
    finally:
        connection.close()


@bootstrap_source(service="user-service")
def users(location: str) -> Iterator[SourceEvent]:
    """A user never changed as its `user_created`; a changed one as the `user_updated` that
    left its current country and segment (the earlier values are not kept)."""
    for user_id, country, segment, created_at, updated_at in _rows(
        location, "users", "user_id, country, segment, created_at, updated_at"
    ):
        if updated_at == created_at:
            yield SourceEvent(
                UserCreated(user_id=user_id, country=country, segment=segment),
                key=user_id,
                occurred_at=created_at,
            )
        else:
            yield SourceEvent(
                UserUpdated(user_id=user_id, country=country, segment=segment),
                key=f"{user_id}@{updated_at.astimezone(UTC).isoformat()}",
                occurred_at=updated_at,
            )


@bootstrap_source(service="account-service")
def accounts(location: str) -> Iterator[SourceEvent]:
    """Every account as its `account_opened` (balances are not replayed: see the module)."""
    for account_id, user_id, currency, created_at in _rows(
        location, "accounts", "account_id, user_id, currency, created_at"
    ):
        yield SourceEvent(
            AccountOpened(account_id=account_id, user_id=user_id, currency=currency),
            key=account_id,
            occurred_at=created_at,
        )


@bootstrap_source(service="card-service")
def cards(location: str) -> Iterator[SourceEvent]:
    """Every card as its `card_issued`."""
    for card_id, user_id, account_id, product, created_at in _rows(
        location, "cards", "card_id, user_id, account_id, product, created_at"
    ):
        yield SourceEvent(
            CardIssued(card_id=card_id, user_id=user_id, account_id=account_id, product=product),
            key=card_id,
            occurred_at=created_at,
        )


@bootstrap_source(service="card-service")
def transactions(location: str) -> Iterator[SourceEvent]:
    """Every settled transaction as its `transaction_settled`, at the time it settled."""
    columns = (
        "transaction_id, card_id, user_id, amount, currency, billing_amount, billing_currency, "
        "merchant, merchant_category, merchant_country, created_at"
    )
    for row in _rows(location, "transactions", columns):
        transaction_id, card_id, user_id, amount, currency, billing_amount = row[:6]
        billing_currency, merchant, merchant_category, merchant_country, created_at = row[6:]
        yield SourceEvent(
            TransactionSettled(
                transaction_id=transaction_id,
                card_id=card_id,
                user_id=user_id,
                amount=Money(amount),
                currency=currency,
                billing_amount=Money(billing_amount),
                billing_currency=billing_currency,
                merchant=merchant,
                merchant_category=merchant_category,
                merchant_country=merchant_country,
            ),
            key=transaction_id,
            occurred_at=created_at,
        )


@bootstrap_source(service="goal-service")
def goals(location: str) -> Iterator[SourceEvent]:
    """Every goal as its `goal_created`, and a deleted one also as its `goal_deleted`."""
    columns = "goal_id, user_id, name, category, target_amount, currency, created_at, deleted_at"
    for goal_id, user_id, name, category, target, currency, created_at, deleted_at in _rows(
        location, "goals", columns
    ):
        yield SourceEvent(
            GoalCreated(
                goal_id=goal_id,
                user_id=user_id,
                name=name,
                category=category,
                target_amount=Money(target),
                currency=currency,
            ),
            key=goal_id,
            occurred_at=created_at,
        )
        if deleted_at is not None:
            yield SourceEvent(
                GoalDeleted(goal_id=goal_id, user_id=user_id), key=goal_id, occurred_at=deleted_at
            )


#: In the order a bootstrap runs them (any order gives the same model).
SOURCES: tuple[BootstrapSource, ...] = (users, accounts, cards, goals, transactions)
