"""The kind node image, built here from Debian packages and Go modules (`citykit images build
--node-image`), as kind's images/base Dockerfile and pkg/build/nodeimage assemble theirs:

- kind's base: a bookworm root with systemd, containerd (Debian's), the CNI plugins, iptables and
  nftables, kind's own files (entrypoint, systemd units, containerd config) taken from the kind Go
  module, runc from its Go module;
- kubelet, kubeadm and kubectl from the pinned Kubernetes module, `/kind/version`;
- the images the cluster runs, as OCI archives under /kind/images that a oneshot unit imports into
  containerd before the kubelet starts (kind's build imports them into the image instead, which
  needs a running engine at build time; the per-node cost is the same, kind copies /var per node).
  Control-plane images hold their binary and the shared libraries it links; kube-proxy's is a
  Debian root with iptables. kubeadm is pointed at them by `IMAGE_REPOSITORY` (the kind config).

The archive is cached by content: every piece's version and recipe is in its key and in the
image's labels."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from citykit import go_build
from citykit import toolchain
from citykit.cluster.addon_images import binary_archive
from citykit.cluster.addon_images import build_images as addon_archives
from citykit.cluster.addons import PAUSE_REF
from citykit.contract.component import LocalImage
from citykit.errors import OperationFailed
from citykit.images import build
from citykit.images import debian
from citykit.images import oci
from citykit.images.build import images_dir
from citykit.images.node_manifests import cni_objects
from citykit.images.node_manifests import storage_objects

RECIPE_VERSION = "3"  # bump when this module's recipe changes
IMAGE_REPOSITORY = "citykit.local/kind"
NODE_REF = f"{IMAGE_REPOSITORY}/node:{toolchain.KUBERNETES_VERSION}"
PROVISIONER_REF = f"{IMAGE_REPOSITORY}/local-path-provisioner:{toolchain.LOCAL_PATH_VERSION}"
HELPER_REF = f"{IMAGE_REPOSITORY}/local-path-helper:bookworm"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
NODE_BINARIES = ("kubelet", "kubeadm", "kubectl")
# kind's base image packages (images/base/Dockerfile) from bookworm, with Debian's containerd and
# CNI plugins in place of kind's own builds.
PACKAGES = (
    *("systemd", "containerd", "containernetworking-plugins", "conntrack", "iptables"),
    *("nftables", "iproute2", "ethtool", "util-linux", "mount", "kmod", "libseccomp2", "pigz"),
    *("e2fsprogs", "bash", "ca-certificates", "procps", "jq"),
)
IMPORT_UNIT = "citykit-images.service"

KUBE_PROXY = build.Target(
    "kind",
    "kube-proxy",
    LocalImage(
        version=toolchain.KUBERNETES_VERSION,
        source=f"go:k8s.io/kubernetes@{toolchain.KUBERNETES_VERSION} "
        "+ debian:bookworm iptables conntrack nftables",
        debian=("iptables", "conntrack", "nftables", "ipset"),
        tools=(("/usr/local/bin/kube-proxy", "kube-proxy"),),
        user=0,
        entrypoint=("/usr/local/bin/kube-proxy",),
        check="/usr/local/bin/kube-proxy --version",
    ),
    None,
    system=True,
)
# local-path-provisioner's helper pod makes and removes volume directories with /bin/sh.
HELPER = build.Target(
    "kind",
    "local-path-helper",
    LocalImage(version="bookworm", source="debian:bookworm", user=0, check="mkdir -p /tmp/x"),
    None,
    system=True,
)


def _kind_files() -> Path:
    module = go_build.module_dir("kind", "sigs.k8s.io/kind", toolchain.KIND_VERSION)
    return module / "images" / "base" / "files"


def _libraries(binary: Path) -> list[Path]:
    """The shared libraries a dynamically linked binary loads (ldd), the loader included."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    found: list[Path] = []
    for line in result.stdout.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                found.append(Path(part))
                break
    return sorted(set(found))


