"""Dimension rows derived batch by batch equal the derivation over all stored changes.

The DuckDB warehouse derives a key's current row (and SCD type 2 versions) from its stored
current row and the batch's new changes when they all come after the stored ones, and from all
its stored changes otherwise (a late change). Both paths must give exactly the rows of the full
derivation, `current_rows` and `history_rows` over the whole change table.
"""

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factflow import Dimension, dimension
from factflow.model.schema import DimensionSpec, compile_schema
from factflow.model.types import Money
from factflow.pipeline.changes import ChangeSet
from factflow.warehouse.base import Warehouse
from factflow.warehouse.ddl import LastValue, current_rows, history_rows, quote
from factflow.warehouse.duckdb import DuckDBWarehouse


@dimension(key="thing_id", scd=2, table="dim_thing")
class Thing(Dimension):
    label: str | None = None
    thing_id: str = ""  # not the first field: rows follow the declaration order
    count: int | None = None
    ratio: float | None = None
    active: bool | None = None
    price: Money | None = None
    seen: datetime | None = None
    born: date | None = None


@dimension(key="plain_id", table="dim_plain")
class Plain(Dimension):
    plain_id: str
    label: str | None = None
    price: Money | None = None


SCHEMA = compile_schema([], [Thing, Plain])
THING = SCHEMA.dimension("dim_thing")
PLAIN = SCHEMA.dimension("dim_plain")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, 1, hour, minute, tzinfo=UTC)


def naive(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, 1, hour, minute)


def thing(
    key: str, event_id: str, when: datetime, label: str | None = None, **values: Any
) -> tuple[Any, ...]:
    """A change row of `dim_thing`: only the attributes given are set."""
    fields = {"label": label, "thing_id": key, **values}
    names = [c.name for c in THING.changes.columns][:-2]
    return (*(fields.get(name) for name in names), event_id, when)


def write(
    warehouse: Warehouse,
    things: Sequence[tuple[Any, ...]] = (),
    *,
    plains: Sequence[tuple[Any, ...]] = (),
    references: Collection[str] = (),
) -> None:
    changes = ChangeSet()
    if things:
        changes.dimension_changes["dim_thing"] = list(things)
    if plains:
        changes.dimension_changes["dim_plain"] = list(plains)
    if references:
        changes.references["dim_thing"] = set(references)
    warehouse.write(changes)


def last_value(warehouse: Warehouse) -> LastValue:
    """How the backend spells "the last non-null value over a window"."""
    if isinstance(warehouse, DuckDBWarehouse):
        return lambda column, window: f"last_value({column} IGNORE NULLS) OVER ({window})"
    return lambda column, window: f"last_non_null({column}) OVER ({window})"


def ordered(columns: int) -> str:
    return "ORDER BY " + ", ".join(str(n + 1) for n in range(columns))


def assert_fully_derived(warehouse: Warehouse, dim: DimensionSpec) -> None:
    """The dimension's rows are those derived from all its stored changes (the inferred members
    aside: known from references only, nothing set)."""
    columns, order = (
        ", ".join(map(quote, dim.current.column_names)),
        ordered(len(dim.current.columns)),
    )
    stored = warehouse.query(
        f"SELECT {columns} FROM {quote(dim.current.name)} WHERE NOT inferred {order}"
    ).rows
    derived_rows = current_rows(dim, None, last_value(warehouse))
    derived = warehouse.query(f"SELECT {columns} FROM ({derived_rows}) AS d {order}").rows
    assert stored == derived
    unset = " AND ".join(f"{quote(c)} IS NULL" for c in (*dim.attributes, "updated_at"))
    assert warehouse.query(
        f"SELECT count(*) FROM {quote(dim.current.name)} WHERE inferred AND NOT ({unset})"
    ).rows == [(0,)]
    assert warehouse.query(
        f"SELECT count(*) FROM {quote(dim.current.name)} WHERE inferred AND {quote(dim.key)} IN "
        f"(SELECT {quote(dim.key)} FROM {quote(dim.changes.name)})"
    ).rows == [(0,)]
    if dim.history is not None:
        names, order = (
            ", ".join(map(quote, dim.history.column_names)),
            ordered(len(dim.history.columns)),
        )
        versions = history_rows(dim, None, last_value(warehouse))
        assert (
            warehouse.query(f"SELECT {names} FROM {quote(dim.history.name)} {order}").rows
            == warehouse.query(f"SELECT {names} FROM ({versions}) AS d {order}").rows
        )


