"""Coverage-guided fuzzing of the envelope decoder with atheris (if installed).

    .venv/bin/python tests/reliability/fuzz_envelope.py -runs=100000 [-max_len=4096] [CORPUS_DIR]

Any exception but the documented `DecodeError` / `UnknownEventError` is a crash that atheris
reports with the input that caused it; `-timeout=5` (the default here) makes a hang one too.
An empty CORPUS_DIR is seeded with a valid envelope of every event type of the banking app, so
that mutations start from real shapes, and a dictionary of the envelope's field names, event
types and JSON tokens is given to libFuzzer (`-dict=`) unless one is.

Only factflow's own modules are instrumented: msgspec parses in C, and the Python around it
(the decoder, its decode hooks for money, decimals and instants, the error messages built from
msgspec's paths) is what coverage can guide.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import atheris

# The libraries the app imports (pyarrow, numpy) are left uninstrumented: instrumenting them
# takes seconds and guides nothing the decoder does.
import pyarrow  # noqa: F401

with atheris.instrument_imports(include=["factflow"]):
    from factflow.errors import DecodeError, UnknownEventError
    from factflow.examples.banking import app
    from factflow.examples.banking.simulator import SimulationOptions, simulate
    from factflow.model.decoding import EventDecoder

DECODER = EventDecoder(app.events, app.upcasters)
#: Tokens libFuzzer splices into inputs: the envelope's fields, the types, JSON's odd corners.
TOKENS = [
    *("id", "type", "source", "occurred_at", "version", "data"),
    *(event.__factflow_event__.type for event in app.event_versions),
    *("amount", "currency", "balance", "transaction_id", "user_id", "card_id"),
    "null", "true", "false", "-0", "1e999", "0.1e-2", "[]", "{}", '"\\u0000"', '"\\ud800"',
    "2026-02-30T25:61:00Z", "2026-03-01T12:00:00+14:00", "NaN", "Infinity",
]  # fmt: skip


def seeds() -> dict[str, bytes]:
    """The first valid envelope of each event type the simulator publishes."""
    found: dict[str, bytes] = {}
    for raw in simulate(SimulationOptions(events=400, seed=8)):
        try:
            event_type = json.loads(raw)["type"]
        except (ValueError, KeyError, TypeError):
            continue
        found.setdefault(event_type, raw)
    return found


def test_one_input(raw: bytes) -> None:
    try:
        DECODER.decode(raw)
    except (DecodeError, UnknownEventError) as error:
        if not str(error).strip():
            raise AssertionError("a dead letter without a reason") from error
    DECODER.decode_batch([raw])


def main(argv: list[str]) -> None:
    if not any(arg.startswith("-timeout=") for arg in argv):
        argv = [*argv, "-timeout=5"]
    starts = seeds()
    for raw in starts.values():
        DECODER.decode(raw)  # every seed must decode
    for folder in (Path(a) for a in argv[1:] if not a.startswith("-")):
        if folder.is_dir() and not any(folder.iterdir()):
            for event_type, raw in starts.items():
                (folder / event_type).write_bytes(raw)
    if not any(arg.startswith("-dict=") for arg in argv):
        # One file, rewritten by every run: `atheris.Fuzz` exits the process, so nothing could
        # remove a file of its own afterwards.
        tokens = Path(tempfile.gettempdir()) / "factflow-fuzz-envelope.dict"
        tokens.write_text("".join(f"{json.dumps(token)}\n" for token in TOKENS))
        argv = [*argv, f"-dict={tokens}"]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
