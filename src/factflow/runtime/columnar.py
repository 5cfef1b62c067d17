"""Batches decoded and mapped column by column: the fast path of a bootstrap.

A batch of a history is hundreds of thousands of envelopes. Decoding each into Python objects
and mapping each one costs about 5 µs per event in the interpreter, ten times what parsing the
same JSON into columns costs in C++. So where an event type's pipelines are all projections
(`factflow.pipeline.projection`) into facts and dimensions, `ColumnarProcessor` parses the
batch with Arrow's JSON reader, checks every envelope against the contract with vectorised
kernels, and builds each table's rows as Arrow columns (`ArrowRows`) that the warehouse writes
as they are.

The result is the one the per-event path (`BatchProcessor`) gives, by construction: a line is
taken column-wise only if it is plainly valid — parsed without complaint by a reader at least
as strict as msgspec, of a type and version taken column-wise, every field present with a value
of its declared kind, a timestamp in the strict RFC 3339 form, an envelope id no other line of
the batch carries — and every other line (bad, suspicious, unusual, or of a type with a
hand-written map) goes through `BatchProcessor`, which makes it rows or a dead letter with its
reason, exactly as it would have. Both halves end in one `ChangeSet`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from factflow.model.declare import Dimension, Event, meta_of
from factflow.model.schema import ColumnType, Schema, Table
from factflow.model.types import MONEY_PRECISION, MONEY_SCALE, Money
from factflow.pipeline.app import App
from factflow.pipeline.arrow import ARROW, UTC_MICROS, ArrowRows, arrow_table, utc_timestamps
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.changes import ChangeSet
from factflow.pipeline.projection import Projection
from factflow.pipeline.steps import MapStep, StoreStep, ensure_dimensions
from factflow.runtime.processor import BatchProcessor

__all__ = ["ColumnarProcessor"]

log = logging.getLogger("factflow.runtime")

_MONEY = rf"^-?[0-9]{{1,{MONEY_PRECISION - MONEY_SCALE}}}(\.[0-9]{{1,{MONEY_SCALE}}})?$"
#: The RFC 3339 timestamps taken column-wise: with a zone, at most microseconds, year 1000 on.
#: msgspec reads more (a lowercase `t`, nanoseconds); those lines take the per-event path.
_TIMESTAMP = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
#: Arrow parses a batch in blocks of this many bytes; a line must fit in one, so lines longer
#: than `_LONGEST` (rare: an event is a few hundred bytes) take the per-event path.
_BLOCK = 1 << 20
_LONGEST = _BLOCK // 2
#: A piece of a batch Arrow refuses is split in two until it is this small; then its lines
#: take the per-event path, which names what is wrong with each.
_SMALLEST_PIECE = 16
#: The envelope's columns a `_Part` keeps (beside its payload fields).
_ENVELOPE = ("id", "source", "occurred_at", "version")


@dataclass(frozen=True)
class _Field:
    """A payload field as the contract wants it on the wire."""

    wire: str  # the JSON name
    kind: str  # "text", "money" or "literal"
    required: bool
    values: tuple[str, ...] = ()  # a literal's allowed values
    unset: bool = False  # optional, and absent means UNSET: a JSON null is not allowed


@dataclass(frozen=True)
class _Output:
    """The rows one projection makes of an event type: for which table, under which name."""

    projection: Projection
    table: Table  # the table the rows go to (a dimension's change table)
    name: str  # the name in `ChangeSet.facts` or `ChangeSet.dimension_changes`
    dimension: bool
    #: With `ensure_dimensions`: row field → the dimension table its values must exist in.
    references: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Plan:
    """How the lines of one event type and version are checked and mapped column-wise."""

    type: str
    version: int
    fields: dict[str, _Field]  # by Python field name
    outputs: tuple[_Output, ...]

    @property
    def unset_fields(self) -> bool:
        """Whether a field may be left out (UNSET), but not be null."""
        return any(f.unset for f in self.fields.values())


class ColumnarProcessor(BatchProcessor):
    """A `BatchProcessor` that takes what it can of a batch column-wise (see the module).

    The event types whose pipelines all are `project(...)` maps followed only by
    `ensure_dimensions` and the steps storing the projected rows are taken column-wise; an app
    without such a type, or a batch of fewer than `COLUMN_WISE_FROM` messages, is processed
    exactly as by `BatchProcessor`. With a `warehouse`, a batch the write finds reusing a stored
    envelope id with other values (`ChangeSet.check_stored_ids`) is done again per event,
    which sets those envelopes aside: a publisher's mistake costs its batch that, no more.
    """

    #: Below this many messages the fixed cost of the column-wise path (tens of Arrow calls)
    #: outweighs what it saves.
    COLUMN_WISE_FROM = 64

    #: Lines parsed at once: a larger batch is parsed, checked and cut by type in slices of
    #: this many, then mapped whole, so the parser's copies of the lines (several times their
    #: size, briefly) stay those of a slice however large the batch a transaction writes.
    PARSED_AT_ONCE = 50_000

    def __init__(self, app: App, group: str | None = None, **options: Any) -> None:
        super().__init__(app, group, **options)
        self.plans: dict[str, _Plan] = {}
        for event_type, pipelines in self.routes.items():
            plan = _plan(event_type, pipelines, app.schema)
            if plan is not None:
                self.plans[event_type] = plan
        self._tables = {fact.name: fact.table for fact in self.schema.facts} | {
            dim.name: dim.changes for dim in self.schema.dimensions
        }
        fields = {f.wire: pa.string() for plan in self.plans.values() for f in plan.fields.values()}
        self._arrow_schema = pa.schema(
            [
                ("id", pa.string()),
                ("type", pa.string()),
                ("source", pa.string()),
                ("occurred_at", pa.string()),
                ("version", pa.int64()),
                ("data", pa.struct(list(fields.items()))),
            ]
        )
        self._parse_options = pj.ParseOptions(
            explicit_schema=self._arrow_schema, unexpected_field_behavior="ignore"
        )
        # One thread: the warehouse writes the previous batch meanwhile, on the other cores
        # (`factflow.warehouse.duckdb.writer_threads`). Arrow's parsing threads only competed
        # with it: on two cores a bootstrap of 10^6 events took 6.5 s against 7.0 with them,
        # 10 MB less at its peak; 10^5 events (two batches, little to overlap) 3 % longer.
        self._read_options = pj.ReadOptions(block_size=_BLOCK, use_threads=False)
        if self.plans:
            log.debug("taken column-wise: %s", ", ".join(sorted(self.plans)))

    def process(self, messages: Sequence[bytes]) -> ChangeSet:
        if not self.plans or len(messages) < self.COLUMN_WISE_FROM:
            return super().process(messages)
        rest: list[int] = []  # the indices of the lines left to the per-event path
        checked: list[_Part] = []
        for start in range(0, len(messages), self.PARSED_AT_ONCE):
            checked += self._checked_slice(messages, start, rest)
        # Over the whole batch: an id shared by lines of two slices is shared all the same.
        taken = _without_shared_ids(checked, messages, rest)
        del checked
        changes = ChangeSet()
        self._map(taken, changes)
        del taken
        if rest:
            self._merge(changes, super().process([messages[i] for i in sorted(rest)]))
        if self.warehouse is not None:
            changes.check_stored_ids = functools.partial(self._per_event_checked, messages)
        return changes

    def _checked_slice(self, messages: Sequence[bytes], start: int, rest: list[int]) -> list[_Part]:
        """The plainly valid rows of the `PARSED_AT_ONCE` lines of `messages` from `start`, by
        type, with their positions in `messages`; the others go to `rest`."""
        lines = messages[start : start + self.PARSED_AT_ONCE]
        left: list[int] = []  # as indices into `lines`
        joined, indices = self._screened(lines, left)
        pieces = self._parse(lines, joined, indices, left)
        del joined  # each copy of the lines is let go once the next is made: flat memory
        parts = _by_type(pieces, left, self.plans)
        del pieces
        checked = [self._checked(part, lines, left) for part in parts]
        rest.extend(start + i for i in left)
        if not start:
            return checked
        return [
            _Part(part.plan, part.events, pc.add(part.positions, start), part.moments)
            for part in checked
        ]

    def _per_event_checked(self, messages: Sequence[bytes], changes: ChangeSet) -> None:
        """The `check_stored_ids` of a column-wise batch: make `changes` what the per-event
        path makes of `messages`, whose envelopes say which rows to set aside, and check."""
        again = super().process(messages)
        for slot in ChangeSet.__slots__:
            setattr(changes, slot, getattr(again, slot))
        if again.check_stored_ids is not None:
            again.check_stored_ids(changes)

    def _screened(self, messages: Sequence[bytes], rest: list[int]) -> tuple[bytes, list[int]]:
        """The lines to parse column-wise, joined, and their indices; the others (long,
        spanning lines, blank, not UTF-8) go to `rest`. Arrow skips blank lines and reads two
        objects on one line as two rows: each line must give exactly one row."""
        joined = b"\n".join(messages)
        limit = min(self.decoder.max_message_size, _LONGEST)
        if (
            max(map(len, messages)) <= limit
            and joined.count(b"\n") == len(messages) - 1
            and _utf8(joined)
            and not any(map(_blank, messages))
        ):
            return joined, list(range(len(messages)))
        kept = []
        for index, message in enumerate(messages):
            if len(message) > limit or b"\n" in message or not _utf8(message) or _blank(message):
                rest.append(index)
            else:
                kept.append(index)
        return b"\n".join(messages[i] for i in kept), kept

    def _parse(
        self, messages: Sequence[bytes], joined: bytes, indices: list[int], rest: list[int]
    ) -> list[tuple[pa.Table, list[int]]]:
        """The lines at `indices` (`joined`) as Arrow tables, with the indices of their rows;
        the lines of a piece Arrow refuses (a value of another JSON type, a duplicate key, not
        JSON) go to `rest` once the piece is small."""
        if not indices:
            return []
        try:
            table = pj.read_json(
                pa.py_buffer(joined),
                read_options=self._read_options,
                parse_options=self._parse_options,
            )
        except pa.ArrowInvalid:
            table = None
        if table is not None and table.num_rows == len(indices):
            return [(table, indices)]
        if len(indices) <= _SMALLEST_PIECE:
            rest.extend(indices)
            return []
        halves = indices[: len(indices) // 2], indices[len(indices) // 2 :]
        return [
            piece
            for half in halves
            for piece in self._parse(messages, b"\n".join(messages[i] for i in half), half, rest)
        ]

    def _checked(self, part: _Part, messages: Sequence[bytes], rest: list[int]) -> _Part:
        """The rows of `part` that are plainly valid envelopes of its plan, with their
        `occurred_at` as UTC timestamps; the others go to `rest`."""
        plan, events = part.plan, part.events
        text = events["occurred_at"]
        # Arrow's parser would take 2026-02-30 as March 2nd: the day must be the one written.
        dates = pc.strptime(
            pc.utf8_slice_codeunits(text, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True
        )
        matched = pc.match_substring_regex(text, _TIMESTAMP)
        days = pc.cast(pc.if_else(matched, pc.utf8_slice_codeunits(text, 8, 10), None), pa.int64())
        well_formed = pc.and_(matched, pc.equal(pc.day(dates), days))
        moments = pc.cast(pc.if_else(well_formed, text, None), UTC_MICROS)
        checks = [
            pc.greater(pc.binary_length(events["id"]), 0),
            pc.is_valid(events["source"]),
            pc.equal(events["version"], plan.version),
            pc.is_valid(moments),
            events["data"],
            *(_field_valid(events[_payload(f)], f) for f in plan.fields.values()),
        ]
        valid = _flat(pc.fill_null(functools.reduce(pc.and_, checks), False))
        positions = part.positions
        if plan.unset_fields:
            # Arrow reads a JSON null as a missing field, which an optional field may be.
            valid = pc.and_(
                valid,
                pa.array([b"null" not in messages[i] for i in positions.to_pylist()]),
            )
        if pc.all(valid).as_py():
            return _Part(plan, events, positions, _flat(moments))
        rest.extend(positions.filter(pc.invert(valid)).to_pylist())
        return _Part(
            plan, events.filter(valid), positions.filter(valid), _flat(moments).filter(valid)
        )

    def _map(self, taken: list[_Part], changes: ChangeSet) -> None:
        """Stage the rows the plans make of the valid events, their references and counts."""
        staged: dict[tuple[bool, str], list[pa.Table]] = {}
        for part in taken:
            if not part.events.num_rows:
                continue
            plan, events, moments = part.plan, part.events, part.moments
            assert moments is not None
            changes.note_seen(plan.type, events.num_rows, pc.max(moments).as_py())
            for output in plan.outputs:
                mapped = _project(output, plan, events, moments)
                staged.setdefault((output.dimension, output.name), []).append(mapped)
                for field, referenced in output.references:
                    keys = changes.references.setdefault(referenced, set())
                    keys.update(pc.unique(mapped[field]).drop_null().to_pylist())
        for (of_dimension, name), tables in staged.items():
            target = changes.dimension_changes if of_dimension else changes.facts
            target[name] = ArrowRows(pa.concat_tables(tables))

    def _merge(self, changes: ChangeSet, other: ChangeSet) -> None:
        """Add what the per-event path made of the other lines to `changes`."""
        for mine, theirs in (
            (changes.facts, other.facts),
            (changes.dimension_changes, other.dimension_changes),
        ):
            for name in list(theirs.keys() & mine.keys()):
                table = self._tables[name]
                mine[name] = ArrowRows(
                    pa.concat_tables(
                        [arrow_table(table, mine[name]), arrow_table(table, theirs.pop(name))]
                    )
                )
        changes.merge(other)


@dataclass(frozen=True)
class _Part:
    """The parsed lines of one plan's type, with their indices in the batch."""

    plan: _Plan
    events: pa.Table
    positions: pa.Array
    moments: pa.Array | None = None  # `occurred_at` as UTC timestamps, once checked


