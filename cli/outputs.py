"""`citykit outputs`: endpoints and credential references of the deployed city."""

from __future__ import annotations

import typer
from citykit.cli import deployment
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command()
    def outputs(
        profile: ProfileOption,
        env: EnvOption = "dev",
        output_format: OutputOption = Format.table,
    ) -> None:
        """Show each component's endpoints and the Secrets holding its credentials (names,
        never values)."""
        from citykit.deploy import actions

        compiled, how, say = deployment.prepare(profile, env, output_format)
        result = actions.outputs(compiled, how, say=say)
        if output_format is Format.json:
            output.print_json(result.to_json())
            return
        table = Table(title="outputs", title_justify="left")
        table.add_column("component")
        table.add_column("value", overflow="fold")
        for name, value in result.values.items():
            table.add_row(
                name,
                value
                if isinstance(value, str)
                else __import__("json").dumps(value, ensure_ascii=False),
            )
        output.console.print(table)
