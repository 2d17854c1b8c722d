"""checkov's Kubernetes checks over the rendered example city: zero failures; every skip is
declared (in the component or derived from its declarations) with a reason.

checkov pins libraries (packaging) that conflict with the Pulumi SDK, so it lives in its own
virtualenv under ~/.cache/citykit/checkov (`make checkov`, part of `make test`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from citykit import compiler, manifests, paths
from citykit.compiler import Compiled
from tests.conftest import ENVIRONMENTS, EXAMPLE


def checkov() -> Path:
    binary = Path(
        os.environ.get("CITYKIT_CHECKOV") or paths.cache_dir() / "checkov" / "bin" / "checkov"
    )
    if not binary.is_file():
        pytest.fail(f"checkov not found at {binary}: run `make checkov`")
    return binary


def run_checkov(directory: Path) -> list[dict[str, Any]]:
    """checkov's Kubernetes checks over a rendered directory: its JSON reports."""
    result = subprocess.run(
        [
            str(checkov()),
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "-o",
            "json",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "BC_API_KEY": "", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def assert_clean(compiled: Compiled, directory: Path) -> list[dict[str, Any]]:
    """Render, scan: no failed check, no parsing error, every skip with its reason."""
    manifests.write(compiled, directory)
    reports = run_checkov(directory)
    failed = [
        (f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]
    ]
    assert failed == []
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0
    skipped = [s for r in reports for s in r["results"]["skipped_checks"]]
    assert len(skipped) == summary["skipped"]
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]
    return reports


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_reports_no_failures(tmp_path: Path, env: str) -> None:
    reports = assert_clean(compiler.compile_city(EXAMPLE, env), tmp_path / "out")
    assert reports[0]["summary"]["passed"] > 1000
