"""The NetworkPolicy pass: allow rules for every traffic edge of a component (plan/traffic.py),
each annotated with the edge it comes from; the zones' default-deny does the rest."""

from __future__ import annotations

from typing import Any

from citykit.contract.component import Port
from citykit.conventions import EDGE_ANNOTATION
from citykit.conventions import NAME_LABEL
from citykit.conventions import NAMESPACE_NAME_LABEL
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.traffic import serves
from citykit.plan.traffic import traffic_edges


def _peer(plan: Plan, component: PlannedComponent) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: component.namespace}},
        "podSelector": {"matchLabels": {NAME_LABEL: component.name}},
    }


def _ports(ports: list[Port]) -> list[dict[str, Any]]:
    return [{"protocol": p.protocol, "port": p.port} for p in ports]


def _policy(
    name: str, component: PlannedComponent, edge: str, direction: str, rule: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name[:63].rstrip("-"), "annotations": {EDGE_ANNOTATION: edge}},
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL: component.name}},
            "policyTypes": [direction],
            direction.lower(): [rule],
        },
    }


def network_policies(
    plan: Plan, component: PlannedComponent, objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Allow rules for one component, in its own namespace; the zones' default-deny does the
    rest. Each policy carries the edge it comes from in `citykit.io/edge`."""
    if not serves(component) and not component.peers:
        return objects
    added: list[dict[str, Any]] = []
    if serves(component):
        added.append(
            _policy(
                f"{component.name}-peers",
                component,
                f"{component.name} -> {component.name} (replicas and jobs of one component)",
                "Ingress",
                {"from": [{"podSelector": {"matchLabels": {NAME_LABEL: component.name}}}]},
            )
        )
        added.append(
            _policy(
                f"{component.name}-peers-out",
                component,
                f"{component.name} -> {component.name} (replicas and jobs of one component)",
                "Egress",
                {"to": [{"podSelector": {"matchLabels": {NAME_LABEL: component.name}}}]},
            )
        )
    for client, server, ports, edge, kind in traffic_edges(plan):
        if server.name == component.name:
            added.append(
                _policy(
                    f"{server.name}-{kind}from-{client.name}",
                    server,
                    edge,
                    "Ingress",
                    {"from": [_peer(plan, client)], "ports": _ports(ports)},
                )
            )
        if client.name == component.name:
            added.append(
                _policy(
                    f"{client.name}-{kind}to-{server.name}",
                    client,
                    edge,
                    "Egress",
                    {"to": [_peer(plan, server)], "ports": _ports(ports)},
                )
            )
    devices = [p for p in component.cls.ports if p.exposed_to == "devices"]
    if devices:
        added.append(
            _policy(
                f"{component.name}-from-devices",
                component,
                f"devices -> {component.name} (declared device ports)",
                "Ingress",
                {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _ports(devices)},
            )
        )
    if component.cls.api_access:
        added.append(
            _policy(
                f"{component.name}-to-apiserver",
                component,
                f"{component.name} -> kubernetes API (declared API access)",
                "Egress",
                {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]},
            )
        )
    return [*objects, *added]
