"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

ProfileOption = Annotated[
    Path,
    typer.Option(
        "--profile", "-p", help="City profile YAML (see `citykit init`).", show_default=False
    ),
]
EnvOption = Annotated[
    str,
    typer.Option(
        "--env", "-e", help="Environment: dev, staging, prod, or the path of an environment file."
    ),
]


class Format(StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="table for people, json for automation.")
]
OptionalProfileOption = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        "-p",
        help="City profile YAML; without it, every component in the catalog.",
        show_default=False,
    ),
]
