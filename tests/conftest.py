"""Shared fixtures: the example city and helpers to write profiles to temporary files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

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
# built from: each is one pytest-xdist group. `make test` runs `-n 3 --dist loadgroup`, where such
# fixtures run once per worker, so each tier is kept whole in one worker: two workers must not each
# start its cluster (the real node's API server port 6443, bridge and iptables chains exist once
# per host) nor build its images. The tiers' clusters differ in name, state directory and ports,
# so two groups run beside each other while the unit and Pulumi mock tests spread over the
# workers. Without xdist the mark does nothing.
CLUSTER_TIERS = ("real", "e2e")
# Two groups of about the same length, so both lanes end together; in each, one cluster at a
# time (each tier's is a package fixture, down after its last test), so two run at once, never
# three, which two cores did not carry (the real tier's `up` failed while the kind tier ran beside
# two others):
# - "real": the faults tier (tests/faults puts itself there), then the real node's;
# - "e2e": the end-to-end tier, then the kind tier (tests/kind, sorted last below).
# Measured warm in one CI run: faults 12.6 min, e2e 12.5, real 7.5, kind 8.7; with kind after
# the faults and real tiers, that lane alone took 29 minutes while the e2e lane idled after 13.
GROUP_OF_KIND = "e2e"


# tryfirst: xdist reads the group in its own (plain) implementation of this hook. The e2e mark is
# added by tests/e2e/conftest.py's, also tryfirst, which runs before: it is registered later.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = next((t for t in CLUSTER_TIERS if item.get_closest_marker(t)), None)
        if item.get_closest_marker("kind"):
            tier = GROUP_OF_KIND
        if tier is not None:
            item.add_marker(pytest.mark.xdist_group(tier))
    # A worker runs its group's tests in this order (stable: the rest keep theirs).
    items.sort(key=lambda item: item.get_closest_marker("kind") is not None)


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
