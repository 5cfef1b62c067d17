"""The issue's targets, judged from the figures of one run.

Every ratio compares two cases measured side by side in the same run on the same stream; where
a case was measured at several sizes, the largest size both were measured at is the basis.
A target whose figures were not measured in this run is neither met nor missed (`met` is None),
and says what is missing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ["MEMORY_RATIO", "judge", "rate", "ratio_at"]

#: The most the peak memory of 10^7 events may be, as a multiple of that of 10^5 events.
MEMORY_RATIO = 1.5

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


def rate(cases: list[dict[str, Any]], case: str, events: int) -> float | None:
    """The events/s of `case` at `events`, if measured."""
    for entry in cases:
        if entry["case"] == case and entry["events"] == events:
            value: float | None = entry["events_per_s"]
            return value
    return None


def ratio_at(cases: list[dict[str, Any]], top: str, bottom: str) -> tuple[float, int] | None:
    """(rate of `top` / rate of `bottom`, size) at the largest size both were measured at."""
    sizes = sorted({c["events"] for c in cases}, reverse=True)
    for events in sizes:
        a, b = rate(cases, top, events), rate(cases, bottom, events)
        if a and b:
            return a / b, events
    return None


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of issue 4, with its value in this run and whether it was met."""
    families = results["families"]
    embedded = families.get("embedded", {}).get("cases", [])
    return [
        _ratio_target(
            "embedded bootstrap vs DuckDB read_json",
            embedded,
            "factflow_bootstrap",
            "read_json",
            ">=",
            0.40,
        ),
        _ratio_target("factflow bootstrap vs dlt", embedded, "factflow_bootstrap", "dlt", ">=", 20),
        _ratio_target(
            "factflow bootstrap vs the per-event design",
            embedded,
            "factflow_bootstrap",
            "per_event",
            ">=",
            300,
        ),
        _production_target(families.get("production", {})),
        _memory_target(families.get("memory", {})),
        _kpi_target(families.get("kpi", {})),
    ]


def _target(
    name: str, op: str, threshold: float, value: float | None, basis: str, note: str = ""
) -> dict[str, Any]:
    met = None if value is None else _OPERATORS[op](value, threshold)
    return {
        "name": name,
        "target": f"{op} {threshold:g}",
        "value": None if value is None else round(value, 4),
        "basis": basis,
        "met": met,
        "note": note,
    }


def _ratio_target(
    name: str, cases: list[dict[str, Any]], top: str, bottom: str, op: str, threshold: float
) -> dict[str, Any]:
    found = ratio_at(cases, top, bottom)
    if found is None:
        return _target(
            name,
            op,
            threshold,
            None,
            f"not measured: no size with both {top} and {bottom} in this run",
        )
    value, events = found
    return _target(name, op, threshold, value, f"events/s ratio at {events:,} events")


def _production_target(production: dict[str, Any]) -> dict[str, Any]:
    name = "RabbitMQ → factflow run → PostgreSQL vs raw consume of the same queue"
    if not production.get("measured"):
        reason = production.get("reason", "the production family did not run")
        return _target(name, ">=", 0.70, None, f"not measured: {reason}")
    found = ratio_at(production["cases"], "factflow_run_1", "raw_consume")
    if found is None:
        return _target(name, ">=", 0.70, None, "not measured: no size with both cases")
    value, events = found
    return _target(name, ">=", 0.70, value, f"events/s ratio at {events:,} events, 1 consumer")


def _memory_target(memory: dict[str, Any]) -> dict[str, Any]:
    name = "peak RSS of the bootstrap at 10^7 events vs at 10^5"
    cases = [c for c in memory.get("cases", []) if c["case"] == "factflow_bootstrap"]
    by_size = {c["events"]: c for c in cases}
    base = by_size.get(100_000)
    if base is None:
        return _target(name, "<=", MEMORY_RATIO, None, "not measured: 10^5 events not in this run")
    if 10_000_000 in by_size:
        value = by_size[10_000_000]["peak_rss"] / base["peak_rss"]
        return _target(name, "<=", MEMORY_RATIO, value, "peak RSS ratio, 10^7 / 10^5")
    largest = max(by_size)
    indication = by_size[largest]["peak_rss"] / base["peak_rss"]
    return _target(
        name,
        "<=",
        MEMORY_RATIO,
        None,
        "not measured: 10^7 events only with --full",
        f"at {largest:,} events the ratio to 10^5 is {indication:.2f}",
    )


def _kpi_target(kpi: dict[str, Any]) -> dict[str, Any]:
    name = "slowest banking KPI over 10M transactions on DuckDB"
    warehouses = [w for w in kpi.get("warehouses", []) if w["backend"] == "duckdb"]
    if not warehouses:
        reason = kpi.get("failed", "the kpi family did not run")
        return _target(name, "<", 1.0, None, f"not measured: {reason}")
    largest = max(warehouses, key=lambda w: w["transactions"])
    slowest = max(largest["kpis"], key=lambda k: k["median_seconds"])
    basis = (
        f"median of {kpi['repeats']} answers, {largest['transactions']:,} transactions"
        f" ({slowest['kpi']})"
    )
    if largest["transactions"] < 10_000_000:
        return _target(
            name,
            "<",
            1.0,
            None,
            "not measured: the 10M warehouse only with --full",
            f"slowest at {largest['transactions']:,}: {slowest['median_seconds']:.3f} s"
            f" ({slowest['kpi']})",
        )
    return _target(name, "<", 1.0, slowest["median_seconds"], basis)
