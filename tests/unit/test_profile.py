"""Profile validation: located problems, hints, names that any script can render."""

from __future__ import annotations

import pytest
import yaml

from citykit import compiler
from citykit.errors import ValidationFailed
from tests.conftest import EXAMPLE
from tests.conftest import example_data


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


@pytest.mark.parametrize("name", ["a\x85b", "a\x9bb", "a\u2028b", "a\u2029b", "a\ufffeb"])
def test_characters_yaml_breaks_or_refuses_are_refused_in_names(write_profile, name) -> None:
    # Found by tests/e2e/test_parity.py: validate accepted these, then render failed on its own
    # YAML (C1 controls, U+FFFE) or a line break folded the name (NEL, U+2028/9).
    data = example_data()
    data["departments"][1]["name"] = name
    # Escaped in the file (no allow_unicode), so the loader reads the very character.
    found = problems(write_profile(yaml.safe_dump(data)))
    assert len(found) == 1 and "departments[1].name" in found[0]


@pytest.mark.parametrize("slug", ["system", "system-city"])
def test_a_city_slug_the_api_server_reserves_is_refused(write_profile, slug: str) -> None:
    data = example_data()
    data["city"]["slug"] = slug
    found = problems(write_profile(data))
    assert len(found) == 1
    assert f": city.slug: '{slug}' would name PriorityClasses {slug}-critical" in found[0]
    assert "(hint: choose another slug" in found[0]


def test_a_volume_kubernetes_cannot_account_for_is_refused(write_profile) -> None:
    # Found by tests/e2e/test_parity.py: above 8 PiB the API server calls a storage request
    # invalid (int64 milli-bytes overflow); above 8 EiB it caps it silently.
    data = example_data()
    data["scale"]["dailyDataGb"] = 7_000_000
    found = problems(write_profile(data))
    assert len(found) == 1
    assert ": layers.data.data-lake.storageGi: a volume of " in found[0]
    assert "larger than Kubernetes can account for (8388608 GiB, 8 PiB)" in found[0]
    data = example_data()
    data["layers"]["operations"] = {"logging": {"storageGi": 10**20}}
    found = problems(write_profile(data))
    assert len(found) == 1 and ": layers.operations.logging.storageGi: " in found[0]
    assert "(hint: at most 8388608)" in found[0]
    data["layers"]["operations"]["logging"]["storageGi"] = 8 * 1024**2
    compiler.plan(write_profile(data), "dev")


@pytest.mark.parametrize("name", ["a\xa0b", "🏙️ 智慧城市", "a\ufeffb", "{{ x }} 'q' \"r\""])
def test_names_in_any_script_render(write_profile, name) -> None:
    data = example_data()
    data["city"]["name"] = name
    objects = compiler.compile_city(write_profile(yaml.safe_dump(data)), "dev").objects()
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["annotations"]["citykit.io/city-name"] == name


def test_missing_keys_say_what_the_key_is_for(write_profile) -> None:
    data = example_data()
    del data["scale"]
    found = problems(write_profile(data))
    assert len(found) == 1
    assert "scale: required key is missing" in found[0]
    assert "sizing rules derive from them" in found[0]
