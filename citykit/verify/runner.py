"""Runs the probe pods of `citykit verify` on the live cluster (kubectl, like `status`) and
collects their outcomes. Every pod is deleted when it ends, and a sweep by label before and after
the run takes away anything an interrupted run left."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed
from typing import Any

from citykit.compiler import Compiled
from citykit.conventions import SERVICE_NAME_LABEL
from citykit.conventions import VERIFY_LABEL
from citykit.deploy.engine import ClusterAccess
from citykit.deploy.engine import cluster_access
from citykit.deploy.engine import kubectl
from citykit.deploy.status import SIMULATED_NODE_ANNOTATION
from citykit.deploy.status import where_pods_run
from citykit.errors import OperationFailed
from citykit.verify import checks
from citykit.verify.checks import Outcome
from citykit.verify.checks import PodResult
from citykit.verify.checks import PodRun

PARALLEL_PODS = 6
POLL_SECONDS = 1.0
# Beyond a pod's own deadline (activeDeadlineSeconds), for the kubelet to report it ended.
GRACE_SECONDS = 15
# Waiting reasons that will not go away by waiting: report them at once.
STUCK = {
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}

Progress = Callable[[str], None]


def real_nodes(access: ClusterAccess) -> bool:
    """Whether any Ready node runs containers (is not a kwok node)."""
    result = kubectl(access, "get", "nodes", "-o", "json")
    if result.returncode != 0:
        raise OperationFailed(f"could not read the cluster's nodes: {result.stderr.strip()}")
    for node in json.loads(result.stdout).get("items", []):
        if SIMULATED_NODE_ANNOTATION in (node["metadata"].get("annotations") or {}):
            continue
        conditions = node.get("status", {}).get("conditions", []) or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return True
    return False


def service_endpoints(access: ClusterAccess) -> dict[tuple[str, str, str], list[tuple[str, int]]]:
    """The ready endpoints of every Service port, from the cluster's EndpointSlices (one
    request): what functional checks wait on before they run (checks.functional_script). Empty
    when they cannot be read: the checks then wait through the Service alone."""
    result = kubectl(access, "get", "endpointslices", "--all-namespaces", "-o", "json")
    if result.returncode != 0:
        return {}
    found: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
    for item in json.loads(result.stdout).get("items", []):
        metadata = item["metadata"]
        service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            continue
        addresses = [
            endpoint["addresses"][0]
            for endpoint in item.get("endpoints") or []
            if endpoint.get("addresses")
            # Unset means ready (discovery.k8s.io/v1).
            and (endpoint.get("conditions") or {}).get("ready") is not False
        ]
        for port in item.get("ports") or []:
            if port.get("port") is None:
                continue
            key = (metadata["namespace"], service, port.get("name") or "")
            found.setdefault(key, []).extend((a, int(port["port"])) for a in addresses)
    return {key: sorted(pairs) for key, pairs in found.items()}


def sweep(access: ClusterAccess, slug: str, *, wait: bool = False) -> None:
    """Delete every probe pod and drill Job of the city; with `wait`, return once they are
    gone (a run ends with nothing of it left, not with pods still terminating)."""
    kubectl(
        access,
        "delete",
        "pods,jobs",
        "--all-namespaces",
        "-l",
        f"{VERIFY_LABEL}={slug}",
        "--ignore-not-found",
        f"--wait={'true' if wait else 'false'}",
        "--timeout=120s",
        "--grace-period=0",
        "--cascade=foreground",
    )


class PodWatch:
    """The state of every probe pod of one city, read by one `kubectl get pods` a second however
    many pods run at once, and only while one is waited for. A poll per pod started six kubectl
    processes a second during a run; on two cores that starved the probes being waited for,
    until they missed their deadlines."""

    def __init__(self, access: ClusterAccess, slug: str) -> None:
        self._access = access
        self._selector = f"{VERIFY_LABEL}={slug}"
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self._polls = 0
        self._waiting = 0
        self._changed = threading.Condition()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="verify-pod-watch", daemon=True)

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._changed:
            self._stopped.set()
            self._changed.notify_all()
        self._thread.join()

    def _poll(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._stopped.is_set():
                    self._changed.wait()
            if self._stopped.is_set():
                return
            got = kubectl(
                self._access, "get", "pods", "--all-namespaces", "-l", self._selector, "-o", "json"
            )
            if got.returncode == 0:
                pods = {
                    (pod["metadata"]["namespace"], pod["metadata"]["name"]): pod
                    for pod in json.loads(got.stdout).get("items", [])
                }
                with self._changed:
                    self._pods = pods
                    self._polls += 1
                    self._changed.notify_all()
            self._stopped.wait(POLL_SECONDS)

    def wait(self, namespace: str, name: str, deadline: float) -> tuple[int | None, str] | None:
        """(exit code, reason) once the pod has ended or is stuck; None at the deadline."""
        with self._changed:
            # The snapshot at hand was taken before the pod was created: wait for a newer one.
            seen = self._polls
            self._waiting += 1
            self._changed.notify_all()
            try:
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._changed.wait(remaining)
                    if self._polls != seen:
                        seen = self._polls
                        pod = self._pods.get((namespace, name))
                        state = _state(pod) if pod is not None else None
                        if state is not None:
                            return state
            finally:
                self._waiting -= 1


def run_pod(access: ClusterAccess, watch: PodWatch, pod: PodRun) -> PodResult:
    """Create the pod, wait until it ends (or its deadline), read its output, delete it."""
    started = time.monotonic()
    namespace = pod.manifest["metadata"]["namespace"]
    created = kubectl(access, "create", "-f", "-", stdin=json.dumps(pod.manifest))
    if created.returncode != 0:
        return PodResult(None, "", f"not created: {created.stderr.strip()}", 0.0)
    reason = ""
    exit_code: int | None = None
    try:
        state = watch.wait(namespace, pod.name, started + pod.timeout + GRACE_SECONDS)
        if state is None:
            reason = f"timed out after {pod.timeout}s"
        else:
            exit_code, reason = state
        logs = kubectl(access, "logs", "-n", namespace, pod.name, "--tail=40")
        output = logs.stdout if logs.returncode == 0 else ""
    finally:
        kubectl(
            access,
            "delete",
            "pod",
            "-n",
            namespace,
            pod.name,
            "--ignore-not-found",
            "--wait=false",
            "--grace-period=0",
        )
    return PodResult(exit_code, output, reason, time.monotonic() - started)


def _state(pod: dict[str, Any]) -> tuple[int | None, str] | None:
    """(exit code, reason) once the pod has ended or is stuck; None while it runs."""
    status = pod.get("status", {})
    for container in status.get("containerStatuses", []) or []:
        terminated = container.get("state", {}).get("terminated")
        if terminated is not None:
            return int(terminated.get("exitCode", 1)), terminated.get("reason", "")
        waiting = container.get("state", {}).get("waiting") or {}
        if waiting.get("reason") in STUCK:
            return None, f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    if status.get("phase") == "Failed":
        return None, status.get("reason") or status.get("message") or "pod failed"
    return None


def verify(
    compiled: Compiled,
    *,
    layer: str | None,
    say: Progress,
    done: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Every check of the deployed city (or of one layer), in plan order."""
    plan = compiled.plan
    access = cluster_access(plan, start=False, progress=say)
    runs = where_pods_run(access, plan.slug)
    run_id = time.strftime("%H%M%S", time.gmtime())
    work = checks.plan_work(
        plan,
        runs,
        real_nodes=real_nodes(access),
        run_id=run_id,
        layer=layer,
        endpoints=service_endpoints(access),
    )
    sweep(access, plan.slug)
    results: dict[str, PodResult] = {}
    try:
        with PodWatch(access, plan.slug) as watch, ThreadPoolExecutor(PARALLEL_PODS) as pool:
            futures = {pool.submit(run_pod, access, watch, pod): pod for pod in work.pods}
            for future in as_completed(futures):
                results[futures[future].name] = future.result()
                if done is not None:
                    done(len(results), len(work.pods))
    finally:
        sweep(access, plan.slug, wait=True)
    order = {c.name: i for i, c in enumerate(plan.components)}
    kinds = {"functional": 0, "flow": 1, "drill": 2}
    outcomes = checks.read_results(work, results)
    return sorted(outcomes, key=lambda o: (order.get(o.component, 0), kinds[o.kind]))
