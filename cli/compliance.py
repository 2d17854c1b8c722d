"""`citykit compliance`: reference-model coverage and the 等保2.0 level-3 control families."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import ProfileOption
from rich.table import Table

from citykit import compiler
from citykit.reports import compliance


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def register(app: typer.Typer) -> None:
    @app.command(name="compliance")
    def compliance_report(
        profile: ProfileOption,
        env: EnvOption = "dev",
        output_format: Annotated[
            ReportFormat, typer.Option("--output", "-o", help="table, json or markdown.")
        ] = ReportFormat.table,
    ) -> None:
        """Report which components realise each reference-model clause, and for each MLPS 2.0
        (等保2.0) level-3 technical control family the rendered controls and the gaps."""
        from citykit.verify import drill

        compiled = compiler.compile_city(profile, env)
        data = compliance.report(compiled, drill.last_record(compiled.plan))
        if output_format is ReportFormat.json:
            output.print_json(data)
            return
        if output_format is ReportFormat.markdown:
            typer.echo(compliance.markdown(data), nl=False)
            return
        coverage = Table(title="reference-model coverage", title_justify="left")
        for column in ("clause", "layer", "components"):
            coverage.add_column(column, overflow="fold")
        for row in data["coverage"]:
            coverage.add_row(
                row["clause"],
                f"{row['title_zh']} {row['title']}",
                ", ".join(row["components"]) or "—",
            )
        output.console.print(coverage)
        families = Table(
            title=f"MLPS 2.0: {data['mlps']['standard']}", title_justify="left", show_lines=True
        )
        for column in ("family", "controls", "gaps"):
            families.add_column(column, overflow="fold")
        for family in data["mlps"]["families"]:
            families.add_row(
                f"{family['title_zh']}\n{family['title']}",
                "\n".join(f"• {c}" for c in family["controls"]),
                "\n".join(f"• {g}" for g in family["gaps"]),
            )
        output.console.print(families)
        for item in data["exceptions"]:
            output.say(
                f"exception: {item['component']}: {item['kind']} {item['setting']} — "
                f"{item['reason']}"
            )
