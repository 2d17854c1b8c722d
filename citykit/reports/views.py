"""Plain-data views of a plan and of the catalog, shared by `plan`, `catalog` and reports, so
the table and the JSON a command prints always say the same thing."""

from __future__ import annotations

from typing import Any

from citykit.contract import layers
from citykit.contract.registry import Registry
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.reports.capacity import Amounts
from citykit.reports.capacity import Capacity


def component_view(planned: PlannedComponent) -> dict[str, Any]:
    cls = planned.cls
    return {
        "name": planned.name,
        "capability": planned.capability,
        "layer": planned.layer.key,
        "clause": planned.layer.clause,
        "implementation": planned.name,
        "version": ", ".join(dict.fromkeys(r.rsplit(":", 1)[-1] for r in planned.images.values()))
        or "-",
        "images": dict(planned.images),
        "namespace": planned.namespace,
        "requires": list(planned.requires),
        "sizing": [
            {"name": s.name, "value": s.value, "unit": s.unit, "source": s.source, "rule": s.rule}
            for s in planned.sizing
        ],
        "stateful": cls.stateful,
        "exceptions": [{"setting": e.setting, "reason": e.reason} for e in cls.exceptions],
    }


def plan_view(plan: Plan) -> dict[str, Any]:
    components = [component_view(p) for p in plan.components]
    return {
        "city": plan.profile.city.model_dump(by_alias=True),
        "environment": plan.environment.name,
        "layers": [
            {
                "key": layer.key,
                "clause": layer.clause,
                "title": layer.title,
                "titleZh": layer.title_zh,
                "zone": layer.zone.value,
                "components": [c["name"] for c in components if c["layer"] == layer.key],
            }
            for layer in layers.ALL
        ],
        "components": components,
        "edges": [{"from": a, "to": b} for a, b in plan.edges()],
    }


def _amounts(amounts: Amounts) -> dict[str, int]:
    return {
        "cpuMillis": amounts.cpu_millis,
        "memoryBytes": amounts.memory_bytes,
        "storageBytes": amounts.storage_bytes,
    }


def capacity_view(capacity: Capacity) -> dict[str, Any]:
    """Requests per layer and in all against the node pools (reports/capacity.py). Pools carry
    CPU and memory requested by their pods; their storage is their nodes' disks."""
    return {
        "requested": {
            "layers": [
                {"layer": layer.key, "clause": layer.clause, **_amounts(amounts)}
                for layer, amounts in capacity.layers
            ],
            "total": _amounts(capacity.requested),
        },
        "pools": [
            {
                "pool": pool.name,
                "nodes": pool.nodes,
                "allocatable": _amounts(pool.allocatable) if pool.allocatable else None,
                "requested": {
                    "cpuMillis": pool.requested.cpu_millis,
                    "memoryBytes": pool.requested.memory_bytes,
                },
            }
            for pool in capacity.pools
        ],
        "allocatable": _amounts(capacity.allocatable),
        "fits": capacity.fits,
        "warnings": list(capacity.warnings),
    }


def catalog_view(registry: Registry) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for capability, implementations in registry.capabilities().items():
        default = implementations[0]
        rows.append(
            {
                "layer": default.layer.key,
                "clause": default.layer.clause,
                "capability": capability,
                "default": default.name,
                "alternatives": [c.name for c in implementations[1:]],
                "enabledByDefault": default.enabled_by_default,
                "requires": list(default.requires),
                "summary": default.summary,
            }
        )
    rows.sort(key=lambda r: (layers.index(layers.BY_KEY[r["layer"]]), r["capability"]))
    return rows
