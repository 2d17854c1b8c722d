"""`citykit compliance`: (a) which components realise each reference-model clause, (b) for each
MLPS 2.0 (等保2.0, GB/T 22239-2019) level-3 technical control family, including the cloud
extension, the concrete controls found in the compiled objects and the gaps the platform cannot
close by itself (mlps.py), (c) every declared exception (Pod Security, checkov, kube-score) with
its reason.

Controls are counted from the rendered objects, not asserted: if a pass stops producing
NetworkPolicies, the report says so. The one input from outside the objects is the record of the
last restore drill (`citykit verify --restore-drill`), which closes the restore-drill gap."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from typing import Any

from citykit.compiler import Compiled
from citykit.contract import layers
from citykit.conventions import KUBE_SCORE_REASON
from citykit.reports.mlps import BACKUP
from citykit.reports.mlps import FAMILIES

RESTORE_DRILL_GAP = (
    "regular restore drills: none passed in the last {days} days "
    "(`citykit verify --restore-drill` runs one)"
)


def restore_drill(
    record: dict[str, Any] | None, today: date, days: int = 90
) -> tuple[list[str], list[str]]:
    """(controls, gaps) of the last restore drill (`citykit/verify/drill.py` writes the record):
    a drill that passed for at least one component and failed for none, in the last `days`
    days, is a control; anything else leaves the gap open."""
    gap = [RESTORE_DRILL_GAP.format(days=days)]
    if not record:
        return [], gap
    try:
        when = datetime.fromisoformat(str(record["at"])).date()
        results = list(record["results"])
    except (KeyError, TypeError, ValueError):
        return [], gap
    passed = sorted(r["component"] for r in results if r.get("status") == "passed")
    failed = sorted(r["component"] for r in results if r.get("status") == "failed")
    if failed or not passed or (today - when).days > days:
        return [], gap
    return [
        f"restore drill passed on {when.isoformat()} ({', '.join(passed)}): the backup Job run "
        "on demand, restored into a scratch instance, the marker written before found"
    ], []


def kube_score_exceptions(compiled: Compiled) -> list[dict[str, str]]:
    """The kube-score checks skipped on the objects, read from their annotations (what the
    linter really skips), once per component, check and reason."""
    found: dict[tuple[str, str, str], None] = {}
    for unit in compiled.units:
        for obj in unit.objects:
            for key, reason in (obj["metadata"].get("annotations") or {}).items():
                if key.startswith(KUBE_SCORE_REASON):
                    found[(unit.component.name, key.removeprefix(KUBE_SCORE_REASON), reason)] = None
    return [
        {"component": name, "kind": "kube-score", "setting": check, "reason": reason}
        for name, check, reason in found
    ]


def report(
    compiled: Compiled, drill: dict[str, Any] | None = None, today: date | None = None
) -> dict[str, Any]:
    """The compliance report; `drill` is the last restore drill's record, if any."""
    plan = compiled.plan
    drill_controls, drill_gaps = restore_drill(drill, today or datetime.now(UTC).date())
    coverage = [
        {
            "clause": layer.clause,
            "layer": layer.key,
            "title": layer.title,
            "title_zh": layer.title_zh,
            "components": [c.name for c in plan.components if c.layer.key == layer.key],
        }
        for layer in layers.ALL
    ]
    families = [
        {
            "family": f.key,
            "title": f.title,
            "title_zh": f.title_zh,
            "controls": f.controls(compiled) + (drill_controls if f.key == BACKUP else []),
            "gaps": list(f.gaps) + (drill_gaps if f.key == BACKUP else []),
        }
        for f in FAMILIES
    ]
    exceptions = [
        {"component": c.name, "kind": "pod-security", "setting": e.setting, "reason": e.reason}
        for c in plan.components
        for e in c.cls.exceptions
    ] + [
        {"component": c.name, "kind": "checkov", "setting": s.check, "reason": s.reason}
        for c in plan.components
        for s in c.cls.checkov_skips
    ]
    exceptions += kube_score_exceptions(compiled)
    return {
        "city": plan.slug,
        "environment": plan.environment.name,
        "coverage": coverage,
        "mlps": {
            "standard": "GB/T 22239-2019 level 3 + cloud computing extension",
            "families": families,
        },
        "exceptions": exceptions,
    }


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# Compliance report: {data['city']} ({data['environment']})",
        "",
        "## Reference-model coverage",
        "",
        "| clause | layer | components |",
        "|---|---|---|",
    ]
    for row in data["coverage"]:
        lines.append(
            f"| {row['clause']} | {row['title_zh']} {row['title']} | "
            f"{', '.join(row['components']) or '—'} |"
        )
    lines += ["", f"## MLPS 2.0 ({data['mlps']['standard']})", ""]
    for family in data["mlps"]["families"]:
        lines.append(f"### {family['title_zh']} {family['title']}")
        lines += [f"- control: {c}" for c in family["controls"]]
        lines += [f"- gap: {g}" for g in family["gaps"]]
        lines.append("")
    lines += ["## Declared exceptions", ""]
    lines += [
        f"- {e['component']}: {e['kind']} {e['setting']} — {e['reason']}"
        for e in data["exceptions"]
    ] or ["- none"]
    return "\n".join(lines) + "\n"
