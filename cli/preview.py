"""`citykit preview`: what `up` would change, without changing anything."""

from __future__ import annotations

from typing import Annotated

import typer
from citykit.cli import deployment
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption

from citykit.errors import CitykitError


class ChangesExpected(CitykitError):
    exit_code = 2


def register(app: typer.Typer) -> None:
    @app.command()
    def preview(
        profile: ProfileOption,
        env: EnvOption = "dev",
        expect_no_changes: Annotated[
            bool, typer.Option("--expect-no-changes", help="Exit 2 when anything would change.")
        ] = False,
        output_format: OutputOption = Format.table,
    ) -> None:
        """Show the changes `citykit up` would make, per component."""
        from citykit.deploy import actions

        compiled, how, say = deployment.prepare(profile, env, output_format)
        result = actions.preview(compiled, how, json_output=output_format is Format.json, say=say)
        if output_format is Format.json:
            output.print_json(result.to_json())
        else:
            deployment.changes_table("changes", result.changes)
            output.say(f"{result.stack}: {deployment.counts_line(result.counts)}")
        if expect_no_changes and result.changed:
            raise ChangesExpected(
                f"{len(result.changes)} resources would change", hint=how.command("up", "--yes")
            )
