"""The Pulumi program: the compiled city as resources that read like the reference model.

- a ComponentResource per layer (`citykit:layer:Data`) and per component
  (`citykit:component:DataLake`, parent: its layer), one typed resource per rendered object
  (parent: its component);
- order is what Kubernetes needs and no more, so that the engine can create almost everything at
  once: an object waits for its Namespace; a custom resource for its CRD and, in another
  component, for all of the component that ships the CRD (controller, issuers, CA); a workload
  (Deployment, StatefulSet, DaemonSet, Job, CronJob) for the rest of its own component (config,
  Secrets, ServiceAccount, claims, certificates) and for the workloads of the components it
  requires,
  each awaited Ready by the provider, so a pod never starts before what it connects to (a
  database before the Job that migrates it);
- generated credentials become Pulumi secrets (`string_data`), never plain state or output;
- with `protect_data`, stateful components' StatefulSets and claims are protected and namespaces
  and CRDs retained on delete, so `destroy` keeps the data unless it is asked to delete it;
  without it, StatefulSets delete their claims, so nothing is left behind."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pulumi

from citykit.compiler import Compiled
from citykit.compiler import Unit
from citykit.contract.layers import Layer
from citykit.conventions import GENERATE_ANNOTATION
from citykit.conventions import POD_TEMPLATE_KINDS
from citykit.conventions import WORKLOAD_KINDS
from citykit.conventions import service_host
from citykit.deploy import resources
from citykit.deploy.progress import component_token

SKIP_AWAIT = "pulumi.com/skipAwait"
PATCH_FORCE = "pulumi.com/patchForce"
DELETION_PROPAGATION = "pulumi.com/deletionPropagationPolicy"
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
    # Nothing in a simulated or bare cluster ever fills in an ingress or load balancer status.
    # A Service is ready when the pods behind it are, and those are awaited through their
    # workload; the provider's own Service await sleeps 10 s after every change of its
    # endpoints "to let them settle" (pkg/await/service.go), which made each component take
    # 10 s or more whatever its size. A ResourceQuota's status is the quota controller's
    # bookkeeping: admission enforces the quota from its spec, and the provider waited up to a
    # minute for that status (30 s on a freshly started controller manager).
    if kind in ("Ingress", "Service", "ResourceQuota") or (
        unit.component.cls.readiness == "exists" and kind in POD_TEMPLATE_KINDS
    ):
        annotations[SKIP_AWAIT] = "true"
    # The provider deletes in the foreground by default: the object stays, marked, until the
    # garbage collector has deleted what it owns and taken the mark off. Only what owns pods
    # needs that, so a destroy waits until the pods that use a claim, a Secret or a database
    # are gone before those go. Anything else is deleted at once, its owned objects (a
    # Service's EndpointSlices) taken by the collector afterwards:
    # - each foreground delete waits for a round trip through the collector: with every object
    #   in the foreground, most of the example city's objects took 5 or 10 s each to delete,
    #   and its destroy on the local cluster 49 s; with only workloads and namespaces, 25 s;
    # - a controller that still reconciles the object can keep creating owned objects
    #   meanwhile: cert-manager re-created a Certificate's next-private-key Secret while the
    #   Certificate waited for it to go, and a destroy hung for twenty minutes.
    # Namespaces keep the default: the namespace controller empties them either way.
    if kind not in (*WORKLOAD_KINDS, "Namespace"):
        annotations[DELETION_PROPAGATION] = "background"
    return result


def _secret_values(obj: dict[str, Any], generated: Mapping[str, Mapping[str, str]]) -> Any:
    key = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
    wanted = obj["metadata"]["annotations"][GENERATE_ANNOTATION].split(",")
    values = generated.get(key, {})
    missing = [k for k in wanted if k not in values]
    if missing:
        raise MissingSecretValue(f"no generated value for {key}: {', '.join(missing)}")
    return pulumi.Output.secret({k: values[k] for k in wanted})


def _registration_rank(obj: dict[str, Any]) -> int:
    if obj["kind"] in ("Namespace", "CustomResourceDefinition"):
        return 0
    return 2 if obj["kind"] in WORKLOAD_KINDS else 1


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
    namespace_resources: dict[str, pulumi.Resource] = {}
    # What a dependent waits for: a component's workloads (awaited Ready by the provider).
    workloads: dict[str, list[pulumi.Resource]] = {}
    # API group -> the CRDs of that group and the workloads of the component that ships them.
    custom_groups: dict[str, list[pulumi.Resource]] = {}
    outputs: dict[str, Any] = {}
    for unit in compiled.units:  # topological order: dependencies are registered first
        component = unit.component
        parent = pulumi.ComponentResource(
            component_type(component.name),
            component.name,
            opts=pulumi.ResourceOptions(parent=layer_resources[component.layer.key]),
        )
        stateful = component.cls.stateful and options.protect_data
        required = [w for name in component.requires for w in workloads.get(name, [])]
        # Namespaces and CRDs first, then the rest, workloads last: each list only holds
        # resources registered before the ones that depend on them.
        ordered = sorted(unit.objects, key=_registration_rank)
        crds: list[pulumi.Resource] = []
        supporting: list[pulumi.Resource] = []
        own_workloads: list[pulumi.Resource] = []
        endpoints: list[str] = []
        secret_names: list[str] = []
        for source in ordered:
            obj = prepare(unit, source, options.protect_data)
            kind, metadata = obj["kind"], obj["metadata"]
            depends: list[pulumi.Resource] = []
            namespace = metadata.get("namespace")
            if namespace and namespace in namespace_resources:
                depends.append(namespace_resources[namespace])
            group = obj["apiVersion"].rpartition("/")[0]
            depends += custom_groups.get(group, [])
            if kind in WORKLOAD_KINDS:
                depends += [*supporting, *required]
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
            if kind == "Namespace":
                namespace_resources[metadata["name"]] = created
            elif kind == "CustomResourceDefinition":
                crds.append(created)
                custom_groups.setdefault(obj["spec"]["group"], []).append(created)
            elif kind in WORKLOAD_KINDS:
                own_workloads.append(created)
            else:
                supporting.append(created)
            if kind == "Service":
                endpoints += [
                    f"{service_host(metadata['name'], namespace)}:{port['port']}"
                    for port in obj.get("spec", {}).get("ports", [])
                ]
        # Other components' custom resources of this component's CRDs wait for all of it: its
        # controller, and its own issuers and CA. Destroy then deletes them first: a Certificate
        # deleted after its issuer and CA never finished deleting (cert-manager kept re-issuing
        # a key Secret owned by it while the garbage collector deleted it, in a loop).
        everything = [*crds, *supporting, *own_workloads]
        for crd_group in {
            o["spec"]["group"] for o in unit.objects if o["kind"] == "CustomResourceDefinition"
        }:
            custom_groups[crd_group] = everything
        workloads[component.name] = own_workloads
        outputs[component.name] = {"endpoints": endpoints, "secrets": secret_names}
        parent.register_outputs(outputs[component.name])
    for resource in layer_resources.values():
        resource.register_outputs({})
    return outputs
