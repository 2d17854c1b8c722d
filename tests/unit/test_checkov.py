"""checkov's Kubernetes checks over the rendered example city: zero failures; every skip is
declared (in the component or derived from its declarations) with a reason.

checkov pins libraries (packaging) that conflict with the Pulumi SDK, so it lives in its own
virtualenv under ~/.cache/citykit/checkov (`make checkov`, part of `make test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from citykit import compiler
from citykit import testing
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_reports_no_failures(tmp_path: Path, env: str) -> None:
    reports = testing.check_checkov(compiler.compile_city(EXAMPLE, env), tmp_path / "out")
    assert reports[0]["summary"]["passed"] > 1000