def _by_type(
    pieces: list[tuple[pa.Table, list[int]]], rest: list[int], plans: dict[str, _Plan]
) -> list[_Part]:
    """The parsed rows by type, each type's rows together with only the columns its plan reads
    (`_columns`): the batch is sorted by type once, and each type takes its own payload fields,
    not the payload of every type (most of the batch's columns); rows of other types go to
    `rest`."""
    if not pieces:
        return []
    # One chunk: taking from the parser's many chunks costs more than joining them once.
    table = pa.concat_tables(table for table, _ in pieces).combine_chunks()
    positions = pa.array([i for _, indices in pieces for i in indices], pa.int64())
    order = pc.sort_indices(table["type"])  # nulls last
    positions = positions.take(order)
    counts = pc.value_counts(table["type"].take(order))
    parts, start = [], 0
    for event_type, count in zip(
        counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
    ):
        plan = plans.get(event_type) if event_type is not None else None
        if plan is None:
            rest.extend(positions.slice(start, count).to_pylist())
        else:
            rows = order.slice(start, count)
            parts.append(_Part(plan, _columns(plan, table, rows), positions.slice(start, count)))
        start += count
    rest.extend(positions.slice(start).to_pylist())  # no type
    return parts


def _columns(plan: _Plan, table: pa.Table, rows: pa.Array) -> pa.Table:
    """The `rows` of the parsed `table` as `plan` reads them: the envelope's columns, whether
    it has a payload (`data`), and each payload field of the plan as `data.<wire name>`."""
    data = table["data"]
    columns = {name: table[name].take(rows) for name in _ENVELOPE}
    columns["data"] = pc.is_valid(data).take(rows)
    for field in plan.fields.values():
        columns[_payload(field)] = pc.struct_field(data, field.wire).take(rows)
    return pa.table(columns)


