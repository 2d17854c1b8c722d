"""The kind provider: a kind cluster config generated from the profile and environment (node roles,
zone/pool labels and taints, ingress port mappings, the audit policy, the registry mirror), then
`kind create cluster`. The config generator is pure so it is unit tested without Docker."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from citykit import paths
from citykit import toolchain
from citykit.cluster import engine
from citykit.cluster import kind_images
from citykit.cluster import kind_simulated
from citykit.cluster.audit_policy import audit_policy
from citykit.cluster.engine import Progress
from citykit.cluster.processes import ComponentState
from citykit.conventions import ARCH_LABEL
from citykit.conventions import HOST_LABEL
from citykit.conventions import NODE_TYPE_LABEL
from citykit.conventions import OS_LABEL
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.errors import InputError
from citykit.errors import OperationFailed
from citykit.images import node_image
from citykit.images.node_image import IMAGE_REPOSITORY
from citykit.images.node_image import NODE_REF
from citykit.plan.node_pools import NodeSpec
from citykit.plan.node_pools import Taint
from citykit.plan.planned import Plan

KIND_API = "kind.x-k8s.io/v1alpha4"
# Kubernetes 1.35 and later refuse to run a kubelet on cgroup v1 unless told to; hosts of this
# kind are cgroup v1.
KUBELET_PATCH = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "kind": "KubeletConfiguration",
    "failCgroupV1": False,
}
AUDIT_DIR_IN_NODE = "/etc/kubernetes/citykit-audit"
# Ingress ports of the north-south gateway, mapped to the host so the city is reachable.
INGRESS_PORTS = ((80, 8080), (443, 8443), (1883, 1883), (8883, 8883))


def state_dir(name: str) -> Path:
    return paths.state_dir() / "kind" / name


def existing_kubeconfig(name: str, env: str) -> Path:
    """The kubeconfig of the kind cluster `name` that citykit created; InputError when none."""
    kubeconfig = state_dir(name) / "kubeconfig"
    if not kubeconfig.is_file():
        raise InputError(
            f"no kind cluster {name!r} created by citykit",
            hint=f"create it with `citykit cluster up -e {env}` (`citykit up` creates it too)",
        )
    return kubeconfig


def _taint_patch(taints: tuple[Taint, ...]) -> list[str]:
    listed = [{"key": t.key, "value": t.value, "effect": t.effect} for t in taints]
    patch = {"kind": "JoinConfiguration", "nodeRegistration": {"taints": listed}}
    return [yaml.safe_dump(patch, sort_keys=True)]


def _worker(spec: NodeSpec, runs_local_images_only: bool) -> dict[str, Any]:
    """A kind worker of the spec's pool and zone; where kwok simulates the components without a
    local image (kind_simulated.py), also labelled and tainted as a node that runs containers,
    so only the pods of local images land on it."""
    labels = {
        k: v
        for k, v in spec.labels.items()
        if k not in (HOST_LABEL, OS_LABEL, ARCH_LABEL, NODE_TYPE_LABEL)
    }
    taints = spec.taints
    if runs_local_images_only:
        labels[RUNTIME_LABEL] = RUNTIME
        taints = (Taint(RUNTIME_LABEL, RUNTIME), *taints)
    worker: dict[str, Any] = {"role": "worker", "labels": labels}
    if taints:
        worker["kubeadmConfigPatches"] = _taint_patch(taints)
    return worker


def _control_plane(audit_dir: Path) -> dict[str, Any]:
    cluster_patch = {
        "kind": "ClusterConfiguration",
        # The node image's own images (citykit/images/node_image.py): kubeadm's defaults name
        # registry.k8s.io, which this machine cannot reach.
        "imageRepository": IMAGE_REPOSITORY,
        "etcd": {"local": {"imageTag": toolchain.ETCD_VERSION}},
        "dns": {"imageTag": toolchain.COREDNS_VERSION},
        "apiServer": {
            "extraArgs": {
                "audit-policy-file": f"{AUDIT_DIR_IN_NODE}/policy.yaml",
                "audit-log-path": "/var/log/kubernetes/audit.log",
                "audit-log-maxage": "180",
                "audit-log-maxbackup": "10",
                "audit-log-maxsize": "100",
            },
            "extraVolumes": [
                {
                    "name": "audit-policy",
                    "hostPath": AUDIT_DIR_IN_NODE,
                    "mountPath": AUDIT_DIR_IN_NODE,
                    "readOnly": True,
                    "pathType": "Directory",
                },
                {
                    "name": "audit-logs",
                    "hostPath": "/var/log/kubernetes",
                    "mountPath": "/var/log/kubernetes",
                    "readOnly": False,
                    "pathType": "DirectoryOrCreate",
                },
            ],
        },
    }
    return {
        "role": "control-plane",
        "labels": {"ingress-ready": "true"},
        "extraPortMappings": [
            {"containerPort": inside, "hostPort": outside, "protocol": "TCP"}
            for inside, outside in INGRESS_PORTS
        ],
        "extraMounts": [
            {"hostPath": str(audit_dir), "containerPath": AUDIT_DIR_IN_NODE, "readOnly": True}
        ],
        "kubeadmConfigPatches": [yaml.safe_dump(cluster_patch, sort_keys=True)],
    }


def _mirror_patch(mirror: str) -> str:
    """containerd pulls every upstream registry through the mirror (air-gapped sites)."""
    lines = []
    for registry in ("docker.io", "quay.io", "ghcr.io", "registry.k8s.io"):
        lines.append(f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]')
        lines.append(f"  endpoint = [{_toml_string('https://' + mirror.split('/')[0])}]")
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def real_workers(nodes: list[NodeSpec], plan: Plan | None) -> list[NodeSpec]:
    """The node specs kind makes a container for. Where kwok plays every pool
    (simulates_the_rest), only pods of local images land on kind's workers, so a worker of a
    pool where none runs would run nothing of the city: its containerd, kubelet, kube-proxy and
    kube-router would only take CPU (five of staging's eight workers, on two cores). kind then
    makes the workers of the pools where local images run, verify's probe pool among them."""
    if plan is None or not plan.environment.simulates_the_rest:
        return nodes
    pools: set[str] = set().union(*kind_images.wanted(plan).values())
    return [spec for spec in nodes if spec.pool in pools]


def config(name: str, nodes: list[NodeSpec], plan: Plan | None, audit_dir: Path) -> dict[str, Any]:
    """The kind Cluster object: one control plane plus a worker per node spec that needs a real
    node (real_workers)."""
    simulated = plan is not None and plan.environment.simulates_the_rest
    workers = [_worker(spec, simulated) for spec in real_workers(nodes, plan)]
    nodes_config = [_control_plane(audit_dir), *workers]
    for node in nodes_config:
        node["image"] = NODE_REF
    cluster: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": KIND_API,
        "name": name,
        "networking": {"disableDefaultCNI": False, "podSubnet": "10.244.0.0/16"},
        "nodes": nodes_config,
        "kubeadmConfigPatches": [yaml.safe_dump(KUBELET_PATCH, sort_keys=True)],
    }
    mirror = plan.environment.registry_mirror if plan is not None else None
    if mirror:
        cluster["containerdConfigPatches"] = [_mirror_patch(mirror)]
    return cluster


