"""The plan's local images on a node: what `citykit up` makes sure of before it deploys to a
cluster with a real node, so that no pod waits for an image its node does not have."""

from __future__ import annotations

from collections.abc import Callable

from citykit.errors import InputError
from citykit.images import build
from citykit.images import containerd
from citykit.plan.planned import Plan


def plan_targets(plan: Plan) -> list[build.Target]:
    """The local images the plan uses (components whose images the environment builds locally),
    and the probe that `citykit verify` runs where the environment uses local images."""
    from citykit.verify.probe import PROBE_TARGET

    probes = [PROBE_TARGET] if plan.environment.local_images else []
    return build.targets(c.cls for c in plan.components if c.local_images) + probes


def require_built(plan: Plan) -> list[build.Target]:
    """The plan's local images (plan_targets); a missing build is an input error naming the
    command that makes it."""
    targets = plan_targets(plan)
    unbuilt = [t.name for t in targets if not build.is_built(t)]
    if unbuilt:
        raise InputError(
            f"local images not built: {', '.join(unbuilt)}",
            hint=f"run `citykit images build -e {plan.environment.name}` (with the same -p) first",
        )
    return targets


def ensure_loaded(plan: Plan, address: str, progress: Callable[[str], None]) -> None:
    """Load every built local image of the plan that the node's containerd lacks."""
    targets = require_built(plan)
    present = containerd.loaded(address)
    for target in targets:
        if target.ref not in present:
            progress(f"loading image {target.ref} into the real node")
            containerd.load(build.archive_path(target), address)


def node_address(env: str) -> str | None:
    """The containerd socket of the environment's real node, when its local cluster runs one."""
    from citykit.cluster.local import LocalCluster
    from citykit.input import environment as environments

    cluster = environments.load(env)[0].cluster
    if cluster.provider != "local" or not cluster.real_node:
        return None
    node = LocalCluster(cluster.name).real_node
    if node is None or not containerd.reachable(str(node.containerd_socket)):
        return None
    return str(node.containerd_socket)
