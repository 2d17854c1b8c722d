"""The capacity summary of `citykit plan`: requests read from the compiled objects, per layer
and in all, against the environment's node pools."""

from __future__ import annotations

import pytest

from citykit import compiler
from citykit.compiler import Compiled
from citykit.compiler import Unit
from citykit.plan.node_pools import NodeSpec
from citykit.plan.node_pools import node_pools
from citykit.plan.node_pools import nodes_for
from citykit.reports import capacity
from citykit.reports import views
from tests.conftest import EXAMPLE

GiB = 2**30


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2), (4, 4), ("2Gi", 2 * GiB), ("1.5G", 1.5e9), ("1e3", 1000)],
)
def test_quantities_are_read_as_kubernetes_writes_them(text, value) -> None:
    assert capacity.quantity(text) == value


def test_a_malformed_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        capacity.quantity("12 parsecs")


def _container(cpu: str, memory: str) -> dict:
    return {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}


def _workload(kind: str, pool: str, replicas: int | None = None, **spec: object) -> dict:
    pod = {
        "nodeSelector": {"citykit.io/pool": pool},
        "containers": [_container("250m", "1Gi"), _container("250m", "1Gi")],
        "initContainers": [_container("1", "512Mi")],
    }
    body: dict = {"template": {"spec": pod}, **spec}
    if replicas is not None:
        body["replicas"] = replicas
    return {"kind": kind, "metadata": {"name": kind.lower()}, "spec": body}


def _compiled(objects: list[dict]) -> Compiled:
    plan = compiler.plan(EXAMPLE, "dev")
    kafka = plan.by_name("kafka")  # 7.3 common
    return Compiled(plan, (Unit(kafka, tuple(objects)),))


def test_requests_are_pods_times_replicas_and_claims_times_replicas() -> None:
    claim = {"spec": {"resources": {"requests": {"storage": "10Gi"}}}}
    objects = [
        # A pod reserves its containers' sum (0.5 CPU, 2 GiB) or its larger init container
        # (1 CPU): 1 CPU and 2 GiB, three times.
        _workload("Deployment", "general", 3),
        _workload("StatefulSet", "general", 2, volumeClaimTemplates=[claim]),
        _workload("DaemonSet", "edge"),  # one pod per edge node: 3 districts x 1 in dev
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "backup"}, **claim},
        _workload("CronJob", "general"),  # runs briefly: not counted
    ]
    nodes = node_pools(["a", "b", "c"], general=3, gpu=1, edge_per_district=1)
    summary = capacity.summary(_compiled(objects), nodes)
    ((layer, amounts),) = summary.layers
    assert layer.key == "common"
    assert amounts == capacity.Amounts(
        cpu_millis=(3 + 2 + 3) * 1000, memory_bytes=(3 + 2 + 3) * 2 * GiB, storage_bytes=30 * GiB
    )
    assert summary.requested == amounts
    pools = {pool.name: pool for pool in summary.pools}
    assert pools["general"].requested == capacity.Amounts(5000, 10 * GiB)
    assert pools["edge"].requested == capacity.Amounts(3000, 6 * GiB)
    assert pools["general"].allocatable == capacity.Amounts(3 * 64_000, 3 * 256 * GiB, 3 * 2**40)
    assert summary.allocatable.cpu_millis == (3 * 64 + 64 + 3 * 16) * 1000
    assert summary.fits and summary.warnings == ()


def test_a_city_too_big_for_its_pools_is_warned_about() -> None:
    small = {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "15Gi"}
    nodes = [NodeSpec("general-0", "general", "core", capacity=small)]
    claim = {"spec": {"resources": {"requests": {"storage": "10Gi"}}}}
    objects = [
        _workload("Deployment", "general", 3),
        _workload("StatefulSet", "general", 2, volumeClaimTemplates=[claim]),
        _workload("Deployment", "gpu", 1),
    ]
    summary = capacity.summary(_compiled(objects), nodes)
    assert not summary.fits
    assert summary.warnings == (
        "pool general: 5.0 CPU requested, 2.0 allocatable on 1 node",
        "pool general: 10.0 GiB of memory requested, 4.0 GiB allocatable on 1 node",
        "pool gpu: pods select it, but the environment declares no such nodes",
        "storage: 20.0 GiB claimed, the nodes' disks hold 15.0 GiB",
    )


def test_pods_on_the_real_node_are_counted_but_not_judged() -> None:
    pod = _workload("Deployment", "general", 1)
    pod["spec"]["template"]["spec"]["nodeSelector"] = {"citykit.io/runtime": "containerd"}
    summary = capacity.summary(_compiled([pod]), node_pools(["a"], 1, 0, 0))
    (_, real) = summary.pools
    assert (real.name, real.allocatable, real.requested.cpu_millis) == ("real node", None, 1000)
    assert summary.fits


def test_the_example_city_adds_up_and_the_view_says_the_same() -> None:
    compiled = compiler.compile_plan(compiler.plan(EXAMPLE, "prod"))
    summary = capacity.summary(compiled, nodes_for(compiled.plan))
    assert [layer.key for layer, _ in summary.layers] == [
        layer.key for layer in compiled.plan.layers_in_use()
    ]
    assert summary.requested == sum((a for _, a in summary.layers), capacity.Amounts())
    kafka = compiled.plan.by_name("kafka")
    common = dict((layer.key, a) for layer, a in summary.layers)["common"]
    # Kafka's claims (one per broker, and its backup claim) are in its layer's storage.
    assert common.storage_bytes >= (kafka.size("replicas") + 1) * kafka.size("storage_gi") * GiB
    view = views.capacity_view(summary)
    assert view["requested"]["total"]["cpuMillis"] == summary.requested.cpu_millis
    assert [p["pool"] for p in view["pools"]] == ["general", "gpu", "edge"]
    assert view["pools"][0]["nodes"] == 6 and view["fits"] == summary.fits
