"""The plan drawn two ways. `mermaid`: a flowchart, one subgraph per reference-model layer, edges
from the deployment order. `dot`: the reference model's figure (reports/figure.py places the
boxes) as Graphviz with every position fixed, so Graphviz only routes the edges around the boxes.

Node ids are component names (DNS labels, so always valid Mermaid ids) and every label is quoted
and escaped, so no profile text can change either diagram's structure."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from citykit.contract.layers import Layer
from citykit.plan.planned import Plan
from citykit.reports.figure import LEFT_COLUMN
from citykit.reports.figure import RIGHT_COLUMN
from citykit.reports.figure import Figure
from citykit.reports.figure import layout


def _quote(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def mermaid(plan: Plan) -> str:
    lines = ["flowchart TB"]
    for layer in plan.layers_in_use():
        title = f"{layer.clause} {layer.title} {layer.title_zh}"
        lines.append(f"  subgraph {layer.key}[{_quote(title)}]")
        for component in plan.components:
            if component.layer == layer:
                label = f"{component.name}<br/>{component.capability}"
                lines.append(f"    {component.name.replace('-', '_')}[{_quote(label)}]")
        lines.append("  end")
    for dependent, dependency in plan.edges():
        lines.append(f"  {dependent.replace('-', '_')} --> {dependency.replace('-', '_')}")
    return "\n".join(lines) + "\n"


# Families tried in order for every label; fontconfig falls back glyph by glyph, so Chinese layer
# names need one CJK family installed (scripts/system-deps installs WenQuanYi Zen Hei).
FONT = "Noto Sans CJK SC, WenQuanYi Zen Hei, sans-serif"
# How to turn `dot` output into a picture: positions are fixed (`layout=neato` in the graph,
# `-n2`: use them as given, in points), Graphviz routes the edges around the boxes.
RENDER_ARGS = ("-Kneato", "-n2")

# Fill colours of the figure's parts, light enough for black text; the four facility layers
# share one colour so they read as the facility layer 7.1.
_FACILITY_FILL = "#e6eef9"
_FILL = {
    "data": "#e6f4e9",
    "common": "#fcf1dc",
    "applications": "#fae6ea",
    "security": "#efe8f7",
    "operations": "#e3f3f4",
}

# Geometry in points (Graphviz's unit with -n2). Gaps are where the edges run.
_BOX_W, _BOX_H = 144.0, 36.0  # 2 in × 0.5 in: the longest shipped name fits at 11 pt
_GAP_X, _GAP_Y = 40.0, 30.0  # between boxes in a row / between rows of a band
_PAD = 12.0  # inside a band or column, around its boxes
_LABEL = 24.0  # a band's one-line label above its boxes
_BAND_GAP = 8.0  # between bands, and between the stack and a column
_TITLE = 40.0
_COLUMN_LABEL = 54.0  # three lines: clause and Chinese title, English title wrapped
_FOUNDATION_H = 60.0


@dataclass(frozen=True)
class _Rect:
    left: float
    top: float  # y grows downwards here; flipped when written (Graphviz's y grows upwards)
    width: float
    height: float


def _dot_string(text: str) -> str:
    """A double-quoted DOT string. Backslashes are doubled first, so a name cannot smuggle in
    dot's label escapes (\\N, \\G, \\l); quotes cannot end the string; newlines become \\n."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class _Drawing:
    """Where everything goes, in points from the top left."""

    clusters: tuple[tuple[Layer, str, _Rect], ...]  # layer, label, rectangle
    boxes: dict[str, tuple[float, float]]  # centre of each component's box
    width: float
    height: float
    foundation_top: float


def _place(figure: Figure) -> _Drawing:
    slots = max(figure.widest_row, 1)
    stack_w = slots * _BOX_W + (slots - 1) * _GAP_X + 2 * _PAD
    column_w = _BOX_W + 2 * _PAD
    stack_left = column_w + _BAND_GAP
    width = stack_left + stack_w + _BAND_GAP + column_w
    clusters: list[tuple[Layer, str, _Rect]] = []
    boxes: dict[str, tuple[float, float]] = {}
    top = _TITLE + _COLUMN_LABEL - _LABEL  # the columns' longer labels stick out above
    for band in figure.bands:
        height = _LABEL + len(band.rows) * _BOX_H + (len(band.rows) - 1) * _GAP_Y + _PAD
        clusters.append(
            (band.layer, _band_label(band.layer), _Rect(stack_left, top, stack_w, height))
        )
        for index, names in enumerate(band.rows):
            y = top + _LABEL + index * (_BOX_H + _GAP_Y) + _BOX_H / 2
            first = stack_left + _PAD + (slots - len(names)) / 2 * (_BOX_W + _GAP_X)
            for slot, name in enumerate(names):
                boxes[name] = (first + slot * (_BOX_W + _GAP_X) + _BOX_W / 2, y)
        top += height + _BAND_GAP
    # The columns run the stack's height (longer only when they hold more than it fits), their
    # boxes spread evenly down them.
    inner_top = _TITLE + _COLUMN_LABEL
    longest = max(len(figure.left), len(figure.right), 1)
    inner_h = max(top - _BAND_GAP - _PAD - inner_top, longest * (_BOX_H + _GAP_Y))
    for layer, names, left in (
        (LEFT_COLUMN, figure.left, 0.0),
        (RIGHT_COLUMN, figure.right, width - column_w),
    ):
        rect = _Rect(left, _TITLE, column_w, inner_top - _TITLE + inner_h + _PAD)
        clusters.append((layer, _column_label(layer), rect))
        for index, name in enumerate(names):
            boxes[name] = (left + column_w / 2, inner_top + (index + 0.5) * inner_h / len(names))
    foundation_top = max(top - _BAND_GAP, inner_top + inner_h + _PAD) + _BAND_GAP
    height = foundation_top + _FOUNDATION_H
    return _Drawing(tuple(clusters), boxes, width, height, foundation_top)


