"""`citykit status`: every layer and component, ready / progressing / failed, from the cluster."""

from __future__ import annotations

import typer
from citykit.cli import deployment
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption
from rich.table import Table

from citykit.errors import CitykitError


class NotReady(CitykitError):
    exit_code = 1


def register(app: typer.Typer) -> None:
    @app.command()
    def status(
        profile: ProfileOption,
        env: EnvOption = "dev",
        output_format: OutputOption = Format.table,
    ) -> None:
        """Read the live cluster: each component's objects present and workloads ready. Exit 0
        when everything is ready, 1 otherwise."""
        from citykit.deploy import status as live

        compiled, _, say = deployment.prepare(profile, env, output_format)
        rows = live.live_status(compiled, say)
        if output_format is Format.json:
            output.print_json([vars(r) for r in rows])
        else:
            table = Table(title=f"{compiled.plan.slug} in {env}", title_justify="left")
            for column in ("clause", "layer", "component", "state", "runs", "detail"):
                table.add_column(column)
            colours = {"ready": "green", "progressing": "yellow"}
            for row in rows:
                colour = colours.get(row.state, "red")
                table.add_row(
                    row.clause,
                    row.layer,
                    row.component,
                    f"[{colour}]{row.state}[/]",
                    row.runs,
                    row.detail,
                )
            output.console.print(table)
        not_ready = [r.component for r in rows if r.state != "ready"]
        if not_ready:
            raise NotReady(f"not ready: {', '.join(not_ready)}")
