"""`citykit validate`: check a profile (with an environment) without rendering anything."""

from __future__ import annotations

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import ProfileOption

from citykit import compiler


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(profile: ProfileOption, env: EnvOption = "dev") -> None:
        """Validate a city profile against the schema and the component graph.

        Exit code 0 when valid; 2 with every problem listed as `file: path: message`."""
        plan = compiler.plan(profile, env)
        output.say(
            f"{profile}: valid for environment {plan.environment.name} "
            f"({len(plan.components)} components)"
        )
