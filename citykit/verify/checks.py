"""What `citykit verify` runs: the plan's functional checks and flow matrix turned into probe
pods, and the pods' results turned into per-check outcomes.

Pure: which pods to run and how to read them are decided here from the plan and from where the
components' pods run; `runner.py` does the I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

from citykit.contract.component import Check
from citykit.contract.declarations import Port
from citykit.conventions import secret_name
from citykit.conventions import service_host
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.verify import probe
from citykit.verify.flows import Flow
from citykit.verify.flows import Source
from citykit.verify.flows import flow_matrix

Status = Literal["passed", "failed", "skipped"]
SETTLE_SECONDS = 4  # lets the policy controller see a new pod before it connects anywhere
CONNECT_SECONDS = 3  # a blocked connection times out (dropped) or is refused (rejected)
# An allowed flow is tried for up to about 40 s: on a loaded node the proxy's rules for a new
# endpoint, or the policy controller's resync after a policy change, can lag by tens of seconds.
ALLOWED_ATTEMPTS = 8
ANSWERS_IN_A_ROW = 4  # before a functional check runs (functional_script)
# Cluster DNS drops a lookup now and then under load (a kind cluster's CoreDNS answered every
# name but one of 70 in a CI run): a name is looked up this often, 2 s apart, before it counts
# as unresolved.
RESOLVE_ATTEMPTS = 5
# The ready endpoints of each Service port: (namespace, Service, port name) -> (address, port).
Endpoints = Mapping[tuple[str, str, str], Sequence[tuple[str, int]]]


@dataclass(frozen=True)
class Outcome:
    component: str
    layer: str
    check: str
    status: Status
    detail: str
    seconds: float = 0.0
    kind: Literal["functional", "flow", "drill"] = "functional"

    def as_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "layer": self.layer,
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class PodRun:
    """One probe pod and the checks whose results its exit code or output carries."""

    manifest: dict[str, Any]
    timeout: int
    functional: tuple[PlannedComponent, Check] | None = None
    flows: list[Flow] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


@dataclass(frozen=True)
class PodResult:
    exit_code: int | None  # None: it never finished (see reason)
    output: str
    reason: str
    seconds: float


@dataclass
class Work:
    pods: list[PodRun]
    skipped: list[Outcome]


def _dns_label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def pod_name(kind: str, subject: str, index: int, run: str) -> str:
    suffix = f"-{index}-{run}"
    return (f"verify-{kind}-{_dns_label(subject)}"[: 63 - len(suffix)]).rstrip("-") + suffix


def check_env(
    plan: Plan, component: PlannedComponent, run_id: str, real: set[str]
) -> dict[str, str]:
    env = {
        "TARGET": service_host(component.name, component.namespace),
        "NAMESPACE": component.namespace,
        "CITY": plan.slug,
        "RUN": f"citykit-verify-{run_id}",
        "REAL_COMPONENTS": " ".join(sorted(real)),
    }
    for port in component.cls.ports:
        env[f"PORT_{_dns_label(port.name).replace('-', '_').upper()}"] = str(port.port)
    env.update(component.cls().check_env(plan))
    return env


def _first_tcp_port(component: PlannedComponent) -> Port | None:
    return next((p for p in component.cls.ports if p.protocol == "TCP"), None)


def functional_script(component: PlannedComponent, script: str) -> str:
    """The script after a wait: a new pod is blocked until the policy controller has seen it,
    so it first waits (up to about 40 s in all) until each ready endpoint of the component's
    Service has answered on its first TCP port (ENDPOINTS: address and port pairs, from the
    Service's EndpointSlices): each replica's node has a policy controller of its own, which
    learns of the new pod on its own time, and the Service may send the check's request to any
    replica (a kind cluster refused it 67 ms after the port had answered once; with replicas on
    three nodes, four answers in a row through the Service still missed a lagging one). Then the
    port must answer ANSWERS_IN_A_ROW times in a row through the Service (all there is to wait
    on where the endpoints are not known, as in a restore drill)."""
    port = _first_tcp_port(component)
    if port is None:
        return f"sleep {SETTLE_SECONDS}\n{script}"
    wait = (
        "attempt=0\n"
        "set -- ${ENDPOINTS:-}\n"
        "while [ $# -ge 2 ] && [ $attempt -lt 40 ]; do\n"
        '  if nc -z -w 2 "$1" "$2" 2>/dev/null; then shift 2; '
        "else attempt=$((attempt + 1)); sleep 1; fi\n"
        "done\n"
        "answered=0\n"
        f"while [ $answered -lt {ANSWERS_IN_A_ROW} ] && [ $attempt -lt 40 ]; do\n"
        "  attempt=$((attempt + 1))\n"
        f'  if nc -z -w 2 "$TARGET" {port.port} 2>/dev/null; then answered=$((answered + 1)); '
        "else answered=0; sleep 1; fi\n"
        "done\n"
    )
    return wait + script


def endpoints_env(component: PlannedComponent, endpoints: Endpoints) -> dict[str, str]:
    """ENDPOINTS for functional_script: the ready endpoints of the component's Service on its
    first TCP port, as `address port` pairs; none when they are not known."""
    port = _first_tcp_port(component)
    if port is None:
        return {}
    found = endpoints.get((component.namespace, component.name, port.name), ())
    if not found:
        return {}
    return {"ENDPOINTS": " ".join(f"{address} {number}" for address, number in found)}


def flow_script(flows: list[Flow]) -> str:
    """One pod tries all its flows at once, after the policy controller has had time to see
    it (it takes a few hundred milliseconds here). A name that does not resolve after
    RESOLVE_ATTEMPTS lookups is reported as such (never as blocked); an allowed flow is retried
    (ALLOWED_ATTEMPTS) while rules settle; a denied one must be blocked twice, 2 s apart (so
    that a rule that arrives late and opens it is still seen)."""
    lines = [
        "probe() {",
        "  i=0",
        "  while :; do",
        '    ip=$(getent hosts "$2" | cut -d" " -f1 | head -n1)',
        '    [ -n "$ip" ] && break',
        "    i=$((i + 1))",
        f'    if [ $i -ge {RESOLVE_ATTEMPTS} ]; then echo "flow $1 unresolved"; return; fi',
        "    sleep 2",
        "  done",
        "  i=0",
        "  while :; do",
        f'    if nc -z -w {CONNECT_SECONDS} "$ip" "$3" 2>/dev/null; then r=open; else r=closed; fi',
        "    i=$((i + 1))",
        '    if [ "$4" = allowed ] && [ $r = open ]; then break; fi',
        '    if [ "$4" = denied ] && { [ $r = open ] || [ $i -ge 2 ]; }; then break; fi',
        f"    [ $i -ge {ALLOWED_ATTEMPTS} ] && break",
        "    sleep 2",
        "  done",
        '  echo "flow $1 $r"',
        "}",
        f"sleep {SETTLE_SECONDS}",
    ]
    for index, flow in enumerate(flows):
        lines.append(f"probe {index} {flow.host} {flow.port.port} {flow.expect} &")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def plan_work(
    plan: Plan,
    runs: dict[str, str],
    *,
    real_nodes: bool,
    run_id: str,
    layer: str | None = None,
    endpoints: Endpoints | None = None,
) -> Work:
    """The probe pods to run and the checks skipped up front. `runs` is where each component's
    pods run (real / simulated / mixed, `status`); `real_nodes` whether the cluster has a node
    that runs containers at all (probes need one); `endpoints` the ready endpoints of each
    Service port, (namespace, Service, port name) -> (address, port), which functional checks
    wait on."""
    real = {name for name, where in runs.items() if where == "real"}
    pods: list[PodRun] = []
    skipped: list[Outcome] = []

    def skip_reason(component: PlannedComponent) -> str | None:
        if not real_nodes:
            return "simulated: the cluster has no node that runs containers"
        where = runs.get(component.name, "-")
        if where == "simulated":
            return "simulated: its pods run on kwok nodes"
        if where == "-":
            return "not running: no pods of it found"
        if where == "mixed":
            return "simulated: some of its pods run on kwok nodes"
        return None

    def wanted(component: PlannedComponent) -> bool:
        return layer is None or component.layer.key == layer

    for component in plan.components:
        if not wanted(component):
            continue
        for check in component.cls.checks:
            reason = skip_reason(component)
            if reason is not None:
                skipped.append(
                    Outcome(component.name, component.layer.key, check.name, "skipped", reason)
                )
                continue
            secret_env = [
                (variable, secret_name(component.name, suffix), key)
                for variable, suffix, key in check.secret_env
            ]
            manifest = probe.pod(
                plan,
                name=pod_name("check", component.name, len(pods), run_id),
                namespace=component.namespace,
                identity=component.name,
                script=functional_script(component, check.script),
                env=check_env(plan, component, run_id, real)
                | endpoints_env(component, endpoints or {}),
                secret_env=secret_env,
                timeout=check.timeout,
            )
            pods.append(PodRun(manifest, check.timeout, functional=(component, check)))

    by_source: dict[Source, list[Flow]] = {}
    for flow in flow_matrix(plan):
        if not wanted(flow.server):
            continue
        reason = skip_reason(flow.server)
        if reason is not None:
            skipped.append(_flow_outcome(flow, "skipped", reason))
            continue
        by_source.setdefault(flow.source, []).append(flow)
    for source, flows in sorted(by_source.items()):
        timeout = (
            SETTLE_SECONDS + RESOLVE_ATTEMPTS * 2 + ALLOWED_ATTEMPTS * (CONNECT_SECONDS + 2) + 30
        )
        manifest = probe.pod(
            plan,
            name=pod_name("flow", source.identity + "-" + source.namespace, len(pods), run_id),
            namespace=source.namespace,
            identity=source.identity,
            script=flow_script(flows),
            env={},
            secret_env=[],
            timeout=timeout,
        )
        pods.append(PodRun(manifest, timeout, flows=flows))
    return Work(pods, skipped)


def _flow_outcome(flow: Flow, status: Status, detail: str, seconds: float = 0.0) -> Outcome:
    return Outcome(
        flow.server.name, flow.server.layer.key, flow.check, status, detail, seconds, "flow"
    )


def _tail(text: str, lines: int = 3, width: int = 300) -> str:
    kept = " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())
    return kept[-width:]


def read_results(work: Work, results: dict[str, PodResult]) -> list[Outcome]:
    """Outcomes of every check, the skipped ones included. A denied flow passes only when an
    allowed flow reached the same port in this run: a refusal from a server that is down
    proves nothing about policies."""
    outcomes = list(work.skipped)
    flow_results: list[tuple[Flow, str, float]] = []
    for pod in work.pods:
        result = results[pod.name]
        if pod.functional is not None:
            component, check = pod.functional
            if result.exit_code == 0:
                status: Status = "passed"
                detail = _tail(result.output, 1) or "exit 0"
            else:
                status = "failed"
                why = result.reason or f"exit {result.exit_code}"
                detail = f"{why}: {_tail(result.output)}" if result.output.strip() else why
            outcomes.append(
                Outcome(
                    component.name, component.layer.key, check.name, status, detail, result.seconds
                )
            )
            continue
        seen = dict(_flow_lines(result.output))
        for index, flow in enumerate(pod.flows):
            state = seen.get(index, "")
            if not state:
                state = "no answer (" + (result.reason or f"exit {result.exit_code}") + ")"
            flow_results.append((flow, state, result.seconds))
    reached = {
        flow.target
        for flow, state, _ in flow_results
        if flow.expect == "allowed" and state == "open"
    }
    for flow, state, seconds in flow_results:
        if flow.expect == "allowed":
            if state == "open":
                outcomes.append(_flow_outcome(flow, "passed", f"connected ({flow.why})", seconds))
            else:
                outcomes.append(
                    _flow_outcome(
                        flow, "failed", f"{state}: expected to connect ({flow.why})", seconds
                    )
                )
        elif state == "open":
            outcomes.append(
                _flow_outcome(flow, "failed", f"connected: expected blocked ({flow.why})", seconds)
            )
        elif state != "closed":
            outcomes.append(_flow_outcome(flow, "failed", state, seconds))
        elif flow.target in reached:
            outcomes.append(_flow_outcome(flow, "passed", f"blocked ({flow.why})", seconds))
        else:
            outcomes.append(
                _flow_outcome(
                    flow,
                    "skipped",
                    "no allowed flow reached this port in this run, so a refusal proves nothing",
                    seconds,
                )
            )
    return outcomes


def _flow_lines(output: str) -> Iterable[tuple[int, str]]:
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "flow" and parts[1].isdigit():
            yield int(parts[1]), parts[2]
