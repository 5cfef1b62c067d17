import pytest

from factflow import DeclarationError, Dimension, Event, Fact, dimension, event, fact
from factflow.examples.banking.model import CardTransaction, User


def test_event_type_must_be_domain_dot_name_in_lower_snake_case() -> None:
    for bad in ("transaction_settled", "Card.TransactionSettled", ".x", "card."):
        with pytest.raises(DeclarationError, match=r"<domain>\.<event_name>"):
            event(bad)


def test_event_records_type_version_and_domain() -> None:
    @event("card.card_frozen", version=2)
    class CardFrozen(Event):
        card_id: str

    meta = CardFrozen.__factflow_event__
    assert (meta.type, meta.version, meta.domain) == ("card.card_frozen", 2, "card")


def test_fact_key_defaults_to_the_envelope_id_and_table_to_the_snake_case_name() -> None:
    @fact()
    class HTTPRequestServed(Fact):
        path: str

    meta = HTTPRequestServed.__factflow_fact__
    assert meta.key == ("event_id",)
    assert meta.table == "fact_http_request_served"


def test_declared_keys_and_references_are_kept() -> None:
    meta = CardTransaction.__factflow_fact__
    assert meta.key == ("transaction_id",)
    assert meta.references["user_id"] is User


def test_a_key_that_is_not_a_field_is_refused() -> None:
    with pytest.raises(DeclarationError, match="key field 'nope' is not a field"):

        @fact(key="nope")
        class Broken(Fact):
            x: str


def test_a_reference_to_an_undeclared_dimension_is_refused() -> None:
    class NotDeclared(Dimension):
        key: str

    with pytest.raises(DeclarationError, match="not a declared @dimension"):

        @fact(references={"user_id": NotDeclared})
        class Broken(Fact):
            user_id: str


def test_fields_named_like_the_columns_factflow_fills_are_refused() -> None:
    with pytest.raises(DeclarationError, match="reserved"):

        @fact()
        class Broken(Fact):
            occurred_at: str


def test_fields_named_like_member_keys_are_refused() -> None:
    with pytest.raises(DeclarationError, match=r"\['member_key'\] are reserved"):

        @dimension(key="shop_id")
        class Shop(Dimension):
            shop_id: str
            member_key: int

    with pytest.raises(DeclarationError, match=r"\['shop_id__member_key'\] are reserved"):

        @fact()
        class Order(Fact):
            shop_id__member_key: int


def test_decorators_refuse_classes_of_the_wrong_base() -> None:
    with pytest.raises(DeclarationError, match=r"subclasses of factflow\.Dimension"):

        @dimension(key="k")
        class Wrong(Fact):
            k: str


def test_scd_must_be_one_or_two() -> None:
    with pytest.raises(DeclarationError, match="scd must be 1 or 2"):
        dimension(key="k", scd=3)  # type: ignore[arg-type]
