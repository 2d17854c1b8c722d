"""`citykit simulate`: does the city fit N nodes shaped like the environment's pools? Answered by a
real scheduler on a throwaway local control plane (citykit/cluster/simulate.py)."""

from __future__ import annotations

from typing import Annotated
from typing import Any

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption
from rich.table import Table
from rich.text import Text

from citykit import compiler
from citykit.cluster import placement
from citykit.cluster import simulate as simulation
from citykit.errors import CitykitError
from citykit.plan import node_pools
from citykit.reports.capacity import cores
from citykit.reports.capacity import node_count
from citykit.reports.capacity import size


class Pending(CitykitError):
    """Some pod stays unscheduled (or uncreated): exit 2, the city does not fit."""

    exit_code = 2


NodesOption = Annotated[
    int | None,
    typer.Option(
        "--nodes",
        "-n",
        help="Simulated nodes, split over the pools in the environment's proportions "
        "(default: the environment's own node count).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        profile: ProfileOption,
        env: EnvOption = "dev",
        nodes: NodesOption = None,
        output_format: OutputOption = Format.table,
    ) -> None:
        """Schedule the city on a throwaway local control plane with N simulated nodes shaped
        like the environment's pools (zones from the districts), then report pods scheduled and
        pending (with the scheduler's reason), pods per zone, each pool's requested CPU and
        memory against its capacity, and each department's quota use. The cluster is removed
        afterwards.

        Exit 0 when every pod is scheduled, 2 when something stays pending."""
        compiled = compiler.compile_city(profile, env)
        count = nodes if nodes is not None else len(node_pools.nodes_for(compiled.plan))
        shaped = simulation.shape(compiled.plan, count)
        say = output.say_err if output_format is Format.json else output.say
        report = simulation.run(compiled, shaped, say)
        report = {"city": compiled.plan.slug, "environment": env, **report}
        if output_format is Format.json:
            output.print_json(report)
        else:
            _print(report)
        if not placement.complete(report):
            pods = report["pods"]
            raise Pending(
                f"{pods['pending']} pods pending and {pods['notCreated']} not created on "
                f"{node_count(report['nodes'])}",
                hint="the reasons are listed above; add nodes (--nodes) or lower the sizing",
            )


def _print(report: dict[str, Any]) -> None:
    pods, run = report["pods"], report["run"]
    output.say(
        f"{report['city']} in {report['environment']} on {node_count(report['nodes'])}: "
        f"{pods['scheduled']} pods scheduled, {pods['pending']} pending, "
        f"{pods['notCreated']} not created"
    )
    _table(
        "pools",
        (
            "pool",
            "nodes",
            "pods",
            "CPU requested",
            "CPU allocatable",
            "memory requested",
            "memory allocatable",
        ),
        [
            (
                p["pool"],
                str(p["nodes"]),
                str(p["pods"]),
                f"{cores(round(p['cpuRequested'] * 1000))} "
                f"({_percent(p['cpuRequested'], p['cpuAllocatable'])})",
                cores(round(p["cpuAllocatable"] * 1000)),
                f"{size(p['memoryRequestedBytes'])} "
                f"({_percent(p['memoryRequestedBytes'], p['memoryAllocatableBytes'])})",
                size(p["memoryAllocatableBytes"]),
            )
            for p in report["pools"]
        ],
    )
    _table(
        "zones",
        ("zone", "nodes", "pods"),
        [(z["zone"], str(z["nodes"]), str(z["pods"])) for z in report["zones"]],
    )
    _table(
        "department quotas",
        ("department", "namespace", "resource", "used", "hard", "use"),
        [
            (
                q["department"],
                q["namespace"],
                r["resource"],
                r["used"],
                r["hard"],
                f"{r['fraction']:.0%}",
            )
            for q in report["quotas"]
            for r in q["resources"]
        ],
    )
    _table(
        "pending pods",
        ("namespace", "pod", "workload", "scheduler's reason"),
        [(p["namespace"], p["pod"], p["workload"], p["reason"]) for p in report["pending"]],
    )
    _table(
        "replicas not created",
        ("namespace", "workload", "missing", "controller's reason"),
        [
            (m["namespace"], m["workload"], str(m["count"]), m["reason"])
            for m in report["notCreated"]
        ],
    )
    seconds = run["seconds"]
    phases = {
        "controlPlaneAndNodes": "control plane and nodes",
        "apply": "apply",
        "scheduling": "scheduling",
    }
    memory = ", ".join(f"{k} {v / 2**20:,.0f} MiB" for k, v in run["peakMemoryByComponent"].items())
    output.say(
        f"run: {seconds['total']:.0f}s ("
        + ", ".join(
            f"{words} {seconds[key]:.0f}s" for key, words in phases.items() if key in seconds
        )
        + f"); control plane peak memory {size(run['peakMemoryBytes'])} ({memory})"
    )


def _percent(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    if not rows:
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text: reasons quote the API server, whose words may hold [brackets].
        table.add_row(*(Text(cell) for cell in row))
    output.console.print(table)
