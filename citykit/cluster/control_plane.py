"""The local control plane's command lines: etcd, kube-apiserver (TLS, RBAC, Pod Security
admission, audit log), kube-controller-manager, kube-scheduler, and kwok, which plays the kubelets
of the simulated nodes and provisions volumes for the `citykit-local` StorageClass. Which flags
each gets follows from the cluster's directory, its ports, its node count (`Scale`) and whether it
has a real node."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from citykit import paths
from citykit.cluster import node_host
from citykit.cluster.realnode import RealNode

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# The simulated nodes carry this annotation (node_pools.node_object); kwok manages only those, so a
# real kubelet's node is left to the kubelet.
KWOK_NODE_SELECTOR = "kwok.x-k8s.io/node=fake"
KWOK_VOLUME_ROOT = "/var/lib/citykit-local"
STORAGE_CLASS = "citykit-local"
SERVICE_CIDR = "10.96.0.0/16"
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class Scale:
    """Settings that follow the number of simulated nodes. kwok renews each node's lease every
    quarter of its duration, like a kubelet; at a thousand nodes the default 40 s would be 100
    writes a second, which alone keeps two cores busy. The lease grows with the node count so
    renewals stay at most RENEWALS_PER_SECOND, and the node lifecycle controller's grace period
    with it (else it would mark nodes NotReady between renewals)."""

    nodes: int

    RENEWALS_PER_SECOND = 10
    MIN_LEASE_SECONDS = 40

    @property
    def lease_seconds(self) -> int:
        renewals_need = -(-4 * self.nodes // self.RENEWALS_PER_SECOND)  # ceil
        return max(self.MIN_LEASE_SECONDS, renewals_need)

    @property
    def grace_seconds(self) -> int:
        # Kubernetes' default (50 s) for the default lease: a renewal may come a little late.
        return self.lease_seconds + 10

    @property
    def timeout(self) -> float:
        """How long to wait for the nodes: registering and initialising a thousand takes a
        while on two cores."""
        return START_TIMEOUT + self.nodes * 0.2


class ClusterPaths:
    """Where a local cluster keeps its state: `<state>/clusters/<name>` (certificates in `pki`,
    logs, the audit log, etcd's data, `kubeconfig` and `state.json` with pids and ports)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = paths.state_dir() / "clusters" / name

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def _state(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.dir / "state.json").read_text())
            return data
        except (OSError, ValueError):
            return None


class ControlPlaneArgs(ClusterPaths):
    """The command line of each control-plane process."""

    def _etcd_args(self, ports: dict[str, int]) -> list[str]:
        client, peer = f"http://127.0.0.1:{ports['etcd']}", f"http://127.0.0.1:{ports['etcd-peer']}"
        return [
            "--name",
            "citykit",
            "--data-dir",
            str(self.dir / "etcd"),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"citykit={peer}",
            # A throw-away cluster: durability is not worth the fsync cost on a shared disk.
            "--unsafe-no-fsync",
            "--quota-backend-bytes",
            str(4 * 1024**3),
        ]

    def _apiserver_args(self, ports: dict[str, int], real_node: bool = False) -> list[str]:
        pki, audit = self.dir / "pki", self.dir / "audit"
        if real_node:
            # Real pods reach the API server through the `kubernetes` Service, whose endpoint is
            # the advertised address: the node's bridge address, the only one pods can route to.
            address = [
                "--bind-address=0.0.0.0",
                f"--advertise-address={node_host.NODE_IP}",
                "--endpoint-reconciler-type=lease",
                # logs, exec and port-forward go to the kubelet at the node's address.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={pki / 'admin.crt'}",
                f"--kubelet-client-key={pki / 'admin.key'}",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            ]
        else:
            address = [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # The apiserver refuses a loopback advertise address with an endpoint
                # reconciler; no real pod ever dials the `kubernetes` Service of a simulated
                # cluster.
                "--endpoint-reconciler-type=none",
            ]
        return [
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            *address,
            f"--secure-port={ports['kube-apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--audit-policy-file={audit / 'policy.yaml'}",
            f"--audit-log-path={audit / 'audit.log'}",
            "--audit-log-maxage=180",
            "--audit-log-maxbackup=10",
            "--audit-log-maxsize=100",
            "--profiling=false",
        ]

    def _controller_manager_args(self, ports: dict[str, int], scale: Scale) -> list[str]:
        pki = self.dir / "pki"
        return [
            f"--node-monitor-grace-period={scale.grace_seconds}s",
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['kube-controller-manager']}",
            "--leader-elect=false",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            # The garbage collector and the namespace controller delete through this client,
            # limited to 20 requests a second by default: a destroy's foreground deletes of
            # workloads waited on it (the example city's destroy on the local cluster: 25 s,
            # 19 s with these).
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--profiling=false",
        ]

    def _scheduler_args(self, ports: dict[str, int]) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['kube-scheduler']}",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _kwok_args(self, ports: dict[str, int], scale: Scale) -> list[str]:
        return kwok_args(
            self.kubeconfig,
            self.dir / "kwok.yaml",
            ports["kwok"],
            scale,
            node_host.SIMULATED_POD_CIDR.replace(".0/", ".1/"),
        )

    @staticmethod
    def _kwok_config(node: RealNode | None) -> str:
        stages = kwok_stages()
        if node is None:
            return stages
        # Volumes of a cluster with a real node are real directories: keep them in the node's
        # directory, so `cluster down` removes them with everything else. The kubelet waits
        # until the volumes process has made each one writable (type Directory), instead of
        # creating it itself, owned by root, before that.
        return stages.replace(KWOK_VOLUME_ROOT, str(node.volumes)).replace(
            "type: DirectoryOrCreate", "type: Directory"
        )


def kwok_args(kubeconfig: Path, config: Path, port: int, scale: Scale, pod_cidr: str) -> list[str]:
    """kwok's command line: it plays the nodes annotated KWOK_NODE_SELECTOR, with pod IPs from
    `pod_cidr`, and serves its metrics on `port`."""
    return [
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_SELECTOR}",
        # Renew node leases like a kubelet does; without them the node lifecycle controller
        # marks every node NotReady after its grace period and flips its pods to not ready.
        f"--node-lease-duration-seconds={scale.lease_seconds}",
        f"--server-address=127.0.0.1:{port}",
        f"--cidr={pod_cidr}",
        f"--node-ip={node_host.SIMULATED_NODE_IP}",
    ]


def kwok_stages() -> str:
    return resources.files("citykit.cluster").joinpath("kwok-stages.yaml").read_text()


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kwok.x-k8s.io/volume",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }
