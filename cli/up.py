"""`citykit up`: deploy the city with Pulumi (starting the local cluster when dev needs it)."""

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
    def up(
        profile: ProfileOption,
        env: EnvOption = "dev",
        yes: deployment.YesOption = False,
        output_format: OutputOption = Format.table,
        accept_data_loss: Annotated[
            bool,
            typer.Option(
                "--accept-data-loss",
                help="Where the environment protects data: recreate a stateful component whose "
                "volumes are gone from the cluster with empty ones, instead of stopping.",
            ),
        ] = False,
    ) -> None:
        """Deploy every layer of the city: one Pulumi stack per city and environment, live
        progress per component, generated credentials kept as Pulumi secrets."""
        from citykit.deploy import actions

        compiled, how, say = deployment.prepare(profile, env, output_format)
        actions.confirm(f"deploy {compiled.plan.slug} to {env}?", yes)
        result = actions.up(
            compiled,
            how,
            json_output=output_format is Format.json,
            say=say,
            accept_data_loss=accept_data_loss,
        )
        if output_format is Format.json:
            output.print_json(result.to_json())
            return
        changed = sum(v for k, v in result.resources.items() if k != "same")
        output.say(
            f"{result.stack}: {deployment.counts_line(result.resources)} "
            f"in {result.seconds}s" + ("" if changed else " — no changes")
        )
        output.say(f"status: citykit status -p {profile} -e {env}")
