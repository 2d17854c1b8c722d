"""Kong as the api-gateway implementation: the example city with
`layers.common.api-gateway.implementation: kong` validates, plans and renders; Kong's declarative
config is the shared route table (the one APISIX is configured from); every object is valid,
hardened and passes checkov; the NetworkPolicies follow the routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from citykit import testing
from citykit.compiler import Compiled
from citykit.conventions import EDGE_ANNOTATION
from citykit.plan.routes import gateway_routes
from tests.conftest import ENVIRONMENTS

KONG_IMAGE = "library/kong:3.9.0"


KONG = {"layers": {"common": {"api-gateway": {"implementation": "kong"}}}}


def compiled(env: str) -> Compiled:
    """The example city with Kong chosen."""
    return testing.compile_variant(KONG, env)


def compiled_apisix(env: str) -> Compiled:
    return testing.compile_variant(None, env)


def kong_config(result: Compiled) -> dict[str, Any]:
    (config_map,) = testing.component_objects(result, "kong", "ConfigMap")
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["kong.yml"])
    return config


def apisix_routes(result: Compiled) -> list[dict[str, Any]]:
    (config_map,) = testing.component_objects(result, "apisix", "ConfigMap")
    text = config_map["data"]["apisix.yaml"].removesuffix("\n#END\n")
    routes: list[dict[str, Any]] = json.loads(text)["routes"]
    return routes


def kong_container(result: Compiled) -> dict[str, Any]:
    (deployment,) = testing.component_objects(result, "kong", "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kong_replaces_apisix_in_the_plan_and_renders(env: str) -> None:
    result = compiled(env)
    plan = result.plan
    gateway = plan.by_capability("api-gateway")
    assert gateway is not None and gateway.name == "kong"
    assert "apisix" not in {p.name for p in plan.components}
    assert gateway.requires == compiled_apisix(env).plan.by_name("apisix").requires
    assert kong_container(result)["image"].endswith(KONG_IMAGE)
    # The same sizing rule as APISIX: choosing a gateway never changes the city's size.
    assert gateway.sizing == compiled_apisix(env).plan.by_name("apisix").sizing


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_declarative_config_is_the_shared_route_table(env: str) -> None:
    result = compiled(env)
    config = kong_config(result)
    assert config["_format_version"] == "3.0"
    assert [p["name"] for p in config["plugins"]] == ["prometheus"]
    shared = gateway_routes(result.plan)
    assert shared, "the example city routes its applications"
    kong = [
        (route["paths"], service["url"], route["strip_path"])
        for service in config["services"]
        for route in service["routes"]
    ]
    assert kong == [([r.path], r.url, False) for r in shared]
    # One Kong route per route APISIX gets in the same city (APISIX is the default).
    apisix = [
        (r["uri"].removesuffix("*"), "http://" + next(iter(r["upstream"]["nodes"])))
        for r in apisix_routes(compiled_apisix(env))
    ]
    assert [(paths[0], url) for paths, url, _ in kong] == apisix
    assert len({s["name"] for s in config["services"]}) == len(config["services"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_gateway_never_routes_to_itself(env: str) -> None:
    for result, gateway in ((compiled(env), "kong"), (compiled_apisix(env), "apisix")):
        assert gateway not in {r.name for r in gateway_routes(result.plan)}


def test_ports_listeners_probes_and_writable_prefix() -> None:
    container = kong_container(compiled("prod"))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KONG_DATABASE"] == "off"
    assert env["KONG_PROXY_LISTEN"] == "0.0.0.0:8000"
    assert env["KONG_ADMIN_LISTEN"] == "127.0.0.1:8001"
    assert env["KONG_STATUS_LISTEN"] == "0.0.0.0:8100"
    assert env["KONG_ADMIN_GUI_LISTEN"] == "off"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "status": 8100}  # the Admin API is not a container port
    # Ready when it serves its configuration; alive while its status listener answers.
    assert container["readinessProbe"]["httpGet"] == {"path": "/status/ready", "port": "status"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/status", "port": "status"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert env["KONG_PREFIX"] in mounts and "/tmp" in mounts
    assert env["KONG_DECLARATIVE_CONFIG"].startswith(mounts["/kong/declarative"]["mountPath"])
    (deployment,) = testing.component_objects(compiled("prod"), "kong", "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[env["KONG_PREFIX"]]["name"]]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_what_depends_on_the_gateway_follows_the_implementation(env: str) -> None:
    result = compiled(env)
    kong = result.plan.by_name("kong")
    applications = [p for p in result.plan.components if p.layer.key == "applications"]
    assert applications
    for app in applications:
        (deployment,) = testing.component_objects(result, app.name, "Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env_vars = {e["name"]: e.get("value") for e in container["env"]}
        assert env_vars["API_GATEWAY_URL"] == f"kong.{kong.namespace}.svc:8000"
    # The ingress in front reaches Kong's proxy port.
    ingress = result.plan.by_capability("ingress-gateway")
    assert ingress is not None and "kong" in ingress.requires


def allowed(result: Compiled, direction: str, owner: str, peer: str, port: int) -> bool:
    for policy in result.objects():
        if policy["kind"] != "NetworkPolicy":
            continue
        spec = policy["spec"]
        if spec["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") != owner:
            continue
        if spec["policyTypes"] != [direction]:
            continue
        for rule in spec[direction.lower()]:
            peers = rule.get("from" if direction == "Ingress" else "to", [])
            names = {
                p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                for p in peers
            }
            if peer in names and port in {p["port"] for p in rule.get("ports", [])}:
                return True
    return False


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_network_policies_allow_kong_to_every_routed_backend(env: str) -> None:
    result = compiled(env)
    routes = gateway_routes(result.plan)
    for route in routes:
        assert allowed(result, "Egress", "kong", route.name, route.port.port), route.name
        assert allowed(result, "Ingress", route.name, "kong", route.port.port), route.name
        edges = [
            p["metadata"]["annotations"][EDGE_ANNOTATION]
            for p in testing.component_objects(result, route.name, "NetworkPolicy")
        ]
        assert f"kong -> {route.name} (gateway route)" in edges
    assert allowed(result, "Ingress", "kong", "ingress-nginx", 8000)
    assert allowed(result, "Ingress", "kong", "prometheus", 8100)
    # Kong reaches nothing that is neither routed nor required.
    reachable = {
        p["metadata"]["annotations"][EDGE_ANNOTATION]
        for p in testing.component_objects(result, "kong", "NetworkPolicy")
        if p["spec"]["policyTypes"] == ["Egress"]
    }
    expected = {f"kong -> {r.name} (gateway route)" for r in routes}
    expected |= {
        f"kong -> {dep}"
        for dep in result.plan.by_name("kong").peers
        if result.plan.by_name(dep).cls.ports
    }
    expected.add("kong -> kong (replicas and jobs of one component)")
    assert reachable == expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_passes_strict_schema_validation(env: str) -> None:
    testing.check_schemas(compiled(env).objects())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_reports_no_failures(tmp_path: Path, env: str) -> None:
    reports = testing.check_checkov(compiled(env), tmp_path / "out")
    kong_resources = [
        c for r in reports for c in r["results"]["passed_checks"] if ".kong" in c["resource"]
    ]
    assert kong_resources, "checkov saw the Kong objects"