def _payload(field: _Field) -> str:
    """The column of a payload field in a `_Part`'s events."""
    return f"data.{field.wire}"


def _without_shared_ids(
    parts: list[_Part], messages: Sequence[bytes], rest: list[int]
) -> list[_Part]:
    """`parts` without the rows whose envelope id another line of the batch carries; those go
    to `rest` with the others: the per-event path tells a duplicate from an id reused with
    other contents, which needs all the lines of the id together."""
    ids = pa.chunked_array([c for part in parts for c in part.events["id"].chunks], pa.string())
    others = [i for i in map(_id_of, (messages[i] for i in rest)) if i is not None]
    shared = pa.concat_arrays([_repeated(ids), pa.array(others, pa.string())])
    if not len(shared):
        return parts
    kept = []
    for part in parts:
        alone = _flat(pc.invert(pc.is_in(part.events["id"], shared)))
        if pc.all(alone).as_py():
            kept.append(part)
            continue
        assert part.moments is not None
        rest.extend(part.positions.filter(pc.invert(alone)).to_pylist())
        kept.append(
            _Part(
                part.plan,
                part.events.filter(alone),
                part.positions.filter(alone),
                part.moments.filter(alone),
            )
        )
    return kept


def _plan(event_type: str, pipelines: list[Pipeline[Any]], schema: Schema) -> _Plan | None:
    """How to take `event_type` column-wise, or None if one of its pipelines needs the
    per-event path (a hand-written map or step, a field type not read column-wise)."""
    events = {pipeline.event for pipeline in pipelines}
    if len(events) != 1:
        return None
    [event] = events
    fields = _fields(event)
    if fields is None:
        return None
    outputs = []
    for pipeline in pipelines:
        output = _output(pipeline, fields, schema)
        if output is None:
            return None
        outputs.append(output)
    meta = event.__factflow_event__
    return _Plan(meta.type, meta.version, fields, tuple(outputs))


