"""Which objects `up` refreshes: those whose live resourceVersion differs from the recorded one,
or that are gone; everything when that cannot be told."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from citykit.deploy import freshness
from citykit.deploy.engine import PROJECT, ClusterAccess

ACCESS = ClusterAccess(Path("/nonexistent/kubeconfig"), None, "test cluster")


def resource(urn: str, api_version: str, kind: str, name: str, rv: Any, ns: str = "") -> dict:
    metadata: dict[str, Any] = {"name": name, "resourceVersion": rv}
    if ns:
        metadata["namespace"] = ns
    token = api_version if "/" in api_version else f"core/{api_version}"
    return {
        "urn": urn,
        "type": f"kubernetes:{token}:{kind}",
        "custom": True,
        "outputs": {"apiVersion": api_version, "kind": kind, "metadata": metadata},
    }


CHECKPOINT = {
    "resources": [
        {"urn": "urn:stack", "type": "pulumi:pulumi:Stack"},
        {"urn": "urn:provider", "type": "pulumi:providers:kubernetes", "custom": True},
        {"urn": "urn:layer", "type": "citykit:layer:Data"},
        resource("urn:ns", "v1", "Namespace", "yuhang-data", "10"),
        resource("urn:deploy", "apps/v1", "Deployment", "lake", "20", ns="yuhang-data"),
        resource("urn:cert", "cert-manager.io/v1", "Certificate", "lake", "30", ns="yuhang-data"),
        # A Secret whose outputs the state keeps encrypted: cannot be compared.
        {
            "urn": "urn:secret",
            "type": "kubernetes:core/v1:Secret",
            "custom": True,
            "outputs": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"},
        },
        # Pending deletion of a replaced object: not a live object.
        dict(resource("urn:old", "v1", "ConfigMap", "old", "5", ns="yuhang-data"), delete=True),
    ]
}


def write_state(tmp_path: Path, stack: str, latest: dict[str, Any] | None) -> str:
    directory = tmp_path / ".pulumi" / "stacks" / PROJECT
    directory.mkdir(parents=True)
    if latest is not None:
        (directory / f"{stack}.json").write_text(json.dumps({"checkpoint": {"latest": latest}}))
    return f"file://{tmp_path}"


def fake_kubectl(monkeypatch: pytest.MonkeyPatch, stdout: str, returncode: int = 0) -> list[Any]:
    calls: list[Any] = []

    def run(access: ClusterAccess, *args: str, stdin: str | None = None) -> Any:
        calls.append(args)
        return subprocess.CompletedProcess(args, returncode, stdout, "")

    monkeypatch.setattr(freshness, "kubectl", run)
    return calls


def listing(*rows: tuple[str, str, str, str, str]) -> str:
    return "".join("\t".join(row) + "\n" for row in rows)


def test_only_changed_or_missing_objects_are_refreshed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write_state(tmp_path, "yuhang-dev", CHECKPOINT)
    calls = fake_kubectl(
        monkeypatch,
        listing(
            ("v1", "Namespace", "", "yuhang-data", "10"),  # unchanged
            ("apps/v1", "Deployment", "yuhang-data", "lake", "21"),  # edited (or status moved)
            # the Certificate is gone
            ("cert-manager.io/v1", "Certificate", "other", "lake", "30"),  # same name elsewhere
        ),
    )
    assert freshness.stale_urns(url, "yuhang-dev", ACCESS) == [
        "urn:deploy",
        "urn:cert",
        "urn:secret",
    ]
    (args,) = calls
    assert args[0] == "get"
    assert args[1] == "Certificate.v1.cert-manager.io,Deployment.v1.apps,Namespace"
    assert "--all-namespaces" in args


def test_nothing_changed_means_nothing_to_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latest = {"resources": CHECKPOINT["resources"][:5]}
    url = write_state(tmp_path, "s", latest)
    fake_kubectl(
        monkeypatch,
        listing(
            ("v1", "Namespace", "", "yuhang-data", "10"),
            ("apps/v1", "Deployment", "yuhang-data", "lake", "20"),
        ),
    )
    assert freshness.stale_urns(url, "s", ACCESS) == []


def test_uncertain_answers_mean_refresh_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write_state(tmp_path, "s", CHECKPOINT)
    fake_kubectl(monkeypatch, "", returncode=1)  # a kind cannot be listed (CRD deleted, RBAC)
    assert freshness.stale_urns(url, "s", ACCESS) is None
    fake_kubectl(monkeypatch, "not\ta\tlisting\n")
    assert freshness.stale_urns(url, "s", ACCESS) is None
    assert freshness.stale_urns("s3://bucket", "s", ACCESS) is None  # not a file backend
    assert freshness.stale_urns(url, "s", None) is None  # no cluster access


def test_checkpoint_of_new_unreadable_and_existing_stacks(tmp_path: Path) -> None:
    url = write_state(tmp_path, "s", None)
    assert freshness.checkpoint(url, "s") == {}  # never deployed: nothing to refresh
    state = tmp_path / ".pulumi" / "stacks" / PROJECT / "s.json"
    state.write_text("{not json")
    assert freshness.checkpoint(url, "s") is None
    state.write_text(json.dumps({"checkpoint": {"latest": {"pending_operations": [1]}}}))
    assert freshness.checkpoint(url, "s") == {"pending_operations": [1]}
