"""`citykit graph`: the deployed architecture drawn as the reference model's layers."""

from __future__ import annotations

import shutil
import subprocess
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption, ProfileOption

from citykit import compiler, diagram
from citykit.errors import OperationFailed, ToolMissing


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"


def register(app: typer.Typer) -> None:
    @app.command()
    def graph(
        profile: ProfileOption,
        env: EnvOption = "dev",
        graph_format: Annotated[
            GraphFormat, typer.Option("--format", "-f", help="mermaid, dot or svg (needs dot).")
        ] = GraphFormat.mermaid,
        out: Annotated[
            Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
        ] = None,
    ) -> None:
        """Draw the city's components by reference-model layer with their dependencies."""
        plan = compiler.plan(profile, env)
        text = diagram.mermaid(plan) if graph_format is GraphFormat.mermaid else diagram.dot(plan)
        data = text.encode()
        if graph_format is GraphFormat.svg:
            binary = shutil.which("dot")
            if binary is None:
                raise ToolMissing(
                    "svg output needs Graphviz's `dot`, which is not installed",
                    hint="apt-get install graphviz, or use --format dot / mermaid",
                )
            result = subprocess.run([binary, "-Tsvg"], input=data, capture_output=True, check=False)
            if result.returncode != 0:
                raise OperationFailed(f"dot failed: {result.stderr.decode(errors='replace')}")
            data = result.stdout
        if out is None:
            typer.echo(data.decode(), nl=False)
            return
        out.write_bytes(data)
        output.say(f"wrote {out}")
