"""`citykit simulate` end to end: a throwaway control plane of its own, the city applied, the
scheduler's decisions reported, and nothing left behind. Small node counts keep it fast; a
1,000-node run (about 85 s and 1 GiB of control plane on two cores) is measured by hand."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.clusters import CLI
from tests.conftest import EXAMPLE


def _simulate(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | {"CITYKIT_STATE_DIR": str(state)}
    env.pop("KUBECONFIG", None)
    result = subprocess.run(
        [*CLI, "simulate", "-p", str(EXAMPLE), "-e", "prod", "-o", "json", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )
    assert "Traceback" not in result.stderr, result.stderr
    # Removed afterwards, whatever the outcome: no state, no process of it.
    assert not list((state / "clusters").glob("*")), result.stderr
    return result


def _no_processes_of(state: Path) -> bool:
    marker = str(state).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    return False
            except OSError:
                continue
    return True


def test_the_city_fits_twenty_nodes_shaped_like_prod(tmp_path: Path) -> None:
    result = _simulate(tmp_path, "--nodes", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["nodes"] == 20
    assert report["pods"]["pending"] == 0 and report["pods"]["notCreated"] == 0
    assert report["pods"]["scheduled"] > 50
    pools = {p["pool"]: p for p in report["pools"]}
    assert {name: p["nodes"] for name, p in pools.items()} == {"general": 8, "gpu": 3, "edge": 9}
    assert 0 < pools["general"]["cpuRequested"] < pools["general"]["cpuAllocatable"]
    assert pools["gpu"]["pods"] >= 1  # AI serving, on the tainted GPU pool
    zones = {z["zone"]: z for z in report["zones"]}
    assert set(zones) == {"core", "wuchang", "cangqian", "liangzhu"}
    assert sum(z["pods"] for z in zones.values()) == report["pods"]["scheduled"]
    departments = {q["department"] for q in report["quotas"]}
    assert departments == {"data-bureau", "emergency", "urban-mgmt"}
    assert report["run"]["peakMemoryBytes"] > 0
    assert _no_processes_of(tmp_path)


def test_a_pod_that_fits_no_node_is_reported_with_the_schedulers_reason(tmp_path: Path) -> None:
    # One node: a general one (the largest pool). The GPU workload has nowhere to go.
    result = _simulate(tmp_path, "--nodes", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["nodes"] == 1 and report["pods"]["pending"] >= 1
    reasons = " ".join(p["reason"] for p in report["pending"])
    assert "0/1 nodes are available" in reasons
    assert "pending" in result.stderr  # the closing error line
    assert _no_processes_of(tmp_path)
