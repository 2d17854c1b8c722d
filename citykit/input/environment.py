"""Environments: where and how a city is deployed (dev, staging, prod, local ship in
environments/; a custom file is given by path).

An environment file is user input like a profile: every value is checked by the rule of whatever
consumes it (Kubernetes names, DNS, image references, the URL schemes Pulumi and cert-manager
read), and every problem names the file that wrote the value.

Merge rule (used for `extends:` and for `profile:` overlays): mappings merge key by key,
recursively; any other value (scalar or list) in the overlay replaces the base value; an explicit
`null` in the overlay removes the key, so the base falls back to its default. `extends:` names a
shipped environment or a file beside this one (in its directory or below); each file of the chain
is merged onto its parent, and each one's `profile:` overlay onto the profile in the same order."""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from pathlib import PurePosixPath
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import ValidationError
from pydantic import model_validator

from citykit.contract.model import Model
from citykit.errors import Problem
from citykit.errors import ValidationFailed
from citykit.input import names
from citykit.input import urls
from citykit.input.loading import read_yaml
from citykit.input.names import Domain
from citykit.input.names import Email
from citykit.input.names import KubeContext
from citykit.input.names import ObjectName
from citykit.input.names import Registry
from citykit.input.names import Slug
from citykit.input.problems import Source
from citykit.input.problems import problems_from

SHIPPED = ("dev", "staging", "prod", "local")
MAX_EXTENDS = 8  # files in one `extends:` chain


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
    # kind names node containers `<name>-control-plane`, `<name>-worker<N>` (DNS labels) and the
    # context `kind-<name>`; the local provider keeps its state in a directory of this name.
    name: str = Field(
        "citykit",
        pattern=names.label_pattern(32),
        description="Cluster name for local and kind clusters: lower-case letters, digits and "
        "'-', starting with a letter, at most 32 characters.",
    )
    context: KubeContext | None = Field(
        None, description="kubeconfig context for provider `existing`."
    )
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


# cert-manager talks to ACME servers over HTTPS only.
AcmeServer = Annotated[
    str,
    urls.url(
        "https", hint="the ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory"
    ),
]
# The state backends and secrets providers the Pulumi engine reads.
BackendUrl = Annotated[
    str,
    urls.url(
        "file",
        "s3",
        "azblob",
        "gs",
        "https",
        hint="file:///absolute/dir, s3://bucket[/prefix], azblob://container, gs://bucket or "
        "https:// (Pulumi Cloud)",
    ),
]
_KMS = ("awskms", "azurekeyvault", "gcpkms", "hashivault")


def _secrets_provider_problem(value: str) -> str | None:
    return None if value == "passphrase" else urls.url_problem(value, _KMS)


SecretsProvider = Annotated[
    str,
    names.checked(
        _secrets_provider_problem,
        "passphrase, or a key URL: awskms://…, azurekeyvault://…, gcpkms://…, hashivault://…",
    ),
]


class Tls(Model):
    issuer: Literal["selfsigned", "ca", "acme"] = Field(
        "selfsigned", description="cert-manager issuer kind for every endpoint certificate."
    )
    acme_server: AcmeServer | None = Field(
        None, description="ACME directory URL (https://) when issuer is acme."
    )
    email: Email | None = Field(None, description="ACME account e-mail when issuer is acme.")

    @model_validator(mode="after")
    def _acme_needs_server_and_email(self) -> Tls:
        if self.issuer == "acme" and not (self.acme_server and self.email):
            raise ValueError("issuer acme needs acmeServer (the ACME directory URL) and email")
        return self


class Engine(Model):
    backend_url: BackendUrl | None = Field(
        None,
        description="Pulumi state backend URL; default a file:// directory under the "
        "citykit state dir.",
    )
    secrets_provider: SecretsProvider = Field(
        "passphrase",
        description="passphrase (key from CITYKIT_PASSPHRASE or a generated 0600 key file) or a "
        "cloud KMS URL such as awskms://… or hashivault://…",
    )


class Environment(Model):
    api_version: Literal["citykit.io/v1alpha1"] = Field(description="citykit.io/v1alpha1.")
    kind: Literal["Environment"] = Field(description="Always Environment.")
    # Stacks are named `<city>-<env>`.
    name: Slug = Field(description="dev, staging…: a slug, 1-20 characters.")
    extends: str | None = Field(
        None,
        description="A shipped environment (dev, staging, prod, local) or an environment file "
        "beside this one (e.g. base.yaml) that this file overlays.",
    )
    cluster: Cluster = Field(default_factory=Cluster, description="Which cluster to deploy to.")
    replica_factor: float = Field(
        1.0, gt=0, le=10, description="Multiplies derived replica counts (rounded up, min 1)."
    )
    size_factor: float = Field(
        1.0, gt=0, le=10, description="Multiplies derived sizes: storage, CPU and memory."
    )
    storage_class: ObjectName | None = Field(
        None, description="StorageClass for volumes; None: the cluster's default."
    )
    domain: Domain = Field(
        "city.local",
        description="DNS domain under which endpoints are published (also sso.<domain>).",
    )
    tls: Tls = Field(default_factory=Tls, description="Certificates for every endpoint.")
    registry_mirror: Registry | None = Field(
        None,
        description="Registry (host[/path]) that replaces every image's registry, for "
        "air-gapped sites.",
    )
    local_images: bool = Field(
        False,
        description="Use the images `citykit images build` makes from packages, for every "
        "component with a local recipe (pull policy Never, scheduled to the real nodes: the "
        "local cluster's real node, kind's nodes); the others keep their upstream images and, "
        "on those two providers, run on simulated nodes.",
    )
    protect_data: bool = Field(
        True, description="Protect stateful resources (databases, volumes, buckets) from destroy."
    )
    engine: Engine = Field(default_factory=Engine, description="Pulumi engine settings.")
    profile: dict[str, Any] = Field(
        default_factory=dict,
        description="Overlay deep-merged onto the city profile (e.g. layers.data.lake.replicas).",
    )

    @property
    def simulates_the_rest(self) -> bool:
        """Whether the cluster mixes real nodes with simulated ones: pods whose images are all
        built locally run on the real nodes (labelled and tainted RUNTIME_LABEL), kwok nodes of
        every pool play the rest, whose upstream images this machine cannot pull. That is the
        local cluster's real node, and kind's nodes when the environment uses local images."""
        if self.cluster.real_node:
            return True
        return self.local_images and self.cluster.provider == "kind"


