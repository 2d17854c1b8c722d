"""Where each component sits in the reference model's figure: a grid of rows, computed from the
plan alone (so the drawing is the same for the same plan).

The figure stacks the layers bottom-up (facilities 7.1.1 … 7.1.4, data, common capabilities,
applications), puts the two cross-cutting systems beside the stack as columns (security 7.5 on the
left, operations 7.6 on the right, as the standard draws them) and the foundations (zones,
cert-manager: deployed before everything) once, as a base band. Edges are what components talk to
(`peers`); the ordering edge every component has to every foundation is left out, because drawn
it hides every real dependency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from citykit.contract import layers
from citykit.contract.layers import Layer
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent

# The stack from the top of the figure down: applications over everything they use, facilities
# at the bottom (7.1.4 circulation over compute over network over sensing, as the clauses rise).
STACK: tuple[Layer, ...] = (
    layers.APPLICATIONS,
    layers.COMMON,
    layers.DATA,
    layers.CIRCULATION,
    layers.COMPUTE,
    layers.NETWORK,
    layers.SENSING,
)
LEFT_COLUMN = layers.SECURITY
RIGHT_COLUMN = layers.OPERATIONS
# More boxes than this side by side make the figure a strip again; a wider level is wrapped.
MAX_PER_ROW = 4
_SWEEPS = 8


@dataclass(frozen=True)
class Band:
    """One layer of the stack: its rows of component names, top row first."""

    layer: Layer
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    bands: tuple[Band, ...]  # top of the stack first
    # The side columns' components, top first (spread down the column's height when drawn).
    left: tuple[str, ...]
    right: tuple[str, ...]
    foundations: tuple[PlannedComponent, ...]
    edges: tuple[tuple[str, str], ...]  # (dependent, dependency), foundations left out

    @property
    def widest_row(self) -> int:
        return max((len(row) for band in self.bands for row in band.rows), default=0)


def _depths(members: Sequence[PlannedComponent]) -> dict[str, int]:
    """Longest chain of dependencies inside the group below each member: a dependency sits on a
    lower row than what uses it. Plan order is topological, so one pass suffices."""
    names = {member.name for member in members}
    depth: dict[str, int] = {}
    for member in members:
        below = [depth[peer] + 1 for peer in member.peers if peer in names and peer in depth]
        depth[member.name] = max(below, default=0)
    return depth


def _balanced(names: Sequence[str]) -> list[tuple[str, ...]]:
    """Split a level into as few rows as MAX_PER_ROW allows, of nearly equal length."""
    count = -(-len(names) // MAX_PER_ROW)
    size, extra = divmod(len(names), count)
    rows, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        rows.append(tuple(names[start:end]))
        start = end
    return rows


def _band_rows(members: Sequence[PlannedComponent]) -> tuple[tuple[str, ...], ...]:
    depth = _depths(members)
    rows: list[tuple[str, ...]] = []
    for level in sorted(set(depth.values()), reverse=True):
        rows.extend(_balanced(sorted(name for name, d in depth.items() if d == level)))
    return tuple(rows)


def _column(members: Sequence[PlannedComponent]) -> tuple[str, ...]:
    """A column's components from the top down: dependents above their dependencies."""
    depth = _depths(members)
    return tuple(sorted(depth, key=lambda name: (-depth[name], name)))


def _neighbours(edges: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    around: dict[str, list[str]] = {}
    for dependent, dependency in edges:
        around.setdefault(dependent, []).append(dependency)
        around.setdefault(dependency, []).append(dependent)
    return around


def _centre(name: str, placed: dict[str, float], around: dict[str, list[str]]) -> float:
    """The mean position of what a box is connected to (where it has no edges: where it is)."""
    known = [placed[other] for other in around.get(name, ()) if other in placed]
    return sum(known) / len(known) if known else placed[name]


def _ordered(
    bands: Sequence[Band], fixed: dict[str, float], edges: Sequence[tuple[str, str]]
) -> tuple[Band, ...]:
    """Order each row by the barycentre heuristic (each box towards the mean position of what
    it is connected to), sweeping down and up a few times, so edges run short and cross little.
    Rows are centred in the stack, as they are drawn; `fixed` holds the columns' positions. The
    sort is stable, so ties keep the previous order and the result depends on the plan alone."""
    width = max((len(row) for band in bands for row in band.rows), default=0)
    rows = [list(row) for band in bands for row in band.rows]
    around = _neighbours(edges)
    for sweep in range(_SWEEPS):
        for row in rows if sweep % 2 == 0 else reversed(rows):
            placed = dict(fixed)
            for other in rows:
                offset = (width - len(other)) / 2
                placed.update((name, offset + index) for index, name in enumerate(other))
            row.sort(key=lambda name: _centre(name, placed, around))
    result, start = [], 0
    for band in bands:
        count = len(band.rows)
        result.append(Band(band.layer, tuple(tuple(row) for row in rows[start : start + count])))
        start += count
    return tuple(result)


def layout(plan: Plan) -> Figure:
    foundations = tuple(c for c in plan.components if c.cls.foundation)
    founding = {c.name for c in foundations}
    placed = [c for c in plan.components if not c.cls.foundation]
    bands = tuple(
        Band(layer, _band_rows(members))
        for layer in STACK
        if (members := [c for c in placed if c.layer == layer])
    )
    edges = tuple((c.name, peer) for c in placed for peer in c.peers if peer not in founding)
    left = _column([c for c in placed if c.layer == LEFT_COLUMN])
    right = _column([c for c in placed if c.layer == RIGHT_COLUMN])
    width = max((len(row) for band in bands for row in band.rows), default=0)
    fixed = {name: -1.5 for name in left}
    fixed.update((name, width + 0.5) for name in right)
    return Figure(
        bands=_ordered(bands, fixed, edges),
        left=left,
        right=right,
        foundations=foundations,
        edges=edges,
    )
