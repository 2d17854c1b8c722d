"""The ServiceAccount pass: one per component that runs pods, its token mounted only for
declared API access."""

from __future__ import annotations

from citykit.conventions import Object
from citykit.conventions import pod_templates
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


def service_account(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """One ServiceAccount per component that runs pods, named after it; its token is mounted only
    when the component declares API access (RBAC for that is derived by the security system)."""
    runs_pods = any(pod_templates(obj) for obj in objects)
    if not runs_pods:
        return objects
    needs_token = bool(component.cls.api_access)
    for obj in objects:
        for template in pod_templates(obj):
            spec = template.setdefault("spec", {})
            spec.setdefault("serviceAccountName", component.name)
            spec.setdefault("automountServiceAccountToken", needs_token)
    account: Object = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": component.name},
        "automountServiceAccountToken": needs_token,
    }
    return [account, *objects]
