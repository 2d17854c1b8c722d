"""What the compiled city asks of the cluster against what the environment's node pools provide
(`citykit plan`). Pure: read from the objects, so it counts what will really be applied.

Requested: CPU and memory of long-running pods (Deployments, StatefulSets, DaemonSets; Jobs and
CronJobs run briefly and are left out), each pod's requests as the scheduler counts them (its
containers' sum, or its largest init container if that is more) times its replicas; storage of
PersistentVolumeClaims and StatefulSet claim templates (times replicas). Grouped by layer.

Provided: each node pool's allocatable CPU and memory (the simulated nodes' figures,
plan/node_pools.py), and its nodes' disks (`ephemeral-storage`), where the local
StorageClass puts its volumes. CPU and memory are compared per pool (a pod runs only on the pool
it selects); storage in all, since claims are not tied to a pool."""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from citykit.compiler import Compiled
from citykit.contract import layers
from citykit.contract.layers import Layer
from citykit.conventions import LONG_RUNNING_KINDS
from citykit.conventions import POOL_LABEL
from citykit.conventions import RUNTIME_LABEL
from citykit.plan.node_pools import NodeSpec

# Pods that select the real node of a local cluster (citykit/cluster/realnode.py): the host,
# whose size the environment does not declare.
REAL_NODE = "real node"

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?([A-Za-z]*)$")
_SUFFIXES: Mapping[str, float] = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def quantity(text: str | int | float) -> float:
    """A Kubernetes resource quantity ("500m", "2Gi", "1e3", 4) as a plain number."""
    if isinstance(text, int | float):
        return float(text)
    match = _QUANTITY.match(text.strip())
    if match is None or match.group(3) not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, exponent, suffix = match.groups()
    return float(number) * 10.0 ** int(exponent or 0) * _SUFFIXES[suffix]


@dataclass(frozen=True)
class Amounts:
    cpu_millis: int = 0
    memory_bytes: int = 0
    storage_bytes: int = 0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(
            self.cpu_millis + other.cpu_millis,
            self.memory_bytes + other.memory_bytes,
            self.storage_bytes + other.storage_bytes,
        )

    def times(self, count: int) -> Amounts:
        return Amounts(
            self.cpu_millis * count, self.memory_bytes * count, self.storage_bytes * count
        )


@dataclass(frozen=True)
class Pool:
    name: str
    nodes: int
    allocatable: Amounts | None  # None: not declared by the environment (the real node)
    requested: Amounts  # CPU and memory of the pods that select it (storage is counted in all)


@dataclass(frozen=True)
class Capacity:
    layers: tuple[tuple[Layer, Amounts], ...]  # in reference-model order, used layers only
    requested: Amounts
    pools: tuple[Pool, ...]
    allocatable: Amounts  # the declared pools together
    warnings: tuple[str, ...]

    @property
    def fits(self) -> bool:
        return not self.warnings


def _requests(container: Mapping[str, Any]) -> Amounts:
    requests = (container.get("resources") or {}).get("requests") or {}
    return Amounts(
        round(quantity(requests.get("cpu", 0)) * 1000), round(quantity(requests.get("memory", 0)))
    )


def pod_requests(pod_spec: Mapping[str, Any]) -> Amounts:
    """What the scheduler reserves for one pod: the containers' requests together, or the
    largest init container's (they run one at a time, before the others) where that is more."""
    running = sum((_requests(c) for c in pod_spec.get("containers") or []), Amounts())
    for init in pod_spec.get("initContainers") or []:
        first = _requests(init)
        running = Amounts(
            max(running.cpu_millis, first.cpu_millis),
            max(running.memory_bytes, first.memory_bytes),
        )
    return running


def _pool_of(pod_spec: Mapping[str, Any]) -> str:
    selector = pod_spec.get("nodeSelector") or {}
    if RUNTIME_LABEL in selector:
        return REAL_NODE
    pool: str = selector.get(POOL_LABEL, "general")
    return pool


def _claim_bytes(claim: Mapping[str, Any]) -> int:
    storage = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
        "storage", 0
    )
    return round(quantity(storage))


