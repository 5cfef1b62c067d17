"""`factflow dlq list/show/replay` on a real warehouse of each backend, in process."""

import json
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from banking_events import settled
from conftest import service_url
from factflow import App, Consumer, Envelope, Pipeline, insert_first
from factflow.cli import main
from factflow.cli.locations import open_warehouse
from factflow.examples.banking.events import TransactionSettled, UserCreated
from factflow.examples.banking.model import CardTransaction, User
from factflow.examples.banking.pipelines import card_transaction, user_from_created
from factflow.pipeline.steps import update_dimension
from factflow.testing import Harness, envelope


def factflow(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def fragile(*, failing: Collection[str] = (), failing_users: Collection[str] = ()) -> App:
    """The banking transactions and users, with a bug that fails on the ids given."""

    def transaction(event: Envelope[TransactionSettled]) -> CardTransaction:
        if event.data.transaction_id in failing:
            raise RuntimeError(f"a bug: {event.data.transaction_id}")
        return card_transaction(event)

    def user(event: Envelope[UserCreated]) -> User:
        if event.data.user_id in failing_users:
            raise RuntimeError(f"a bug: {event.data.user_id}")
        return user_from_created(event)

    return App(
        "fragile",
        consumers=[
            Consumer("card").pipe(
                TransactionSettled,
                Pipeline(TransactionSettled).map(transaction).then(insert_first(CardTransaction)),
            ),
            Consumer("user").pipe(
                UserCreated, Pipeline(UserCreated).map(user).then(update_dimension(User))
            ),
        ],
    )


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty warehouse of each backend (PostgreSQL: a schema of its own)."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path}/kpi.duckdb"
        return
    url = f"{service_url('postgres')}?schema=test_{uuid.uuid4().hex[:12]}"
    yield url
    from factflow.warehouse.postgres import PostgresWarehouse

    with PostgresWarehouse(url) as store:
        store.drop_schema()


def deliver(url: str, app: App, messages: list[bytes]) -> None:
    """Deliver `messages` to `app` with the warehouse at `url`, as the service would."""
    store = open_warehouse(url)
    try:
        Harness(app, store).deliver(messages)
    finally:
        store.close()


def listed(url: str, *args: str) -> list[dict[str, object]]:
    result = factflow("dlq", "list", "--warehouse", url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def user_created(user_id: str) -> bytes:
    return envelope("user.user_created", {"user_id": user_id, "country": "DK", "segment": "plus"})


def test_replay_after_a_fix_turns_dead_letters_into_facts(warehouse: str) -> None:
    deliver(
        warehouse,
        fragile(failing={"t-2", "t-4"}),
        [*(settled(f"t-{i}") for i in range(5)), b"not json"],
    )
    assert len(listed(warehouse)) == 3

    result = factflow(
        "dlq", "replay", "--app", "factflow.examples.banking", "--warehouse", warehouse
    )
    assert result.exit_code == 0, result.output
    assert "replayed: 3  now stored: 2  still dead: 1" in result.output
    [left] = listed(warehouse)
    assert left["raw"] == "not json"
    assert left["replays"] == 1
    assert "not a valid JSON envelope" in str(left["reason"])

    result = factflow("kpi", "spend_by_currency", "--warehouse", warehouse, "--format", "json")
    assert json.loads(result.output)["rows"] == [
        {"currency": "EUR", "billing_currency": "DKK", "billing_amount": "373.00"}
    ]
    result = factflow("dlq", "replay", "--warehouse", warehouse)  # again: nothing more to do
    assert "replayed: 1  now stored: 0  still dead: 1" in result.output


def test_replay_with_a_type_or_a_domain_leaves_the_other_dead_letters(warehouse: str) -> None:
    deliver(
        warehouse,
        fragile(failing={"t-1"}, failing_users={"u-1"}),
        [settled("t-1"), user_created("u-1")],
    )
    result = factflow("dlq", "replay", "--type", "card.*", "--warehouse", warehouse)
    assert "replayed: 1  now stored: 1  still dead: 0" in result.output
    assert [d["event_type"] for d in listed(warehouse)] == ["user.user_created"]
    result = factflow("dlq", "replay", "--type", "user.user_created", "--warehouse", warehouse)
    assert "replayed: 1  now stored: 1  still dead: 0" in result.output
    assert listed(warehouse) == []


def test_replay_refuses_a_type_pattern_it_cannot_read(warehouse: str) -> None:
    result = factflow("dlq", "replay", "--type", "*.created", "--warehouse", warehouse)
    assert result.exit_code == 1
    assert "give a type (card.transaction_settled) or a domain (card.*)" in result.output


def test_list_filters_by_type(warehouse: str) -> None:
    deliver(
        warehouse,
        fragile(failing={"t-1"}, failing_users={"u-1"}),
        [settled("t-1"), user_created("u-1")],
    )
    assert [d["event_type"] for d in listed(warehouse, "--type", "user.*")] == ["user.user_created"]


def test_show_prints_one_dead_letter_in_full_by_the_start_of_its_id(warehouse: str) -> None:
    long_message = settled("t-1", merchant="A" * 200)
    deliver(warehouse, fragile(failing={"t-1"}), [long_message])
    [letter] = listed(warehouse)
    table = factflow("dlq", "list", "--warehouse", warehouse)
    short = str(letter["id"])[:12]
    assert short in table.output

    result = factflow("dlq", "show", short, "--warehouse", warehouse)
    assert result.exit_code == 0, result.output
    assert f"id:          {letter['id']}" in result.output
    assert "RuntimeError: a bug: t-1" in result.output
    assert long_message.decode() in result.output  # the whole body, not cut short

    result = factflow(
        "dlq", "show", str(letter["id"]), "--warehouse", warehouse, "--format", "json"
    )
    assert json.loads(result.output) == letter


def test_show_of_an_unknown_id_says_where_to_find_them(warehouse: str) -> None:
    deliver(warehouse, fragile(), [b"not json"])
    result = factflow("dlq", "show", "nothing-like-it", "--warehouse", warehouse)
    assert result.exit_code == 1
    assert "no dead letter 'nothing-like-it'; `factflow dlq list` shows their ids" in result.output


def test_show_of_a_start_shared_by_several_asks_for_more(warehouse: str) -> None:
    deliver(warehouse, fragile(), [f"not json {i}".encode() for i in range(17)])
    starts = [str(d["id"])[0] for d in listed(warehouse)]
    shared = next(c for c in starts if starts.count(c) > 1)  # 17 ids, 16 hex digits
    result = factflow("dlq", "show", shared, "--warehouse", warehouse)
    assert result.exit_code == 1
    assert f"several dead letters start with '{shared}'" in result.output
    assert "give more of the id" in result.output


def test_show_prints_a_body_that_is_not_utf8_as_base64(tmp_path: Path) -> None:
    warehouse = f"duckdb:///{tmp_path}/kpi.duckdb"
    deliver(warehouse, fragile(), [b"\xff\xfe"])
    [letter] = listed(warehouse)
    assert letter["raw_base64"] == "//4="
    result = factflow("dlq", "show", str(letter["id"]), "--warehouse", warehouse)
    assert "not UTF-8, as base64):\n//4=" in result.output


def test_the_dlq_commands_take_their_settings_from_factflow_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = f"duckdb:///{tmp_path}/configured.duckdb"
    deliver(warehouse, fragile(failing={"t-1"}), [settled("t-1")])
    (tmp_path / "factflow.toml").write_text(f'warehouse = "{warehouse}"\n')
    monkeypatch.chdir(tmp_path)
    assert "replayed: 1  now stored: 1" in factflow("dlq", "replay").output
    assert "0 dead letters" in factflow("dlq", "list").output
