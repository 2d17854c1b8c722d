"""The real node's side of the host: the addresses it uses (the bridge `citykit0`, 10.88.0.0/16,
whose 10.88.0.1 is the node's own address and where pods reach the API server), the host tools
and kernel settings it needs, and the network it prepares before the API server starts. Every
name here is one that node_teardown.py takes back."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from citykit.errors import OperationFailed
from citykit.errors import ToolMissing

NODE_IP = "10.88.0.1"
POD_CIDR = "10.88.0.0/16"
BRIDGE = "citykit0"
CLUSTER_DNS = "10.96.0.10"
# The addresses kwok gives simulated pods and nodes. Nothing answers there, and they are private
# addresses of somebody else's network: real pods and this host must never send a packet to them
# (a real Prometheus scraping a simulated pod would). The node routes them nowhere.
SIMULATED_POD_CIDR = "10.244.0.0/16"
SIMULATED_NODE_IP = "10.0.0.1"
UNREACHABLE = (SIMULATED_POD_CIDR, f"{SIMULATED_NODE_IP}/32")
# Pods reach the API server through the `kubernetes` Service (10.96.0.1:443); after kube-proxy's
# DNAT the port they connect to is this one, which the API-access NetworkPolicies allow.
APISERVER_PORT = 6443
CNI_NETWORK = "citykit"
RUN_ROOT = Path("/run/citykit")
# The kubelet keeps Unix sockets (pod resources, plugin registration) under its root directory,
# and pods' volumes: on disk, at a short path.
KUBELET_ROOT = Path("/var/lib/citykit")
# Host packages the node runs on (scripts/system-deps installs them).
HOST_BINARIES = ("containerd", "containerd-shim-runc-v2", "runc", "iptables", "ipset", "ip")
CNI_BIN_DIR = Path("/usr/lib/cni")
# What the kubelet (kernel.*, vm.*) and kube-proxy (net.*) set when they start, and what the node
# needs (forwarding, bridged traffic through netfilter): saved before, restored by `stop`.
SYSCTLS = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.ipv4.conf.all.route_localnet",
)
# The cgroup every pod lives under (kubelet's cgroupfs driver, cgroup v1: one per controller).
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
# Prefix of every iptables chain and ipset kube-proxy and kube-router write.
RULE_PREFIX = "KUBE-"


def missing_host_tools() -> list[str]:
    missing = [name for name in HOST_BINARIES if shutil.which(name) is None]
    if not (CNI_BIN_DIR / "bridge").is_file():
        missing.append(f"{CNI_BIN_DIR}/bridge (containernetworking-plugins)")
    return missing


def check_host() -> None:
    missing = missing_host_tools()
    if missing:
        raise ToolMissing(
            f"the real node needs {', '.join(missing)}",
            hint="run scripts/system-deps (Debian: containerd runc containernetworking-plugins "
            "iptables ipset iproute2)",
        )
    if os.geteuid() != 0:
        raise OperationFailed(
            "the real node runs a kubelet and containerd, which need root",
            hint="run as root, or use an environment without cluster.realNode (e.g. dev)",
        )


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    for key in SYSCTLS:
        with contextlib.suppress(OSError):
            values[key] = _sysctl_path(key).read_text().strip()
    return values


def restore_sysctls(saved: dict[str, str]) -> None:
    for key, value in saved.items():
        path = _sysctl_path(key)
        with contextlib.suppress(OSError):
            if path.read_text().strip() != value:
                path.write_text(value)


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise OperationFailed(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
    return result


def prepare_network() -> None:
    """The bridge exists before the API server starts: its address is the node's and the
    one the API server advertises to pods."""
    if run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        run("ip", "link", "add", BRIDGE, "type", "bridge")
    prefix = POD_CIDR.split("/")[1]
    if NODE_IP not in run("ip", "-4", "addr", "show", BRIDGE).stdout:
        run("ip", "addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    for blocked in UNREACHABLE:
        if run("ip", "route", "show", "type", "unreachable", blocked).stdout.strip() == "":
            run("ip", "route", "add", "unreachable", blocked)
    _sysctl_path("net.ipv4.ip_forward").write_text("1")
    _sysctl_path("net.bridge.bridge-nf-call-iptables").write_text("1")
    # Docker (or a host firewall) may set the FORWARD policy to DROP: allow the pod network
    # explicitly, as the kind and kubeadm docs ask. Policies are enforced by
    # kube-router's policy chains before these rules see a packet.
    for rule in reversed(_forward_rules()):
        if run("iptables", "-C", *rule, check=False).returncode != 0:
            run("iptables", "-I", *rule)


def _forward_rules() -> list[tuple[str, ...]]:
    """Pods talk to each other (and to this host, which is INPUT, not FORWARD); nothing
    they send is forwarded beyond the bridge: this machine's network is not theirs."""
    comment = ("-m", "comment", "--comment", "citykit real node")
    return [
        ("FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT", *comment),
        ("FORWARD", "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "REJECT", *comment),
    ]
