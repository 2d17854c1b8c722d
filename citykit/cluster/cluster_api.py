"""The local cluster's API, as its admin: kubectl, server-side apply (split among processes for
objects that do not depend on each other), node registration over keep-alive connections, and
the readiness checks that starting the cluster waits on."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from citykit.cluster.control_plane import ClusterPaths
from citykit.errors import OperationFailed
from citykit.errors import ToolMissing

# Connections that register simulated nodes at once (register_nodes).
PARALLEL_REGISTRATIONS = 4


class ClusterAPI(ClusterPaths):
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

    # -- readiness -----------------------------------------------------------------------------
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
