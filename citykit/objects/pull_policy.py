"""The image pull policy pass: `Always` through the registry, `Never` for local images."""

from __future__ import annotations

from citykit.conventions import Object
from citykit.conventions import pod_templates
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.planned import local_image_refs


def image_pull_policy(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """`Always`: the registry (or the city's mirror) checks the node's pull credentials for
    every pod, so a cached image is never used by a pod that could not pull it itself. Locally
    built images are never pulled (no registry has them): `Never`, so a missing one says
    ErrImageNeverPull at once instead of retrying a pull."""
    local = local_image_refs(component)
    for obj in objects:
        for template in pod_templates(obj):
            spec = template.get("spec", {})
            for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
                policy = "Never" if container.get("image") in local else "Always"
                container.setdefault("imagePullPolicy", policy)
    return objects
