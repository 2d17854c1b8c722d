"""Shared by the deployment commands (up, preview, destroy, refresh, drift): compile, run an
action, print its result as a table or JSON. Commands stay a few lines each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated

import typer
from citykit.cli import output
from citykit.cli.options import Format
from rich.table import Table

from citykit import compiler
from citykit.compiler import Compiled

if TYPE_CHECKING:
    from citykit.deploy.operation import Invocation

YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
]


def prepare(
    profile: Path, env: str, output_format: Format
) -> tuple[Compiled, Invocation, Callable[[str], None]]:
    from citykit.deploy.operation import Invocation

    compiled = compiler.compile_city(profile, env)
    json_output = output_format is Format.json
    say = output.say_err if json_output else output.say
    return compiled, Invocation(str(profile), env), say


def changes_table(title: str, changes: list[dict[str, str]]) -> None:
    if not changes:
        return
    table = Table(title=title, title_justify="left")
    for column in ("op", "component", "type", "resource"):
        table.add_column(column)
    for change in changes:
        table.add_row(change["op"], change["component"], change["type"], change["name"])
    output.console.print(table)


def counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if v) or "nothing"
