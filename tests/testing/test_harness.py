"""factflow.testing: deliveries in any order with duplicates, typed rows, and assertions whose
failure messages say what differs."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from factflow import (
    App,
    Consumer,
    Dimension,
    Envelope,
    Event,
    Fact,
    Kpi,
    Money,
    Pipeline,
    dimension,
    ensure_dimensions,
    event,
    fact,
    insert_first,
    update_dimension,
)
from factflow.testing import Harness, any_order, envelope, in_any_order


@event("library.book_added")
class BookAdded(Event):
    book_id: str
    genre: str


@event("library.book_borrowed")
class BookBorrowed(Event):
    loan_id: str
    book_id: str
    fee: Money


@dimension(key="book_id", scd=2)
class Book(Dimension):
    book_id: str
    genre: str | None = None


@fact(key="loan_id", references={"book_id": Book})
class Loan(Fact):
    loan_id: str
    book_id: str
    fee: Money


def book(e: Envelope[BookAdded]) -> Book:
    return Book(book_id=e.data.book_id, genre=e.data.genre)


def loan(e: Envelope[BookBorrowed]) -> Loan:
    return Loan(loan_id=e.data.loan_id, book_id=e.data.book_id, fee=e.data.fee)


app = App(
    "library",
    consumers=[
        Consumer("library")
        .pipe(BookAdded, Pipeline(BookAdded).map(book).then(update_dimension(Book)))
        .pipe(
            BookBorrowed,
            Pipeline(BookBorrowed).map(loan).then(ensure_dimensions).then(insert_first(Loan)),
        )
    ],
    kpis=[
        Kpi(
            "fees_by_genre",
            description="Loans and fees per genre of the book.",
            sql="""
                SELECT b.genre, count(*) AS loans, sum(l.fee) AS fees
                FROM fact_loan AS l JOIN dim_book AS b USING (book_id)
                GROUP BY 1
            """,
            measures=["loans", "fees"],
        )
    ],
)


def added(book_id: str, genre: str, at: str = "2026-01-01T00:00:00Z") -> bytes:
    return envelope("library.book_added", {"book_id": book_id, "genre": genre}, occurred_at=at)


def borrowed(loan_id: str, book_id: str, fee: str = "1.50") -> bytes:
    data = {"loan_id": loan_id, "book_id": book_id, "fee": fee}
    return envelope("library.book_borrowed", data, occurred_at="2026-01-02T09:30:00+01:00")


EVENTS = [
    added("b-1", "poetry"),
    added("b-1", "novel", at="2026-02-01T00:00:00Z"),
    borrowed("l-1", "b-1"),
    borrowed("l-2", "b-1", "0.75"),
    borrowed("l-3", "b-2"),
]


def test_given_events_in_any_order_with_duplicates_expect_facts_dimensions_and_kpis() -> None:
    for harness in any_order(app, EVENTS):
        harness.assert_facts(
            Loan,
            [
                {"loan_id": "l-1", "fee": "1.50"},
                {"loan_id": "l-2", "fee": Decimal("0.75")},
                Loan(loan_id="l-3", book_id="b-2", fee=Money("1.50")),
            ],
        )
        harness.assert_dimension(
            Book,
            [
                {"book_id": "b-1", "genre": "novel", "inferred": False},
                {"book_id": "b-2", "genre": None, "inferred": True},
            ],
        )
        harness.assert_dimension(
            Book,
            [
                {"book_id": "b-1", "genre": "poetry", "valid_to": "2026-02-01T00:00:00Z"},
                {"book_id": "b-1", "genre": "novel", "valid_to": None},
            ],
            history=True,
        )
        harness.assert_kpi(
            "fees_by_genre",
            [{"genre": "novel", "loans": 2, "fees": "2.25"}, {"genre": None, "loans": 1}],
        )
        harness.assert_no_dead_letters()


def test_any_order_delivers_as_given_first_then_shuffled_and_duplicated() -> None:
    deliveries = []
    for harness in any_order(app, EVENTS, runs=3):
        with pytest.raises(AssertionError) as raised:
            harness.assert_facts(Loan, [])
        deliveries.append(str(raised.value).splitlines()[-1])
    assert deliveries[0] == "  delivered: 5 messages in 1 batch (5)"
    assert deliveries[1].startswith("  delivered: 10 messages shuffled with seed 1 each twice in")
    assert deliveries[2].startswith("  delivered: 10 messages shuffled with seed 2 each twice in")


def test_facts_and_dimension_rows_come_back_as_the_declared_classes() -> None:
    with Harness(app) as harness:
        harness.deliver(in_any_order(EVENTS, seed=4))
        assert harness.facts(Loan) == [
            Loan(loan_id="l-1", book_id="b-1", fee=Money("1.50")),
            Loan(loan_id="l-2", book_id="b-1", fee=Money("0.75")),
            Loan(loan_id="l-3", book_id="b-2", fee=Money("1.50")),
        ]
        assert harness.dimension(Book) == [
            Book(book_id="b-1", genre="novel"),
            Book(book_id="b-2", genre=None),
        ]
        [first, *_] = harness.rows(Loan)
        assert as_aware(first["occurred_at"]) == datetime(2026, 1, 2, 8, 30, tzinfo=UTC)


def as_aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def test_in_any_order_is_a_reproducible_shuffle_with_every_message_twice() -> None:
    shuffled = in_any_order(EVENTS, seed=7)
    assert Counter(shuffled) == Counter(EVENTS * 2)
    assert shuffled == in_any_order(EVENTS, seed=7)
    assert shuffled != in_any_order(EVENTS, seed=8)
    assert sorted(in_any_order(EVENTS, duplicated=False)) == sorted(EVENTS)


def test_a_failing_assertion_lists_missing_unexpected_closest_dead_letters_and_delivery() -> None:
    harness = Harness(app)
    bad = envelope("library.book_borrowed", {"loan_id": "l-9", "book_id": "b-1", "fee": 2})
    harness.deliver([*EVENTS, bad], shuffled=True, duplicated=True, seed=3)
    with pytest.raises(AssertionError) as raised:
        harness.assert_facts(
            Loan,
            [{"loan_id": "l-1"}, {"loan_id": "l-2", "fee": "9.99"}, {"loan_id": "l-9"}],
        )
    message = str(raised.value)
    assert "fact_loan: 3 row(s) found, 3 expected; 2 expected row(s) missing" in message
    assert "{loan_id: 'l-2', fee: '9.99'}" in message
    assert "closest found differs in fee: 0.7500 (expected '9.99')" in message
    assert "found but not expected (columns loan_id, fee):" in message
    assert "{loan_id: 'l-3', fee: 1.5000}" in message
    assert re.search(r"dead letters \(1\):\n.*library.book_borrowed: .*`data.fee`", message)
    assert re.search(
        r"delivered: 12 messages shuffled with seed 3 each twice in \d+ batches", message
    )


def test_an_unknown_column_or_a_class_the_app_does_not_write_is_named() -> None:
    @fact()
    class Fine(Fact):
        amount: Money

    harness = Harness(app)
    with pytest.raises(AssertionError, match="fact_loan has no column\\(s\\) 'loan'; its columns"):
        harness.assert_facts(Loan, [{"loan": "l-1"}])
    with pytest.raises(AssertionError, match="writes no table fact_fine \\(Fine\\)"):
        harness.facts(Fine)


def test_no_dead_letters_names_each_reason() -> None:
    harness = Harness(app)
    harness.deliver([envelope("library.book_added", {"book_id": "b-1"})])
    with pytest.raises(AssertionError, match=r"1 dead letter\(s\)\n  dead letters \(1\):\n.*genre"):
        harness.assert_no_dead_letters()


def test_a_kpi_with_other_values_shows_both() -> None:
    harness = Harness(app)
    harness.deliver(EVENTS)
    with pytest.raises(AssertionError) as raised:
        harness.assert_kpi("fees_by_genre", [{"genre": "novel", "loans": 3}, {"genre": None}])
    assert str(raised.value).splitlines()[1:5] == [
        "  expected but missing:",
        "    {genre: 'novel', loans: 3}",
        "      closest found differs in loans: 2 (expected 3)",
        "  found but not expected (columns genre, loans):",
    ]
