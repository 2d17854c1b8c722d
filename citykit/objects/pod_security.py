"""The pod-hardening pass: restricted Pod Security for every pod, exceptions as declared."""

from __future__ import annotations

from citykit.conventions import Object
from citykit.conventions import pod_templates
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


def harden_workloads(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """Restricted Pod Security for every pod: non-root, no privilege escalation, all capabilities
    dropped, RuntimeDefault seccomp, read-only root filesystem unless the component declares an
    exception, and no service-account token unless the component's templates ask for one."""
    writable_root = any(e.setting == "readOnlyRootFilesystem" for e in component.exceptions)
    for obj in objects:
        for template in pod_templates(obj):
            spec = template.setdefault("spec", {})
            spec.setdefault("automountServiceAccountToken", False)
            pod_context = spec.setdefault("securityContext", {})
            pod_context.setdefault("runAsNonRoot", True)
            pod_context.setdefault("seccompProfile", {"type": "RuntimeDefault"})
            for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
                context = container.setdefault("securityContext", {})
                context.setdefault("allowPrivilegeEscalation", False)
                context.setdefault("capabilities", {"drop": ["ALL"]})
                context.setdefault("readOnlyRootFilesystem", not writable_root)
                context.setdefault("runAsNonRoot", True)
    return objects
