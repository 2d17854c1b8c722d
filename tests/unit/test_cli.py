"""The compile-side commands as a user runs them: init -> validate -> plan -> render."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from citykit.contract import layers
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE
from tests.conftest import example_data

CLI = [sys.executable, "-m", "citykit.cli"]


def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == expect, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_init_validate_plan_render(tmp_path: Path, env: str) -> None:
    profile = tmp_path / "city.yaml"
    run("init", str(profile))
    run("init", str(profile), expect=2)  # refuses to overwrite
    assert "valid for environment" in run("validate", "-p", str(profile), "-e", env).stdout
    plan = json.loads(run("plan", "-p", str(profile), "-e", env, "-o", "json").stdout)
    assert plan["environment"] == env
    summary = json.loads(
        run(
            "render", "-p", str(profile), "-e", env, "--out", str(tmp_path / "out"), "-o", "json"
        ).stdout
    )
    assert summary["objects"] > 0
    assert (tmp_path / "out" / "kustomization.yaml").is_file()


def test_every_clause_has_a_component_in_the_example_plan() -> None:
    plan = json.loads(run("plan", "-p", str(EXAMPLE), "-e", "prod", "-o", "json").stdout)
    clauses = {c["clause"] for c in plan["components"]}
    assert clauses == {layer.clause for layer in layers.ALL}


def test_plan_json_shows_sizing_rules_and_dependencies() -> None:
    plan = json.loads(run("plan", "-p", str(EXAMPLE), "-o", "json").stdout)
    emqx = next(c for c in plan["components"] if c["name"] == "emqx")
    assert emqx["layer"] == "sensing" and emqx["clause"] == "7.1.1"
    assert emqx["sizing"][0]["rule"] and emqx["sizing"][0]["source"] == "derived"
    assert "zones" in emqx["requires"]
    assert {"from": "emqx", "to": "zones"} in plan["edges"]


def test_plan_sums_requests_per_layer_against_the_node_pools(write_profile) -> None:
    plan = json.loads(run("plan", "-p", str(EXAMPLE), "-e", "prod", "-o", "json").stdout)
    summary = plan["capacity"]
    layers_requested = summary["requested"]["layers"]
    for key in ("cpuMillis", "memoryBytes", "storageBytes"):
        assert summary["requested"]["total"][key] == sum(row[key] for row in layers_requested)
    assert summary["requested"]["total"]["cpuMillis"] > 0
    assert {p["pool"] for p in summary["pools"]} == {"general", "gpu", "edge"}
    assert summary["fits"] == (summary["warnings"] == [])

    data = example_data()
    data["scale"] = {"population": 1000}  # a village fits the dev pools
    village = write_profile(data)
    fits = run("plan", "-p", str(village), "-e", "dev").stdout
    assert "capacity: requested against the node pools" in fits and "warning" not in fits

    data["scale"] = {"population": 1000, "dailyDataGb": 1_000_000}  # a data lake too big
    lake = run("plan", "-p", str(write_profile(data, "lake.yaml")), "-e", "dev").stdout
    assert "warning: the city does not fit: storage:" in lake


def test_plan_renders_tables_and_mermaid() -> None:
    assert "emqx" in run("plan", "-p", str(EXAMPLE)).stdout
    mermaid = run("plan", "-p", str(EXAMPLE), "-o", "mermaid").stdout
    assert mermaid.startswith("flowchart TB") and "emqx --> zones" in mermaid


def test_catalog_and_schema() -> None:
    rows = json.loads(run("catalog", "-o", "json").stdout)
    broker = next(r for r in rows if r["capability"] == "device-broker")
    assert broker["default"] == "emqx" and "mosquitto" in broker["alternatives"]
    schema = json.loads(run("schema").stdout)
    assert "layers" in schema["properties"]
    assert json.loads(run("schema", "--environment").stdout)["title"] == "Environment"


def test_unknown_environment_exits_2() -> None:
    result = run("validate", "-p", str(EXAMPLE), "-e", "qa", expect=2)
    assert "unknown environment 'qa'" in result.stderr


def test_usage_errors_exit_2_without_a_traceback() -> None:
    import subprocess
    import sys

    for args in (["validate"], ["plan", "-p", "x.yaml", "--bogus"], ["no-such-command"]):
        result = subprocess.run(
            [sys.executable, "-m", "citykit.cli", *args], capture_output=True, text=True
        )
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "Error:" in result.stderr