def _shipped_path(name: str) -> Path:
    return Path(str(resources.files("citykit.environments").joinpath(f"{name}.yaml")))


def _refuse(path: Path, message: str, hint: str = "") -> ValidationFailed:
    return ValidationFailed([Problem("extends", message, file=str(path), hint=hint)])


def _parent(path: Path, value: Any) -> Path:
    """The file `extends: value` in `path` names: a shipped environment, or a file in the
    directory of `path` (or below it; never outside, symbolic links included)."""
    choose = f"one of {', '.join(SHIPPED)}, or an environment file beside this one (base.yaml)"
    if not isinstance(value, str):
        raise _refuse(
            path, f"expected an environment name or file, got {_short_type(value)}", choose
        )
    if value in SHIPPED:
        return _shipped_path(value)
    if "/" not in value and "\\" not in value and not value.endswith((".yaml", ".yml")):
        close = difflib.get_close_matches(value, SHIPPED, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"choose {choose}"
        raise _refuse(path, f"unknown environment {names.short(value)}", hint)
    if "\x00" in value or PurePosixPath(value).is_absolute() or value.startswith("~"):
        raise _refuse(
            path,
            f"{names.short(value)} is not a path relative to this file",
            "name a file in this file's directory, e.g. base.yaml or sites/base.yaml",
        )
    try:
        here = path.resolve().parent
        target = (here / value).resolve()
        found = target.is_file()
    except OSError as error:  # a name too long, a loop of links
        raise _refuse(path, f"{names.short(value)}: {error.strerror or error}") from None
    if not target.is_relative_to(here):
        raise _refuse(
            path,
            f"{names.short(value)} leaves the directory of this file ({here})",
            "an environment extends only files in its own directory or below it",
        )
    if not found:
        raise _refuse(path, f"{names.short(value)}: no such file ({target})", f"choose {choose}")
    return path.parent / value  # as the user would write it, for messages


def _short_type(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    return "a list" if isinstance(value, list) else names.short(value)


def _chain(path: Path, seen: tuple[Path, ...] = ()) -> list[Source]:
    """The files merged into this environment, base first."""
    data = read_yaml(path, what="environment")
    if not isinstance(data, dict):
        raise ValidationFailed(
            [Problem("", "expected a mapping of keys to values at the top level", file=str(path))]
        )
    here = [Source(str(path), data)]
    if data.get("extends") is None:
        return here
    parent = _parent(path, data["extends"])
    chain = (*seen, path.resolve())
    if parent.resolve() in chain:
        looped = (*chain[chain.index(parent.resolve()) :], parent)
        cycle = " -> ".join(p.name for p in looped)
        raise _refuse(path, f"cycle: {cycle}", "one file of the cycle must stop extending")
    if len(chain) >= MAX_EXTENDS:
        raise _refuse(path, f"more than {MAX_EXTENDS} files extend one another")
    return [*_chain(parent, chain), *here]


@dataclass(frozen=True)
class Loaded:
    """An environment, the file it was given as, and the files merged into it (base first)."""

    environment: Environment
    file: str
    sources: tuple[Source, ...]

    def profile_overlays(self) -> list[Source]:
        """Each file's `profile:` overlay, to be merged onto the profile in this order. By the
        merge rule, `profile: null` in a file drops the overlays of the files it extends."""
        overlays: list[Source] = []
        for source in self.sources:
            if "profile" not in source.data:
                continue
            overlay = source.data["profile"]
            if isinstance(overlay, dict):
                overlays.append(Source(source.file, overlay, ("profile",)))
            else:
                overlays = []
        return overlays


def read(name_or_path: str) -> Loaded:
    """Load a shipped environment by name or a custom file by path, with its sources."""
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
                    f"unknown environment {names.short(name_or_path)}",
                    file="--env",
                    hint=f"use one of {', '.join(SHIPPED)} or the path of an environment file",
                )
            ]
        )
    sources = tuple(_chain(path))
    data = functools.reduce(deep_merge, (source.data for source in sources))
    try:
        environment = Environment.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(problems_from(error, Environment, str(path), sources)) from None
    return Loaded(environment, str(path), sources)


def load(name_or_path: str) -> tuple[Environment, str]:
    """Load a shipped environment by name or a custom file by path. Returns it and its file."""
    loaded = read(name_or_path)
    return loaded.environment, loaded.file
