"""`factflow publish FILE.jsonl`: publish events as a source service would."""

from __future__ import annotations

from pathlib import Path

import click

from factflow.cli.locations import open_transport
from factflow.cli.output import stderr, stdout
from factflow.cli.settings import fail, transport_option
from factflow.errors import FactflowError
from factflow.transport.files import read_lines
from factflow.transport.publishing import Unroutable, outgoing

__all__ = ["publish"]


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@transport_option
def publish(file: Path, transport: str) -> None:
    """Publish every envelope of FILE (.jsonl or .jsonl.gz) to the transport, routed by type.

    Lines whose `type` and `id` cannot be read are reported and not published (exit status 1).
    """
    refused: list[Unroutable] = []
    published = 0
    try:
        target = open_transport(transport)
        try:
            for lines in read_lines(file, 10_000):
                published += target.publish(outgoing(lines, refused))
        finally:
            target.close()
    except FactflowError as error:
        raise fail(error) from None
    stdout.print(f"published {published} events")
    if refused:
        for problem in refused[:20]:
            stderr.print(f"not published: message {problem.number}: {problem.reason}")
        raise click.ClickException(f"{len(refused)} messages could not be routed")
