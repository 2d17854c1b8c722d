"""The local cluster: a real Kubernetes control plane on loopback with simulated nodes.

etcd, kube-apiserver (TLS, RBAC, Pod Security admission, audit log), kube-controller-manager and
kube-scheduler run as real processes; kwok plays the kubelets (nodes Ready, pods Running with IPs,
jobs complete, deletions finish) and provisions volumes for the `citykit-local` StorageClass.
Processes run detached, so the cluster outlives the command that started it; their pids and ports
are kept in `<state>/clusters/<name>/state.json`."""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from citykit import paths, security, toolchain
from citykit.cluster import certs
from citykit.cluster.nodes import NodeSpec, node_object
from citykit.errors import InputError, OperationFailed, ToolMissing

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
STORAGE_CLASS = "citykit-local"
SERVICE_CIDR = "10.96.0.0/16"
START_TIMEOUT = 90.0

Progress = Callable[[str], None]


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
        return [
            ComponentState(
                name,
                state["pids"][name],
                state["ports"].get(name, 0),
                _alive(state["pids"][name], name),
            )
            for name in COMPONENTS
            if name in state.get("pids", {})
        ]

    def running(self) -> bool:
        found = self.components()
        return len(found) == len(COMPONENTS) and all(c.alive for c in found) and self._healthy()

    def exists(self) -> bool:
        return self.dir.exists()

    # -- lifecycle -----------------------------------------------------------------------
    def up(
        self,
        nodes: list[NodeSpec],
        audit_policy: dict[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> None:
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
        started = time.monotonic()
        try:
            self._start(nodes, audit_policy or security.audit_policy(), say)
        except BaseException:
            say("start failed; stopping what was started")
            self._stop_processes()
            raise
        say(
            f"cluster {self.name!r} ready in {time.monotonic() - started:.1f}s; "
            f"kubeconfig {self.kubeconfig}"
        )

    def _start(self, nodes: list[NodeSpec], audit_policy: dict[str, Any], say: Progress) -> None:
        self.dir.mkdir(parents=True)
        for sub in ("pki", "logs", "audit", "etcd"):
            (self.dir / sub).mkdir()
        say("generating certificates")
        certs.generate(self.dir / "pki")
        ports = {name: _free_port() for name in (*COMPONENTS, "etcd-peer")}
        self._write_state(ports, {})
        self._write_kubeconfig(ports["kube-apiserver"])
        (self.dir / "audit" / "policy.yaml").write_text(yaml.safe_dump(audit_policy))
        pids: dict[str, int] = {}

        def start(name: str, args: list[str]) -> None:
            say(f"starting {name}")
            log = (self.dir / "logs" / f"{name}.log").open("ab")
            process = subprocess.Popen(
                [str(toolchain.find(name)), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,
            )
            pids[name] = process.pid
            self._started[name] = process
            self._write_state(ports, pids)

        start("etcd", self._etcd_args(ports))
        self._wait(lambda: self._http_ok(f"http://127.0.0.1:{ports['etcd']}/health"), "etcd")
        start("kube-apiserver", self._apiserver_args(ports))
        self._wait(self._healthy, "kube-apiserver")
        start("kube-controller-manager", self._controller_manager_args(ports))
        start("kube-scheduler", self._scheduler_args(ports))
        (self.dir / "kwok.yaml").write_text(self._kwok_config())
        start("kwok", self._kwok_args(ports))
        say(f"registering {len(nodes)} simulated nodes and the {STORAGE_CLASS} StorageClass")
        self.apply([node_object(n) for n in nodes] + [_storage_class()])
        self._wait(lambda: self._nodes_ready(len(nodes)), "nodes Ready")
        self._wait(self._default_service_account, "the default ServiceAccount")

    def down(self) -> None:
        """Stop every process this cluster started and remove its state."""
        self._stop_processes()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_processes(self) -> None:
        found = [c for c in self.components() if c.alive]
        for component in reversed(found):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(component.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(c.pid, c.name) for c in found):
            time.sleep(0.2)
        for component in found:
            if _alive(component.pid, component.name):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(component.pid, signal.SIGKILL)
        for component in found:
            for _ in range(50):
                if not _alive(component.pid, component.name):
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

    def apply(self, objects: list[dict[str, Any]]) -> None:
        text = yaml.safe_dump_all(objects, sort_keys=False)
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=text)

    def nodes(self) -> list[dict[str, Any]]:
        result = self.kubectl("get", "nodes", "-o", "json", check=False)
        if result.returncode != 0:
            return []
        items: list[dict[str, Any]] = json.loads(result.stdout).get("items", [])
        return items

    # -- helpers ------------------------------------------------------------------------------
    def _write_state(self, ports: dict[str, int], pids: dict[str, int]) -> None:
        state = {"name": self.name, "ports": ports, "pids": pids, "python": sys.executable}
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

    def _apiserver_args(self, ports: dict[str, int]) -> list[str]:
        pki, audit = self.dir / "pki", self.dir / "audit"
        return [
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # The apiserver refuses a loopback advertise address with an endpoint reconciler;
            # no real pod ever dials the `kubernetes` Service of a simulated cluster.
            "--endpoint-reconciler-type=none",
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

    def _controller_manager_args(self, ports: dict[str, int]) -> list[str]:
        pki = self.dir / "pki"
        return [
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

    def _kwok_args(self, ports: dict[str, int]) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--config={self.dir / 'kwok.yaml'}",
            "--manage-all-nodes=true",
            # Renew node leases like a kubelet does; without them the node lifecycle controller
            # marks every node NotReady after 40s and flips its pods to not ready.
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            "--cidr=10.244.0.1/16",
            "--node-ip=10.0.0.1",
        ]

    @staticmethod
    def _kwok_config() -> str:
        return resources.files("citykit.cluster").joinpath("kwok-stages.yaml").read_text()

    def _http_ok(self, url: str, context: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _healthy(self) -> bool:
        state = self._state()
        if not state:
            return False
        pki = self.dir / "pki"
        try:
            context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
            context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        except (OSError, ssl.SSLError):
            return False
        return self._http_ok(
            f"https://127.0.0.1:{state['ports']['kube-apiserver']}/readyz", context
        )

    def _nodes_ready(self, count: int) -> bool:
        ready = [
            n
            for n in self.nodes()
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= count

    def _default_service_account(self) -> bool:
        return (
            self.kubectl(
                "get", "serviceaccount", "default", "-n", "default", check=False
            ).returncode
            == 0
        )

    def _wait(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
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
            time.sleep(0.25)
        raise OperationFailed(
            f"timed out after {START_TIMEOUT:.0f}s waiting for {what}",
            hint=f"logs: {self.dir / 'logs'}",
        )


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
