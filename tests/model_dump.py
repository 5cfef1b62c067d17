"""A comparable dump of the banking model's tables, for order and duplication tests."""

from factflow.examples.banking import app
from factflow.model.schema import MEMBER_KEY
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
            _comparable(table, c)
            for c in harness.warehouse.query(f"SELECT * FROM {table} LIMIT 0").columns
            # Which envelope a fact came from, and the numbers members got, depend on the order.
            if c not in ("event_id", MEMBER_KEY)
        ]
        listed = ", ".join(columns)
        dump[table] = harness.warehouse.query(f"SELECT {listed} FROM {table} ORDER BY ALL").rows
    dump["dead letters"] = sorted((d.id,) for d in harness.dead_letters())
    harness.close()
    return dump


def _comparable(table: str, column: str) -> str:
    """A fact's member key as the natural key of the member holding that number: the same
    whatever numbers the members got."""
    for fact in app.schema.facts:
        for field, key_column in fact.member_keys.items():
            if (fact.table.name, column) == (table, key_column):
                dim = app.schema.dimension(fact.references[field])
                return (
                    f"(SELECT {dim.key} FROM {dim.current.name} AS member "
                    f"WHERE member.{MEMBER_KEY} = {table}.{column}) AS {column}"
                )
    return column