def dot(plan: Plan) -> str:
    """Graphviz: the reference model's figure — layers stacked bottom-up, security and
    operations as columns at the sides, the foundations as a base band — with what each
    component talks to as edges. Render with `RENDER_ARGS`."""
    figure = layout(plan)
    drawing = _place(figure)
    by_name = {component.name: component for component in plan.components}

    def point(x: float, y: float) -> str:
        return f"{x:.1f},{drawing.height - y:.1f}"

    title = f"{plan.profile.city.name} — {plan.environment.name}"
    lines = [
        "digraph citykit {",
        f"  // Positions are fixed; render with: dot {' '.join(RENDER_ARGS)} -Tsvg",
        f"  graph [layout=neato, splines=true, outputorder=edgesfirst,"
        f" fontname={_dot_string(FONT)}, fontsize=20, label={_dot_string(title)},"
        f' bb="0,0,{drawing.width:.1f},{drawing.height:.1f}",'
        f' lp="{point(drawing.width / 2, _TITLE / 2)}"];',
        f'  node [shape=box, style="rounded,filled", fillcolor=white, fontname={_dot_string(FONT)},'
        f" fontsize=11, width={_BOX_W / 72:.2f}, height={_BOX_H / 72:.2f}, fixedsize=true];",
        '  edge [color="#3d4f66", arrowsize=0.6, penwidth=0.9];',
    ]
    for layer, label, rect in drawing.clusters:
        lines.append(f"  subgraph {_dot_string('cluster_' + layer.key)} {{")
        bb = f"{point(rect.left, rect.top + rect.height)},{point(rect.left + rect.width, rect.top)}"
        if layer in (LEFT_COLUMN, RIGHT_COLUMN):
            x = rect.left + rect.width / 2
        else:
            # At the band's top left, clear of the edges that mostly cross bands in the middle.
            x = rect.left + _PAD + _text_width(label, 13) / 2
        lp = point(x, rect.top + 4 + (label.count("\n") + 1) * 8)
        fill = _FILL.get(layer.key, _FACILITY_FILL)
        lines.append(
            f'    graph [label={_dot_string(label)}, style="rounded,filled", color="#8895a7",'
            f' fillcolor="{fill}", fontsize=13, bb="{bb}", lp="{lp}"];'
        )
        for name, (x, y) in drawing.boxes.items():
            component = by_name[name]
            if component.layer == layer:
                # The capability under the name, unless it only repeats it (tenancy).
                text = name if name == component.capability else f"{name}\n{component.capability}"
                lines.append(
                    f'    {_dot_string(name)} [label={_dot_string(text)}, pos="{point(x, y)}"];'
                )
        lines.append("  }")
    centre = point(drawing.width / 2, drawing.foundation_top + _FOUNDATION_H / 2)
    lines.append(_foundation_band(figure, centre, drawing.width))
    for dependent, dependency in figure.edges:
        lines.append(f"  {_dot_string(dependent)} -> {_dot_string(dependency)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _text_width(text: str, size: float) -> float:
    """About how wide Graphviz sets a one-line text: CJK characters are square, Latin ones
    about 0.42 of that on average (to place a label whose centre Graphviz must be given)."""
    return sum(size if ord(char) >= 0x2E80 else size * 0.42 for char in text)


def _band_label(layer: Layer) -> str:
    return f"{layer.clause} {layer.title_zh} {layer.title}"


def _column_label(layer: Layer) -> str:
    # A column is one box wide: the English title is wrapped to fit it.
    return "\n".join([f"{layer.clause} {layer.title_zh}", *textwrap.wrap(layer.title, 22)])


def _foundation_band(figure: Figure, centre: str, width: float) -> str:
    """The foundations as one band under everything, instead of an edge from every box."""
    label = "基础 Foundations — deployed before every other component"
    names = "     ".join(
        f"{c.name} · {c.capability} ({c.layer.clause})" for c in figure.foundations
    )
    if names:
        label += "\n" + names
    label += "\nArrows: a component → what it requires or uses (foundations: none drawn)"
    # "_" is never in a component's name (a DNS label), so this node cannot clash with one.
    return (
        f'  "_foundations" [label={_dot_string(label)}, pos="{centre}", width={width / 72:.2f},'
        f' height={_FOUNDATION_H / 72:.2f}, style=filled, fillcolor="#dde2ea", color="#8895a7",'
        " fontsize=12];"
    )
