"""Environments: where and how a city is deployed (dev, staging, prod ship in environments/).

Merge rule (used for `extends:` and for `profile:` overlays): mappings merge key by key,
recursively; any other value (scalar or list) in the overlay replaces the base value; an explicit
`null` in the overlay removes the key, so the base falls back to its default."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from citykit.errors import Problem, ValidationFailed
from citykit.loading import problems_from, read_yaml
from citykit.model import Model

SHIPPED = ("dev", "staging", "prod", "local")


def deep_merge(base: Any, overlay: Any) -> Any:
    """Merge `overlay` onto `base` by the rule in this module's docstring; inputs unchanged."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class NodeCounts(Model):
    general: int = Field(3, ge=1, le=1000, description="General-purpose nodes.")
    gpu: int = Field(0, ge=0, le=1000, description="GPU/NPU nodes for AI serving.")
    edge_per_district: int = Field(
        1, ge=0, le=100, description="Edge nodes per district, unless the district says otherwise."
    )


class Cluster(Model):
    provider: Literal["local", "kind", "existing"] = Field(
        "local",
        description="local: the simulated control plane citykit starts; kind: a kind cluster; "
        "existing: the kubeconfig context named below.",
    )
    name: str = Field(
        "citykit",
        pattern=r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$",
        description="Cluster name for local and kind clusters.",
    )
    context: str | None = Field(None, description="kubeconfig context for provider `existing`.")
    nodes: NodeCounts = Field(default_factory=NodeCounts, description="Simulated/kind node pools.")
    real_node: bool = Field(
        False,
        description="Provider local: also run a real node (a kubelet with containerd on this "
        "host, needs root) beside the simulated ones. Components with local images "
        "(`localImages`) run there as real containers.",
    )

    @model_validator(mode="after")
    def _real_node_is_local(self) -> Cluster:
        if self.real_node and self.provider != "local":
            raise ValueError(
                "realNode is for provider local (kind nodes and existing clusters run "
                "containers already)"
            )
        return self


class Tls(Model):
    issuer: Literal["selfsigned", "ca", "acme"] = Field(
        "selfsigned", description="cert-manager issuer kind for every endpoint certificate."
    )
    acme_server: str | None = Field(None, description="ACME directory URL when issuer is acme.")
    email: str | None = Field(None, description="ACME account e-mail when issuer is acme.")

    @model_validator(mode="after")
    def _acme_needs_server_and_email(self) -> Tls:
        if self.issuer == "acme" and not (self.acme_server and self.email):
            raise ValueError("issuer acme needs acmeServer (the ACME directory URL) and email")
        return self


class Engine(Model):
    backend_url: str | None = Field(
        None,
        description="Pulumi state backend URL; default a file:// directory under the "
        "citykit state dir.",
    )
    secrets_provider: str = Field(
        "passphrase",
        description="passphrase (key from CITYKIT_PASSPHRASE or a generated 0600 key file) or a "
        "cloud KMS URL such as awskms://… or hashivault://…",
    )


class Environment(Model):
    api_version: Literal["citykit.io/v1alpha1"] = Field(description="citykit.io/v1alpha1.")
    kind: Literal["Environment"] = Field(description="Always Environment.")
    name: str = Field(pattern=r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$", description="dev, staging…")
    extends: str | None = Field(
        None, description="A shipped environment (dev, staging, prod) this file overlays."
    )
    cluster: Cluster = Field(default_factory=Cluster, description="Which cluster to deploy to.")
    replica_factor: float = Field(
        1.0, gt=0, le=10, description="Multiplies derived replica counts (rounded up, min 1)."
    )
    size_factor: float = Field(
        1.0, gt=0, le=10, description="Multiplies derived sizes: storage, CPU and memory."
    )
    storage_class: str | None = Field(None, description="StorageClass for volumes; None: default.")
    domain: str = Field(
        "city.local",
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="DNS domain under which endpoints are published.",
    )
    tls: Tls = Field(default_factory=Tls, description="Certificates for every endpoint.")
    registry_mirror: str | None = Field(
        None,
        pattern=r"^[a-z0-9][-a-z0-9.:]*(/[-a-z0-9._]+)*$",
        description="Registry (host[/path]) that replaces every image's registry, for "
        "air-gapped sites.",
    )
    local_images: bool = Field(
        False,
        description="Use the images `citykit images build` makes from packages, for every "
        "component with a local recipe (pull policy Never, scheduled to the real node); the "
        "others keep their upstream images.",
    )
    protect_data: bool = Field(
        True, description="Protect stateful resources (databases, volumes, buckets) from destroy."
    )
    engine: Engine = Field(default_factory=Engine, description="Pulumi engine settings.")
    profile: dict[str, Any] = Field(
        default_factory=dict,
        description="Overlay deep-merged onto the city profile (e.g. layers.data.lake.replicas).",
    )


def _shipped_path(name: str) -> Path:
    return Path(str(resources.files("citykit.environments").joinpath(f"{name}.yaml")))


def _raw(path: Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    data = read_yaml(path, what="environment")
    if not isinstance(data, dict):
        raise ValidationFailed(
            [Problem("", "expected a mapping of keys to values at the top level", file=str(path))]
        )
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str) or parent not in SHIPPED:
        raise ValidationFailed(
            [
                Problem(
                    "extends",
                    f"unknown environment {parent!r}",
                    file=str(path),
                    hint=f"choose one of: {', '.join(SHIPPED)}",
                )
            ]
        )
    if parent in seen:
        raise ValidationFailed(
            [Problem("extends", f"cycle: {' -> '.join((*seen, parent))}", file=str(path))]
        )
    return deep_merge(_raw(_shipped_path(parent), (*seen, parent)), data)  # type: ignore[no-any-return]


def load(name_or_path: str) -> tuple[Environment, str]:
    """Load a shipped environment by name or a custom file by path. Returns it and its file."""
    path = _shipped_path(name_or_path) if name_or_path in SHIPPED else Path(name_or_path)
    if (
        name_or_path not in SHIPPED
        and not path.exists()
        and "/" not in name_or_path
        and not name_or_path.endswith((".yaml", ".yml"))
    ):
        raise ValidationFailed(
            [
                Problem(
                    "",
                    f"unknown environment {name_or_path!r}",
                    file="--env",
                    hint=f"use one of {', '.join(SHIPPED)} or the path of an environment file",
                )
            ]
        )
    data = _raw(path)
    try:
        return Environment.model_validate(data), str(path)
    except ValidationError as error:
        raise ValidationFailed(problems_from(error, Environment, str(path))) from None
