"""End-to-end tier: a real API server for the whole session.

Either the cluster given by `CITYKIT_E2E_KUBECONFIG` / `KUBECONFIG` (when it answers), or a local
simulated cluster started here once, in a private state directory, named as the dev environment
names it — so `citykit up -e dev` in these tests finds it running, exactly as a user's would.
Missing tools are a failure, never a skip: `make test` builds them first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE

CLI = [sys.executable, "-m", "citykit.cli"]
CLUSTER_NAME = "citykit-dev"  # environments/dev.yaml cluster.name


# tryfirst, as tests/conftest.py's, which puts the tier in one xdist group by this mark: of two
# tryfirst implementations the later registered (this subdirectory's) runs first.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


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


def _reachable(kubeconfig: Path) -> bool:
    if not kubeconfig.is_file():
        return False
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )
    return result.returncode == 0


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed (scripts/system-deps installs it)")
    given = os.environ.get("CITYKIT_E2E_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if given and _reachable(Path(given)):
        yield Cluster(Path(given), dict(os.environ), started_here=False)
        return

    from citykit import toolchain

    missing = [tool.name for tool in toolchain.missing()]
    if missing:
        pytest.fail(f"tools not built: {', '.join(missing)} — run `citykit tools install`")
    state = tmp_path_factory.mktemp("citykit-state")
    env = dict(os.environ)
    env["CITYKIT_STATE_DIR"] = str(state)
    env.pop("KUBECONFIG", None)
    env["PULUMI_CONFIG_PASSPHRASE"] = "e2e-only-passphrase"
    started = subprocess.run(
        [*CLI, "cluster", "up", "-p", str(EXAMPLE), "-e", "dev"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    kubeconfig = state / "clusters" / CLUSTER_NAME / "kubeconfig"
    cluster = Cluster(kubeconfig, env | {"KUBECONFIG": str(kubeconfig)}, started_here=True)
    try:
        yield cluster
    finally:
        subprocess.run(
            [*CLI, "cluster", "down", "-e", "dev"],
            capture_output=True,
            check=False,
            env=env,
            timeout=120,
        )
