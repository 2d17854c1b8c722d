"""Templates -> Kubernetes objects (plain dicts).

Injection cannot happen by construction: every `{{ expression }}` is emitted as a JSON value
(JSON is a subset of YAML flow syntax), so a profile string is always one quoted scalar whatever
it contains, and profile values are data, never template source. Output is parsed at once; the
shared labels (citykit/conventions.py) are added here, in one place, not by each template."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from citykit.contract.template_values import TemplateValues
from citykit.conventions import CLUSTER_SCOPED
from citykit.conventions import Object
from citykit.conventions import common_labels
from citykit.conventions import pod_templates
from citykit.conventions import secret_name
from citykit.conventions import selector_labels
from citykit.conventions import sort_objects
from citykit.errors import CitykitError
from citykit.objects.build import Build
from citykit.objects.build import build_context
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


class TemplateError(CitykitError):
    """A shipped template is broken: a catalog bug, reported with the template's name."""


def _as_json(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises here, naming the missing variable
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


@cache
def _jinja() -> jinja2.Environment:
    root = Path(str(resources.files("citykit.templates")))
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        finalize=_as_json,
        autoescape=False,  # output is YAML, made safe by finalize, not HTML escaping
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment


SHARED_WORKLOAD = "_workload"
# libyaml's safe loader where the wheel has it: the same documents, parsed ten times faster.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def template_names(component: str, shared_workload: bool = False) -> list[str]:
    """The component's own templates, plus the shared workload templates when it declares a
    standard `workload`. `*.yaml.j2` files are Jinja2 templates; plain `*.yaml` files are
    upstream manifests taken verbatim (vendored CRDs), so nothing in them is ever evaluated."""
    root = Path(str(resources.files("citykit.templates")))
    names: list[str] = []
    for directory in ([SHARED_WORKLOAD] if shared_workload else []) + [component]:
        if (root / directory).is_dir():
            names += sorted(
                f"{directory}/{p.name}"
                for p in (root / directory).iterdir()
                if p.name.endswith((".yaml.j2", ".yaml"))
            )
    return names


@cache
def _static_objects(name: str) -> tuple[Object, ...]:
    text = (Path(str(resources.files("citykit.templates"))) / name).read_text(encoding="utf-8")
    return tuple(_parse(name, text))


def render_template(name: str, values: Mapping[str, Any]) -> list[Object]:
    if name.endswith(".yaml"):
        # A copy: the passes add labels and annotations to the objects they are given.
        return copy.deepcopy(list(_static_objects(name)))
    try:
        text = _jinja().get_template(name).render(**values)
    except jinja2.UndefinedError as error:
        raise TemplateError(f"template {name}: {error.message}") from None
    except jinja2.TemplateError as error:
        raise TemplateError(f"template {name}: {error}") from None
    return _parse(name, text)


def _parse(name: str, text: str) -> list[Object]:
    try:
        documents = list(yaml.load_all(text, Loader=_LOADER))
    except yaml.YAMLError as error:
        raise TemplateError(f"template {name} rendered invalid YAML: {error}") from None
    objects: list[Object] = []
    for document in documents:
        if document is None:
            continue  # a template may render nothing when a feature is off
        if not isinstance(document, dict) or "kind" not in document:
            raise TemplateError(f"template {name} rendered something that is not an object")
        objects.append(document)
    return objects


def fullname(plan: Plan, name: str) -> str:
    """Name of a cluster-scoped object: prefixed by the city, truncated to 63 like Helm does."""
    return f"{plan.slug}-{name}"[:63].rstrip("-")


def peers(build: Build) -> dict[str, dict[str, Any]]:
    """How the component reaches each of its peers, by capability (template value `peers`)."""
    return {
        capability: {
            "name": peer.name,
            "capability": peer.capability,
            "namespace": peer.namespace,
            "host": peer.host,
            "ports": peer.ports,
        }
        for capability, peer in build.peers.items()
    }


def resources_for(plan: Plan, component: PlannedComponent) -> dict[str, dict[str, str]]:
    factor = plan.environment.size_factor
    spec = component.cls.resources
    cpu = max(10, round(spec.cpu_millis * factor))
    memory = max(32, round(spec.memory_mi * factor))
    scratch = spec.ephemeral_mi  # not scaled: see Resources
    return {
        "requests": {
            "cpu": f"{cpu}m",
            "memory": f"{memory}Mi",
            "ephemeral-storage": f"{scratch}Mi",
        },
        "limits": {
            "cpu": f"{cpu * 2}m",
            "memory": f"{memory}Mi",
            "ephemeral-storage": f"{scratch * 4}Mi",
        },
    }


def values_for(build: Build) -> dict[str, Any]:
    """Everything a template may read. Plain data only (dicts, lists, strings, numbers), but for
    `x`'s typed parts (`TemplateValues`), read by attribute."""
    plan, component = build.plan, build.component
    profile = plan.profile
    environment = plan.environment
    cls = component.cls
    return {
        "city": profile.city.model_dump(by_alias=True),
        "districts": [d.model_dump(by_alias=True) for d in profile.districts],
        "departments": [d.model_dump(by_alias=True) for d in profile.departments],
        "env": environment.model_dump(by_alias=True, exclude={"profile"}),
        "c": {
            "name": component.name,
            "fullname": fullname(plan, component.name),
            "namespace": component.namespace,
            "layer": component.layer.key,
            "selector": selector_labels(plan.slug, component.name),
            "sizing": {s.name: s.value for s in component.sizing},
            "images": dict(component.images),
            "settings": component.settings.model_dump(by_alias=False),
            "ports": {p.name: p.port for p in cls.ports},
            "service_ports": {p.name: p.port for p in cls.ports if p.exposed_to != "self"},
            "protocols": {p.name: p.protocol for p in cls.ports},
            "resources": resources_for(plan, component),
            "secrets": {s.name: secret_name(component.name, s.name) for s in cls.secrets},
            "storage_class": environment.storage_class,
            "workload": _workload_values(component),
        },
        "namespaces": {layer.key: plan.namespace(layer) for layer in plan.layers_in_use()},
        "peers": peers(build),
        "x": _extras(cls().values(build), component),
    }


def _workload_values(component: PlannedComponent) -> dict[str, Any] | None:
    workload = component.cls.workload
    if workload is None:
        return None
    values = dataclasses.asdict(workload)
    values["replicas"] = component.replicas
    values["kind"] = workload.kind_for(component.replicas)
    values["storage_gi"] = component.size(workload.storage) if workload.storage else 1
    values["image_ref"] = component.images[workload.image]
    values["writable"] = [
        {"name": f"scratch-{index}", "path": path} for index, path in enumerate(workload.writable)
    ]
    return values


def _extras(values: TemplateValues, component: PlannedComponent) -> dict[str, Any]:
    workload = component.cls.workload
    if values.config and workload is not None and workload.config_path is None:
        raise TemplateError(
            f"{component.name} gives its workload config files but declares no config_path"
        )
    return values.for_templates()


def _label(obj: Object, labels: Mapping[str, str]) -> None:
    metadata = obj.setdefault("metadata", {})
    metadata["labels"] = {**labels, **(metadata.get("labels") or {})}


_METADATA_ORDER = ("name", "namespace", "labels", "annotations")


def _ordered_metadata(metadata: Object) -> Object:
    """name, namespace, labels, annotations first, so files read the same way everywhere."""
    ordered = {key: metadata[key] for key in _METADATA_ORDER if key in metadata}
    return ordered | {k: v for k, v in metadata.items() if k not in ordered}


def finish(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """Namespaces, shared labels and apply order for one component's objects."""
    labels = common_labels(plan.slug, component.name, component.layer.label, component.layer.clause)
    for obj in objects:
        _label(obj, labels)
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"].setdefault("namespace", component.namespace)
        obj["metadata"] = _ordered_metadata(obj["metadata"])
        for template in pod_templates(obj):
            _label(template, {**labels, **selector_labels(plan.slug, component.name)})
        for claim in (obj.get("spec") or {}).get("volumeClaimTemplates", []) or []:
            _label(claim, labels)
    return sort_objects(objects)


def render_component(plan: Plan, component: PlannedComponent) -> list[Object]:
    build = build_context(plan, component)
    values = values_for(build)
    cls = component.cls
    shared = cls.workload is not None and cls().standard_workload(build)
    objects: list[Object] = []
    for name in template_names(cls.template_dir(), shared):
        objects.extend(render_template(name, values))
    return finish(plan, component, objects)
