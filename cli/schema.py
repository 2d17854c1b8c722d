"""`citykit schema`: the profile's JSON Schema, for editors (yaml-language-server)."""

from __future__ import annotations

from typing import Annotated

import typer
from citykit.cli import output

from citykit.catalog import load_catalog
from citykit.input.environment import Environment
from citykit.input.profile import profile_model


def register(app: typer.Typer) -> None:
    @app.command()
    def schema(
        environment: Annotated[
            bool, typer.Option("--environment", help="Print the environment file's schema.")
        ] = False,
    ) -> None:
        """Print the JSON Schema of the city profile (or of environment files)."""
        model = Environment if environment else profile_model(load_catalog())
        output.print_json(model.model_json_schema(by_alias=True))
