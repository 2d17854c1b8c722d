"""`citykit drift`: exit 0 when the live cluster matches the profile, 2 when it drifted."""

from __future__ import annotations

import typer
from citykit.cli import deployment
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption

from citykit.deploy.actions import DriftFound


def register(app: typer.Typer) -> None:
    @app.command()
    def drift(
        profile: ProfileOption,
        env: EnvOption = "dev",
        output_format: OutputOption = Format.table,
    ) -> None:
        """Compare the live cluster with what the profile asks for. Exit 0: no drift; 2: drift
        (the drifted resources are listed); 1: error."""
        from citykit.deploy import actions

        compiled, how, say = deployment.prepare(profile, env, output_format)
        result = actions.drift(compiled, how, json_output=output_format is Format.json, say=say)
        if output_format is Format.json:
            output.print_json(result.to_json())
        else:
            deployment.changes_table("drifted resources", result.changes)
        if result.drift:
            raise DriftFound(
                f"{len(result.changes)} resources drifted from the profile",
                hint=f"restore them with `{how.command('up', '--yes')}`",
            )
        if output_format is not Format.json:
            output.say(f"{result.stack}: no drift")
