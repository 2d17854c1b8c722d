"""Choosing and shaping the cluster for a profile and environment: which provider, which name,
which nodes. Shared by `citykit cluster` and `citykit up`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from citykit import compiler
from citykit import environment as environments
from citykit.cluster.nodes import NodeSpec, default_pools, node_pools
from citykit.plan import Plan


@dataclass(frozen=True)
class Target:
    provider: str  # local | kind | existing
    name: str
    nodes: list[NodeSpec]
    plan: Plan | None
    real_node: bool = False  # local provider: a kubelet with containerd beside the kwok nodes


def target(profile: Path | None, env: str | None, provider: str | None, name: str | None) -> Target:
    """The cluster a command works on: from the environment (and the profile's districts) when
    given, overridden by explicit --provider / --name."""
    if profile is None:
        environment = environments.load(env)[0] if env else None
        cluster = environment.cluster if environment else None
        return Target(
            provider or (cluster.provider if cluster else "local"),
            name or (cluster.name if cluster else "citykit"),
            default_pools(),
            None,
            bool(cluster and cluster.real_node),
        )
    plan = compiler.plan(profile, env or "dev")
    return Target(
        provider or plan.environment.cluster.provider,
        name or plan.environment.cluster.name,
        nodes_for(plan),
        plan,
        plan.environment.cluster.real_node,
    )


def nodes_for(plan: Plan) -> list[NodeSpec]:
    counts = plan.environment.cluster.nodes
    districts = [d.slug for d in plan.profile.districts]
    nodes = node_pools(districts, counts.general, counts.gpu, counts.edge_per_district)
    per_district = {
        d.slug: d.edge_nodes for d in plan.profile.districts if d.edge_nodes is not None
    }
    if per_district:
        nodes = [n for n in nodes if n.pool != "edge"] + [
            n
            for d in plan.profile.districts
            for n in node_pools([d.slug], 0, 0, per_district.get(d.slug, counts.edge_per_district))
        ]
    return nodes
