"""The local cluster: a real Kubernetes control plane on loopback with simulated nodes.

etcd, kube-apiserver (TLS, RBAC, Pod Security admission, audit log), kube-controller-manager and
kube-scheduler run as real processes; kwok plays the kubelets (nodes Ready, pods Running with IPs,
jobs complete, deletions finish) and provisions volumes for the `citykit-local` StorageClass.
Processes run detached, so the cluster outlives the command that started it; their pids and ports
are kept in `<state>/clusters/<name>/state.json`."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from citykit import paths, toolchain
from citykit.cluster import addons, certs, realnode
from citykit.cluster.audit_policy import audit_policy as default_audit_policy
from citykit.cluster.realnode import RealNode
from citykit.errors import InputError, OperationFailed, ToolMissing
from citykit.images import containerd
from citykit.plan.node_pools import NodeSpec, node_object

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# The real node's processes, started after the control plane when the environment asks for it.
NODE_COMPONENTS = ("containerd", "kubelet", "kube-proxy", "volumes")
# The simulated nodes carry this annotation (nodes.node_object); kwok manages only those, so a
# real kubelet's node is left to the kubelet.
KWOK_NODE_SELECTOR = "kwok.x-k8s.io/node=fake"
KWOK_VOLUME_ROOT = "/var/lib/citykit-local"
STORAGE_CLASS = "citykit-local"
SERVICE_CIDR = "10.96.0.0/16"
START_TIMEOUT = 90.0
# Connections that register simulated nodes at once (register_nodes).
PARALLEL_REGISTRATIONS = 4

Progress = Callable[[str], None]


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


@dataclass(frozen=True)
class ComponentState:
    name: str
    pid: int
    port: int
    alive: bool


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int, binary: str) -> bool:
    """True when `pid` runs `binary` (pids are reused, so the command line is checked)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return stat[0] != "Z" and Path(cmdline.decode(errors="replace")).name == binary


