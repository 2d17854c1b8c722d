"""Topology chosen by sizing, so a small environment stays small: Kafka's KRaft controller
quorum is its own odd figure drawn from the first brokers, and VictoriaMetrics runs upstream's
cluster version where `replicas` is two or more, its single node elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from citykit import compiler
from citykit.errors import ValidationFailed
from scripts.bench import megacity_profile
from tests.conftest import EXAMPLE
from tests.conftest import example_data


def objects_of(profile: Path, env: str, component: str) -> list[dict[str, Any]]:
    compiled = compiler.compile_city(profile, env)
    (unit,) = [u for u in compiled.units if u.component.name == component]
    return list(unit.objects)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


# --- Kafka's controller quorum -------------------------------------------------------------------


def kafka(profile: Path, env: str) -> tuple[int, int, dict[str, str], list[str]]:
    """(brokers, controllers, the container's env, its command) as rendered."""
    (statefulset,) = [o for o in objects_of(profile, env, "kafka") if o["kind"] == "StatefulSet"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    plan = compiler.plan(profile, env).by_name("kafka")
    assert statefulset["spec"]["replicas"] == plan.size("replicas")
    return plan.size("replicas"), plan.size("controllers"), env_of(container), container["command"]


@pytest.mark.parametrize(
    ("env", "brokers", "controllers"),
    [("local", 1, 1), ("dev", 2, 1), ("staging", 3, 3), ("prod", 4, 3)],
)
def test_kafka_voters_are_the_first_brokers_and_exactly_the_controller_figure(
    env: str, brokers: int, controllers: int
) -> None:
    planned, voters, variables, command = kafka(EXAMPLE, env)
    assert (planned, voters) == (brokers, controllers)
    namespace = "yuhang-common"
    assert variables["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",") == [
        f"{i}@kafka-{i}.kafka-headless.{namespace}.svc:9093" for i in range(controllers)
    ]
    assert variables["CITYKIT_CONTROLLERS"] == str(controllers)
    # Roles and listeners differ per pod, so the start wrapper sets them, never the env.
    assert "KAFKA_PROCESS_ROLES" not in variables and "KAFKA_LISTENERS" not in variables
    script = command[-1]
    assert 'if [ "$id" -lt "$CITYKIT_CONTROLLERS" ]' in script
    assert "KAFKA_LISTENERS=PLAINTEXT://:9092\n" in script  # a broker only: no CONTROLLER
    assert script.rstrip().endswith("exec /etc/kafka/docker/run")
    assert len(variables["CLUSTER_ID"]) == 22


def test_a_megacity_keeps_a_small_quorum(write_profile) -> None:
    brokers, controllers, variables, _ = kafka(write_profile(megacity_profile()), "prod")
    assert (brokers, controllers) == (19, 5)
    assert len(variables["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == 5


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"controllers": 4}, "4 controller voters: a KRaft quorum needs an odd number"),
        ({"controllers": 5}, "5 controllers is more than the 4 replicas planned"),
        ({"controllers": 5, "replicas": 3}, "5 controllers is more than the 3 replicas planned"),
    ],
)
def test_a_controller_override_must_be_odd_and_among_the_brokers(
    write_profile, setting: dict[str, int], message: str
) -> None:
    data = example_data()
    data["layers"].setdefault("common", {})["message-broker"] = setting
    with pytest.raises(ValidationFailed) as raised:
        compiler.plan(write_profile(data), "prod")
    (problem,) = raised.value.problems
    assert problem.path == "layers.common.message-broker.controllers"
    assert message in problem.message and problem.hint


def test_a_controller_override_within_the_brokers_is_planned(write_profile) -> None:
    data = example_data()
    data["layers"].setdefault("common", {})["message-broker"] = {"controllers": 5, "replicas": 7}
    _, controllers, variables, _ = kafka(write_profile(data), "prod")
    assert controllers == 5 and variables["CITYKIT_CONTROLLERS"] == "5"


# --- VictoriaMetrics: single node or cluster -----------------------------------------------------


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("env", ["local", "dev"])
def test_a_small_environment_keeps_the_single_node(env: str) -> None:
    objects = by_kind(objects_of(EXAMPLE, env, "victoria-metrics"))
    workloads = [key for key in objects if key[0] in ("Deployment", "StatefulSet")]
    assert workloads == [("StatefulSet", "victoria-metrics")]
    (container,) = objects[workloads[0]]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["-storageDataPath=/storage", "-retentionPeriod=1y"]
    assert "victoria-metrics" in container["image"]  # the single-node image (local: built here)
    assert ("Service", "victoria-metrics-insert") not in objects


@pytest.mark.parametrize("profile", ["example", "megacity"])
def test_prod_runs_the_cluster_with_every_storage_node_listed(write_profile, profile) -> None:
    path = EXAMPLE if profile == "example" else write_profile(megacity_profile())
    planned = compiler.plan(path, "prod").by_name("victoria-metrics")
    nodes, namespace = planned.size("replicas"), planned.namespace
    assert nodes >= 2
    objects = by_kind(objects_of(path, "prod", "victoria-metrics"))
    storage = objects[("StatefulSet", "victoria-metrics-storage")]
    assert storage["spec"]["replicas"] == nodes
    assert storage["spec"]["serviceName"] == "victoria-metrics-storage"
    assert objects[("Service", "victoria-metrics-storage")]["spec"]["clusterIP"] == "None"
    hosts = [
        f"victoria-metrics-storage-{i}.victoria-metrics-storage.{namespace}.svc"
        for i in range(nodes)
    ]
    for role, port, flag in (("insert", 8400, "-replicationFactor=2"), ("select", 8401, None)):
        deployment = objects[("Deployment", f"victoria-metrics-{role}")]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"].endswith(f"/vm{role}:v1.115.0-cluster")
        listed = [a.split("=", 1)[1] for a in container["args"] if a.startswith("-storageNode=")]
        assert listed == [f"{host}:{port}" for host in hosts]
        assert flag is None or flag in container["args"]
        assert deployment["spec"]["replicas"] == nodes
    (select,) = objects[("Deployment", "victoria-metrics-select")]["spec"]["template"]["spec"][
        "containers"
    ]
    assert "-dedup.minScrapeInterval=1ms" in select["args"]
    # Clients keep the component's Service (the read path); writes go to vminsert's.
    roles = {"victoria-metrics": "vmselect", "victoria-metrics-insert": "vminsert"}
    for service, role in roles.items():
        selector = objects[("Service", service)]["spec"]["selector"]
        assert selector["citykit.io/role"] == role
        assert objects[("Service", service)]["spec"]["ports"][0]["port"] == 8428
    # Every pod keeps the component's name (NetworkPolicies, scraping) and serves `http`.
    for key, obj in objects.items():
        if key[0] in ("Deployment", "StatefulSet"):
            template = obj["spec"]["template"]
            labels = template["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "victoria-metrics"
            assert labels["app.kubernetes.io/component"] == "victoria-metrics"
            (container,) = template["spec"]["containers"]
            assert {"name": "http", "containerPort": 8428, "protocol": "TCP"} in container["ports"]
            assert ("PodDisruptionBudget", key[1]) in objects
    assert ("StatefulSet", "victoria-metrics") not in objects
