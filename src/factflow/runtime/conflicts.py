"""One envelope id, two contents: find the envelopes that reuse an id with other values.

An envelope id names one envelope (banking.md): delivering it again must change nothing, and
insert-first makes that so. A *different* envelope under an id already used (a publisher that
"corrects" an event by republishing it under the same id, or reuses ids) would be absorbed
silently by insert-first, the second version neither written nor set aside. These checks make
it a dead letter that says which values differ, so that someone can act on it:

* `conflicts_in_batch`: two envelopes of one batch with the same id and different contents; the
  first to arrive is kept;
* `stored_conflicts`: a row the batch would insert whose key and envelope id are already stored
  with other values; the stored row is kept.

Only rows of the same key are compared: an id reused for another key (a second transaction
under the id of the first) is two rows, each kept, nothing overwritten.

`stored_conflicts` is a lookup per table, paid only where needed: `BatchProcessor` has the write
check (`ChangeSet.check_stored_ids`), and the warehouse, when first-wins skipped a key of the
batch, compares those rows with the stored ones in the same transaction (after waiting for a
concurrent writer of the same key, on PostgreSQL). Only if one differs is the transaction rolled
back, the batch looked up here, and the rest written again (`factflow.runtime.writer`). A batch
that reuses an id within itself is looked up before its write, since which of its versions to
keep depends on what is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from factflow.model.envelope import Envelope
from factflow.model.schema import ColumnType, Schema, Table
from factflow.model.types import encode_hook
from factflow.pipeline.changes import ChangeSet, RowBlock
from factflow.warehouse.base import Warehouse
from factflow.warehouse.ddl import quote

__all__ = ["conflicts_in_batch", "drop_envelopes", "stored_conflicts"]

_CHUNK = 10_000  # keys per lookup query (one array parameter)
_SHOWN = 3  # differing fields named in a reason


def conflicts_in_batch(envelopes: Sequence[Envelope[Any]]) -> list[tuple[Envelope[Any], str]]:
    """The envelopes that reuse the id of an earlier envelope of the batch with other contents
    (type, version, `occurred_at` or data; `source` is informational), each with its reason."""
    first: dict[str, Envelope[Any]] = {}
    found: list[tuple[Envelope[Any], str]] = []
    for envelope in envelopes:
        earlier = first.setdefault(envelope.id, envelope)
        if earlier is envelope or _content(earlier) == _content(envelope):
            continue
        differences = _differences(_as_dict(earlier), _as_dict(envelope))
        found.append(
            (
                envelope,
                f"envelope id {envelope.id!r} reused with other contents in the same batch "
                f"({differences}); the first was kept. An envelope id names one envelope: "
                "publish a changed event under a new id",
            )
        )
    return found


def stored_conflicts(
    schema: Schema, changes: ChangeSet, warehouse: Warehouse
) -> list[tuple[Envelope[Any], str]]:
    """The envelopes of `changes` whose rows are already stored under the same key and envelope
    id with other values, each with its reason (one query per table and 10 000 keys)."""
    tables = [(f.table, changes.facts.get(f.name)) for f in schema.facts]
    tables += [(d.changes, changes.dimension_changes.get(d.name)) for d in schema.dimensions]
    found: dict[int, tuple[Envelope[Any], str]] = {}
    for table, rows in tables:
        if not isinstance(rows, RowBlock) or not rows:
            continue
        stored = _stored_rows(table, rows, warehouse)
        if not stored:
            continue
        key_at = [table.column_names.index(k) for k in table.key]
        event_at = table.column_names.index("event_id")
        for row, envelope in zip(rows, rows.envelopes, strict=True):
            old = stored.get(tuple(row[i] for i in key_at))
            if old is None or old[event_at] != envelope.id or id(envelope) in found:
                continue
            differing = [
                f"{name}: stored {_show(before)}, this one {_show(after)}"
                for name, before, after in zip(table.column_names, old, row, strict=True)
                if _normal(before) != _normal(after)
            ]
            if differing:
                found[id(envelope)] = (
                    envelope,
                    f"envelope id {envelope.id!r} is already stored in {table.name} with other "
                    f"values ({'; '.join(differing[:_SHOWN])}); the stored row was kept. An "
                    "envelope id names one envelope: publish a changed event under a new id",
                )
    return list(found.values())


def drop_envelopes(changes: ChangeSet, envelopes: Iterable[Envelope[Any]]) -> None:
    """Take every row staged from `envelopes` out of `changes` (they became dead letters)."""
    gone = {id(e) for e in envelopes}
    for staged in (changes.facts, changes.dimension_changes):
        for table, rows in list(staged.items()):
            if isinstance(rows, RowBlock) and any(id(e) in gone for e in rows.envelopes):
                kept = RowBlock(rows.fields)
                for record, envelope in zip(rows.records, rows.envelopes, strict=True):
                    if id(envelope) not in gone:
                        kept.append(record, envelope)
                staged[table] = kept
                changes.staged.clear()  # converted from the rows before: convert them again


def _stored_rows(
    table: Table, rows: RowBlock, warehouse: Warehouse
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The stored rows of `table` whose first key column is among those of `rows`, by key."""
    first = table.key[0]
    at = table.column_names.index(first)
    keys = sorted({value for value in rows.column(at) if value is not None})
    column = table.columns[at]
    array = f"{warehouse.dialect.types[column.type]}[]"
    columns = ", ".join(map(quote, table.column_names))
    key_at = [table.column_names.index(k) for k in table.key]
    ids = sorted({envelope.id for envelope in rows.envelopes})
    texts = f"{warehouse.dialect.types[ColumnType.TEXT]}[]"
    stored: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        # Only rows of the batch's envelope ids can conflict: the result stays tiny. The BETWEEN
        # lets DuckDB skip row groups by their min/max (it keeps no key index).
        result = warehouse.query(
            f"SELECT {columns} FROM {quote(table.name)} WHERE {quote(first)} BETWEEN ? AND ? "
            f"AND {quote(first)} IN (SELECT unnest(CAST(? AS {array}))) "
            f"AND event_id IN (SELECT unnest(CAST(? AS {texts})))",
            (chunk[0], chunk[-1], chunk, ids),
        )
        for row in result.rows:
            stored[tuple(row[i] for i in key_at)] = row
    return stored


def _content(envelope: Envelope[Any]) -> tuple[Any, ...]:
    return (envelope.type, envelope.version, envelope.occurred_at, envelope.data)


def _as_dict(envelope: Envelope[Any]) -> dict[str, Any]:
    document = msgspec.to_builtins(envelope, builtin_types=(datetime,), enc_hook=encode_hook)
    document.pop("source", None)
    data = document.pop("data", None)
    if isinstance(data, dict):
        document |= {f"data.{k}": v for k, v in data.items()}
    return dict(document)


def _differences(before: dict[str, Any], after: dict[str, Any]) -> str:
    names = [n for n in dict.fromkeys([*before, *after]) if before.get(n) != after.get(n)]
    shown = [f"{n}: {_show(before.get(n))} then {_show(after.get(n))}" for n in names[:_SHOWN]]
    return "; ".join(shown) + (f"; {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _normal(value: Any) -> Any:
    """Values as both backends and the pipelines give them: UTC instants, exact numbers."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return str(_normal(value).isoformat())
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)
