"""The topology-spread pass: replicas of every workload with more than one spread over zones
(districts) and hosts. The spread is `ScheduleAnyway` on both: districts have unequal node
counts, and a hard host rule strands pods whenever one node of a pool is full, or holds a
StatefulSet replica's local volume, while the others would skew; the disruption budget
(disruption_budgets.py) is what protects a quorum."""

from __future__ import annotations

import copy

from citykit.conventions import HOST_LABEL
from citykit.conventions import ZONE_LABEL
from citykit.conventions import Object
from citykit.conventions import pod_templates
from citykit.conventions import workload_replicas
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


def topology_spread(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """Replicas spread evenly over zones (a district's edge nodes are its zone; general nodes
    share one) and hosts, as a preference (see the module's docstring). A Deployment's new
    ReplicaSet is spread on its own (`pod-template-hash`), not around the pods it replaces."""
    for obj in objects:
        if workload_replicas(obj) < 2:
            continue
        selector = obj["spec"]["selector"]
        for template in pod_templates(obj):
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
