"""Data the cluster lost between two runs, found before `up` would recreate it empty.

A stateful component keeps its data in PersistentVolumeClaims: those of its StatefulSets'
`volumeClaimTemplates` (made by the StatefulSet controller, one per member) and its backup claim
(a resource of the stack). When a namespace is deleted by hand, its claims go with it; a plain
`up` would then recreate the namespace, the StatefulSet and empty volumes, and report success.
Where the environment protects data (`protectData`), that is refused unless the user says the
loss is accepted.

Only what the state proves existed counts: the claims of the members the state recorded (a
member being added by this run has none yet) and the claims the stack itself created. A
StatefulSet that lost some members' claims but not all still has its data on the others (its
members resync from each other): that is said, not refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citykit.compiler import Compiled
from citykit.deploy import freshness

CLAIM = ("v1", "PersistentVolumeClaim")


@dataclass(frozen=True)
class LostData:
    """A stateful component's claims that the state recorded and the cluster no longer has."""

    component: str
    namespace: str
    claims: tuple[str, ...]
    # Every claim of the component is gone: no member kept a copy of the data.
    all_gone: bool


def expected_claims(recorded: freshness.Recorded) -> list[str]:
    """The claims a recorded StatefulSet's controller made: `<template>-<set>-<ordinal>` for
    each member the state recorded (Kubernetes' naming, pkg/controller/statefulset)."""
    spec = recorded.outputs.get("spec") or {}
    replicas = spec.get("replicas")
    members = replicas if isinstance(replicas, int) else 1
    templates = [
        str((template.get("metadata") or {}).get("name", ""))
        for template in spec.get("volumeClaimTemplates") or []
    ]
    _, _, _, name = recorded.key
    return [f"{t}-{name}-{i}" for t in templates if t for i in range(members)]


def find(
    compiled: Compiled,
    latest: dict[str, Any],
    live_claims: set[tuple[str, str]],
) -> list[LostData]:
    """Per stateful component, its recorded claims missing from `live_claims` ({(namespace,
    name)}). Pure: the state and the cluster are read by the caller."""
    owners = {
        (obj["metadata"].get("namespace", ""), obj["kind"], obj["metadata"]["name"]): unit
        for unit in compiled.units
        if unit.component.cls.stateful
        for obj in unit.objects
    }
    claims: dict[str, tuple[str, list[str]]] = {}
    for item in freshness.recorded_objects(latest):
        _, kind, namespace, name = item.key
        unit = owners.get((namespace, kind, name))
        if unit is None:
            continue
        if kind == "StatefulSet":
            names = expected_claims(item)
        elif kind == CLAIM[1]:
            names = [name]
        else:
            continue
        claims.setdefault(unit.component.name, (namespace, []))[1].extend(names)
    lost: list[LostData] = []
    for component, (namespace, names) in sorted(claims.items()):
        gone = tuple(sorted(n for n in names if (namespace, n) not in live_claims))
        if gone:
            lost.append(LostData(component, namespace, gone, all_gone=len(gone) == len(names)))
    return lost


def describe(lost: list[LostData]) -> str:
    return "\n".join(
        f"  {item.component}: PersistentVolumeClaims {', '.join(item.claims)} in namespace "
        f"{item.namespace}" + ("" if item.all_gone else " (its other members still hold the data)")
        for item in lost
    )
