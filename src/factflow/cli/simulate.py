"""`factflow simulate --events N [--out FILE] [--to postgresql://…]`: one simulation of the bank,
as its event stream and as its services' own tables, for demos, tests, benchmarks and
bootstraps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from factflow.cli.locations import redact
from factflow.cli.output import stdout
from factflow.cli.settings import fail
from factflow.errors import FactflowError
from factflow.examples.banking.simulator import SimulationOptions
from factflow.examples.banking.simulator import simulate as generate
from factflow.transport.files import is_parquet, write_events

__all__ = ["simulate", "simulation_options"]


def simulation_options(function: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option(
                "--seed", type=int, default=0, show_default=True, help="Same seed, same events."
            ),
            click.option(
                "--duplicates",
                type=click.FloatRange(0, 1),
                default=0.0,
                show_default=True,
                help="Fraction of envelopes delivered twice.",
            ),
            click.option(
                "--republications",
                type=click.FloatRange(0, 1),
                default=0.0,
                show_default=True,
                help="Fraction of business events published again under a new id.",
            ),
            click.option(
                "--shuffle-window",
                type=click.IntRange(min=0),
                default=0,
                show_default=True,
                help="Arrival out of order within windows of this many envelopes.",
            ),
            click.option(
                "--bad-lines",
                type=click.FloatRange(0, 1),
                default=0.0,
                show_default=True,
                help="Fraction of invalid messages mixed in.",
            ),
        ]
    ):
        function = option(function)
    return function


@click.command()
@click.option("--events", type=click.IntRange(min=0), required=True, help="How many envelopes.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The event file to write: .jsonl, .jsonl.gz (compressed) or .parquet.",
)
@click.option(
    "--to",
    metavar="URL",
    help=(
        "Also write the services' own tables (users, accounts, cards, transactions, goals) "
        "to this empty PostgreSQL database; ?schema=NAME for a schema of its own."
    ),
)
@simulation_options
def simulate(
    events: int,
    out: Path | None,
    to: str | None,
    seed: int,
    duplicates: float,
    republications: float,
    shuffle_window: int,
    bad_lines: float,
) -> None:
    """Simulate the bank of banking.md: its event stream, its services' state, or both.

    With --out, the stream (with the delivery faults asked for) goes to a file; with --to, the
    state the business events leave in the services' databases goes to PostgreSQL, for
    `factflow bootstrap --from URL` to read back.
    """
    if out is None and to is None:
        raise click.UsageError("give --out FILE, --to URL, or both")
    if out is not None and is_parquet(out) and bad_lines:
        raise click.UsageError(
            "a Parquet file keeps envelopes field by field and cannot hold invalid messages: "
            "drop --bad-lines, or write .jsonl"
        )
    options = SimulationOptions(
        events=events,
        seed=seed,
        duplicates=duplicates,
        republications=republications,
        shuffle_window=shuffle_window,
        bad_lines=bad_lines,
    )
    try:
        if to is not None:
            _simulate_to(options, out, to)
        elif out is not None:
            stdout.print(f"wrote {write_events(out, generate(options))} events to {out}")
    except FactflowError as error:
        raise fail(error) from None


def _simulate_to(options: SimulationOptions, out: Path | None, to: str) -> None:
    from factflow.examples.banking.services import ServiceState
    from factflow.examples.banking.source_db import SourceDatabase

    with SourceDatabase(to) as database:
        state = ServiceState(database.add_transaction)
        stream = generate(options, record=state.record)
        written = write_events(out, stream) if out is not None else _drain(stream)
        counts = database.finish(state)
    if out is not None:
        stdout.print(f"wrote {written} events to {out}")
    tables = ", ".join(f"{table}: {rows}" for table, rows in counts.items())
    stdout.print(f"wrote the services' tables to {redact(to)} ({tables})")


def _drain(stream: Iterator[bytes]) -> int:
    return sum(1 for _ in stream)
