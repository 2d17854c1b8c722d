"""checkov's Kubernetes checks over the rendered example city: zero failures; every skip is
declared (in the component or derived from its declarations) with a reason.

checkov pins libraries (packaging) that conflict with the Pulumi SDK, so it lives in its own
virtualenv under ~/.cache/citykit/checkov (`make checkov`, part of `make test`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from citykit import compiler, manifests, paths
from tests.conftest import ENVIRONMENTS, EXAMPLE


def checkov() -> Path:
    binary = Path(
        os.environ.get("CITYKIT_CHECKOV") or paths.cache_dir() / "checkov" / "bin" / "checkov"
    )
    if not binary.is_file():
        pytest.fail(f"checkov not found at {binary}: run `make checkov`")
    return binary


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_reports_no_failures(tmp_path: Path, env: str) -> None:
    compiled = compiler.compile_city(EXAMPLE, env)
    manifests.write(compiled, tmp_path / "out")
    result = subprocess.run(
        [
            str(checkov()),
            "-d",
            str(tmp_path / "out"),
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
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        (f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]
    ]
    assert failed == []
    summary = reports[0]["summary"]
    assert summary["passed"] > 1000 and summary["parsing_errors"] == 0
    skipped = [s for r in reports for s in r["results"]["skipped_checks"]]
    assert len(skipped) == summary["skipped"]
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]
