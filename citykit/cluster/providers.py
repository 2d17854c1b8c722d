"""Choosing and shaping the cluster for a profile and environment: which provider, which name,
which nodes. Shared by `citykit cluster` and `citykit up`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from citykit import compiler
from citykit.input import environment as environments
from citykit.plan.node_pools import NodeSpec
from citykit.plan.node_pools import default_pools
from citykit.plan.node_pools import nodes_for
from citykit.plan.planned import Plan


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
