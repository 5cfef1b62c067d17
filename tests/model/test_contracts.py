"""Event contracts: exported as JSON Schema per type and version, and checked for the changes
that would break on events already published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from factflow import Event, Money, event
from factflow.cli import main
from factflow.errors import ConfigurationError
from factflow.examples.banking import app as banking
from factflow.examples.banking.events import TransactionSettled
from factflow.model.contracts import check_contracts, contract_of, export_contracts


@event("shop.order_placed", version=1)
class OrderPlaced(Event):
    order_id: str
    amount: Money
    note: str | None = None


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    export_contracts([OrderPlaced], tmp_path / "contracts")
    return tmp_path / "contracts"


def messages(changes: list[object]) -> list[str]:
    return [str(change) for change in changes]


def test_a_contract_is_the_json_schema_of_the_whole_envelope() -> None:
    contract = contract_of(TransactionSettled)
    assert contract["title"] == "card.transaction_settled v1"
    assert contract["properties"]["type"] == {"const": "card.transaction_settled"}
    assert contract["properties"]["version"] == {"const": 1}
    payload = contract["$defs"]["TransactionSettled"]
    assert payload["properties"]["amount"]["type"] == "string"  # amounts are strings
    assert "transaction_id" in payload["required"]


def test_unchanged_declarations_are_compatible(exported: Path) -> None:
    assert check_contracts([OrderPlaced], exported) == []


def test_a_removed_or_renamed_field_is_breaking(exported: Path) -> None:
    @event("shop.order_placed", version=1)
    class Renamed(Event):
        order_id: str
        total: Money
        note: str | None = None

    assert messages(check_contracts([Renamed], exported)) == [
        "breaking: shop.order_placed v1: field `amount` removed (renamed to total?)",
        "breaking: shop.order_placed v1: new field `total` is required",
    ]


def test_a_retyped_field_is_breaking(exported: Path) -> None:
    @event("shop.order_placed", version=1)
    class Retyped(Event):
        order_id: int
        amount: Money
        note: str | None = None

    [change] = check_contracts([Retyped], exported)
    assert change.kind == "breaking"
    assert "field `order_id` changed from" in change.message


def test_a_new_optional_field_is_compatible_and_a_new_type_too(exported: Path) -> None:
    @event("shop.order_placed", version=1)
    class Grown(Event):
        order_id: str
        amount: Money
        note: str | None = None
        coupon: str | None = None

    changes = check_contracts([Grown, TransactionSettled], exported)
    assert {c.kind for c in changes} == {"compatible"}


def test_an_event_version_no_longer_declared_is_breaking(exported: Path) -> None:
    [change] = check_contracts([], exported)
    assert change.kind == "breaking"
    assert "no longer declared" in change.message


def test_checking_without_exported_contracts_says_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="factflow contracts export"):
        check_contracts([OrderPlaced], tmp_path / "missing")


def test_the_command_line_exports_then_checks_with_an_exit_status_for_ci(tmp_path: Path) -> None:
    runner = CliRunner()
    app = ["--app", "factflow.examples.banking"]
    exported = runner.invoke(main, ["contracts", "export", *app, str(tmp_path)])
    assert exported.exit_code == 0, exported.output
    assert len(list(tmp_path.glob("*.json"))) == len(banking.event_versions) == 8
    checked = runner.invoke(main, ["contracts", "check", *app, str(tmp_path)])
    assert checked.exit_code == 0
    assert "compatible" in checked.output

    contract = tmp_path / "card.transaction_settled.v1.json"
    schema = json.loads(contract.read_text())
    schema["$defs"]["TransactionSettled"]["properties"]["tip"] = {"type": "string"}
    schema["$defs"]["TransactionSettled"]["required"].append("tip")
    contract.write_text(json.dumps(schema))  # as if `tip` had been removed since
    broken = runner.invoke(main, ["contracts", "check", *app, str(tmp_path)])
    assert broken.exit_code == 1
    assert "field `tip` removed" in broken.output
