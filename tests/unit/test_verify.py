"""`citykit verify` without a cluster: the flow matrix against the rendered NetworkPolicies (a
small evaluator of the policy semantics decides each flow), the probe pods, and how results
become outcomes."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from citykit import compiler
from citykit.catalog import load_catalog
from citykit.compiler import Compiled
from citykit.contract.component import Check
from citykit.contract.layers import Zone
from citykit.verify import checks
from citykit.verify import probe
from citykit.verify.checks import PodResult
from citykit.verify.flows import Flow
from citykit.verify.flows import flow_matrix
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE


@pytest.fixture(scope="module", params=[*ENVIRONMENTS, "local"])
def compiled(request: pytest.FixtureRequest) -> Compiled:
    return compiler.compile_city(EXAMPLE, request.param)


# -- a NetworkPolicy evaluator, enough for the selectors citykit writes ----------------------------
def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # citykit writes no matchExpressions
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(peer: dict[str, Any], namespace: str, labels: dict[str, str], own: str) -> bool:
    if "ipBlock" in peer:
        return True  # 0.0.0.0/0 is the only block citykit writes
    namespace_labels = {"kubernetes.io/metadata.name": namespace}
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif namespace != own:
        return False
    return _matches(peer.get("podSelector", {}), labels)


def _port_matches(rule: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p["protocol"] == "TCP" for p in ports)


def _allows(
    policies: list[dict[str, Any]],
    direction: str,
    pod: tuple[str, dict[str, str]],
    peer: tuple[str, dict[str, str]],
    port: int,
) -> bool:
    """Whether `pod`'s policies in `direction` let it talk to `peer` on `port`: not isolated,
    or some rule of a selecting policy matches the peer and the port."""
    namespace, labels = pod
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace
        and direction in p["spec"]["policyTypes"]
        and _matches(p["spec"]["podSelector"], labels)
    ]
    if not selecting:
        return True
    key, side = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(side)
            if (not peers or any(_peer_matches(x, *peer, namespace) for x in peers)) and (
                _port_matches(rule, port)
            ):
                return True
    return False


def policy_allows(
    compiled: Compiled, flow: Flow, objects: list[dict[str, Any]] | None = None
) -> bool:
    objects = compiled.objects() if objects is None else objects
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    source = (flow.source.namespace, {probe.NAME_LABEL: flow.source.identity})
    server_labels = {
        probe.NAME_LABEL: flow.server.name,
        "app.kubernetes.io/instance": compiled.plan.slug,
    }
    server = (flow.server.namespace, server_labels)
    return _allows(policies, "Egress", source, server, flow.port.port) and _allows(
        policies, "Ingress", server, source, flow.port.port
    )


# -- the flow matrix -------------------------------------------------------------------------------
def test_the_rendered_policies_allow_every_allowed_flow_and_block_every_denied_one(
    compiled: Compiled,
) -> None:
    flows = flow_matrix(compiled.plan)
    wrong = [f.check for f in flows if policy_allows(compiled, f) != (f.expect == "allowed")]
    assert not wrong, wrong


def test_the_matrix_samples_each_wall(compiled: Compiled) -> None:
    flows = flow_matrix(compiled.plan)
    denied = [f for f in flows if f.expect == "denied"]
    whys = {f.why for f in denied}
    assert {
        "default-deny of the namespace",
        "not an edge of the graph (same zone)",
        "internet zone to management zone",
        "department namespace to a data store",
    } <= whys
    departments = [f for f in denied if f.why == "department namespace to a data store"]
    assert any(f.server.capability == "relational-db" for f in departments)
    zones = [f for f in denied if f.why == "internet zone to management zone"]
    assert all(f.server.layer.zone is Zone.MANAGEMENT for f in zones)
    # Every server of an edge has a denied sample, except where a port is open to devices.
    servers = {f.server.name for f in flows if f.expect == "allowed"}
    sampled = {f.server.name for f in denied}
    open_to_devices = {
        f.server.name
        for f in flows
        if all(p.exposed_to == "devices" for p in f.server.cls.ports if p.protocol == "TCP")
    }
    assert servers - open_to_devices <= sampled


def test_the_matrix_is_deterministic_and_never_contradicts_itself(compiled: Compiled) -> None:
    first = [(f.check, f.why) for f in flow_matrix(compiled.plan)]
    assert first == [(f.check, f.why) for f in flow_matrix(compiled.plan)]
    allowed = {
        (f.source, f.server.name, f.port.port)
        for f in flow_matrix(compiled.plan)
        if f.expect == "allowed"
    }
    denied = {
        (f.source, f.server.name, f.port.port)
        for f in flow_matrix(compiled.plan)
        if f.expect == "denied"
    }
    assert not allowed & denied


def test_a_deleted_allow_policy_is_seen_by_the_evaluator(compiled: Compiled) -> None:
    """The evaluator can fail: without the server's ingress rule, its allowed flow is blocked."""
    flow = next(f for f in flow_matrix(compiled.plan) if f.expect == "allowed")
    stripped = [
        o
        for o in compiled.objects()
        if not (
            o["kind"] == "NetworkPolicy"
            and o["metadata"]["namespace"] == flow.server.namespace
            and "Ingress" in o["spec"]["policyTypes"]
            and o["metadata"]["name"].startswith(f"{flow.server.name}-")
            and o["metadata"]["name"] != f"{flow.server.name}-peers"
        )
    ]
    assert policy_allows(compiled, flow)
    assert not policy_allows(compiled, flow, stripped)


