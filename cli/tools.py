"""`citykit tools`: build and locate the Go programs citykit runs (engine, provider, cluster)."""

from __future__ import annotations

import time

import typer
from citykit.cli import output
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from rich.table import Table

from citykit import go_build
from citykit import toolchain

app = typer.Typer(
    help="Build (once, cached) and locate the Pulumi engine, the Kubernetes "
    "provider and the local control plane binaries.",
    no_args_is_help=True,
)


@app.command()
def install() -> None:
    """Build every missing tool from its pinned Go module into ~/.cache/citykit/tools.

    A warm cache makes this a no-op. A cold build takes several minutes on two cores."""
    started = time.monotonic()

    def progress(tool: toolchain.Tool, state: str) -> None:
        elapsed = time.monotonic() - started
        output.say(f"[{elapsed:6.1f}s] {tool.name} {tool.version}: {state}")

    built = go_build.install(progress)
    total = time.monotonic() - started
    output.say(
        f"{len(built)} built, {len(toolchain.TOOLS) - len(built)} cached, "
        f"{total:.1f}s; binaries in {toolchain.bin_dir()}"
    )


@app.command()
def path() -> None:
    """Print the directory that holds every built tool (put it on PATH to use them by hand)."""
    output.say(str(toolchain.bin_dir()))


@app.command("list")
def list_tools(output_format: OutputOption = Format.table) -> None:
    """List the tools, their pinned versions and whether they are built."""
    rows = [
        {"tool": t.name, "version": t.version, "built": t.built(), "path": str(t.binary)}
        for t in toolchain.TOOLS
    ]
    if output_format is Format.json:
        output.print_json(rows)
        return
    table = Table(title="citykit tools")
    for column in ("tool", "version", "built", "path"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["tool"]), str(row["version"]), "yes" if row["built"] else "no", str(row["path"])
        )
    output.console.print(table)
