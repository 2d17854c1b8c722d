"""`citykit diff`: the pure comparison (citykit/compare.py) and the command's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citykit import compiler
from citykit.reports import compare
from tests.conftest import EXAMPLE

CLI = [sys.executable, "-m", "citykit.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, timeout=120)
    assert "Traceback" not in result.stderr
    return result


def side(profile: Path, env: str) -> compare.Side:
    return compare.Side(str(profile), env, compiler.compile_city(profile, env))


def test_the_same_city_is_identical_and_exits_0() -> None:
    result = run("diff", "-p", str(EXAMPLE), "-e", "dev", "--against", "dev")
    assert result.returncode == 0, result.stderr
    assert "no differences" in result.stdout


def test_dev_against_prod_exits_2_and_names_the_components_whose_sizing_differs() -> None:
    result = run("diff", "-p", str(EXAMPLE), "-e", "dev", "--against", "prod", "-o", "json")
    assert result.returncode == 2, result.stderr
    data = json.loads(result.stdout)
    assert not data["identical"]
    assert {"kafka", "minio", "postgis"} <= set(data["summary"]["sizingComponents"])
    kafka = next(
        s for s in data["sizing"] if s["component"] == "kafka" and s["figure"] == "replicas"
    )
    assert kafka["to"] > kafka["from"] and kafka["rule"]
    assert kafka["scalesWith"] == {"factor": "replicaFactor", "from": 0.34, "to": 1.0}
    assert "kafka" in result.stderr  # the message names them too


def test_the_table_groups_objects_by_layer_and_component_without_colour() -> None:
    result = run("diff", "-p", str(EXAMPLE), "-e", "dev", "--against", "prod")
    assert result.returncode == 2
    assert "\x1b[" not in result.stdout  # piped: no colour codes
    lines = result.stdout.splitlines()
    data_layer = lines.index("7.2 data")
    assert lines[data_layer + 1] == "  minio"
    assert "    ~ StatefulSet yuhang-data/minio" in lines
    assert "        spec.replicas: 2 -> 5" in lines


def test_nothing_to_compare_with_is_bad_input() -> None:
    result = run("diff", "-p", str(EXAMPLE))
    assert result.returncode == 2 and "--against" in result.stderr


def test_an_invalid_profile_is_reported_not_a_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.read_text(encoding="utf-8").replace("slug: yuhang", "slug: Yu_hang"))
    result = run("diff", "-p", str(EXAMPLE), "--against-profile", str(broken))
    assert result.returncode == 2
    assert f"{broken}: city.slug" in result.stderr


def two_profiles(tmp_path: Path, change: dict) -> tuple[Path, Path]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    other = tmp_path / "other.yaml"
    layers = data.setdefault("layers", {})
    for layer, capabilities in change.items():
        layers.setdefault(layer, {}).update(capabilities)
    other.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return EXAMPLE, other


def test_two_profiles_show_implementations_added_components_and_overrides(tmp_path) -> None:
    left, right = two_profiles(
        tmp_path,
        {
            "common": {
                "message-broker": {"implementation": "nats"},
                "context-broker": {"enabled": True},
            },
            "data": {"data-lake": {"replicas": 6}},
        },
    )
    result = compare.compare(side(left, "dev"), side(right, "dev"))
    components = result["components"]
    assert [c["name"] for c in components["added"]] == ["orion-ld"]
    assert [(c["from"], c["to"]) for c in components["implementationChanged"]] == [
        ("kafka", "nats")
    ]
    # A changed implementation is one change, not a removal and an addition.
    assert components["removed"] == []
    lake = next(
        s for s in result["sizing"] if s["component"] == "minio" and s["figure"] == "replicas"
    )
    assert (lake["to"], lake["source"], lake["sourceBefore"]) == (6, "override", "derived")
    ops = {(o["op"], o["component"]) for o in result["objects"]}
    assert ("remove", "kafka") in ops and ("add", "nats") in ops and ("add", "orion-ld") in ops


def test_rows_follow_the_reference_models_layers() -> None:
    result = compare.compare(side(EXAMPLE, "dev"), side(EXAMPLE, "prod"))
    from citykit.contract import layers

    order = [layers.index(layers.BY_KEY[row["layer"]]) for row in result["objects"]]
    assert order == sorted(order)
    assert result == compare.compare(side(EXAMPLE, "dev"), side(EXAMPLE, "prod"))  # deterministic


def test_secret_values_are_never_shown() -> None:
    old = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "b2xk"}}
    new = {
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"password": "bmV3", "user": "dQ=="},
    }
    fields = compare.diff_fields(old, new, hide_values=True)
    assert fields == [
        {"path": "data.password", "from": "(hidden)", "to": "(hidden)"},
        {"path": "data.user", "to": "(hidden)"},
    ]
    assert "b2xk" not in json.dumps(fields) and "bmV3" not in json.dumps(fields)


def test_a_secret_in_a_compiled_city_is_compared_by_name_and_keys(tmp_path) -> None:
    left = compiler.compile_city(EXAMPLE, "dev")
    right = compiler.compile_city(EXAMPLE, "dev")
    # Give one Secret a value on one side, as a hand-edited render might: only the key shows.
    unit = next(u for u in right.units if any(o["kind"] == "Secret" for o in u.objects))
    secret = next(o for o in unit.objects if o["kind"] == "Secret")
    secret["stringData"] = {"password": "hunter2"}
    result = compare.compare(compare.Side("a", "dev", left), compare.Side("a", "dev", right))
    assert "hunter2" not in json.dumps(result)
    (row,) = result["objects"]
    assert row["kind"] == "Secret" and row["fields"] == [{"path": "stringData", "to": "(hidden)"}]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Lists of named items are keyed by name: inserting one shifts nothing.
        (
            {"c": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]},
            {"c": [{"name": "x", "v": 0}, {"name": "a", "v": 1}, {"name": "b", "v": 3}]},
            [
                {"path": "c[x]", "to": {"name": "x", "v": 0}},
                {"path": "c[b].v", "from": 2, "to": 3},
            ],
        ),
        # Label keys with dots are quoted; a field only one side has carries its whole value.
        (
            {"metadata": {"labels": {"app.kubernetes.io/name": "a"}}},
            {"metadata": {"labels": {"app.kubernetes.io/name": "b"}, "annotations": {"k": "v"}}},
            [
                {"path": 'metadata.labels["app.kubernetes.io/name"]', "from": "a", "to": "b"},
                {"path": "metadata.annotations", "to": {"k": "v"}},
            ],
        ),
        ({"a": [1, 2]}, {"a": [1]}, [{"path": "a[1]", "from": 2}]),
        ({"a": 1}, {"a": True}, [{"path": "a", "from": 1, "to": True}]),
    ],
)
def test_field_paths(old, new, expected) -> None:
    assert compare.diff_fields(old, new) == expected
