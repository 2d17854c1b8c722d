"""`citykit catalog`: every capability by layer, its default and alternatives."""

from __future__ import annotations

import typer
from citykit.cli import output
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from rich.table import Table

from citykit.catalog import load_catalog
from citykit.reports import views


def register(app: typer.Typer) -> None:
    @app.command()
    def catalog(output_format: OutputOption = Format.table) -> None:
        """List the components by reference-model layer, with their alternatives."""
        rows = views.catalog_view(load_catalog())
        if output_format is Format.json:
            output.print_json(rows)
            return
        table = Table(title="citykit catalog")
        for column in ("clause", "layer", "capability", "default", "alternatives", "on", "summary"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(
                row["clause"],
                row["layer"],
                row["capability"],
                row["default"],
                ", ".join(row["alternatives"]) or "-",
                "yes" if row["enabledByDefault"] else "no",
                row["summary"],
            )
        output.console.print(table)
