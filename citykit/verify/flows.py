"""The flow matrix: which connections `citykit verify` expects to succeed and which to be blocked,
derived from the same graph as the NetworkPolicies (`security.traffic_edges`), never listed by
hand.

Allowed: every edge, on each of its TCP ports, from the client's identity. Denied: a sample of
pairs that are not edges, chosen so that each one tests a different wall:
- an unlabelled pod in the server's own namespace (the zone's default-deny);
- a component of the same namespace that is not a client (no lateral movement inside a zone);
- a component of the internet zone to the management zone (zone separation);
- a department's namespace to every stateful store (tenants reach data only through services)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from citykit.contract.component import Port
from citykit.contract.layers import Zone
from citykit.conventions import service_host
from citykit.conventions import tenant_namespace
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.probe_image import PROBE_COMPONENT
from citykit.plan.traffic import traffic_edges

Expect = Literal["allowed", "denied"]


@dataclass(frozen=True, order=True)
class Source:
    """A network identity a probe pod takes: a namespace and an `app.kubernetes.io/name`."""

    namespace: str
    identity: str
    label: str  # how reports name it: the component, or the namespace for anonymous pods


@dataclass(frozen=True)
class Flow:
    source: Source
    server: PlannedComponent
    port: Port
    expect: Expect
    why: str

    @property
    def host(self) -> str:
        return service_host(self.server.name, self.server.namespace)

    @property
    def check(self) -> str:
        return f"{self.expect}: {self.source.label} -> {self.server.name}:{self.port.port}"

    @property
    def target(self) -> tuple[str, int]:
        return self.server.name, self.port.port


def _component_source(component: PlannedComponent) -> Source:
    return Source(component.namespace, component.name, component.name)


def _anonymous(namespace: str) -> Source:
    return Source(namespace, PROBE_COMPONENT, f"{namespace} (unlabelled pod)")


def _tcp(ports: list[Port]) -> list[Port]:
    return [p for p in ports if p.protocol == "TCP"]


def _walled(ports: list[Port]) -> list[Port]:
    """Ports a denied sample may target: not those open to field devices (from anywhere)."""
    return [p for p in _tcp(ports) if p.exposed_to != "devices"]


def flow_matrix(plan: Plan) -> list[Flow]:
    """Every allowed flow and the denied sample, deduplicated, in a stable order."""
    edges = traffic_edges(plan)
    allowed: dict[tuple[str, str, int], Flow] = {}
    clients: dict[tuple[str, int], set[str]] = {}
    for client, server, ports, why, _ in edges:
        for port in _tcp(ports):
            key = (client.name, server.name, port.port)
            allowed.setdefault(key, Flow(_component_source(client), server, port, "allowed", why))
            clients.setdefault((server.name, port.port), set()).add(client.name)

    servers = sorted(
        {
            (server.name, port.port): (server, port)
            for _, server, ports, _, _ in edges
            for port in _walled(ports)
        }.values(),
        key=lambda sp: (plan.components.index(sp[0]), sp[1].port),
    )
    serving = [c for c in plan.components if _tcp(list(c.cls.ports))]
    denied: dict[tuple[Source, str, int], Flow] = {}

    def deny(source: Source, server: PlannedComponent, port: Port, why: str) -> None:
        denied.setdefault(
            (source, server.name, port.port), Flow(source, server, port, "denied", why)
        )

    first_port: dict[str, Port] = {}
    for server, port in servers:
        first_port.setdefault(server.name, port)
    for server, port in servers:
        if first_port[server.name] != port:
            continue  # one denied sample per server is enough: policies are per pod, not port
        allowed_here = clients.get((server.name, port.port), set())
        deny(_anonymous(server.namespace), server, port, "default-deny of the namespace")
        lateral = next(
            (
                c
                for c in serving
                if c.namespace == server.namespace
                and c.name != server.name
                and c.name not in allowed_here
            ),
            None,
        )
        if lateral is not None:
            deny(_component_source(lateral), server, port, "not an edge of the graph (same zone)")
        if server.layer.zone is Zone.MANAGEMENT:
            outsider = next(
                (
                    c
                    for c in serving
                    if c.layer.zone is Zone.INTERNET and c.name not in allowed_here
                ),
                None,
            )
            if outsider is not None:
                deny(
                    _component_source(outsider),
                    server,
                    port,
                    "internet zone to management zone",
                )
        if server.cls.stateful and plan.by_capability("tenancy") is not None:
            for department in plan.profile.departments:
                namespace = tenant_namespace(plan.slug, department.slug)
                deny(
                    Source(namespace, PROBE_COMPONENT, namespace),
                    server,
                    port,
                    "department namespace to a data store",
                )
    index = {c.name: i for i, c in enumerate(plan.components)}
    return [
        *allowed.values(),
        *sorted(denied.values(), key=lambda f: (index[f.server.name], f.source)),
    ]
