"""三权分立 for the security baseline: system, security and audit administrators whose powers do
not overlap, and a read-only operator role per department (rendered by `security-baseline`)."""

from __future__ import annotations

from typing import Any

from citykit.conventions import tenant_namespace
from citykit.plan.planned import Plan

READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete", "deletecollection"]
WORKLOAD_RESOURCES = {
    "": ["pods", "pods/log", "services", "configmaps", "persistentvolumeclaims", "events"],
    "apps": ["deployments", "statefulsets", "daemonsets", "replicasets"],
    "batch": ["jobs", "cronjobs"],
    "autoscaling": ["horizontalpodautoscalers"],
    "policy": ["poddisruptionbudgets"],
}
SECURITY_RESOURCES = {
    "rbac.authorization.k8s.io": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
    "networking.k8s.io": ["networkpolicies"],
    "admissionregistration.k8s.io": [
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    ],
    "": ["serviceaccounts"],
}


def _rules(resources: dict[str, list[str]], verbs: list[str]) -> list[dict[str, Any]]:
    return [
        {"apiGroups": [group], "resources": sorted(names), "verbs": verbs}
        for group, names in sorted(resources.items())
    ]


def admin_roles(plan: Plan) -> list[dict[str, Any]]:
    """System, security and audit administrator ClusterRoles: no verb on a resource is held by
    two of them (the audit administrator only reads, and never Secret values)."""
    slug = plan.slug
    readable = {**WORKLOAD_RESOURCES, **SECURITY_RESOURCES}
    readable[""] = sorted(
        {
            *WORKLOAD_RESOURCES[""],
            *SECURITY_RESOURCES[""],
            "namespaces",
            "resourcequotas",
            "limitranges",
            "nodes",
        }
    )
    return [
        {
            "name": f"{slug}-system-admin",
            "group": f"{slug}:system-admins",
            "duty": "system administrator: deploys and operates workloads; no RBAC, no Secrets",
            "rules": _rules(WORKLOAD_RESOURCES, READ + WRITE),
        },
        {
            "name": f"{slug}-security-admin",
            "group": f"{slug}:security-admins",
            "duty": "security administrator: RBAC, network policy, admission policy; no workloads",
            "rules": [
                *_rules(SECURITY_RESOURCES, READ + WRITE),
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "patch"]},
            ],
        },
        {
            "name": f"{slug}-audit-admin",
            "group": f"{slug}:audit-admins",
            "duty": "audit administrator: reads everything except Secret values; changes nothing",
            "rules": _rules(readable, READ),
        },
    ]


def department_roles(plan: Plan) -> list[dict[str, Any]]:
    """A read-only operator role in each department's tenant namespace."""
    if plan.by_capability("tenancy") is None:
        return []
    return [
        {
            "namespace": tenant_namespace(plan.slug, department.slug),
            "group": f"{plan.slug}:dept-{department.slug}-operators",
            "rules": _rules(WORKLOAD_RESOURCES, READ),
        }
        for department in plan.profile.departments
    ]
