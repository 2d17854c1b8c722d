"""`citykit plan`: the layered plan — components, layers, versions, sizing and dependencies —
and what it requests against the environment's node pools."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from typing import Any

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import ProfileOption
from rich.table import Table

from citykit import compiler
from citykit.plan.node_pools import nodes_for
from citykit.reports import capacity
from citykit.reports import views


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
        version, derived sizing (and the rule behind it) and dependencies; then the CPU, memory
        and storage it requests per layer against the environment's node pools, with a warning
        when the city does not fit."""
        the_plan = compiler.plan(profile, env)
        if output_format is PlanFormat.mermaid:
            from citykit.reports import diagram

            output.say(diagram.mermaid(the_plan))
            return
        view = views.plan_view(the_plan)
        compiled = compiler.compile_plan(the_plan)
        view["capacity"] = views.capacity_view(capacity.summary(compiled, nodes_for(the_plan)))
        if output_format is PlanFormat.json:
            output.print_json(view)
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
        _print_capacity(view["capacity"])


def _print_capacity(view: dict[str, Any]) -> None:
    table = Table(title="capacity: requested against the node pools", show_lines=False)
    for column in ("", "CPU (cores)", "memory", "storage"):
        table.add_column(column, justify="right" if column else "left")
    for row in view["requested"]["layers"]:
        table.add_row(f"{row['clause']} {row['layer']}", *_cells(row))
    table.add_row("requested", *_cells(view["requested"]["total"]), style="bold")
    for pool in view["pools"]:
        given = pool["allocatable"]
        asked = pool["requested"]
        if given is None:  # not declared by the environment (the real node: the host)
            label, cpu, memory, disks = f"pool {pool['pool']}", "?", "?", "?"
        else:
            label = f"pool {pool['pool']} ({capacity.node_count(pool['nodes'])})"
            cpu = capacity.cores(given["cpuMillis"])
            memory = capacity.size(given["memoryBytes"])
            disks = capacity.size(given["storageBytes"])
        table.add_row(
            label,
            f"{capacity.cores(asked['cpuMillis'])} of {cpu}",
            f"{capacity.size(asked['memoryBytes'])} of {memory}",
            disks,
        )
    table.add_row("allocatable", *_cells(view["allocatable"]), style="bold")
    output.console.print(table)
    output.say(
        "long-running pods' requests × replicas and claimed storage; pools: the environment's "
        "nodes (storage: their disks)"
    )
    for warning in view["warnings"]:
        output.say(f"warning: the city does not fit: {warning}")


def _cells(amounts: dict[str, int]) -> tuple[str, str, str]:
    return (
        capacity.cores(amounts["cpuMillis"]),
        capacity.size(amounts["memoryBytes"]),
        capacity.size(amounts["storageBytes"]),
    )
