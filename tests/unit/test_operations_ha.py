"""High availability of the operations system, chosen by sizing: an HA pair of Prometheus
replicas, an Alertmanager gossip cluster and a Loki ring on the data lake where the replicas
figure is above one (prod), the single-instance topology where it is one (dev, local)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from citykit import compiler
from citykit.compiler import Compiled
from citykit.errors import ValidationFailed
from citykit.plan import monitoring as operations
from tests.conftest import EXAMPLE
from tests.conftest import example_data

Object = dict[str, Any]

PROMETHEUS_ARGS = [
    "--config.file=/etc/prometheus/prometheus.yml",
    "--storage.tsdb.path=/prometheus",
]
ALERTMANAGER_ARGS = [
    "--config.file=/etc/alertmanager/alertmanager.yml",
    "--storage.path=/tmp/alertmanager",
]


@cache
def compiled(env: str) -> Compiled:
    return compiler.compile_city(EXAMPLE, env)


def objects(result: Compiled, component: str) -> list[Object]:
    (unit,) = [u for u in result.units if u.component.name == component]
    return unit.objects


def one(items: list[Object], kind: str, name: str) -> Object:
    (found,) = [o for o in items if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container(workload: Object) -> Object:
    (main,) = workload["spec"]["template"]["spec"]["containers"]
    return main


def prometheus_yml(result: Compiled) -> Object:
    config = one(objects(result, "prometheus"), "ConfigMap", "prometheus-config")
    loaded: Object = json.loads(config["data"]["prometheus.yml"])
    return loaded


def test_prod_runs_a_prometheus_pair_with_distinct_external_labels() -> None:
    result = compiled("prod")
    prometheus = objects(result, "prometheus")
    workload = one(prometheus, "StatefulSet", "prometheus")
    replicas = workload["spec"]["replicas"]
    assert replicas >= 2
    main = container(workload)
    # Each replica labels its series with its own pod's name, expanded from the environment.
    assert "--enable-feature=expand-external-labels" in main["args"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in main[
        "env"
    ]
    config = prometheus_yml(result)
    assert config["global"]["external_labels"] == {"city": "yuhang", "replica": "${POD_NAME}"}
    # Alerts of both replicas are the same alert to Alertmanager.
    assert config["alerting"]["alert_relabel_configs"] == [
        {"action": "labeldrop", "regex": "replica"}
    ]
    assert one(prometheus, "PodDisruptionBudget", "prometheus")["spec"]["maxUnavailable"] == 1


def test_prod_prometheus_alerts_every_alertmanager_replica() -> None:
    result = compiled("prod")
    namespace = result.plan.by_name("alertmanager").namespace
    alertmanager = one(objects(result, "alertmanager"), "StatefulSet", "alertmanager")
    replicas = alertmanager["spec"]["replicas"]
    assert replicas >= 2
    (targets,) = prometheus_yml(result)["alerting"]["alertmanagers"]
    assert targets["static_configs"] == [
        {
            "targets": [
                f"alertmanager-{i}.alertmanager-headless.{namespace}.svc:9093"
                for i in range(replicas)
            ]
        }
    ]


def test_prod_alertmanager_is_a_gossip_cluster_of_its_replicas() -> None:
    result = compiled("prod")
    namespace = result.plan.by_name("alertmanager").namespace
    items = objects(result, "alertmanager")
    workload = one(items, "StatefulSet", "alertmanager")
    assert workload["spec"]["serviceName"] == "alertmanager-headless"
    headless = one(items, "Service", "alertmanager-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert {"name": "cluster", "port": 9094, "targetPort": "cluster"} in headless["spec"]["ports"]
    # Gossip is among the replicas only: not on the load-balanced Service, not open to Prometheus.
    service = one(items, "Service", "alertmanager")
    assert [p["port"] for p in service["spec"]["ports"]] == [9093]
    from_prometheus = one(items, "NetworkPolicy", "alertmanager-from-prometheus")
    assert from_prometheus["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9093}]
    main = container(workload)
    peers = [a.removeprefix("--cluster.peer=") for a in main["args"] if "cluster.peer" in a]
    assert peers == [
        f"alertmanager-{i}.alertmanager-headless.{namespace}.svc:9094"
        for i in range(workload["spec"]["replicas"])
    ]
    assert "--cluster.listen-address=0.0.0.0:9094" in main["args"]
    assert "--cluster.advertise-address=$(POD_IP):9094" in main["args"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in main[
        "env"
    ]
    # Readiness stays the web server's: a replica whose peers are away still takes alerts.
    assert main["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    # Not a quorum: one replica down at a time, never a majority held.
    budget = one(items, "PodDisruptionBudget", "alertmanager")["spec"]
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget


@pytest.mark.parametrize("env", ["dev", "local"])
def test_small_environments_keep_the_single_instance_topology(env: str) -> None:
    result = compiled(env)
    plan = result.plan
    prometheus = objects(result, "prometheus")
    workload = one(prometheus, "StatefulSet", "prometheus")
    assert workload["spec"]["replicas"] == 1
    main = container(workload)
    assert main["args"] == PROMETHEUS_ARGS and "env" not in main
    config = prometheus_yml(result)
    assert config["global"]["external_labels"] == {"city": plan.slug}
    assert config["alerting"] == {
        "alertmanagers": [
            {
                "static_configs": [
                    {"targets": [f"alertmanager.{plan.by_name('alertmanager').namespace}.svc:9093"]}
                ]
            }
        ]
    }
    items = objects(result, "alertmanager")
    alertmanager = one(items, "Deployment", "alertmanager")
    assert alertmanager["spec"]["replicas"] == 1
    main = container(alertmanager)
    # Clustering off: no gossip listener, no peers.
    assert main["args"] == [*ALERTMANAGER_ARGS, "--cluster.listen-address="] and "env" not in main
    assert not [o for o in items if o["kind"] in ("StatefulSet", "PodDisruptionBudget")]
    assert not [o for o in items if o["metadata"]["name"] == "alertmanager-headless"]


def test_the_replicas_setting_overrides_the_topology(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = example_data()
    data.setdefault("layers", {}).setdefault("operations", {})["alerting"] = {"replicas": 3}
    plan = compiler.plan(write_profile(data), "dev")
    alerting = plan.by_name("alertmanager")
    assert alerting.replicas == 3
    targets = operations.alertmanager_targets(alerting)
    assert targets == [
        f"alertmanager-{i}.alertmanager-headless.{alerting.namespace}.svc:9093" for i in range(3)
    ]
    # Prometheus stays single in dev: no replica label, nothing dropped from its alerts.
    config = operations.prometheus_config(plan, alerting, plan.by_name("prometheus").replicas > 1)
    assert "alert_relabel_configs" not in config["alerting"]
    assert "replica" not in config["global"]["external_labels"]


# --- Loki ----------------------------------------------------------------------------------------

LOKI_SINGLE = {
    "auth_enabled": False,
    "server": {"http_listen_port": 3100},
    "common": {
        "path_prefix": "/loki",
        "replication_factor": 1,
        "ring": {"kvstore": {"store": "inmemory"}},
        "storage": {
            "filesystem": {"chunks_directory": "/loki/chunks", "rules_directory": "/loki/rules"}
        },
    },
    "schema_config": {
        "configs": [
            {
                "from": "2024-01-01",
                "store": "tsdb",
                "object_store": "filesystem",
                "schema": "v13",
                "index": {"prefix": "index_", "period": "24h"},
            }
        ]
    },
    "compactor": {
        "working_directory": "/loki/compactor",
        "retention_enabled": True,
        "delete_request_store": "filesystem",
    },
    "limits_config": {
        "retention_period": "720h",
        "retention_stream": [{"selector": '{stream="audit"}', "priority": 1, "period": "4320h"}],
    },
}


def loki_yaml(items: list[Object]) -> Object:
    loaded: Object = json.loads(one(items, "ConfigMap", "loki-config")["data"]["loki.yaml"])
    return loaded


def test_prod_loki_is_a_memberlist_ring_on_the_data_lake() -> None:
    result = compiled("prod")
    loki, lake = result.plan.by_name("loki"), result.plan.by_name("minio")
    items = objects(result, "loki")
    workload = one(items, "StatefulSet", "loki")
    replicas = workload["spec"]["replicas"]
    assert replicas == loki.replicas >= 3
    config = loki_yaml(items)
    common = config["common"]
    # Writes keep a majority of three copies with one replica down.
    assert common["replication_factor"] == min(3, replicas) == 3
    assert common["ring"] == {"kvstore": {"store": "memberlist"}}
    assert common["instance_addr"] == "${POD_IP}"
    assert config["memberlist"] == {
        "bind_port": 7946,
        "advertise_addr": "${POD_IP}",
        "join_members": [f"dns+loki-headless.{loki.namespace}.svc:7946"],
    }
    # Chunks, index and delete requests in the lake's bucket, through its Service.
    assert common["storage"] == {
        "s3": {
            "endpoint": f"minio.{lake.namespace}.svc:9000",
            "bucketnames": "loki",
            "access_key_id": "${S3_ACCESS_KEY}",
            "secret_access_key": "${S3_SECRET_KEY}",
            "insecure": True,
            "s3forcepathstyle": True,
        }
    }
    (schema,) = config["schema_config"]["configs"]
    assert (schema["store"], schema["object_store"]) == ("tsdb", "s3")
    # Retention keeps working: the compactor applies it, its delete requests in the lake too.
    assert config["compactor"]["retention_enabled"] is True
    assert config["compactor"]["delete_request_store"] == "s3"
    assert config["limits_config"] == LOKI_SINGLE["limits_config"]
    main = container(workload)
    assert main["args"] == [
        "-config.file=/etc/loki/loki.yaml",
        "-config.expand-env=true",
        "-target=all",
    ]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in main[
        "env"
    ]
    # Gossip and gRPC among the replicas only.
    headless = one(items, "Service", "loki-headless")
    assert {"name": "memberlist", "port": 7946, "targetPort": "memberlist"} in headless["spec"][
        "ports"
    ]
    assert [p["port"] for p in one(items, "Service", "loki")["spec"]["ports"]] == [3100]
    assert one(items, "PodDisruptionBudget", "loki")["spec"]["maxUnavailable"] == 1
    assert "minio" in loki.peers and one(items, "NetworkPolicy", "loki-to-minio")


def test_prod_loki_reads_the_lakes_keys_only_from_its_copy_of_the_lake_secret() -> None:
    result = compiled("prod")
    lake = result.plan.by_name("minio")
    items = objects(result, "loki")
    secret = one(items, "Secret", "loki-lake")
    assert "data" not in secret and "stringData" not in secret
    assert secret["metadata"]["annotations"]["citykit.io/same-as"] == (
        f"{lake.namespace}/minio-root"
    )
    pod = one(items, "StatefulSet", "loki")["spec"]["template"]["spec"]
    (bucket,) = pod["initContainers"]
    keys = [
        {
            "name": "S3_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "loki-lake", "key": "user"}},
        },
        {
            "name": "S3_SECRET_KEY",
            "valueFrom": {"secretKeyRef": {"name": "loki-lake", "key": "password"}},
        },
    ]
    for main in (container({"spec": {"template": {"spec": pod}}}), bucket):
        assert [
            e for e in main["env"] if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
        ] == keys
        # No literal credential: the only values are the client's directory and an address
        # that refers to the variables.
        assert all("S3_" not in e["name"] or "valueFrom" in e for e in main["env"])
    # The bucket Loki does not make, made (or found made) with MinIO's client at each start.
    assert bucket["args"] == ["mb", "--ignore-existing", "lake/loki"]
    assert bucket["image"].endswith("minio/mc:RELEASE.2025-04-16T18-13-26Z")
    host = {e["name"]: e.get("value") for e in bucket["env"]}["MC_HOST_lake"]
    assert host == f"http://$(S3_ACCESS_KEY):$(S3_SECRET_KEY)@minio.{lake.namespace}.svc:9000"
    assert "password" not in json.dumps(loki_yaml(items)).lower().replace("secret_access_key", "")


@pytest.mark.parametrize("env", ["dev", "local"])
def test_small_environments_keep_a_single_loki_on_its_volume(env: str) -> None:
    result = compiled(env)
    loki = result.plan.by_name("loki")
    assert (loki.replicas, loki.size("replication_factor")) == (1, 1)
    # No edge to the lake, no copy of its keys.
    assert "minio" not in loki.peers and "minio" not in loki.requires
    items = objects(result, "loki")
    assert loki_yaml(items) == LOKI_SINGLE
    workload = one(items, "StatefulSet", "loki")
    assert workload["spec"]["replicas"] == 1
    pod = workload["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    main = container(workload)
    assert main["args"] == ["-config.file=/etc/loki/loki.yaml"] and "env" not in main
    assert not [o for o in items if o["kind"] in ("Secret", "PodDisruptionBudget")]
    assert not [o for o in items if o["metadata"]["name"] == "loki-to-minio"]


def test_a_replicated_loki_without_the_data_lake_is_a_plan_problem(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = example_data()
    data["layers"].setdefault("data", {})["data-lake"] = {"enabled": False}
    # Off too: the components that cannot do without the lake (or its exchange) at all.
    for capability in ("data-exchange", "dataspace-connector"):
        data["layers"].setdefault("circulation", {})[capability] = {"enabled": False}
    with pytest.raises(ValidationFailed) as raised:
        compiler.plan(write_profile(data), "prod")
    (problem,) = raised.value.problems
    assert problem.path == "layers.operations.logging"
    assert "requires 'data-lake' to run 3 replicas" in problem.message
    assert problem.hint and "layers.operations.logging.replicas: 1" in problem.hint
    # One replica needs no lake: dev plans, and so does prod told to run Loki single.
    assert compiler.plan(write_profile(data), "dev").by_name("loki").replicas == 1
    data["layers"].setdefault("operations", {})["logging"] = {"replicas": 1}
    assert compiler.plan(write_profile(data), "prod").by_name("loki").replicas == 1
