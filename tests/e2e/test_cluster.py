"""The local cluster behaves like a real one: simulated nodes Ready with their pools and zones, the
real scheduler places pods, admission enforces Pod Security, RBAC denies, volumes bind."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from citykit import toolchain
from tests.clusters import CLI
from tests.clusters import Cluster

NAMESPACE = "e2e-restricted"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def apply(cluster: Cluster, *objects: dict[str, object], expect_ok: bool = True) -> str:
    result = cluster.kubectl(
        "apply", "-f", "-", input_text=yaml.safe_dump_all(objects), check=False
    )
    assert (result.returncode == 0) == expect_ok, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def restricted_namespace(kube_cluster: Cluster) -> Iterator[str]:
    apply(
        kube_cluster,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NAMESPACE,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        },
    )
    wait_for(
        lambda: (
            kube_cluster.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode
            == 0
        ),
        "the default ServiceAccount",
    )
    yield NAMESPACE
    kube_cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def restricted_pod_spec() -> dict[str, object]:
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "app",
                "image": "registry.example/app:1.0",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsUser": 1000,
                },
            }
        ],
    }


def test_nodes_ready_with_pool_and_zone_labels(kube_cluster: Cluster) -> None:
    nodes = kube_cluster.get_json("nodes")["items"]
    by_pool: dict[str, list[str]] = {}
    for node in nodes:
        labels = node["metadata"]["labels"]
        conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conditions.get("Ready") == "True", node["metadata"]["name"]
        by_pool.setdefault(labels["citykit.io/pool"], []).append(
            labels["topology.kubernetes.io/zone"]
        )
    assert {"general", "gpu", "edge"} <= set(by_pool)
    # The example city has three districts: one edge zone each (dev: one edge node per district).
    assert sorted(by_pool["edge"]) == ["cangqian", "liangzhu", "wuchang"]
    gpu = next(n for n in nodes if n["metadata"]["labels"]["citykit.io/pool"] == "gpu")
    assert {"key": "citykit.io/pool", "value": "gpu", "effect": "NoSchedule"} in gpu["spec"][
        "taints"
    ]


def test_deployment_in_restricted_namespace_runs_on_a_scheduled_node(
    kube_cluster: Cluster, restricted_namespace: str
) -> None:
    apply(
        kube_cluster,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": restricted_namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        **restricted_pod_spec(),
                        "nodeSelector": {"citykit.io/pool": "general"},
                    },
                },
            },
        },
    )
    kube_cluster.kubectl(
        "rollout", "status", "deployment/web", "-n", restricted_namespace, "--timeout=90s"
    )
    pods = kube_cluster.get_json("pods", "-n", restricted_namespace, "-l", "app=web")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"].startswith("general-")
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"


def test_privileged_pod_is_rejected_by_admission(
    kube_cluster: Cluster, restricted_namespace: str
) -> None:
    message = apply(
        kube_cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "root", "namespace": restricted_namespace},
            "spec": {
                "containers": [
                    {
                        "name": "root",
                        "image": "registry.example/app:1.0",
                        "securityContext": {"privileged": True},
                    }
                ]
            },
        },
        expect_ok=False,
    )
    assert "violates PodSecurity" in message and "restricted" in message


def test_service_account_without_binding_is_denied(
    kube_cluster: Cluster, restricted_namespace: str
) -> None:
    kube_cluster.kubectl("create", "serviceaccount", "nobody", "-n", restricted_namespace)
    subject = f"system:serviceaccount:{restricted_namespace}:nobody"
    result = kube_cluster.kubectl(
        "auth",
        "can-i",
        "list",
        "secrets",
        "-n",
        restricted_namespace,
        "--as",
        subject,
        check=False,
    )
    assert result.stdout.strip() == "no"
    assert result.returncode == 1


def test_statefulset_claims_bind_and_pods_get_ready(
    kube_cluster: Cluster, restricted_namespace: str
) -> None:
    apply(
        kube_cluster,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": restricted_namespace},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": restricted_pod_spec()},
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        },
    )
    kube_cluster.kubectl(
        "rollout", "status", "statefulset/db", "-n", restricted_namespace, "--timeout=90s"
    )
    claims = kube_cluster.get_json("pvc", "-n", restricted_namespace)["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["data-db-0", "data-db-1"]
    assert {c["status"]["phase"] for c in claims} == {"Bound"}
    assert {c["spec"]["storageClassName"] for c in claims} == {"citykit-local"}


def test_job_completes(kube_cluster: Cluster, restricted_namespace: str) -> None:
    apply(
        kube_cluster,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": restricted_namespace},
            "spec": {"template": {"spec": {**restricted_pod_spec(), "restartPolicy": "Never"}}},
        },
    )
    kube_cluster.kubectl(
        "wait",
        "--for=condition=Complete",
        "job/once",
        "-n",
        restricted_namespace,
        "--timeout=90s",
    )


def test_pulumi_runs_offline_from_the_cache() -> None:
    pulumi = toolchain.find("pulumi")
    result = subprocess.run(
        [str(pulumi), "version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PULUMI_SKIP_UPDATE_CHECK": "true", "HOME": "/tmp"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == toolchain.PULUMI_VERSION
    provider = toolchain.find("pulumi-resource-kubernetes")
    assert provider.is_file()


def _processes_of(state: str) -> list[str]:
    result = subprocess.run(["pgrep", "-af", state], capture_output=True, text=True, check=False)
    return [line for line in result.stdout.splitlines() if "pgrep" not in line]


def test_lifecycle_refuses_a_second_cluster_and_down_leaves_nothing(
    kube_cluster: Cluster, tmp_path: Path
) -> None:
    env = {**kube_cluster.env, "CITYKIT_STATE_DIR": str(tmp_path / "state")}
    cli = [*CLI, "cluster"]

    def citykit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], capture_output=True, text=True, check=False, env=env, timeout=180
        )

    first = citykit("up", "--name", "lifecycle")
    assert first.returncode == 0, first.stderr
    second = citykit("up", "--name", "lifecycle")
    assert second.returncode == 2 and "already running" in second.stderr
    status = json.loads(citykit("status", "--name", "lifecycle", "-o", "json").stdout)
    assert status["running"] and {c["alive"] for c in status["components"]} == {True}
    assert len(status["nodes"]) == 5 and all(n["ready"] for n in status["nodes"])
    assert _processes_of(str(tmp_path / "state"))
    down = citykit("down", "--name", "lifecycle")
    assert down.returncode == 0, down.stderr
    assert _processes_of(str(tmp_path / "state")) == []
    assert not (tmp_path / "state" / "clusters" / "lifecycle").exists()
