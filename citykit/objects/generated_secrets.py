"""The generated-Secrets pass: a Secret per declared SecretSpec, without values."""

from __future__ import annotations

from citykit.conventions import GENERATE_ANNOTATION
from citykit.conventions import SAME_AS_ANNOTATION
from citykit.conventions import Object
from citykit.conventions import secret_name
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


def generated_secrets(
    plan: Plan, component: PlannedComponent, objects: list[Object]
) -> list[Object]:
    """A Secret per declared SecretSpec, with no value: values are generated at deploy time (as
    Pulumi secrets), so no credential ever appears in a template or a rendered file."""
    added: list[Object] = []
    for spec in component.cls.secrets:
        annotations = {GENERATE_ANNOTATION: ",".join(spec.keys)}
        if spec.same_as:
            capability, suffix = spec.same_as.split(":")
            source = plan.by_capability(capability)
            # Another component's credentials are copied only for a connection the graph has
            # (a single Loki gets no copy of the data lake's keys).
            if source is None or source.name not in component.peers:
                continue
            annotations[SAME_AS_ANNOTATION] = (
                f"{source.namespace}/{secret_name(source.name, suffix)}"
            )
        added.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": secret_name(component.name, spec.name),
                    "annotations": annotations,
                },
                "type": "Opaque",
            }
        )
    return [*added, *objects]
