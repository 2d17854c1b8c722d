"""The disruption-budget pass: every workload with more than one replica gets a
PodDisruptionBudget (one replica down at a time; quorum systems also keep a majority)."""

from __future__ import annotations

import copy

from citykit.conventions import Object
from citykit.conventions import workload_replicas
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


def disruption_budget(component: PlannedComponent, workload: Object) -> Object:
    """One replica down at a time (a drain evicts the next pod once the last one is back); a
    quorum system keeps a majority besides, and its unhealthy pods count against the budget."""
    replicas = workload_replicas(workload)
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
    budgets = [disruption_budget(component, o) for o in objects if workload_replicas(o) > 1]
    return [*objects, *budgets]
