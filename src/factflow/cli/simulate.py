"""`factflow simulate --events N --out FILE.jsonl`: banking events for demos, tests, benchmarks."""

from __future__ import annotations

from pathlib import Path

import click

from factflow.cli.output import stdout
from factflow.examples.banking.simulator import SimulationOptions
from factflow.examples.banking.simulator import simulate as generate
from factflow.transport.files import write_lines

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
    required=True,
    help="The file to write: .jsonl, or .jsonl.gz to compress.",
)
@simulation_options
def simulate(
    events: int,
    out: Path,
    seed: int,
    duplicates: float,
    republications: float,
    shuffle_window: int,
    bad_lines: float,
) -> None:
    """Write a realistic stream of banking events (banking.md) to a file."""
    options = SimulationOptions(
        events=events,
        seed=seed,
        duplicates=duplicates,
        republications=republications,
        shuffle_window=shuffle_window,
        bad_lines=bad_lines,
    )
    written = write_lines(out, generate(options))
    stdout.print(f"wrote {written} events to {out}")
