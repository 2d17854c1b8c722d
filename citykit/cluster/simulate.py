"""`citykit simulate`: capacity planning on a throwaway local control plane.

A local cluster (local.py) of its own name, `citykit-sim-<pid>`, starts with N kwok nodes shaped
like the environment's pools, the compiled city is applied to it (no Pulumi: only what the
scheduler sees matters), the scheduler and controllers are left to decide every pod, and
placement.py reads the result. The cluster is removed afterwards, on failure, Ctrl-C and SIGTERM
too; one left by a killed run (its pid gone) is removed by the next run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from citykit import paths
from citykit.cluster import placement
from citykit.cluster.local import LocalCluster
from citykit.compiler import Compiled
from citykit.errors import InputError
from citykit.errors import OperationFailed
from citykit.plan import node_pools
from citykit.plan.node_pools import NodeSpec
from citykit.plan.planned import Plan

Progress = Callable[[str], None]
PREFIX = "citykit-sim-"
MAX_NODES = 5000
# A throwaway cluster audits nothing: at a thousand nodes the log would be written for every
# lease renewal, and nobody reads it.
NO_AUDIT = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}
# Applied first, so the rest finds its namespaces and the API its custom kinds.
FIRST = ("Namespace", "CustomResourceDefinition")
APPLY_PROCESSES = 4
POLL_SECONDS = 2.0
# Settled: every replica has a pod on a node, or every pod is decided and nothing changed for
# this many polls (a controller that cannot create a pod, e.g. over quota, retries without end;
# the scheduler retries an unschedulable pod when the cluster changes).
STABLE_POLLS = 6
SETTLE_TIMEOUT = 600.0


def apportion(weights: Sequence[int], total: int) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder; ties to the first)."""
    whole = sum(weights)
    if whole <= 0:
        return [0 for _ in weights]
    exact = [total * w / whole for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def shape(plan: Plan, count: int) -> list[NodeSpec]:
    """`count` nodes in the proportions of the environment's pools: each group of alike nodes
    (pool and zone: general and GPU nodes in the core zone, each district's edge nodes in its
    zone) gets its share, named and sized as nodes.py makes it."""
    if not 1 <= count <= MAX_NODES:
        raise InputError(
            f"--nodes: {count} is not between 1 and {MAX_NODES}",
            hint="simulate at most a few thousand nodes on one machine",
        )
    groups: dict[tuple[str, str], list[NodeSpec]] = {}
    for node in node_pools.nodes_for(plan):
        groups.setdefault((node.pool, node.zone), []).append(node)
    if not groups:
        raise InputError(
            "the environment declares no nodes", hint="set cluster.nodes in the environment"
        )
    shaped: list[NodeSpec] = []
    for members, size in zip(
        groups.values(), apportion([len(m) for m in groups.values()], count), strict=True
    ):
        stem = re.sub(r"-\d+$", "", members[0].name)
        shaped += [dataclasses.replace(members[0], name=f"{stem}-{i}") for i in range(size)]
    return shaped


# -- the run ----------------------------------------------------------------------------------
class Sampler:
    """Peak resident memory of the control plane's processes, sampled every second."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.peak_total = 0
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        total = 0
        for component in self.cluster.components():
            rss = _rss(component.pid) if component.alive else 0
            total += rss
            self.peak[component.name] = max(self.peak.get(component.name, 0), rss)
        self.peak_total = max(self.peak_total, total)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C, so the cluster is removed either way (SIGKILL cannot be
    caught: the next run removes what it left)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sweep(say: Progress) -> None:
    """Remove simulation clusters whose run is gone (killed with SIGKILL, or the machine
    rebooted): their name carries the pid of the run that started them."""
    root = paths.state_dir() / "clusters"
    for directory in sorted(root.glob(f"{PREFIX}*")) if root.is_dir() else []:
        match = re.fullmatch(rf"{PREFIX}(\d+)", directory.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        say(f"removing simulation cluster {directory.name!r} left by a killed run")
        LocalCluster(directory.name).down()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(compiled: Compiled, nodes: list[NodeSpec], say: Progress) -> dict[str, Any]:
    """Start the throwaway cluster, apply the city, wait for the scheduler, report; the cluster
    is removed whatever happens."""
    sweep(say)
    cluster = LocalCluster(f"{PREFIX}{os.getpid()}")
    seconds: dict[str, float] = {}
    started = time.monotonic()
    with _sigterm_interrupts(), Sampler(cluster) as sampler:
        try:
            cluster.up(nodes, NO_AUDIT, progress=say)
            seconds["controlPlaneAndNodes"] = time.monotonic() - started
            mark = time.monotonic()
            _apply(cluster, compiled.objects(), say)
            seconds["apply"] = time.monotonic() - mark
            mark = time.monotonic()
            _settle(cluster, say)
            seconds["scheduling"] = time.monotonic() - mark
            report = _report(cluster)
            sampler.sample()
        finally:
            say(f"removing the simulation cluster {cluster.name!r}")
            cluster.down()
    seconds["total"] = time.monotonic() - started
    report["run"] = {
        "cluster": cluster.name,
        "seconds": {key: round(value, 1) for key, value in seconds.items()},
        "peakMemoryBytes": sampler.peak_total,
        "peakMemoryByComponent": dict(sampler.peak),
    }
    return report


def _apply(cluster: LocalCluster, objects: list[dict[str, Any]], say: Progress) -> None:
    first = [o for o in objects if o.get("kind") in FIRST]
    rest = [o for o in objects if o.get("kind") not in FIRST]
    say(f"applying the city: {len(first)} namespaces and CRDs, then {len(rest)} objects")
    cluster.apply(first)
    if any(o.get("kind") == "CustomResourceDefinition" for o in first):
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")
    # Namespaces and kinds exist now; the rest depends on nothing the API server checks (a
    # controller retries a pod whose ServiceAccount comes later), so it goes in parallel batches.
    cluster.apply(rest, parallel=APPLY_PROCESSES)


def _get(cluster: LocalCluster, kinds: str, *args: str) -> list[dict[str, Any]]:
    result = cluster.kubectl("get", kinds, "--all-namespaces", "-o", "json", *args)
    items: list[dict[str, Any]] = json.loads(result.stdout).get("items", [])
    return items


def _settle(cluster: LocalCluster, say: Progress) -> None:
    """Wait until the scheduler has decided every pod the controllers create."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    previous: tuple[Any, ...] = ()
    stable = 0
    while time.monotonic() < deadline:
        items = _get(cluster, "deployments,statefulsets,daemonsets,pods")
        workloads = [i for i in items if i.get("kind") in placement.WORKLOADS]
        pods = [i for i in items if i.get("kind") == "Pod"]
        wanted = sum(placement.desired(w) for w in workloads)
        undecided = sum(not placement.decided(p) for p in pods)
        state = (wanted, len(pods), undecided, sum(bool(p["spec"].get("nodeName")) for p in pods))
        stable = stable + 1 if state == previous else 0
        previous = state
        placed = state[3]
        # Pending pods may yet be placed (a claim being bound, a node becoming Ready): they
        # count once nothing has changed for a while.
        if (placed == len(pods) and len(pods) >= wanted) or (
            not undecided and stable >= STABLE_POLLS
        ):
            say(f"scheduler done: {placed} of {wanted} pods placed")
            return
        say(
            f"waiting for the scheduler: {len(pods)} of {wanted} pods created, "
            f"{undecided} undecided"
        )
        time.sleep(POLL_SECONDS)
    say(f"gave up waiting after {SETTLE_TIMEOUT:.0f}s; reporting what the scheduler decided")


def _report(cluster: LocalCluster) -> dict[str, Any]:
    items = _get(cluster, "deployments,statefulsets,daemonsets,replicasets,pods,resourcequotas")
    events = [
        e
        for e in _get(cluster, "events")
        if e.get("reason") in ("FailedScheduling", "FailedCreate")
    ]
    nodes = cluster.nodes()
    if not nodes:
        raise OperationFailed("the simulation cluster lists no nodes")

    def of(*kinds: str) -> list[dict[str, Any]]:
        return [i for i in items if i.get("kind") in kinds]

    return placement.build(
        nodes,
        of("Pod"),
        of(*placement.WORKLOADS),
        of("ReplicaSet"),
        events,
        of("ResourceQuota"),
    )
