"""The `factflow` command line: one module per command."""

from __future__ import annotations

import click

from factflow.cli.bootstrap import bootstrap
from factflow.cli.demo import demo
from factflow.cli.dlq import dlq
from factflow.cli.kpi import kpi
from factflow.cli.publish import publish
from factflow.cli.run import run
from factflow.cli.settings import load_defaults
from factflow.cli.simulate import simulate
from factflow.cli.status import status

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="factflow")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Turn the business events your services publish into a star schema, and answer KPIs.

    Settings: flags, then FACTFLOW_* environment variables, then factflow.toml in the working
    directory, then defaults (the embedded log and a DuckDB file in the working directory).
    """
    ctx.default_map = load_defaults()


for command in (demo, simulate, bootstrap, run, publish, kpi, dlq, status):
    main.add_command(command)
