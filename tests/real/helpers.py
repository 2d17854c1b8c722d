"""The real tier's helpers: the CLI, the deployed city and its kubectl, the real node and its
pods, `citykit verify`, and PostgreSQL on the real node."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from citykit.cluster import realnode
from tests.conftest import EXAMPLE

CLI = [sys.executable, "-m", "citykit.cli"]
PROFILE = str(EXAMPLE)
CLUSTER = "citykit-local"  # environments/local.yaml cluster.name
# What the issue asks of the example city: real pods in at least this many components and layers.
MIN_COMPONENTS, MIN_LAYERS = 8, 5


def run(env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, check=False, env=env, timeout=timeout
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


class City:
    def __init__(self, env: dict[str, str], state: Path) -> None:
        self.env = env
        self.kubeconfig = state / "clusters" / CLUSTER / "kubeconfig"
        self.node = realnode.RealNode(state / "clusters" / CLUSTER, CLUSTER)

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def kubectl_input(self, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def get(self, *args: str) -> Any:
        result = self.kubectl("get", *args, "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def _real_node(city: City) -> dict[str, Any]:
    nodes = city.get("nodes")["items"]
    real = [
        n for n in nodes if "kwok.x-k8s.io/node" not in (n["metadata"].get("annotations") or {})
    ]
    assert len(real) == 1, [n["metadata"]["name"] for n in real]
    node: dict[str, Any] = real[0]
    return node


def _wait_real_pods_ready(city: City, timeout: float = 600) -> list[dict[str, Any]]:
    node = _real_node(city)["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while True:
        pods = [
            p
            for p in city.get("pods", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang")[
                "items"
            ]
            if p["spec"].get("nodeName") == node and p["status"].get("phase") != "Succeeded"
        ]
        not_ready = [p for p in pods if not _ready(p)]
        if (pods and not not_ready) or time.monotonic() > deadline:
            return pods
        time.sleep(5)


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def verify(city: City, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = run(city.env, "verify", "-p", PROFILE, "-e", "local", "-o", "json", *args)
    assert result.returncode in (0, 2), result.stdout[-3000:] + result.stderr[-3000:]
    checks: list[dict[str, Any]] = json.loads(result.stdout)["checks"]
    return result.returncode, checks


def _failures(checks: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{c['component']}: {c['check']}: {c['detail']}" for c in checks if c["status"] == "failed"
    )


DATA = "yuhang-data"
POSTGIS_PODS = "app.kubernetes.io/name=postgis,app.kubernetes.io/instance=yuhang"


def _psql(city: City, pod: str, sql: str) -> str:
    """SQL as the superuser over the pod's own socket (trusted locally, no password)."""
    result = city.kubectl(
        "exec", "-n", DATA, pod, "-c", "postgis", "--",
        "psql", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "city", "-Atc", sql,
    )  # fmt: skip
    assert result.returncode == 0, f"{pod}: {sql}: {result.stderr}"
    return result.stdout.strip()


def _service_target(city: City) -> str | None:
    """The pod behind the `postgis` Service: Patroni's leader writes its address there."""
    endpoints = city.get("endpoints", "-n", DATA, "postgis")
    addresses = [a["ip"] for s in endpoints.get("subsets") or [] for a in s.get("addresses", [])]
    pods = {
        p["status"].get("podIP"): p["metadata"]["name"]
        for p in city.get("pods", "-n", DATA, "-l", POSTGIS_PODS)["items"]
    }
    return pods.get(addresses[0]) if len(addresses) == 1 else None


def _until(what: str, check: Any, timeout: float) -> float:
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except AssertionError:
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(1)
