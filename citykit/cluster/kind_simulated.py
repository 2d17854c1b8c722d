"""The simulated half of a kind cluster whose environment uses local images.

kind's nodes run real containers, but this machine pulls no upstream image: only the components
whose images `citykit images build` makes can run there. So kind's workers carry the RUNTIME
label and taint (only those pods land on them), and kwok, run here as a process against kind's
API server, plays nodes of every pool for the rest, as in the local cluster. kwok's pid is kept
in `<kind state>/kwok.json`; `cluster down` stops it before kind deletes the nodes, and `up`
starts it again when it is gone (after a reboot, say)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from citykit import toolchain
from citykit.cluster import processes
from citykit.cluster.control_plane import Scale
from citykit.cluster.control_plane import kwok_args
from citykit.cluster.control_plane import kwok_stages
from citykit.cluster.processes import ComponentState
from citykit.conventions import NODE_TYPE_LABEL
from citykit.errors import OperationFailed
from citykit.plan.node_pools import NodeSpec
from citykit.plan.node_pools import node_object

Progress = Callable[[str], None]

# kwok gives a simulated pod an IP from its node's podCIDR, which kind's controller-manager
# allocates from the cluster's pod subnet like any node's, so no simulated pod shares a real pod's
# IP. This range is kwok's fallback for a node without one.
POD_CIDR = "10.250.0.1/16"
STATE_FILE = "kwok.json"
BINARY = "kwok"


def state(directory: Path) -> ComponentState | None:
    try:
        data = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    pid = int(data["pid"])
    return ComponentState(BINARY, pid, int(data["port"]), processes.alive(pid, BINARY))


def running(directory: Path) -> bool:
    found = state(directory)
    return found is not None and found.alive


def ensure(directory: Path, kubeconfig: Path, nodes: list[NodeSpec], progress: Progress) -> None:
    """kwok runs against the cluster and `nodes` are registered and Ready; starts what is
    missing, so it is safe to call on every `up`."""
    scale = Scale(len(nodes))
    started = None if running(directory) else _start(directory, kubeconfig, scale, progress)
    progress(f"registering {len(nodes)} simulated nodes beside kind's")
    _register(kubeconfig, nodes)
    _wait_ready(directory, kubeconfig, len(nodes), scale.timeout, started)


def stop(directory: Path) -> None:
    found = state(directory)
    if found is not None and found.alive:
        processes.stop([found], {BINARY: BINARY}, directory)
    (directory / STATE_FILE).unlink(missing_ok=True)


def _start(
    directory: Path, kubeconfig: Path, scale: Scale, progress: Progress
) -> subprocess.Popen[bytes]:
    progress("starting kwok for the simulated nodes")
    config = directory / "kwok.yaml"
    config.write_text(kwok_stages())
    port = processes.free_port()
    args = kwok_args(kubeconfig, config, port, scale, POD_CIDR)
    with (directory / "kwok.log").open("ab") as log:
        process = subprocess.Popen(
            [str(toolchain.find(BINARY)), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=directory,
            start_new_session=True,
            env=toolchain.path_env(),
        )
    (directory / STATE_FILE).write_text(json.dumps({"pid": process.pid, "port": port}))
    return process


def _kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _register(kubeconfig: Path, nodes: list[NodeSpec]) -> None:
    """Create the Node objects (a create keeps their status: kwok reads capacity from it); those
    registered by an earlier run stay as they are."""
    listing = {"apiVersion": "v1", "kind": "List", "items": [node_object(n) for n in nodes]}
    result = _kubectl(kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(listing))
    problems = [
        line for line in result.stderr.splitlines() if line.strip() and "AlreadyExists" not in line
    ]
    if result.returncode != 0 and problems:
        raise OperationFailed("registering the simulated nodes failed: " + "\n".join(problems))


def _wait_ready(
    directory: Path,
    kubeconfig: Path,
    count: int,
    timeout: float,
    started: subprocess.Popen[bytes] | None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A process just started is polled directly: until it execs, /proc shows python.
        if started.poll() is not None if started else not running(directory):
            log = directory / "kwok.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
            raise OperationFailed(f"kwok exited:\n{tail}", hint=f"full log: {log}")
        result = _kubectl(
            kubeconfig, "get", "nodes", "-l", f"{NODE_TYPE_LABEL}=kwok", "--no-headers"
        )
        statuses = [line.split()[1] for line in result.stdout.splitlines() if len(line.split()) > 1]
        if result.returncode == 0 and sum(s.split(",")[0] == "Ready" for s in statuses) >= count:
            return
        time.sleep(1)
    raise OperationFailed(
        f"the {count} simulated nodes are not Ready after {timeout:.0f}s",
        hint=f"kwok's log: {directory / 'kwok.log'}",
    )
