"""`citykit verify` against the rendered policies, without a cluster: the flow matrix against the
NetworkPolicies (a small evaluator of the policy semantics decides each flow), and the probe
image against the city's image allow-list."""

from __future__ import annotations

from typing import Any

import pytest

from citykit import compiler
from citykit.compiler import Compiled
from citykit.contract.layers import Zone
from citykit.verify import probe
from citykit.verify.flows import Flow
from citykit.verify.flows import flow_matrix
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE


@pytest.fixture(scope="module", params=[*ENVIRONMENTS, "local"])
def compiled(request: pytest.FixtureRequest) -> Compiled:
    return compiler.compile_city(EXAMPLE, request.param)


# -- a NetworkPolicy evaluator, enough for the selectors citykit writes ----------------------------
def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # citykit writes no matchExpressions
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(peer: dict[str, Any], namespace: str, labels: dict[str, str], own: str) -> bool:
    if "ipBlock" in peer:
        return True  # 0.0.0.0/0 is the only block citykit writes
    namespace_labels = {"kubernetes.io/metadata.name": namespace}
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif namespace != own:
        return False
    return _matches(peer.get("podSelector", {}), labels)


def _port_matches(rule: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p["protocol"] == "TCP" for p in ports)


def _allows(
    policies: list[dict[str, Any]],
    direction: str,
    pod: tuple[str, dict[str, str]],
    peer: tuple[str, dict[str, str]],
    port: int,
) -> bool:
    """Whether `pod`'s policies in `direction` let it talk to `peer` on `port`: not isolated,
    or some rule of a selecting policy matches the peer and the port."""
    namespace, labels = pod
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace
        and direction in p["spec"]["policyTypes"]
        and _matches(p["spec"]["podSelector"], labels)
    ]
    if not selecting:
        return True
    key, side = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(side)
            if (not peers or any(_peer_matches(x, *peer, namespace) for x in peers)) and (
                _port_matches(rule, port)
            ):
                return True
    return False


def policy_allows(
    compiled: Compiled, flow: Flow, objects: list[dict[str, Any]] | None = None
) -> bool:
    objects = compiled.objects() if objects is None else objects
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    source = (flow.source.namespace, {probe.NAME_LABEL: flow.source.identity})
    server_labels = {
        probe.NAME_LABEL: flow.server.name,
        "app.kubernetes.io/instance": compiled.plan.slug,
    }
    server = (flow.server.namespace, server_labels)
    return _allows(policies, "Egress", source, server, flow.port.port) and _allows(
        policies, "Ingress", server, source, flow.port.port
    )


# -- the flow matrix -------------------------------------------------------------------------------
def test_the_rendered_policies_allow_every_allowed_flow_and_block_every_denied_one(
    compiled: Compiled,
) -> None:
    flows = flow_matrix(compiled.plan)
    wrong = [f.check for f in flows if policy_allows(compiled, f) != (f.expect == "allowed")]
    assert not wrong, wrong


def test_the_matrix_samples_each_wall(compiled: Compiled) -> None:
    flows = flow_matrix(compiled.plan)
    denied = [f for f in flows if f.expect == "denied"]
    whys = {f.why for f in denied}
    assert {
        "default-deny of the namespace",
        "not an edge of the graph (same zone)",
        "internet zone to management zone",
        "department namespace to a data store",
    } <= whys
    departments = [f for f in denied if f.why == "department namespace to a data store"]
    assert any(f.server.capability == "relational-db" for f in departments)
    zones = [f for f in denied if f.why == "internet zone to management zone"]
    assert all(f.server.layer.zone is Zone.MANAGEMENT for f in zones)
    # Every server of an edge has a denied sample, except where a port is open to devices.
    servers = {f.server.name for f in flows if f.expect == "allowed"}
    sampled = {f.server.name for f in denied}
    open_to_devices = {
        f.server.name
        for f in flows
        if all(p.exposed_to == "devices" for p in f.server.cls.ports if p.protocol == "TCP")
    }
    assert servers - open_to_devices <= sampled


def test_the_matrix_is_deterministic_and_never_contradicts_itself(compiled: Compiled) -> None:
    first = [(f.check, f.why) for f in flow_matrix(compiled.plan)]
    assert first == [(f.check, f.why) for f in flow_matrix(compiled.plan)]
    allowed = {
        (f.source, f.server.name, f.port.port)
        for f in flow_matrix(compiled.plan)
        if f.expect == "allowed"
    }
    denied = {
        (f.source, f.server.name, f.port.port)
        for f in flow_matrix(compiled.plan)
        if f.expect == "denied"
    }
    assert not allowed & denied


def test_a_deleted_allow_policy_is_seen_by_the_evaluator(compiled: Compiled) -> None:
    """The evaluator can fail: without the server's ingress rule, its allowed flow is blocked."""
    flow = next(f for f in flow_matrix(compiled.plan) if f.expect == "allowed")
    stripped = [
        o
        for o in compiled.objects()
        if not (
            o["kind"] == "NetworkPolicy"
            and o["metadata"]["namespace"] == flow.server.namespace
            and "Ingress" in o["spec"]["policyTypes"]
            and o["metadata"]["name"].startswith(f"{flow.server.name}-")
            and o["metadata"]["name"] != f"{flow.server.name}-peers"
        )
    ]
    assert policy_allows(compiled, flow)
    assert not policy_allows(compiled, flow, stripped)


# -- the image allow-list -------------------------------------------------------------------------
def test_the_probe_image_is_on_the_citys_allow_list(compiled: Compiled) -> None:
    policy = next(o for o in compiled.objects() if o["kind"] == "ValidatingAdmissionPolicy")
    allowed = policy["spec"]["variables"][0]["expression"]
    assert probe.probe_ref(compiled.plan).split("/")[0] + "/" in allowed
