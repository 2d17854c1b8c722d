"""The liveness pass: every long-running container gets a liveness probe distinct from its
readiness probe: the one its component declares (`Workload.liveness`), else a TCP connect to the
readiness port; slower than readiness either way, so a busy container is taken out of service
long before it is restarted."""

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
# A liveness probe waits this many times readiness's initial delay (at least MIN_DELAY seconds)
# and checks this many times less often.
DELAY_FACTOR, MIN_DELAY, PERIOD_FACTOR = 3, 30, 2


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
    delay = readiness.get("initialDelaySeconds", 0)
    probe.setdefault("initialDelaySeconds", max(MIN_DELAY, delay * DELAY_FACTOR))
    probe.setdefault("periodSeconds", readiness.get("periodSeconds", PERIOD) * PERIOD_FACTOR)
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
    """A liveness probe for every long-running container that has readiness only; a probe that
    names its check without timings (a declared `Workload.liveness`) gets them here too."""
    for obj in objects:
        if obj["kind"] not in LONG_RUNNING_KINDS:
            continue
        for template in pod_templates(obj):
            for container in template.get("spec", {}).get("containers", []):
                readiness = container.get("readinessProbe")
                if readiness is not None:
                    container["livenessProbe"] = derived_liveness(
                        readiness, container.get("livenessProbe")
                    )
    return objects
