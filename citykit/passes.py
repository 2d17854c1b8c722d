"""Derivation passes: what the compiler adds to every component from its declarations, so no
component writes it by hand. Each pass takes one component's objects and returns the new list.
The order of PASSES is the order they run in."""

from __future__ import annotations

import json
from collections.abc import Callable

from citykit import availability, operations, security
from citykit.cluster.nodes import HOST_LABEL, POOL_LABEL, RUNTIME, RUNTIME_LABEL
from citykit.component import CheckSkip
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
            # Another component's credentials are copied only for a connection the graph has
            # (a single Loki gets no copy of the data lake's keys).
            if source is None or source.name not in component.peers:
                continue
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
    that declare them tolerate the taint. A pod whose images are all built locally runs on the
    real node instead (tainted too, so that nothing else lands there)."""
    local = _local_refs(component)
    pool = component.cls.pool
    for obj in objects:
        for template in _pod_templates(obj):
            spec = template.setdefault("spec", {})
            containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
            taint: tuple[str, str] | None
            if local and {c.get("image") for c in containers} <= local:
                selector, taint = {RUNTIME_LABEL: RUNTIME}, (RUNTIME_LABEL, RUNTIME)
            else:
                selector = {POOL_LABEL: pool}
                taint = (POOL_LABEL, pool) if pool != "general" else None
            spec.setdefault("nodeSelector", selector)
            if taint is not None:
                key, value = taint
                spec.setdefault(
                    "tolerations",
                    [{"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}],
                )
    return objects


def _local_refs(component: PlannedComponent) -> set[str]:
    """The component's locally built image references (none unless the plan chose them)."""
    if not component.local_images:
        return set()
    return {ref for key, ref in component.images.items() if key in component.cls.local_images}


