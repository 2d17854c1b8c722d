"""Where the scheduler put a city, read from the API objects of a cluster (`citykit simulate`).

Pure: every function takes the objects as the API server returns them (`kubectl get -o json`
items), so the report can be built and tested from fakes. Counts pods scheduled and pending
(with the scheduler's reason), replicas a controller could not create (with its reason, e.g. a
ResourceQuota), pods per zone, each pool's requests against its allocatable CPU and memory, and
each department's quota use."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from citykit.conventions import DEPARTMENT_LABEL
from citykit.conventions import LONG_RUNNING_KINDS
from citykit.conventions import POOL_LABEL
from citykit.conventions import ZONE_LABEL
from citykit.reports.capacity import Amounts
from citykit.reports.capacity import pod_requests
from citykit.reports.capacity import quantity

Obj = Mapping[str, Any]
WORKLOADS = LONG_RUNNING_KINDS


@dataclass(frozen=True)
class Pending:
    namespace: str
    pod: str
    workload: str
    reason: str


@dataclass(frozen=True)
class Missing:
    """Replicas of a workload that have no pod at all: its controller could not create them."""

    namespace: str
    workload: str
    count: int
    reason: str


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def _key(obj: Obj) -> tuple[str, str]:
    return _meta(obj).get("namespace", ""), _meta(obj).get("name", "")


def _owner(obj: Obj) -> tuple[str, str] | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("kind", ""), ref.get("name", "")
    return None


def workload_of(pod: Obj, replica_sets: Sequence[Obj]) -> str:
    """`Kind/name` of the workload that owns a pod (a Deployment through its ReplicaSet)."""
    owner = _owner(pod)
    if owner is None:
        return ""
    kind, name = owner
    if kind == "ReplicaSet":
        namespace = _meta(pod).get("namespace", "")
        for rs in replica_sets:
            if _key(rs) == (namespace, name):
                parent = _owner(rs)
                if parent:
                    return f"{parent[0]}/{parent[1]}"
    return f"{kind}/{name}"


def _condition(obj: Obj, kind: str) -> Mapping[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            found: Mapping[str, Any] = condition
            return found
    return None


def decided(pod: Obj) -> bool:
    """The scheduler has placed the pod, or tried and found no node for it."""
    if (pod.get("spec") or {}).get("nodeName"):
        return True
    condition = _condition(pod, "PodScheduled")
    return condition is not None and condition.get("status") == "False"


def desired(workload: Obj) -> int:
    if workload.get("kind") == "DaemonSet":
        return int((workload.get("status") or {}).get("desiredNumberScheduled", 0))
    return int((workload.get("spec") or {}).get("replicas", 1))


def _events_for(events: Sequence[Obj], kind: str, namespace: str, name: str) -> list[Obj]:
    return [
        e
        for e in events
        if (e.get("involvedObject") or {}).get("kind") == kind
        and (e.get("involvedObject") or {}).get("name") == name
        and _meta(e).get("namespace", "") == namespace
    ]


def _latest_message(events: Sequence[Obj]) -> str:
    ordered = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return str(ordered[-1].get("message", "")).strip() if ordered else ""


def pending_reason(pod: Obj, events: Sequence[Obj]) -> str:
    """The scheduler's words: the PodScheduled condition, else its latest FailedScheduling
    event for the pod."""
    condition = _condition(pod, "PodScheduled")
    if condition and condition.get("message"):
        return str(condition["message"]).strip()
    namespace, name = _key(pod)
    failed = [
        e
        for e in _events_for(events, "Pod", namespace, name)
        if e.get("reason") == "FailedScheduling"
    ]
    return _latest_message(failed) or "not scheduled yet"


def missing_reason(workload: Obj, replica_sets: Sequence[Obj], events: Sequence[Obj]) -> str:
    """Why a controller created fewer pods than asked: its ReplicaFailure condition, else its
    latest FailedCreate event (the workload's own, or its ReplicaSets')."""
    namespace, name = _key(workload)
    sources = [workload]
    if workload.get("kind") == "Deployment":
        sources += [
            rs
            for rs in replica_sets
            if _meta(rs).get("namespace") == namespace and _owner(rs) == ("Deployment", name)
        ]
    for source in sources:
        condition = _condition(source, "ReplicaFailure")
        if condition and condition.get("status") == "True" and condition.get("message"):
            return str(condition["message"]).strip()
    failed = [
        e
        for source in sources
        for e in _events_for(events, str(source.get("kind")), *_key(source))
        if e.get("reason") == "FailedCreate"
    ]
    return _latest_message(failed) or "not created yet"


def build(
    nodes: Sequence[Obj],
    pods: Sequence[Obj],
    workloads: Sequence[Obj],
    replica_sets: Sequence[Obj],
    events: Sequence[Obj],
    quotas: Sequence[Obj],
) -> dict[str, Any]:
    """The report `citykit simulate` prints (its `-o json` document, without the run's
    figures)."""
    node_pool = {
        _meta(n)["name"]: (_meta(n).get("labels") or {}).get(POOL_LABEL, "") for n in nodes
    }
    node_zone = {
        _meta(n)["name"]: (_meta(n).get("labels") or {}).get(ZONE_LABEL, "") for n in nodes
    }
    pools: dict[str, dict[str, Any]] = {}
    zones: dict[str, dict[str, int]] = {}
    for node in nodes:
        name = _meta(node)["name"]
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        pool = pools.setdefault(
            node_pool[name],
            {"nodes": 0, "allocatable": Amounts(), "requested": Amounts(), "pods": 0},
        )
        pool["nodes"] += 1
        pool["allocatable"] += Amounts(
            round(quantity(allocatable.get("cpu", 0)) * 1000),
            round(quantity(allocatable.get("memory", 0))),
        )
        zones.setdefault(node_zone[name], {"nodes": 0, "pods": 0})["nodes"] += 1

    scheduled = 0
    pending: list[Pending] = []
    created: dict[str, int] = {}
    for pod in pods:
        if _meta(pod).get("deletionTimestamp"):
            continue
        namespace, name = _key(pod)
        owner = workload_of(pod, replica_sets)
        created[f"{namespace}/{owner}"] = created.get(f"{namespace}/{owner}", 0) + 1
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            pending.append(Pending(namespace, name, owner, pending_reason(pod, events)))
            continue
        scheduled += 1
        if node_name in node_pool:
            pool = pools[node_pool[node_name]]
            pool["pods"] += 1
            pool["requested"] += pod_requests(pod.get("spec") or {})
            zones[node_zone[node_name]]["pods"] += 1

    missing = []
    for workload in workloads:
        namespace, name = _key(workload)
        label = f"{workload.get('kind')}/{name}"
        short = desired(workload) - created.get(f"{namespace}/{label}", 0)
        if short > 0:
            missing.append(
                Missing(namespace, label, short, missing_reason(workload, replica_sets, events))
            )

    return {
        "nodes": len(nodes),
        "pods": {
            "scheduled": scheduled,
            "pending": len(pending),
            "notCreated": sum(m.count for m in missing),
        },
        "pending": [vars(p) for p in pending],
        "notCreated": [vars(m) for m in missing],
        "zones": [
            {"zone": zone, "nodes": counts["nodes"], "pods": counts["pods"]}
            for zone, counts in sorted(zones.items(), key=lambda item: (-item[1]["pods"], item[0]))
        ],
        "pools": [
            {
                "pool": name,
                "nodes": pool["nodes"],
                "pods": pool["pods"],
                "cpuRequested": pool["requested"].cpu_millis / 1000,
                "cpuAllocatable": pool["allocatable"].cpu_millis / 1000,
                "memoryRequestedBytes": pool["requested"].memory_bytes,
                "memoryAllocatableBytes": pool["allocatable"].memory_bytes,
            }
            for name, pool in sorted(pools.items())
        ],
        "quotas": [_quota(q) for q in sorted(quotas, key=_key)],
    }


def _quota(quota: Obj) -> dict[str, Any]:
    status = quota.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    resources = []
    for resource in sorted(hard):
        limit = quantity(hard[resource])
        value = quantity(used.get(resource, "0"))
        resources.append(
            {
                "resource": resource,
                "used": str(used.get(resource, "0")),
                "hard": str(hard[resource]),
                "fraction": round(value / limit, 4) if limit else 0.0,
            }
        )
    namespace, name = _key(quota)
    return {
        "department": (_meta(quota).get("labels") or {}).get(DEPARTMENT_LABEL, ""),
        "namespace": namespace,
        "quota": name,
        "resources": resources,
    }


def complete(report: Mapping[str, Any]) -> bool:
    """Every replica of the city has a pod on a node."""
    counts = report["pods"]
    return bool(counts["pending"] == 0 and counts["notCreated"] == 0)
