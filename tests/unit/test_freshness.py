"""Which objects `up` refreshes: those whose live resourceVersion differs from the recorded one,
or that are gone; everything when that cannot be told."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from citykit.deploy import freshness
from citykit.deploy.engine import PROJECT
from citykit.deploy.engine import ClusterAccess

ACCESS = ClusterAccess(Path("/nonexistent/kubeconfig"), None, "test cluster")


def outputs(api_version: str, kind: str, name: str, rv: str, ns: str = "", **rest: Any) -> dict:
    metadata: dict[str, Any] = {"name": name, "resourceVersion": rv}
    if ns:
        metadata["namespace"] = ns
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **rest}


def resource(urn: str, recorded: dict[str, Any]) -> dict[str, Any]:
    api_version = recorded["apiVersion"]
    token = api_version if "/" in api_version else f"core/{api_version}"
    return {
        "urn": urn,
        "type": f"kubernetes:{token}:{recorded['kind']}",
        "custom": True,
        # What the provider keeps beside the object: not part of what the cluster holds.
        "outputs": {**recorded, "__inputs": {"x": 1}, "__fieldManager": "pulumi-kubernetes"},
    }


NAMESPACE = outputs("v1", "Namespace", "yuhang-data", "10")
DEPLOYMENT = outputs(
    "apps/v1", "Deployment", "lake", "20", ns="yuhang-data", spec={"replicas": 2}, status={}
)
CERTIFICATE = outputs("cert-manager.io/v1", "Certificate", "lake", "30", ns="yuhang-data")
BUDGET = outputs("policy/v1", "PodDisruptionBudget", "lake", "40", ns="yuhang-data", status={})
CRD = outputs(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "issuers.cert-manager.io",
    "50",
    spec={"schema": {"x_kubernetes_preserve_unknown_fields": True}},
)

CHECKPOINT = {
    "resources": [
        {"urn": "urn:stack", "type": "pulumi:pulumi:Stack"},
        {"urn": "urn:provider", "type": "pulumi:providers:kubernetes", "custom": True},
        {"urn": "urn:layer", "type": "citykit:layer:Data"},
        resource("urn:ns", NAMESPACE),
        resource("urn:deploy", DEPLOYMENT),
        resource("urn:cert", CERTIFICATE),
        resource("urn:budget", BUDGET),
        resource("urn:crd", CRD),
        # A Secret whose outputs the state keeps encrypted: cannot be compared.
        {
            "urn": "urn:secret",
            "type": "kubernetes:core/v1:Secret",
            "custom": True,
            "outputs": {freshness.SECRET_SIGNATURE: "1b47061264138c4ac30d75fd1eb44270"},
        },
        # Pending deletion of a replaced object: not a live object.
        dict(resource("urn:old", outputs("v1", "ConfigMap", "old", "5", ns="d")), delete=True),
    ]
}


def moved(obj: dict[str, Any], rv: str, **changes: Any) -> dict[str, Any]:
    """`obj` as the cluster holds it after a write: a new resourceVersion, and `changes`."""
    live = json.loads(json.dumps(obj))
    live["metadata"]["resourceVersion"] = rv
    live["metadata"]["managedFields"] = [{"manager": "kube-controller-manager"}]
    live.update(changes)
    return live


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


def listing(*items: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def test_only_changed_or_missing_objects_are_refreshed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write_state(tmp_path, "yuhang-dev", CHECKPOINT)
    calls = fake_kubectl(
        monkeypatch,
        listing(
            NAMESPACE,  # unchanged
            moved(DEPLOYMENT, "21", spec={"replicas": 3}),  # scaled by hand
            # the Certificate is gone; one of the same name lives elsewhere
            outputs("cert-manager.io/v1", "Certificate", "lake", "30", ns="other"),
            moved(BUDGET, "41", status={"currentHealthy": 2}),  # a controller wrote status
            # the API server's spelling of the CRD's schema keys: not a change
            moved(CRD, "51", spec={"schema": {"x-kubernetes-preserve-unknown-fields": True}}),
        ),
    )
    assert freshness.stale_urns(url, "yuhang-dev", ACCESS) == [
        "urn:deploy",
        "urn:cert",
        "urn:secret",
    ]
    (args,) = calls
    assert args[0] == "get"
    assert args[1] == (
        "Certificate.v1.cert-manager.io,CustomResourceDefinition.v1.apiextensions.k8s.io,"
        "Deployment.v1.apps,Namespace,PodDisruptionBudget.v1.policy"
    )
    assert "--all-namespaces" in args


def test_nothing_changed_means_nothing_to_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latest = {"resources": CHECKPOINT["resources"][:5]}
    url = write_state(tmp_path, "s", latest)
    fake_kubectl(monkeypatch, listing(NAMESPACE, DEPLOYMENT))
    assert freshness.stale_urns(url, "s", ACCESS) == []


def test_labels_and_annotations_count_as_changes() -> None:
    live = moved(DEPLOYMENT, "22")
    live["metadata"]["annotations"] = {"edited": "by hand"}
    assert not freshness.unchanged(DEPLOYMENT, live)
    assert freshness.unchanged(DEPLOYMENT, moved(DEPLOYMENT, "23", status={"ready": 1}))


def test_uncertain_answers_mean_refresh_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write_state(tmp_path, "s", CHECKPOINT)
    fake_kubectl(monkeypatch, "", returncode=1)  # a kind cannot be listed (CRD deleted, RBAC)
    assert freshness.stale_urns(url, "s", ACCESS) is None
    fake_kubectl(monkeypatch, "not json")
    assert freshness.stale_urns(url, "s", ACCESS) is None
    fake_kubectl(monkeypatch, json.dumps({"items": [{"kind": "NoMetadata"}]}))
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
