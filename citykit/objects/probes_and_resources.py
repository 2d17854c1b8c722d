"""The last pass: a container without resources, or a long-running one without probes, is a
catalog bug that fails the build, naming it."""

from __future__ import annotations

from citykit.conventions import BATCH_KINDS
from citykit.conventions import Object
from citykit.conventions import pod_templates
from citykit.objects.render import TemplateError
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


def require_probes_and_resources(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """A catalog component without probes or resources is a bug: fail the build, naming it."""
    for obj in objects:
        for template in pod_templates(obj):
            for container in template.get("spec", {}).get("containers", []):
                long_running = obj["kind"] not in BATCH_KINDS
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
