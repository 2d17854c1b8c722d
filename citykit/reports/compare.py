"""Two compiled cities side by side: what `citykit diff` shows. Pure: it reads two `Compiled`
results and returns plain data (the same for the table and the JSON), ordered as the plans are.

What is compared, from the coarse to the fine:
- components: by capability, so a changed implementation (emqx -> mosquitto) is one change, not
  a removal and an addition;
- sizing: every figure of a component planned on both sides, with the rule that gave it and the
  environment factor it scales with (dev and prod differ mostly there);
- objects: by kind, namespace and name, each changed field as a dotted path with its old and new
  value. A Secret's values are never shown, whichever side they come from: only its name and
  the paths (keys) that changed."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from citykit.compiler import Compiled
from citykit.compiler import Unit
from citykit.contract import layers
from citykit.conventions import Object
from citykit.plan.planned import PlannedComponent

HIDDEN = "(hidden)"
# Kinds whose values are credentials: only their names and the paths of what changed are shown.
SECRET_KINDS = frozenset({"Secret"})


@dataclass(frozen=True)
class Side:
    """What one side of a comparison is: a profile in an environment, compiled."""

    profile: str
    environment: str
    compiled: Compiled


class _Absent:
    """A field that one side does not have (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


def compare(left: Side, right: Side) -> dict[str, Any]:
    """The differences from `left` to `right` as plain data; `identical` when there are none."""
    components = _components(left.compiled, right.compiled)
    sizing = _sizing(left.compiled, right.compiled)
    objects = _objects(left.compiled, right.compiled)
    identical = not (
        components["added"]
        or components["removed"]
        or components["implementationChanged"]
        or sizing
        or objects
    )
    counts = {op: sum(1 for o in objects if o["op"] == op) for op in ("add", "change", "remove")}
    return {
        "left": _side_view(left),
        "right": _side_view(right),
        "identical": identical,
        "components": components,
        "sizing": sizing,
        "objects": objects,
        "summary": {
            "componentsAdded": len(components["added"]),
            "componentsRemoved": len(components["removed"]),
            "implementationsChanged": len(components["implementationChanged"]),
            "sizingChanged": len(sizing),
            "sizingComponents": sorted({s["component"] for s in sizing}),
            "objectsAdded": counts["add"],
            "objectsChanged": counts["change"],
            "objectsRemoved": counts["remove"],
        },
    }


def _side_view(side: Side) -> dict[str, Any]:
    return {
        "profile": side.profile,
        "environment": side.environment,
        "city": side.compiled.plan.slug,
        "components": len(side.compiled.plan.components),
        "objects": len(side.compiled.objects()),
    }


def _component_view(planned: PlannedComponent) -> dict[str, str]:
    return {
        "name": planned.name,
        "capability": planned.capability,
        "layer": planned.layer.key,
        "clause": planned.layer.clause,
    }


def _components(left: Compiled, right: Compiled) -> dict[str, list[dict[str, str]]]:
    before = {p.capability: p for p in left.plan.components}
    after = {p.capability: p for p in right.plan.components}
    changed = [
        {**_component_view(p), "from": before[p.capability].name, "to": p.name}
        for p in right.plan.components
        if p.capability in before and before[p.capability].name != p.name
    ]
    return {
        "added": [_component_view(p) for p in right.plan.components if p.capability not in before],
        "removed": [_component_view(p) for p in left.plan.components if p.capability not in after],
        "implementationChanged": changed,
    }


def _factor(component: PlannedComponent, name: str, compiled: Compiled) -> tuple[str, float]:
    """The environment factor a figure scales with, by its rule's `scales_with`."""
    rule = next((r for r in component.cls.sizing if r.name == name), None)
    environment = compiled.plan.environment
    if rule is None or rule.scales_with == "none":
        return "", 1.0
    if rule.scales_with == "replicas":
        return "replicaFactor", environment.replica_factor
    return "sizeFactor", environment.size_factor


def _sizing(left: Compiled, right: Compiled) -> list[dict[str, Any]]:
    before = {p.name: p for p in left.plan.components}
    changes: list[dict[str, Any]] = []
    for component in right.plan.components:
        old_component = before.get(component.name)
        if old_component is None:
            continue  # an added component: its objects say what it brings
        old = {s.name: s for s in old_component.sizing}
        for figure in component.sizing:
            previous = old.get(figure.name)
            if previous is not None and (previous.value, previous.unit, previous.source) == (
                figure.value,
                figure.unit,
                figure.source,
            ):
                continue
            factor, new_factor = _factor(component, figure.name, right)
            _, old_factor = _factor(old_component, figure.name, left)
            change: dict[str, Any] = {
                "component": component.name,
                "layer": component.layer.key,
                "clause": component.layer.clause,
                "figure": figure.name,
                "unit": figure.unit,
                "from": previous.value if previous is not None else None,
                "to": figure.value,
                "source": figure.source,
                "rule": figure.rule,
            }
            if previous is not None and previous.rule != figure.rule:
                change["ruleBefore"] = previous.rule
            if previous is not None and previous.source != figure.source:
                change["sourceBefore"] = previous.source
            if factor:
                change["scalesWith"] = {"factor": factor, "from": old_factor, "to": new_factor}
            changes.append(change)
    return _grouped(changes, left, right)


# -- objects ---------------------------------------------------------------------------------

Key = tuple[str, str, str]  # kind, namespace, name


def _key(obj: Object) -> Key:
    metadata = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(metadata.get("namespace", "")), str(metadata["name"]))


