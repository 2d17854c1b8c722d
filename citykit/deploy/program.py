"""The Pulumi program: the compiled city as resources that read like the reference model.

- a ComponentResource per layer (`citykit:layer:Data`) and per component
  (`citykit:component:DataLake`, parent: its layer), one typed resource per rendered object
  (parent: its component);
- order follows the component graph: every resource of a component depends on the components it
  requires (depending on a component resource waits for all of its children, each awaited by
  the provider's readiness logic), and on the Namespace resource its namespace comes from;
- generated credentials become Pulumi secrets (`string_data`), never plain state or output;
- with `protect_data`, stateful components' StatefulSets and claims are protected and namespaces
  and CRDs retained on delete, so `destroy` keeps the data unless it is asked to delete it;
  without it, StatefulSets delete their claims, so nothing is left behind."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from citykit.compiler import Compiled, Unit
from citykit.deploy import resources
from citykit.deploy.progress import component_token
from citykit.layers import Layer

GENERATE_ANNOTATION = "citykit.io/generate"
SKIP_AWAIT = "pulumi.com/skipAwait"
PATCH_FORCE = "pulumi.com/patchForce"
STATEFUL_KINDS = ("StatefulSet", "PersistentVolumeClaim")
# Kept on the cluster by `destroy` where data is protected: namespaces hold the kept claims, and
# CRDs are cluster-wide (deleting one deletes every custom resource of its kind, other cities'
# and teams' included; Helm keeps CRDs on uninstall for the same reason).
RETAINED_KINDS = ("Namespace", "CustomResourceDefinition")


def layer_token(layer: Layer) -> str:
    return "citykit:layer:" + "".join(part.capitalize() for part in layer.key.split("-"))


def component_type(name: str) -> str:
    return f"citykit:component:{component_token(name)}"


@dataclass(frozen=True)
class ProgramOptions:
    protect_data: bool
    provider: pulumi.ProviderResource | None = None
    # '<namespace>/<secret name>' -> key -> value, for Secrets annotated citykit.io/generate.
    generated: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


class MissingSecretValue(Exception):
    """The driver did not supply a generated value the program needs (a citykit bug)."""


def prepare(unit: Unit, obj: dict[str, Any], protect_data: bool) -> dict[str, Any]:
    """The object as deployed: a deep copy with deployment-only settings, never a mutation of
    the compiled objects (rendered manifests stay exactly as `render` writes them)."""
    result = copy.deepcopy(obj)
    kind = result["kind"]
    annotations = result["metadata"].setdefault("annotations", {})
    # The profile is the source of truth: a hand edit (another field manager) is taken back by
    # the next `up` and shows as drift, instead of failing server-side apply with a conflict.
    annotations[PATCH_FORCE] = "true"
    if kind == "StatefulSet":
        when_deleted = "Retain" if protect_data else "Delete"
        result["spec"]["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": when_deleted,
            "whenScaled": "Retain",
        }
    no_status = kind == "Ingress" or (
        kind == "Service" and result.get("spec", {}).get("type") == "LoadBalancer"
    )
    if no_status or (
        unit.component.cls.readiness == "exists"
        and kind in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ):
        # Nothing in a simulated or bare cluster ever fills in a load balancer's status.
        annotations[SKIP_AWAIT] = "true"
    return result


def _secret_values(obj: dict[str, Any], generated: Mapping[str, Mapping[str, str]]) -> Any:
    key = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
    wanted = obj["metadata"]["annotations"][GENERATE_ANNOTATION].split(",")
    values = generated.get(key, {})
    missing = [k for k in wanted if k not in values]
    if missing:
        raise MissingSecretValue(f"no generated value for {key}: {', '.join(missing)}")
    return pulumi.Output.secret({k: values[k] for k in wanted})


def deploy_city(compiled: Compiled, options: ProgramOptions) -> dict[str, Any]:
    """Register every object of the compiled city; returns outputs per component."""
    plan = compiled.plan
    providers = [options.provider] if options.provider is not None else None
    layer_resources: dict[str, pulumi.ComponentResource] = {}
    for layer in plan.layers_in_use():
        layer_resources[layer.key] = pulumi.ComponentResource(
            layer_token(layer),
            layer.key,
            opts=pulumi.ResourceOptions(providers=providers),
        )
    component_resources: dict[str, pulumi.ComponentResource] = {}
    namespace_resources: dict[str, pulumi.Resource] = {}
    outputs: dict[str, Any] = {}
    for unit in compiled.units:  # topological order: dependencies are registered first
        component = unit.component
        requires = [component_resources[name] for name in component.requires]
        parent = pulumi.ComponentResource(
            component_type(component.name),
            component.name,
            opts=pulumi.ResourceOptions(
                parent=layer_resources[component.layer.key], depends_on=requires
            ),
        )
        component_resources[component.name] = parent
        stateful = component.cls.stateful and options.protect_data
        ordered = sorted(
            unit.objects, key=lambda o: o["kind"] not in ("CustomResourceDefinition", "Namespace")
        )
        foundation: list[pulumi.Resource] = []
        endpoints: list[str] = []
        secret_names: list[str] = []
        for source in ordered:
            obj = prepare(unit, source, options.protect_data)
            kind, metadata = obj["kind"], obj["metadata"]
            depends: list[pulumi.Resource] = [*requires, *foundation]
            namespace = metadata.get("namespace")
            if namespace and namespace in namespace_resources:
                depends.append(namespace_resources[namespace])
            opts = pulumi.ResourceOptions(
                parent=parent,
                depends_on=depends,
                protect=stateful and kind in STATEFUL_KINDS,
                retain_on_delete=options.protect_data and kind in RETAINED_KINDS,
            )
            if kind == "Secret" and GENERATE_ANNOTATION in (metadata.get("annotations") or {}):
                obj["stringData"] = _secret_values(obj, options.generated)
                opts = pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"])
                )
                secret_names.append(f"{namespace}/{metadata['name']}")
            created = resources.create(resources.logical_name(obj), obj, opts)
            if kind in ("CustomResourceDefinition", "Namespace"):
                foundation.append(created)
            if kind == "Namespace":
                namespace_resources[metadata["name"]] = created
            if kind == "Service":
                endpoints += [
                    f"{metadata['name']}.{namespace}.svc:{port['port']}"
                    for port in obj.get("spec", {}).get("ports", [])
                ]
        outputs[component.name] = {"endpoints": endpoints, "secrets": secret_names}
        parent.register_outputs(outputs[component.name])
    for resource in layer_resources.values():
        resource.register_outputs({})
    return outputs
