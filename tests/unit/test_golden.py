"""Golden files: the example city rendered for dev, staging and prod, committed under
tests/golden/<env>/ so every change to rendered output shows up in review.

Regenerate after an intended change:
    CITYKIT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_golden.py"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from citykit import compiler
from citykit import manifests
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rendered_example_city_matches_the_golden_files(env: str) -> None:
    expected_dir = GOLDEN / env
    actual = manifests.files(compiler.compile_city(EXAMPLE, env))
    if os.environ.get("CITYKIT_UPDATE_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        for relative, text in actual.items():
            (expected_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / relative).write_text(text, encoding="utf-8")
    expected = {
        str(path.relative_to(expected_dir)): path.read_text(encoding="utf-8")
        for path in sorted(expected_dir.rglob("*.yaml"))
    }
    assert sorted(actual) == sorted(expected), "files differ; see the module docstring"
    for relative, text in actual.items():
        assert text == expected[relative], f"{env}/{relative} differs; see the module docstring"