def _fields(event: type[Event]) -> dict[str, _Field] | None:
    info = mi.type_info(event)
    assert isinstance(info, mi.StructType)
    if info.forbid_unknown_fields or info.array_like or info.tag_field is not None:
        return None
    fields = {}
    for field in info.fields:
        kind: Any = field.type
        required = field.required
        unset = not required and field.default is msgspec.NODEFAULT  # `T | UnsetType = UNSET`
        if isinstance(kind, mi.UnionType):  # `T | None = None`
            others = [t for t in kind.types if not isinstance(t, mi.NoneType)]
            if len(others) != 1 or field.default is not None:
                return None
            kind = others[0]
        elif not required and field.default is not msgspec.NODEFAULT:
            return None  # a default other than UNSET or None
        if isinstance(kind, mi.StrType) and kind == mi.StrType():
            fields[field.name] = _Field(field.encode_name, "text", required, (), unset)
        elif isinstance(kind, mi.LiteralType) and all(isinstance(v, str) for v in kind.values):
            values = tuple(str(v) for v in kind.values)
            fields[field.name] = _Field(field.encode_name, "literal", required, values, unset)
        elif isinstance(kind, mi.CustomType) and kind.cls is Money:
            fields[field.name] = _Field(field.encode_name, "money", required, (), unset)
        else:
            return None
    return fields


