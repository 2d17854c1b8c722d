"""Derivation passes: what the compiler adds to every component from its declarations, so no
component writes it by hand. Each pass takes one component's objects and returns the new list.
The order of PASSES is the order they run in."""

from __future__ import annotations

from collections.abc import Callable

from citykit import operations, security
from citykit.cluster.nodes import POOL_LABEL
from citykit.plan import Plan, PlannedComponent
from citykit.render import Object, TemplateError, _pod_templates

SAME_AS = "citykit.io/same-as"
Pass = Callable[[Plan, PlannedComponent, list[Object]], list[Object]]


def generated_secrets(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """A Secret per declared SecretSpec, with no value: values are generated at deploy time (as
    Pulumi secrets), so no credential ever appears in a template or a rendered file."""
    added: list[Object] = []
    for spec in component.cls.secrets:
        annotations = {"citykit.io/generate": ",".join(spec.keys)}
        if spec.same_as:
            capability, suffix = spec.same_as.split(":")
            source = plan.by_capability(capability)
            if source is not None:
                annotations[SAME_AS] = f"{source.namespace}/{source.name}-{suffix}"
        added.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{component.name}-{spec.name}", "annotations": annotations},
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


def schedule_on_pool(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """Pods go to the component's node pool; GPU and edge pools are tainted, so only components
    that declare them tolerate the taint."""
    pool = component.cls.pool
    for obj in objects:
        for template in _pod_templates(obj):
            spec = template.setdefault("spec", {})
            spec.setdefault("nodeSelector", {POOL_LABEL: pool})
            if pool != "general":
                spec.setdefault(
                    "tolerations",
                    [
                        {
                            "key": POOL_LABEL,
                            "operator": "Equal",
                            "value": pool,
                            "effect": "NoSchedule",
                        }
                    ],
                )
    return objects


def image_pull_policy(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """Images are pinned by tag, so pulling when absent is enough; `Always` would re-check the
    registry for every pod and makes air-gapped mirrors a single point of failure."""
    for obj in objects:
        for template in _pod_templates(obj):
            spec = template.get("spec", {})
            for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
                container.setdefault("imagePullPolicy", "IfNotPresent")
    return objects


def checkov_skips(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """Declared, reasoned checkov skips as the annotations checkov reads."""
    if not component.cls.checkov_skips:
        return objects
    for obj in objects:
        annotations = obj.setdefault("metadata", {}).setdefault("annotations", {})
        for index, skip in enumerate(component.cls.checkov_skips, start=1):
            annotations[f"checkov.io/skip{index}"] = f"{skip.check}={skip.reason}"
    return objects


def require_probes_and_resources(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """A catalog component without probes or resources is a bug: fail the build, naming it."""
    for obj in objects:
        for template in _pod_templates(obj):
            for container in template.get("spec", {}).get("containers", []):
                long_running = obj["kind"] not in ("Job", "CronJob")
                missing = [key for key in ("resources",) if not container.get(key)]
                if long_running:
                    missing += [
                        k for k in ("readinessProbe", "livenessProbe") if k not in container
                    ]
                if missing:
                    raise TemplateError(
                        f"component {component.name}: container {container.get('name')} of "
                        f"{obj['kind']}/{obj['metadata'].get('name')} has no {', '.join(missing)}"
                    )
    return objects


PASSES: tuple[Pass, ...] = (
    operations.backups,
    generated_secrets,
    service_account,
    harden_workloads,
    schedule_on_pool,
    image_pull_policy,
    security.network_policies,
    security.workload_rbac,
    checkov_skips,
    require_probes_and_resources,
)
