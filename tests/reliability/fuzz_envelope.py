"""Coverage-guided fuzzing of the envelope decoder with atheris (if installed).

    .venv/bin/python tests/reliability/fuzz_envelope.py -runs=100000 [-max_len=4096] [CORPUS_DIR]

Any exception but the documented `DecodeError` / `UnknownEventError` is a crash that atheris
reports with the input that caused it; `-timeout=5` (the default here) makes a hang one too.
The seeds are a valid envelope and a few near misses, so that mutations start from real shapes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from factflow.errors import DecodeError, UnknownEventError
    from factflow.examples.banking import app
    from factflow.model.decoding import EventDecoder

DECODER = EventDecoder(app.events, app.upcasters)
SEED = (
    b'{"id": "e-1", "type": "card.transaction_settled", "source": "card-service", '
    b'"occurred_at": "2026-03-01T12:00:00Z", "version": 1, "data": {"transaction_id": "t-1", '
    b'"card_id": "c-1", "user_id": "u-1", "amount": "10.00", "currency": "EUR", '
    b'"billing_amount": "74.60", "billing_currency": "DKK", "merchant": "Hotel", '
    b'"merchant_category": "travel", "merchant_country": "DE"}}'
)


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
    test_one_input(SEED)  # the seed itself must decode
    for folder in (Path(a) for a in argv[1:] if not a.startswith("-")):
        if folder.is_dir() and not any(folder.iterdir()):
            (folder / "valid-envelope").write_bytes(SEED)  # start from a real shape
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
