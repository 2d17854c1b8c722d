"""The data catalog (Gravitino, 7.2) and RabbitMQ as the small-city message broker: a profile that
chooses RabbitMQ validates, plans and renders into schema-valid objects that checkov passes; the
catalog is planned under 7.2 and the network policies allow exactly its new edges."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from citykit import compiler
from citykit.catalog import load_catalog
from citykit.compiler import Compiled
from citykit.conventions import EDGE_ANNOTATION
from citykit.errors import ValidationFailed
from citykit.plan import monitoring as operations
from tests.conftest import ENVIRONMENTS, EXAMPLE, example_data
from tests.unit.test_checkov import assert_clean
from tests.unit.test_render import custom_kinds, validate_strictly

CLI = [sys.executable, "-m", "citykit.cli"]


def small_city() -> dict[str, Any]:
    """The example city with a small message rate and RabbitMQ as its broker."""
    data = example_data()
    data["scale"]["peakMessagesPerSecond"] = 2000
    data.setdefault("layers", {}).setdefault("common", {})["message-broker"] = {
        "implementation": "rabbitmq"
    }
    return data


@pytest.fixture(scope="module")
def small_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.yaml"
    path.write_text(yaml.safe_dump(small_city(), allow_unicode=True), encoding="utf-8")
    return path


@cache
def _compiled(path: str, env: str) -> Compiled:
    return compiler.compile_city(Path(path), env)


def compiled(profile: Path, env: str) -> Compiled:
    return _compiled(str(profile), env)


def by_kind(result: Compiled, kind: str) -> list[dict[str, Any]]:
    return [o for o in result.objects() if o["kind"] == kind]


def unit_objects(result: Compiled, name: str) -> list[dict[str, Any]]:
    return [o for u in result.units if u.component.name == name for o in u.objects]


# -- RabbitMQ ------------------------------------------------------------------------------------
def test_rabbitmq_profile_validates_and_plans(small_profile: Path) -> None:
    result = subprocess.run(
        [*CLI, "validate", "-p", str(small_profile), "-e", "dev"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    plan = compiled(small_profile, "prod").plan
    broker = plan.by_capability("message-broker")
    assert broker is not None and broker.name == "rabbitmq"
    assert "kafka" not in {c.name for c in plan.components}
    assert broker.size("replicas") == 1  # 2,000 msg/s: one server
    assert broker.size("storage_gi") >= 12
    # Every component that needs a broker is wired to RabbitMQ's AMQP port.
    for name in ("flink", "node-red", "ditto", "seatunnel", "one-network-services"):
        assert "rabbitmq" in plan.by_name(name).requires, name
    services = next(
        o
        for o in unit_objects(compiled(small_profile, "prod"), "one-network-services")
        if o["kind"] == "Deployment"
    )
    env = {
        e["name"]: e.get("value")
        for e in services["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MESSAGE_BROKER_URL"] == "rabbitmq.yuhang-common.svc:5672"


def test_rabbitmq_clusters_above_the_small_city_rate(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = small_city()
    data["scale"]["peakMessagesPerSecond"] = 18000
    plan = compiler.plan(write_profile(data), "prod")
    broker = plan.by_name("rabbitmq")
    assert broker.size("replicas") == 3
    result = compiler.compile_plan(plan)
    config = next(o for o in unit_objects(result, "rabbitmq") if o["kind"] == "ConfigMap")["data"][
        "rabbitmq.conf"
    ]
    for i in range(3):
        assert f"rabbit@rabbitmq-{i}.rabbitmq-headless.yuhang-common.svc.cluster.local" in config


def test_rabbitmq_settings_are_strict(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = small_city()
    data["layers"]["common"]["message-broker"]["partitions"] = 12  # a Kafka figure
    with pytest.raises(ValidationFailed) as error:
        compiler.plan(write_profile(data), "dev")
    assert "partitions" in str(error.value.problems)
    data["layers"]["common"]["message-broker"] = {
        "implementation": "rabbitmq",
        "replicas": 3,
        "storageGi": 50,
    }
    broker = compiler.plan(write_profile(data), "dev").by_name("rabbitmq")
    assert (broker.size("replicas"), broker.size("storage_gi")) == (3, 50)
    for field in load_catalog().get("rabbitmq").Settings.model_fields.values():
        assert field.description


def test_rabbitmq_renders_a_hardened_stateful_broker_with_backup(small_profile: Path) -> None:
    objects = unit_objects(compiled(small_profile, "prod"), "rabbitmq")
    kinds = {o["kind"] for o in objects}
    assert {"StatefulSet", "CronJob", "Secret", "ConfigMap", "PersistentVolumeClaim"} <= kinds
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].endswith("rabbitmq:4.0.9-management-alpine")
    assert {p["containerPort"] for p in container["ports"]} == {5672, 15672, 15692}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    secret_env = {e["name"] for e in container["env"] if "valueFrom" in e}
    assert secret_env == {
        "RABBITMQ_DEFAULT_USER",
        "RABBITMQ_DEFAULT_PASS",
        "RABBITMQ_ERLANG_COOKIE",
    }
    generated = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    assert generated == {"rabbitmq-credentials", "rabbitmq-cluster"}
    assert all("data" not in o and "stringData" not in o for o in objects if o["kind"] == "Secret")
    jobs = operations.prometheus_config(compiled(small_profile, "prod").plan, None)
    scrape = next(j for j in jobs["scrape_configs"] if j["job_name"] == "rabbitmq")
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["relabel_configs"][0]["regex"] == "prometheus"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rabbitmq_city_passes_strict_schema_validation(small_profile: Path, env: str) -> None:
    objects = compiled(small_profile, env).objects()
    defined = custom_kinds(objects)
    checked = 0
    for obj in objects:
        group = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""
        if (group, obj["kind"]) in defined:
            continue
        validate_strictly(obj)
        checked += 1
    assert checked > 0
    names = {u.component.name for u in compiled(small_profile, env).units}
    assert {"rabbitmq", "gravitino"} <= names


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_reports_no_failures_for_the_rabbitmq_city(
    small_profile: Path, tmp_path: Path, env: str
) -> None:
    assert_clean(compiled(small_profile, env), tmp_path / "out")


# -- data catalog --------------------------------------------------------------------------------
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
    result = compiled(EXAMPLE, "prod")
    objects = unit_objects(result, "gravitino")
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


def test_data_catalog_without_kafka_lists_no_stream_catalog(small_profile: Path) -> None:
    objects = unit_objects(compiled(small_profile, "prod"), "gravitino")
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
            for o in unit_objects(compiler.compile_plan(plan), "gravitino")
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
def test_network_policies_allow_the_new_edges(small_profile: Path, profile: str) -> None:
    result = compiled(EXAMPLE if profile == "example" else small_profile, "prod")
    policies = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p
        for p in by_kind(result, "NetworkPolicy")
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
