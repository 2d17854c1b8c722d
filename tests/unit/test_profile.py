"""Profile and environment validation: located problems, hints, the merge rule."""

from __future__ import annotations

import pytest

from citykit import compiler
from citykit.environment import deep_merge
from citykit.environment import load as load_environment
from citykit.errors import ValidationFailed
from tests.conftest import EXAMPLE, example_data


def problems(path, env: str = "dev") -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(path, env)
    return [p.render() for p in caught.value.problems]


def test_example_city_is_valid_in_every_shipped_environment() -> None:
    for env in ("dev", "staging", "prod"):
        plan = compiler.plan(EXAMPLE, env)
        assert plan.profile.city.slug == "yuhang"
        assert plan.environment.name == env


def test_misspelt_keys_name_the_path_and_suggest_the_right_key(write_profile) -> None:
    data = example_data()
    data["scale"]["peakMessagesPerSec"] = data["scale"].pop("peakMessagesPerSecond")
    data["layers"]["sensing"]["device-brokr"] = data["layers"]["sensing"].pop("device-broker")
    found = problems(write_profile(data))
    assert any(
        "scale.peakMessagesPerSec: unknown key" in p and "peakMessagesPerSecond" in p for p in found
    )
    assert any(
        "layers.sensing.device-brokr" in p and "did you mean 'device-broker'" in p for p in found
    )


def test_unknown_implementation_suggests_the_close_one(write_profile) -> None:
    data = example_data()
    data["layers"]["sensing"]["device-broker"]["implementation"] = "mosquito"
    found = problems(write_profile(data))
    assert "layers.sensing.device-broker.implementation" in found[0]
    assert "did you mean 'mosquitto'" in found[0]


def test_every_problem_is_reported_at_once(write_profile) -> None:
    data = example_data()
    data["city"]["slug"] = "Not A Slug"
    data["city"]["adminCode"] = "12"
    data["districts"].append(dict(data["districts"][0]))
    found = problems(write_profile(data))
    assert len(found) == 3
    assert any(p.split(": ")[1] == "city.slug" for p in found)
    assert any("city.adminCode" in p for p in found)
    assert any("districts" in p and "used twice" in p for p in found)


def test_setting_errors_point_at_the_setting_without_the_implementation_tag(write_profile) -> None:
    data = example_data()
    data["layers"]["sensing"]["device-broker"]["replicas"] = 0
    found = problems(write_profile(data))
    assert len(found) == 1
    assert ": layers.sensing.device-broker.replicas: " in found[0]


def test_control_characters_in_names_are_refused(write_profile) -> None:
    data = example_data()
    data["city"]["name"] = "x\nkind: ClusterRoleBinding"
    found = problems(write_profile(data))
    assert len(found) == 1 and "city.name" in found[0]


def test_missing_keys_say_what_the_key_is_for(write_profile) -> None:
    data = example_data()
    del data["scale"]
    found = problems(write_profile(data))
    assert len(found) == 1
    assert "scale: required key is missing" in found[0]
    assert "sizing rules derive from them" in found[0]


def test_deep_merge_rule() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}
    overlay = {"a": {"c": [3], "g": 2}, "d": None, "e": 5}
    assert deep_merge(base, overlay) == {"a": {"b": 1, "c": [3], "g": 2}, "e": 5}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}


def test_custom_environment_extends_a_shipped_one(tmp_path) -> None:
    custom = tmp_path / "lab.yaml"
    custom.write_text(
        "apiVersion: citykit.io/v1alpha1\nkind: Environment\nname: lab\nextends: staging\n"
        "replicaFactor: 2\ncluster: {nodes: {gpu: 0}}\n"
        "profile: {layers: {sensing: {device-broker: {replicas: 7}}}}\n",
        encoding="utf-8",
    )
    environment, _ = load_environment(str(custom))
    assert environment.replica_factor == 2
    assert environment.size_factor == 0.5  # from staging
    assert environment.cluster.nodes.gpu == 0 and environment.cluster.nodes.general == 3
    plan = compiler.plan(EXAMPLE, str(custom))
    assert plan.by_name("emqx").size("replicas") == 7


def test_unknown_environment_name_is_an_input_error() -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_environment("qa")
    assert "unknown environment 'qa'" in caught.value.lines()[0]
