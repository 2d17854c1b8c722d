"""The API gateway's route table, derived once from the plan.

Every api-gateway implementation (APISIX, Kong, ...) translates this one list into its own
configuration format, and the security system allows exactly these gateway -> backend
connections; neither derives routes on its own."""

from __future__ import annotations

from dataclasses import dataclass

from citykit.contract.component import Port
from citykit.conventions import service_host
from citykit.errors import CitykitError
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent

API_GATEWAY = "api-gateway"


class RouteError(CitykitError):
    """Two routes claim the same path: a catalog bug (a component exposes several ports to the
    gateway), reported instead of silently shadowing one of them."""


@dataclass(frozen=True)
class Route:
    """One route: requests under `path` go, unchanged, to `backend` on `port`."""

    backend: PlannedComponent
    port: Port

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def path(self) -> str:
        """The path prefix, `/<component>/` (the full path is passed to the backend)."""
        return f"/{self.backend.name}/"

    @property
    def host(self) -> str:
        return service_host(self.backend.name, self.backend.namespace)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port.port}"


def gateway_routes(plan: Plan) -> list[Route]:
    """Every port a component declares `exposed_to="gateway"` becomes a route `/<component>/`,
    sorted by path. The API gateway's own ports (exposed to the ingress in front of it) and the
    network layer are not routed: a route to the gateway itself would be a proxy loop."""
    routes = [
        Route(planned, port)
        for planned in plan.components
        if planned.layer.key != "network" and planned.capability != API_GATEWAY
        for port in planned.cls.ports
        if port.exposed_to == "gateway"
    ]
    seen: dict[str, Route] = {}
    for route in routes:
        if route.path in seen:
            raise RouteError(
                f"component {route.name!r} exposes ports {seen[route.path].port.name!r} and "
                f"{route.port.name!r} to the gateway; a component has one gateway route"
            )
        seen[route.path] = route
    return sorted(routes, key=lambda r: r.path)
