"""The entry of a measured in-process case: ``python -m benchmarks.worker CASE JSON_PARAMS``.

Runs one case in this (fresh) interpreter and prints its result as one JSON line, last. Cases
import what they need themselves, so this process holds only what its case uses.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["CASES", "main"]

#: case name → "module:function" in `benchmarks`; the function takes the JSON params as keywords.
CASES = {
    "read_json": "baselines:read_json",
    "decode": "baselines:decode",
    "per_event": "baselines:per_event",
    "dlt": "baselines:dlt_load",
    "kpi_latency": "kpi:time_kpis",
    "profile_bootstrap": "profiling:profile_bootstrap",
    "raw_consume": "production:raw_consume",
    "raw_copy": "production:raw_copy",
    "stages": "stages:time_stages",
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in CASES:
        print(f"usage: python -m benchmarks.worker {{{','.join(CASES)}}} JSON", file=sys.stderr)
        return 2
    function = _load(CASES[argv[0]])
    result = function(**json.loads(argv[1]))
    print(json.dumps(result))
    return 0


def _load(reference: str) -> Callable[..., Any]:
    module, _, name = reference.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(f"benchmarks.{module}"), name)
    return function


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
