"""Cluster shaping without a cluster: node pools from profile and environment, the kind config,
the tool table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from citykit import compiler
from citykit import toolchain
from citykit.cluster import kind
from citykit.cluster import providers
from citykit.conventions import POOL_LABEL
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.conventions import ZONE_LABEL
from citykit.errors import ToolMissing
from citykit.images.node_image import IMAGE_REPOSITORY
from citykit.images.node_image import NODE_REF
from citykit.plan.node_pools import node_object
from tests.conftest import EXAMPLE
from tests.conftest import example_data


def test_nodes_follow_districts_and_environment_counts() -> None:
    plan = compiler.plan(EXAMPLE, "staging")
    nodes = providers.nodes_for(plan)
    counts = plan.environment.cluster.nodes
    pools = [n.pool for n in nodes]
    assert pools.count("general") == counts.general
    assert pools.count("gpu") == counts.gpu
    edge_zones = sorted(n.zone for n in nodes if n.pool == "edge")
    expected = sorted(d["slug"] for d in example_data()["districts"]) * counts.edge_per_district
    assert edge_zones == sorted(expected)


def test_district_edge_node_override(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = example_data()
    data["districts"][0]["edgeNodes"] = 3
    plan = compiler.plan(write_profile(data), "dev")
    first = data["districts"][0]["slug"]
    assert len([n for n in providers.nodes_for(plan) if n.zone == first]) == 3


def test_node_objects_carry_labels_taints_and_capacity() -> None:
    plan = compiler.plan(EXAMPLE, "dev")
    objects = [node_object(n) for n in providers.nodes_for(plan)]
    gpu = next(o for o in objects if o["metadata"]["labels"][POOL_LABEL] == "gpu")
    assert gpu["spec"]["taints"] == [{"key": POOL_LABEL, "value": "gpu", "effect": "NoSchedule"}]
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "8"
    general = next(o for o in objects if o["metadata"]["labels"][POOL_LABEL] == "general")
    assert general["spec"]["taints"] == [] and general["metadata"]["labels"][ZONE_LABEL] == "core"


def test_kind_config(tmp_path: Path) -> None:
    plan = compiler.plan(EXAMPLE, "prod")
    config = kind.config("city", providers.nodes_for(plan), plan, tmp_path)
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    control, *workers = config["nodes"]
    assert control["role"] == "control-plane"
    assert {m["containerPort"] for m in control["extraPortMappings"]} >= {80, 443}
    assert control["extraMounts"][0]["hostPath"] == str(tmp_path)
    patch = yaml.safe_load(control["kubeadmConfigPatches"][0])
    assert patch["apiServer"]["extraArgs"]["audit-log-maxage"] == "180"
    assert patch["apiServer"]["extraArgs"]["audit-policy-file"].startswith(kind.AUDIT_DIR_IN_NODE)
    assert len(workers) == len(providers.nodes_for(plan))
    edge = [w for w in workers if w["labels"][POOL_LABEL] == "edge"]
    assert {w["labels"][ZONE_LABEL] for w in edge} == {
        d["slug"] for d in example_data()["districts"]
    }
    taints = yaml.safe_load(edge[0]["kubeadmConfigPatches"][0])["nodeRegistration"]["taints"]
    assert taints == [{"key": POOL_LABEL, "value": "edge", "effect": "NoSchedule"}]
    mirror = plan.environment.registry_mirror
    assert mirror and mirror.split("/")[0] in config["containerdConfigPatches"][0]


def test_kind_config_points_at_the_node_image(tmp_path: Path) -> None:
    """Every node starts from citykit's node image, whose kubelet runs on cgroup v1 and whose
    kubeadm takes the control plane's images from the image itself."""
    plan = compiler.plan(EXAMPLE, "staging")
    config = kind.config("city", providers.nodes_for(plan), plan, tmp_path)
    assert config["nodes"] and {node["image"] for node in config["nodes"]} == {NODE_REF}
    (kubelet,) = [yaml.safe_load(patch) for patch in config["kubeadmConfigPatches"]]
    assert kubelet["kind"] == "KubeletConfiguration" and kubelet["failCgroupV1"] is False
    control = config["nodes"][0]
    (cluster,) = [yaml.safe_load(patch) for patch in control["kubeadmConfigPatches"]]
    assert cluster["kind"] == "ClusterConfiguration"
    assert cluster["imageRepository"] == IMAGE_REPOSITORY
    assert cluster["etcd"]["local"]["imageTag"] == toolchain.ETCD_VERSION
    assert cluster["dns"]["imageTag"] == toolchain.COREDNS_VERSION