class LocalCluster:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = paths.state_dir() / "clusters" / name
        # Processes started by this object: polled directly while starting, because right after
        # fork /proc still shows the parent's command line, not the tool's.
        self._started: dict[str, subprocess.Popen[bytes]] = {}

    # -- state ----------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def _state(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.dir / "state.json").read_text())
            return data
        except (OSError, ValueError):
            return None

    def components(self) -> list[ComponentState]:
        state = self._state() or {}
        binaries = state.get("binaries", {})
        return [
            ComponentState(
                name,
                pid,
                state["ports"].get(name, 0),
                _alive(pid, binaries.get(name, name)),
            )
            for name, pid in state.get("pids", {}).items()
        ]

    def expected(self) -> tuple[str, ...]:
        state = self._state() or {}
        return (*COMPONENTS, *NODE_COMPONENTS) if state.get("real_node") else COMPONENTS

    def running(self) -> bool:
        found = {c.name: c for c in self.components()}
        return (
            all(name in found and found[name].alive for name in self.expected()) and self._healthy()
        )

    @property
    def real_node(self) -> RealNode | None:
        """The real node of this cluster, when it was started with one."""
        state = self._state() or {}
        return RealNode(self.dir, self.name) if state.get("real_node") else None

    def exists(self) -> bool:
        return self.dir.exists()

    # -- lifecycle -----------------------------------------------------------------------
    def up(
        self,
        nodes: list[NodeSpec],
        audit_policy: dict[str, Any] | None = None,
        progress: Progress | None = None,
        real_node: bool = False,
    ) -> None:
        """Start the control plane and `nodes` simulated by kwok; with `real_node`, also a
        kubelet with containerd on this host (see realnode.py)."""
        say = progress or (lambda message: None)
        if self.exists():
            if self.running():
                raise InputError(
                    f"local cluster {self.name!r} is already running",
                    hint=f"use it (kubeconfig: {self.kubeconfig}), or stop it first with "
                    f"`citykit cluster down --name {self.name}`",
                )
            say(f"found stale state of cluster {self.name!r} (a killed run?); cleaning it up")
            self.down()
        for tool in COMPONENTS:
            toolchain.find(tool)
        if real_node:
            realnode.check_host()
            for tool in ("kubelet", "kube-proxy"):
                toolchain.find(tool)
        started = time.monotonic()
        try:
            self._start(nodes, audit_policy or default_audit_policy(), say, real_node)
        except BaseException:
            say("start failed; stopping what was started (logs are kept)")
            self._stop_everything()
            raise
        say(
            f"cluster {self.name!r} ready in {time.monotonic() - started:.1f}s; "
            f"kubeconfig {self.kubeconfig}"
        )

    def _start(
        self, nodes: list[NodeSpec], audit_policy: dict[str, Any], say: Progress, real_node: bool
    ) -> None:
        self.dir.mkdir(parents=True)
        for sub in ("pki", "logs", "audit", "etcd"):
            (self.dir / sub).mkdir()
        node = RealNode(self.dir, self.name) if real_node else None
        saved_sysctls = realnode.read_sysctls() if node else {}
        ports = {name: _free_port() for name in (*COMPONENTS, "etcd-peer")}
        if node:
            ports["kube-apiserver"] = _require_port(realnode.APISERVER_PORT)
            ports.update(
                {name: _free_port() for name in ("kubelet", "kubelet-healthz", "kube-proxy")}
            )
        scale = Scale(len(nodes))
        self._write_state(ports, {}, {"real_node": bool(node), "sysctls": saved_sysctls})
        if node:
            say("preparing the real node's network (bridge citykit0, forwarding)")
            node.prepare_network()
        say("generating certificates")
        certs.generate(self.dir / "pki", (realnode.NODE_IP,) if node else ())
        self._write_kubeconfig(ports["kube-apiserver"])
        (self.dir / "audit" / "policy.yaml").write_text(yaml.safe_dump(audit_policy))
        pids: dict[str, int] = {}
        binaries: dict[str, str] = {}

        def start(name: str, args: list[str], binary: str | None = None) -> None:
            say(f"starting {name}")
            log = (self.dir / "logs" / f"{name}.log").open("ab")
            executable = binary or str(toolchain.find(name))
            process = subprocess.Popen(
                [executable, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,
                env=toolchain.path_env(),
            )
            pids[name] = process.pid
            binaries[name] = Path(executable).name
            self._started[name] = process
            self._write_state(
                ports, pids, {"real_node": bool(node), "sysctls": saved_sysctls}, binaries
            )

        start("etcd", self._etcd_args(ports))
        self._wait(lambda: self._http_ok(f"http://127.0.0.1:{ports['etcd']}/health"), "etcd")
        start("kube-apiserver", self._apiserver_args(ports, real_node=bool(node)))
        self._wait(self._healthy, "kube-apiserver")
        start("kube-controller-manager", self._controller_manager_args(ports, scale))
        start("kube-scheduler", self._scheduler_args(ports))
        (self.dir / "kwok.yaml").write_text(self._kwok_config(node))
        start("kwok", self._kwok_args(ports, scale))
        say(f"registering {len(nodes)} simulated nodes and the {STORAGE_CLASS} StorageClass")
        self.apply([_storage_class()])
        self.register_nodes([node_object(n) for n in nodes])
        self._wait(lambda: self._nodes_ready(len(nodes)), "nodes Ready", scale.timeout)
        self._wait(self._default_service_account, "the default ServiceAccount")
        if node:
            self._start_node(node, ports, start, say)
            self._wait(lambda: self._nodes_ready(len(nodes) + 1), "the real node Ready")
            self._wait(self._addons_ready, "CoreDNS and kube-router on the real node")

    def _start_node(
        self,
        node: RealNode,
        ports: dict[str, int],
        start: Callable[[str, list[str], str | None], None],
        say: Progress,
    ) -> None:
        node.write_config(
            ports["kube-apiserver"],
            realnode.Ports(
                kubelet=ports["kubelet"],
                kubelet_healthz=ports["kubelet-healthz"],
                proxy_metrics=ports["kube-proxy"],
                proxy_healthz=_free_port(),
            ),
        )
        start("containerd", node.containerd_args(), shutil.which("containerd"))
        self._wait(node.containerd_socket.exists, "containerd")
        say("loading the node's system images (pause, CoreDNS, kube-router)")
        for archive in addons.build_images(say):
            containerd.load(archive, str(node.containerd_socket))
        start("kubelet", node.kubelet_args(), None)
        start("kube-proxy", node.proxy_args(), None)
        start(
            "volumes",
            [
                "-m",
                "citykit.cluster.volumes",
                f"--pki={self.dir / 'pki'}",
                f"--server=https://127.0.0.1:{ports['kube-apiserver']}",
                f"--root={node.volumes}",
            ],
            sys.executable,
        )
        say("deploying cluster DNS and NetworkPolicy enforcement to kube-system")
        self.apply(addons.objects())

    def down(self) -> None:
        """Stop every process this cluster started and remove its state; a real node also takes
        back what it put on the host (pods, mounts, network, iptables, sysctls)."""
        self._stop_everything()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_everything(self) -> None:
        state = self._state() or {}
        self._stop_processes()
        if state.get("real_node"):
            RealNode(self.dir, self.name).stop(state.get("sysctls", {}))

    def _stop_processes(self) -> None:
        found = [c for c in self.components() if c.alive]
        state = self._state() or {}
        binaries = state.get("binaries", {})
        for component in reversed(found):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(component.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            _alive(c.pid, binaries.get(c.name, c.name)) for c in found
        ):
            time.sleep(0.2)
        for component in found:
            if _alive(component.pid, binaries.get(component.name, component.name)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(component.pid, signal.SIGKILL)
        for component in found:
            for _ in range(50):
                if not _alive(component.pid, binaries.get(component.name, component.name)):
                    break
                time.sleep(0.1)
        # Belt and braces: anything still running with this cluster's directory in its command
        # line is one of ours (a pid the state file lost, a process stuck in shutdown).
        for pid in self._stray_processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _stray_processes(self) -> list[int]:
        marker = (str(self.dir) + "/").encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    # -- Kubernetes access ------------------------------------------------------------------
    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise ToolMissing("kubectl is not installed", hint="install kubectl (Debian: kubectl)")
        result = subprocess.run(
            [kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise OperationFailed(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def apply(self, objects: list[dict[str, Any]], parallel: int = 1) -> None:
        """Server-side apply `objects`, in order; with `parallel`, split among that many kubectl
        processes at once (for objects that do not depend on each other). Ctrl-C stops them."""
        chunks = [objects[i::parallel] for i in range(parallel) if objects[i::parallel]]
        if len(chunks) <= 1:
            text = yaml.safe_dump_all(objects, sort_keys=False)
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=text)
            return
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise ToolMissing("kubectl is not installed", hint="install kubectl (Debian: kubectl)")
        work = self.dir / "apply"
        work.mkdir(exist_ok=True)
        running: list[tuple[subprocess.Popen[bytes], Path]] = []
        try:
            for index, chunk in enumerate(chunks):
                manifest, log = work / f"{index}.yaml", work / f"{index}.log"
                manifest.write_text(yaml.safe_dump_all(chunk, sort_keys=False))
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        [
                            kubectl,
                            "--kubeconfig",
                            str(self.kubeconfig),
                            "apply",
                            "--server-side",
                            "--force-conflicts",
                            "-f",
                            str(manifest),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=out,
                        stdin=subprocess.DEVNULL,
                    )
                running.append((process, log))
            failed = [log for process, log in running if process.wait() != 0]
        finally:
            for process, _ in running:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        if failed:
            raise OperationFailed(
                "kubectl apply failed: " + failed[0].read_text(errors="replace").strip()
            )

    def register_nodes(self, nodes: list[dict[str, Any]]) -> None:
        """Create the Node objects over PARALLEL_REGISTRATIONS keep-alive connections to the API
        server. kubectl sends a large batch slowly (a thousand nodes took minutes on two cores;
        these are seconds), and nodes depend on nothing, so they need no apply semantics."""
        port = (self._state() or {})["ports"]["kube-apiserver"]
        context = self._admin_context()

        def create(chunk: list[dict[str, Any]]) -> None:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
            try:
                for node in chunk:
                    connection.request(
                        "POST",
                        "/api/v1/nodes",
                        body=json.dumps(node),
                        headers={"Content-Type": "application/json"},
                    )
                    response = connection.getresponse()
                    body = response.read()
                    # 409: registered before (an earlier attempt); nodes are never changed.
                    if response.status not in (200, 201, 409):
                        raise OperationFailed(
                            f"registering node {node['metadata']['name']} failed: "
                            f"HTTP {response.status}: {body[:500].decode(errors='replace')}"
                        )
            finally:
                connection.close()

        chunks = [nodes[i::PARALLEL_REGISTRATIONS] for i in range(PARALLEL_REGISTRATIONS)]
        with ThreadPoolExecutor(max_workers=PARALLEL_REGISTRATIONS) as pool:
            list(pool.map(create, [c for c in chunks if c]))  # list(): re-raises a failure

    def nodes(self) -> list[dict[str, Any]]:
        result = self.kubectl("get", "nodes", "-o", "json", check=False)
        if result.returncode != 0:
            return []
        items: list[dict[str, Any]] = json.loads(result.stdout).get("items", [])
        return items

    # -- helpers ------------------------------------------------------------------------------
    def _write_state(
        self,
        ports: dict[str, int],
        pids: dict[str, int],
        extra: dict[str, Any] | None = None,
        binaries: dict[str, str] | None = None,
    ) -> None:
        state = {
            "name": self.name,
            "ports": ports,
            "pids": pids,
            "binaries": binaries or {},
            "python": sys.executable,
            **(extra or {}),
        }
        (self.dir / "state.json").write_text(json.dumps(state, indent=2))

    def _write_kubeconfig(self, port: int) -> None:
        pki = self.dir / "pki"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {
                        "server": f"https://127.0.0.1:{port}",
                        "certificate-authority": str(pki / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": "citykit-admin",
                    "user": {
                        "client-certificate": str(pki / "admin.crt"),
                        "client-key": str(pki / "admin.key"),
                    },
                }
            ],
            "contexts": [
                {"name": self.name, "context": {"cluster": self.name, "user": "citykit-admin"}}
            ],
            "current-context": self.name,
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

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
                f"--advertise-address={realnode.NODE_IP}",
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
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--config={self.dir / 'kwok.yaml'}",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_SELECTOR}",
            # Renew node leases like a kubelet does; without them the node lifecycle controller
            # marks every node NotReady after its grace period and flips its pods to not ready.
            f"--node-lease-duration-seconds={scale.lease_seconds}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            f"--cidr={realnode.SIMULATED_POD_CIDR.replace('.0/', '.1/')}",
            f"--node-ip={realnode.SIMULATED_NODE_IP}",
        ]

    @staticmethod
    def _kwok_config(node: RealNode | None) -> str:
        stages = resources.files("citykit.cluster").joinpath("kwok-stages.yaml").read_text()
        if node is None:
            return stages
        # Volumes of a cluster with a real node are real directories: keep them in the node's
        # directory, so `cluster down` removes them with everything else. The kubelet waits
        # until the volumes process has made each one writable (type Directory), instead of
        # creating it itself, owned by root, before that.
        return stages.replace(KWOK_VOLUME_ROOT, str(node.volumes)).replace(
            "type: DirectoryOrCreate", "type: Directory"
        )

    def _http_ok(self, url: str, context: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _admin_context(self) -> ssl.SSLContext:
        pki = self.dir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return context

    def _healthy(self) -> bool:
        state = self._state()
        if not state:
            return False
        try:
            context = self._admin_context()
        except (OSError, ssl.SSLError):
            return False
        return self._http_ok(
            f"https://127.0.0.1:{state['ports']['kube-apiserver']}/readyz", context
        )

    def _nodes_ready(self, count: int) -> bool:
        # The server's table (NAME STATUS ...), not the objects: polled while a thousand nodes
        # start, their JSON would be megabytes a time.
        result = self.kubectl("get", "nodes", "--no-headers", check=False)
        if result.returncode != 0:
            return False
        statuses = [line.split()[1] for line in result.stdout.splitlines() if len(line.split()) > 1]
        return sum(status.split(",")[0] == "Ready" for status in statuses) >= count

    def _addons_ready(self) -> bool:
        """Cluster DNS answers and NetworkPolicies are enforced before any city pod starts."""
        result = self.kubectl(
            "get", "deployment,daemonset", "-n", "kube-system", "-o", "json", check=False
        )
        if result.returncode != 0:
            return False
        items = json.loads(result.stdout).get("items", [])
        ready = {
            item["metadata"]["name"]: bool(
                item.get("status", {}).get("availableReplicas")
                or item.get("status", {}).get("numberReady")
            )
            for item in items
        }
        return ready.get("coredns", False) and ready.get("kube-router", False)

    def _default_service_account(self) -> bool:
        return (
            self.kubectl(
                "get", "serviceaccount", "default", "-n", "default", check=False
            ).returncode
            == 0
        )

    def _wait(self, check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        pause = 0.25
        while time.monotonic() < deadline:
            for name, process in self._started.items():
                if process.poll() is not None:
                    log = self.dir / "logs" / f"{name}.log"
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
                    raise OperationFailed(
                        f"{name} exited while waiting for {what}:\n{tail}",
                        hint=f"full log: {log}",
                    )
            if check():
                return
            time.sleep(pause)
            # Checks are API calls: a slow start is polled less often, so the polling does not
            # take the CPU the control plane needs (a list of a thousand nodes is megabytes).
            pause = min(2.0, pause * 1.2)
        raise OperationFailed(
            f"timed out after {timeout:.0f}s waiting for {what}",
            hint=f"logs: {self.dir / 'logs'}",
        )


def _require_port(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the API server binds: connections of a stopped cluster in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            raise InputError(
                f"port {port} is in use; a cluster with a real node serves the API there",
                hint="stop the other cluster (`citykit cluster down`) or what listens on it",
            ) from None
    return port


def _storage_class() -> dict[str, Any]:
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