def _output(pipeline: Pipeline[Any], fields: dict[str, _Field], schema: Schema) -> _Output | None:
    """The rows of a pipeline that is a projection, then `ensure_dimensions` and the step
    storing the projected rows; None for any other pipeline."""
    first, *rest = pipeline.steps or (None,)
    if not (isinstance(first, MapStep) and isinstance(first.function, Projection)):
        return None
    projection = first.function
    row_class = projection.row_class
    stores = [s for s in rest if isinstance(s, StoreStep)]
    if not stores or any(s.row_class is not row_class for s in stores):
        return None
    if any(s is not ensure_dimensions and not isinstance(s, StoreStep) for s in rest):
        return None
    dimension = issubclass(row_class, Dimension)
    name = stores[0].table
    if dimension:
        table = next(d.changes for d in schema.dimensions if d.name == name)
    else:
        table = schema.fact(name).table
    meta: Any = meta_of(row_class)
    for column in table.columns[: len(row_class.__struct_fields__)]:
        source = projection.sources.get(column.name)
        if source is None:
            if column.type is ColumnType.TIMESTAMP or not _fits(
                projection.constants[column.name], column.type
            ):
                return None
        elif fields[source].kind != ("money" if column.type is ColumnType.MONEY else "text") and (
            fields[source].kind != "literal" or column.type is not ColumnType.TEXT
        ):
            return None
    references = (
        tuple((f, d.__factflow_dimension__.table) for f, d in meta.references.items())
        if ensure_dimensions in rest
        else ()
    )
    return _Output(projection, table, name, dimension, references)


