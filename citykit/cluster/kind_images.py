"""The plan's local images on a kind cluster's nodes: what `citykit up` makes sure of before it
deploys, so that no pod waits for an image its node does not have (pull policy Never).

Each image goes only to the nodes that can run it: the real (RUNTIME-labelled) nodes of the
pools of the components that use it; the verify probe to the general pool, where probes run.
It is imported the way `kind load` does (`ctr images import` in the node), then the imported
layer blobs are dropped: containerd has unpacked them into snapshots, which is all a container
needs (containerd's own `discard_unpacked_layers` does the same for pulled images). That halves
the disk the nodes take; the whole staging city's images are gigabytes per node."""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from citykit import compiler
from citykit.cluster import engine
from citykit.conventions import POOL_LABEL
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.conventions import pod_templates
from citykit.errors import OperationFailed
from citykit.images import build
from citykit.images import node as node_images
from citykit.plan.planned import Plan

Progress = Callable[[str], None]
CTR = ("ctr", "--namespace=k8s.io")


def wanted(plan: Plan) -> dict[build.Target, set[str]]:
    """Every local image the city runs on real nodes and the pools of those nodes, read from
    the compiled pod templates (a recipe can go unused: VictoriaMetrics' single-server image,
    where it runs as a cluster of upstream images). Probes run in the general pool: the verify
    probe, and a restore drill's scratch copy of its component's image."""
    from citykit.verify.probe import PROBE_POOL
    from citykit.verify.probe import PROBE_TARGET

    targets = {t.ref: t for t in node_images.plan_targets(plan)}
    pools: dict[build.Target, set[str]] = {}
    for unit in compiler.compile_plan(plan).units:
        for obj in unit.objects:
            for template in pod_templates(obj):
                spec = template.get("spec") or {}
                selector = spec.get("nodeSelector") or {}
                if RUNTIME_LABEL not in selector:
                    continue
                for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
                    if container.get("image") in targets:
                        pools.setdefault(targets[container["image"]], set()).add(
                            selector[POOL_LABEL]
                        )
        backup = unit.component.cls.backup
        if backup is not None and backup.drill is not None:
            drill_ref = unit.component.images.get(backup.drill.image)
            if drill_ref in targets:
                pools.setdefault(targets[drill_ref], set()).add(PROBE_POOL)
    if plan.environment.local_images:
        pools.setdefault(PROBE_TARGET, set()).add(PROBE_POOL)
    return pools


def ensure_loaded(plan: Plan, kubeconfig: Path, running: engine.Engine, progress: Progress) -> None:
    """Import into every real node the plan's images its pool needs and it lacks; the nodes
    one beside the other (the work is mostly the disk's)."""
    node_images.require_built(plan)
    needed = wanted(plan)
    started = time.monotonic()

    def load(node: str, pool: str) -> int:
        present = set(_in_node(running, node, *CTR, "images", "list", "--quiet").split())
        missing = [t for t, pools in needed.items() if pool in pools and t.ref not in present]
        for target in missing:
            progress(f"loading image {target.ref} into kind node {node}")
            _import(running, node, build.archive_path(target))
        return len(missing)

    nodes = _real_nodes(kubeconfig)
    unserved = sorted(set().union(*needed.values()) - set(nodes.values()))
    if unserved:
        # kind makes real workers only for the pools where local images ran when it was created
        # (kind.real_workers); the profile has changed since.
        raise OperationFailed(
            f"the kind cluster has no real node of the pool(s) {', '.join(unserved)}, where "
            "components with local images now run",
            hint=f"`citykit cluster down -e {plan.environment.name}`, then `citykit up` creates "
            "the cluster again with real nodes of those pools",
        )
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        loaded = sum(pool.map(load, nodes.keys(), nodes.values()))
    if loaded:
        progress(
            f"loaded {loaded} images into {len(nodes)} kind nodes in "
            f"{time.monotonic() - started:.1f}s"
        )


def _real_nodes(kubeconfig: Path) -> dict[str, str]:
    """The kind nodes that run the city's containers, by name, with their pool (a kind node's
    name is its container's)."""
    result = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(kubeconfig),
            "get",
            "nodes",
            "-l",
            f"{RUNTIME_LABEL}={RUNTIME}",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise OperationFailed(f"could not list the kind cluster's nodes: {result.stderr.strip()}")
    return {
        item["metadata"]["name"]: item["metadata"]["labels"].get(POOL_LABEL, "")
        for item in json.loads(result.stdout)["items"]
    }


def _in_node(running: engine.Engine, node: str, *args: str) -> str:
    result = engine.docker(running.env(), "exec", node, *args, timeout=600)
    if result.returncode != 0:
        raise OperationFailed(f"`{' '.join(args)}` in kind node {node} failed: {result.stderr}")
    return result.stdout


def _import(running: engine.Engine, node: str, archive: Path) -> None:
    with archive.open("rb") as stream:
        result = subprocess.run(
            [engine.docker_cli(), "exec", "-i", node, *CTR, "images", "import", "--digests", "-"],
            stdin=stream,
            capture_output=True,
            env=running.env(),
            check=False,
            timeout=900,
        )
    if result.returncode != 0:
        raise OperationFailed(
            f"importing {archive.name} into kind node {node} failed: "
            f"{result.stderr.decode(errors='replace').strip()[-1500:]}",
            hint="the node may be out of disk: `df` on the host; `citykit images build` "
            "rebuilds a damaged archive",
        )
    _in_node(running, node, *CTR, "content", "rm", *layer_digests(archive))


def layer_digests(archive: Path) -> list[str]:
    """The layer blobs of an OCI archive as `citykit images build` writes it (one manifest)."""
    with tarfile.open(archive) as tar:

        def read(name: str) -> Any:
            member = tar.extractfile(name)
            if member is None:
                raise OperationFailed(f"{archive} has no {name}")
            return json.load(member)

        def blob(descriptor: Any) -> Any:
            algorithm, digest = str(descriptor["digest"]).split(":", 1)
            return read(f"blobs/{algorithm}/{digest}")

        manifest = blob(read("index.json")["manifests"][0])
        return [str(layer["digest"]) for layer in manifest["layers"]]
