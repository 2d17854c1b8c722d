"""The probe runner's waiting: one `kubectl get pods` a second for every pod of a run, and none
while no pod is waited for. kubectl is a stand-in that plays a cluster where pods end on cue."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from citykit.verify import runner
from citykit.verify.checks import PodRun


class FakeCluster:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pods: dict[str, dict[str, Any]] = {}
        self.ends: dict[str, int] = {}  # pod name -> exit code, once it has ended
        self.polls = 0
        self.calls: list[str] = []

    def kubectl(self, access: object, *args: str, stdin: str | None = None) -> Any:
        with self.lock:
            self.calls.append(args[0])
            if args[0] == "create":
                manifest = json.loads(stdin or "{}")
                self.pods[manifest["metadata"]["name"]] = manifest
            elif args[:2] == ("get", "pods"):
                self.polls += 1
                items = [self._status(name, manifest) for name, manifest in self.pods.items()]
                return subprocess.CompletedProcess(args, 0, json.dumps({"items": items}), "")
            elif args[0] == "logs":
                return subprocess.CompletedProcess(args, 0, f"output of {args[-2]}\n", "")
        return subprocess.CompletedProcess(args, 0, "", "")

    def _status(self, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = {"running": {}}
        if name in self.ends:
            state = {"terminated": {"exitCode": self.ends[name], "reason": "Completed"}}
        return {**manifest, "status": {"containerStatuses": [{"state": state}]}}


def _pod(name: str, timeout: int = 30) -> PodRun:
    manifest = {"metadata": {"name": name, "namespace": "city"}}
    return PodRun(manifest, timeout)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()
    monkeypatch.setattr(runner, "kubectl", fake.kubectl)
    monkeypatch.setattr(runner, "POLL_SECONDS", 0.05)
    return fake


def test_pods_waited_for_together_share_one_poll(cluster: FakeCluster) -> None:
    names = [f"probe-{i}" for i in range(6)]
    with runner.PodWatch(object(), "city") as watch, ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(runner.run_pod, object(), watch, _pod(name)) for name in names]
        time.sleep(0.5)
        for i, name in enumerate(names):
            cluster.ends[name] = i % 2
        results = [future.result(timeout=10) for future in futures]
    assert [r.exit_code for r in results] == [i % 2 for i in range(6)]
    assert results[0].output == "output of probe-0\n"
    # About one poll per 0.05 s of waiting, for all six pods together: six pods polling each
    # on its own would make six times as many.
    assert cluster.polls < 0.5 / 0.05 * 3
    assert cluster.calls.count("delete") == 6


def test_a_pod_that_never_ends_times_out_and_the_watch_rests_when_nobody_waits(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "GRACE_SECONDS", 0)
    with runner.PodWatch(object(), "city") as watch:
        started = time.monotonic()
        result = runner.run_pod(object(), watch, _pod("stuck", timeout=1))
        assert result.exit_code is None and result.reason == "timed out after 1s"
        assert 0.9 < time.monotonic() - started < 5
        polls = cluster.polls
        time.sleep(0.3)
        assert cluster.polls <= polls + 1  # at most the poll that was under way


def test_service_endpoints_are_the_ready_addresses_by_service_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One EndpointSlice listing: ready (or unset) endpoints by namespace, Service and port name;
    an endpoint that is not ready, and a slice of no Service, are left out."""
    slices = {
        "items": [
            {
                "metadata": {
                    "namespace": "city-data",
                    "labels": {"kubernetes.io/service-name": "postgis"},
                },
                "ports": [{"name": "postgres", "port": 5432}, {"name": "api", "port": 8008}],
                "endpoints": [
                    {"addresses": ["10.1.0.7"], "conditions": {"ready": True}},
                    {"addresses": ["10.1.0.5"]},
                    {"addresses": ["10.1.0.6"], "conditions": {"ready": False}},
                ],
            },
            {"metadata": {"namespace": "city-data", "labels": {}}, "ports": [], "endpoints": []},
        ]
    }

    def fake(access: object, *args: str, stdin: str | None = None) -> Any:
        assert args[:2] == ("get", "endpointslices")
        return subprocess.CompletedProcess(args, 0, json.dumps(slices), "")

    monkeypatch.setattr(runner, "kubectl", fake)
    found = runner.service_endpoints(None)  # type: ignore[arg-type]
    assert found == {
        ("city-data", "postgis", "postgres"): [("10.1.0.5", 5432), ("10.1.0.7", 5432)],
        ("city-data", "postgis", "api"): [("10.1.0.5", 8008), ("10.1.0.7", 8008)],
    }

    def failing(access: object, *args: str, stdin: str | None = None) -> Any:
        return subprocess.CompletedProcess(args, 1, "", "forbidden")

    monkeypatch.setattr(runner, "kubectl", failing)
    assert runner.service_endpoints(None) == {}  # type: ignore[arg-type]
