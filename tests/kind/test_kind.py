"""The kind tier: `citykit cluster up -e staging` makes a real kind cluster on this machine (the
container engine, kind and the node image all built here by `citykit tools install` and
`citykit images build --node-image`), whose nodes run real containers: pods on different nodes
reach each other through the pod network and a Service, cluster DNS answers, a NetworkPolicy
blocks, a claim of the default StorageClass is writable. Beside kind's nodes, kwok plays nodes of
the same pools for the components whose upstream images this machine cannot pull.
`citykit up -e staging` then deploys the example city: every component with a local image runs
in real containers on kind's nodes, and `citykit verify` passes. `citykit cluster down` leaves no
container, network or volume in the engine.

One cluster for the module, under its own name (an environment file extending staging), so a
user's own staging cluster is never touched. It runs in the faults tier's worker, after that
tier (tests/conftest.py); missing tools are a failure, never a skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from citykit import compiler
from citykit import toolchain
from citykit.cluster import engine
from citykit.cluster import kind
from citykit.cluster import providers
from citykit.cluster.kind import state_dir
from citykit.conventions import LONG_RUNNING_KINDS
from citykit.conventions import NODE_TYPE_LABEL
from citykit.conventions import POOL_LABEL
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.conventions import ZONE_LABEL
from citykit.conventions import pod_templates
from citykit.images import build
from citykit.verify.probe import PROBE_TARGET
from tests.conftest import EXAMPLE

# Also an end-to-end test: `make e2e` (`-m e2e`) runs it.
pytestmark = [pytest.mark.kind, pytest.mark.e2e]

CLI = [sys.executable, "-m", "citykit.cli"]
NAME = "citykit-kind-tier"
NAMESPACE = "kind-tier"
PORT = 8080


def _citykit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Generous: deploying the city onto eight nodes beside another tier's cluster took over
    # 20 minutes on two cores, against 6 alone.
    result = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, check=False, env=env, timeout=2700
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


class Kind:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
        )

    def pod_phase(self, name: str, timeout: float = 240) -> str:
        """Wait for a run-to-completion pod to end; its phase (Succeeded or Failed)."""
        deadline = time.monotonic() + timeout
        phase = ""
        while time.monotonic() < deadline:
            phase = self.kubectl(
                "-n", NAMESPACE, "get", "pod", name, "-o", "jsonpath={.status.phase}"
            )
            if phase in ("Succeeded", "Failed"):
                return phase
            time.sleep(2)
        logs = self.kubectl("-n", NAMESPACE, "describe", "pod", name, check=False)
        raise AssertionError(f"pod {name} still {phase!r} after {timeout:.0f}s:\n{logs[-3000:]}")

    def logs(self, name: str) -> str:
        return self.kubectl("-n", NAMESPACE, "logs", name, check=False)


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> str:
    """staging under the tier's own cluster name, with a Pulumi backend of its own (the state of
    an earlier run, whose cluster is gone, would make `up` refuse to recreate its data)."""
    directory = tmp_path_factory.mktemp("kind-tier")
    path = directory / "kind-tier.yaml"
    path.write_text(
        "apiVersion: citykit.io/v1alpha1\nkind: Environment\nname: kind-tier\n"
        f"extends: staging\ncluster:\n  name: {NAME}\n"
        f"engine:\n  backendUrl: file://{directory / 'backend'}\n"
    )
    return str(path)


@pytest.fixture(scope="module")
def kind_cluster(environment: str) -> Iterator[Kind]:
    env = {**os.environ}
    started = time.monotonic()
    _citykit("cluster", "up", "-p", str(EXAMPLE), "-e", environment, env=env)
    print(f"KIND cluster up: {time.monotonic() - started:.1f}s")
    try:
        yield Kind(state_dir(NAME) / "kubeconfig")
    finally:
        started = time.monotonic()
        subprocess.run(
            [*CLI, "cluster", "down", "-p", str(EXAMPLE), "-e", environment],
            env=env,
            check=False,
            capture_output=True,
            timeout=600,
        )
        print(f"KIND cluster down: {time.monotonic() - started:.1f}s")


def test_nodes_are_ready_with_the_profiles_zones(kind_cluster: Kind, environment: str) -> None:
    """kwok's nodes match the profile's pools and zones; kind's workers are those of the pools
    where local images run (the example's: general) and carry the runtime label (and taint) that
    only pods of local images select."""
    nodes = json.loads(kind_cluster.kubectl("get", "nodes", "-o", "json"))["items"]
    target = providers.target(EXAMPLE, environment, None, None)
    expected, real = target.nodes, kind.real_workers(target.nodes, target.plan)
    assert {spec.pool for spec in real} == {"general"} and len(real) >= 2
    assert len(nodes) == len(real) + len(expected) + 1  # kind's, kwok's, the control plane
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]
    workers = [n for n in nodes if not n["metadata"]["name"].endswith("control-plane")]
    for simulated, specs in ((False, real), (True, expected)):
        want = sorted((spec.labels[ZONE_LABEL], spec.labels[POOL_LABEL]) for spec in specs)
        group = [n for n in workers if (NODE_TYPE_LABEL in n["metadata"]["labels"]) == simulated]
        labels = [n["metadata"]["labels"] for n in group]
        assert sorted((x[ZONE_LABEL], x[POOL_LABEL]) for x in labels) == want
        assert all((x.get(RUNTIME_LABEL) == RUNTIME) != simulated for x in labels)
    # `citykit cluster status` shows the same: kwok alive, which nodes run containers.
    status = json.loads(
        _citykit("cluster", "status", "-e", environment, "-o", "json", env={**os.environ}).stdout
    )
    assert status["provider"] == "kind" and status["running"], status
    assert [(c["component"], c["alive"]) for c in status["components"]] == [("kwok", True)]
    runs = sorted(n["runs"] for n in status["nodes"] if n["ready"])
    assert runs == ["containers"] * (len(real) + 1) + ["simulated"] * len(expected)


def _pod(name: str, node: str, script: str, image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            # Through the scheduler (not nodeName), which binds WaitForFirstConsumer claims.
            "nodeSelector": {"kubernetes.io/hostname": node},
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            **spec,
        },
    }


def test_real_containers_network_dns_policy_and_storage(kind_cluster: Kind) -> None:
    """The probe image (built here, loaded into the nodes with `kind load`) serves on one node
    and is reached from another node by pod IP and by Service name; then a NetworkPolicy shuts
    the server off; a claim of the default class is written and read back."""
    archive = build.build(PROBE_TARGET).archive
    holder = engine.holding(lambda _: None)
    assert holder is not None
    loaded = subprocess.run(
        [str(toolchain.find("kind")), "load", "image-archive", str(archive), "--name", NAME],
        capture_output=True,
        text=True,
        check=False,
        env=holder.env(),
        timeout=600,
    )
    assert loaded.returncode == 0, loaded.stderr
    image = PROBE_TARGET.ref
    server_node, client_node = f"{NAME}-worker", f"{NAME}-worker2"
    kind_cluster.kubectl("create", "namespace", NAMESPACE)
    # A pod is refused until the controller-manager has given the namespace its default
    # ServiceAccount, which a loaded machine takes seconds to do.
    deadline = time.monotonic() + 120
    while (
        kind_cluster.kubectl(
            "-n", NAMESPACE, "get", "serviceaccount", "default", check=False
        ).strip()
        == ""
        and time.monotonic() < deadline
    ):
        time.sleep(1)
    kind_cluster.apply(
        _pod("server", server_node, f"while true; do echo hello | nc -l -N {PORT}; done", image),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "server", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": PORT}]},
        },
    )
    kind_cluster.kubectl(
        "-n", NAMESPACE, "wait", "--for=condition=Ready", "pod/server", "--timeout=180s"
    )
    server_ip = kind_cluster.kubectl(
        "-n", NAMESPACE, "get", "pod", "server", "-o", "jsonpath={.status.podIP}"
    )
    fetch = (
        f"for i in 1 2 3 4 5 6 7 8 9 10; do "
        f"  a=$(nc -w 3 {server_ip} {PORT} </dev/null) && "
        f"  b=$(nc -w 3 server.{NAMESPACE}.svc.cluster.local {PORT} </dev/null) && "
        f'  [ "$a" = hello ] && [ "$b" = hello ] && echo reached && exit 0; sleep 3; '
        f"done; exit 1"
    )
    kind_cluster.apply(_pod("client", client_node, fetch, image))
    assert kind_cluster.pod_phase("client") == "Succeeded", kind_cluster.logs("client")

    kind_cluster.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-server", "namespace": NAMESPACE},
            "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"]},
        }
    )
    blocked = (
        f"for i in 1 2 3 4 5 6 7 8 9 10; do "
        f"  nc -z -w 3 {server_ip} {PORT} || {{ echo blocked; exit 0; }}; sleep 3; "
        f"done; exit 1"
    )
    kind_cluster.apply(_pod("client-denied", client_node, blocked, image))
    assert kind_cluster.pod_phase("client-denied") == "Succeeded", kind_cluster.logs(
        "client-denied"
    )

    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    }
    writer = _pod(
        "writer",
        server_node,
        "echo kept > /data/file && cat /data/file",
        image,
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    writer["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    kind_cluster.apply(claim, writer)
    assert kind_cluster.pod_phase("writer") == "Succeeded", kind_cluster.logs("writer")
    assert kind_cluster.logs("writer").strip() == "kept"


def test_the_city_runs_for_real_and_verify_passes(kind_cluster: Kind, environment: str) -> None:
    """`citykit up` loads the local images into kind's general nodes and deploys; every
    component with a local image is Ready in real containers there, the rest on kwok's nodes;
    `citykit verify` passes (its checks of simulated components are skipped, and say so)."""
    env = {**os.environ}
    city = ("-p", str(EXAMPLE), "-e", environment)
    _citykit("images", "build", *city, env=env)
    started = time.monotonic()
    _citykit("up", *city, "--yes", env=env)
    print(f"KIND city up: {time.monotonic() - started:.1f}s")
    status = json.loads(_citykit("status", *city, "--output", "json", env=env).stdout)
    rows = {row["component"]: row for row in status}
    # The components whose long-running pods all go to the real nodes (every image built here).
    local = {
        unit.component.name
        for unit in compiler.compile_city(EXAMPLE, environment).units
        if (
            specs := [
                t["spec"]
                for o in unit.objects
                if o["kind"] in LONG_RUNNING_KINDS
                for t in pod_templates(o)
            ]
        )
        and all(RUNTIME_LABEL in spec.get("nodeSelector", {}) for spec in specs)
    }
    assert local, "staging runs no component from a local image"
    for name, row in rows.items():
        assert row["state"] == "ready", row
        if row["runs"] != "-":
            assert row["runs"] == ("real" if name in local else "simulated"), row
    started = time.monotonic()
    verified = _citykit("verify", *city, "--output", "json", env=env)
    print(f"KIND verify: {time.monotonic() - started:.1f}s")
    outcomes = json.loads(verified.stdout)["checks"]
    passed = {o["component"] for o in outcomes if o["status"] == "passed"}
    assert local <= passed, sorted(local - passed)


def test_cluster_down_leaves_nothing_in_the_engine(kind_cluster: Kind, environment: str) -> None:
    """Last in the module: takes the cluster down itself, then looks into the engine (citykit's
    own is started again just to look, and stopped)."""
    _citykit("cluster", "down", "-p", str(EXAMPLE), "-e", environment, env={**os.environ})
    running = engine.working_engine(lambda _: None)
    try:
        docker = engine.docker_cli()
        env = running.env()

        def listing(*args: str) -> list[str]:
            out = subprocess.run(
                [docker, *args], capture_output=True, text=True, check=True, env=env
            ).stdout
            return [line for line in out.splitlines() if line.strip()]

        assert listing("ps", "-a", "-q") == []
        assert listing("volume", "ls", "-q") == []
        assert set(listing("network", "ls", "--format", "{{.Name}}")) <= {"bridge", "host", "none"}
    finally:
        engine.release(running, lambda _: None)
