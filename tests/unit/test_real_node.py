"""The real node and the `local` environment without starting anything: the kubelet, containerd
and CNI configuration, the node's identity, and how the plan puts components with local images
on the real node (and only those)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from citykit import compiler
from citykit.cluster import addons
from citykit.cluster import certs
from citykit.cluster import node_config
from citykit.cluster import realnode
from citykit.cluster.local import LocalCluster
from citykit.cluster.node_host import APISERVER_PORT
from citykit.cluster.node_host import BRIDGE
from citykit.cluster.node_host import NODE_IP
from citykit.cluster.node_host import POD_CIDR
from citykit.conventions import POOL_LABEL
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.errors import ValidationFailed
from tests.conftest import EXAMPLE

PORTS = node_config.Ports(
    kubelet=10250, kubelet_healthz=10248, proxy_metrics=10249, proxy_healthz=10256
)


@pytest.fixture
def node(tmp_path: Path) -> realnode.RealNode:
    (tmp_path / "pki").mkdir()
    certs.generate(tmp_path / "pki", (NODE_IP,))
    node = realnode.RealNode(tmp_path, "citykit-local")
    node.write_config(APISERVER_PORT, PORTS)
    return node


def test_kubelet_runs_on_cgroup_v1_with_containerd(node: realnode.RealNode) -> None:
    config = yaml.safe_load((node.dir / "kubelet" / "config.yaml").read_text())
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["containerRuntimeEndpoint"] == f"unix://{node.containerd_socket}"
    assert config["address"] == NODE_IP and config["clusterDNS"] == [addons.DNS_SERVICE_IP]
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook"
    assert str(node.dir) in config["podLogsDir"]


def test_kubelet_identity_labels_and_taint(node: realnode.RealNode) -> None:
    args = node.kubelet_args()
    assert f"--hostname-override={node.name}" in args
    assert f"--register-with-taints={RUNTIME_LABEL}={RUNTIME}:NoSchedule" in args
    labels = next(a for a in args if a.startswith("--node-labels="))
    assert f"{RUNTIME_LABEL}={RUNTIME}" in labels and f"{POOL_LABEL}=general" in labels
    kubeconfig = yaml.safe_load((node.dir / "kubelet.kubeconfig").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"].endswith(f"{NODE_IP}:{APISERVER_PORT}")
    # The Node authorizer knows a kubelet by this certificate subject.
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((node.pki / "node.crt").read_bytes())
    assert cert.subject.rfc4514_string() == f"O=system:nodes,CN=system:node:{node.name}"


def test_containerd_config(node: realnode.RealNode) -> None:
    config = tomllib.loads((node.dir / "containerd" / "config.toml").read_text())
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    # Without it every sandbox fails on this host (no CAP_SYS_RESOURCE).
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == addons.PAUSE_REF
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert config["grpc"]["address"] == str(node.containerd_socket)
    assert all(str(node.dir) in config[key] for key in ("root", "state"))


def test_cni_bridge_without_masquerade(node: realnode.RealNode) -> None:
    config = json.loads((node.dir / "cni" / "net.d" / "10-citykit.conflist").read_text())
    bridge = config["plugins"][0]
    assert bridge["bridge"] == BRIDGE and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_CIDR, "gateway": NODE_IP}]]
    assert str(node.dir) in bridge["ipam"]["dataDir"]


def test_apiserver_is_reachable_from_pods_only_with_a_real_node(tmp_path: Path) -> None:
    cluster = LocalCluster("t")
    ports = {"etcd": 1, "kube-apiserver": APISERVER_PORT}
    real = cluster._apiserver_args(ports, real_node=True)
    assert f"--advertise-address={NODE_IP}" in real
    assert "--kubelet-preferred-address-types=InternalIP" in real
    simulated = cluster._apiserver_args(ports)
    assert "--advertise-address=127.0.0.1" in simulated and "--bind-address=127.0.0.1" in simulated


def test_addons_are_kube_system_pods_on_the_real_node() -> None:
    objects = addons.objects()
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["spec"]["clusterIP"] == addons.DNS_SERVICE_IP
    for workload in (o for o in objects if o["kind"] in ("Deployment", "DaemonSet")):
        assert workload["metadata"]["namespace"] == "kube-system"
        spec = workload["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {RUNTIME_LABEL: RUNTIME}
        assert all(c["imagePullPolicy"] == "Never" for c in spec["containers"])


def _pod_specs(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = []
    for obj in objects:
        spec = obj.get("spec", {})
        template = spec.get("jobTemplate", {}).get("spec", spec).get("template")
        if template:
            found.append((obj, template["spec"]))
    return found


def test_local_environment_runs_local_images_on_the_real_node() -> None:
    compiled = compiler.compile_city(EXAMPLE, "local")
    plan = compiled.plan
    assert plan.environment.cluster.real_node and plan.environment.local_images
    assert plan.by_capability("device-broker").name == "mosquitto"  # type: ignore[union-attr]
    real = [c for c in plan.components if c.local_images]
    assert {c.layer.key for c in real} >= {
        "sensing",
        "data",
        "common",
        "applications",
        "operations",
    }
    for unit in compiled.units:
        for obj, spec in _pod_specs(unit.objects):
            images = {c["image"] for c in spec["containers"]}
            if all(image.startswith("citykit.local/") for image in images):
                selector = {RUNTIME_LABEL: RUNTIME, POOL_LABEL: unit.component.cls.pool}
                assert spec["nodeSelector"] == selector, obj["metadata"]["name"]
                assert {c["imagePullPolicy"] for c in spec["containers"]} == {"Never"}
                assert spec["tolerations"][0]["key"] == RUNTIME_LABEL
            else:
                assert RUNTIME_LABEL not in spec["nodeSelector"], obj["metadata"]["name"]
                assert {c["imagePullPolicy"] for c in spec["containers"]} == {"Always"}


def test_dev_is_untouched_by_local_images() -> None:
    plan = compiler.plan(EXAMPLE, "dev")
    assert not any(c.local_images for c in plan.components)
    assert not any(
        ref.startswith("citykit.local/") for c in plan.components for ref in c.images.values()
    )


def test_real_node_needs_the_local_provider(tmp_path: Path) -> None:
    env = tmp_path / "env.yaml"
    env.write_text(
        "apiVersion: citykit.io/v1alpha1\nkind: Environment\nname: mine\nextends: staging\n"
        "cluster: {realNode: true}\n"
    )
    with pytest.raises(ValidationFailed) as error:
        compiler.plan(EXAMPLE, str(env))
    assert "realNode is for provider local" in str(error.value.problems[0])
