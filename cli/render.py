"""`citykit render`: write the manifests of a city to a directory, for review or GitOps."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption

from citykit import compiler
from citykit import manifests


def register(app: typer.Typer) -> None:
    @app.command()
    def render(
        profile: ProfileOption,
        out: Annotated[Path, typer.Option("--out", help="Output directory (replaced as a whole).")],
        env: EnvOption = "dev",
        output_format: OutputOption = Format.table,
    ) -> None:
        """Render every Kubernetes object of the city to OUT, one folder per layer and one file
        per component, objects in apply order; kustomization.yaml lists files in graph order."""
        started = time.perf_counter()
        compiled = compiler.compile_city(profile, env)
        written = manifests.write(compiled, out)
        elapsed = time.perf_counter() - started
        count = len(compiled.objects())
        if output_format is Format.json:
            output.print_json(
                {
                    "out": str(out),
                    "objects": count,
                    "files": sorted(written),
                    "seconds": round(elapsed, 3),
                }
            )
            return
        output.say(
            f"rendered {count} objects of {len(compiled.units)} components to {out} "
            f"in {elapsed:.2f}s"
        )
