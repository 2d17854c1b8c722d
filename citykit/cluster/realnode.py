"""The real node: a kubelet with containerd on this host, joined to the local control plane.

Pods scheduled to it are real processes: containerd (Debian's, with runc) runs them, the CNI
bridge plugin gives them addresses on `citykit0` (10.88.0.0/16, the node's own address is the
bridge's 10.88.0.1, which is also where pods reach the API server), kube-proxy programs Service
addresses, and the cluster's DNS and NetworkPolicy enforcement run as pods in kube-system
(addons.py, whose images addon_images.py builds). The host's side (addresses, tools, kernel
settings, the bridge) is node_host.py's, the configuration files node_config.py's, and taking it
all back node_teardown.py's: processes, cgroups, mounts, the bridge, iptables rules and ipsets,
and the kernel settings the kubelet and kube-proxy change when they start."""

from __future__ import annotations

from pathlib import Path

from citykit.cluster import node_config
from citykit.cluster import node_host
from citykit.cluster import node_teardown
from citykit.cluster.node_config import Ports
from citykit.cluster.node_host import KUBELET_ROOT
from citykit.cluster.node_host import NODE_IP
from citykit.cluster.node_host import RUN_ROOT
from citykit.conventions import POOL_LABEL
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.conventions import ZONE_LABEL


class RealNode:
    """One real node of a local cluster; its files live in `<cluster dir>/node`."""

    def __init__(self, cluster_dir: Path, cluster_name: str) -> None:
        self.dir = cluster_dir / "node"
        self.pki = cluster_dir / "pki"
        self.name = f"{cluster_name}-node"
        # Unix socket paths are limited to 108 bytes; the state directory can be anywhere (a
        # test's temporary directory), so containerd's sockets live under /run instead.
        self.run_dir = RUN_ROOT / cluster_name
        self.kubelet_dir = KUBELET_ROOT / cluster_name

    # -- paths -----------------------------------------------------------------------------
    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def volumes(self) -> Path:
        """Where the local StorageClass's volumes live (kwok writes these hostPath PVs)."""
        return self.dir / "volumes"

    # -- host preparation and configuration ------------------------------------------------------
    def prepare_network(self) -> None:
        """The bridge exists before the API server starts: its address is the node's and the
        one the API server advertises to pods."""
        node_host.prepare_network()

    def write_config(self, apiserver_port: int, ports: Ports) -> None:
        node_config.write(self, apiserver_port, ports)

    # -- process command lines ---------------------------------------------------------------
    def containerd_args(self) -> list[str]:
        return ["--config", str(self.dir / "containerd" / "config.toml")]

    def kubelet_args(self) -> list[str]:
        labels = {
            POOL_LABEL: "general",
            ZONE_LABEL: "core",
            RUNTIME_LABEL: RUNTIME,
        }
        return [
            f"--config={self.dir / 'kubelet' / 'config.yaml'}",
            f"--kubeconfig={self.dir / 'kubelet.kubeconfig'}",
            f"--root-dir={self.kubelet_dir}",
            f"--cert-dir={self.dir / 'kubelet' / 'pki'}",
            f"--hostname-override={self.name}",
            f"--node-ip={NODE_IP}",
            "--node-labels=" + ",".join(f"{k}={v}" for k, v in labels.items()),
            # Only pods that ask for the real node (components with a local image) land here;
            # the rest of the city stays on the simulated nodes.
            f"--register-with-taints={RUNTIME_LABEL}={RUNTIME}:NoSchedule",
        ]

    def proxy_args(self) -> list[str]:
        return [f"--config={self.dir / 'kube-proxy.yaml'}"]

    # -- teardown ----------------------------------------------------------------------------
    def stop(self, saved_sysctls: dict[str, str]) -> None:
        """Take back everything the node put on the host. Safe to call on a half-started node
        and more than once."""
        node_teardown.stop(self, saved_sysctls)