def _tool_image(ref: str, tool: str, version: str) -> Path:
    """One built tool as an image (with the libraries it links, unless static), run as root as
    kubeadm's static pods expect: they read the cluster's keys under /etc/kubernetes/pki."""
    libraries = [] if toolchain.BY_NAME[tool].static else _libraries(toolchain.find(tool))
    return binary_archive(ref, tool, f"/usr/local/bin/{tool}", version, "0:0", libraries)


def cluster_images(say: Callable[[str], None]) -> dict[str, Path]:
    """Every image the node imports at boot, by reference: built when missing, cached."""
    version = toolchain.KUBERNETES_VERSION
    archives = {
        f"{IMAGE_REPOSITORY}/{name}:{version}": _tool_image(
            f"{IMAGE_REPOSITORY}/{name}:{version}", name, version
        )
        for name in CONTROL_PLANE
    }
    etcd_ref = f"{IMAGE_REPOSITORY}/etcd:{toolchain.ETCD_VERSION}"
    archives[etcd_ref] = _tool_image(etcd_ref, "etcd", toolchain.ETCD_VERSION)
    coredns_ref = f"{IMAGE_REPOSITORY}/coredns:{toolchain.COREDNS_VERSION}"
    archives[coredns_ref] = _tool_image(coredns_ref, "coredns", toolchain.COREDNS_VERSION)
    archives[PROVISIONER_REF] = _tool_image(
        PROVISIONER_REF, "local-path-provisioner", toolchain.LOCAL_PATH_VERSION
    )
    say("building the kind node's system images (kube-proxy, local-path helper)")
    for built in build.build_all((KUBE_PROXY, HELPER)):
        archives[built.target.ref] = built.archive
    # pause, CoreDNS of the real node (unused here) and kube-router, shared with the real node.
    for archive in addon_archives(say):
        archives[_archive_ref(archive)] = archive
    return dict(sorted(archives.items()))


