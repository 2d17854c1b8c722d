"""`citykit verify`'s checks without a cluster: the probe pods it plans (restricted, never adopted,
never given secret values, none for simulated components), the scripts they run, and how their
results become outcomes."""

from __future__ import annotations

from typing import Any

from citykit import compiler
from citykit.catalog import load_catalog
from citykit.compiler import Compiled
from citykit.contract.component import Check
from citykit.objects.backups import backup_script
from citykit.verify import checks
from citykit.verify import probe
from citykit.verify.checks import PodResult
from tests.conftest import EXAMPLE


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
        assert spec["nodeSelector"] == {
            "citykit.io/runtime": "containerd",
            "citykit.io/pool": "general",
        }
        (container,) = spec["containers"]
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["image"].startswith("citykit.local/citykit-verify/probe:")
        for variable in container["env"]:
            assert "value" in variable or set(variable["valueFrom"]) == {"secretKeyRef"}
            if "value" in variable:
                assert "password" not in variable["name"].lower()


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


def test_functional_scripts_wait_for_the_policy_controller_first(tmp_path: Any) -> None:
    """The check runs once the port has answered ANSWERS_IN_A_ROW times in a row: a refusal in
    between (a replica whose node's policy controller lags) starts the count again."""

    compiled = compiler.compile_city(EXAMPLE, "local")
    postgis = compiled.plan.by_name("postgis")
    script = checks.functional_script(postgis, Check("x", "echo hi").script)
    assert 'nc -z -w 2 "$TARGET" 5432' in script and script.endswith("echo hi")
    # nc answers: yes, no, then yes from then on.
    output, calls = _run_with_stand_in_nc(tmp_path, script, [0, 1], {})
    assert output == "hi"
    assert len(calls) == 2 + checks.ANSWERS_IN_A_ROW


def _run_with_stand_in_nc(
    tmp_path: Any, script: str, first_answers: list[int], env: dict[str, str]
) -> tuple[str, list[str]]:
    """The script run with `TARGET=postgis`, a stand-in nc that exits with `first_answers` in
    turn and 0 after them, and a `sleep` that does nothing: its output and nc's calls."""
    import subprocess

    answers = tmp_path / "answers"
    answers.write_text("".join(f"{code}\n" for code in [*first_answers, *[0] * 10]))
    log = tmp_path / "calls"
    for name, body in (
        ("nc", f'echo "$*" >> {log}\ncode=$(head -1 {answers}); sed -i 1d {answers}; exit $code'),
        ("sleep", "exit 0"),
    ):
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    result = subprocess.run(
        ["sh", "-c", script],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin", "TARGET": "postgis", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip(), log.read_text().splitlines()


def test_functional_scripts_wait_for_every_endpoint_first(tmp_path: Any) -> None:
    """With the Service's endpoints known, each must answer (a refusal is retried: its node's
    policy controller lags) before the in-a-row wait through the Service and the check; the
    pairs come from the EndpointSlices of the component's Service and first TCP port."""

    compiled = compiler.compile_city(EXAMPLE, "local")
    postgis = compiled.plan.by_name("postgis")
    port = next(p for p in postgis.cls.ports if p.protocol == "TCP")
    endpoints = {
        (postgis.namespace, postgis.name, port.name): [("10.0.0.1", 5432), ("10.0.0.2", 5432)],
        (postgis.namespace, "another", port.name): [("10.0.0.9", 5432)],
    }
    env = checks.endpoints_env(postgis, endpoints)
    assert env == {"ENDPOINTS": "10.0.0.1 5432 10.0.0.2 5432"}
    assert checks.endpoints_env(postgis, {}) == {}
    work = checks.plan_work(
        compiled.plan,
        {c.name: "real" for c in compiled.plan.components},
        real_nodes=True,
        run_id="000000",
        endpoints=endpoints,
    )
    pod_env = {
        pod.name: {e["name"]: e.get("value") for e in pod.manifest["spec"]["containers"][0]["env"]}
        for pod in work.pods
        if pod.functional and pod.functional[0].name == "postgis"
    }
    assert pod_env and all(e["ENDPOINTS"] == env["ENDPOINTS"] for e in pod_env.values())

    script = checks.functional_script(postgis, Check("x", "echo hi").script)
    # nc refuses 10.0.0.2 twice, then everything answers.
    output, calls = _run_with_stand_in_nc(tmp_path, script, [0, 1, 1], env)
    assert output == "hi"
    assert calls == [
        "-z -w 2 10.0.0.1 5432",
        *["-z -w 2 10.0.0.2 5432"] * 3,
        *["-z -w 2 postgis 5432"] * checks.ANSWERS_IN_A_ROW,
    ]


def test_flow_scripts_look_a_name_up_again_before_calling_it_unresolved(tmp_path: Any) -> None:
    """A lookup that fails now and then (cluster DNS under load) is tried again; a name that
    never resolves is reported unresolved after RESOLVE_ATTEMPTS lookups, never as blocked."""
    import subprocess

    compiled = compiler.compile_city(EXAMPLE, "local")
    flow = next(f for f in checks.flow_matrix(compiled.plan) if f.expect == "denied")
    script = checks.flow_script([flow])
    lookups = tmp_path / "lookups"
    for name, body in (
        # Fails until its FAILURES-th call, then answers (FAILURES unset: never answers).
        (
            "getent",
            f"echo x >> {lookups}\n"
            f'[ -n "$FAILURES" ] && [ $(wc -l < {lookups}) -gt "$FAILURES" ] '
            "&& echo 10.0.0.1 host",
        ),
        ("nc", "exit 1"),
        ("sleep", "exit 0"),
    ):
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)

    def run(failures: str) -> tuple[str, int]:
        lookups.write_text("")
        env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "FAILURES": failures}
        result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        return result.stdout.strip(), len(lookups.read_text().splitlines())

    assert run("2") == ("flow 0 closed", 3)
    assert run("") == ("flow 0 unresolved", checks.RESOLVE_ATTEMPTS)


def test_every_declared_check_is_valid_shell(tmp_path: Any) -> None:
    import subprocess

    for cls in load_catalog().components():
        scripts = [c.script for c in cls.checks]
        if cls.backup is not None and cls.backup.drill is not None:
            scripts += [cls.backup.drill.mark, cls.backup.drill.restore]
        if cls.backup is not None:
            scripts.append(backup_script(cls.backup))  # as the CronJob runs it
        for index, script in enumerate(scripts):
            path = tmp_path / f"{cls.name}-{index}.sh"
            path.write_text(script)
            result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
            assert result.returncode == 0, f"{cls.name}: {result.stderr}"
