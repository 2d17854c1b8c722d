"""`citykit simulate`'s pure parts: nodes shaped like the environment's pools, the control plane
scaled with them, and the report read from (fake) API objects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from citykit import compiler
from citykit.cluster import placement
from citykit.cluster import simulate
from citykit.cluster.control_plane import Scale
from citykit.cluster.local import LocalCluster
from citykit.errors import InputError
from citykit.plan.node_pools import GPU_RESOURCE
from citykit.plan.node_pools import node_object
from citykit.plan.node_pools import nodes_for
from tests.conftest import EXAMPLE

GiB = 2**30


# -- shaping ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("weights", "total", "expected"),
    [
        ([6, 2, 2, 2, 2], 1000, [428, 143, 143, 143, 143]),
        ([1, 1], 3, [2, 1]),  # a tie goes to the first
        ([3, 0, 1], 4, [3, 0, 1]),
        ([6, 2], 1, [1, 0]),
    ],
)
def test_apportion_keeps_the_total_and_the_proportions(weights, total, expected) -> None:
    assert simulate.apportion(weights, total) == expected
    assert sum(simulate.apportion(weights, total)) == total


def test_nodes_are_shaped_like_the_environments_pools() -> None:
    plan = compiler.plan(EXAMPLE, "prod")  # 6 general, 2 GPU, 2 edge in each of 3 districts
    nodes = simulate.shape(plan, 1000)
    assert len(nodes) == 1000
    assert len({n.name for n in nodes}) == 1000
    by_group = Counter((n.pool, n.zone) for n in nodes)
    assert by_group == {
        ("general", "core"): 428,
        ("gpu", "core"): 143,
        ("edge", "wuchang"): 143,
        ("edge", "cangqian"): 143,
        ("edge", "liangzhu"): 143,
    }
    # Each node is sized, labelled and tainted as the pool's own nodes are.
    template = {n.pool: n for n in nodes_for(plan)}
    for node in nodes:
        assert node.capacity == template[node.pool].capacity
        assert node.taints == template[node.pool].taints
    gpu = next(n for n in nodes if n.pool == "gpu")
    assert gpu.capacity[GPU_RESOURCE] == "8"
    assert {n.name for n in nodes if n.zone == "wuchang"} >= {"edge-wuchang-0", "edge-wuchang-142"}


def test_the_environments_own_count_gives_its_own_nodes() -> None:
    plan = compiler.plan(EXAMPLE, "prod")
    own = nodes_for(plan)
    shaped = simulate.shape(plan, len(own))
    assert sorted(n.name for n in shaped) == sorted(n.name for n in own)


@pytest.mark.parametrize("count", [0, -1, simulate.MAX_NODES + 1])
def test_a_node_count_out_of_range_is_bad_input(count) -> None:
    with pytest.raises(InputError, match="--nodes"):
        simulate.shape(compiler.plan(EXAMPLE, "prod"), count)


def test_leases_grow_with_the_node_count_and_the_grace_period_with_them() -> None:
    small, large = Scale(14), Scale(1000)
    assert (small.lease_seconds, small.grace_seconds) == (40, 50)  # Kubernetes' defaults
    assert large.lease_seconds == 400  # renewed every 100 s: 10 a second
    assert large.grace_seconds > large.lease_seconds
    cluster = LocalCluster("scale-test")
    ports = {"kwok": 1, "kube-controller-manager": 2}
    assert "--node-lease-duration-seconds=400" in cluster._kwok_args(ports, large)
    assert "--node-monitor-grace-period=410s" in cluster._controller_manager_args(ports, large)


# -- the report -----------------------------------------------------------------------------------
def _node(name: str, pool: str, zone: str) -> dict[str, Any]:
    plan = compiler.plan(EXAMPLE, "prod")
    spec = next(n for n in nodes_for(plan) if n.pool == pool)
    obj = node_object(spec)
    obj["metadata"]["name"] = name
    obj["metadata"]["labels"] |= {"topology.kubernetes.io/zone": zone}
    return obj


def _owner(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"kind": kind, "name": name, "controller": True}]


def _pod(name: str, owner: str, node: str | None, cpu: str = "500m", memory: str = "1Gi") -> dict:
    kind, owner_name = owner.split("/")
    pod: dict[str, Any] = {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "city",
            "ownerReferences": _owner(kind, owner_name),
        },
        "spec": {"containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
        "status": {},
    }
    if node:
        pod["spec"]["nodeName"] = node
    return pod


def _workload(kind: str, name: str, replicas: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": "city"},
        "spec": {"replicas": replicas},
    }


NODES = [
    _node("general-0", "general", "core"),
    _node("general-1", "general", "core"),
    _node("edge-wuchang-0", "edge", "wuchang"),
]
REPLICA_SETS = [
    {
        "kind": "ReplicaSet",
        "metadata": {
            "name": "api-5d4",
            "namespace": "city",
            "ownerReferences": _owner("Deployment", "api"),
        },
    }
]


def test_the_report_counts_pools_zones_and_pending_pods_with_the_schedulers_reason() -> None:
    unschedulable = _pod("db-1", "StatefulSet/db", None)
    unschedulable["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
        }
    ]
    pods = [
        _pod("api-5d4-a", "ReplicaSet/api-5d4", "general-0"),
        _pod("api-5d4-b", "ReplicaSet/api-5d4", "edge-wuchang-0", cpu="1", memory="2Gi"),
        _pod("db-0", "StatefulSet/db", "general-1", cpu="2", memory="4Gi"),
        unschedulable,
    ]
    workloads = [_workload("Deployment", "api", 2), _workload("StatefulSet", "db", 2)]
    report = placement.build(NODES, pods, workloads, REPLICA_SETS, [], [])

    assert report["nodes"] == 3
    assert report["pods"] == {"scheduled": 3, "pending": 1, "notCreated": 0}
    assert report["pending"] == [
        {
            "namespace": "city",
            "pod": "db-1",
            "workload": "StatefulSet/db",
            "reason": "0/3 nodes are available: 3 Insufficient cpu.",
        }
    ]
    assert report["zones"] == [
        {"zone": "core", "nodes": 2, "pods": 2},
        {"zone": "wuchang", "nodes": 1, "pods": 1},
    ]
    pools = {p["pool"]: p for p in report["pools"]}
    assert pools["general"]["nodes"] == 2
    assert pools["general"]["cpuRequested"] == 2.5
    assert pools["general"]["cpuAllocatable"] == 128  # 2 x 64 (nodes.py)
    assert pools["general"]["memoryRequestedBytes"] == 5 * GiB
    assert pools["edge"]["cpuRequested"] == 1
    assert pools["edge"]["memoryAllocatableBytes"] == 64 * GiB
    assert not placement.complete(report)


def test_a_pending_pod_without_a_condition_message_takes_its_latest_failedscheduling_event() -> (
    None
):
    pod = _pod("db-0", "StatefulSet/db", None)
    events = [
        {
            "metadata": {"namespace": "city"},
            "involvedObject": {"kind": "Pod", "name": "db-0"},
            "reason": "FailedScheduling",
            "lastTimestamp": stamp,
            "message": message,
        }
        for stamp, message in [
            ("2025-01-01T00:00:02Z", "0/3 nodes are available: 3 node(s) had untolerated taint."),
            ("2025-01-01T00:00:01Z", "an older attempt"),
        ]
    ]
    assert placement.pending_reason(pod, events) == (
        "0/3 nodes are available: 3 node(s) had untolerated taint."
    )
    assert placement.pending_reason(pod, []) == "not scheduled yet"


def test_replicas_a_controller_could_not_create_are_reported_with_its_reason() -> None:
    replica_set = {
        **REPLICA_SETS[0],
        "status": {
            "conditions": [
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": 'pods "api-5d4-x" is forbidden: exceeded quota: tenant-quota',
                }
            ]
        },
    }
    pods = [_pod("api-5d4-a", "ReplicaSet/api-5d4", "general-0")]
    report = placement.build(
        NODES, pods, [_workload("Deployment", "api", 3)], [replica_set], [], []
    )
    assert report["pods"] == {"scheduled": 1, "pending": 0, "notCreated": 2}
    assert report["notCreated"] == [
        {
            "namespace": "city",
            "workload": "Deployment/api",
            "count": 2,
            "reason": 'pods "api-5d4-x" is forbidden: exceeded quota: tenant-quota',
        }
    ]
    assert not placement.complete(report)


def test_department_quota_use_is_read_from_the_quota_status() -> None:
    quota = {
        "kind": "ResourceQuota",
        "metadata": {
            "name": "tenant-quota",
            "namespace": "yuhang-dept-emergency",
            "labels": {"citykit.io/department": "emergency"},
        },
        "status": {
            "hard": {"requests.cpu": "8", "requests.memory": "32Gi", "pods": "100"},
            "used": {"requests.cpu": "2", "requests.memory": "8Gi"},
        },
    }
    report = placement.build(NODES, [], [], [], [], [quota])
    assert report["quotas"] == [
        {
            "department": "emergency",
            "namespace": "yuhang-dept-emergency",
            "quota": "tenant-quota",
            "resources": [
                {"resource": "pods", "used": "0", "hard": "100", "fraction": 0.0},
                {"resource": "requests.cpu", "used": "2", "hard": "8", "fraction": 0.25},
                {"resource": "requests.memory", "used": "8Gi", "hard": "32Gi", "fraction": 0.25},
            ],
        }
    ]
    assert placement.complete(report)


def test_a_pod_is_decided_once_placed_or_found_unschedulable() -> None:
    waiting = _pod("a", "ReplicaSet/x", None)
    assert not placement.decided(waiting)
    waiting["status"]["conditions"] = [{"type": "PodScheduled", "status": "False"}]
    assert placement.decided(waiting)
    assert placement.decided(_pod("b", "ReplicaSet/x", "general-0"))
    daemon = {"kind": "DaemonSet", "status": {"desiredNumberScheduled": 7}, "spec": {}}
    assert placement.desired(daemon) == 7


def test_the_command_refuses_a_bad_node_count_before_starting_anything(tmp_path: Path) -> None:
    command = ["simulate", "-p", str(EXAMPLE), "-e", "prod", "--nodes", "0"]
    result = subprocess.run(
        [sys.executable, "-m", "citykit.cli", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=dict(os.environ, CITYKIT_STATE_DIR=str(tmp_path)),
    )
    assert result.returncode == 2
    assert "error: --nodes: 0 is not between 1 and 5000" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "clusters").exists()
