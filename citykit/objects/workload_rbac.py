"""The workload RBAC pass: a Role and/or ClusterRole with exactly a component's declared API
access, bound to its ServiceAccount."""

from __future__ import annotations

from typing import Any

from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


def workload_rbac(
    plan: Plan, component: PlannedComponent, objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A Role (namespace) and/or ClusterRole (cluster-wide) with exactly the declared rules,
    bound to the component's ServiceAccount."""
    access = component.cls.api_access
    if not access:
        return objects
    added: list[dict[str, Any]] = []
    subject = [{"kind": "ServiceAccount", "name": component.name, "namespace": component.namespace}]
    for cluster_wide in (False, True):
        rules = [
            {
                "apiGroups": list(a.api_groups),
                "resources": list(a.resources),
                "verbs": list(a.verbs),
            }
            for a in access
            if a.cluster_wide == cluster_wide
        ]
        if not rules:
            continue
        kind = "ClusterRole" if cluster_wide else "Role"
        name = f"{plan.slug}-{component.name}" if cluster_wide else component.name
        added.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": name},
                "rules": rules,
            }
        )
        added.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": f"{kind}Binding",
                "metadata": {"name": name},
                "subjects": subject,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            }
        )
    return [*objects, *added]