def test_kind_without_mirror_has_no_containerd_patch(tmp_path: Path) -> None:
    plan = compiler.plan(EXAMPLE, "dev")
    assert "containerdConfigPatches" not in kind.config("c", [], plan, tmp_path)


def test_kind_missing_tools_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """kind is a built tool; the docker CLI is the machine's (tests/unit/test_container_engine.py
    has the engine)."""
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path))
    with pytest.raises(ToolMissing) as error:
        kind.create("c", [], None)
    assert "kind v" in error.value.message and "citykit tools install" in error.value.hint


def test_tool_versions_are_pinned_and_provider_matches_the_python_package() -> None:
    from importlib.metadata import version

    python_version = version("pulumi_kubernetes")  # 4.25.0a1768448096
    release, alpha = python_version.split("a")
    assert f"{release}-alpha.{alpha}" == toolchain.PROVIDER_VERSION
    # Every tool's Go module is in the repo.
    for tool in toolchain.TOOLS:
        assert (toolchain.TOOLS_SRC / tool.group / "go.mod").is_file(), tool.name
    go_mod = (toolchain.TOOLS_SRC / "kubernetes" / "go.mod").read_text()
    assert f"k8s.io/kubernetes {toolchain.KUBERNETES_VERSION}" in go_mod


def test_find_reports_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path))
    with pytest.raises(ToolMissing) as error:
        toolchain.find("pulumi")
    assert "citykit tools install" in str(error.value.hint)


def test_inotify_limits_are_only_raised(tmp_path: Path) -> None:
    from citykit.cluster import kind

    (tmp_path / "max_user_instances").write_text("128\n")
    (tmp_path / "max_user_watches").write_text("1048576\n")
    said: list[str] = []
    kind.raise_inotify_limits(said.append, tmp_path)
    assert (tmp_path / "max_user_instances").read_text() == "512\n"
    assert (tmp_path / "max_user_watches").read_text() == "1048576\n"  # never lowered
    assert len(said) == 1


def test_kind_workers_run_only_local_images_where_kwok_plays_the_rest(tmp_path: Path) -> None:
    """staging uses local images on kind: its workers carry the runtime label and taint (so only
    pods of local images land there) besides their pool's, and kind makes workers only for the
    pools where local images run (the example's are all general); kwok plays every pool. Without
    local images (prod) every pool member is a plain kind worker that runs everything."""
    staging = compiler.plan(EXAMPLE, "staging")
    assert staging.environment.simulates_the_rest
    nodes = providers.nodes_for(staging)
    _, *workers = kind.config("c", nodes, staging, tmp_path)["nodes"]
    assert len(workers) == len([n for n in nodes if n.pool == "general"]) < len(nodes)
    for worker in workers:
        assert worker["labels"][RUNTIME_LABEL] == RUNTIME
        assert worker["labels"][POOL_LABEL] == "general"
        (patch,) = worker["kubeadmConfigPatches"]
        taints = yaml.safe_load(patch)["nodeRegistration"]["taints"]
        assert taints == [{"key": RUNTIME_LABEL, "value": RUNTIME, "effect": "NoSchedule"}]
    prod = compiler.plan(EXAMPLE, "prod")
    assert not prod.environment.simulates_the_rest
    _, *workers = kind.config("c", providers.nodes_for(prod), prod, tmp_path)["nodes"]
    assert len(workers) == len(providers.nodes_for(prod))
    assert all(RUNTIME_LABEL not in w["labels"] for w in workers)


