"""RabbitMQ as the small-city message broker: a profile that chooses RabbitMQ validates, plans and
renders a hardened, clustered, backed-up broker whose objects are schema-valid and pass checkov,
and every component that needs a broker is wired to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from citykit import compiler
from citykit import testing
from citykit.catalog import load_catalog
from citykit.compiler import Compiled
from citykit.errors import ValidationFailed
from citykit.plan import monitoring as operations
from tests.conftest import ENVIRONMENTS
from tests.conftest import SMALL_CITY

CLI = [sys.executable, "-m", "citykit.cli"]


def small_city() -> dict[str, Any]:
    """The example city with a small message rate and RabbitMQ as its broker."""
    return testing.variant(SMALL_CITY)


def small(env: str) -> Compiled:
    return testing.compile_variant(SMALL_CITY, env)


def test_rabbitmq_profile_validates_and_plans() -> None:
    result = subprocess.run(
        [*CLI, "validate", "-p", str(testing.variant_file(SMALL_CITY)), "-e", "dev"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    plan = small("prod").plan
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
        for o in testing.component_objects(small("prod"), "one-network-services")
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
    config = next(
        o for o in testing.component_objects(result, "rabbitmq") if o["kind"] == "ConfigMap"
    )["data"]["rabbitmq.conf"]
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


def test_rabbitmq_renders_a_hardened_stateful_broker_with_backup() -> None:
    objects = testing.component_objects(small("prod"), "rabbitmq")
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
    jobs = operations.prometheus_config(small("prod").plan, None)
    scrape = next(j for j in jobs["scrape_configs"] if j["job_name"] == "rabbitmq")
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["relabel_configs"][0]["regex"] == "prometheus"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rabbitmq_city_passes_strict_schema_validation(env: str) -> None:
    assert testing.check_schemas(small(env).objects()) > 0
    names = {u.component.name for u in small(env).units}
    assert {"rabbitmq", "gravitino"} <= names


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_reports_no_failures_for_the_rabbitmq_city(tmp_path: Path, env: str) -> None:
    testing.check_checkov(small(env), tmp_path / "out")
