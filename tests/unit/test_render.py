"""Rendering: strict schema validity, shared labels, determinism, and no injection."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from citykit import compiler
from citykit import manifests
from citykit import testing
from citykit.compiler import Compiled
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE
from tests.conftest import example_data


@cache
def compiled(env: str) -> Compiled:
    return compiler.compile_city(EXAMPLE, env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_passes_strict_schema_validation(env: str) -> None:
    # Custom resources are left to their CRD's own schema on the API server, not to OpenAPI.
    assert testing.check_schemas(compiled(env).objects()) > 0


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_custom_resource_passes_its_crd_schema(env: str) -> None:
    """Certificates and issuers are checked offline against the vendored CRDs' structural
    schemas (what the API server enforces), with unknown fields refused as it prunes them."""
    objects = compiled(env).objects()
    schemas = {
        (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"]): version[
            "schema"
        ]["openAPIV3Schema"]
        for crd in objects
        if crd["kind"] == "CustomResourceDefinition"
        for version in crd["spec"]["versions"]
        if version.get("served")
    }
    validators = {
        key: jsonschema.Draft7Validator(_closed(schema["properties"]["spec"]))
        for key, schema in schemas.items()
    }
    checked = 0
    for obj in objects:
        validator = validators.get((obj["apiVersion"], obj["kind"]))
        if validator is None:
            continue
        validator.validate(obj["spec"])
        checked += 1
    assert checked >= 4  # the issuers, the root CA and at least one endpoint certificate


def _closed(schema: dict) -> dict:
    """A structural schema with `additionalProperties: false` wherever properties are listed
    and nothing else is allowed, so a misspelt field fails here instead of being pruned."""
    result = {
        k: _closed(v) if isinstance(v, dict) and k != "properties" else v for k, v in schema.items()
    }
    if "properties" in schema:
        # `properties` maps field names to schemas: close each schema, not the mapping itself.
        result["properties"] = {k: _closed(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            result["additionalProperties"] = False
    return result


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_carries_the_citykit_labels(env: str) -> None:
    result = compiled(env)
    for unit in result.units:
        for obj in unit.objects:
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "citykit"
            assert labels["app.kubernetes.io/part-of"] == "yuhang"
            assert labels["app.kubernetes.io/component"] == unit.component.name
            assert labels["citykit.io/layer"] == unit.component.layer.key


def test_shared_parts_are_written_in_full_not_as_yaml_aliases() -> None:
    port = {"port": "http"}
    probes = {"livenessProbe": {"tcpSocket": port}, "startupProbe": {"tcpSocket": port}}
    text = manifests.dump([probes])
    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text) == probes


def test_two_renders_are_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    manifests.write(compiler.compile_city(EXAMPLE, "prod"), first)
    manifests.write(compiler.compile_city(EXAMPLE, "prod"), second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes()


def test_render_replaces_its_own_output_but_refuses_foreign_directories(tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifests.write(compiled("dev"), out)
    (out / "7.1.1-sensing" / "stale.yaml").write_text("old")
    manifests.write(compiled("dev"), out)
    assert not (out / "7.1.1-sensing" / "stale.yaml").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(Exception, match="not written by citykit"):
        manifests.write(compiled("dev"), foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def shape(objects: list[dict]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objects]


# Printable text of any script, including YAML and Jinja syntax; control characters are refused
# by validation (tested in test_profile), so they are excluded here.
hostile_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s and s != "")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.one_of(
        hostile_text,
        st.sampled_from(
            [
                "{{ 7*7 }}",
                "{% raw %}",
                "x: y",
                "- a",
                "&a *a",
                "!!python/object:os.system",
                '"quoted',
                "'single",
                "key: value\\nkind: ClusterRoleBinding",
                "# comment",
                "---",
                "杭州市余杭区",
            ]
        ),
    )
)
def test_profile_strings_cannot_change_the_rendered_structure(write_profile, name: str) -> None:
    data = example_data()
    data["city"]["name"] = name
    data["districts"][0]["name"] = name
    data["departments"][0]["name"] = name
    result = compiler.compile_city(write_profile(data), "dev")
    assert shape(result.objects()) == shape(compiled("dev").objects())
    # Vendored CRDs are taken verbatim (no value reaches them); the rest is round-tripped.
    rendered = [o for o in result.objects() if o["kind"] != "CustomResourceDefinition"]
    text = manifests.dump(rendered)
    reparsed = [o for o in yaml.load_all(text, Loader=yaml.CSafeLoader) if o]
    assert shape(reparsed) == shape(rendered)
    names = [
        o["metadata"]["annotations"]["citykit.io/city-name"]
        for o in reparsed
        if o["kind"] == "Namespace"
        and "citykit.io/city-name" in o["metadata"].get("annotations", {})
    ]
    assert names and all(n == name for n in names)


@pytest.mark.parametrize(
    "value", ["0o17", "0X1F", "0b1", "1e3", "-1.5E+3", ".5", "1_000", "y", "N", "2024-1-2 3:4:5"]
)
def test_strings_gos_yaml_reads_as_other_values_are_written_quoted(value: str) -> None:
    # kubectl and kustomize read rendered files with Go's yaml.v2, which takes these for
    # numbers, booleans or times; PyYAML would write them plain (tests/e2e/test_parity.py).
    text = manifests.dump([{"metadata": {"annotations": {"citykit.io/city-name": value}}}])
    written = text.split("citykit.io/city-name: ", 1)[1].strip()
    assert written[0] in "'\"", written
    assert yaml.safe_load(text)["metadata"]["annotations"]["citykit.io/city-name"] == value
    # Strings no reader takes for anything else stay plain: the golden files do not change.
    assert "version: 1.27.4-alpine\n" in manifests.dump([{"version": "1.27.4-alpine"}])
