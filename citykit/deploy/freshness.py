"""Which recorded objects a refresh needs to read again, from one listing of the cluster.

A full refresh reads every object with its own GET (and more for workloads): on the example city
that is most of a no-op `up`. One `kubectl get` of every kind the state holds (a LIST per kind)
answers the same question at once:
- an object whose live `metadata.resourceVersion` is the one the state recorded is exactly what
  the state says (Kubernetes bumps it on every write, status included);
- an object whose version moved but whose content, status and bookkeeping aside, is still what
  the state recorded only had its status written by a controller (a PodDisruptionBudget's
  counts, a quota's usage): a refresh would find nothing to repair;
- anything else was changed by hand or by a controller, or deleted: only those are refreshed.

Whenever the answer is not certain (a backend other than a local file, a state that cannot be
read, a kind that cannot be listed), `stale_urns` returns None and the caller refreshes
everything, as before."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from citykit.deploy.engine import PROJECT
from citykit.deploy.engine import ClusterAccess
from citykit.deploy.engine import kubectl

Key = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)
Object = dict[str, Any]

# The key that marks a secret value in a checkpoint (Pulumi's `resource.SecretSig`).
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
# Written by the API server and controllers, never by citykit: not drift.
_BOOKKEEPING = ("resourceVersion", "managedFields", "generation")


@dataclass(frozen=True)
class Recorded:
    """A Kubernetes object in the state, as the provider last read or wrote it."""

    urn: str
    key: Key
    resource_version: str
    outputs: Object = field(default_factory=dict, compare=False)


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
        version = metadata.get("resourceVersion")
        found.append(
            Recorded(
                str(resource["urn"]), key, version if isinstance(version, str) else "", outputs
            )
        )
    return found


def kind_argument(api_version: str, kind: str) -> str:
    """`apps/v1` + `Deployment` -> `Deployment.v1.apps`: the fully qualified form kubectl
    resolves without guessing between groups. A core kind stays bare (`Secret`): kubectl
    resolves bare names to the core group first."""
    group, _, version = api_version.rpartition("/")
    return f"{kind}.{version}.{group}" if group else kind


def live_objects(access: ClusterAccess, kinds: set[tuple[str, str]]) -> dict[Key, Object] | None:
    """Every object of these kinds in the cluster; None if listing failed."""
    if not kinds:
        return {}
    arguments = ",".join(sorted(kind_argument(v, k) for v, k in kinds))
    result = kubectl(access, "get", arguments, "--all-namespaces", "-o", "json")
    if result.returncode != 0:
        return None
    try:
        items = json.loads(result.stdout)["items"]
        return {
            (
                str(item["apiVersion"]),
                str(item["kind"]),
                str(item["metadata"].get("namespace") or ""),
                str(item["metadata"]["name"]),
            ): item
            for item in items
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _content(obj: Any) -> Any:
    """What citykit and users write: the object without status and provider bookkeeping. The
    provider records the extension keys of a CRD's schema as `x_kubernetes_…`; the API server
    says `x-kubernetes-…`."""
    if isinstance(obj, dict):
        return {
            (key.replace("_", "-") if key.startswith("x_kubernetes_") else key): _content(value)
            for key, value in obj.items()
            if not key.startswith("__") and key != "status"
        }
    if isinstance(obj, list):
        return [_content(item) for item in obj]
    return obj


def unchanged(recorded: Object, live: Object) -> bool:
    """Whether the live object still has the content the state recorded (a changed status or
    resourceVersion aside)."""

    def strip(obj: Object) -> Any:
        content = _content(obj)
        metadata = content.get("metadata")
        if isinstance(metadata, dict):
            content["metadata"] = {k: v for k, v in metadata.items() if k not in _BOOKKEEPING}
        return content

    return bool(strip(recorded) == strip(live))


def stale(recorded: list[Recorded], live: dict[Key, Object]) -> list[str]:
    """URNs of recorded objects that changed since they were recorded, or no longer exist."""

    def moved(item: Recorded, current: Object | None) -> bool:
        if current is None or not item.resource_version:
            return True
        if current["metadata"].get("resourceVersion") == item.resource_version:
            return False
        return not unchanged(item.outputs, current)

    return [item.urn for item in recorded if moved(item, live.get(item.key))]


def stale_urns(backend_url: str, stack: str, access: ClusterAccess | None) -> list[str] | None:
    """What a refresh before `up` has to read; None: refresh everything."""
    latest = checkpoint(backend_url, stack)
    if latest is None or access is None:
        return None
    recorded = recorded_objects(latest)
    live = live_objects(access, {(r.key[0], r.key[1]) for r in recorded if r.key[1]})
    if live is None:
        return None
    return stale(recorded, live)
