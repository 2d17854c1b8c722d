"""The real tier: the example city in the `local` environment, where every component with a local
image runs as a real container on a kubelet + containerd node beside the simulated ones.

Builds the images (`citykit images build`), deploys with the real Pulumi engine
(`citykit up -e local`, which starts the cluster and its real node), then checks what only real
containers can show: pods Running with containerd container IDs and Ready through their own
probes, under restricted Pod Security with read-only root filesystems. Then `destroy` and
`cluster down` must leave no process, mount, interface or rule behind. Needs root (the kubelet
does); CI runs as root.

The helpers the tests share are in tests/real/helpers.py."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator

import pytest

from citykit.cluster import node_host
from citykit.cluster import node_teardown
from tests.real.helpers import DATA
from tests.real.helpers import MIN_COMPONENTS
from tests.real.helpers import MIN_LAYERS
from tests.real.helpers import POSTGIS_PODS
from tests.real.helpers import PROFILE
from tests.real.helpers import City
from tests.real.helpers import _failures
from tests.real.helpers import _psql
from tests.real.helpers import _ready
from tests.real.helpers import _real_node
from tests.real.helpers import _service_target
from tests.real.helpers import _until
from tests.real.helpers import _wait_real_pods_ready
from tests.real.helpers import run
from tests.real.helpers import verify

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    if os.geteuid() != 0:
        pytest.fail("the real tier runs a kubelet and containerd: run it as root (CI does)")
    missing = node_host.missing_host_tools()
    if missing:
        pytest.fail(f"host tools missing: {', '.join(missing)} — run scripts/system-deps")
    state = tmp_path_factory.mktemp("citykit-real-state")
    env = dict(os.environ)
    env.update(CITYKIT_STATE_DIR=str(state), PULUMI_CONFIG_PASSPHRASE="real-tier-only")
    env.pop("KUBECONFIG", None)
    env.pop("CITYKIT_KUBECONFIG", None)
    started = time.monotonic()
    built = run(env, "images", "build", "-p", PROFILE, "-e", "local")
    assert built.returncode == 0, built.stdout + built.stderr
    print(f"images build: {time.monotonic() - started:.1f}s")
    city = City(env, state)
    try:
        started = time.monotonic()
        up = run(env, "up", "-p", PROFILE, "-e", "local", "--yes")
        print(f"up: {time.monotonic() - started:.1f}s")
        assert up.returncode == 0, up.stdout[-5000:] + up.stderr[-5000:]
        yield city
    finally:
        run(env, "destroy", "-p", PROFILE, "-e", "local", "--yes", timeout=900)
        run(env, "cluster", "down", "-e", "local", timeout=300)


def test_the_real_node_runs_containerd(city: City) -> None:
    node = _real_node(city)
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.37.2"
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"


def test_the_api_server_reports_its_real_version(city: City) -> None:
    result = city.kubectl("version", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["serverVersion"]["gitVersion"] == "v1.37.2"


def test_components_run_for_real_and_ready(city: City) -> None:
    pods = _wait_real_pods_ready(city)
    not_ready = [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}: "
        + json.dumps(p["status"].get("containerStatuses", []))[:600]
        for p in pods
        if not _ready(p)
    ]
    assert not not_ready, "\n".join(not_ready)
    components, layers = set(), set()
    for pod in pods:
        labels = pod["metadata"]["labels"]
        statuses = pod["status"]["containerStatuses"]
        assert all(s["containerID"].startswith("containerd://") for s in statuses)
        assert all(s["ready"] for s in statuses)
        for container in pod["spec"]["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
        components.add(labels["app.kubernetes.io/component"])
        layers.add(labels["citykit.io/layer"])
    assert len(components) >= MIN_COMPONENTS, sorted(components)
    assert len(layers) >= MIN_LAYERS, sorted(layers)


def test_status_says_which_components_run_for_real(city: City) -> None:
    _wait_real_pods_ready(city)
    result = run(city.env, "status", "-p", PROFILE, "-e", "local", "-o", "json")
    rows = {r["component"]: r for r in json.loads(result.stdout)}
    assert rows["postgis"]["runs"] == "real"
    assert rows["kafka"]["runs"] == "simulated"


def test_verify_proves_the_real_components_work(city: City) -> None:
    _wait_real_pods_ready(city)
    started = time.monotonic()
    code, checks = verify(city)
    print(f"verify: {time.monotonic() - started:.1f}s")
    for check in checks:
        print(
            f"  {check['status']:7} {check['seconds']:5.1f}s {check['component']}: "
            f"{check['check']} — {check['detail']}"
        )
    assert code == 0, _failures(checks)
    passed = [c for c in checks if c["status"] == "passed"]
    assert len(passed) >= 15
    assert len({c["layer"] for c in passed}) >= 5
    denied = [c for c in passed if c["check"].startswith("denied: ")]
    assert any("yuhang-dept-" in c["check"] and c["component"] == "postgis" for c in denied)
    assert any(c["check"].startswith("allowed: ") for c in passed)
    # Skipped means simulated or unreached, never a real component's functional check.
    functional = {
        c["component"] for c in passed if not c["check"].startswith(("allowed", "denied"))
    }
    assert {"mosquitto", "postgis", "minio", "victoria-metrics", "prometheus"} <= functional
    assert all(c["status"] != "passed" for c in checks if c["component"] == "kafka")
    leftovers = city.get("pods,jobs", "--all-namespaces", "-l", "citykit.io/verify=yuhang")
    assert leftovers["items"] == []


def test_verify_fails_and_names_the_component_when_an_allow_policy_is_deleted(city: City) -> None:
    name = "postgis-from-one-network-services"
    saved = city.get("networkpolicy", "-n", "yuhang-data", name)
    deleted = city.kubectl("delete", "networkpolicy", "-n", "yuhang-data", name)
    assert deleted.returncode == 0, deleted.stderr
    try:
        code, checks = verify(city, "--layer", "data")
        assert code == 2
        failed = [c for c in checks if c["status"] == "failed"]
        assert [c["component"] for c in failed] == ["postgis"], _failures(checks)
        assert failed[0]["check"] == "allowed: one-network-services -> postgis:5432"
    finally:
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            saved["metadata"].pop(key, None)
        city.kubectl_input(json.dumps(saved), "create", "-f", "-")


def test_verify_fails_on_a_wrong_password_in_a_secret(city: City) -> None:
    secret = "one-network-services-db"
    saved = city.get("secret", "-n", "yuhang-applications", secret)
    wrong = base64.b64encode(b"citykit-verify-wrong").decode()
    patched = city.kubectl(
        "patch",
        "secret",
        "-n",
        "yuhang-applications",
        secret,
        "--type=merge",
        "-p",
        json.dumps({"data": {"password": wrong}}),
    )
    assert patched.returncode == 0, patched.stderr
    try:
        code, checks = verify(city, "--layer", "applications")
        assert code == 2
        failed = [c for c in checks if c["status"] == "failed"]
        assert {c["component"] for c in failed} == {"one-network-services"}, _failures(checks)
        assert "password authentication failed" in failed[0]["detail"]
    finally:
        city.kubectl(
            "patch",
            "secret",
            "-n",
            "yuhang-applications",
            secret,
            "--type=merge",
            "-p",
            json.dumps({"data": {"password": saved["data"]["password"]}}),
        )


def test_database_fails_over_to_its_standby_with_the_data(city: City) -> None:
    """`local` runs PostgreSQL as two Patroni members. Deleting the primary's pod must move the
    Service to the standby, promoted, with what was written before; the deleted member comes
    back as the new standby."""
    _wait_real_pods_ready(city)
    pods = [
        p["metadata"]["name"] for p in city.get("pods", "-n", DATA, "-l", POSTGIS_PODS)["items"]
    ]
    assert len(pods) == 2, pods
    _until("the Service points at one member", lambda: _service_target(city), 120)
    primary = _service_target(city)
    assert primary is not None
    standby = next(p for p in pods if p != primary)
    assert _psql(city, primary, "SELECT pg_is_in_recovery()") == "f"
    assert _psql(city, standby, "SELECT pg_is_in_recovery()") == "t"
    marker = f"failover-{time.time_ns()}"
    _psql(
        city,
        primary,
        "CREATE TABLE IF NOT EXISTS citykit_failover (marker text NOT NULL); "
        f"INSERT INTO citykit_failover VALUES ('{marker}')",
    )
    marked = f"SELECT count(*) FROM citykit_failover WHERE marker = '{marker}'"
    # Replication is asynchronous: the test deletes the primary once the standby has the row,
    # as Patroni only promotes a standby within maximum_lag_on_failover.
    _until("the standby replays the row", lambda: _psql(city, standby, marked) == "1", 60)
    deleted = city.kubectl("delete", "pod", "-n", DATA, primary, "--wait=false")
    assert deleted.returncode == 0, deleted.stderr
    took = _until(
        f"the Service points at {standby}, promoted",
        lambda: (
            _service_target(city) == standby
            and _psql(city, standby, "SELECT pg_is_in_recovery()") == "f"
        ),
        120,
    )
    print(f"failover: {primary} deleted, {standby} primary behind the Service in {took:.1f}s")
    assert _psql(city, standby, marked) == "1"
    rejoined = _until(
        f"{primary} streams from {standby} again",
        lambda: (
            _psql(
                city, standby, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
            )
            == "1"
            and _psql(city, primary, marked) == "1"
        ),
        240,
    )
    print(f"rejoined as standby {rejoined:.1f}s after the promotion")
    code, checks = verify(city, "--layer", "data")
    assert code == 0, _failures(checks)
    _psql(city, standby, "DROP TABLE citykit_failover")


def test_restore_drill_restores_the_database(city: City) -> None:
    code, checks = verify(city, "--layer", "data", "--restore-drill")
    drills = {c["component"]: c for c in checks if c["check"].startswith("restore drill")}
    for drill in drills.values():
        print(
            f"  {drill['status']:7} {drill['seconds']:5.1f}s {drill['component']}: "
            f"{drill['detail']}"
        )
    assert code == 0, _failures(checks)
    assert drills["postgis"]["status"] == "passed"  # the relational database
    assert drills["minio"]["status"] == "passed"  # the lake
    report = run(city.env, "compliance", "-p", PROFILE, "-e", "local", "-o", "json")
    family = next(
        f for f in json.loads(report.stdout)["mlps"]["families"] if f["family"] == "backup-recovery"
    )
    assert any("restore drill passed" in c for c in family["controls"]), family
    assert not any("restore drill" in g for g in family["gaps"]), family
    leftovers = city.get("pods,jobs", "--all-namespaces", "-l", "citykit.io/verify=yuhang")
    assert leftovers["items"] == []
    drill_jobs = [
        j
        for j in city.get("jobs", "--all-namespaces")["items"]
        if "-backup-drill-" in j["metadata"]["name"]
    ]
    assert drill_jobs == []


def test_destroy_and_down_leave_nothing_behind(city: City) -> None:
    destroyed = run(city.env, "destroy", "-p", PROFILE, "-e", "local", "--yes", timeout=900)
    assert destroyed.returncode == 0, destroyed.stdout[-3000:] + destroyed.stderr[-3000:]
    down = run(city.env, "cluster", "down", "-e", "local", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert node_teardown.leftovers(city.node) == []
    assert not city.node.dir.exists()
