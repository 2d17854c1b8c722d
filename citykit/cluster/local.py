"""The local cluster: a real Kubernetes control plane on loopback with simulated nodes.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as real processes
(control_plane.py has their command lines); kwok plays the kubelets (nodes Ready, pods Running
with IPs, jobs complete, deletions finish) and provisions volumes. Processes run detached
(processes.py), so the cluster outlives the command that started it; their pids and ports are
kept in `<state>/clusters/<name>/state.json`. This module starts and stops the whole; the API
access and readiness checks are cluster_api.py's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from citykit import toolchain
from citykit.cluster import addon_images
from citykit.cluster import addons
from citykit.cluster import certs
from citykit.cluster import node_config
from citykit.cluster import node_host
from citykit.cluster import processes
from citykit.cluster.audit_policy import audit_policy as default_audit_policy
from citykit.cluster.cluster_api import ClusterAPI
from citykit.cluster.control_plane import COMPONENTS
from citykit.cluster.control_plane import START_TIMEOUT
from citykit.cluster.control_plane import STORAGE_CLASS
from citykit.cluster.control_plane import ControlPlaneArgs
from citykit.cluster.control_plane import Scale
from citykit.cluster.control_plane import storage_class
from citykit.cluster.processes import ComponentState
from citykit.cluster.realnode import RealNode
from citykit.errors import InputError
from citykit.errors import OperationFailed
from citykit.images import containerd
from citykit.plan.node_pools import NodeSpec
from citykit.plan.node_pools import node_object

# The real node's processes, started after the control plane when the environment asks for it.
NODE_COMPONENTS = ("containerd", "kubelet", "kube-proxy", "volumes")

Progress = Callable[[str], None]


class LocalCluster(ControlPlaneArgs, ClusterAPI):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        # Processes started by this object: polled directly while starting, because right after
        # fork /proc still shows the parent's command line, not the tool's.
        self._started: dict[str, subprocess.Popen[bytes]] = {}

    # -- state ----------------------------------------------------------------------------
    def components(self) -> list[ComponentState]:
        state = self._state() or {}
        binaries = state.get("binaries", {})
        return [
            ComponentState(
                name,
                pid,
                state["ports"].get(name, 0),
                processes.alive(pid, binaries.get(name, name)),
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
            node_host.check_host()
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
        saved_sysctls = node_host.read_sysctls() if node else {}
        ports = {name: processes.free_port() for name in (*COMPONENTS, "etcd-peer")}
        if node:
            ports["kube-apiserver"] = processes.require_port(node_host.APISERVER_PORT)
            for name in ("kubelet", "kubelet-healthz", "kube-proxy"):
                ports[name] = processes.free_port()
        scale = Scale(len(nodes))
        self._write_state(ports, {}, {"real_node": bool(node), "sysctls": saved_sysctls})
        if node:
            say("preparing the real node's network (bridge citykit0, forwarding)")
            node.prepare_network()
        say("generating certificates")
        certs.generate(self.dir / "pki", (node_host.NODE_IP,) if node else ())
        certs.write_kubeconfig(
            self.kubeconfig,
            self.dir / "pki",
            server=f"https://127.0.0.1:{ports['kube-apiserver']}",
            cluster=self.name,
            user="citykit-admin",
            cert="admin",
        )
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
        self.apply([storage_class()])
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
            node_config.Ports(
                kubelet=ports["kubelet"],
                kubelet_healthz=ports["kubelet-healthz"],
                proxy_metrics=ports["kube-proxy"],
                proxy_healthz=processes.free_port(),
            ),
        )
        start("containerd", node.containerd_args(), shutil.which("containerd"))
        self._wait(node.containerd_socket.exists, "containerd")
        say("loading the node's system images (pause, CoreDNS, kube-router)")
        for archive in addon_images.build_images(say):
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
        binaries = (self._state() or {}).get("binaries", {})
        processes.stop(found, binaries, self.dir)

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