def _archive_ref(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        index = json.load(member)
    return str(index["manifests"][0]["annotations"][oci.ANNOTATION_REF])


def cache_key(images: dict[str, Path]) -> str:
    document = {
        "recipe": RECIPE_VERSION,
        "base": [debian.SUITE, debian.BASE_VERSION],
        "packages": PACKAGES,
        "kind": toolchain.KIND_VERSION,
        "tools": [toolchain.BY_NAME[name].home.name for name in (*NODE_BINARIES, "runc", "crictl")],
        "images": {ref: path.name for ref, path in images.items()},
        "manifests": [cni_objects(), storage_objects(PROVISIONER_REF, HELPER_REF)],
    }
    text = json.dumps(document, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def archive_path(images: dict[str, Path]) -> Path:
    return images_dir() / f"kind-node-{cache_key(images)}.tar"


@dataclass(frozen=True)
class NodeImage:
    ref: str
    archive: Path
    key: str  # the recipe's cache key, also the image's `io.citykit.recipe` label
    state: Literal["cached", "built"]
    labels: dict[str, str]


def build_node_image(say: Callable[[str], None]) -> NodeImage:
    """The node image's OCI archive: cached, or built now."""
    images = cluster_images(say)
    key = cache_key(images)
    out = archive_path(images)
    if out.is_file():
        return NodeImage(NODE_REF, out, key, "cached", {})
    debian.need_root()
    logs = images_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "kind-node.log"
    log.write_text(f"# {NODE_REF}\n")
    say(f"building the kind node image {NODE_REF} (a few minutes; log: {log})")
    source = debian.archive()
    base = debian.base(log, source)
    work = Path(tempfile.mkdtemp(prefix=".build-kind-node-", dir=out.parent))
    try:
        root = work / "root"
        debian.run(["cp", "-a", str(base), str(root)], log)
        labels = _assemble(root, source, images, log) | {"io.citykit.recipe": key}
        oci.write_image(
            out,
            NODE_REF,
            root,
            oci.ImageConfig(
                entrypoint=("/usr/local/bin/entrypoint", "/sbin/init"),
                user="0:0",
                env=(("PATH", debian.PATH), ("container", "docker")),
                labels=tuple(sorted(labels.items())),
                stop_signal="SIGRTMIN+3",
                source="sigs.k8s.io/kind/images/base + k8s.io/kubernetes",
                version=toolchain.KUBERNETES_VERSION,
            ),
        )
    finally:
        debian.remove_root(work)
    for old in images_dir().glob("kind-node-*.tar"):
        if old != out:
            old.unlink()
    return NodeImage(NODE_REF, out, key, "built", labels)


def _copy_tree(source: Path, target: Path, mode: int) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            destination.chmod(mode)


def _assemble(
    root: Path, source: debian.Archive, images: dict[str, Path], log: Path
) -> dict[str, str]:
    debian.configure_apt(root, source)
    with debian.proc_mounted(root):
        debian.in_root(root, ["apt-get", "update", "-qq"], log)
        debian.in_root(root, ["apt-get", "install", "-y", "-qq", *PACKAGES], log)
        versions = build._dpkg_versions(root, PACKAGES)
        debian.clean(root)
        files = _kind_files()
        _copy_tree(files / "usr" / "local" / "bin", root / "usr/local/bin", 0o755)
        _copy_tree(files / "kind", root / "kind", 0o644)
        _copy_tree(files / "kind" / "bin", root / "kind/bin", 0o755)
        _copy_tree(files / "etc", root / "etc", 0o644)
        _place_binaries(root, log)
        _containerd_config(root)
        _write_kind_files(root, images)
        debian.in_root(root, ["/bin/sh", "-ec", _SYSTEMD_SETUP], log)
    debian.clean_scratch(root)
    return {
        "io.citykit.debian": ",".join(versions),
        "io.citykit.kind": toolchain.KIND_VERSION,
        "io.citykit.kubernetes": toolchain.KUBERNETES_VERSION,
        "io.citykit.runc": toolchain.BY_NAME["runc"].version,
        "io.citykit.images": ",".join(images),
    }


def _place_binaries(root: Path, log: Path) -> None:
    for name in NODE_BINARIES:
        shutil.copyfile(toolchain.find(name), root / "tmp" / name)
        debian.in_root(
            root, ["install", "-D", "-m", "0755", f"/tmp/{name}", f"/usr/bin/{name}"], log
        )
    shutil.copyfile(toolchain.find("crictl"), root / "tmp" / "crictl")
    debian.in_root(root, ["install", "-m", "0755", "/tmp/crictl", "/usr/local/bin/crictl"], log)
    shutil.copyfile(toolchain.find("runc"), root / "tmp" / "runc")
    debian.in_root(root, ["install", "-D", "-m", "0755", "/tmp/runc", "/usr/local/sbin/runc"], log)
    # kind's units start /usr/local/bin/containerd; Debian installs it in /usr/bin.
    for name in ("containerd", "ctr", "containerd-shim-runc-v2"):
        debian.in_root(root, ["ln", "-sf", f"/usr/bin/{name}", f"/usr/local/bin/{name}"], log)
    # containerd looks for CNI plugins in /opt/cni/bin; Debian ships them in /usr/lib/cni.
    debian.in_root(
        root, ["/bin/sh", "-ec", "mkdir -p /opt/cni && ln -sfn /usr/lib/cni /opt/cni/bin"], log
    )


def _containerd_config(root: Path) -> None:
    config = root / "etc/containerd/config.toml"
    text = config.read_text()
    text = text.replace(
        'sandbox_image = "registry.k8s.io/pause:3.10"', f'sandbox_image = "{PAUSE_REF}"'
    )
    # This host kind lacks CAP_SYS_RESOURCE even in privileged containers, so runc cannot
    # lower a pod's oom_score_adj below the node's (the real node's containerd does the same).
    text = text.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true")
    if PAUSE_REF not in text or "restrict_oom_score_adj = true" not in text:
        raise OperationFailed("kind's containerd config no longer has the settings changed here")
    config.write_text(text)
    # kind's base runtime spec: containerd's default, with the hook that mounts product_uuid and
    # without rlimits (images/base/Dockerfile).
    result = subprocess.run(
        ["chroot", str(root), "ctr", "oci", "spec"],
        capture_output=True,
        text=True,
        env=debian.chroot_env(),
        check=True,
    )
    spec = json.loads(result.stdout)
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append(
        {"path": "/kind/bin/mount-product-files.sh"}
    )
    spec["process"].pop("rlimits", None)
    (root / "etc/containerd/cri-base.json").write_text(json.dumps(spec, indent=2) + "\n")


_IMPORT_SERVICE = """[Unit]
Description=Import the cluster's images (citykit's kind node image)
After=containerd.service
Requires=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/kind/bin/import-images.sh

[Install]
WantedBy=multi-user.target
"""
# Every node imports what every node runs; the control-plane images only where kubeadm runs the
# control plane (kind names those nodes <cluster>-control-plane[N]): eight nodes of a staging
# city would otherwise hold 2.6 GB of images they never start.
_IMPORT_SCRIPT = """#!/bin/sh
set -e
dirs=/kind/images/every-node
case "$(hostname)" in
  *-control-plane*) dirs="$dirs /kind/images/control-plane" ;;
esac
for dir in $dirs; do
  for archive in "$dir"/*.tar; do
    ctr --namespace k8s.io images import --no-unpack --all-platforms "$archive"
  done
done
"""
_KUBELET_AFTER_IMPORT = f"""[Unit]
After={IMPORT_UNIT}
Wants={IMPORT_UNIT}
"""
# What images/base/Dockerfile does after installing its packages.
_SYSTEMD_SETUP = """
chmod 755 /kind /kind/bin
find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
rm -f /lib/systemd/system/multi-user.target.wants/*
rm -f /etc/systemd/system/*.wants/*
rm -f /lib/systemd/system/local-fs.target.wants/*
rm -f /lib/systemd/system/sockets.target.wants/*udev*
rm -f /lib/systemd/system/sockets.target.wants/*initctl*
rm -f /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
systemctl enable kubelet.service
systemctl enable containerd.service
systemctl enable undo-mount-hacks.service
systemctl enable citykit-images.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests
"""


def _control_plane_only(ref: str) -> bool:
    name = ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return name in (*CONTROL_PLANE, "etcd")


def _write_kind_files(root: Path, images: dict[str, Path]) -> None:
    (root / "kind").mkdir(exist_ok=True)
    (root / "kind/version").write_text(toolchain.KUBERNETES_VERSION)
    manifests = root / "kind/manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    (manifests / "default-cni.yaml").write_text(yaml.safe_dump_all(cni_objects(), sort_keys=True))
    (manifests / "default-storage.yaml").write_text(
        yaml.safe_dump_all(storage_objects(PROVISIONER_REF, HELPER_REF), sort_keys=True)
    )
    for ref, archive in images.items():
        where = "control-plane" if _control_plane_only(ref) else "every-node"
        directory = root / "kind/images" / where
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, directory / archive.name)
    (root / "etc/systemd/system" / IMPORT_UNIT).write_text(_IMPORT_SERVICE)
    script = root / "kind/bin/import-images.sh"
    script.write_text(_IMPORT_SCRIPT)
    script.chmod(0o755)
    dropins = root / "etc/systemd/system/kubelet.service.d"
    dropins.mkdir(parents=True, exist_ok=True)
    (dropins / "20-citykit-images.conf").write_text(_KUBELET_AFTER_IMPORT)
