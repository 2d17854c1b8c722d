"""The relational database under Patroni: two members in prod (one where the environment scales
replicas down), the Service pointed at the leader by Patroni rather than by a selector, the
consensus objects and API access it needs, and its REST port kept to its own members."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
import yaml

from citykit import compiler
from citykit.compiler import Compiled
from citykit.plan.traffic import traffic_edges
from tests.conftest import EXAMPLE


@cache
def compiled(env: str) -> Compiled:
    return compiler.compile_city(EXAMPLE, env)


def postgis(env: str) -> dict[tuple[str, str], dict[str, Any]]:
    unit = next(u for u in compiled(env).units if u.component.name == "postgis")
    return {(o["kind"], o["metadata"]["name"]): o for o in unit.objects}


@pytest.mark.parametrize(("env", "members"), [("prod", 2), ("staging", 2), ("dev", 1)])
def test_members_follow_the_environment(env: str, members: int) -> None:
    objects = postgis(env)
    assert objects[("StatefulSet", "postgis")]["spec"]["replicas"] == members
    budget = ("PodDisruptionBudget", "postgis")
    assert (budget in objects) == (members > 1)


def test_the_local_environment_runs_two_members_to_show_failover() -> None:
    assert postgis("local")[("StatefulSet", "postgis")]["spec"]["replicas"] == 2


def test_patroni_owns_the_service_endpoints() -> None:
    objects = postgis("prod")
    service = objects[("Service", "postgis")]["spec"]
    assert "selector" not in service
    assert [p["port"] for p in service["ports"]] == [5432]
    # The members' stable names and Patroni's configuration Service keep selectors / none.
    assert objects[("Service", "postgis-headless")]["spec"]["selector"]
    assert objects[("Service", "postgis-config")]["spec"] == {"clusterIP": "None"}


def test_patroni_configuration() -> None:
    objects = postgis("prod")
    config = yaml.safe_load(objects[("ConfigMap", "postgis-config")]["data"]["patroni.yml"])
    workload = objects[("StatefulSet", "postgis")]["spec"]
    selector = workload["selector"]["matchLabels"]
    kubernetes = config["kubernetes"]
    assert config["scope"] == "postgis"
    assert kubernetes["use_endpoints"] is True
    # Patroni's member selector is exactly the StatefulSet's (never probe or backup pods).
    assert {**kubernetes["labels"], kubernetes["scope_label"]: config["scope"]} == selector
    assert kubernetes["ports"] == [{"name": "postgres", "port": 5432}]
    assert config["postgresql"]["data_dir"].startswith(
        workload["template"]["spec"]["containers"][0]["volumeMounts"][2]["mountPath"]
    )
    assert "trust" not in " ".join(r for r in config["postgresql"]["pg_hba"] if "host" in r)
    container = workload["template"]["spec"]["containers"][0]
    assert container["command"] == ["patroni"]
    env = {e["name"]: e for e in container["env"]}
    names = [e["name"] for e in container["env"]]
    # $(PATRONI_KUBERNETES_POD_IP) is only expanded when defined earlier in the list.
    assert names.index("PATRONI_KUBERNETES_POD_IP") < names.index(
        "PATRONI_POSTGRESQL_CONNECT_ADDRESS"
    )
    assert env["PATRONI_KUBERNETES_POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    for name in (
        "PATRONI_SUPERUSER_PASSWORD",
        "PATRONI_REPLICATION_PASSWORD",
        "PATRONI_RESTAPI_PASSWORD",
    ):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "postgis-credentials"
        assert "value" not in env[name]
    probes = (container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"])
    assert probes == (
        {"path": "/readiness", "port": "patroni"},
        {"path": "/liveness", "port": "patroni"},
    )
    secret = objects[("Secret", "postgis-credentials")]
    assert json.dumps(secret).count("password") >= 1 and "stringData" not in secret


def test_patroni_may_touch_only_endpoints_and_pods_in_its_namespace() -> None:
    objects = postgis("prod")
    roles = [o for (kind, _), o in objects.items() if kind in ("Role", "ClusterRole")]
    assert [r["kind"] for r in roles] == ["Role"]
    assert sorted(tuple(rule["resources"]) for rule in roles[0]["rules"]) == [
        ("endpoints",),
        ("pods",),
    ]
    assert objects[("StatefulSet", "postgis")]["spec"]["template"]["spec"][
        "automountServiceAccountToken"
    ]


def test_the_rest_api_is_not_offered_to_clients() -> None:
    plan = compiled("prod").plan
    edges = traffic_edges(plan)
    to_db = [
        (c.name, [p.port for p in ports]) for c, s, ports, _, _ in edges if s.name == "postgis"
    ]
    assert to_db and all(ports == [5432] for _, ports in to_db)
