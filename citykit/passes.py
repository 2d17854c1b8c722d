"""Derivation passes: what the compiler adds to every component from its declarations, so no
component writes it by hand. Each pass takes one component's objects and returns the new list.
The order of PASSES is the order they run in."""

from __future__ import annotations

from collections.abc import Callable

from citykit.plan import Plan, PlannedComponent
from citykit.render import Object, _pod_templates

Pass = Callable[[Plan, PlannedComponent, list[Object]], list[Object]]


def generated_secrets(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """A Secret per declared SecretSpec, with no value: values are generated at deploy time (as
    Pulumi secrets), so no credential ever appears in a template or a rendered file."""
    added: list[Object] = []
    for spec in component.cls.secrets:
        added.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": f"{component.name}-{spec.name}",
                    "annotations": {"citykit.io/generate": ",".join(spec.keys)},
                },
                "type": "Opaque",
            }
        )
    return [*added, *objects]


def service_account(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """One ServiceAccount per component that runs pods, named after it; its token is mounted only
    when the component declares API access (RBAC for that is derived by the security system)."""
    runs_pods = any(_pod_templates(obj) for obj in objects)
    if not runs_pods:
        return objects
    needs_token = bool(component.cls.api_access)
    for obj in objects:
        for template in _pod_templates(obj):
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


def harden_workloads(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """Restricted Pod Security for every pod: non-root, no privilege escalation, all capabilities
    dropped, RuntimeDefault seccomp, read-only root filesystem unless the component declares an
    exception, and no service-account token unless the component's templates ask for one."""
    writable_root = any(e.setting == "readOnlyRootFilesystem" for e in component.exceptions)
    for obj in objects:
        for template in _pod_templates(obj):
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


PASSES: tuple[Pass, ...] = (generated_secrets, service_account, harden_workloads)
