"""Fault-injection tier (marker `faults`): the real engine against a local cluster of its own.

The cluster is dev's simulated one under another name (`citykit-faults`, from an environment
file extending dev) and another state directory, so it never meets the e2e tier's `citykit-dev`;
the example city is deployed on it once, and each case breaks one thing, checks what citykit says,
then checks that a plain `citykit up` converges with nothing lost. Run it under the machine's
heavy-run lock, as the e2e tier."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.clusters import CLI
from tests.clusters import Cluster
from tests.clusters import local_cluster
from tests.clusters import require_kubectl
from tests.conftest import EXAMPLE

CLUSTER_NAME = "citykit-faults"
SLUG = "yuhang"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: breaks a deployment on purpose (tests/faults, its own local cluster)"
    )


# tryfirst, as tests/e2e/conftest.py's: the mark is added before tests/conftest.py reads it to
# put the tier in its xdist group (a lane it shares with the kind tier, which runs after it: its
# cluster is package-scoped, down before kind's starts).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


class City:
    """The example city deployed on the tier's cluster, with the commands a user would run."""

    def __init__(self, cluster: Cluster, environment: Path, state: Path) -> None:
        self.cluster = cluster
        self.environment = environment
        self.state = state

    @property
    def args(self) -> list[str]:
        return ["-p", str(EXAMPLE), "-e", str(self.environment)]

    @property
    def backend(self) -> Path:
        return self.state / "pulumi" / "backend" / ".pulumi"

    def citykit(
        self,
        verb: str,
        *extra: str,
        expect: int | None = 0,
        env: dict[str, str] | None = None,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*CLI, verb, *self.args, *extra],
            capture_output=True,
            text=True,
            check=False,
            env=self.cluster.env | (env or {}),
            timeout=timeout,
        )
        if expect is not None:
            assert result.returncode == expect, (
                f"citykit {verb} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def credentials(self) -> dict[str, dict[str, str]]:
        """The generated credentials as the cluster holds them: '<ns>/<name>' -> data."""
        items = self.cluster.get_json(
            "secrets", "--all-namespaces", "-l", f"app.kubernetes.io/part-of={SLUG}"
        )["items"]
        return {
            f"{s['metadata']['namespace']}/{s['metadata']['name']}": dict(s.get("data") or {})
            for s in items
            if "citykit.io/generate" in (s["metadata"].get("annotations") or {})
        }

    def status(self) -> list[dict[str, str]]:
        result = self.citykit("status", "-o", "json", expect=None)
        rows: list[dict[str, str]] = json.loads(result.stdout)
        return rows

    def wait_all_ready(self, timeout: float = 180) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        rows = self.status()
        while time.monotonic() < deadline and any(r["state"] != "ready" for r in rows):
            time.sleep(2)
            rows = self.status()
        return [r for r in rows if r["state"] != "ready"]

    def converges(self, before: dict[str, dict[str, str]]) -> float:
        """A plain `citykit up` ends with every component Ready and nothing lost: the generated
        credentials byte-identical, `citykit outputs` listing each. Returns its seconds."""
        started = time.monotonic()
        result = self.citykit("up", "--yes", "-o", "json", timeout=1500)
        assert json.loads(result.stdout)["failures"] == []
        assert self.wait_all_ready() == []
        took = time.monotonic() - started
        assert self.credentials() == before
        listed = json.loads(self.citykit("outputs", "-o", "json").stdout)
        names = {
            n for value in listed.values() if isinstance(value, dict) for n in value["secrets"]
        }
        assert set(before) <= names, set(before) - names
        return took


def decoded(credentials: dict[str, dict[str, str]]) -> list[str]:
    return [base64.b64decode(v).decode() for data in credentials.values() for v in data.values()]


@pytest.fixture(scope="package")
def faults_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    require_kubectl()
    state = tmp_path_factory.mktemp("citykit-faults-state")
    environment = state / "faults.yaml"
    environment.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "citykit.io/v1alpha1",
                "kind": "Environment",
                "name": "faults",
                "extends": "dev",
                "cluster": {"name": CLUSTER_NAME},
            }
        )
    )
    with local_cluster(
        state,
        environment,
        "faults-only-passphrase",
        name=CLUSTER_NAME,
        unset=("KUBECONFIG", "CITYKIT_KUBECONFIG", "CITYKIT_PASSPHRASE"),
    ) as cluster:
        yield cluster, environment


@pytest.fixture(scope="package")
def city(faults_cluster: tuple[Cluster, Path]) -> City:
    cluster, environment = faults_cluster
    deployed = City(cluster, environment, Path(cluster.env["CITYKIT_STATE_DIR"]))
    result = deployed.citykit("up", "--yes", "-o", "json", timeout=1500)
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["failures"] == []
    assert deployed.wait_all_ready() == []
    assert deployed.credentials(), "the example city generates credentials"
    return deployed
