"""The liveness pass: every long-running container gets a liveness probe distinct from its
readiness probe: the one its component declares (`Workload.liveness`), else a TCP connect to the
readiness port; slower than readiness either way, so a busy container is taken out of service
long before it is restarted.

And a startup probe, the liveness check every STARTUP_PERIOD seconds, which holds readiness and
liveness back until the software answers. The start delay a readiness probe declares
(`Workload.initial_delay`) becomes the startup budget: as long as liveness used to wait and then
tolerate failures. So a container counts as started within STARTUP_PERIOD seconds of answering,
and readiness, probed when it starts rather than after a fixed delay, makes it Ready as soon as it
serves; a fixed delay made every pod wait at least that long, and a dependent component all of
its dependencies' delays one after another."""

from __future__ import annotations

import copy
from typing import Any

from citykit.conventions import LONG_RUNNING_KINDS
from citykit.conventions import Object
from citykit.conventions import pod_templates
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent

# Kubernetes' probe defaults, for probes that leave them out.
PERIOD, FAILURES = 10, 3
# A container may take this many times readiness's declared start delay (at least MIN_DELAY
# seconds) to start; liveness checks this many times less often than readiness.
DELAY_FACTOR, MIN_DELAY, PERIOD_FACTOR = 3, 30, 2
STARTUP_PERIOD = 2  # seconds between startup checks


def _handler(probe: Object) -> Object:
    return {k: v for k, v in probe.items() if k in ("httpGet", "tcpSocket", "exec", "grpc")}


def _port(readiness: Object) -> Any:
    for key in ("httpGet", "tcpSocket", "grpc"):
        if key in readiness:
            return readiness[key]["port"]
    return None


def derived_liveness(readiness: Object, declared: Object | None) -> Object:
    """`declared` (timings it sets are kept) or a TCP connect to readiness's port, timed slower
    than readiness: a container is restarted only once it stops accepting connections, never
    because what it depends on is down (that is readiness's business)."""
    port = _port(readiness)
    if declared is not None:
        handler = declared
    elif port is not None:
        handler = {"tcpSocket": {"port": port}}
    else:
        handler = _handler(readiness)  # a command: the same one, slower
    probe: Object = copy.deepcopy(handler)
    probe.setdefault("periodSeconds", readiness.get("periodSeconds", PERIOD) * PERIOD_FACTOR)
    return probe


def startup_probe(readiness: Object, liveness: Object) -> Object:
    """Liveness's check, every STARTUP_PERIOD seconds, for as long as the container may take to
    start: readiness's declared start delay times DELAY_FACTOR (at least MIN_DELAY seconds), then
    liveness's own tolerance, which is what a container had before it was restarted when
    liveness alone waited out the start."""
    delay = readiness.get("initialDelaySeconds", 0)
    budget = max(MIN_DELAY, delay * DELAY_FACTOR) + tolerance(liveness)
    probe: Object = copy.deepcopy(_handler(liveness))  # shared dicts would render as YAML aliases
    probe["periodSeconds"] = STARTUP_PERIOD
    probe["failureThreshold"] = -(-budget // STARTUP_PERIOD)
    return probe


def tolerance(probe: Object) -> int:
    """Seconds a failing check goes on before its probe acts (start delay included)."""
    period = probe.get("periodSeconds", PERIOD)
    failures = probe.get("failureThreshold", FAILURES)
    return int(probe.get("initialDelaySeconds", 0) + period * failures)


def same_check(readiness: Object, liveness: Object) -> bool:
    """Whether both probes run the same check, timings aside: what kube-score's
    pod-probes-identical finds (score/probes compares HTTP path and port, or TCP port)."""
    return _handler(readiness) == _handler(liveness)


def liveness_probes(plan: Plan, component: PlannedComponent, objects: list[Object]) -> list[Object]:
    """A liveness and a startup probe for every long-running container that has readiness only;
    a probe that names its check without timings (a declared `Workload.liveness`) gets them here
    too. Readiness keeps its check and period; its start delay moves into the startup probe."""
    for obj in objects:
        if obj["kind"] not in LONG_RUNNING_KINDS:
            continue
        for template in pod_templates(obj):
            for container in template.get("spec", {}).get("containers", []):
                readiness = container.get("readinessProbe")
                if readiness is None:
                    continue
                liveness = derived_liveness(readiness, container.get("livenessProbe"))
                container["livenessProbe"] = liveness
                container.setdefault("startupProbe", startup_probe(readiness, liveness))
                readiness.pop("initialDelaySeconds", None)
    return objects
