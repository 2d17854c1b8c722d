"""The kind provider: a kind cluster config generated from the profile and environment (node roles,
zone/pool labels and taints, ingress port mappings, the audit policy, the registry mirror), then
`kind create cluster`. The config generator is pure so it is unit tested without Docker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from citykit import paths
from citykit.cluster.audit_policy import audit_policy
from citykit.conventions import ARCH_LABEL
from citykit.conventions import HOST_LABEL
from citykit.conventions import NODE_TYPE_LABEL
from citykit.conventions import OS_LABEL
from citykit.errors import OperationFailed
from citykit.errors import ToolMissing
from citykit.plan.node_pools import NodeSpec
from citykit.plan.planned import Plan

KIND_API = "kind.x-k8s.io/v1alpha4"
AUDIT_DIR_IN_NODE = "/etc/kubernetes/citykit-audit"
# Ingress ports of the north-south gateway, mapped to the host so the city is reachable.
INGRESS_PORTS = ((80, 8080), (443, 8443), (1883, 1883), (8883, 8883))


def state_dir(name: str) -> Path:
    return paths.state_dir() / "kind" / name


def _taint_patch(spec: NodeSpec) -> list[str]:
    if not spec.taints:
        return []
    taints = [{"key": t.key, "value": t.value, "effect": t.effect} for t in spec.taints]
    patch = {"kind": "JoinConfiguration", "nodeRegistration": {"taints": taints}}
    return [yaml.safe_dump(patch, sort_keys=True)]


def _control_plane(audit_dir: Path) -> dict[str, Any]:
    cluster_patch = {
        "kind": "ClusterConfiguration",
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


def config(name: str, nodes: list[NodeSpec], plan: Plan | None, audit_dir: Path) -> dict[str, Any]:
    """The kind Cluster object: one control plane plus a worker per simulated node spec."""
    workers = [
        {
            "role": "worker",
            "labels": {
                k: v
                for k, v in spec.labels.items()
                if k not in (HOST_LABEL, OS_LABEL, ARCH_LABEL, NODE_TYPE_LABEL)
            },
            **({"kubeadmConfigPatches": _taint_patch(spec)} if spec.taints else {}),
        }
        for spec in nodes
    ]
    cluster: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": KIND_API,
        "name": name,
        "networking": {"disableDefaultCNI": False, "podSubnet": "10.244.0.0/16"},
        "nodes": [_control_plane(audit_dir), *workers],
    }
    mirror = plan.environment.registry_mirror if plan is not None else None
    if mirror:
        cluster["containerdConfigPatches"] = [_mirror_patch(mirror)]
    return cluster


def create(name: str, nodes: list[NodeSpec], plan: Plan | None) -> Path:
    """Write the config and the audit policy, run `kind create cluster`; returns the kubeconfig."""
    missing = [tool for tool in ("docker", "kind") if shutil.which(tool) is None]
    if missing:
        raise ToolMissing(
            f"the kind provider needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed",
            hint="install Docker (https://docs.docker.com/engine/install/) and kind "
            "(`go install sigs.k8s.io/kind@v0.31.0`), or use `--provider local`",
        )
    directory = state_dir(name)
    audit_dir = directory / "audit"
    audit_dir.mkdir(parents=True, exist_ok=True)
    (audit_dir / "policy.yaml").write_text(yaml.safe_dump(audit_policy(plan), sort_keys=True))
    config_file = directory / "kind.yaml"
    config_file.write_text(yaml.safe_dump(config(name, nodes, plan, audit_dir), sort_keys=False))
    kubeconfig = directory / "kubeconfig"
    result = subprocess.run(
        [
            "kind",
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
    )
    if result.returncode != 0:
        raise OperationFailed(
            f"kind create cluster failed:\n{result.stderr.strip()}",
            hint=f"the config is in {config_file}",
        )
    return kubeconfig


def delete(name: str) -> None:
    if shutil.which("kind") is None:
        raise ToolMissing("kind is not installed", hint="`go install sigs.k8s.io/kind@v0.31.0`")
    result = subprocess.run(
        ["kind", "delete", "cluster", "--name", name], check=False, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise OperationFailed(f"kind delete cluster failed:\n{result.stderr.strip()}")
    shutil.rmtree(state_dir(name), ignore_errors=True)
