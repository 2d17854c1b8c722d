"""Rough edges a new user meets: the cluster commands' default environment and help pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "citykit.cli"]


def run(*args: str, state: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="100")
    if state is not None:
        env["CITYKIT_STATE_DIR"] = str(state)
    result = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, check=False, timeout=120, env=env
    )
    assert "Traceback" not in result.stderr
    return result


def test_cluster_kubeconfig_defaults_to_dev_like_every_other_command(tmp_path: Path) -> None:
    missing = run("cluster", "kubeconfig", state=tmp_path)
    assert missing.returncode == 2
    assert "no local cluster named 'citykit-dev'" in missing.stderr
    assert "citykit cluster up -e dev" in missing.stderr
    # After `citykit up` (dev) the cluster's directory exists: its kubeconfig is printed.
    (tmp_path / "clusters" / "citykit-dev").mkdir(parents=True)
    found = run("cluster", "kubeconfig", state=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(tmp_path / "clusters" / "citykit-dev" / "kubeconfig")


def test_cluster_status_defaults_to_dev(tmp_path: Path) -> None:
    result = run("cluster", "status", state=tmp_path)
    assert result.returncode == 0 and "cluster 'citykit-dev': not running" in result.stdout


@pytest.mark.parametrize(
    "command", [("images", "build"), ("destroy",), ("preview",), ("init",), ("diff",), ()]
)
def test_help_pages_show_no_type_after_flags(command: tuple[str, ...]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout and "<list[" not in result.stdout
    help_line = next(line for line in result.stdout.splitlines() if "--help" in line)
    assert "Show this message and exit." in help_line
    assert "<" not in help_line


def test_options_that_take_a_value_still_name_its_type() -> None:
    text = run("images", "build", "--help").stdout
    line = next(line for line in text.splitlines() if "--component" in line)
    assert "<str>" in line