def image_pull_policy(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """`Always`: the registry (or the city's mirror) checks the node's pull credentials for
    every pod, so a cached image is never used by a pod that could not pull it itself. Locally
    built images are never pulled (no registry has them): `Never`, so a missing one says
    ErrImageNeverPull at once instead of retrying a pull."""
    local = _local_refs(component)
    for obj in objects:
        for template in _pod_templates(obj):
            spec = template.get("spec", {})
            for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
                policy = "Never" if container.get("image") in local else "Always"
                container.setdefault("imagePullPolicy", policy)
    return objects


TAG_PINNED = CheckSkip(
    "CKV_K8S_43",
    "images are pinned by version tag (reviewable in the catalog) and resolved through the "
    "environment's registry mirror; digests are recorded by the mirror, not the profile",
)


def derived_checkov_skips(component: PlannedComponent, objects: list[Object]) -> list[CheckSkip]:
    """The component's declared skips plus those that follow from its other declarations: a
    declared writable root filesystem, declared API access, its image's fixed uid, credentials
    the software only reads from its environment."""
    skips = [TAG_PINNED, *component.cls.checkov_skips]
    for exception in component.exceptions:
        if exception.setting == "readOnlyRootFilesystem":
            skips.append(CheckSkip("CKV_K8S_22", exception.reason))
    if component.cls.api_access:
        skips.append(
            CheckSkip(
                "CKV_K8S_38",
                "the service account token is mounted for the "
                "declared API access (least-privilege role derived from it)",
            )
        )
    low = sorted({uid for obj in objects for uid in _low_ids(obj, "runAsUser")} - {0})
    if low:
        skips.append(
            CheckSkip(
                "CKV_K8S_40",
                f"runs as uid {', '.join(map(str, low))}, the "
                "upstream image's own user that owns its files",
            )
        )
    secret_env = any(
        "secretKeyRef" in json.dumps(container.get("env", []))
        for obj in objects
        for template in _pod_templates(obj)
        for container in [
            *template.get("spec", {}).get("initContainers", []),
            *template.get("spec", {}).get("containers", []),
        ]
    )
    if secret_env:
        skips.append(
            CheckSkip(
                "CKV_K8S_35",
                "the software reads these generated credentials "
                "from its environment only (secretKeyRef, never a literal)",
            )
        )
    return skips


def checkov_skips(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """Every skip as the annotations checkov reads (`checkov.io/skipN: CHECK=reason`) on each
    object of the component; `citykit compliance` lists the same skips."""
    skips = derived_checkov_skips(component, objects)
    for obj in objects:
        annotations = obj.setdefault("metadata", {}).setdefault("annotations", {})
        for index, skip in enumerate(skips, start=1):
            annotations[f"checkov.io/skip{index}"] = f"{skip.check}={skip.reason}"
    return objects


# kube-score reads the checks to skip from this annotation (scorecard/scorecard.go); the reason
# for each is ours, one annotation per check under KUBE_SCORE_REASON (check ids are at most 63
# characters, an annotation name's limit).
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_REASON = "kube-score.citykit.io/"
HIGH_ID = 10000  # kube-score's floor for uids and gids, above the host's own users


def _low_ids(obj: Object, field: str) -> list[int]:
    """The ids below HIGH_ID that `obj`'s containers run as (`runAsUser` or `runAsGroup`, the
    container's setting or else the pod's)."""
    found = []
    for template in _pod_templates(obj):
        spec = template.get("spec", {})
        pod = spec.get("securityContext", {}).get(field)
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            value = container.get("securityContext", {}).get(field, pod)
            if value is not None and value < HIGH_ID:
                found.append(value)
    return sorted(set(found))


def _writable_root_reason(component: PlannedComponent) -> str | None:
    for exception in component.exceptions:
        if exception.setting == "readOnlyRootFilesystem":
            return exception.reason
    return None


def derived_kube_score_skips(component: PlannedComponent, obj: Object) -> list[CheckSkip]:
    """The kube-score checks that do not apply to one object, each with the reason that follows
    from the component's declarations or the object itself: a declared writable root, a
    locally built image, the image's fixed user, a TCP-only service's probes, spread across
    hosts declared the modern way, and namespace-wide network policies."""
    skips: list[CheckSkip] = []
    templates = _pod_templates(obj)
    containers = [
        c
        for t in templates
        for c in [
            *t.get("spec", {}).get("initContainers", []),
            *t.get("spec", {}).get("containers", []),
        ]
    ]
    writable = _writable_root_reason(component)
    if writable and any(
        not c.get("securityContext", {}).get("readOnlyRootFilesystem") for c in containers
    ):
        skips.append(CheckSkip("container-security-context-readonlyrootfilesystem", writable))
    if any(c.get("imagePullPolicy") == "Never" for c in containers):
        skips.append(
            CheckSkip(
                "container-image-pull-policy",
                "its image is built on this machine (`citykit images build`) and loaded into "
                "the node: no registry has it, so it is never pulled",
            )
        )
    users, groups = _low_ids(obj, "runAsUser"), _low_ids(obj, "runAsGroup")
    if users or groups:
        ids = [f"uid {', '.join(map(str, users))}"] if users else []
        ids += [f"gid {', '.join(map(str, groups))}"] if groups else []
        skips.append(
            CheckSkip(
                "container-security-context-user-group-id",
                f"runs as {' and '.join(ids)}, the upstream image's own user and group, "
                "which own the files it writes",
            )
        )
    for container in containers:
        # Only a plain TCP service may have the same check for both: one with an HTTP health
        # check declares a distinct liveness check (Workload.liveness).
        readiness, liveness = container.get("readinessProbe"), container.get("livenessProbe")
        if (
            readiness is None
            or liveness is None
            or "tcpSocket" not in readiness
            or not availability.same_check(readiness, liveness)
        ):
            continue
        slower, faster = availability.tolerance(liveness), availability.tolerance(readiness)
        if slower > faster:
            port = readiness["tcpSocket"]["port"]
            skips.append(
                CheckSkip(
                    "pod-probes-identical",
                    f"{container['name']} declares no health check but accepting connections "
                    f"(port {port}): liveness connects like readiness, but restarts it only "
                    f"after {slower} s of failures (readiness takes it out of service after "
                    f"{faster} s)",
                )
            )
            break
    spread = {
        c.get("topologyKey")
        for t in templates
        for c in t.get("spec", {}).get("topologySpreadConstraints", [])
    }
    if HOST_LABEL in spread and obj["kind"] in ("Deployment", "StatefulSet"):
        skips.append(
            CheckSkip(
                f"{obj['kind'].lower()}-has-host-podantiaffinity",
                "replicas are spread across hosts by a kubernetes.io/hostname "
                "topologySpreadConstraint, which this check does not read",
            )
        )
    if obj["kind"] == "NetworkPolicy" and obj.get("spec", {}).get("podSelector") == {}:
        skips.append(
            CheckSkip(
                "networkpolicy-targets-pod",
                "namespace-wide (podSelector {}): it guards every pod the namespace will run, "
                "those deployed later included, so it may select none yet",
            )
        )
    return skips


def kube_score_exceptions(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """Each object's derived kube-score skips as the annotation kube-score reads, plus the
    reason of each beside it (`kube-score.citykit.io/<check>`); `citykit compliance` lists
    them."""
    for obj in objects:
        skips = derived_kube_score_skips(component, obj)
        if not skips:
            continue
        annotations = obj.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[KUBE_SCORE_IGNORE] = ",".join(skip.check for skip in skips)
        for skip in skips:
            annotations[KUBE_SCORE_REASON + skip.check] = skip.reason
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
    availability.topology_spread,
    availability.disruption_budgets,
    availability.liveness_probes,
    image_pull_policy,
    security.tls_certificates,
    security.network_policies,
    security.workload_rbac,
    checkov_skips,
    kube_score_exceptions,
    require_probes_and_resources,
)
