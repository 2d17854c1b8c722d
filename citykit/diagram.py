"""The plan as a Mermaid flowchart: one subgraph per reference-model layer, edges from the
dependency graph. Node ids are component names (DNS labels, so always valid Mermaid ids) and
labels are quoted, so no profile text can change the diagram's structure."""

from __future__ import annotations

from citykit.plan import Plan


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


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(plan: Plan) -> str:
    """Graphviz: a cluster per layer (the reference model's stack, top to bottom), components as
    boxes, dependencies as edges. Every label is a quoted, escaped string."""
    lines = [
        "digraph citykit {",
        "  rankdir=TB; compound=true; node [shape=box, style=rounded, fontname=Helvetica];",
        f"  label={_dot_string(plan.profile.city.name + ' — ' + plan.environment.name)};",
    ]
    for layer in plan.layers_in_use():
        lines.append(f"  subgraph {_dot_string('cluster_' + layer.key)} {{")
        lines.append(f"    label={_dot_string(f'{layer.clause} {layer.title_zh} {layer.title}')};")
        for component in plan.components:
            if component.layer == layer:
                label = f"{component.name}\n{component.capability}"
                lines.append(f"    {_dot_string(component.name)} [label={_dot_string(label)}];")
        lines.append("  }")
    for dependent, dependency in plan.edges():
        lines.append(f"  {_dot_string(dependent)} -> {_dot_string(dependency)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
