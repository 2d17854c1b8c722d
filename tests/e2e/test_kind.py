"""The kind tier: the same deployment on a kind cluster when Docker and kind are present (with
internet access for node images). Machines without them report the skip and its reason; this
project's CI machines cannot pull kind's node image, so this tier runs on developers' machines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE

CLI = [sys.executable, "-m", "citykit.cli"]

pytestmark = [
    pytest.mark.kind,
    pytest.mark.skipif(
        shutil.which("docker") is None or shutil.which("kind") is None,
        reason="kind tier: docker and kind are not installed on this machine",
    ),
]


def test_city_on_kind(tmp_path: Path) -> None:
    env = {**os.environ, "CITYKIT_STATE_DIR": str(tmp_path), "CITYKIT_PASSPHRASE": "kind-tier"}

    def citykit(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*CLI, *args], capture_output=True, text=True, check=False, env=env, timeout=1800
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    citykit(
        "cluster",
        "up",
        "-p",
        str(EXAMPLE),
        "-e",
        "staging",
        "--provider",
        "kind",
        "--name",
        "citykit-kind-e2e",
    )
    try:
        kubeconfig = tmp_path / "kind" / "citykit-kind-e2e" / "kubeconfig"
        env["CITYKIT_KUBECONFIG"] = str(kubeconfig)
        citykit("up", "-p", str(EXAMPLE), "-e", "staging", "--yes")
        rows = json.loads(
            citykit("status", "-p", str(EXAMPLE), "-e", "staging", "-o", "json").stdout
        )
        assert all(r["state"] == "ready" for r in rows)
        citykit("destroy", "-p", str(EXAMPLE), "-e", "staging", "--yes", "--delete-data")
    finally:
        subprocess.run(
            [*CLI, "cluster", "down", "--provider", "kind", "--name", "citykit-kind-e2e"],
            env=env,
            check=False,
            capture_output=True,
        )
