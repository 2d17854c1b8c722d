"""The data catalog (Gravitino, 7.2): planned under 7.2 with its peers, sharing the relational
store's password, listing the catalogs of the stores the city has (no stream catalog without
Kafka), and the network policies allow exactly its edges (in the example city and in the small
city, whose broker is RabbitMQ)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from citykit import compiler
from citykit import testing
from citykit.conventions import EDGE_ANNOTATION
from citykit.errors import ValidationFailed
from tests.conftest import EXAMPLE
from tests.conftest import SMALL_CITY
from tests.conftest import example_data

CLI = [sys.executable, "-m", "citykit.cli"]


def test_data_catalog_is_in_the_plan_json_under_7_2() -> None:
    result = subprocess.run(
        [*CLI, "plan", "-p", str(EXAMPLE), "-e", "prod", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    catalog = next(c for c in plan["components"] if c["capability"] == "data-catalog")
    assert catalog["name"] == "gravitino"
    assert catalog["clause"] == "7.2" and catalog["layer"] == "data"
    assert catalog["version"] == "1.3.0"
    assert {"postgis", "minio", "kafka"} <= set(catalog["requires"])
    assert catalog["sizing"][0]["name"] == "replicas" and catalog["sizing"][0]["rule"]
    data = next(layer for layer in plan["layers"] if layer["clause"] == "7.2")
    assert "gravitino" in data["components"]
    assert {"from": "gravitino", "to": "postgis"} in plan["edges"]


def test_data_catalog_shares_the_database_password_and_lists_the_peers() -> None:
    result = testing.compile_variant(None, "prod")
    objects = testing.component_objects(result, "gravitino")
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert secret["metadata"]["name"] == "gravitino-db"
    assert (
        secret["metadata"]["annotations"]["citykit.io/same-as"] == "yuhang-data/postgis-credentials"
    )
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_URL"]["value"] == (
        "jdbc:postgresql://postgis.yuhang-data.svc:5432/city"
    )
    assert env["GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "gravitino-db", "key": "password"}
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/version"
    assert deployment["spec"]["replicas"] >= 2
    catalogs = json.loads(
        next(o for o in objects if o["kind"] == "ConfigMap")["data"]["catalogs.json"]
    )
    assert catalogs["metalake"] == "yuhang"
    providers = {c["provider"]: c["properties"] for c in catalogs["catalogs"]}
    assert providers["jdbc-postgresql"]["jdbc-url"].startswith("jdbc:postgresql://postgis.")
    assert providers["fileset"]["s3-endpoint"] == "http://minio.yuhang-data.svc:9000"
    assert providers["kafka"]["bootstrap.servers"] == "kafka.yuhang-common.svc:9092"
    assert "password" not in json.dumps(catalogs).lower()


def test_data_catalog_without_kafka_lists_no_stream_catalog() -> None:
    objects = testing.component_objects(testing.compile_variant(SMALL_CITY, "prod"), "gravitino")
    catalogs = json.loads(
        next(o for o in objects if o["kind"] == "ConfigMap")["data"]["catalogs.json"]
    )
    assert {c["provider"] for c in catalogs["catalogs"]} == {"jdbc-postgresql", "fileset"}


def test_used_capabilities_are_optional(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = example_data()
    data.setdefault("layers", {}).setdefault("data", {})["data-lake"] = {"enabled": False}
    data["layers"]["data"]["stream-processing"] = {"enabled": False}
    data["layers"].setdefault("circulation", {})["data-exchange"] = {"enabled": False}
    data["layers"]["circulation"]["dataspace-connector"] = {"enabled": False}
    plan = compiler.plan(write_profile(data), "dev")
    gravitino = plan.by_name("gravitino")
    assert "minio" not in gravitino.requires and "postgis" in gravitino.requires
    catalogs = json.loads(
        next(
            o
            for o in testing.component_objects(compiler.compile_plan(plan), "gravitino")
            if o["kind"] == "ConfigMap"
        )["data"]["catalogs.json"]
    )
    assert "fileset" not in {c["provider"] for c in catalogs["catalogs"]}


def test_data_catalog_requires_the_relational_store(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = example_data()
    data.setdefault("layers", {}).setdefault("data", {})["relational-db"] = {"enabled": False}
    with pytest.raises(ValidationFailed) as error:
        compiler.plan(write_profile(data), "dev")
    assert any(
        "gravitino" in p.message and "relational-db" in p.message for p in error.value.problems
    )


@pytest.mark.parametrize("profile", ["example", "small"])
def test_network_policies_allow_the_new_edges(profile: str) -> None:
    result = testing.compile_variant(None if profile == "example" else SMALL_CITY, "prod")
    policies = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p
        for p in result.objects()
        if p["kind"] == "NetworkPolicy"
    }
    edges = {
        (p["metadata"].get("annotations") or {}).get(EDGE_ANNOTATION) for p in policies.values()
    }
    broker = "kafka" if profile == "example" else "rabbitmq"
    for server, namespace, port in (
        ("postgis", "yuhang-data", 5432),
        ("minio", "yuhang-data", 9000),
        (broker, "yuhang-common", 9092 if broker == "kafka" else 5672),
    ):
        assert f"gravitino -> {server}" in edges
        egress = policies[("yuhang-data", f"gravitino-to-{server}")]
        assert egress["spec"]["policyTypes"] == ["Egress"]
        rule = egress["spec"]["egress"][0]
        assert rule["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": server}
        assert {"protocol": "TCP", "port": port} in rule["ports"]
        ingress = policies[(namespace, f"{server}-from-gravitino")]
        assert ingress["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": "gravitino"
        }
    assert "prometheus -> gravitino (metrics)" in edges
    if profile == "small":
        for client in ("flink", "node-red", "ditto", "seatunnel"):
            assert f"{client} -> rabbitmq" in edges, client
        assert "prometheus -> rabbitmq (metrics)" in edges
