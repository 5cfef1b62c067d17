"""Parquet event files: one row per envelope, read and written in bounded batches.

The layout, one column per envelope field (extra columns are ignored when reading):

| column | Arrow type | holds |
|---|---|---|
| `id`, `type`, `source` | `string` | as in the envelope |
| `occurred_at` | `timestamp[us, tz=UTC]` (any unit and zone) or RFC 3339 `string` | business time |
| `version` | `int32` (any integer type) | the schema version of `data` |
| `data` | `string` (or `binary`): JSON text | the payload, exactly as in the envelope |

`data` stays JSON text rather than a struct: each event type has fields of its own, and a struct
of all of them would turn "field absent" into "field null", which the contract tells apart
(`user_updated` leaves out what did not change). A file with a struct column can be converted,
for example with DuckDB: `COPY (SELECT * REPLACE (to_json(data) AS data) FROM 'in.parquet') TO …`.

Reading turns each row back into the raw JSON envelope, so a row that breaks the contract (a
null, invalid JSON in `data`) reaches the runtime and becomes a dead letter with its reason,
as a broken line of a `.jsonl` file does. A file whose columns do not fit the layout is refused
as a whole, before anything is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from factflow.errors import DecodeError

__all__ = ["SCHEMA", "read_parquet", "write_parquet"]

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("version", pa.int32(), nullable=False),
        pa.field("data", pa.string(), nullable=False),
    ]
)
COLUMNS = tuple(SCHEMA.names)

#: Rows per row group when writing: a reader holds about one row group in memory at a time.
ROW_GROUP = 65_536

_TEXT = (pa.types.is_string, pa.types.is_large_string)
_ACCEPTED: dict[str, tuple[str, tuple[Callable[[pa.DataType], bool], ...]]] = {
    "id": ("string", _TEXT),
    "type": ("string", _TEXT),
    "source": ("string", _TEXT),
    "occurred_at": (
        "a timestamp with a time zone, or an RFC 3339 string",
        (lambda t: pa.types.is_timestamp(t) and t.tz is not None, *_TEXT),
    ),
    "version": ("an integer", (pa.types.is_integer,)),
    "data": (
        "JSON text as string or binary",
        (*_TEXT, pa.types.is_binary, pa.types.is_large_binary),
    ),
}
# strftime prints as many decimals as the unit has; trimming whole groups of zeros gives
# back the usual spelling (`…03.412Z` for milliseconds) without losing a digit.
_TRAILING_ZEROS = {
    "us": [(r"(\.\d{3})000Z$", r"\1Z")],
    "ns": [(r"(\.\d{3})000000Z$", r"\1Z"), (r"(\.\d{6})000Z$", r"\1Z")],
}


def read_parquet(
    path: Path, batch_size: int, on_progress: Callable[[int], None] | None = None
) -> Iterator[list[bytes]]:
    """Yield the rows of the Parquet event file at `path` as raw envelopes, `batch_size` at once.

    Reads batch by batch (never the whole file), so memory stays about one row group. The last
    batch may be shorter. `on_progress`, if given, receives an estimate of the bytes of the file
    read so far (its size times the share of rows read), as `read_lines` reports it.

    Raises `ValueError` if `batch_size` is below 1, `OSError` if the file cannot be read, and
    `DecodeError` if it is not Parquet or its columns do not fit the layout of this module.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
    path = Path(path)
    size = path.stat().st_size
    try:
        # Pre-buffering (the default) reads ahead the column chunks of every row group asked
        # for, here the whole file; without it memory is one row group, whatever the file size.
        file = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise DecodeError(f"{path}: not a Parquet file ({error})") from None
    with file:
        _check_columns(path, file.schema_arrow)
        total = max(file.metadata.num_rows, 1)
        done = 0
        for batch in file.iter_batches(batch_size=batch_size, columns=list(COLUMNS)):
            envelopes = _envelopes(batch)
            done += batch.num_rows
            if on_progress is not None:
                on_progress(size * done // total)
            yield envelopes


def write_parquet(file: BinaryIO, messages: Iterable[bytes]) -> int:
    """Write `messages` (raw JSON envelopes) to `file` as Parquet rows; returns how many.

    Raises `ValueError` for a message that is not an envelope the columns can hold (not JSON,
    a field missing or of another type, `occurred_at` without offset): a Parquet file keeps
    fields, not bytes, so invalid messages belong in `.jsonl` files.
    """
    count = 0
    with pq.ParquetWriter(file, SCHEMA, compression="zstd") as writer:
        pending: list[_Row] = []
        for message in messages:
            pending.append(_row(message, count + len(pending)))
            if len(pending) == ROW_GROUP:
                writer.write_batch(_record_batch(pending))
                count += len(pending)
                pending = []
        if pending:
            writer.write_batch(_record_batch(pending))
            count += len(pending)
    return count


# -- reading ----------------------------------------------------------------------------------


def _check_columns(path: Path, schema: pa.Schema) -> None:
    missing = [name for name in COLUMNS if name not in schema.names]
    if missing:
        raise DecodeError(
            f"{path}: a Parquet event file needs the columns {', '.join(COLUMNS)} (one row per "
            f"envelope); it lacks {', '.join(missing)}"
        )
    for name, (expected, accepts) in _ACCEPTED.items():
        column_type = schema.field(name).type
        if not any(accept(column_type) for accept in accepts):
            hint = ""
            if name == "data" and pa.types.is_struct(column_type):
                hint = "; store the payload as JSON text (DuckDB: to_json(data))"
            elif name == "occurred_at" and pa.types.is_timestamp(column_type):
                hint = "; a timestamp without time zone is not an instant (cast it to UTC)"
            raise DecodeError(
                f"{path}: column {name!r} must be {expected}, got {column_type}{hint}"
            )


def _envelopes(batch: pa.RecordBatch) -> list[bytes]:
    encode = msgspec.json.encode
    ids, types, sources, versions = (
        [encode(value) for value in batch.column(name).to_pylist()]
        for name in ("id", "type", "source", "version")
    )
    times = [encode(value) for value in _rfc3339(batch.column("occurred_at")).to_pylist()]
    data = [
        b"null" if value is None else value.encode() if isinstance(value, str) else value
        for value in batch.column("data").to_pylist()
    ]
    return [
        b'{"id":%b,"type":%b,"source":%b,"occurred_at":%b,"version":%b,"data":%b}' % row
        for row in zip(ids, types, sources, times, versions, data, strict=True)
    ]


def _rfc3339(column: pa.Array) -> pa.Array:
    """Timestamps as RFC 3339 text in UTC (`2026-03-01T12:34:56.123Z`); text as it is."""
    if not pa.types.is_timestamp(column.type):
        return column
    unit = column.type.unit
    text = pc.strftime(column.cast(pa.timestamp(unit, tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
    for pattern, replacement in _TRAILING_ZEROS.get(unit, []):
        text = pc.replace_substring_regex(text, pattern=pattern, replacement=replacement)
    return text


# -- writing ----------------------------------------------------------------------------------


class _Row(msgspec.Struct, frozen=True, gc=False):
    id: str
    type: str
    source: str
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    version: int
    data: msgspec.Raw


_decoder = msgspec.json.Decoder(_Row)


def _row(message: bytes, number: int) -> _Row:
    try:
        return _decoder.decode(message)
    except msgspec.DecodeError as error:
        raise ValueError(
            f"message {number} cannot be written to Parquet: {error} ({bytes(message)[:60]!r}). "
            "Parquet keeps envelopes field by field, so only valid envelopes fit; write a "
            ".jsonl file to keep invalid messages too"
        ) from None


def _record_batch(rows: list[_Row]) -> pa.RecordBatch:
    columns: dict[str, Any] = {
        "id": [r.id for r in rows],
        "type": [r.type for r in rows],
        "source": [r.source for r in rows],
        "occurred_at": [r.occurred_at for r in rows],
        "version": [r.version for r in rows],
        "data": [bytes(r.data) for r in rows],
    }
    return pa.RecordBatch.from_arrays(
        [pa.array(columns[field.name], field.type) for field in SCHEMA], schema=SCHEMA
    )
