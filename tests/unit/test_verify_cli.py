"""`citykit verify`, the command, without a cluster: no cluster is an error (not a failed check),
an unknown layer is refused, and the help names the exit codes."""

from __future__ import annotations

from typing import Any

from tests.conftest import EXAMPLE


def _cli(tmp_path: Any, *args: str) -> Any:
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CITYKIT_CACHE_DIR": str(tmp_path / "cache"),
        "CITYKIT_STATE_DIR": str(tmp_path / "state"),
    }
    return subprocess.run(
        [sys.executable, "-m", "citykit.cli", "verify", "-p", str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )


def test_verify_without_a_cluster_is_an_error_not_a_failed_check(tmp_path: Any) -> None:
    result = _cli(tmp_path, "-e", "local", "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not running" in result.stderr and "citykit cluster up -e local" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_verify_rejects_an_unknown_layer(tmp_path: Any) -> None:
    result = _cli(tmp_path, "-e", "local", "--layer", "moon")
    assert result.returncode == 2
    assert "unknown layer 'moon'" in result.stderr and "applications" in result.stderr


def test_verify_help_names_the_exit_codes(tmp_path: Any) -> None:
    result = _cli(tmp_path, "--help")
    assert result.returncode == 0
    for text in ("--restore-drill", "--layer", "Exit 0", "2 when one fails"):
        assert text in result.stdout
