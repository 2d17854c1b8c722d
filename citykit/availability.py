"""Availability passes: what keeps a component serving while nodes fail or are drained, derived
from its rendered workloads and declarations instead of written per component.

- every long-running container gets a liveness probe distinct from its readiness probe: the
  one its component declares (`Workload.liveness`), else a TCP connect to the readiness port;
  slower than readiness either way, so a busy container is taken out of service long before
  it is restarted;
- every workload with more than one replica gets a PodDisruptionBudget (one replica down at a
  time; quorum systems also keep a majority) and topology spread across zones (districts) and
  hosts. The spread is `ScheduleAnyway` on both: districts have unequal node counts, and a hard
  host rule strands pods whenever one node of a pool is full, or holds a StatefulSet replica's
  local volume, while the others would skew; the budget is what protects a quorum."""

from __future__ import annotations

import copy
from typing import Any

from citykit.cluster.nodes import HOST_LABEL, ZONE_LABEL
from citykit.plan import Plan, PlannedComponent
from citykit.render import Object, _pod_templates

LONG_RUNNING = ("Deployment", "StatefulSet", "DaemonSet")
REPLICATED = ("Deployment", "StatefulSet")
# Kubernetes' probe defaults, for probes that leave them out.
PERIOD, FAILURES = 10, 3
# A liveness probe waits this many times readiness's initial delay (at least MIN_DELAY seconds)
# and checks this many times less often.
DELAY_FACTOR, MIN_DELAY, PERIOD_FACTOR = 3, 30, 2


def _handler(probe: Object) -> Object:
    return {k: v for k, v in probe.items() if k in ("httpGet", "tcpSocket", "exec", "grpc")}


def _port(readiness: Object) -> Any:
    for key in ("httpGet", "tcpSocket", "grpc"):
        if key in readiness:
            return readiness[key]["port"]
    return None


def derived_liveness(readiness: Object, declared: Object | None) -> Object:
    """`declared` (timings it sets are kept) or a TCP connect to readiness's port, timed slower
    than readiness: a container is restarted only once it stops accepting connections, never
    because what it depends on is down (that is readiness's business)."""
    port = _port(readiness)
    if declared is not None:
        handler = declared
    elif port is not None:
        handler = {"tcpSocket": {"port": port}}
    else:
        handler = _handler(readiness)  # a command: the same one, slower
    probe: Object = copy.deepcopy(handler)
    delay = readiness.get("initialDelaySeconds", 0)
    probe.setdefault("initialDelaySeconds", max(MIN_DELAY, delay * DELAY_FACTOR))
    probe.setdefault("periodSeconds", readiness.get("periodSeconds", PERIOD) * PERIOD_FACTOR)
    return probe


def tolerance(probe: Object) -> int:
    """Seconds a failing check goes on before its probe acts (start delay included)."""
    period = probe.get("periodSeconds", PERIOD)
    failures = probe.get("failureThreshold", FAILURES)
    return int(probe.get("initialDelaySeconds", 0) + period * failures)


def same_check(readiness: Object, liveness: Object) -> bool:
    """Whether both probes run the same check, timings aside: what kube-score's
    pod-probes-identical finds (score/probes compares HTTP path and port, or TCP port)."""
    return _handler(readiness) == _handler(liveness)


def liveness_probes(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """A liveness probe for every long-running container that has readiness only; a probe that
    names its check without timings (a declared `Workload.liveness`) gets them here too."""
    for obj in objects:
        if obj["kind"] not in LONG_RUNNING:
            continue
        for template in _pod_templates(obj):
            for container in template.get("spec", {}).get("containers", []):
                readiness = container.get("readinessProbe")
                if readiness is not None:
                    container["livenessProbe"] = derived_liveness(
                        readiness, container.get("livenessProbe")
                    )
    return objects


def _replicas(obj: Object) -> int:
    if obj["kind"] not in REPLICATED:
        return 1
    return int((obj.get("spec") or {}).get("replicas", 1))


def disruption_budget(component: PlannedComponent, workload: Object) -> Object:
    """One replica down at a time (a drain evicts the next pod once the last one is back); a
    quorum system keeps a majority besides, and its unhealthy pods count against the budget."""
    replicas = _replicas(workload)
    spec: Object = {"selector": copy.deepcopy(workload["spec"]["selector"])}
    if component.cls.quorum:
        spec["minAvailable"] = max(replicas - 1, replicas // 2 + 1)
    else:
        spec["maxUnavailable"] = 1
        # A crash-looping pod serves nothing: evicting it never costs availability, and a drain
        # is not held up by it.
        spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": workload["metadata"]["name"]},
        "spec": spec,
    }


def disruption_budgets(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """A PodDisruptionBudget beside every workload with more than one replica (one replica has
    nothing to keep: a budget could only block drains)."""
    budgets = [disruption_budget(component, o) for o in objects if _replicas(o) > 1]
    return [*objects, *budgets]


def topology_spread(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """Replicas spread evenly over zones (a district's edge nodes are its zone; general nodes
    share one) and hosts, as a preference (see the module's docstring). A Deployment's new
    ReplicaSet is spread on its own (`pod-template-hash`), not around the pods it replaces."""
    for obj in objects:
        if _replicas(obj) < 2:
            continue
        selector = obj["spec"]["selector"]
        for template in _pod_templates(obj):
            constraints = []
            for key in (ZONE_LABEL, HOST_LABEL):
                constraint: Object = {
                    "maxSkew": 1,
                    "topologyKey": key,
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": copy.deepcopy(selector),
                }
                if obj["kind"] == "Deployment":
                    constraint["matchLabelKeys"] = ["pod-template-hash"]
                constraints.append(constraint)
            template.setdefault("spec", {}).setdefault("topologySpreadConstraints", constraints)
    return objects