def _indexed(compiled: Compiled) -> dict[Key, tuple[Unit, Object]]:
    return {_key(obj): (unit, obj) for unit in compiled.units for obj in unit.objects}


def _objects(left: Compiled, right: Compiled) -> list[dict[str, Any]]:
    """Added, changed and removed objects, grouped by component in the right side's plan order
    (then the components only the left side has), each component's objects in apply order."""
    before = _indexed(left)
    after = _indexed(right)
    rows: list[dict[str, Any]] = []
    for unit in right.units:
        for obj in unit.objects:
            key = _key(obj)
            if key not in before:
                rows.append(_object_row("add", unit.component, obj))
                continue
            fields = diff_fields(before[key][1], obj, hide_values=key[0] in SECRET_KINDS)
            if fields:
                rows.append({**_object_row("change", unit.component, obj), "fields": fields})
    for unit in left.units:
        for obj in unit.objects:
            if _key(obj) not in after:
                rows.append(_object_row("remove", unit.component, obj))
    return _grouped(rows, left, right)


def _grouped(rows: list[dict[str, Any]], left: Compiled, right: Compiled) -> list[dict[str, Any]]:
    """Rows by layer (the reference model's order), then component (the right side's plan
    order, then what only the left side has); stable, so a component's rows keep their order."""
    names = [p.name for p in right.plan.components]
    names += [p.name for p in left.plan.components if p.name not in names]
    component = {name: index for index, name in enumerate(names)}
    layer = {item.key: index for index, item in enumerate(layers.ALL)}
    return sorted(rows, key=lambda row: (layer[row["layer"]], component[row["component"]]))


def _object_row(op: str, component: PlannedComponent, obj: Object) -> dict[str, Any]:
    kind, namespace, name = _key(obj)
    return {
        "op": op,
        "layer": component.layer.key,
        "clause": component.layer.clause,
        "component": component.name,
        "kind": kind,
        "namespace": namespace,
        "name": name,
    }


def diff_fields(old: Any, new: Any, *, hide_values: bool = False) -> list[dict[str, Any]]:
    """What differs between two objects as `{"path", "from", "to"}`, dotted paths in the new
    object's order. A field that only one side has is one change carrying its whole value (an
    added container is one line, not one per leaf), without `from` (or `to`). With
    `hide_values` every value is replaced by "(hidden)": a Secret shows which keys changed."""
    changes: list[dict[str, Any]] = []
    for path, was, now in _differences(old, new, ""):
        change: dict[str, Any] = {"path": path}
        if was is not ABSENT:
            change["from"] = HIDDEN if hide_values else was
        if now is not ABSENT:
            change["to"] = HIDDEN if hide_values else now
        changes.append(change)
    return changes


def _differences(old: Any, new: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(old, Mapping) and isinstance(new, Mapping) and old and new:
        for key in [*new, *(k for k in old if k not in new)]:
            yield from _differences(old.get(key, ABSENT), new.get(key, ABSENT), _join(path, key))
    elif isinstance(old, list) and isinstance(new, list) and old and new:
        before, after = _items(old), _items(new)
        for key in [*after, *(k for k in before if k not in after)]:
            yield from _differences(
                before.get(key, ABSENT), after.get(key, ABSENT), f"{path}[{key}]"
            )
    elif old != new or type(old) is not type(new):
        yield path, old, new


def _items(items: list[Any]) -> dict[str, Any]:
    """A list by key: by name when every item is a mapping with a distinct name (containers,
    env, ports, volumes), so inserting one item does not shift every later one; else by index."""
    names = [item.get("name") if isinstance(item, Mapping) else None for item in items]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return {str(n): item for n, item in zip(names, items, strict=True)}
    return {str(index): item for index, item in enumerate(items)}


def _join(path: str, key: Any) -> str:
    key = str(key)
    # Label and annotation keys have dots and slashes: quoted, so the path stays readable.
    segment = key if key.replace("-", "").replace("_", "").isalnum() else f'"{key}"'
    if segment.startswith('"'):
        return f"{path}[{segment}]" if path else f"[{segment}]"
    return f"{path}.{segment}" if path else segment
