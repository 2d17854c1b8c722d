"""Shared fixtures: the example city and helpers to write profiles to temporary files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck
from hypothesis import settings

# The shared helpers of the cluster tiers and of split test modules assert like tests do: with
# pytest's explanations.
pytest.register_assert_rewrite(
    "tests.clusters",
    "tests.e2e.parity_server",
    "tests.faults.helpers",
    "tests.real.helpers",
    "tests.unit.image_helpers",
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "yuhang.yaml"
ENVIRONMENTS = ("dev", "staging", "prod")
# The small city: the example with a small message rate and RabbitMQ as its broker (a profile
# overlay, for citykit.testing.compile_variant).
SMALL_CITY = {
    "scale": {"peakMessagesPerSecond": 2000},
    "layers": {"common": {"message-broker": {"implementation": "rabbitmq"}}},
}

# The tiers whose tests share a cluster (started by a package or module fixture) or what it is
# built from run in pytest-xdist groups: `make test` runs `-n 3 --dist loadgroup`, where such
# fixtures run once per worker, so a tier is kept whole in one worker: two workers must not each
# start its cluster (the real node's API server port 6443, bridge and iptables chains exist once
# per host) nor build its images. Without xdist the marks do nothing.
#
# Two groups, lanes of about the same length, each running its tiers one after the other (each
# tier's cluster is a package fixture, down after its last test): two clusters at once, never
# three, which two cores did not carry (the real tier's `up` failed while the kind tier ran beside
# two others). The third worker runs the unit and Pulumi mock tests, then `citykit simulate`'s.
# In a lane the tiers run in collection order: tests/e2e before tests/real, tests/faults before
# tests/kind. Measured in a warm CI run (two lanes beside the unit tests, so each tier slowed
# by the others): e2e 7.9 min, real 9.3, faults 10.4, kind 6.9; the lanes ended 7 s apart.
LANES = {"e2e": "e2e-then-real", "real": "e2e-then-real", "faults": "faults-then-kind"}
LANES["kind"] = LANES["faults"]
TIER_MARKS = ("kind", "faults", "real", "e2e")  # in this order: a kind test is also marked e2e
# `citykit simulate` starts a throwaway control plane of its own in each of these tests, so they
# need no lane: a group of their own, last in the collection, which xdist (its scopes not
# reordered: `--no-loadscope-reorder`) hands out last, to the worker done with the unit tests.
OWN_CLUSTER = "tests/e2e/test_simulate_cluster.py"


# tryfirst: xdist reads the group in its own (plain) implementation of this hook. The e2e and
# faults marks are added by those directories' hooks, also tryfirst, which run before: they are
# registered later.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(OWN_CLUSTER):
            item.add_marker(pytest.mark.xdist_group("own-cluster"))
            continue
        tier = next((t for t in TIER_MARKS if item.get_closest_marker(t)), None)
        if tier is not None:
            item.add_marker(pytest.mark.xdist_group(LANES[tier]))
    # Stable: the rest keep the collection's order.
    items.sort(key=lambda item: item.nodeid.startswith(OWN_CLUSTER))


# Under `make test` the unit tests share the two cores with the cluster lanes, which are the
# run's critical path and wait part of their time (for pods, probes, controllers): the unit tests
# run at a lower CPU priority, taking what the lanes leave instead of slowing them. A test of a
# group (a cluster tier, simulate's) runs at the normal priority, and so does everything it
# starts. Only root can give a process its priority back, so others run everything as it is.
UNIT_NICENESS = 10


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") and os.geteuid() == 0:
        niceness = 0 if item.get_closest_marker("xdist_group") else UNIT_NICENESS
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


# Timing health checks judge the machine, not the code: a test at the lower priority may wait
# for the CPU between examples.
settings.register_profile("citykit", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("citykit")


# xdist tells the controller a test's group by appending `@group` to its node id; where that stops
# working it says nothing (pytest 9.2 with xdist 3.8: pytest-dev/pytest-xdist#1386) and two workers
# would each start a tier's cluster. Every test of the cluster tiers is in a group, so one without
# the suffix means the groups were lost.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    if node.config.getvalue("dist") != "loadgroup":
        return
    tiers = ("tests/e2e/", "tests/kind/", "tests/faults/", "tests/real/")
    lost = [i for i in ids if i.startswith(tiers) and "@" not in i]
    if lost:
        pytest.exit(
            f"pytest-xdist ignored the xdist_group marks (e.g. {lost[0]}): the cluster tiers "
            "cannot be kept in one worker; see pytest-dev/pytest-xdist#1386",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def example_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def write_profile(tmp_path: Path):
    """Write a profile dict (or raw text) to a file and return its path."""

    def write(data: dict[str, Any] | str, name: str = "profile.yaml") -> Path:
        path = tmp_path / name
        text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
