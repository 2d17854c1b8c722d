"""One rendered object -> the typed pulumi-kubernetes resource class and its keyword arguments.

The class is found from apiVersion and kind (`apps/v1` + `Deployment` ->
`pulumi_kubernetes.apps.v1.Deployment`), the way the SDK's own YAML support does it; kinds the SDK
does not know (custom resources) become `apiextensions.CustomResource`. Nested fields are passed
as plain camelCase dicts, which the provider takes as-is; top-level keys use the SDK's
snake_case names."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

Object = dict[str, Any]


def module_path(api_version: str) -> str:
    """`apps/v1` -> `pulumi_kubernetes.apps.v1`; `v1` -> `pulumi_kubernetes.core.v1`;
    `rbac.authorization.k8s.io/v1` -> `pulumi_kubernetes.rbac.v1`."""
    group, _, version = api_version.rpartition("/")
    package = group.split(".")[0] if group else "core"
    return f"pulumi_kubernetes.{package}.{version}"


@cache
def resource_class(api_version: str, kind: str) -> type[Any] | None:
    try:
        module = importlib.import_module(module_path(api_version))
    except ImportError:
        return None
    found = getattr(module, kind, None)
    return found if isinstance(found, type) else None


def type_token(api_version: str, kind: str) -> str:
    """The Pulumi type token a typed resource registers with (`kubernetes:apps/v1:Deployment`)."""
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{kind}"


def logical_name(obj: Object) -> str:
    """`<namespace>/<name>` for namespaced objects, `<name>` for cluster-scoped ones (the same
    scheme as the SDK's YAML support), unique per type across the stack."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])


def keyword_arguments(obj: Object) -> dict[str, Any]:
    from pulumi_kubernetes import _tables

    kwargs: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        kwargs[_tables.CAMEL_TO_SNAKE_CASE_TABLE.get(key, key)] = value
    return kwargs


def create(name: str, obj: Object, opts: Any) -> Any:
    """Register `obj` as its typed resource (or a CustomResource) with resource options."""
    cls = resource_class(obj["apiVersion"], obj["kind"])
    if cls is None:
        from pulumi_kubernetes.apiextensions import CustomResource

        extra = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        return CustomResource(
            name,
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            metadata=obj["metadata"],
            opts=opts,
            **extra,
        )
    return cls(name, opts=opts, **keyword_arguments(obj))
