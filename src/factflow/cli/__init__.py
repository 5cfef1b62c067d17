"""The `factflow` command line: one module per command, imported only when it runs."""

from __future__ import annotations

import importlib

import click

from factflow.cli.settings import load_defaults

__all__ = ["main"]

#: Command name → the module defining it (as a function of that name, dashes as underscores).
#: A command's module is imported when the command runs: `factflow kpi` does not pay for the
#: broker clients, and a bootstrap of a small file starts sooner.
COMMANDS = {
    "demo": "factflow.cli.demo",
    "simulate": "factflow.cli.simulate",
    "bootstrap": "factflow.cli.bootstrap",
    "rebuild": "factflow.cli.rebuild",
    "run": "factflow.cli.run",
    "publish": "factflow.cli.publish",
    "kpi": "factflow.cli.kpi",
    "query": "factflow.cli.query",
    "dlq": "factflow.cli.dlq",
    "status": "factflow.cli.status",
    "serve": "factflow.cli.serve",
    "contracts": "factflow.cli.contracts",
    "schema": "factflow.cli.schema",
    "new": "factflow.cli.new",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use (click's documented lazy pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        command = getattr(importlib.import_module(module), cmd_name.replace("-", "_"))
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{cmd_name} is not a click command")
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="factflow")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Turn the business events your services publish into a star schema, and answer KPIs.

    Settings: flags, then FACTFLOW_* environment variables, then factflow.toml in the working
    directory, then defaults (the embedded log and a DuckDB file in the working directory).
    """
    ctx.default_map = load_defaults()
