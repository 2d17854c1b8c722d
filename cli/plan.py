"""`citykit plan`: the layered plan — components, layers, versions, sizing and dependencies."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption, ProfileOption
from rich.table import Table

from citykit import compiler, views


class PlanFormat(StrEnum):
    table = "table"
    json = "json"
    mermaid = "mermaid"


def register(app: typer.Typer) -> None:
    @app.command()
    def plan(
        profile: ProfileOption,
        env: EnvOption = "dev",
        output_format: Annotated[
            PlanFormat, typer.Option("--output", "-o", help="table, json or mermaid.")
        ] = PlanFormat.table,
    ) -> None:
        """Show what would be deployed: each component with its layer, clause, implementation,
        version, derived sizing (and the rule behind it) and dependencies."""
        the_plan = compiler.plan(profile, env)
        view = views.plan_view(the_plan)
        if output_format is PlanFormat.json:
            output.print_json(view)
            return
        if output_format is PlanFormat.mermaid:
            from citykit import diagram

            output.say(diagram.mermaid(the_plan))
            return
        city = view["city"]
        table = Table(
            title=f"{city['name']} ({city['slug']}) — environment {view['environment']}",
            show_lines=False,
        )
        for column in (
            "clause",
            "layer",
            "component",
            "capability",
            "version",
            "sizing",
            "requires",
        ):
            table.add_column(column, overflow="fold")
        for component in view["components"]:
            sizing = ", ".join(
                f"{s['name']}={s['value']}{s['unit']}" + ("*" if s["source"] == "override" else "")
                for s in component["sizing"]
            )
            table.add_row(
                component["clause"],
                component["layer"],
                component["name"],
                component["capability"],
                component["version"],
                sizing or "-",
                ", ".join(component["requires"]) or "-",
            )
        output.console.print(table)
        output.say(
            "* overridden in the profile; every other figure is derived "
            "(rules: citykit plan -o json)"
        )
