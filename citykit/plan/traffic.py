"""Who may talk to whom: every allowed connection of the city, from the dependency graph, the
gateway's routes and the metrics scrapes. The one source of the NetworkPolicies
(objects/network_policies.py) and of `citykit verify`'s flow matrix (verify/flows.py)."""

from __future__ import annotations

from citykit.contract.component import Port
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.routes import API_GATEWAY
from citykit.plan.routes import gateway_routes

GATEWAY_CAPABILITIES = (API_GATEWAY, "ingress-gateway")


def serves(component: PlannedComponent) -> bool:
    return bool(component.cls.ports) and (
        component.cls.workload is not None or component.cls.readiness == "rollout"
    )


Edge = tuple[PlannedComponent, PlannedComponent, list[Port], str, str]


def traffic_edges(plan: Plan) -> list[Edge]:
    """Every allowed connection (client, server, ports, why, name prefix): the dependency
    graph's edges to components that serve ports, gateway routes to gateway-exposed ports,
    and Prometheus to every metrics port. Nothing else may connect."""
    edges: list[Edge] = []
    for client in plan.components:
        for name in client.peers:
            server = plan.by_name(name)
            offered = [p for p in server.cls.ports if p.exposed_to != "self"]
            if serves(server) and serves(client) and offered:
                edges.append((client, server, offered, f"{client.name} -> {server.name}", ""))
    # The API gateway reaches exactly the backends of its route table (the one list every
    # gateway implementation is configured from); the ingress in front of it reaches every port
    # declared `exposed_to="gateway"` (the API gateway's own among them).
    api_gateway, ingress = (plan.by_capability(cap) for cap in GATEWAY_CAPABILITIES)
    routed: dict[str, list[Port]] = {}
    for route in gateway_routes(plan):
        routed.setdefault(route.backend.name, []).append(route.port)
    for server in plan.components:
        exposed = [p for p in server.cls.ports if p.exposed_to == "gateway"]
        for gateway, ports in ((api_gateway, routed.get(server.name, [])), (ingress, exposed)):
            if gateway is not None and ports and gateway.name != server.name:
                edges.append(
                    (
                        gateway,
                        server,
                        ports,
                        f"{gateway.name} -> {server.name} (gateway route)",
                        "route-",
                    )
                )
    prometheus = plan.by_capability("metrics")
    if prometheus is not None:
        for server in plan.components:
            metrics = server.cls.metrics
            if metrics is not None and server.name != prometheus.name:
                ports = [p for p in server.cls.ports if p.name == metrics.port]
                edges.append(
                    (
                        prometheus,
                        server,
                        ports,
                        f"{prometheus.name} -> {server.name} (metrics)",
                        "metrics-",
                    )
                )
    return edges
