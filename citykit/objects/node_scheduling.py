"""The scheduling pass: pods to their component's node pool (tolerating its taint), or to the
real node when all their images are built locally."""

from __future__ import annotations

from citykit.conventions import POOL_LABEL
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.conventions import Object
from citykit.conventions import pod_templates
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.planned import local_image_refs


def schedule_on_pool(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """Pods go to the component's node pool; GPU and edge pools are tainted, so only components
    that declare them tolerate the taint. A pod whose images are all built locally runs on the
    real nodes of its pool instead (tainted too, so that nothing else lands there)."""
    local = local_image_refs(component)
    pool = component.cls.pool
    for obj in objects:
        for template in pod_templates(obj):
            spec = template.setdefault("spec", {})
            containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
            selector: dict[str, str] = {POOL_LABEL: pool}
            taints: list[tuple[str, str]] = [(POOL_LABEL, pool)] if pool != "general" else []
            if local and {c.get("image") for c in containers} <= local:
                selector = {RUNTIME_LABEL: RUNTIME, **selector}
                taints = [(RUNTIME_LABEL, RUNTIME), *taints]
            spec.setdefault("nodeSelector", selector)
            if taints:
                spec.setdefault(
                    "tolerations",
                    [
                        {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}
                        for key, value in taints
                    ],
                )
    return objects
