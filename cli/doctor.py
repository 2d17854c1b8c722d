"""`citykit doctor`: one table of what citykit needs and whether it is there."""

from __future__ import annotations

import typer
from citykit.cli import output
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from rich.table import Table

from citykit.deploy import doctor as checks
from citykit.errors import CitykitError

COLOURS = {"ok": "green", "missing": "red", "warning": "yellow"}


class Unhealthy(CitykitError):
    """Something `dev` needs is missing: exit 2."""

    exit_code = 2


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(output_format: OutputOption = Format.table) -> None:
        """Check what citykit needs: Python, kubectl, Go, the built tools, the engine and
        provider it will use, the state backend, the passphrase source, the kind provider's
        container engine, and each shipped environment's cluster (reachable, server version).
        Each problem names the command that fixes it.

        Exit 0 when everything `dev` needs is there (an environment's cluster that is not
        running is reported, not a failure: `citykit up` starts the local one), 2 otherwise."""
        rows = checks.checks()
        if output_format is Format.json:
            output.print_json({"ok": checks.healthy(rows), "checks": [r.view() for r in rows]})
        else:
            table = Table(title="citykit doctor", title_justify="left")
            for column in ("check", "status", "needed for", "detail", "fix"):
                table.add_column(column, overflow="fold")
            for row in rows:
                colour = COLOURS[row.status]
                table.add_row(
                    row.check,
                    f"[{colour}]{row.status}[/]",
                    row.needed_for,
                    row.detail,
                    row.hint or "-",
                )
            output.console.print(table)
        missing = [row for row in rows if row.required and not row.ok]
        if missing:
            raise Unhealthy(
                "missing for dev: " + ", ".join(row.check for row in missing),
                hint="; ".join(dict.fromkeys(row.hint for row in missing if row.hint)),
            )
        if output_format is not Format.json:
            output.say("everything dev needs is there")
