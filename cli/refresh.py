"""`citykit refresh`: read the live cluster into the stack's state."""

from __future__ import annotations

import typer
from citykit.cli import deployment
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption


def register(app: typer.Typer) -> None:
    @app.command()
    def refresh(
        profile: ProfileOption,
        env: EnvOption = "dev",
        yes: deployment.YesOption = False,
        output_format: OutputOption = Format.table,
    ) -> None:
        """Update the recorded state from the live cluster (clears pending operations of a
        killed run)."""
        from citykit.deploy import actions

        compiled, how, say = deployment.prepare(profile, env, output_format)
        actions.confirm(f"refresh the state of {compiled.plan.slug} in {env}?", yes)
        result = actions.refresh(compiled, how, json_output=output_format is Format.json, say=say)
        if output_format is Format.json:
            output.print_json(result.to_json())
            return
        deployment.changes_table("refreshed", result.changes)
        output.say(f"{result.stack}: {deployment.counts_line(result.resources)}")
