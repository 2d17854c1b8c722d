"""What the deployment commands say when the cluster, the state or the passphrase is not what it
should be (issue 15), without a cluster: the kubeconfig read by reach.py, the state restored by
checkpoints.py, the engine's warnings shown by the progress tracker."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from citykit import compiler
from citykit.deploy import actions
from citykit.deploy import checkpoints
from citykit.deploy import dataloss
from citykit.deploy import engine
from citykit.deploy import operation
from citykit.deploy import reach
from citykit.deploy.progress import Tracker
from tests.conftest import EXAMPLE


def _kubeconfig(tmp_path: Path, **change: Any) -> Path:
    data: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "current-context": "ctx",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(data | change))
    return path


def _access(path: Path, context: str | None = None) -> engine.ClusterAccess:
    return engine.ClusterAccess(path, context, f"kubeconfig {path}")


def test_the_target_names_kubeconfig_context_and_server(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path)
    found = reach.target(_access(path))
    assert found.describe() == f"server https://127.0.0.1:1 (kubeconfig {path}, context ctx)"


@pytest.mark.parametrize(
    ("change", "context", "says"),
    [
        ({"current-context": "gone"}, None, "has no context 'gone' (the current-context"),
        ({}, "other", "has no context 'other' (the context citykit uses; its contexts: ctx)"),
        ({"current-context": ""}, None, "names no current-context"),
        ({"clusters": []}, None, "names cluster 'c', which has no server"),
    ],
)
def test_a_kubeconfig_that_cannot_name_a_server_is_refused(
    tmp_path: Path, change: dict[str, Any], context: str | None, says: str
) -> None:
    with pytest.raises(reach.ClusterUnusable) as raised:
        reach.target(_access(_kubeconfig(tmp_path, **change), context))
    assert says in raised.value.message
    assert raised.value.exit_code == 2


def test_a_missing_kubeconfig_is_named(tmp_path: Path) -> None:
    with pytest.raises(reach.ClusterUnusable) as raised:
        reach.target(_access(tmp_path / "absent"))
    assert str(tmp_path / "absent") in raised.value.message


@pytest.mark.parametrize(
    ("stderr", "says"),
    [
        ("error: You must be logged in to the server (Unauthorized)", "401 Unauthorized"),
        ('Error from server (Forbidden): forbidden: User "x"', "403 Forbidden"),
        ("tls: failed to verify certificate: x509: certificate signed by unknown authority", "TLS"),
        ("The connection to the server 127.0.0.1:1 was refused", "could not be reached"),
    ],
)
def test_a_failed_discovery_request_says_what_happened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, says: str
) -> None:
    def kubectl(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 1, "", stderr)

    monkeypatch.setattr(engine, "kubectl", kubectl)
    with pytest.raises(reach.ClusterUnusable) as raised:
        reach.check(_access(_kubeconfig(tmp_path)))
    assert says in raised.value.message
    assert "https://127.0.0.1:1" in raised.value.message and "context ctx" in raised.value.message
    assert raised.value.hint


def _state(stack: str) -> bytes:
    return json.dumps({"version": 3, "checkpoint": {"stack": stack, "latest": {}}}).encode()


def test_a_corrupt_state_file_is_restored_from_the_newest_readable_copy(tmp_path: Path) -> None:
    root = tmp_path / ".pulumi"
    stacks = root / "stacks" / "citykit"
    backups = root / "backups" / "citykit" / "city-dev"
    stacks.mkdir(parents=True)
    backups.mkdir(parents=True)
    (stacks / "city-dev.json.bak").write_bytes(_state("old"))
    newest = backups / "city-dev.1700000000000000000.json"
    newest.write_bytes(_state("newest"))
    (backups / "city-dev.1800000000000000000.json").write_bytes(b"{broken")  # newer, unreadable
    (stacks / "city-dev.json").write_bytes(_state("cut")[:20])
    (stacks / "city-dev.json.attrs").write_text("{}")
    said: list[str] = []
    used = checkpoints.restore_if_corrupt(f"file://{tmp_path}", "city-dev", said.append)
    assert used is not None and json.loads(used.read_bytes())["checkpoint"]["stack"] in (
        "newest",
        "old",
    )
    restored = json.loads((stacks / "city-dev.json").read_bytes())
    assert restored == json.loads(used.read_bytes())
    assert not (stacks / "city-dev.json.attrs").exists()
    assert len(list(stacks.glob("city-dev.json.corrupt-*"))) == 1
    assert said and "was unreadable; restored it from the backend's copy" in said[0]


def test_a_readable_state_or_another_backend_is_left_alone(tmp_path: Path) -> None:
    stacks = tmp_path / ".pulumi" / "stacks" / "citykit"
    stacks.mkdir(parents=True)
    (stacks / "city-dev.json").write_bytes(_state("fine"))
    assert checkpoints.restore_if_corrupt(f"file://{tmp_path}", "city-dev", print) is None
    assert checkpoints.restore_if_corrupt("s3://bucket", "city-dev", print) is None


def test_a_corrupt_state_without_copies_says_what_to_do(tmp_path: Path) -> None:
    stacks = tmp_path / ".pulumi" / "stacks" / "citykit"
    stacks.mkdir(parents=True)
    (stacks / "city-dev.json").write_bytes(b"\0\0\0")
    with pytest.raises(checkpoints.StateUnreadable) as raised:
        checkpoints.restore_if_corrupt(f"file://{tmp_path}", "city-dev", print)
    assert "no readable copy" in raised.value.message


def _event(severity: str, message: str, urn: str | None = None) -> Any:
    from pulumi.automation import DiagnosticEvent
    from pulumi.automation import EngineEvent

    diagnostic = DiagnosticEvent(message=message, color="never", severity=severity, urn=urn)
    return EngineEvent(sequence=0, timestamp=0, diagnostic_event=diagnostic)


def test_warnings_are_shown_attributed_to_component_and_resource() -> None:
    compiled = compiler.compile_city(EXAMPLE, "dev")
    out = io.StringIO()
    tracker = Tracker(compiled, Console(file=out, width=300), live_display=False, quiet=True)
    urn = (
        "urn:pulumi:yuhang-dev::citykit::citykit:layer:Operations$citykit:component:Grafana"
        "$kubernetes:apps/v1:Deployment::yuhang-operations/grafana"
    )
    tracker.on_event(_event("warning", "apps/v1beta1 is deprecated\n", urn))
    tracker.on_event(_event("warning", "apps/v1beta1 is deprecated\n", urn))  # said once
    tracker.on_event(_event("warning", "the engine itself says so"))
    tracker.on_event(_event("debug", "chatter"))
    tracker.on_event(_event("error", "field manager conflict", urn))
    shown = out.getvalue()
    assert "warning: grafana: yuhang-operations/grafana: apps/v1beta1 is deprecated" in shown
    assert "warning: engine: the engine itself says so" in shown
    assert shown.count("deprecated") == 1 and "chatter" not in shown
    assert [w["component"] for w in tracker.summary()["warnings"]] == ["grafana", ""]
    assert tracker.failures == [
        {
            "resource": "yuhang-operations/grafana",
            "component": "grafana",
            "message": "field manager conflict",
        }
    ]


def test_a_wrong_passphrase_names_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "wrong")
    monkeypatch.delenv("CITYKIT_PASSPHRASE", raising=False)
    error = operation.engine_error(RuntimeError("error: incorrect passphrase"), None, "citykit up")
    assert error.exit_code == 2
    assert "$PULUMI_CONFIG_PASSPHRASE does not decrypt" in error.message


def _recorded_city(environment: str) -> tuple[compiler.Compiled, dict[str, Any]]:
    """A compiled city and a checkpoint that records every object as rendered (the state after
    a successful `up`)."""
    compiled = compiler.compile_city(EXAMPLE, environment)
    resources = [
        {"urn": f"urn:{i}", "type": "kubernetes:x", "outputs": obj}
        for i, obj in enumerate(o for unit in compiled.units for o in unit.objects)
    ]
    return compiled, {"resources": resources}


def _claims(compiled: compiler.Compiled) -> dict[str, set[tuple[str, str]]]:
    """Per stateful component, the claims its recorded objects stand for."""
    found: dict[str, set[tuple[str, str]]] = {}
    for unit in compiled.units:
        if not unit.component.cls.stateful:
            continue
        for obj in unit.objects:
            recorded = dataloss_recorded(obj)
            if obj["kind"] == "StatefulSet":
                names = dataloss.expected_claims(recorded)
            elif obj["kind"] == "PersistentVolumeClaim":
                names = [obj["metadata"]["name"]]
            else:
                continue
            found.setdefault(unit.component.name, set()).update(
                (obj["metadata"]["namespace"], n) for n in names
            )
    return found


def dataloss_recorded(obj: dict[str, Any]) -> Any:
    from citykit.deploy import freshness

    meta = obj["metadata"]
    key = (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
    return freshness.Recorded("urn:x", key, "1", obj)


def test_a_stateful_set_stands_for_one_claim_per_template_and_member() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "postgis", "namespace": "data"},
        "spec": {"replicas": 2, "volumeClaimTemplates": [{"metadata": {"name": "pgdata"}}]},
    }
    assert dataloss.expected_claims(dataloss_recorded(obj)) == [
        "pgdata-postgis-0",
        "pgdata-postgis-1",
    ]


def test_lost_volumes_are_found_per_component() -> None:
    compiled, latest = _recorded_city("prod")
    claims = _claims(compiled)
    assert {"postgis", "minio"} <= set(claims)
    everything = set().union(*claims.values())
    assert dataloss.find(compiled, latest, everything) == []
    # The namespace of one store deleted by hand: all its claims gone.
    lost = dataloss.find(compiled, latest, everything - claims["postgis"])
    assert [(item.component, item.all_gone) for item in lost] == [("postgis", True)]
    assert set(lost[0].claims) == {name for _, name in claims["postgis"]}
    # One member's volume gone: the others still hold the data.
    one = sorted(claims["postgis"])[0]
    partial = dataloss.find(compiled, latest, everything - {one})
    assert [(item.component, item.claims, item.all_gone) for item in partial] == [
        ("postgis", (one[1],), False)
    ]
    # A state that never recorded the store (a first `up`) loses nothing.
    assert dataloss.find(compiled, {"resources": []}, set()) == []


def test_up_refuses_to_recreate_lost_data_only_where_it_is_protected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from citykit.deploy import freshness

    said: list[str] = []
    how = operation.Invocation("city.yaml", "prod")
    for environment, protected in (("prod", True), ("dev", False)):
        compiled, latest = _recorded_city(environment)
        assert compiled.plan.environment.protect_data is protected
        everything = set().union(*_claims(compiled).values())
        live = {("v1", "PersistentVolumeClaim", ns, name): {} for ns, name in everything}
        lost_namespace = next(ns for ns, name in everything if name.endswith("postgis-0"))
        for key in [k for k in live if k[2] == lost_namespace]:
            del live[key]
        monkeypatch.setattr(freshness, "checkpoint", lambda url, stack, latest=latest: latest)
        monkeypatch.setattr(freshness, "live_objects", lambda access, kinds, live=live: live)
        deployment: Any = SimpleNamespace(
            compiled=compiled, access=object(), name="s", backend_url=lambda: "file:///x"
        )
        if protected:
            with pytest.raises(actions.DataLost) as refused:
                actions.check_data(deployment, how, False, said.append)
            assert refused.value.exit_code == 2
            text = "\n".join(refused.value.lines())
            assert "postgis" in text and "recreate these volumes empty" in text
            assert "--accept-data-loss" in text
        # Accepted (or unprotected): said, then `up` goes on.
        said.clear()
        actions.check_data(deployment, how, protected, said.append)
        assert any("recreated empty" in line for line in said), said


def test_a_backend_without_room_for_the_state_is_refused_before_anything_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    stacks = tmp_path / ".pulumi" / "stacks" / "citykit"
    stacks.mkdir(parents=True)
    (stacks / "s.json").write_bytes(b"x" * (3 << 20))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 10 << 20))
    with pytest.raises(checkpoints.BackendFull) as refused:
        checkpoints.check_space(f"file://{tmp_path}", "s")
    assert refused.value.exit_code == 2
    assert f"the state backend {tmp_path} has 10.0 MiB free" in refused.value.message
    assert "13.0 MiB" in refused.value.message and "nothing was changed" in refused.value.message
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 14 << 20))
    checkpoints.check_space(f"file://{tmp_path}", "s")
    checkpoints.check_space("s3://bucket", "s")  # not a local directory: not checked


def test_a_backend_that_filled_up_during_the_run_is_named() -> None:
    failed = subprocess.CalledProcessError(1, ["pulumi"])
    error: Any = RuntimeError("engine")
    error.stderr = (
        "error: writing snapshot: failed to save snapshot: blob (key ...) write "
        "/s/.pulumi/stacks/citykit/x.json.tmp: no space left on device"
    )
    said = operation.engine_error(error, None, "citykit up --yes", "file:///s")
    assert said.exit_code == 1
    assert "the state backend /s ran out of space" in said.message
    assert "df -h /s" in said.hint and "citykit up --yes" in said.hint
    assert "ran out of space" not in operation.engine_error(failed, None, "x", "file:///s").message
