"""What the security baseline's admission policy allows: the registries the city's pods may pull
from and the namespaces the policy guards."""

from __future__ import annotations

from citykit.conventions import tenant_namespace
from citykit.plan.planned import Plan
from citykit.plan.probe_image import probe_ref


def allowed_registries(plan: Plan) -> list[str]:
    """Registry prefixes pods may pull from: those of the plan's images, backups and verify probe
    (or the mirror)."""
    prefixes = set()
    for component in plan.components:
        for reference in component.images.values():
            prefixes.add(reference.split("/")[0] + "/")
    for component in plan.components:
        backup = component.cls.backup
        if backup is not None:
            prefixes.add(backup.image.ref(plan.environment.registry_mirror).split("/")[0] + "/")
    # `citykit verify` runs its probe pods in the city's namespaces.
    prefixes.add(probe_ref(plan).split("/")[0] + "/")
    return sorted(prefixes)


def city_namespaces(plan: Plan) -> list[str]:
    names = [plan.namespace(layer) for layer in plan.layers_in_use()]
    if plan.by_capability("tenancy") is not None:
        names += [tenant_namespace(plan.slug, d.slug) for d in plan.profile.departments]
    return sorted(names)
