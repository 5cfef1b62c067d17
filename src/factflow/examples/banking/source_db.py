"""Write the banking services' own tables (see `services.py`) into a PostgreSQL database.

`factflow simulate --to postgresql://…` fills an empty database (or `?schema=NAME`) with the
state one simulation leaves behind, for the banking app's bootstrap sources to read back. All of
it is written in one transaction with `COPY`, transactions in batches while the simulation runs;
keys are added after loading, which is faster than checking them row by row.

>>> with SourceDatabase("postgresql://postgres@localhost/bank") as database:
...     state = ServiceState(database.add_transaction)
...     for _ in simulate(options, record=state.record):
...         pass
...     counts = database.finish(state)
"""

from __future__ import annotations

from typing import Final

from factflow._closing import ClosesOnExit
from factflow._urls import redact
from factflow.errors import ConfigurationError

from ._postgres import connect
from .services import COLUMNS, Row, ServiceState

__all__ = ["DDL", "SourceDatabase"]

_TIME = "timestamptz NOT NULL"
_TYPES: Final = {
    "users": {"created_at": _TIME, "updated_at": _TIME},
    "accounts": {
        "balance": "numeric",
        "available": "numeric",
        "usable": "numeric",
        "created_at": _TIME,
        "updated_at": _TIME,
    },
    "cards": {"created_at": _TIME},
    "transactions": {"amount": "numeric NOT NULL", "billing_amount": "numeric NOT NULL",
                     "created_at": _TIME},
    "goals": {"target_amount": "numeric NOT NULL", "created_at": _TIME, "updated_at": _TIME,
              "deleted_at": "timestamptz"},
}  # fmt: skip

#: CREATE TABLE statements, in the column order of `services.COLUMNS`; other columns are text.
DDL: Final = {
    table: f"CREATE TABLE {table} ("
    + ", ".join(f"{c} {_TYPES[table].get(c, 'text NOT NULL')}" for c in columns)
    + ")"
    for table, columns in COLUMNS.items()
}

#: Rows per COPY of transactions while the simulation runs.
_BATCH = 20_000


class SourceDatabase(ClosesOnExit):
    """The services' tables in the PostgreSQL database at `url`, filled in one transaction.

    Raises `ConfigurationError` if the database cannot be reached or already holds one of the
    tables (nothing of a real service is ever overwritten).
    """

    def __init__(self, url: str) -> None:
        import psycopg

        self._url = url
        self._connection = connect(url, read_only=False)
        self._pending: list[Row] = []
        try:
            self._connection.execute(";".join(DDL.values()))
        except psycopg.errors.DuplicateTable as error:
            self._connection.close()
            raise ConfigurationError(
                f"{redact(url)} already holds a table of the banking services "
                f"({error.diag.message_primary}): simulate into an empty database or schema "
                f"(add ?schema=NAME to the URL), or drop the tables {', '.join(DDL)} first"
            ) from None
        except BaseException:
            self._connection.close()
            raise

    def add_transaction(self, row: Row) -> None:
        """Keep one row of `transactions`; written in batches."""
        self._pending.append(row)
        if len(self._pending) >= _BATCH:
            self._copy("transactions", self._pending)
            self._pending = []

    def finish(self, state: ServiceState) -> dict[str, int]:
        """Write the rest, add the keys and commit; returns the rows per table."""
        self._copy("transactions", self._pending)
        self._pending = []
        counts = {"transactions": state.transactions}
        for table in ("users", "accounts", "cards", "goals"):
            rows = state.rows(table)
            self._copy(table, rows)
            counts[table] = len(rows)
        for table, columns in COLUMNS.items():
            self._connection.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({columns[0]})")
        self._connection.commit()
        return {table: counts[table] for table in COLUMNS}

    def close(self) -> None:
        """Close the connection; what `finish` did not commit is rolled back."""
        self._connection.close()

    def _copy(self, table: str, rows: list[Row]) -> None:
        if not rows:
            return
        statement = f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN"
        with (
            self._connection.cursor() as cursor,
            cursor.copy(statement) as copy,
        ):
            for row in rows:
                copy.write_row(row)
