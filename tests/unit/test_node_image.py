"""The kind node image without building it (no root, no Go, no engine): what it carries for kind to
apply (the kube-router CNI, local-path storage), which images go to which nodes and the boot-time
import script that loads them, its cache key, and the CLI flag that builds it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from citykit import testing
from citykit import toolchain
from citykit.cluster.addons import NETPOL_REF
from citykit.cluster.addons import PAUSE_REF
from citykit.images import build
from citykit.images import node_image
from citykit.images import oci
from citykit.images.node_image import IMAGE_REPOSITORY
from citykit.images.node_manifests import CNI_CONF
from citykit.images.node_manifests import STORAGE_CLASS
from citykit.images.node_manifests import VOLUMES_DIR
from citykit.images.node_manifests import cni_objects
from citykit.images.node_manifests import storage_objects

# Refs unlike the real ones, so a test fails if a parameter is ignored for a constant.
PROVISIONER = "example.test/provisioner:1"
HELPER = "example.test/helper:2"


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def _mounts_have_volumes(pod: dict[str, Any]) -> None:
    """Every volumeMount of every container names a volume of the pod."""
    volumes = {volume["name"] for volume in pod.get("volumes", [])}
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, (container["name"], mount["name"])


def _shell_syntax_ok(script: str) -> None:
    result = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- the pod network ---------------------------------------------------------------------------
def test_cni_config_is_a_bridge_with_portmap_and_host_local_ipam() -> None:
    config_map = _one(cni_objects(), "ConfigMap")
    assert config_map["metadata"] == {"name": "kube-router-cfg", "namespace": "kube-system"}
    conf = json.loads(config_map["data"]["cni-conf.json"])
    assert conf["cniVersion"] and conf["name"] == "kube-router"
    bridge, portmap = conf["plugins"]
    assert bridge["type"] == "bridge" and bridge["isDefaultGateway"] is True
    # kube-router writes the node's podCIDR into the range itself: no subnet fixed here.
    assert bridge["ipam"] == {"type": "host-local"}
    assert portmap["type"] == "portmap" and portmap["capabilities"]["portMappings"] is True


def test_kube_router_runs_as_the_cni_on_every_node() -> None:
    objects = cni_objects()
    pod = _one(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["hostNetwork"] is True
    container = pod["containers"][0]
    assert container["image"] == NETPOL_REF and container["imagePullPolicy"] == "IfNotPresent"
    flags = container["command"][1:]
    for flag in ("--run-router=true", "--run-firewall=true", "--enable-cni=true"):
        assert flag in flags
    assert "--run-service-proxy=false" in flags  # kube-proxy stays kind's
    assert {"name": "KUBE_ROUTER_CNI_CONF_FILE", "value": CNI_CONF} in container["env"]
    _mounts_have_volumes(pod)
    # It annotates and patches nodes as the CNI (its pod subnet, BGP peers).
    rules = _one(objects, "ClusterRole")["rules"]
    assert any("nodes" in r["resources"] and "patch" in r["verbs"] for r in rules)


def test_the_init_container_copies_the_conf_from_the_config_map() -> None:
    pod = _one(cni_objects(), "DaemonSet")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    script = init["command"][-1]
    _shell_syntax_ok(script)
    assert f"cp /etc/kube-router/cni-conf.json {CNI_CONF}.tmp" in script
    mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert mounts == {"kube-router-cfg": "/etc/kube-router", "cni-conf-dir": "/etc/cni/net.d"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["kube-router-cfg"]["configMap"]["name"] == "kube-router-cfg"
    assert volumes["cni-conf-dir"]["hostPath"]["path"] == str(Path(CNI_CONF).parent)


def test_cni_objects_are_schema_valid() -> None:
    objects = cni_objects()
    assert testing.check_schemas(objects) == len(objects)


# -- storage -----------------------------------------------------------------------------------
def test_storage_class_is_the_default_local_path() -> None:
    objects = storage_objects(PROVISIONER, HELPER)
    storage_class = _one(objects, "StorageClass")
    assert storage_class["metadata"]["name"] == STORAGE_CLASS == "standard"
    annotations = storage_class["metadata"]["annotations"]
    assert annotations == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert storage_class["provisioner"] == "rancher.io/local-path"
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"


def test_provisioner_uses_the_helper_image_in_its_command_and_helper_pod() -> None:
    objects = storage_objects(PROVISIONER, HELPER)
    deployment = _one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    _mounts_have_volumes(pod)
    container = pod["containers"][0]
    assert container["image"] == PROVISIONER
    command = container["command"]
    assert command[command.index("--helper-image") + 1] == HELPER
    config = _one(objects, "ConfigMap")
    assert pod["volumes"][0]["configMap"]["name"] == config["metadata"]["name"]
    assert pod["serviceAccountName"] == _one(objects, "ServiceAccount")["metadata"]["name"]
    helper_pod = json.loads(config["data"]["helperPod.yaml"])
    assert [c["image"] for c in helper_pod["spec"]["containers"]] == [HELPER]
    paths = json.loads(config["data"]["config.json"])["nodePathMap"][0]["paths"]
    assert paths == [VOLUMES_DIR]
    for script in ("setup", "teardown"):
        _shell_syntax_ok(config["data"][script])
    testing.validate_strictly(helper_pod)


def test_storage_objects_are_schema_valid() -> None:
    objects = storage_objects(PROVISIONER, HELPER)
    assert testing.check_schemas(objects) == len(objects)


# -- the cluster's images and where they go ----------------------------------------------------
def test_system_image_refs_are_what_kubeadm_and_the_manifests_name() -> None:
    version = toolchain.KUBERNETES_VERSION
    assert node_image.KUBE_PROXY.ref == f"{IMAGE_REPOSITORY}/kube-proxy:{version}"
    assert node_image.HELPER.ref == node_image.HELPER_REF
    assert f"{IMAGE_REPOSITORY}/node:{version}" == node_image.NODE_REF


@pytest.mark.parametrize(
    ("ref", "control_plane"),
    [
        (f"{IMAGE_REPOSITORY}/kube-apiserver:v1.37.2", True),
        (f"{IMAGE_REPOSITORY}/kube-controller-manager:v1.37.2", True),
        (f"{IMAGE_REPOSITORY}/kube-scheduler:v1.37.2", True),
        (f"{IMAGE_REPOSITORY}/etcd:v3.7.3", True),
        (f"{IMAGE_REPOSITORY}/kube-proxy:v1.37.2", False),
        (f"{IMAGE_REPOSITORY}/coredns:v1.12.1", False),
        (node_image.PROVISIONER_REF, False),
        (node_image.HELPER_REF, False),
        (PAUSE_REF, False),
        (NETPOL_REF, False),
    ],
)
def test_control_plane_only(ref: str, control_plane: bool) -> None:
    assert node_image._control_plane_only(ref) is control_plane


def _fake_cluster_images(monkeypatch: pytest.MonkeyPatch, directory: Path) -> dict[str, Path]:
    """cluster_images with every builder replaced by an empty archive in `directory`, named
    after its ref."""
    refs: dict[Path, str] = {}

    def archive(ref: str) -> Path:
        path = directory / (ref.replace("/", "_").replace(":", "_") + ".tar")
        path.write_bytes(b"")
        refs[path] = ref
        return path

    class Built:
        def __init__(self, target: build.Target) -> None:
            self.target = target
            self.archive = archive(target.ref)

    monkeypatch.setattr(node_image, "_tool_image", lambda ref, tool, version: archive(ref))
    monkeypatch.setattr(build, "build_all", lambda targets: [Built(t) for t in targets])
    monkeypatch.setattr(
        node_image, "addon_archives", lambda say: [archive(PAUSE_REF), archive(NETPOL_REF)]
    )
    monkeypatch.setattr(node_image, "_archive_ref", refs.__getitem__)
    return node_image.cluster_images(lambda text: None)


def test_cluster_images_name_kubeadms_images(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    images = _fake_cluster_images(monkeypatch, tmp_path)
    version = toolchain.KUBERNETES_VERSION
    expected_control_plane = {
        *(f"{IMAGE_REPOSITORY}/{name}:{version}" for name in node_image.CONTROL_PLANE),
        f"{IMAGE_REPOSITORY}/etcd:{toolchain.ETCD_VERSION}",
    }
    assert {ref for ref in images if node_image._control_plane_only(ref)} == expected_control_plane
    assert {ref for ref in images if not node_image._control_plane_only(ref)} == {
        f"{IMAGE_REPOSITORY}/kube-proxy:{version}",
        f"{IMAGE_REPOSITORY}/coredns:{toolchain.COREDNS_VERSION}",
        node_image.PROVISIONER_REF,
        node_image.HELPER_REF,
        PAUSE_REF,
        NETPOL_REF,
    }
    assert list(images) == sorted(images)


def test_archive_ref_reads_the_oci_index(tmp_path: Path) -> None:
    content = tmp_path / "hello"
    content.write_text("hello\n")
    out = tmp_path / "image.tar"
    oci.write_image(out, "example.test/hello:1", [("/hello", content)], oci.ImageConfig())
    assert node_image._archive_ref(out) == "example.test/hello:1"


def _written_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    archives = tmp_path / "archives"
    archives.mkdir()
    images = _fake_cluster_images(monkeypatch, archives)
    root = tmp_path / "root"
    # There before: the Debian root's systemd directory, kind's base files (kind/bin).
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "kind/bin").mkdir(parents=True)
    node_image._write_kind_files(root, images)
    return root, images


def test_kind_files_split_images_by_node_role(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, images = _written_root(monkeypatch, tmp_path)
    assert (root / "kind/version").read_text() == toolchain.KUBERNETES_VERSION
    placed = {
        where: sorted(p.name for p in (root / "kind/images" / where).iterdir())
        for where in ("every-node", "control-plane")
    }
    assert placed["control-plane"] == sorted(
        path.name for ref, path in images.items() if node_image._control_plane_only(ref)
    )
    assert placed["every-node"] == sorted(
        path.name for ref, path in images.items() if not node_image._control_plane_only(ref)
    )
    manifests = root / "kind/manifests"
    cni = list(yaml.safe_load_all((manifests / "default-cni.yaml").read_text()))
    assert cni == cni_objects()
    storage = list(yaml.safe_load_all((manifests / "default-storage.yaml").read_text()))
    assert storage == storage_objects(node_image.PROVISIONER_REF, node_image.HELPER_REF)
    unit = (root / "etc/systemd/system" / node_image.IMPORT_UNIT).read_text()
    assert "ExecStart=/kind/bin/import-images.sh" in unit and "Before=kubelet.service" in unit
    dropin = (root / "etc/systemd/system/kubelet.service.d/20-citykit-images.conf").read_text()
    assert f"After={node_image.IMPORT_UNIT}" in dropin
    script = root / "kind/bin/import-images.sh"
    assert script.stat().st_mode & stat.S_IXUSR


def test_import_and_setup_scripts_parse() -> None:
    _shell_syntax_ok(node_image._IMPORT_SCRIPT)
    _shell_syntax_ok(node_image._SYSTEMD_SETUP)


@pytest.mark.parametrize(
    ("hostname", "control_plane"),
    [
        ("city-control-plane", True),
        ("city-control-plane2", True),
        ("city-worker", False),
        ("city-worker7", False),
    ],
)
def test_import_script_imports_by_node_role(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hostname: str, control_plane: bool
) -> None:
    """The script as written into the image, run with a fake `ctr` and `hostname`, its
    /kind/images pointed at the temporary root."""
    root, images = _written_root(monkeypatch, tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ctr.log"
    fakes = {
        "hostname": f"#!/bin/sh\necho {hostname}\n",
        "ctr": f'#!/bin/sh\necho "$@" >> {log}\n',
    }
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    script = tmp_path / "import-images.sh"
    text = (root / "kind/bin/import-images.sh").read_text()
    script.write_text(text.replace("/kind/images", str(root / "kind/images")))
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"}
    result = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert all(
        call.startswith("--namespace k8s.io images import --no-unpack --all-platforms ")
        for call in calls
    )
    imported = sorted(Path(call.split()[-1]).name for call in calls)
    expected = sorted(
        path.name
        for ref, path in images.items()
        if control_plane or not node_image._control_plane_only(ref)
    )
    assert imported == expected


# -- the cache key -----------------------------------------------------------------------------
def test_cache_key_is_deterministic_and_follows_the_archives() -> None:
    images = {
        f"{IMAGE_REPOSITORY}/etcd:v1": Path("/cache/kind-etcd-aaaa.tar"),
        PAUSE_REF: Path("/cache/pause-bbbb.tar"),
    }
    key = node_image.cache_key(images)
    assert len(key) == 12 and int(key, 16) >= 0
    assert node_image.cache_key(dict(reversed(list(images.items())))) == key
    # Where the cache is does not matter, which archive (name: tool version and recipe) does.
    moved = {ref: Path("/elsewhere") / path.name for ref, path in images.items()}
    assert node_image.cache_key(moved) == key
    changed = images | {PAUSE_REF: Path("/cache/pause-cccc.tar")}
    assert node_image.cache_key(changed) != key
    added = images | {NETPOL_REF: Path("/cache/kube-router-dddd.tar")}
    assert node_image.cache_key(added) != key


# -- the CLI -----------------------------------------------------------------------------------
def test_images_build_help_names_the_node_image(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "COLUMNS": "200",
        "CITYKIT_CACHE_DIR": str(tmp_path / "cache"),
        "CITYKIT_STATE_DIR": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "citykit.cli", "images", "build", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--node-image" in result.stdout and "kind node image" in result.stdout
