"""A comparable dump of the banking model's tables, for order and duplication tests."""

from factflow.examples.banking import app
from factflow.testing import Harness

MODEL_TABLES = [
    "fact_card_transaction",
    "fact_account_balance_change",
    "dim_user",
    "dim_user__history",
    "dim_account",
    "dim_card",
    "dim_goal",
]


def dump_model(messages: list[bytes], *, batch_size: int) -> dict[str, list[tuple[object, ...]]]:
    harness = Harness(app)
    harness.deliver(messages, batch_size=batch_size)
    dump = {}
    for table in MODEL_TABLES:
        columns = [
            c
            for c in harness.warehouse.query(f"SELECT * FROM {table} LIMIT 0").columns
            if c not in ("event_id",)
        ]  # which envelope a fact came from may differ
        listed = ", ".join(columns)
        dump[table] = harness.warehouse.query(f"SELECT {listed} FROM {table} ORDER BY ALL").rows
    dump["dead letters"] = sorted((d.id,) for d in harness.dead_letters())
    harness.close()
    return dump
