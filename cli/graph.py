"""`citykit graph`: the deployed architecture drawn as the reference model's layers."""

from __future__ import annotations

import shutil
import subprocess
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import ProfileOption

from citykit import compiler
from citykit.errors import OperationFailed
from citykit.errors import ToolMissing
from citykit.reports import diagram


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"
    png = "png"


# Formats Graphviz draws from the dot text.
_RENDERED = {GraphFormat.svg, GraphFormat.png}


def _render(text: str, graph_format: GraphFormat) -> bytes:
    binary = shutil.which("dot")
    if binary is None:
        raise ToolMissing(
            f"{graph_format} output needs Graphviz's `dot`, which is not installed",
            hint="apt-get install graphviz, or use --format dot / mermaid",
        )
    command = [binary, *diagram.RENDER_ARGS, f"-T{graph_format}"]
    result = subprocess.run(command, input=text.encode(), capture_output=True, check=False)
    if result.returncode != 0:
        raise OperationFailed(f"dot failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


def register(app: typer.Typer) -> None:
    @app.command()
    def graph(
        profile: ProfileOption,
        env: EnvOption = "dev",
        graph_format: Annotated[
            GraphFormat,
            typer.Option("--format", "-f", help="mermaid, dot, or svg / png (these need dot)."),
        ] = GraphFormat.mermaid,
        out: Annotated[
            Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
        ] = None,
    ) -> None:
        """Draw the city's components as the reference model's figure: layers stacked bottom-up,
        security and operations at the sides, the foundations as a base band, and what each
        component requires or uses as arrows."""
        plan = compiler.plan(profile, env)
        text = diagram.mermaid(plan) if graph_format is GraphFormat.mermaid else diagram.dot(plan)
        data = _render(text, graph_format) if graph_format in _RENDERED else text.encode()
        if out is None:
            if graph_format is GraphFormat.png:
                raise typer.BadParameter("png is binary: give --out FILE", param_hint="--out")
            typer.echo(data.decode(), nl=False)
            return
        out.write_bytes(data)
        output.say(f"wrote {out}")