def test_a_pool_without_a_real_node_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster made when no local image ran in a pool, whose profile now runs one there: `up`
    says which pool lacks a real node and how to remake the cluster, instead of leaving the pods
    Pending."""
    from citykit.cluster import kind_images
    from citykit.errors import OperationFailed

    staging = compiler.plan(EXAMPLE, "staging")
    monkeypatch.setattr(kind_images.node_images, "require_built", lambda plan: None)
    monkeypatch.setattr(kind_images, "_real_nodes", lambda kubeconfig: {"c-worker": "edge"})
    with pytest.raises(OperationFailed) as error:
        kind_images.ensure_loaded(staging, Path("kubeconfig"), None, lambda _: None)  # type: ignore[arg-type]
    assert "no real node of the pool(s) general" in error.value.message
    assert "cluster down -e staging" in str(error.value.hint)


def test_local_images_go_to_the_real_nodes_of_their_pool() -> None:
    """On kind, each image the city's pods use goes to the real nodes of their pool only, the
    verify probe to the general pool, where probes run; a recipe no pod uses goes nowhere."""
    from citykit.cluster import kind_images
    from citykit.conventions import pod_templates
    from citykit.verify.probe import PROBE_TARGET

    compiled = compiler.compile_city(EXAMPLE, "staging")
    wanted = kind_images.wanted(compiled.plan)
    assert wanted[PROBE_TARGET] == {"general"}
    used = {
        (container["image"], template["spec"]["nodeSelector"][POOL_LABEL])
        for obj in compiled.objects()
        for template in pod_templates(obj)
        if RUNTIME_LABEL in template["spec"].get("nodeSelector", {})
        for container in template["spec"]["containers"] + template["spec"].get("initContainers", [])
    }
    assert {(t.ref, pool) for t, pools in wanted.items() for pool in pools} - used == {
        (PROBE_TARGET.ref, "general")
    }
    assert {ref for ref, _ in used} <= {t.ref for t in wanted}
    names = {(t.component, t.key) for t in wanted}
    assert ("postgis", "main") in names
    # staging runs VictoriaMetrics as a cluster of upstream images: its single-server recipe
    # is built for the plan but no pod uses it.
    assert ("victoria-metrics", "main") not in names


def test_layer_digests_read_the_archives_manifest(tmp_path: Path) -> None:
    import hashlib
    import io
    import json
    import tarfile

    from citykit.cluster import kind_images

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    layer = b"layer bytes"
    manifest = json.dumps({"layers": [{"digest": digest(layer)}]}).encode()
    index = json.dumps({"manifests": [{"digest": digest(manifest)}]}).encode()
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (
            ("index.json", index),
            (f"blobs/sha256/{digest(manifest)[7:]}", manifest),
            (f"blobs/sha256/{digest(layer)[7:]}", layer),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert kind_images.layer_digests(archive) == [digest(layer)]


def test_kwok_completes_the_volume_helpers_it_plays() -> None:
    """local-path-provisioner's helper pods on kwok's nodes would never finish (kwok completes
    only Job pods), and a claim of a simulated pod would never bind: a stage of their own, keyed
    on the label the node image's helper pod template carries."""
    from citykit.cluster.control_plane import kwok_stages
    from citykit.conventions import VOLUME_HELPER_LABEL
    from citykit.images.node_manifests import storage_objects

    stages = {s["metadata"]["name"]: s for s in yaml.safe_load_all(kwok_stages()) if s}
    helper = stages["volume-helper-complete"]["spec"]
    assert helper["selector"]["matchLabels"] == {VOLUME_HELPER_LABEL: "true"}
    assert "phase: Succeeded" in helper["next"]["statusTemplate"]
    config = next(o for o in storage_objects("p", "h") if o["kind"] == "ConfigMap")
    template = yaml.safe_load(config["data"]["helperPod.yaml"])
    assert template["metadata"]["labels"] == {VOLUME_HELPER_LABEL: "true"}
