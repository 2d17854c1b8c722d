"""The user's main job, end to end on the local cluster with the real Pulumi engine and provider:
up -> every component ready -> no-op up -> drift found and repaired -> destroy leaves nothing;
protected data survives destroy unless asked; an up killed while it creates the city converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.clusters import CLI
from tests.clusters import Cluster
from tests.conftest import EXAMPLE
from tests.conftest import example_data

PROFILE = str(EXAMPLE)
SLUG = "yuhang"


def labelled(
    cluster: Cluster,
    slug: str,
    kinds: str = "all,pvc,secret,configmap,networkpolicy,"
    "serviceaccount,role,rolebinding,resourcequota,limitrange",
) -> list[dict[str, Any]]:
    result = cluster.kubectl(
        "get", kinds, "--all-namespaces", "-l", f"app.kubernetes.io/part-of={slug}", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return items


def namespaces(cluster: Cluster, slug: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.get_json(
        "namespaces", "-l", f"app.kubernetes.io/part-of={slug}"
    )["items"]
    return items


def status(cluster: Cluster, *args: str) -> list[dict[str, str]]:
    result = cluster.citykit("status", "-p", PROFILE, "-e", "dev", "-o", "json", *args, expect=None)
    rows: list[dict[str, str]] = json.loads(result.stdout)
    return rows


def wait_all_ready(cluster: Cluster, timeout: float = 120) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    rows = status(cluster)
    while time.monotonic() < deadline and any(r["state"] != "ready" for r in rows):
        time.sleep(2)
        rows = status(cluster)
    return rows


@pytest.fixture(scope="module")
def deployed(kube_cluster: Cluster) -> dict[str, Any]:
    result = kube_cluster.citykit(
        "up", "-p", PROFILE, "-e", "dev", "--yes", "-o", "json", timeout=1500
    )
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def test_up_deploys_every_component_ready(kube_cluster: Cluster, deployed: dict[str, Any]) -> None:
    assert deployed["failures"] == []
    assert deployed["resources"].get("create", 0) > 50
    rows = wait_all_ready(kube_cluster)
    assert [r for r in rows if r["state"] != "ready"] == []
    clauses = {r["clause"] for r in rows}
    assert {"7.1.1", "7.1.2", "7.2", "7.3", "7.4", "7.5", "7.6"} <= clauses
    # Generated credentials exist on the cluster and never appear in citykit's output.
    secrets = [
        o
        for o in labelled(kube_cluster, SLUG, "secret")
        if "citykit.io/generate" in (o["metadata"].get("annotations") or {})
    ]
    assert secrets and all(s.get("data") for s in secrets)
    output = json.dumps(deployed)
    for secret in secrets:
        for value in secret["data"].values():
            import base64

            assert base64.b64decode(value).decode() not in output


def test_second_up_changes_nothing(kube_cluster: Cluster, deployed: dict[str, Any]) -> None:
    again = json.loads(
        kube_cluster.citykit("up", "-p", PROFILE, "-e", "dev", "--yes", "-o", "json").stdout
    )
    assert set(again["resources"]) == {"same"}, again["resources"]
    assert again["changes"] == []
    kube_cluster.citykit("preview", "-p", PROFILE, "-e", "dev", "--expect-no-changes")
    # Every citykit run so far has exited, and the engine's temporary files (the provider writes
    # the kubeconfig to one each time it is configured) went with it.
    if kube_cluster.started_here:  # a given cluster's citykit state is the user's own
        state = Path(kube_cluster.env["CITYKIT_STATE_DIR"])
        assert list((state / "pulumi" / "tmp").iterdir()) == []


def test_drift_finds_a_hand_edit_and_up_repairs_it(
    kube_cluster: Cluster, deployed: dict[str, Any]
) -> None:
    kube_cluster.citykit("drift", "-p", PROFILE, "-e", "dev")
    deployments = [o for o in labelled(kube_cluster, SLUG, "deployments")]
    target = deployments[0]
    name, namespace = target["metadata"]["name"], target["metadata"]["namespace"]
    kube_cluster.kubectl(
        "label",
        "deployment",
        name,
        "-n",
        namespace,
        "app.kubernetes.io/part-of=hand-edited",
        "--overwrite",
    )
    drift = kube_cluster.citykit("drift", "-p", PROFILE, "-e", "dev", "-o", "json", expect=2)
    found = json.loads(drift.stdout)
    assert found["drift"] is True
    assert any(name in change["name"] for change in found["changes"]), found["changes"]
    kube_cluster.citykit("up", "-p", PROFILE, "-e", "dev", "--yes")
    kube_cluster.citykit("drift", "-p", PROFILE, "-e", "dev")


def test_outputs_list_endpoints_and_secret_names_not_values(
    kube_cluster: Cluster, deployed: dict[str, Any]
) -> None:
    outputs = json.loads(
        kube_cluster.citykit("outputs", "-p", PROFILE, "-e", "dev", "-o", "json").stdout
    )
    assert outputs
    assert ".svc:" in json.dumps(outputs)


def test_a_second_up_on_the_same_stack_is_refused(
    kube_cluster: Cluster, deployed: dict[str, Any]
) -> None:
    state = Path(
        kube_cluster.env.get("CITYKIT_STATE_DIR") or Path.home() / ".local" / "state" / "citykit"
    )
    locks = state / "pulumi" / "backend" / ".pulumi" / "locks"
    first = subprocess.Popen(
        [*CLI, "up", "-p", PROFILE, "-e", "dev", "--yes"],
        env=kube_cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(locks.rglob("*.json")):
        time.sleep(0.1)
    assert list(locks.rglob("*.json")), "the first up never took the stack lock"
    second = kube_cluster.citykit("up", "-p", PROFILE, "-e", "dev", "--yes", expect=2)
    assert "another citykit/pulumi operation is running" in second.stderr
    out, err = first.communicate(timeout=900)
    assert first.returncode == 0, out + err
    kube_cluster.citykit("preview", "-p", PROFILE, "-e", "dev", "--expect-no-changes")


def test_destroy_in_dev_leaves_nothing(kube_cluster: Cluster, deployed: dict[str, Any]) -> None:
    kube_cluster.citykit("destroy", "-p", PROFILE, "-e", "dev", "--yes", timeout=900)
    assert labelled(kube_cluster, SLUG) == []
    assert namespaces(kube_cluster, SLUG) == []
    cluster_wide = kube_cluster.get_json(
        "clusterroles,clusterrolebindings,priorityclasses",
        "-l",
        f"app.kubernetes.io/part-of={SLUG}",
    )["items"]
    assert cluster_wide == []
    volumes = [
        v
        for v in kube_cluster.get_json("pv")["items"]
        if v["spec"].get("claimRef", {}).get("namespace", "").startswith(f"{SLUG}-")
    ]
    assert volumes == []


def test_protected_data_survives_destroy_unless_asked(
    kube_cluster: Cluster, tmp_path: Path
) -> None:
    """A production-like environment (protectData) on the same local cluster, another city."""
    data = example_data()
    data["city"]["slug"] = "guarded"
    profile = tmp_path / "guarded.yaml"
    profile.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    environment = tmp_path / "guarded-env.yaml"
    environment.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "citykit.io/v1alpha1",
                "kind": "Environment",
                "name": "guarded",
                "extends": "dev",
                "protectData": True,
            }
        )
    )
    args = ["-p", str(profile), "-e", str(environment)]
    kube_cluster.citykit("up", *args, "--yes", timeout=1500)
    from citykit import compiler

    stateful = {
        u.component.name
        for u in compiler.compile_city(profile, str(environment)).units
        if u.component.cls.stateful
    }
    stateful_before = [
        o
        for o in labelled(kube_cluster, "guarded", "statefulsets,pvc")
        if o["metadata"]["labels"]["app.kubernetes.io/component"] in stateful
    ]
    assert stateful_before, "the example city has stateful components"
    kept = json.loads(kube_cluster.citykit("destroy", *args, "--yes", "-o", "json").stdout)
    assert kept["kept_protected"]
    remaining = labelled(kube_cluster, "guarded", "statefulsets,pvc")
    assert {(o["kind"], o["metadata"]["name"]) for o in remaining} >= {
        (o["kind"], o["metadata"]["name"]) for o in stateful_before
    }
    # What protected data depends on stays (the engine never deletes a dependency of a kept
    # resource); everything else — the applications, gateways, hubs — is gone.
    keep = set(kept["kept_protected"]) | set(kept["kept_dependencies"]) | {"zones"}
    left = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]
        for o in labelled(kube_cluster, "guarded", "deployments,statefulsets")
    }
    assert left <= keep
    assert "one-network-services" not in left and "apisix" not in left
    kube_cluster.citykit("destroy", *args, "--yes", "--delete-data", timeout=900)
    assert labelled(kube_cluster, "guarded") == []


def test_interrupted_up_converges(kube_cluster: Cluster, deployed: dict[str, Any]) -> None:
    """Last of the module: after the destroy tests, so the killed `up` creates the city from
    nothing without a destroy of its own (one is still run, a no-op then, so the test stands
    alone)."""
    kube_cluster.citykit("destroy", "-p", PROFILE, "-e", "dev", "--yes", timeout=900)
    process = subprocess.Popen(
        [*CLI, "up", "-p", PROFILE, "-e", "dev", "--yes"],
        env=kube_cluster.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Kill the whole run (citykit and the engine it drives) once objects are being created.
    deadline = time.monotonic() + 300
    while (
        time.monotonic() < deadline and len(labelled(kube_cluster, SLUG, "configmaps,services")) < 5
    ):
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    again = kube_cluster.citykit(
        "up", "-p", PROFILE, "-e", "dev", "--yes", "-o", "json", timeout=1500
    )
    assert json.loads(again.stdout)["failures"] == []
    assert [r for r in wait_all_ready(kube_cluster) if r["state"] != "ready"] == []
    kube_cluster.citykit("preview", "-p", PROFILE, "-e", "dev", "--expect-no-changes")