def _quiet(text: str) -> None:
    """No progress lines (the default)."""


def create(
    name: str, nodes: list[NodeSpec], plan: Plan | None, progress: Progress = _quiet
) -> Path:
    """Write the config and the audit policy, then run the built kind's `kind create cluster`
    against a container engine (the user's, else citykit's own, started: engine.py); returns the
    kubeconfig."""
    kind = toolchain.find("kind")
    raise_inotify_limits(progress)
    running = engine.working_engine(progress)
    _ensure_node_image(running, progress)
    directory = state_dir(name)
    audit_dir = directory / "audit"
    audit_dir.mkdir(parents=True, exist_ok=True)
    (audit_dir / "policy.yaml").write_text(yaml.safe_dump(audit_policy(plan), sort_keys=True))
    config_file = directory / "kind.yaml"
    cluster_config = config(name, nodes, plan, audit_dir)
    config_file.write_text(yaml.safe_dump(cluster_config, sort_keys=False))
    kubeconfig = directory / "kubeconfig"
    count = len(cluster_config["nodes"])
    progress(f"creating kind cluster {name!r} ({count} nodes)")
    result = subprocess.run(
        [
            str(kind),
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            str(config_file),
            "--kubeconfig",
            str(kubeconfig),
            "--wait",
            "120s",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=running.env(),
    )
    if result.returncode != 0:
        raise OperationFailed(
            f"kind create cluster failed:\n{result.stderr.strip()}",
            hint=f"the config is in {config_file}; `citykit cluster down` takes back what was made",
        )
    _wait_for_nodes(kubeconfig, count, progress)
    if plan is not None and plan.environment.simulates_the_rest:
        kind_simulated.ensure(directory, kubeconfig, nodes, progress)
    return kubeconfig


def ensure(plan: Plan, nodes: list[NodeSpec], progress: Progress = _quiet) -> Path:
    """What `citykit up` needs of the environment's kind cluster: created when citykit has none
    of that name, its simulated nodes running, the plan's local images on its nodes."""
    name = plan.environment.cluster.name
    directory = state_dir(name)
    kubeconfig = directory / "kubeconfig"
    if not kubeconfig.is_file():
        create(name, nodes, plan, progress)
    elif plan.environment.simulates_the_rest:
        kind_simulated.ensure(directory, kubeconfig, nodes, progress)
    if plan.environment.local_images:
        running = engine.holding(progress)
        if running is None:
            raise OperationFailed(
                f"no container engine answers, so the kind cluster {name!r} is not running",
                hint=f"`citykit cluster down -e {plan.environment.name}`, then `citykit up` "
                "creates it again",
            )
        kind_images.ensure_loaded(plan, kubeconfig, running, progress)
    return kubeconfig


NODES_READY_SECONDS = 300
# What kind's known issues ask for ("too many open files"): every node runs systemd, containerd
# and a kubelet, each holding inotify instances of the host's root user. With the default 128,
# eight nodes exhaust them, and then any other kubelet or containerd on the host (the real node)
# fails too (its CRI plugin does not load). Only ever raised; left raised, as kind's docs do.
INOTIFY_LIMITS = {"max_user_instances": 512, "max_user_watches": 524288}
INOTIFY_DIR = Path("/proc/sys/fs/inotify")


def raise_inotify_limits(progress: Progress, directory: Path = INOTIFY_DIR) -> None:
    for name, wanted in INOTIFY_LIMITS.items():
        path = directory / name
        try:
            current = int(path.read_text().strip())
            if current < wanted:
                path.write_text(f"{wanted}\n")
                progress(f"raised fs.inotify.{name} from {current} to {wanted} (kind's nodes)")
        except (OSError, ValueError) as error:
            raise OperationFailed(
                f"cannot raise fs.inotify.{name} to {wanted}: {error}",
                hint=f"run as root, or `sysctl -w fs.inotify.{name}={wanted}` first",
            ) from None


def _wait_for_nodes(kubeconfig: Path, count: int, progress: Progress) -> None:
    """kind's --wait covers the control plane only; the workers join after it, and the cluster
    is up once every node is Ready (its pod network running)."""
    progress(f"waiting for the {count} nodes to be Ready")
    deadline = time.monotonic() + NODES_READY_SECONDS
    not_ready: list[str] = []
    while time.monotonic() < deadline:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            items = json.loads(result.stdout)["items"]
            not_ready = [node["metadata"]["name"] for node in items if not _ready(node)]
            if len(items) == count and not not_ready:
                return
        time.sleep(2)
    raise OperationFailed(
        f"the kind cluster's nodes are not all Ready after {NODES_READY_SECONDS}s: "
        f"{', '.join(not_ready) or 'some never registered'}",
        hint=f"`kubectl --kubeconfig {kubeconfig} describe nodes` says why",
    )


def nodes(name: str) -> list[dict[str, Any]] | None:
    """The kind cluster's nodes as the API server lists them (kind's and kwok's); None when
    citykit has no such cluster or its API server does not answer."""
    kubeconfig = state_dir(name) / "kubeconfig"
    if not kubeconfig.is_file():
        return None
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode != 0:
        return None
    items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return items


def simulator(name: str) -> ComponentState | None:
    """The kwok process playing the cluster's simulated nodes, where it has one."""
    return kind_simulated.state(state_dir(name))


def _ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _ensure_node_image(running: engine.Engine, progress: Progress) -> None:
    """The node image in the engine: built when missing (citykit/images/node_image.py), loaded
    when the engine has none or an older recipe under the same name."""
    image = node_image.build_node_image(progress)
    label = '{{index .Config.Labels "io.citykit.recipe"}}'
    found = engine.docker(running.env(), "image", "inspect", "--format", label, image.ref)
    if found.returncode == 0 and found.stdout.strip() == image.key:
        return
    replaced = engine.docker(running.env(), "image", "inspect", "--format", "{{.Id}}", image.ref)
    progress(f"loading the node image {image.ref} into the container engine")
    loaded = engine.docker(running.env(), "load", "--input", str(image.archive), timeout=900)
    if loaded.returncode != 0:
        raise OperationFailed(
            f"docker load of {image.archive} failed: {loaded.stderr.strip()[-1500:]}",
            hint="`citykit images build --node-image` rebuilds it",
        )
    if replaced.returncode == 0:
        # The older recipe, now untagged: 1.5 GB each that nothing would remove.
        engine.docker(running.env(), "image", "rm", replaced.stdout.strip())


def delete(name: str, progress: Progress = _quiet) -> None:
    """Delete the cluster from the engine that holds it, then stop citykit's own engine once
    nothing else runs in it (engine.release)."""
    kind_simulated.stop(state_dir(name))
    holder = engine.holding(progress)
    if holder is None:
        progress(f"no container engine answers, so no kind cluster {name!r} runs")
        shutil.rmtree(state_dir(name), ignore_errors=True)
        return
    result = subprocess.run(
        [str(toolchain.find("kind")), "delete", "cluster", "--name", name],
        check=False,
        capture_output=True,
        text=True,
        env=holder.env(),
    )
    if result.returncode != 0:
        raise OperationFailed(f"kind delete cluster failed:\n{result.stderr.strip()}")
    shutil.rmtree(state_dir(name), ignore_errors=True)
    progress(f"deleted kind cluster {name!r}")
    engine.release(holder, progress)
