"""Node pools of the simulated (kwok) and kind clusters, shaped by the profile and environment:
general nodes in a `core` zone, GPU/NPU nodes tainted for AI serving, and edge nodes per district
in that district's zone — the labels and taints the blueprints schedule against."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from citykit.conventions import ARCH_LABEL
from citykit.conventions import HOST_LABEL
from citykit.conventions import NODE_TYPE_LABEL
from citykit.conventions import OS_LABEL
from citykit.conventions import POOL_LABEL
from citykit.conventions import ZONE_LABEL
from citykit.plan.planned import Plan

GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str = "NoSchedule"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    pool: str
    zone: str
    taints: tuple[Taint, ...] = ()
    capacity: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        return {
            POOL_LABEL: self.pool,
            ZONE_LABEL: self.zone,
            HOST_LABEL: self.name,
            OS_LABEL: "linux",
            ARCH_LABEL: "amd64",
            NODE_TYPE_LABEL: "kwok",
        }


# Generous capacity: a whole city must schedule on a handful of simulated nodes.
_BASE_CAPACITY = {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "1Ti"}


def node_pools(
    districts: list[str], general: int, gpu: int, edge_per_district: int
) -> list[NodeSpec]:
    nodes = [
        NodeSpec(f"general-{i}", "general", "core", capacity=dict(_BASE_CAPACITY))
        for i in range(general)
    ]
    nodes += [
        NodeSpec(
            f"gpu-{i}",
            "gpu",
            "core",
            (Taint(POOL_LABEL, "gpu"),),
            {**_BASE_CAPACITY, GPU_RESOURCE: "8"},
        )
        for i in range(gpu)
    ]
    nodes += [
        NodeSpec(
            f"edge-{district}-{i}",
            "edge",
            district,
            (Taint(POOL_LABEL, "edge"),),
            {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "256Gi"},
        )
        for district in districts
        for i in range(edge_per_district)
    ]
    return nodes


def node_object(spec: NodeSpec) -> dict[str, Any]:
    """The Node as kwok expects it: status.capacity/allocatable are kept on create."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": spec.labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in spec.taints]
        },
        "status": {"capacity": spec.capacity, "allocatable": spec.capacity},
    }


DEFAULT_DISTRICTS = ["central"]


def default_pools() -> list[NodeSpec]:
    """Nodes when no profile is given: 3 general, 1 GPU, 1 edge node in a `central` district."""
    return node_pools(DEFAULT_DISTRICTS, general=3, gpu=1, edge_per_district=1)


def nodes_for(plan: Plan) -> list[NodeSpec]:
    """The environment's node pools for the profile's districts (edge nodes per district)."""
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
