"""kube-score over the rendered cities (the example in dev, staging and prod, and the megacity in
prod): no CRITICAL finding, and every check an object skips (`kube-score/ignore`) carries its
reason on the same object, where `citykit compliance` reads it.

kube-score is built from its Go module like the other tools (`citykit tools install`, part of
`make unit`); all its default checks run, ephemeral storage requests and limits among them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from citykit import compiler
from citykit import manifests
from citykit import testing
from citykit import toolchain
from citykit.compiler import Compiled
from citykit.conventions import KUBE_SCORE_IGNORE
from citykit.conventions import KUBE_SCORE_REASON
from scripts.bench import megacity_profile
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE

CRITICAL = 1  # kube-score's grade (scorecard.GradeCritical)


def kube_score() -> Path:
    tool = toolchain.BY_NAME["kube-score"]
    if not tool.built():
        pytest.fail(f"kube-score not found at {tool.binary}: run `citykit tools install`")
    return tool.binary


def run_kube_score(directory: Path) -> list[dict[str, Any]]:
    """kube-score's JSON report over every rendered file, scored for the cluster's version."""
    files = sorted(str(p) for p in directory.rglob("*.yaml") if p.name != "kustomization.yaml")
    major_minor = ".".join(toolchain.KUBERNETES_VERSION.split(".")[:2])
    result = subprocess.run(
        [
            str(kube_score()),
            "score",
            "--output-format",
            "json",
            "--kubernetes-version",
            major_minor,
            *files,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    # Exit 1 is also a CRITICAL finding (reported by the caller): only a report tells them apart.
    try:
        report: list[dict[str, Any]] = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"kube-score failed: {result.stderr.strip() or result.stdout.strip()}")
    return report


def criticals(report: list[dict[str, Any]]) -> list[str]:
    return [
        f"{o['type_meta']['kind']} {o['object_meta'].get('namespace', '')}/"
        f"{o['object_meta']['name']}: {check['check']['id']} "
        f"({'; '.join(c['summary'] for c in check['comments'])})"
        for o in report
        for check in o["checks"]
        if check["grade"] == CRITICAL and not check["skipped"]
    ]


def assert_clean(compiled: Compiled, directory: Path) -> list[dict[str, Any]]:
    manifests.write(compiled, directory)
    report = run_kube_score(directory)
    assert criticals(report) == []
    return report


def test_every_skip_has_its_reason() -> None:
    for env in ENVIRONMENTS:
        for obj in compiler.compile_city(EXAMPLE, env).objects():
            annotations = obj["metadata"].get("annotations") or {}
            skipped = annotations.get(KUBE_SCORE_IGNORE, "")
            checks = [c for c in skipped.split(",") if c]
            reasons = {
                k.removeprefix(KUBE_SCORE_REASON): v
                for k, v in annotations.items()
                if k.startswith(KUBE_SCORE_REASON)
            }
            assert sorted(checks) == sorted(reasons), obj["metadata"]["name"]
            for check in checks:
                assert len(reasons[check]) > 20, (obj["metadata"]["name"], check)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kube_score_finds_nothing_critical(tmp_path: Path, env: str) -> None:
    report = assert_clean(compiler.compile_city(EXAMPLE, env), tmp_path / "out")
    ids = {check["check"]["id"] for o in report for check in o["checks"]}
    # The checks the findings came from all ran (none is switched off).
    assert {
        "container-ephemeral-storage-request-and-limit",
        "pod-probes-identical",
        "deployment-has-poddisruptionbudget",
        "statefulset-has-poddisruptionbudget",
        "cronjob-has-deadline",
        "container-security-context-user-group-id",
        "pod-topology-spread-constraints",
    } <= ids


def test_kube_score_finds_nothing_critical_in_a_megacity(tmp_path: Path) -> None:
    profile = tmp_path / "megacity.yaml"
    profile.write_text(yaml.safe_dump(megacity_profile(), allow_unicode=True), encoding="utf-8")
    assert_clean(compiler.compile_city(profile, "prod"), tmp_path / "out")


@pytest.mark.parametrize(
    ("message_broker", "api_gateway", "device_broker"),
    [("rabbitmq", "kong", "mosquitto"), ("nats", "kong", "emqx")],
)
def test_kube_score_finds_nothing_critical_with_the_other_implementations(
    tmp_path: Path, message_broker: str, api_gateway: str, device_broker: str
) -> None:
    overlay = testing.choosing(message_broker, api_gateway, device_broker)
    overlay["scale"] = {"peakMessagesPerSecond": 20_000}  # RabbitMQ clusters from 5,000 msg/s
    assert_clean(testing.compile_variant(overlay, "prod"), tmp_path / "out")


def test_compliance_lists_the_skips_with_their_reasons() -> None:
    from citykit.reports import compliance

    data = compliance.report(compiler.compile_city(EXAMPLE, "prod"))
    listed = {
        (e["component"], e["setting"]) for e in data["exceptions"] if e["kind"] == "kube-score"
    }
    assert ("zones", "networkpolicy-targets-pod") in listed
    assert ("ingress-nginx", "container-security-context-user-group-id") in listed
    assert ("kafka", "pod-probes-identical") in listed
    assert "- zones: kube-score networkpolicy-targets-pod — namespace-wide" in compliance.markdown(
        data
    )
