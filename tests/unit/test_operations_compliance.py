"""The operations system derived from the plan, the compliance report and the graph command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citykit import compiler
from citykit.contract import layers
from citykit.plan import monitoring as operations
from citykit.reports import mlps
from tests.conftest import EXAMPLE
from tests.conftest import example_data

CLI = [sys.executable, "-m", "citykit.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_every_component_with_metrics_is_scraped_and_alerted_by_layer() -> None:
    plan = compiler.plan(EXAMPLE, "prod")
    config = operations.prometheus_config(plan, plan.by_capability("alerting"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {c.name for c in plan.components if c.cls.metrics}
    assert set(jobs) == expected
    for name in expected:
        component = plan.by_name(name)
        relabel = {
            r.get("target_label"): r.get("replacement") for r in jobs[name]["relabel_configs"]
        }
        assert relabel["layer"] == component.layer.key
        assert relabel["clause"] == component.layer.clause
    groups = operations.alert_rules(plan)["groups"]
    alerted = {r["labels"]["component"] for g in groups for r in g["rules"]}
    assert alerted == expected
    assert all(g["name"].split()[0] in {layer.clause for layer in layers.ALL} for g in groups)


def test_dashboard_has_a_row_per_layer_and_a_panel_per_component() -> None:
    plan = compiler.plan(EXAMPLE, "dev")
    panels = operations.dashboard(plan)["panels"]
    rows = [p["title"].split()[0] for p in panels if p["type"] == "row"]
    assert rows == [layer.clause for layer in plan.layers_in_use()]
    assert {p["title"] for p in panels if p["type"] == "stat"} == {c.name for c in plan.components}


def test_audit_logs_are_kept_180_days() -> None:
    config = operations.loki_config()
    periods = {s["selector"]: s["period"] for s in config["limits_config"]["retention_stream"]}
    assert int(periods['{stream="audit"}'].removesuffix("h")) >= 180 * 24


def test_every_stateful_component_is_backed_up() -> None:
    compiled = compiler.compile_city(EXAMPLE, "prod")
    for unit in compiled.units:
        names = {(o["kind"], o["metadata"]["name"]) for o in unit.objects}
        if unit.component.cls.stateful:
            assert ("CronJob", f"{unit.component.name}-backup") in names, unit.component.name
            assert ("PersistentVolumeClaim", f"{unit.component.name}-backup") in names


def test_backups_that_write_a_new_file_each_run_keep_only_the_newest(tmp_path: Path) -> None:
    """A script writing dated files declares a retention (else the volume fills up night after
    night); the CronJob's script then removes the oldest beyond it, and only after a successful
    copy; a failed copy keeps everything and fails the Job."""
    from citykit.catalog import load_catalog
    from citykit.contract.component import Backup
    from citykit.contract.component import Image
    from citykit.contract.component import Retention
    from citykit.objects.backups import backup_script

    for cls in load_catalog().components():
        if cls.backup is not None and "$(date" in cls.backup.script:
            assert cls.backup.keep is not None, cls.name
            assert cls.backup.keep.copies >= 14, cls.name
    logs = next(c for c in load_catalog().components() if c.name == "loki")
    assert logs.backup is not None and logs.backup.keep is not None
    assert logs.backup.keep.copies == operations.AUDIT_RETENTION_DAYS

    directory = tmp_path / "backup"
    directory.mkdir()
    for day in range(1, 6):
        path = directory / f"dump-0{day}.gz"
        path.write_text("old")
        os.utime(path, (day * 86400, day * 86400))
    (directory / "other.txt").write_text("not a dump")

    def run(script: str) -> int:
        backup = Backup(Image("x", "1"), script, keep=Retention("dump-*.gz", 3))
        command = backup_script(backup, str(directory))
        return subprocess.run(["sh", "-c", command], check=False, timeout=30).returncode

    # `set -e` inside the script still stops it: the retention never runs after a failure.
    assert run(f"set -eu\nfalse\ntouch {directory}/dump-99.gz") == 1
    assert len(list(directory.glob("dump-*.gz"))) == 5
    assert run(f"set -eu\necho new > {directory}/dump-06.gz") == 0
    assert sorted(p.name for p in directory.iterdir()) == [
        "dump-04.gz",
        "dump-05.gz",
        "dump-06.gz",
        "other.txt",
    ]
    with pytest.raises(ValueError, match="letters, digits"):
        Retention("*; rm -rf /", 3)


def test_department_metering_labels_on_tenants() -> None:
    compiled = compiler.compile_city(EXAMPLE, "dev")
    quotas = [o for o in compiled.objects() if o["kind"] == "ResourceQuota"]
    assert {q["metadata"]["labels"]["citykit.io/department"] for q in quotas} == {
        d["slug"] for d in example_data()["departments"]
    }


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_compliance_covers_every_clause_and_mlps_family(env: str) -> None:
    data = json.loads(run("compliance", "-p", str(EXAMPLE), "-e", env, "-o", "json").stdout)
    assert [row["clause"] for row in data["coverage"]] == [layer.clause for layer in layers.ALL]
    assert all(row["components"] for row in data["coverage"])
    families = {f["family"]: f for f in data["mlps"]["families"]}
    assert set(families) == {f.key for f in mlps.FAMILIES}
    assert len(families) == 10
    for family in families.values():
        assert family["controls"] or family["gaps"]
        assert family["gaps"], "every family names what the platform cannot do alone"
    exceptions = {(e["component"], e["setting"]) for e in data["exceptions"]}
    assert ("emqx", "readOnlyRootFilesystem") in exceptions


def test_compliance_markdown_and_table() -> None:
    markdown = run("compliance", "-p", str(EXAMPLE), "-o", "markdown").stdout
    assert markdown.startswith("# Compliance report") and "### 安全审计 Security audit" in markdown
    assert "三权分立" in run("compliance", "-p", str(EXAMPLE)).stdout


def test_graph_formats(tmp_path: Path) -> None:
    mermaid = run("graph", "-p", str(EXAMPLE)).stdout
    assert mermaid.startswith("flowchart TB") and "7.2 Data layer" in mermaid
    dot = run("graph", "-p", str(EXAMPLE), "-f", "dot").stdout
    assert dot.startswith("digraph citykit") and '"apisix" -> "keycloak";' in dot
    assert dot.count("subgraph") == len(compiler.plan(EXAMPLE, "dev").layers_in_use())
    if shutil.which("dot") is None:
        pytest.fail("graphviz is a test dependency (scripts/system-deps installs it)")
    run("graph", "-p", str(EXAMPLE), "-f", "svg", "--out", str(tmp_path / "city.svg"))
    assert (tmp_path / "city.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_graph_quotes_hostile_names(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = example_data()
    data["city"]["name"] = 'evil" ]; "x" -> "y'
    profile = write_profile(data)
    dot = run("graph", "-p", str(profile), "-f", "dot").stdout
    assert 'label="evil\\" ]; \\"x\\" -> \\"y' in dot
    assert yaml.safe_load("a: 1")  # keeps yaml imported for the fixture's profiles