# -- probe pods ------------------------------------------------------------------------------------
def test_probe_pods_are_restricted_and_never_adopted_or_given_secret_values() -> None:
    compiled = compiler.compile_city(EXAMPLE, "local")
    runs = {c.name: "real" for c in compiled.plan.components}
    work = checks.plan_work(compiled.plan, runs, real_nodes=True, run_id="000000")
    assert work.pods
    for pod in work.pods:
        manifest = pod.manifest
        labels = manifest["metadata"]["labels"]
        # The workloads' selectors carry the instance label: a probe without it is never
        # adopted by a ReplicaSet or StatefulSet.
        assert "app.kubernetes.io/instance" not in labels
        assert labels[probe.VERIFY_LABEL] == compiled.plan.slug
        assert len(manifest["metadata"]["name"]) <= 63
        spec = manifest["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["nodeSelector"] == {"citykit.io/runtime": "containerd"}
        (container,) = spec["containers"]
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["image"].startswith("citykit.local/citykit-verify/probe:")
        for variable in container["env"]:
            assert "value" in variable or set(variable["valueFrom"]) == {"secretKeyRef"}
            if "value" in variable:
                assert "password" not in variable["name"].lower()


def test_the_probe_image_is_on_the_citys_allow_list(compiled: Compiled) -> None:
    policy = next(o for o in compiled.objects() if o["kind"] == "ValidatingAdmissionPolicy")
    allowed = policy["spec"]["variables"][0]["expression"]
    assert probe.probe_ref(compiled.plan).split("/")[0] + "/" in allowed


def test_checks_of_simulated_components_are_skipped_never_run() -> None:
    compiled = compiler.compile_city(EXAMPLE, "local")
    runs = {"postgis": "real", "mosquitto": "simulated"}
    work = checks.plan_work(compiled.plan, runs, real_nodes=True, run_id="000000")
    ran = {pod.functional[0].name for pod in work.pods if pod.functional}
    assert ran == {"postgis"}
    skipped = {o.component: o.detail for o in work.skipped}
    assert skipped["mosquitto"].startswith("simulated")
    assert skipped["minio"].startswith("not running")
    nothing = checks.plan_work(compiled.plan, runs, real_nodes=False, run_id="000000")
    assert not nothing.pods
    assert all(o.status == "skipped" and "simulated" in o.detail for o in nothing.skipped)


def test_one_layer_only() -> None:
    compiled = compiler.compile_city(EXAMPLE, "local")
    runs = {c.name: "real" for c in compiled.plan.components}
    work = checks.plan_work(compiled.plan, runs, real_nodes=True, run_id="1", layer="data")
    layers = {p.functional[0].layer.key for p in work.pods if p.functional}
    layers |= {f.server.layer.key for p in work.pods for f in p.flows}
    assert layers == {"data"}


# -- reading results -------------------------------------------------------------------------------
def _work_with(compiled: Compiled) -> checks.Work:
    runs = {c.name: "real" for c in compiled.plan.components}
    return checks.plan_work(compiled.plan, runs, real_nodes=True, run_id="000000", layer="data")


def test_a_denied_flow_passes_only_when_its_port_was_reached() -> None:
    compiled = compiler.compile_city(EXAMPLE, "local")
    work = _work_with(compiled)
    results = {}
    for pod in work.pods:
        if pod.functional:
            results[pod.name] = PodResult(0, "ok\n", "", 1.0)
        else:
            reached = [f.expect == "allowed" and f.server.name != "postgis" for f in pod.flows]
            lines = [f"flow {i} {'open' if r else 'closed'}" for i, r in enumerate(reached)]
            results[pod.name] = PodResult(0, "\n".join(lines), "", 1.0)
    outcomes = checks.read_results(work, results)
    postgis = [o for o in outcomes if o.component == "postgis" and o.kind == "flow"]
    assert {o.status for o in postgis if o.check.startswith("allowed")} == {"failed"}
    # Nothing reached postgis, so its blocked flows prove nothing.
    assert {o.status for o in postgis if o.check.startswith("denied")} == {"skipped"}
    minio = [o for o in outcomes if o.component == "minio" and o.check.startswith("denied")]
    assert minio and {o.status for o in minio} == {"passed"}


def test_open_denied_flows_unresolved_names_and_failed_checks_fail() -> None:
    compiled = compiler.compile_city(EXAMPLE, "local")
    work = _work_with(compiled)
    results = {}
    for pod in work.pods:
        if pod.functional:
            results[pod.name] = PodResult(1, "line 1\nconnection refused\n", "", 2.0)
        else:
            lines = [
                f"flow {i} {'unresolved' if f.server.name == 'minio' else 'open'}"
                for i, f in enumerate(pod.flows)
            ]
            results[pod.name] = PodResult(0, "\n".join(lines), "", 1.0)
    outcomes = checks.read_results(work, results)
    functional = [o for o in outcomes if o.kind == "functional"]
    assert functional and all(o.status == "failed" for o in functional)
    assert all("connection refused" in o.detail for o in functional)
    denied = [o for o in outcomes if o.check.startswith("denied") and o.component != "minio"]
    assert denied and all(o.status == "failed" and "expected blocked" in o.detail for o in denied)
    assert all(
        o.status == "failed" and "unresolved" in o.detail
        for o in outcomes
        if o.component == "minio" and o.kind == "flow"
    )


def test_pod_that_never_ran_fails_its_checks_with_the_reason() -> None:
    compiled = compiler.compile_city(EXAMPLE, "local")
    work = _work_with(compiled)
    results = {
        p.name: PodResult(None, "", "ErrImageNeverPull: image not present", 0.5) for p in work.pods
    }
    outcomes = [o for o in checks.read_results(work, results) if o.status != "skipped"]
    assert outcomes and all(o.status == "failed" for o in outcomes)
    assert all("ErrImageNeverPull" in o.detail for o in outcomes)


def test_functional_scripts_wait_for_the_policy_controller_first() -> None:
    compiled = compiler.compile_city(EXAMPLE, "local")
    postgis = compiled.plan.by_name("postgis")
    script = checks.functional_script(postgis, Check("x", "echo hi").script)
    assert script.startswith("attempt=0\n") and 'nc -z -w 2 "$TARGET" 5432' in script
    assert script.endswith("echo hi")


def test_every_declared_check_is_valid_shell(tmp_path: Any) -> None:
    import subprocess

    for cls in load_catalog().components():
        scripts = [c.script for c in cls.checks]
        if cls.backup is not None and cls.backup.drill is not None:
            scripts += [cls.backup.drill.mark, cls.backup.drill.restore]
        if cls.backup is not None:
            scripts.append(cls.backup.script)
        for index, script in enumerate(scripts):
            path = tmp_path / f"{cls.name}-{index}.sh"
            path.write_text(script)
            result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
            assert result.returncode == 0, f"{cls.name}: {result.stderr}"


# -- the restore drill in the compliance report --------------------------------------------------
def _backup_family(record: dict[str, Any] | None, today: date) -> dict[str, Any]:
    from citykit.reports import compliance

    data = compliance.report(compiler.compile_city(EXAMPLE, "local"), record, today)
    family: dict[str, Any] = next(
        f for f in data["mlps"]["families"] if f["family"] == "backup-recovery"
    )
    return family


def test_a_recent_passed_drill_closes_the_restore_drill_gap() -> None:
    record = {
        "at": "2026-11-25T21:00:00+00:00",
        "results": [
            {"component": "postgis", "status": "passed", "detail": "marker found"},
            {"component": "victoria-metrics", "status": "skipped", "detail": "simulated"},
        ],
    }
    family = _backup_family(record, date(2026, 12, 1))
    assert any("restore drill passed on 2026-11-25 (postgis)" in c for c in family["controls"])
    assert not any("restore drills" in g for g in family["gaps"])


@pytest.mark.parametrize(
    ("record", "today"),
    [
        (None, date(2026, 11, 25)),
        (
            {
                "at": "2026-01-01T00:00:00+00:00",
                "results": [{"component": "postgis", "status": "passed"}],
            },
            date(2026, 11, 25),
        ),
        (
            {
                "at": "2026-11-25T00:00:00+00:00",
                "results": [
                    {"component": "postgis", "status": "failed"},
                    {"component": "minio", "status": "passed"},
                ],
            },
            date(2026, 11, 25),
        ),
        (
            {
                "at": "2026-11-25T00:00:00+00:00",
                "results": [{"component": "postgis", "status": "skipped"}],
            },
            date(2026, 11, 25),
        ),
        ({"at": "yesterday", "results": []}, date(2026, 11, 25)),
    ],
    ids=["never", "stale", "one-failed", "all-skipped", "unreadable"],
)
def test_no_recent_passed_drill_leaves_the_gap_open(
    record: dict[str, Any] | None, today: date
) -> None:
    family = _backup_family(record, today)
    assert any(g.startswith("regular restore drills") for g in family["gaps"])
    assert not any("restore drill passed" in c for c in family["controls"])


# -- the command -----------------------------------------------------------------------------------
def _cli(tmp_path: Any, *args: str) -> Any:
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CITYKIT_CACHE_DIR": str(tmp_path / "cache"),
        "CITYKIT_STATE_DIR": str(tmp_path / "state"),
    }
    return subprocess.run(
        [sys.executable, "-m", "citykit.cli", "verify", "-p", str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )


def test_verify_without_a_cluster_is_an_error_not_a_failed_check(tmp_path: Any) -> None:
    result = _cli(tmp_path, "-e", "local", "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not running" in result.stderr and "citykit cluster up -e local" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_verify_rejects_an_unknown_layer(tmp_path: Any) -> None:
    result = _cli(tmp_path, "-e", "local", "--layer", "moon")
    assert result.returncode == 2
    assert "unknown layer 'moon'" in result.stderr and "applications" in result.stderr


def test_verify_help_names_the_exit_codes(tmp_path: Any) -> None:
    result = _cli(tmp_path, "--help")
    assert result.returncode == 0
    for text in ("--restore-drill", "--layer", "Exit 0", "2 when one fails"):
        assert text in result.stdout
