import pytest

from factflow import DeclarationError, Dimension, Fact, Money, dimension, fact
from factflow.examples.banking.model import CardTransaction, User
from factflow.model.schema import (
    Column,
    ColumnType,
    compile_dimension,
    compile_fact,
    compile_schema,
)


def test_a_fact_table_has_the_declared_columns_then_the_envelope_columns() -> None:
    spec = compile_fact(CardTransaction)
    assert spec.table.name == "fact_card_transaction"
    assert spec.table.key == ("transaction_id",)
    assert spec.table.column_names[-2:] == ("event_id", "occurred_at")
    assert Column("amount", ColumnType.MONEY, nullable=False) in spec.table.columns
    assert spec.references == {"user_id": "dim_user", "card_id": "dim_card"}


def test_an_scd2_dimension_has_changes_current_and_history_tables() -> None:
    spec = compile_dimension(User)
    assert spec.changes.name == "dim_user__changes"
    assert spec.changes.key == ("user_id", "event_id")
    assert spec.current.key == ("user_id",)
    assert "inferred" in spec.current.column_names
    assert spec.history is not None
    assert spec.history.column_names[-2:] == ("valid_from", "valid_to")
    assert spec.attributes == ("country", "segment")


def test_an_scd1_dimension_has_no_history_table() -> None:
    @dimension(key="k")
    class Thing(Dimension):
        k: str
        colour: str | None = None

    assert compile_dimension(Thing).history is None


def test_unsupported_field_types_are_refused_with_the_supported_ones() -> None:
    @fact()
    class Odd(Fact):
        tags: list[str]

    with pytest.raises(DeclarationError, match=r"Odd.tags: a column must be one of"):
        compile_fact(Odd)


def test_dimensions_the_model_refers_to_get_tables_even_if_no_pipeline_writes_them() -> None:
    @dimension(key="k")
    class Lonely(Dimension):
        k: str

    @fact(references={"k": Lonely})
    class Pointing(Fact):
        k: str
        amount: Money

    schema = compile_schema([Pointing], [])
    assert [d.name for d in schema.dimensions] == ["dim_lonely"]


def test_two_classes_writing_one_table_are_refused() -> None:
    @fact(table="fact_same")
    class One(Fact):
        k: str

    @fact(table="fact_same")
    class Other(Fact):
        k: str

    with pytest.raises(DeclarationError, match="fact_same"):
        compile_schema([One, Other], [])
