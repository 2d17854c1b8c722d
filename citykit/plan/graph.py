"""The component graph's order: deterministic topological sort, and the cycle that prevents one,
reported as a located problem."""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from citykit.errors import Problem
from citykit.errors import ValidationFailed


def toposort(
    nodes: Mapping[str, tuple[str, ...]],
    order_key: Mapping[str, tuple[int, str]],
    file: str,
    paths: Mapping[str, str],
) -> list[str]:
    """Kahn's algorithm; ties broken by layer then name so the order is deterministic."""
    indegree = {name: len(deps) for name, deps in nodes.items()}
    dependents: dict[str, list[str]] = {name: [] for name in nodes}
    for name, deps in nodes.items():
        for dep in deps:
            dependents[dep].append(name)
    ready = [(order_key[name], name) for name, count in indegree.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        ordered.append(name)
        for dependent in dependents[name]:
            indegree[dependent] -= 1
            if indegree[dependent] == 0:
                heapq.heappush(ready, (order_key[dependent], dependent))
    if len(ordered) != len(nodes):
        cycle = find_cycle({n: d for n, d in nodes.items() if n not in ordered})
        raise ValidationFailed(
            [
                Problem(
                    paths[cycle[0]],
                    "dependency cycle: " + " -> ".join(cycle),
                    file=file,
                    hint="one of these components must stop requiring the next",
                )
            ]
        )
    return ordered


def find_cycle(nodes: Mapping[str, tuple[str, ...]]) -> list[str]:
    start = sorted(nodes)[0]
    path: list[str] = [start]
    while True:
        nxt = sorted(d for d in nodes[path[-1]] if d in nodes)[0]
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)
