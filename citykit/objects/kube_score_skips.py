"""The kube-score pass: the checks that do not apply to an object, each with its reason, as the
annotations kube-score reads (`citykit compliance` lists them)."""

from __future__ import annotations

from citykit.contract.component import CheckSkip
from citykit.conventions import HOST_LABEL
from citykit.conventions import KUBE_SCORE_IGNORE
from citykit.conventions import KUBE_SCORE_REASON
from citykit.conventions import REPLICATED_KINDS
from citykit.conventions import Object
from citykit.conventions import pod_templates
from citykit.objects import liveness_probes
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent

HIGH_ID = 10000  # kube-score's floor for uids and gids, above the host's own users


def low_ids(obj: Object, field: str) -> list[int]:
    """The ids below HIGH_ID that `obj`'s containers run as (`runAsUser` or `runAsGroup`, the
    container's setting or else the pod's)."""
    found = []
    for template in pod_templates(obj):
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
    templates = pod_templates(obj)
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
    users, groups = low_ids(obj, "runAsUser"), low_ids(obj, "runAsGroup")
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
            or not liveness_probes.same_check(readiness, liveness)
        ):
            continue
        slower, faster = liveness_probes.tolerance(liveness), liveness_probes.tolerance(readiness)
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
    if HOST_LABEL in spread and obj["kind"] in REPLICATED_KINDS:
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
