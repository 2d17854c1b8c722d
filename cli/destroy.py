"""`citykit destroy`: remove what citykit deployed; protected data stays unless asked."""

from __future__ import annotations

from typing import Annotated

import typer
from citykit.cli import deployment
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption


def register(app: typer.Typer) -> None:
    @app.command()
    def destroy(
        profile: ProfileOption,
        env: EnvOption = "dev",
        yes: deployment.YesOption = False,
        delete_data: Annotated[
            bool,
            typer.Option(
                "--delete-data",
                help="Also delete protected stateful resources (databases, lake, volumes) in "
                "environments with protectData.",
            ),
        ] = False,
        output_format: OutputOption = Format.table,
    ) -> None:
        """Destroy the city's deployment. In environments with protectData (staging, prod) the
        stateful components are kept unless --delete-data is given."""
        from citykit.deploy import actions

        compiled, how, say = deployment.prepare(profile, env, output_format)
        what = "everything, including data" if delete_data else "the deployment"
        actions.confirm(f"destroy {what} of {compiled.plan.slug} in {env}?", yes)
        result = actions.destroy(
            compiled,
            how,
            json_output=output_format is Format.json,
            say=say,
            delete_data=delete_data,
        )
        if output_format is Format.json:
            output.print_json(result.to_json())
            return
        output.say(
            f"{result.stack}: {deployment.counts_line(result.resources)} in {result.seconds}s"
        )
        if result.kept_protected:
            output.say(
                "kept (protected data): "
                + ", ".join(result.kept_protected)
                + " — pass --delete-data to delete them too"
            )
        if result.kept_dependencies:
            output.say(
                "kept because the protected data depends on them: "
                + ", ".join(result.kept_dependencies)
            )