@pytest.fixture
def things(warehouse: Warehouse) -> Warehouse:
    warehouse.prepare(SCHEMA)
    return warehouse


def current(warehouse: Warehouse, key: str = "t-1") -> tuple[Any, ...]:
    (row,) = warehouse.query(
        "SELECT label, count, active, price, inferred, updated_at FROM dim_thing "
        "WHERE thing_id = ?",
        (key,),
    ).rows
    return row


def versions(warehouse: Warehouse, key: str = "t-1") -> list[tuple[Any, ...]]:
    return warehouse.query(
        "SELECT label, count, valid_from, valid_to FROM dim_thing__history WHERE thing_id = ? "
        "ORDER BY valid_from",
        (key,),
    ).rows


def test_changes_after_the_stored_ones_extend_the_current_row_and_the_versions(
    things: Warehouse,
) -> None:
    write(things, [thing("t-1", "e-1", at(1), "a", count=1)])
    write(things, [thing("t-1", "e-2", at(2), count=2), thing("t-1", "e-3", at(3), "c")])
    write(things, [thing("t-1", "e-4", at(4), price=Money("1.50"), active=False)])
    assert current(things) == ("c", 2, False, Decimal("1.50"), False, naive(4))
    assert versions(things) == [
        ("a", 1, naive(1), naive(2)),
        ("a", 2, naive(2), naive(3)),
        ("c", 2, naive(3), naive(4)),
        ("c", 2, naive(4), None),
    ]
    assert_fully_derived(things, THING)


@pytest.mark.parametrize("same_batch", [True, False])
def test_a_change_older_than_the_stored_ones_is_derived_from_all_changes(
    things: Warehouse, same_batch: bool
) -> None:
    write(things, [thing("t-1", "e-2", at(2), count=2)])
    late = [thing("t-1", "e-1", at(1), "a", count=1)]
    newer = [thing("t-1", "e-3", at(3), "c")]
    for batch in [late + newer] if same_batch else [newer, late]:
        write(things, batch)
    assert current(things) == ("c", 2, None, None, False, naive(3))
    assert versions(things) == [
        ("a", 1, naive(1), naive(2)),
        ("a", 2, naive(2), naive(3)),
        ("c", 2, naive(3), None),
    ]
    assert_fully_derived(things, THING)


@pytest.mark.parametrize(("event_id", "label"), [("e-0", "b"), ("e-9", "z")])
def test_a_change_at_the_instant_of_the_latest_stored_one_is_ordered_by_event_id(
    things: Warehouse, event_id: str, label: str
) -> None:
    write(things, [thing("t-1", "e-5", at(1), "b", count=1)])
    write(things, [thing("t-1", event_id, at(1), "z", count=2)])
    assert current(things)[:2] == (label, 2 if event_id == "e-9" else 1)
    assert versions(things) == [(label, 2 if event_id == "e-9" else 1, naive(1), None)]
    assert_fully_derived(things, THING)


def test_an_inferred_member_is_filled_in_by_its_changes_alone(things: Warehouse) -> None:
    write(things, references={"t-1", "t-2"})
    write(things, [thing("t-1", "e-1", at(1), "a")], references={"t-1"})
    write(things, [thing("t-1", "e-2", at(2), count=3)])
    assert current(things) == ("a", 3, None, None, False, naive(2))
    assert current(things, "t-2") == (None, None, None, None, True, None)
    assert versions(things) == [("a", None, naive(1), naive(2)), ("a", 3, naive(2), None)]
    assert_fully_derived(things, THING)


def test_attributes_left_unset_keep_their_values_and_unset_ones_stay_null(
    things: Warehouse,
) -> None:
    write(things, [thing("t-1", "e-1", at(1), "a", count=1)])
    write(things, [thing("t-1", "e-2", at(2))])  # sets nothing: a version all the same
    write(things, [thing("t-1", "e-3", at(3), active=True)])
    assert current(things) == ("a", 1, True, None, False, naive(3))
    assert [v[:2] for v in versions(things)] == [("a", 1)] * 3
    assert_fully_derived(things, THING)


