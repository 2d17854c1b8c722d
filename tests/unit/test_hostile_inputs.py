"""Malformed and hostile profiles only ever end in a located, readable error (exit 2), never in a
traceback, and quickly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citykit import compiler
from citykit.errors import ValidationFailed
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
