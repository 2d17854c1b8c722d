"""Which recorded objects a refresh needs to read again, from one listing of the cluster.

A full refresh reads every object with its own GET (and more for workloads): on the example city
that is most of a no-op `up`. Kubernetes bumps `metadata.resourceVersion` on every write to an
object, status included, so an object whose live resourceVersion is the one the state recorded
is exactly what the state says. One `kubectl get` of every kind the state holds (a LIST per kind)
finds the others: changed by hand or by a controller, or deleted. Only those are refreshed.

Whenever the answer is not certain (a backend other than a local file, a state that cannot be
read, a kind that cannot be listed), `stale_urns` returns None and the caller refreshes
everything, as before."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citykit.deploy.engine import PROJECT, ClusterAccess, kubectl

Key = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)

# The columns of one listed object; kinds, namespaces, names and versions never contain a tab.
_ROW = (
    "{range .items[*]}{.apiVersion}{'\\t'}{.kind}{'\\t'}{.metadata.namespace}{'\\t'}"
    "{.metadata.name}{'\\t'}{.metadata.resourceVersion}{'\\n'}{end}"
)


@dataclass(frozen=True)
class Recorded:
    """A Kubernetes object in the state, as the provider last read or wrote it."""

    urn: str
    key: Key
    resource_version: str


def checkpoint(backend_url: str, stack: str) -> dict[str, Any] | None:
    """The latest checkpoint of a file backend's stack, read directly (the engine's `stack
    export` costs a second per run); {} for a stack never deployed; None when unknown."""
    if not backend_url.startswith("file://"):
        return None
    directory = Path(backend_url.removeprefix("file://")) / ".pulumi" / "stacks" / PROJECT
    state = directory / f"{stack}.json"
    if not state.exists():
        return {} if not any(directory.glob(f"{stack}.json*")) else None
    try:
        latest = json.loads(state.read_text()).get("checkpoint", {}).get("latest")
    except (OSError, ValueError):
        return None
    return latest if isinstance(latest, dict) else {}


def recorded_objects(latest: dict[str, Any]) -> list[Recorded]:
    """Every Kubernetes object the checkpoint records. One whose identity or version cannot be
    read (outputs kept as a secret, an older state) gets no version, so it is read again."""
    found: list[Recorded] = []
    for resource in latest.get("resources") or []:
        if not str(resource.get("type", "")).startswith("kubernetes:") or resource.get("delete"):
            continue
        outputs = resource.get("outputs") or {}
        metadata = outputs.get("metadata")
        if (
            not isinstance(metadata, dict)
            or not outputs.get("apiVersion")
            or not outputs.get("kind")
        ):
            found.append(Recorded(str(resource["urn"]), ("", "", "", ""), ""))
            continue
        key = (
            str(outputs["apiVersion"]),
            str(outputs["kind"]),
            str(metadata.get("namespace") or ""),
            str(metadata.get("name") or ""),
        )
        # A version kept as a secret or missing cannot be compared: read that object again.
        version = metadata.get("resourceVersion")
        found.append(
            Recorded(str(resource["urn"]), key, version if isinstance(version, str) else "")
        )
    return found


def kind_argument(api_version: str, kind: str) -> str:
    """`apps/v1` + `Deployment` -> `Deployment.v1.apps`: the fully qualified form kubectl
    resolves without guessing between groups. A core kind stays bare (`Secret`): kubectl
    resolves bare names to the core group first."""
    group, _, version = api_version.rpartition("/")
    return f"{kind}.{version}.{group}" if group else kind


def live_versions(access: ClusterAccess, kinds: set[tuple[str, str]]) -> dict[Key, str] | None:
    """resourceVersion of every object of these kinds in the cluster; None if listing failed."""
    if not kinds:
        return {}
    arguments = ",".join(sorted(kind_argument(v, k) for v, k in kinds))
    result = kubectl(access, "get", arguments, "--all-namespaces", "-o", f"jsonpath={_ROW}")
    if result.returncode != 0:
        return None
    versions: dict[Key, str] = {}
    for line in result.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 5:
            return None
        api_version, kind, namespace, name, version = parts
        versions[(api_version, kind, namespace, name)] = version
    return versions


def stale(recorded: list[Recorded], live: dict[Key, str]) -> list[str]:
    """URNs of recorded objects that changed since they were recorded, or no longer exist."""
    return [
        r.urn for r in recorded if not r.resource_version or live.get(r.key) != r.resource_version
    ]


def stale_urns(backend_url: str, stack: str, access: ClusterAccess | None) -> list[str] | None:
    """What a refresh before `up` has to read; None: refresh everything."""
    latest = checkpoint(backend_url, stack)
    if latest is None or access is None:
        return None
    recorded = recorded_objects(latest)
    live = live_versions(access, {(r.key[0], r.key[1]) for r in recorded if r.key[1]})
    if live is None:
        return None
    return stale(recorded, live)
