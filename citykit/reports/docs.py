"""One Markdown page per component, generated from its declarations (docs/components/), so the
docs cannot drift from the catalog: a unit test regenerates them and compares."""

from __future__ import annotations

from pathlib import Path

from citykit.catalog import load_catalog
from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.registry import Registry


def _settings_rows(component: type[Component]) -> list[str]:
    rows = []
    for name, field in component.Settings.model_fields.items():
        alias = field.alias or name
        default = "derived" if field.default is None else repr(field.default)
        rows.append(f"| `{alias}` | {default} | {field.description or ''} |")
    return rows


def page(component: type[Component], catalog: Registry) -> str:
    layer = component.layer
    alternatives = [
        c.name for c in catalog.capabilities()[component.capability] if c is not component
    ]
    path = f"layers.{layer.key}.{component.capability}"
    lines = [
        f"# {component.name}",
        "",
        component.summary,
        "",
        f"- layer: {layer.clause} {layer.title_zh} {layer.title}",
        f"- capability: `{component.capability}` "
        f"({'default' if component.default else 'alternative'} implementation"
        f"{', off unless enabled' if not component.enabled_by_default else ''})",
        f"- alternatives: {', '.join(f'[{a}]({a}.md)' for a in alternatives) or 'none'}",
        f"- requires: {', '.join(f'`{r}`' for r in component.requires) or 'nothing'}",
        *(
            [f"- uses when present: {', '.join(f'`{u}`' for u in component.uses)}"]
            if component.uses
            else []
        ),
        *(
            [
                "- requires when replicated: "
                + ", ".join(f"`{r}`" for r in component.replicated_requires)
            ]
            if component.replicated_requires
            else []
        ),
        f"- node pool: {component.pool}; stateful: {'yes' if component.stateful else 'no'}",
        "",
        component.docs or "",
        "",
        "## Settings",
        "",
        f"Under `{path}` in the city profile"
        + (f" (`implementation: {component.name}`)" if not component.default else "")
        + ".",
        "",
        "| key | default | description |",
        "|---|---|---|",
        *_settings_rows(component),
    ]
    if component.sizing:
        lines += [
            "",
            "## Sizing rules",
            "",
            "Each figure is its formula times the environment's factor when it scales with one, "
            "rounded up and kept within its bounds. The setting of the same name overrides it; a "
            "formula that reads the figure then reads the override.",
            "",
            "| figure | formula | scales with environment |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{s.name}`{f' ({s.unit})' if s.unit else ''} | {s.words} | {s.scales_with} |"
            for s in component.sizing
        ]
        terms = {t.field_name: t for s in component.sizing for t in s.formula.city_figures()}
        if terms:
            lines += ["", "Terms: " + "; ".join(f"{t.said} = {t.source}" for t in terms.values())]
    if component.ports:
        lines += ["", "## Ports", "", "| name | port | reachable from |", "|---|---|---|"]
        lines += [
            f"| {p.name} | {p.port}/{p.protocol} | {_reachable_from(p.exposed_to)} |"
            for p in component.ports
        ]
    if component.images:
        lines += ["", "## Images", ""]
        lines += [
            f"- `{key}`: `{image.repository}:{image.tag}`"
            for key, image in sorted(component.images.items())
        ]
    if component.local_images or component.real_run:
        lines += ["", "## Running for real", ""]
        lines += [
            f"- local image `{key}`: `{recipe.ref(component.name, key)}` from {recipe.source}"
            + (
                f" (upstream {component.images[key].tag})"
                if key in component.images and component.images[key].tag != recipe.version
                else ""
            )
            for key, recipe in sorted(component.local_images.items())
        ]
        if component.real_run:
            lines += ["", component.real_run]
    drill = component.backup.drill if component.backup is not None else None
    if component.checks or drill is not None:
        lines += ["", "## Checks (`citykit verify`)", ""]
        lines += [f"- {check.name}" for check in component.checks]
        if drill is not None:
            lines.append(
                "- restore drill (`--restore-drill`): a marker written, the backup Job run, the "
                "newest backup restored into a scratch instance, the marker found"
            )
    if component.exceptions or component.checkov_skips:
        lines += ["", "## Declared exceptions", ""]
        lines += [f"- {e.setting}: {e.reason}" for e in component.exceptions]
        lines += [f"- checkov {s.check}: {s.reason}" for s in component.checkov_skips]
    return "\n".join(lines).rstrip() + "\n"


def index(catalog: Registry) -> str:
    lines = [
        "# Components",
        "",
        "Generated by `scripts/gen-docs` from the catalog; do not edit.",
        "",
    ]
    for layer in layers.ALL:
        members = [c for c in catalog.components() if c.layer.key == layer.key]
        if not members:
            continue
        lines += [f"## {layer.clause} {layer.title_zh} {layer.title}", ""]
        lines += [
            f"- [{c.name}]({c.name}.md) — `{c.capability}`"
            f"{'' if c.default else ' (alternative)'}: {c.summary}"
            for c in members
        ]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def generate(catalog: Registry | None = None) -> dict[str, str]:
    catalog = catalog or load_catalog()
    files = {f"{c.name}.md": page(c, catalog) for c in catalog.components()}
    files["README.md"] = index(catalog)
    return files


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    files = generate()
    for stale in directory.glob("*.md"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def _reachable_from(exposed_to: str) -> str:
    return {"": "components that require it", "self": "its own replicas only"}.get(
        exposed_to, exposed_to
    )
