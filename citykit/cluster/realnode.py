"""The real node: a kubelet with containerd on this host, joined to the local control plane.

Pods scheduled to it are real processes: containerd (Debian's, with runc) runs them, the CNI
bridge plugin gives them addresses on `citykit0` (10.88.0.0/16, the node's own address is the
bridge's 10.88.0.1, which is also where pods reach the API server), kube-proxy programs Service
addresses, and the cluster's DNS and NetworkPolicy enforcement run as pods in kube-system
(`node_images.py` builds their images). Everything the node creates on the host is named here so
that `stop` can take it all back: processes, cgroups, mounts, the bridge, iptables rules and
ipsets, and the kernel settings the kubelet and kube-proxy change when they start."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from citykit.cluster import certs
from citykit.cluster.addons import PAUSE_REF
from citykit.conventions import POOL_LABEL, RUNTIME, RUNTIME_LABEL, ZONE_LABEL
from citykit.errors import OperationFailed, ToolMissing

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


@dataclass(frozen=True)
class Ports:
    kubelet: int
    kubelet_healthz: int
    proxy_metrics: int
    proxy_healthz: int


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


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise OperationFailed(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
    return result


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

    # -- host preparation --------------------------------------------------------------------
    def prepare_network(self) -> None:
        """The bridge exists before the API server starts: its address is the node's and the
        one the API server advertises to pods."""
        if _run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
            _run("ip", "link", "add", BRIDGE, "type", "bridge")
        prefix = POD_CIDR.split("/")[1]
        if NODE_IP not in _run("ip", "-4", "addr", "show", BRIDGE).stdout:
            _run("ip", "addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        for blocked in UNREACHABLE:
            if _run("ip", "route", "show", "type", "unreachable", blocked).stdout.strip() == "":
                _run("ip", "route", "add", "unreachable", blocked)
        _sysctl_path("net.ipv4.ip_forward").write_text("1")
        _sysctl_path("net.bridge.bridge-nf-call-iptables").write_text("1")
        # Docker (or a host firewall) may set the FORWARD policy to DROP: allow the pod network
        # explicitly, as the kind and kubeadm docs ask. Policies are enforced by
        # kube-router's policy chains before these rules see a packet.
        for rule in reversed(self._forward_rules()):
            if _run("iptables", "-C", *rule, check=False).returncode != 0:
                _run("iptables", "-I", *rule)

    @staticmethod
    def _forward_rules() -> list[tuple[str, ...]]:
        """Pods talk to each other (and to this host, which is INPUT, not FORWARD); nothing
        they send is forwarded beyond the bridge: this machine's network is not theirs."""
        comment = ("-m", "comment", "--comment", "citykit real node")
        return [
            ("FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT", *comment),
            ("FORWARD", "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "REJECT", *comment),
        ]

    def write_config(self, apiserver_port: int, ports: Ports) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.kubelet_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("containerd", "kubelet", "cni/net.d", "cni/ipam", "logs", "pods-logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.volumes.mkdir(parents=True, exist_ok=True)
        certs.issue(self.pki, "node", certs.name(f"system:node:{self.name}", "system:nodes"))
        certs.issue(
            self.pki,
            "kubelet-serving",
            certs.name(f"system:node:{self.name}", "system:nodes"),
            server=True,
            dns=(self.name, "localhost"),
            ips=(NODE_IP, "127.0.0.1"),
        )
        certs.issue(self.pki, "kube-proxy", certs.name("system:kube-proxy"))
        server = f"https://{NODE_IP}:{apiserver_port}"
        self._kubeconfig("node", "kubelet.kubeconfig", server)
        self._kubeconfig("kube-proxy", "kube-proxy.kubeconfig", server)
        (self.dir / "containerd" / "config.toml").write_text(self._containerd_config())
        (self.dir / "cni" / "net.d" / "10-citykit.conflist").write_text(
            json.dumps(self._cni_config(), indent=2)
        )
        (self.dir / "kubelet" / "config.yaml").write_text(
            yaml.safe_dump(self._kubelet_config(ports), sort_keys=False)
        )
        (self.dir / "kube-proxy.yaml").write_text(
            yaml.safe_dump(self._proxy_config(ports), sort_keys=False)
        )

    def _kubeconfig(self, cert: str, filename: str, server: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": server,
                        "certificate-authority": str(self.pki / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": cert,
                    "user": {
                        "client-certificate": str(self.pki / f"{cert}.crt"),
                        "client-key": str(self.pki / f"{cert}.key"),
                    },
                }
            ],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": cert}}],
            "current-context": "local",
        }
        path = self.dir / filename
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def _containerd_config(self) -> str:
        base = self.dir / "containerd"
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
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{self.containerd_socket}.ttrpc"

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
  conf_dir = "{self.dir / "cni" / "net.d"}"
  max_conf_num = 1
"""

    def _cni_config(self) -> dict[str, Any]:
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
                        "dataDir": str(self.dir / "cni" / "ipam"),
                        "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def _kubelet_config(self, ports: Ports) -> dict[str, Any]:
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
                "x509": {"clientCAFile": str(self.pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(self.pki / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(self.pki / "kubelet-serving.key"),
            "clusterDomain": "cluster.local",
            "clusterDNS": [CLUSTER_DNS],
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "podLogsDir": str(self.dir / "pods-logs"),
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

    def _proxy_config(self, ports: Ports) -> dict[str, Any]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.dir / "kube-proxy.kubeconfig")},
            "hostnameOverride": self.name,
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
        self._kill_pods()
        self._unmount_all()
        self._clean_network()
        self._remove_cgroups()
        restore_sysctls(saved_sysctls)
        for directory in (self.run_dir, self.kubelet_dir):
            shutil.rmtree(directory, ignore_errors=True)
            with contextlib.suppress(OSError):
                directory.parent.rmdir()  # only when no other cluster's node uses it

    def _kill_pods(self) -> None:
        """Every process in the kubepods cgroups (containers and sandboxes), and every shim of
        this node's containerd."""
        for _ in range(3):
            pids = _cgroup_pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if not pids:
                break
            time.sleep(0.5)
        marker = str(self.containerd_socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGKILL)

    def _unmount_all(self) -> None:
        """Volumes, overlay snapshots, network namespaces and /run mounts of this node's
        containerd, deepest first; a busy one is detached lazily."""
        roots = (
            str(self.dir) + "/",
            str(self.run_dir) + "/",
            str(self.kubelet_dir) + "/",
            "/run/containerd/io.containerd.",
            "/run/containerd/runc/",
        )
        for _ in range(3):
            mounts = [m for m in _mount_points() if m.startswith(roots)]
            if not mounts:
                return
            for mount in sorted(mounts, key=len, reverse=True):
                if subprocess.run(["umount", mount], capture_output=True).returncode != 0:
                    subprocess.run(["umount", "-l", mount], capture_output=True)

    def _clean_network(self) -> None:
        _run("ip", "link", "delete", BRIDGE, check=False)
        for blocked in UNREACHABLE:
            _run("ip", "route", "del", "unreachable", blocked, check=False)
        for link in _run("ip", "-o", "link", "show", check=False).stdout.splitlines():
            # Pod veths whose namespace is gone but whose host end lingers on the bridge.
            match = re.match(r"\d+: (veth[0-9a-f]+)@", link)
            if match and f"master {BRIDGE}" in link:
                _run("ip", "link", "delete", match.group(1), check=False)
        # Every rule naming the bridge: ours, and any an earlier version or a killed run left.
        for line in _run("iptables-save", "-t", "filter", check=False).stdout.splitlines():
            if line.startswith("-A ") and BRIDGE in line:
                _run("iptables", "-D", *shlex.split(line)[1:], check=False)
        from citykit import toolchain

        # kube-proxy's and kube-router's own clean-up of every chain, rule and ipset they wrote.
        for tool, flag in (("kube-proxy", "--cleanup"), ("kube-router", "--cleanup-config")):
            with contextlib.suppress(ToolMissing):
                binary = str(toolchain.find(tool))
                subprocess.run([binary, flag], capture_output=True, check=False, timeout=60)
        # What neither cleans: the kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY,
        # KUBE-IPTABLES-HINT) and anything a killed run left.
        for command in ("iptables", "ip6tables"):
            _remove_chains(command, RULE_PREFIX)
        for name in _run("ipset", "list", "-n", check=False).stdout.split():
            if name.startswith(RULE_PREFIX):
                _run("ipset", "destroy", name, check=False)

    @staticmethod
    def _remove_cgroups() -> None:
        for controller in CGROUP_ROOT.iterdir():
            base = controller / KUBEPODS
            if not base.is_dir() or base.is_symlink():
                continue
            for path in sorted(base.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if path.is_dir():
                    with contextlib.suppress(OSError):
                        path.rmdir()
            with contextlib.suppress(OSError):
                base.rmdir()


def _remove_chains(command: str, prefix: str) -> None:
    """Delete every rule that jumps to a chain named `prefix*`, then those chains, per table."""
    if shutil.which(command) is None:
        return
    for table in ("filter", "nat", "mangle", "raw"):
        saved = _run(f"{command}-save", "-t", table, check=False).stdout.splitlines()
        for line in saved:
            if not line.startswith("-A "):
                continue
            parts = shlex.split(line)  # comments are quoted and hold spaces
            jumps = "-j" in parts and parts[parts.index("-j") + 1].startswith(prefix)
            if jumps and not parts[1].startswith(prefix):
                _run(command, "-t", table, "-D", *parts[1:], check=False)
        chains = [line[1:].split()[0] for line in saved if line.startswith(f":{prefix}")]
        for chain in chains:
            _run(command, "-t", table, "-F", chain, check=False)
        for chain in chains:
            _run(command, "-t", table, "-X", chain, check=False)


def _cgroup_pids() -> list[int]:
    found: set[int] = set()
    for controller in ("pids", "memory", "cpu", "freezer"):
        base = CGROUP_ROOT / controller / KUBEPODS
        if not base.is_dir():
            continue
        for procs in base.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                found.update(int(line) for line in procs.read_text().split())
    return sorted(found)


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split()[4]
        points.append(field.replace("\\040", " "))
    return points


def leftovers(node: RealNode) -> list[str]:
    """What a stopped node must not leave behind, for tests and `cluster status`: processes,
    mounts, the bridge and veths, iptables rules and ipsets, kubepods cgroups."""
    found: list[str] = []
    names = ("kubelet", "containerd", "containerd-shim-runc-v2", "kube-proxy")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            binary = Path(cmdline[0].decode(errors="replace")).name
            # Shims name their containerd's socket, in the node's run directory.
            joined = b" ".join(cmdline)
            ours = any(
                str(d).encode() in joined for d in (node.dir, node.run_dir, node.kubelet_dir)
            )
            if binary in names and ours:
                found.append(f"process {entry.name} ({binary})")
    found += [
        f"mount {m}" for m in _mount_points() if m.startswith((str(node.dir), str(node.run_dir)))
    ]
    if node.run_dir.exists():
        found.append(f"directory {node.run_dir}")
    if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        found.append(f"interface {BRIDGE}")
    routes = _run("ip", "route", "show", "type", "unreachable", check=False).stdout
    blocked = {prefix.removesuffix("/32") for prefix in UNREACHABLE}
    found += [f"route {line}" for line in routes.splitlines() if line.split()[-1] in blocked]
    for command in ("iptables-save", "ip6tables-save"):
        rules = _run(command, check=False).stdout if shutil.which(command) else ""
        found += [
            f"{command}: {line}"
            for line in rules.splitlines()
            if RULE_PREFIX in line or BRIDGE in line
        ]
    sets = _run("ipset", "list", "-n", check=False).stdout.split()
    found += [f"ipset {name}" for name in sets if name.startswith(RULE_PREFIX)]
    if _cgroup_pids():
        found.append("processes in kubepods cgroups")
    return found
