"""The checkov pass: each component's declared and derived checkov skips as annotations."""

from __future__ import annotations

import json

from citykit.contract.component import CheckSkip
from citykit.conventions import Object
from citykit.conventions import checkov_skip_annotation
from citykit.conventions import pod_templates
from citykit.objects.kube_score_skips import low_ids
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent

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
    if component.local_images and component.cls.local_images:
        skips.append(
            CheckSkip(
                "CKV_K8S_15",
                "its images are built on this machine (`citykit images build`) and loaded into "
                "the nodes: pull policy Never, as no registry holds them",
            )
        )
    low = sorted({uid for obj in objects for uid in low_ids(obj, "runAsUser")} - {0})
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
        for template in pod_templates(obj)
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
            annotations[checkov_skip_annotation(index)] = f"{skip.check}={skip.reason}"
    return objects
