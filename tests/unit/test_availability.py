"""The availability passes: a disruption budget and soft spread for every replicated workload,
none for a single replica, a liveness probe that is never a copy of readiness, and a startup
probe that holds both back."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from citykit import compiler
from citykit.compiler import Compiled
from citykit.conventions import HOST_LABEL
from citykit.conventions import ZONE_LABEL
from citykit.objects import liveness_probes as availability
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE


@cache
def compiled(env: str) -> Compiled:
    return compiler.compile_city(EXAMPLE, env)


def workloads(result: Compiled) -> list[tuple[Any, dict[str, Any]]]:
    return [
        (unit.component, obj)
        for unit in result.units
        for obj in unit.objects
        if obj["kind"] in ("Deployment", "StatefulSet")
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_replicated_workloads_have_a_budget_and_spread(env: str) -> None:
    result = compiled(env)
    budgets = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"]
        for o in result.objects()
        if o["kind"] == "PodDisruptionBudget"
    }
    replicated = 0
    for component, obj in workloads(result):
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        replicas = obj["spec"]["replicas"]
        spread = obj["spec"]["template"]["spec"].get("topologySpreadConstraints")
        if replicas < 2:
            assert key not in budgets and spread is None, key
            continue
        replicated += 1
        budget = budgets.pop(key)
        assert budget["selector"] == obj["spec"]["selector"]
        if component.cls.quorum:
            assert budget["minAvailable"] == max(replicas - 1, replicas // 2 + 1)
        else:
            assert budget["maxUnavailable"] == 1
        assert [(c["topologyKey"], c["whenUnsatisfiable"]) for c in spread] == [
            (ZONE_LABEL, "ScheduleAnyway"),
            (HOST_LABEL, "ScheduleAnyway"),
        ]
        assert all(c["labelSelector"] == obj["spec"]["selector"] for c in spread)
    assert replicated and budgets == {}


def test_two_replicas_of_a_quorum_system_may_lose_none() -> None:
    (kafka,) = [o for c, o in workloads(compiled("dev")) if c.name == "kafka"]
    assert kafka["spec"]["replicas"] == 2
    (budget,) = [
        o
        for o in compiled("dev").objects()
        if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "kafka"
    ]
    assert budget["spec"]["minAvailable"] == 2


def test_in_local_only_the_database_shown_failing_over_has_a_budget() -> None:
    # local runs one replica of everything but PostgreSQL (two Patroni members, for the real
    # tier's failover test): a single replica needs no budget.
    result = compiler.compile_city(EXAMPLE, "local")
    budgets = [o for o in result.objects() if o["kind"] == "PodDisruptionBudget"]
    assert [b["metadata"]["name"] for b in budgets] == ["postgis"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_liveness_is_never_a_faster_copy_of_readiness(env: str) -> None:
    for _, obj in workloads(compiled(env)):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            readiness, liveness = container["readinessProbe"], container["livenessProbe"]
            assert availability.tolerance(liveness) > availability.tolerance(readiness)
            if "httpGet" in readiness:
                assert not availability.same_check(readiness, liveness), container["name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_startup_probe_holds_the_others_back_for_the_old_start_budget(env: str) -> None:
    """Readiness waits no fixed delay: a startup probe runs liveness's check every 2 s, for as
    long as liveness alone used to allow a start (the declared delay × 3, at least 30 s, then
    liveness's tolerance)."""
    for _, obj in workloads(compiled(env)):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            readiness, liveness = container["readinessProbe"], container["livenessProbe"]
            startup = container["startupProbe"]
            assert "initialDelaySeconds" not in readiness, container["name"]
            assert availability.same_check(startup, liveness), container["name"]
            assert startup["periodSeconds"] == availability.STARTUP_PERIOD
            budget = startup["periodSeconds"] * startup["failureThreshold"]
            assert budget >= availability.MIN_DELAY + availability.tolerance(liveness)
