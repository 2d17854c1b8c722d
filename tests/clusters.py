"""The cluster tiers' shared pieces (tests/e2e, tests/faults): the `Cluster` a tier's tests talk
to, and a local simulated cluster started with `citykit cluster up` in a private state directory
and stopped at the end. Missing tools are a failure, never a skip: `make test` builds them first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from citykit import toolchain
from tests.conftest import EXAMPLE

CLI = [sys.executable, "-m", "citykit.cli"]


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    env: dict[str, str]  # environment for citykit / kubectl subprocesses
    started_here: bool

    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            env=self.env,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def citykit(
        self, *args: str, expect: int | None = 0, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*CLI, *args],
            capture_output=True,
            text=True,
            check=False,
            env=self.env,
            timeout=timeout,
        )
        if expect is not None:
            assert result.returncode == expect, (
                f"citykit {' '.join(args)} exited {result.returncode}\n{result.stdout}\n"
                f"{result.stderr}"
            )
        assert "Traceback" not in result.stderr, result.stderr
        return result


def require_kubectl() -> None:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed (scripts/system-deps installs it)")


@contextmanager
def local_cluster(
    state: Path,
    environment: str | Path,
    passphrase: str,
    *,
    name: str,
    unset: tuple[str, ...] = ("KUBECONFIG",),
) -> Iterator[Cluster]:
    """The local cluster of `environment` (named `name` there), started with its state under
    `state` and the engine's passphrase `passphrase`, without the variables `unset` of this
    process; stopped when the block ends."""
    missing = [tool.name for tool in toolchain.missing()]
    if missing:
        pytest.fail(f"tools not built: {', '.join(missing)} — run `citykit tools install`")
    env = dict(os.environ)
    for variable in unset:
        env.pop(variable, None)
    env |= {"CITYKIT_STATE_DIR": str(state), "PULUMI_CONFIG_PASSPHRASE": passphrase}
    started = subprocess.run(
        [*CLI, "cluster", "up", "-p", str(EXAMPLE), "-e", str(environment)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    kubeconfig = state / "clusters" / name / "kubeconfig"
    try:
        yield Cluster(kubeconfig, env | {"KUBECONFIG": str(kubeconfig)}, started_here=True)
    finally:
        subprocess.run(
            [*CLI, "cluster", "down", "-e", str(environment)],
            capture_output=True,
            check=False,
            env=env,
            timeout=120,
        )
