"""What the bank's services keep in their own databases: current state, folded from their events.

Each service keeps its things as they are now, with the times the service recorded: when a thing
was created and when it last changed. That is all a bootstrap source can read back later, so it
decides which KPIs a bootstrap from these tables can recover (docs/bootstrap.md):

| table | one row per | kept | lost |
|---|---|---|---|
| `users` | user | current `country` and `segment`, `created_at`, `updated_at` (last change) | earlier countries and segments |
| `accounts` | account | `user_id`, `currency`, the latest reported balance (`balance`, `available`, `usable`; NULL before the first report), `created_at`, `updated_at` | earlier balances |
| `cards` | card | `user_id`, `account_id`, `product`, `created_at` | nothing |
| `transactions` | settled transaction | every field of the event, `created_at` (settled) | nothing |
| `goals` | goal, deleted ones too | every field, `created_at`, `updated_at`, `deleted_at` (soft delete: NULL while it exists) | nothing |

Rows are tuples in the tables' column order (`COLUMNS`), with values as text the way the events
carry them (`"-130.00"`, `"2026-03-01T12:34:56.123Z"`) and None for NULL, ready for `COPY`.
"""  # noqa: E501 - the table above reads best unwrapped

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["COLUMNS", "Row", "ServiceState"]

#: One row of a service table, in the column order of `COLUMNS`.
Row = tuple[str | None, ...]

COLUMNS: Final = {
    "users": ("user_id", "country", "segment", "created_at", "updated_at"),
    "accounts": (
        "account_id", "user_id", "currency", "balance", "available", "usable",
        "created_at", "updated_at",
    ),
    "cards": ("card_id", "user_id", "account_id", "product", "created_at"),
    "transactions": (
        "transaction_id", "card_id", "user_id", "amount", "currency", "billing_amount",
        "billing_currency", "merchant", "merchant_category", "merchant_country", "created_at",
    ),
    "goals": (
        "goal_id", "user_id", "name", "category", "target_amount", "currency",
        "created_at", "updated_at", "deleted_at",
    ),
}  # fmt: skip

_TRANSACTION_FIELDS: Final = COLUMNS["transactions"][:-1]


class ServiceState:
    """The services' tables after every business event passed to `record`, in time order.

    Transactions only ever grow, so they are not kept: each one goes to `on_transaction` as its
    row as soon as it settles (to be written while the simulation runs). The other tables are
    small next to them and are kept in memory until `rows` is asked for.
    """

    def __init__(self, on_transaction: Callable[[Row], None]) -> None:
        self.on_transaction = on_transaction
        self.transactions = 0
        self._users: dict[str, list[str | None]] = {}
        self._accounts: dict[str, list[str | None]] = {}
        self._cards: dict[str, Row] = {}
        self._goals: dict[str, list[str | None]] = {}

    def record(self, kind: str, occurred_at: str, data: dict[str, Any]) -> None:
        """Apply one business event (a `factflow.examples.banking.simulator.Recorder`).

        Raises `ValueError` for a type the bank does not publish, `KeyError` for an event about
        a thing not created before it (the simulator never emits one).
        """
        if kind == "card.transaction_settled":  # most events: first
            self.on_transaction((*map(data.__getitem__, _TRANSACTION_FIELDS), occurred_at))
            self.transactions += 1
        elif kind == "account.balance_updated":
            account = self._accounts[data["account_id"]]
            account[3:6] = data["balance"], data["available"], data["usable"]
            account[7] = occurred_at
        elif kind == "user.user_created":
            user_id = data["user_id"]
            self._users[user_id] = [
                user_id, data["country"], data["segment"], occurred_at, occurred_at,
            ]  # fmt: skip
        elif kind == "user.user_updated":
            user = self._users[data["user_id"]]
            user[1] = data.get("country", user[1])
            user[2] = data.get("segment", user[2])
            user[4] = occurred_at
        elif kind == "account.account_opened":
            account_id = data["account_id"]
            self._accounts[account_id] = [
                account_id, data["user_id"], data["currency"], None, None, None,
                occurred_at, occurred_at,
            ]  # fmt: skip
        elif kind == "card.card_issued":
            card_id = data["card_id"]
            self._cards[card_id] = (
                card_id, data["user_id"], data["account_id"], data["product"], occurred_at,
            )  # fmt: skip
        elif kind == "goal.goal_created":
            goal_id = data["goal_id"]
            self._goals[goal_id] = [
                goal_id, data["user_id"], data["name"], data["category"],
                data["target_amount"], data["currency"], occurred_at, occurred_at, None,
            ]  # fmt: skip
        elif kind == "goal.goal_deleted":
            goal = self._goals[data["goal_id"]]
            goal[7] = goal[8] = occurred_at  # soft delete: the row stays, with deleted_at
        else:
            raise ValueError(f"the bank's services publish no {kind!r} events")

    def rows(self, table: str) -> list[Row]:
        """The current rows of `table` (any of `COLUMNS` but transactions), in creation order."""
        kept: dict[str, Any] = {
            "users": self._users,
            "accounts": self._accounts,
            "cards": self._cards,
            "goals": self._goals,
        }
        if table not in kept:
            raise ValueError(
                f"no kept table {table!r}: transactions go to on_transaction; "
                "kept: users, accounts, cards, goals"
            )
        return [tuple(row) for row in kept[table].values()]
