"""`citykit status`: each layer and component ready / progressing / failed / missing, read from the
live cluster (not from Pulumi state), by the labels every citykit object carries."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from citykit.compiler import Compiled
from citykit.conventions import COMPONENT_LABEL
from citykit.conventions import PART_OF_LABEL
from citykit.conventions import POD_TEMPLATE_KINDS
from citykit.deploy.engine import cluster_access
from citykit.deploy.engine import kubectl
from citykit.errors import OperationFailed


@dataclass(frozen=True)
class ComponentStatus:
    layer: str
    clause: str
    component: str
    state: str  # ready | progressing | failed | missing
    detail: str
    # Where its pods run: "real" (a container runtime ran them: the real node, kind, a real
    # cluster), "simulated" (kwok nodes), "mixed", or "-" when it has no pods.
    runs: str = "-"


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def _resource_arg(kind: str, api_version: str) -> str:
    group = _group(api_version)
    return f"{kind.lower()}.{group}" if group else kind.lower()


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def workload_state(obj: dict[str, Any]) -> tuple[str, str]:
    kind, spec, status = obj["kind"], obj.get("spec", {}), obj.get("status", {})
    if kind == "Job":
        for condition in status.get("conditions", []) or []:
            if condition.get("type") == "Complete" and condition.get("status") == "True":
                return "ready", "complete"
            if condition.get("type") == "Failed" and condition.get("status") == "True":
                return "failed", condition.get("message", "job failed")
        return "progressing", "running"
    if kind == "DaemonSet":
        want, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
    else:
        want, ready = spec.get("replicas", 1), status.get("readyReplicas", 0)
    generation_seen = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
    if ready >= want and generation_seen:
        return "ready", f"{ready}/{want} ready"
    for condition in status.get("conditions", []) or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return "failed", condition.get("message", "replica failure")
    return "progressing", f"{ready}/{want} ready"


def live_status(compiled: Compiled, progress: Callable[[str], None]) -> list[ComponentStatus]:
    plan = compiled.plan
    access = cluster_access(plan, start=False, progress=progress)
    wanted = {(o["kind"], o["apiVersion"]) for o in compiled.objects()}
    kinds = ",".join(sorted({_resource_arg(kind, api) for kind, api in wanted}))
    result = kubectl(
        access,
        "get",
        kinds,
        "--all-namespaces",
        "-o",
        "json",
        "-l",
        f"{PART_OF_LABEL}={plan.slug}",
    )
    if result.returncode != 0:
        raise OperationFailed(f"could not read the cluster: {result.stderr.strip()}")
    live = {_key(obj): obj for obj in json.loads(result.stdout).get("items", [])}
    runs = where_pods_run(access, plan.slug)
    statuses: list[ComponentStatus] = []
    for unit in compiled.units:
        component = unit.component
        missing = [o for o in unit.objects if _key(o) not in live]
        states = [
            workload_state(live[_key(o)])
            for o in unit.objects
            if o["kind"] in POD_TEMPLATE_KINDS and _key(o) in live
        ]
        if missing:
            first = missing[0]
            state, detail = (
                "missing",
                f"{len(missing)} missing, e.g. {first['kind']}/{first['metadata']['name']}",
            )
        elif any(s == "failed" for s, _ in states):
            state, detail = "failed", "; ".join(d for s, d in states if s == "failed")
        elif any(s == "progressing" for s, _ in states):
            state, detail = "progressing", "; ".join(d for s, d in states if s != "ready")
        else:
            state = "ready"
            detail = f"{len(unit.objects)} objects" + (
                f", {len(states)} workloads ready" if states else ""
            )
        statuses.append(
            ComponentStatus(
                component.layer.key,
                component.layer.clause,
                component.name,
                state,
                detail,
                runs.get(component.name, "-"),
            )
        )
    return statuses


SIMULATED_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def where_pods_run(access: Any, slug: str) -> dict[str, str]:
    """Component name -> real / simulated / mixed, from the nodes its pods are bound to: a node
    kwok manages is simulated; any other node has a container runtime that ran the pod."""
    nodes = kubectl(access, "get", "nodes", "-o", "json")
    pods = kubectl(
        access,
        "get",
        "pods",
        "--all-namespaces",
        "-o",
        "json",
        "-l",
        f"{PART_OF_LABEL}={slug}",
    )
    if nodes.returncode != 0 or pods.returncode != 0:
        return {}
    simulated = {
        node["metadata"]["name"]
        for node in json.loads(nodes.stdout).get("items", [])
        if SIMULATED_NODE_ANNOTATION in (node["metadata"].get("annotations") or {})
    }
    kinds: dict[str, set[str]] = {}
    for pod in json.loads(pods.stdout).get("items", []):
        component = (pod["metadata"].get("labels") or {}).get(COMPONENT_LABEL)
        node = pod.get("spec", {}).get("nodeName")
        if component and node:
            kinds.setdefault(component, set()).add("simulated" if node in simulated else "real")
    return {name: found.pop() if len(found) == 1 else "mixed" for name, found in kinds.items()}
