"""`citykit init`: write a commented starter profile that validates."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from citykit.cli import output

from citykit.errors import InputError


def register(app: typer.Typer) -> None:
    @app.command()
    def init(
        path: Annotated[Path, typer.Argument(help="Where to write the profile.")],
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    ) -> None:
        """Write a commented starter city profile to PATH."""
        if path.exists() and not force:
            raise InputError(f"{path} already exists", hint="pass --force to overwrite it")
        starter = (
            resources.files("citykit.templates")
            .joinpath("init/profile.yaml")
            .read_text(encoding="utf-8")
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(starter, encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror}") from None
        output.say(f"wrote {path}; next: citykit validate -p {path}")
