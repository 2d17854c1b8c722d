"""End-to-end tier: a real API server for the tier (torn down after its last test).

Either the cluster given by `CITYKIT_E2E_KUBECONFIG` / `KUBECONFIG` (when it answers), or a local
simulated cluster started here once, in a private state directory, named as the dev environment
names it — so `citykit up -e dev` in these tests finds it running, exactly as a user's would.
Missing tools are a failure, never a skip: `make test` builds them first."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clusters import Cluster
from tests.clusters import local_cluster
from tests.clusters import require_kubectl

CLUSTER_NAME = "citykit-dev"  # environments/dev.yaml cluster.name


# tryfirst, as tests/conftest.py's, which puts the tier in one xdist group by this mark: of two
# tryfirst implementations the later registered (this subdirectory's) runs first.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


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


@pytest.fixture(scope="package")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_kubectl()
    given = os.environ.get("CITYKIT_E2E_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if given and _reachable(Path(given)):
        yield Cluster(Path(given), dict(os.environ), started_here=False)
        return
    state = tmp_path_factory.mktemp("citykit-state")
    with local_cluster(state, "dev", "e2e-only-passphrase", name=CLUSTER_NAME) as cluster:
        yield cluster
