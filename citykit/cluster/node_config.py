"""The real node's configuration files, all under its directory: containerd's (Debian's, with
runc), the CNI bridge's, the kubelet's and kube-proxy's, and their kubeconfigs and certificates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import yaml

from citykit.cluster import certs
from citykit.cluster.addons import PAUSE_REF
from citykit.cluster.node_host import BRIDGE
from citykit.cluster.node_host import CLUSTER_DNS
from citykit.cluster.node_host import CNI_BIN_DIR
from citykit.cluster.node_host import CNI_NETWORK
from citykit.cluster.node_host import NODE_IP
from citykit.cluster.node_host import POD_CIDR

if TYPE_CHECKING:
    from citykit.cluster.realnode import RealNode


@dataclass(frozen=True)
class Ports:
    kubelet: int
    kubelet_healthz: int
    proxy_metrics: int
    proxy_healthz: int


def write(node: RealNode, apiserver_port: int, ports: Ports) -> None:
    """The node's directories, its certificates (signed by the cluster CA), kubeconfigs and the
    configuration files of containerd, the CNI bridge, the kubelet and kube-proxy."""
    node.run_dir.mkdir(parents=True, exist_ok=True)
    node.kubelet_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("containerd", "kubelet", "cni/net.d", "cni/ipam", "logs", "pods-logs"):
        (node.dir / sub).mkdir(parents=True, exist_ok=True)
    node.volumes.mkdir(parents=True, exist_ok=True)
    certs.issue(node.pki, "node", certs.name(f"system:node:{node.name}", "system:nodes"))
    certs.issue(
        node.pki,
        "kubelet-serving",
        certs.name(f"system:node:{node.name}", "system:nodes"),
        server=True,
        dns=(node.name, "localhost"),
        ips=(NODE_IP, "127.0.0.1"),
    )
    certs.issue(node.pki, "kube-proxy", certs.name("system:kube-proxy"))
    server = f"https://{NODE_IP}:{apiserver_port}"
    for cert, filename in (("node", "kubelet.kubeconfig"), ("kube-proxy", "kube-proxy.kubeconfig")):
        certs.write_kubeconfig(
            node.dir / filename, node.pki, server=server, cluster="local", user=cert, cert=cert
        )
    (node.dir / "containerd" / "config.toml").write_text(containerd_config(node))
    (node.dir / "cni" / "net.d" / "10-citykit.conflist").write_text(
        json.dumps(cni_config(node), indent=2)
    )
    (node.dir / "kubelet" / "config.yaml").write_text(
        yaml.safe_dump(kubelet_config(node, ports), sort_keys=False)
    )
    (node.dir / "kube-proxy.yaml").write_text(
        yaml.safe_dump(proxy_config(node, ports), sort_keys=False)
    )


def containerd_config(node: RealNode) -> str:
    base = node.dir / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    # restrict_oom_score_adj: this host lacks CAP_SYS_RESOURCE, so runc cannot lower a
    # process's OOM score; without it every sandbox fails with "can't get final child's PID
    # from pipe: EOF". netns_mounts_under_state_dir keeps pod network namespaces inside this
    # directory instead of /var/run/netns, so `stop` finds and removes every one.
    return f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
oom_score = 0

[grpc]
  address = "{node.containerd_socket}"

[ttrpc]
  address = "{node.containerd_socket}.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_REF}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{node.dir / "cni" / "net.d"}"
  max_conf_num = 1
"""


def cni_config(node: RealNode) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # No masquerade: pod traffic never leaves this machine.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(node.dir / "cni" / "ipam"),
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(node: RealNode, ports: Ports) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This host is cgroup v1 and cannot switch; the kubelet refuses v1 unless told.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": "/",
        "address": NODE_IP,
        "port": ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.kubelet_healthz,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(node.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(node.pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(node.pki / "kubelet-serving.key"),
        "clusterDomain": "cluster.local",
        "clusterDNS": [CLUSTER_DNS],
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "podLogsDir": str(node.dir / "pods-logs"),
        "failSwapOn": False,
        "serializeImagePulls": False,
        "maxPods": 110,
        # A shared developer disk: never evict the city because the disk is busy.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "localStorageCapacityIsolation": True,
        "resolvConf": "/etc/resolv.conf",
        "shutdownGracePeriod": "0s",
        "logging": {"format": "text"},
    }


def proxy_config(node: RealNode, ports: Ports) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(node.dir / "kube-proxy.kubeconfig")},
        "hostnameOverride": node.name,
        "bindAddress": "127.0.0.1",
        "metricsBindAddress": f"127.0.0.1:{ports.proxy_metrics}",
        "healthzBindAddress": f"127.0.0.1:{ports.proxy_healthz}",
        "clusterCIDR": POD_CIDR,
        "mode": "iptables",
        # Leave the host's conntrack table size alone (it is not ours to change).
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