def _object_demand(
    obj: Mapping[str, Any], nodes_in: Mapping[str, int]
) -> tuple[str | None, Amounts]:
    """(pool of its pods or None, what the object requests)."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "PersistentVolumeClaim":
        return None, Amounts(storage_bytes=_claim_bytes(obj))
    if kind not in LONG_RUNNING_KINDS:
        return None, Amounts()
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    pool = _pool_of(pod_spec)
    replicas = nodes_in.get(pool, 0) if kind == "DaemonSet" else int(spec.get("replicas", 1))
    claims = sum(_claim_bytes(t) for t in spec.get("volumeClaimTemplates") or [])
    return pool, (pod_requests(pod_spec) + Amounts(storage_bytes=claims)).times(replicas)


def _provided(nodes: Iterable[NodeSpec]) -> dict[str, tuple[int, Amounts]]:
    pools: dict[str, tuple[int, Amounts]] = {}
    for node in nodes:
        count, total = pools.get(node.pool, (0, Amounts()))
        node_amounts = Amounts(
            round(quantity(node.capacity.get("cpu", 0)) * 1000),
            round(quantity(node.capacity.get("memory", 0))),
            round(quantity(node.capacity.get("ephemeral-storage", 0))),
        )
        pools[node.pool] = (count + 1, total + node_amounts)
    return pools


def summary(compiled: Compiled, nodes: Sequence[NodeSpec]) -> Capacity:
    provided = _provided(nodes)
    nodes_in = {pool: count for pool, (count, _) in provided.items()}
    by_layer: dict[str, Amounts] = {}
    by_pool: dict[str, Amounts] = {}
    for unit in compiled.units:
        key = unit.component.layer.key
        for obj in unit.objects:
            pool, demand = _object_demand(obj, nodes_in)
            by_layer[key] = by_layer.get(key, Amounts()) + demand
            if pool is not None:
                by_pool[pool] = by_pool.get(pool, Amounts()) + Amounts(
                    demand.cpu_millis, demand.memory_bytes
                )
    requested = sum(by_layer.values(), Amounts())
    allocatable = sum((amounts for _, amounts in provided.values()), Amounts())
    pools = [
        Pool(name, count, amounts, by_pool.get(name, Amounts()))
        for name, (count, amounts) in provided.items()
    ]
    pools += [
        Pool(name, 0, None, by_pool[name]) for name in sorted(by_pool) if name not in provided
    ]
    warnings = [warning for pool in pools for warning in _pool_warnings(pool)]
    if requested.storage_bytes > allocatable.storage_bytes:
        warnings.append(
            f"storage: {size(requested.storage_bytes)} claimed, the nodes' disks hold "
            f"{size(allocatable.storage_bytes)}"
        )
    return Capacity(
        layers=tuple((layer, by_layer[layer.key]) for layer in layers.ALL if layer.key in by_layer),
        requested=requested,
        pools=tuple(pools),
        allocatable=allocatable,
        warnings=tuple(warnings),
    )


def _pool_warnings(pool: Pool) -> list[str]:
    if pool.name == REAL_NODE:
        return []  # the host: its size is whatever this machine has
    if pool.allocatable is None:
        return [f"pool {pool.name}: pods select it, but the environment declares no such nodes"]
    found = []
    if pool.requested.cpu_millis > pool.allocatable.cpu_millis:
        found.append(
            f"pool {pool.name}: {cores(pool.requested.cpu_millis)} CPU requested, "
            f"{cores(pool.allocatable.cpu_millis)} allocatable on {node_count(pool.nodes)}"
        )
    if pool.requested.memory_bytes > pool.allocatable.memory_bytes:
        found.append(
            f"pool {pool.name}: {size(pool.requested.memory_bytes)} of memory requested, "
            f"{size(pool.allocatable.memory_bytes)} allocatable on {node_count(pool.nodes)}"
        )
    return found


def node_count(count: int) -> str:
    return f"{count} node{'' if count == 1 else 's'}"


def cores(millis: int) -> str:
    return f"{millis / 1000:,.1f}"


def size(amount: int) -> str:
    """Bytes for people: GiB, or TiB from 1 TiB on."""
    return f"{amount / 2**40:,.1f} TiB" if amount >= 2**40 else f"{amount / 2**30:,.1f} GiB"
