"""`citykit diff`: what differs between two compiled cities (two environments of one profile, or
two profiles in one environment), read like `terraform plan`: components, sizing with its
rules, then the objects by layer and component with their changed fields."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption
from rich.table import Table

from citykit import compiler
from citykit.errors import CitykitError
from citykit.errors import InputError
from citykit.reports import compare

# A changed object shows at most this many fields in the table (`-o json` has them all).
MAX_FIELDS = 20
MAX_VALUE = 100  # characters of a value before it is cut
MAX_TEXT_LINES = 12  # lines of a multi-line value's unified diff

SIGNS = {"add": ("+", "green"), "remove": ("-", "red"), "change": ("~", "yellow")}


class Different(CitykitError):
    """The two cities differ: exit 2, like `drift` and `preview --expect-no-changes`."""

    exit_code = 2


def register(app: typer.Typer) -> None:
    @app.command()
    def diff(
        profile: ProfileOption,
        env: EnvOption = "dev",
        against: Annotated[
            str | None,
            typer.Option(
                "--against",
                help="The environment to compare with (name or file); default: --env.",
                show_default=False,
            ),
        ] = None,
        against_profile: Annotated[
            Path | None,
            typer.Option(
                "--against-profile",
                help="The profile to compare with; default: --profile.",
                show_default=False,
            ),
        ] = None,
        output_format: OutputOption = Format.table,
    ) -> None:
        """Compare two compiled cities: PROFILE in ENV against --against ENV, or against
        --against-profile FILE (or both). Shows components added, removed or with another
        implementation, sizing figures that changed (with their rules), and the objects to add,
        change or remove with their changed fields, by layer and component. Secret values are
        never shown, only names and keys.

        Exit 0 when the two are the same, 2 when they differ, 1 on an error; a profile or
        environment that does not validate is exit 2 too, with its problems listed."""
        if against is None and against_profile is None:
            raise InputError(
                "nothing to compare with",
                hint="add --against ENV (e.g. --against prod) or --against-profile FILE",
            )
        right_profile = against_profile or profile
        right_env = against or env
        result = compare.compare(
            compare.Side(str(profile), env, compiler.compile_city(profile, env)),
            compare.Side(
                str(right_profile), right_env, compiler.compile_city(right_profile, right_env)
            ),
        )
        before, after = _labels(result)
        if output_format is Format.json:
            output.print_json(result)
        else:
            _print(result, before, after)
        if not result["identical"]:
            raise Different(f"{before} and {after} differ: {_summary(result['summary'])}")


def _labels(result: dict[str, Any]) -> tuple[str, str]:
    """How the two sides are named: by environment, by profile, or by both."""
    left, right = result["left"], result["right"]
    if left["profile"] == right["profile"]:
        return left["environment"], right["environment"]
    if left["environment"] == right["environment"]:
        return left["profile"], right["profile"]
    return (
        f"{left['profile']} ({left['environment']})",
        f"{right['profile']} ({right['environment']})",
    )


def _summary(summary: dict[str, Any]) -> str:
    parts = [
        f"{summary['componentsAdded']} components added" if summary["componentsAdded"] else "",
        f"{summary['componentsRemoved']} removed" if summary["componentsRemoved"] else "",
        f"{summary['implementationsChanged']} implementations changed"
        if summary["implementationsChanged"]
        else "",
        f"{summary['sizingChanged']} sizing figures of {len(summary['sizingComponents'])} "
        f"components ({', '.join(summary['sizingComponents'])})"
        if summary["sizingChanged"]
        else "",
        f"objects: {summary['objectsAdded']} to add, {summary['objectsChanged']} to change, "
        f"{summary['objectsRemoved']} to remove",
    ]
    return "; ".join(part for part in parts if part)


def _line(text: str, style: str = "") -> None:
    # Styled only on a terminal: rich drops colours when stdout is piped.
    output.console.print(text, style=style or None, markup=False, highlight=False, soft_wrap=True)


def _print(result: dict[str, Any], before: str, after: str) -> None:
    left, right = result["left"], result["right"]
    output.say(
        f"{right['city']}: {before} ({left['components']} components, {left['objects']} objects)"
        f" -> {after} ({right['components']} components, {right['objects']} objects)"
    )
    if result["identical"]:
        output.say("no differences")
        return
    _print_components(result["components"])
    _print_sizing(result["sizing"], before, after)
    _print_objects(result["objects"])
    output.say(f"{before} -> {after}: {_summary(result['summary'])}")


def _print_components(components: dict[str, list[dict[str, str]]]) -> None:
    rows = [
        *(
            ("add", f"{c['clause']} {c['layer']}: {c['name']} ({c['capability']})")
            for c in components["added"]
        ),
        *(
            ("remove", f"{c['clause']} {c['layer']}: {c['name']} ({c['capability']})")
            for c in components["removed"]
        ),
        *(
            ("change", f"{c['clause']} {c['layer']}: {c['capability']}: {c['from']} -> {c['to']}")
            for c in components["implementationChanged"]
        ),
    ]
    if not rows:
        return
    output.say("")
    output.say("components:")
    for op, text in rows:
        sign, style = SIGNS[op]
        _line(f"  {sign} {text}", style)


def _print_sizing(sizing: list[dict[str, Any]], before: str, after: str) -> None:
    if not sizing:
        return
    output.say("")
    table = Table(title="sizing", title_justify="left")
    for column in ("clause", "layer", "component", "figure", before, after, "rule"):
        table.add_column(column, overflow="fold")
    for change in sizing:
        unit = f" {change['unit']}" if change["unit"] else ""
        old = "-" if change["from"] is None else f"{change['from']}{unit}"
        rule = change["rule"]
        scale = change.get("scalesWith")
        if scale and scale["from"] != scale["to"]:
            rule += f"; × {scale['factor']} {scale['from']} -> {scale['to']}"
        if change["source"] == "override":
            rule = "overridden in the profile"
        table.add_row(
            change["clause"],
            change["layer"],
            change["component"],
            change["figure"],
            old,
            f"{change['to']}{unit}",
            rule,
        )
    output.console.print(table)


def _print_objects(objects: list[dict[str, Any]]) -> None:
    if not objects:
        return
    layer = component = None
    for row in objects:  # grouped by layer, then component (compare.py)
        if row["layer"] != layer:
            layer, component = row["layer"], None
            output.say("")
            output.say(f"{row['clause']} {layer}")
        if row["component"] != component:
            component = row["component"]
            output.say(f"  {component}")
        sign, style = SIGNS[row["op"]]
        where = f"{row['namespace']}/{row['name']}" if row["namespace"] else row["name"]
        _line(f"    {sign} {row['kind']} {where}", style)
        fields = row.get("fields", [])
        for field in fields[:MAX_FIELDS]:
            for text in _field_lines(field):
                output.say(f"        {text}")
        if len(fields) > MAX_FIELDS:
            output.say(f"        … {len(fields) - MAX_FIELDS} more (citykit diff -o json)")


def _field_lines(field: dict[str, Any]) -> list[str]:
    old, new = field.get("from"), field.get("to")
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1))[
            2:
        ]  # without the ---/+++ header
        shown = [f"  {line}" for line in lines[:MAX_TEXT_LINES]]
        if len(lines) > MAX_TEXT_LINES:
            shown.append(f"  … {len(lines) - MAX_TEXT_LINES} more lines")
        return [f"{field['path']}: (text)", *shown]
    return [f"{field['path']}: {_value(field, 'from')} -> {_value(field, 'to')}"]


def _value(field: dict[str, Any], side: str) -> str:
    if side not in field:
        return "(absent)"
    text = json.dumps(field[side], ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