def _fits(value: Any, column_type: ColumnType) -> bool:
    try:
        pa.scalar(value, ARROW[column_type])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return False
    return True


def _field_valid(values: pa.ChunkedArray, field: _Field) -> pa.ChunkedArray:
    """Per row: the field holds what the contract allows (absent only if optional)."""
    if field.kind == "literal":
        ok = pc.is_in(values, pa.array(field.values, pa.string()))
    elif field.kind == "money":
        ok = pc.match_substring_regex(values, _MONEY)
    else:
        ok = pc.is_valid(values)
    ok = pc.fill_null(ok, False)
    return ok if field.required else pc.or_(ok, pc.is_null(values))


def _project(output: _Output, plan: _Plan, events: pa.Table, moments: pa.Array) -> pa.Table:
    """The projection of `output` over `events`, as rows of its table."""
    projection, count = output.projection, events.num_rows
    arrays: list[pa.Array | pa.ChunkedArray] = []
    for column in output.table.columns[:-2]:
        arrow_type = ARROW[column.type]
        source = projection.sources.get(column.name)
        if source is None:
            arrays.append(
                pa.repeat(pa.scalar(projection.constants[column.name], arrow_type), count)
            )
        else:
            arrays.append(events[_payload(plan.fields[source])].cast(arrow_type))
    arrays += [events["id"], utc_timestamps(moments)]
    return pa.Table.from_arrays(arrays, names=list(output.table.column_names))


def _repeated(values: pa.ChunkedArray) -> pa.Array:
    """The values occurring more than once."""
    counts = pc.value_counts(values)
    return counts.field("values").filter(pc.greater(counts.field("counts"), 1))


def _blank(line: bytes) -> bool:
    return not line or line.isspace()


def _utf8(text: bytes) -> bool:
    """Whether `text` is UTF-8: Arrow's JSON reader does not check strings, msgspec does."""
    if text.isascii():  # the usual case, checked ten times faster than by decoding
        return True
    try:
        text.decode()
    except UnicodeDecodeError:
        return False
    return True


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


class _Head(msgspec.Struct):
    id: Any = None


_head = msgspec.json.Decoder(_Head)


def _id_of(raw: bytes) -> str | None:
    """The envelope id of a line, if it has one."""
    try:
        head = _head.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    return head.id if isinstance(head.id, str) else None