def test_a_redelivered_batch_changes_nothing(things: Warehouse) -> None:
    batch = [thing("t-1", "e-1", at(1), "a"), thing("t-1", "e-2", at(2), count=2)]
    write(things, batch)
    write(things, batch)
    write(things, [*batch, thing("t-1", "e-3", at(3), "c")])  # with one new change
    assert current(things)[:2] == ("c", 2)
    assert things.query("SELECT count(*) FROM dim_thing__changes").rows == [(3,)]
    assert versions(things) == [
        ("a", None, naive(1), naive(2)),
        ("a", 2, naive(2), naive(3)),
        ("c", 2, naive(3), None),
    ]
    assert_fully_derived(things, THING)


def test_a_stored_event_id_arriving_again_at_another_time_is_ignored(things: Warehouse) -> None:
    write(things, [thing("t-1", "e-1", at(1), "a")])
    write(things, [thing("t-1", "e-1", at(5), "b")])  # the first stored wins
    assert current(things)[:2] == ("a", None)
    assert versions(things) == [("a", None, naive(1), None)]
    assert_fully_derived(things, THING)


def test_a_history_begun_after_the_changes_is_derived_in_full_for_the_keys_changed(
    things: Warehouse,
) -> None:
    """As when a dimension became SCD type 2: its history starts empty beside stored changes."""
    write(things, [thing("t-1", "e-1", at(1), "a"), thing("t-2", "e-2", at(1), "b")])
    write(things, [thing("t-1", "e-3", at(2), count=2)])
    things.migrate(["DELETE FROM dim_thing__history"])
    write(things, [thing("t-1", "e-4", at(3), "c")])
    assert versions(things) == [
        ("a", None, naive(1), naive(2)),
        ("a", 2, naive(2), naive(3)),
        ("c", 2, naive(3), None),
    ]
    assert versions(things, "t-2") == []


def test_a_type_1_dimension_is_derived_the_same_way(things: Warehouse) -> None:
    write(things, plains=[("p-1", "a", Money("1.00"), "e-2", at(2))])
    write(things, plains=[("p-1", None, Money("2.00"), "e-3", at(3))])
    write(things, plains=[("p-1", "z", None, "e-1", at(1))])
    assert things.query("SELECT label, price, updated_at FROM dim_plain").rows == [
        ("a", Decimal("2.00"), naive(3))
    ]
    assert_fully_derived(things, PLAIN)


# -- any stream, batch by batch ---------------------------------------------------------------

KEYS = ["t-1", "t-2", "t-3"]
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "label": st.sampled_from(["a", "b"]),
    "count": st.integers(-2, 2),
    "ratio": st.sampled_from([0.5, -1.25]),
    "active": st.booleans(),
    "price": st.sampled_from([Money("0.10"), Money("12.34")]),
    "seen": st.sampled_from([at(7), at(8, 30)]),
    "born": st.sampled_from([date(1990, 1, 1), date(2000, 2, 29)]),
}


@st.composite
def changes(draw: st.DrawFn) -> tuple[Any, ...]:
    values = {
        name: draw(st.none() | strategy) for name, strategy in VALUES.items() if draw(st.booleans())
    }
    label = values.pop("label", None)
    # A small pool of event ids and instants: ties at an instant, and an event id arriving
    # again (as a redelivery, or at another time and with other values).
    event = f"e-{draw(st.integers(0, 7))}"
    when = at(draw(st.integers(0, 4)))
    return thing(draw(st.sampled_from(KEYS)), event, when, label, **values)


batches = st.lists(
    st.tuples(
        st.lists(changes(), max_size=5), st.sets(st.sampled_from([*KEYS, "t-9"]), max_size=2)
    ),
    min_size=1,
    max_size=6,
)


def plain(change: tuple[Any, ...]) -> tuple[Any, ...]:
    """The `dim_plain` change of the same event, setting the same label and price."""
    names = [c.name for c in THING.changes.columns]
    fields = dict(zip(names, change, strict=True))
    key = fields["thing_id"].replace("t-", "p-")
    return (key, fields["label"], fields["price"], fields["event_id"], fields["occurred_at"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=batches)
def test_every_batch_leaves_the_rows_of_the_full_derivation(
    stream: list[tuple[list[tuple[Any, ...]], set[str]]],
) -> None:
    with DuckDBWarehouse(None) as warehouse:
        warehouse.prepare(SCHEMA)
        for rows, references in stream:
            write(warehouse, rows, plains=[plain(r) for r in rows], references=references)
            assert_fully_derived(warehouse, THING)
            assert_fully_derived(warehouse, PLAIN)
