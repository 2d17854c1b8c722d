"""`citykit cluster`: start, inspect and stop the cluster a city is deployed to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from rich.table import Table

from citykit.cluster import kind
from citykit.cluster import providers
from citykit.cluster.audit_policy import audit_policy
from citykit.cluster.local import LocalCluster
from citykit.conventions import NODE_TYPE_LABEL
from citykit.conventions import POOL_LABEL
from citykit.conventions import ZONE_LABEL
from citykit.errors import InputError

app = typer.Typer(
    help="Start, inspect and stop the local (simulated) or kind cluster.", no_args_is_help=True
)

ProfileArg = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        "-p",
        help="Shape nodes from this city profile (a zone and edge nodes per district).",
    ),
]
ProviderArg = Annotated[
    str | None,
    typer.Option("--provider", help="local or kind (default: the environment's, else local)."),
]
NameArg = Annotated[
    str | None,
    typer.Option("--name", help="Cluster name (default: the environment's)."),
]


def _local_only(provider: str) -> None:
    if provider not in ("local", "kind"):
        raise InputError(
            f"provider {provider!r} is not managed by citykit",
            hint="use --provider local or --provider kind",
        )


@app.command()
def up(
    profile: ProfileArg = None,
    env: EnvOption = "dev",
    provider: ProviderArg = None,
    name: NameArg = None,
) -> None:
    """Start a cluster: local (etcd, kube-apiserver, controller-manager, scheduler, kwok on
    loopback) or kind (on the user's Docker engine when one answers, else citykit's own)."""
    target = providers.target(profile, env, provider, name)
    _local_only(target.provider)
    if target.provider == "kind":
        kubeconfig = kind.create(target.name, target.nodes, target.plan, progress=output.say)
        output.say(f"kind cluster {target.name!r} is up; its kubeconfig: {kubeconfig}")
        return
    LocalCluster(target.name).up(
        target.nodes,
        audit_policy(target.plan),
        progress=output.say,
        real_node=target.real_node,
    )


@app.command()
def down(
    profile: ProfileArg = None,
    env: EnvOption = "dev",
    provider: ProviderArg = None,
    name: NameArg = None,
) -> None:
    """Stop every process of the cluster and remove its state (kind: delete the cluster, then
    stop citykit's own container engine once nothing else runs in it)."""
    target = providers.target(profile, env, provider, name)
    _local_only(target.provider)
    if target.provider == "kind":
        kind.delete(target.name, progress=output.say)
        return
    cluster = LocalCluster(target.name)
    if not cluster.exists():
        output.say(f"no local cluster named {target.name!r}")
        return
    cluster.down()
    output.say(f"stopped cluster {target.name!r} and removed its state")


# Every command defaults to dev, as every other command does: after `citykit up -p city.yaml`,
# `citykit cluster kubeconfig` finds that environment's cluster (citykit-dev).
@app.command()
def kubeconfig(profile: ProfileArg = None, env: EnvOption = "dev", name: NameArg = None) -> None:
    """Print the path of the cluster's kubeconfig file (the local or the kind cluster)."""
    target = providers.target(profile, env, None, name)
    if target.provider == "kind":
        output.say(str(kind.existing_kubeconfig(target.name, env)))
        return
    cluster = LocalCluster(target.name)
    if not cluster.exists():
        raise InputError(
            f"no local cluster named {target.name!r}",
            hint="start it with `citykit cluster up "
            + (f"--name {name}`" if name else f"-e {env}`")
            + " (`citykit up` starts it too)",
        )
    output.say(str(cluster.kubeconfig))


@app.command()
def status(
    profile: ProfileArg = None,
    env: EnvOption = "dev",
    provider: ProviderArg = None,
    name: NameArg = None,
    output_format: OutputOption = Format.table,
) -> None:
    """Show the cluster's processes (the local control plane, or the kwok beside kind) and its
    nodes: pool, zone, Ready, and whether they run containers or are simulated."""
    target = providers.target(profile, env, provider, name)
    _local_only(target.provider)
    if target.provider == "kind":
        listed = kind.nodes(target.name)
        running = listed is not None
        kubeconfig = kind.state_dir(target.name) / "kubeconfig"
        kwok = kind.simulator(target.name)
        processes = [kwok] if kwok is not None else []
    else:
        cluster = LocalCluster(target.name)
        running = cluster.running()
        listed = cluster.nodes() if running else None
        kubeconfig = cluster.kubeconfig
        processes = cluster.components()
    components = [
        {"component": c.name, "pid": c.pid, "port": c.port, "alive": c.alive} for c in processes
    ]
    nodes: list[dict[str, Any]] = []
    for node in listed or []:
        labels = node["metadata"].get("labels", {})
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in node.get("status", {}).get("conditions", [])
        )
        nodes.append(
            {
                "node": node["metadata"]["name"],
                "pool": labels.get(POOL_LABEL, ""),
                "zone": labels.get(ZONE_LABEL, ""),
                "ready": ready,
                "runs": "simulated" if NODE_TYPE_LABEL in labels else "containers",
            }
        )
    data = {
        "name": target.name,
        "provider": target.provider,
        "running": running,
        "kubeconfig": str(kubeconfig),
        "components": components,
        "nodes": nodes,
    }
    if output_format is Format.json:
        output.print_json(data)
        return
    state = "running" if data["running"] else "not running"
    output.say(f"{target.provider} cluster {target.name!r}: {state}")
    if components:
        table = Table(title="control plane")
        for column in ("component", "pid", "port", "alive"):
            table.add_column(column)
        for row in components:
            table.add_row(
                str(row["component"]),
                str(row["pid"]),
                str(row["port"]),
                "yes" if row["alive"] else "NO",
            )
        output.console.print(table)
    if nodes:
        table = Table(title="nodes")
        for column in ("node", "pool", "zone", "ready", "runs"):
            table.add_column(column)
        for row in nodes:
            table.add_row(
                str(row["node"]),
                str(row["pool"]),
                str(row["zone"]),
                "Ready" if row["ready"] else "-",
                str(row["runs"]),
            )
        output.console.print(table)
