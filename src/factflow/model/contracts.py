"""Event contracts: the JSON Schema of every event type and version an app reads, and the check
that tells a team's CI when a change to the declarations would break on events already out there.

`export_contracts` writes one file per event type and version (`card.transaction_settled.v1.json`):
the whole envelope, with `data` described by the payload class. `check_contracts` compares the
app's current declarations with such a set. Breaking: a type or version no longer read, a field
removed (or renamed: removed and added), a field whose type changed, a field that became
required. Compatible: new types and versions, new optional fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import msgspec

from factflow.errors import ConfigurationError
from factflow.model.declare import Event
from factflow.model.types import MONEY_PRECISION, MONEY_SCALE, Money

__all__ = ["Change", "check_contracts", "contract_of", "export_contracts"]

_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_MONEY = {
    "type": "string",
    "pattern": rf"^-?[0-9]{{1,{MONEY_PRECISION - MONEY_SCALE}}}(\.[0-9]{{1,{MONEY_SCALE}}})?$",
    "description": "an exact decimal amount, as a string",
}


class Change(msgspec.Struct, frozen=True):
    """One difference between an exported contract and the current declarations."""

    event: str  # "<type> v<version>"
    kind: Literal["breaking", "compatible"]
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.event}: {self.message}"


def contract_of(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema of an envelope carrying the payload class `cls`."""
    meta = cls.__factflow_event__
    payload = msgspec.json.schema(cls, schema_hook=_schema_hook)
    return {
        "$schema": _DRAFT,
        "title": f"{meta.type} v{meta.version}",
        "type": "object",
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "type": {"const": meta.type},
            "source": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "version": {"const": meta.version},
            "data": {"$ref": payload["$ref"]},
        },
        "required": ["id", "type", "source", "occurred_at", "version", "data"],
        "$defs": payload["$defs"],
    }


def export_contracts(events: Iterable[type[Event]], directory: Path) -> list[Path]:
    """Write the contract of every event class into `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for cls in events:
        meta = cls.__factflow_event__
        path = directory / f"{meta.type}.v{meta.version}.json"
        path.write_text(json.dumps(contract_of(cls), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def check_contracts(events: Iterable[type[Event]], directory: Path) -> list[Change]:
    """What changed between the contracts exported into `directory` and `events` now."""
    exported = _load(directory)
    current = {_name(cls): contract_of(cls) for cls in events}
    changes: list[Change] = []
    for name, old in sorted(exported.items()):
        new = current.get(name)
        if new is None:
            changes.append(
                Change(
                    name,
                    "breaking",
                    "no longer declared: its events would be dead letters "
                    "(keep the class, or declare an upcaster from it)",
                )
            )
            continue
        changes += _compare(name, _payload(old), _payload(new))
    for name in sorted(current.keys() - exported.keys()):
        changes.append(Change(name, "compatible", "new event type or version"))
    return changes


def _compare(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes = []
    old_fields, new_fields = old["properties"], new["properties"]
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    added = {f: s for f, s in new_fields.items() if f not in old_fields}
    for field, schema in old_fields.items():
        if field not in new_fields:
            renamed = [f for f, s in added.items() if s == schema]
            hint = f" (renamed to {', '.join(renamed)}?)" if renamed else ""
            changes.append(Change(name, "breaking", f"field `{field}` removed{hint}"))
        elif new_fields[field] != schema:
            changes.append(
                Change(
                    name,
                    "breaking",
                    f"field `{field}` changed from {_show(schema)} to {_show(new_fields[field])}",
                )
            )
        elif field in new_required and field not in old_required:
            changes.append(Change(name, "breaking", f"field `{field}` is now required"))
    for field in added:
        if field in new_required:
            changes.append(Change(name, "breaking", f"new field `{field}` is required"))
        else:
            changes.append(Change(name, "compatible", f"new optional field `{field}`"))
    return changes


def _payload(contract: dict[str, Any]) -> dict[str, Any]:
    """The payload's object schema, with every reference replaced by what it refers to."""
    definitions = contract.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items() if key != "description"}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    payload: dict[str, Any] = resolve(contract["properties"]["data"])
    payload.setdefault("properties", {})
    return payload


def _load(directory: Path) -> dict[str, dict[str, Any]]:
    if not directory.is_dir():
        raise ConfigurationError(
            f"no exported contracts in {directory}: write them first with "
            f"`factflow contracts export --app … {directory}`"
        )
    contracts = {}
    for path in sorted(directory.glob("*.json")):
        try:
            contract = json.loads(path.read_text())
            contracts[contract["title"]] = contract
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(f"{path} is not an exported contract: {error}") from None
    return contracts


def _name(cls: type[Event]) -> str:
    meta = cls.__factflow_event__
    return f"{meta.type} v{meta.version}"


def _show(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True)


def _schema_hook(kind: type) -> dict[str, Any]:
    if kind is Money:
        return dict(_MONEY)
    raise NotImplementedError(f"no JSON Schema for {kind!r}")
