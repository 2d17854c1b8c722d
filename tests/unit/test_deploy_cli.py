"""Deployment commands without an engine or cluster: clear errors, exit 2, no traceback; and the
driver's pure parts (generated secrets are kept across runs, never rotated)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from citykit import compiler
from citykit.deploy import engine
from citykit.deploy import generated
from tests.conftest import EXAMPLE

CLI = [sys.executable, "-m", "citykit.cli"]


@pytest.mark.parametrize(
    "command",
    [
        ["up", "--yes"],
        ["preview"],
        ["destroy", "--yes"],
        ["refresh", "--yes"],
        ["drift"],
        ["outputs"],
    ],
)
def test_without_the_engine_every_pulumi_command_says_how_to_get_it(
    tmp_path: Path, command: list[str]
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CITYKIT_CACHE_DIR": str(tmp_path / "cache"),
        "CITYKIT_STATE_DIR": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [*CLI, command[0], "-p", str(EXAMPLE), "-e", "dev", *command[1:]],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Pulumi engine is not installed" in result.stderr
    assert "citykit tools install" in result.stderr and "pulumi.com/docs/install" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "clusters").exists()  # nothing was started


def test_generated_secrets_are_filled_once_and_kept() -> None:
    compiled = compiler.compile_city(EXAMPLE, "dev")
    needed = generated.required_secrets(compiled)
    first = generated.fill_generated({}, needed)
    assert set(first) == set(needed)
    for name, keys in needed.items():
        assert sorted(first[name]) == sorted(keys)
        assert all(len(v) >= 24 for v in first[name].values())
    assert generated.fill_generated(first, needed) == first
    values = [v for secret in first.values() for v in secret.values()]
    assert len(values) == len(set(values))


def test_stack_name_is_city_and_environment() -> None:
    assert engine.stack_name(compiler.plan(EXAMPLE, "staging")) == "yuhang-staging"


def test_passphrase_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYKIT_STATE_DIR", str(tmp_path))
    for name in ("CITYKIT_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    env = engine._passphrase_env("passphrase")
    key = Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"])
    assert key.stat().st_mode & 0o777 == 0o600
    assert engine._passphrase_env("passphrase") == env  # reused, not regenerated
    assert engine._passphrase_env("awskms://alias/city") == {}


def test_database_clients_share_the_database_password() -> None:
    compiled = compiler.compile_city(EXAMPLE, "dev")
    shared = generated.shared_secrets(compiled)
    assert shared, "applications and identity share the relational store's password"
    values = generated.fill_generated({}, generated.required_secrets(compiled), shared)
    for client, source in shared.items():
        assert values[client]["password"] == values[source]["password"]
