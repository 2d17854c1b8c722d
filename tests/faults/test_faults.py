"""Each case breaks one thing around a deployed city, checks that citykit names what happened,
then that a plain `citykit up` converges with nothing lost (tests/faults/conftest.py: `converges`).
Recovery times are printed (`-s`) for the closing note of issue 15."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE
from tests.faults import control_plane
from tests.faults.conftest import CLI
from tests.faults.conftest import CLUSTER_NAME
from tests.faults.conftest import City
from tests.faults.conftest import decoded


def _report(case: str, seconds: float, said: str = "") -> None:
    """For the closing note: what citykit said, and how long recovery took."""
    print(f"\nRECOVERY {case}: {seconds:.1f}s")
    for line in said.strip().splitlines():
        print(f"  said: {line}")


def _state(city: City) -> dict[str, str]:
    """Every file of the state backend and the stack's workspace (its encrypted config), with a
    hash of its content: what a command wrote. The engine's own logs are not state."""
    pulumi = city.state / "pulumi"
    return {
        str(p.relative_to(pulumi)): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in (pulumi / "backend", pulumi / "stacks")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _kubeconfig(city: City, tmp: Path, change: dict[str, object]) -> Path:
    """A copy of the cluster's kubeconfig with top-level fields or the user replaced."""
    data = yaml.safe_load(city.cluster.kubeconfig.read_text())
    user = change.pop("user", None)
    data |= change
    if user is not None:
        data["users"][0]["user"] = user
    path = tmp / "kubeconfig"
    path.write_text(yaml.safe_dump(data))
    return path


def test_wrong_passphrase_changes_nothing(city: City) -> None:
    before = city.credentials()
    state = _state(city)
    failed = city.citykit("up", "--yes", expect=2, env={"PULUMI_CONFIG_PASSPHRASE": "wrong"})
    assert "PULUMI_CONFIG_PASSPHRASE does not decrypt" in failed.stderr, failed.stderr
    assert _state(city) == state, "a wrong passphrase wrote state"
    _report("wrong passphrase", city.converges(before), failed.stderr)


def test_missing_context(city: City, tmp_path: Path) -> None:
    before = city.credentials()
    broken = _kubeconfig(city, tmp_path, {"current-context": "gone"})
    failed = city.citykit("up", "--yes", expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
    assert f"the kubeconfig {broken} has no context 'gone'" in failed.stderr, failed.stderr
    _report("missing context", city.converges(before), failed.stderr)


def test_unreachable_server_is_named(city: City, tmp_path: Path) -> None:
    data = yaml.safe_load(city.cluster.kubeconfig.read_text())
    data["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    broken = tmp_path / "kubeconfig"
    broken.write_text(yaml.safe_dump(data))
    for verb in ("preview", "drift", "up"):
        extra = ("--yes",) if verb == "up" else ()
        failed = city.citykit(verb, *extra, expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
        assert "https://127.0.0.1:1" in failed.stderr and "could not be reached" in failed.stderr
        assert "create" not in failed.stdout
    _report("unreachable server (no recovery needed)", 0, failed.stderr)


def test_rejected_credentials(city: City, tmp_path: Path) -> None:
    """A wrong token (the server answers 401), as a revoked or mistyped credential."""
    before = city.credentials()
    broken = _kubeconfig(city, tmp_path, {"user": {"token": "not-a-valid-token"}})
    for verb in ("preview", "up"):
        extra = ("--yes",) if verb == "up" else ()
        failed = city.citykit(verb, *extra, expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
        assert "401 Unauthorized" in failed.stderr, failed.stderr
    _report("rejected credentials", city.converges(before), failed.stderr)


def test_corrupt_state_is_restored(city: City) -> None:
    before = city.credentials()
    state = city.backend / "stacks" / "citykit" / "yuhang-faults.json"
    content = state.read_bytes()
    state.write_bytes(content[: len(content) // 2])
    started = time.monotonic()
    restored = city.citykit("up", "--yes", timeout=1500)
    took = time.monotonic() - started
    assert "was unreadable; restored it from the backend's copy" in restored.stdout, (
        restored.stdout + restored.stderr
    )
    assert json.loads(state.read_text())["checkpoint"]["stack"]
    assert list(state.parent.glob("yuhang-faults.json.corrupt-*"))
    said = [line for line in restored.stdout.splitlines() if "unreadable" in line]
    _report("corrupt state (the restoring up)", took, "\n".join(said))
    _report("corrupt state (the next up)", city.converges(before))


def test_ctrl_c_during_up(city: City) -> None:
    before = city.credentials()
    # Work for the engine: every Deployment of the city re-created and awaited.
    city.cluster.kubectl(
        "delete", "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
    )
    locks = city.backend / "locks"
    process = subprocess.Popen(
        [*CLI, "up", *city.args, "--yes"],
        env=city.cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(locks.rglob("*.json")):
        time.sleep(0.1)
    assert list(locks.rglob("*.json")), "up never took the stack lock"
    while (
        time.monotonic() < deadline
        and not city.cluster.get_json(
            "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
        )["items"]
    ):
        time.sleep(0.2)  # until the update is creating
    # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
    interrupted = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    stopped = time.monotonic() - interrupted
    assert process.returncode == 130, out + err
    assert "`citykit up` was interrupted" in err and "released the stack's lock" in err, err
    assert "Traceback" not in err, err
    assert not list(locks.rglob("*.json")), "the lock outlived the interrupted run"
    for value in decoded(before):
        assert value not in out + err
    _report("Ctrl-C (time to stop)", stopped, err)
    _report("Ctrl-C (the next up)", city.converges(before))


def test_expired_client_certificate(city: City, tmp_path: Path) -> None:
    """The admin's client certificate, signed by the cluster's CA but expired yesterday."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from citykit.cluster import certs

    pki = city.state / "clusters" / CLUSTER_NAME / "pki"
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(certs.name("citykit-admin", "system:masters"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    (tmp_path / "expired.crt").write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "expired.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    before = city.credentials()
    user = {
        "client-certificate": str(tmp_path / "expired.crt"),
        "client-key": str(tmp_path / "expired.key"),
    }
    broken = _kubeconfig(city, tmp_path, {"user": user})
    for verb in ("preview", "up"):
        extra = ("--yes",) if verb == "up" else ()
        failed = city.citykit(verb, *extra, expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
        assert "401 Unauthorized" in failed.stderr and "expired" in failed.stderr, failed.stderr
    _report("expired client certificate", city.converges(before), failed.stderr)


def test_deleted_namespace_of_a_stateful_component(city: City) -> None:
    from citykit import compiler

    compiled = compiler.compile_city(EXAMPLE, str(city.environment))
    namespace, component = next(
        (obj["metadata"]["namespace"], unit.component.name)
        for unit in compiled.units
        if unit.component.cls.stateful
        for obj in unit.objects
        if obj.get("kind") == "StatefulSet"
    )
    before = city.credentials()
    city.cluster.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=300s")
    drift = city.citykit("drift", "-o", "json", expect=2)
    found = json.loads(drift.stdout)
    assert found["drift"] is True
    assert any(c["component"] == component for c in found["changes"]), found["changes"]
    said = f"drift: {len(found['changes'])} changes\n{drift.stderr}"
    _report(f"deleted namespace {namespace} ({component})", city.converges(before), said)
    city.citykit("drift")


def _up_in_background(city: City) -> subprocess.Popen[str]:
    """`citykit up` with work to do (every Deployment of the city re-created and awaited),
    returned once the engine is creating them."""
    city.cluster.kubectl(
        "delete", "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
    )
    process = subprocess.Popen(
        [*CLI, "up", *city.args, "--yes"],
        env=city.cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while (
        time.monotonic() < deadline
        and process.poll() is None
        and not city.cluster.get_json(
            "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
        )["items"]
    ):
        time.sleep(0.2)
    assert process.poll() is None, "up ended before it created anything"
    return process


@pytest.mark.parametrize("process_name", ["kube-apiserver", "etcd"])
def test_control_plane_process_killed_during_up(city: City, process_name: str) -> None:
    """The process is killed while `up` creates Deployments and is back 8 s later, as a crashed
    static pod restarted by its kubelet. The outage stays under the node monitor's grace period:
    a longer one makes the controller-manager mark kwok's nodes and pods not Ready, which kwok
    (unlike a kubelet) never reverts."""
    before = city.credentials()
    cluster_dir = city.state / "clusters" / CLUSTER_NAME
    process = _up_in_background(city)
    started = time.monotonic()
    argv = control_plane.kill(cluster_dir, process_name)
    time.sleep(8)
    control_plane.start(cluster_dir, process_name, argv)
    out, err = process.communicate(timeout=900)
    took = time.monotonic() - started
    assert "Traceback" not in err, err
    if process.returncode != 0:
        # Failing is allowed, silently failing is not: the failing resource and its cause.
        assert process.returncode == 1 and "error: failed at" in err, out + err
    else:
        assert "create" in out, out
    said = f"exit {process.returncode} after {took:.1f}s\n" + "\n".join(
        line for line in (out + err).splitlines() if "error" in line or "create" in line
    )
    _report(f"{process_name} killed during up (that up)", took, said)
    _report(f"{process_name} killed during up (the next up)", city.converges(before))


@contextmanager
def _backend_on_tmpfs(city: City, spare: int) -> Iterator[Path]:
    """The state backend moved onto a tmpfs with `spare` bytes free beyond what it holds; put
    back on disk afterwards, with whatever the runs wrote."""
    backend = city.state / "pulumi" / "backend"
    saved = city.state / "backend.on-disk"
    shutil.copytree(backend, saved, symlinks=True)
    used = sum(p.stat().st_size for p in backend.rglob("*") if p.is_file())
    size_kib = (used + spare) // 1024 + 64
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(backend)])
    try:
        shutil.copytree(saved, backend, symlinks=True, dirs_exist_ok=True)
        yield backend
    finally:
        shutil.rmtree(saved)
        shutil.copytree(backend, saved, symlinks=True)
        subprocess.run(["umount", str(backend)], check=True)
        shutil.rmtree(backend)
        saved.rename(backend)


def test_state_backend_disk_full(city: City) -> None:
    before = city.credentials()
    with _backend_on_tmpfs(city, spare=512 * 1024) as backend:
        # Too little room for this stack's state: refused before anything changes.
        state = _state(city)
        refused = city.citykit("up", "--yes", expect=2)
        assert f"the state backend {backend} has" in refused.stderr, refused.stderr
        assert "nothing was changed" in refused.stderr
        assert _state(city) == state
        # Room enough when `up` starts, then the disk fills while it runs.
        subprocess.run(["mount", "-o", "remount,size=256m", str(backend)], check=True)
        process = _up_in_background(city)
        filler = backend / "filler"
        with filler.open("wb") as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * (1 << 20))
        out_text, err = process.communicate(timeout=900)
        assert process.returncode == 1, out_text + err
        assert f"the state backend {backend} ran out of space" in err, err
        assert "Traceback" not in err, err
        _report("backend full during up", 0, err)
        filler.unlink()
        started = time.monotonic()
        restored = city.citykit("up", "--yes", timeout=1500)
        took = time.monotonic() - started
        said = "\n".join(line for line in restored.stdout.splitlines() if "state" in line)
        _report("backend full (the next up, space freed)", took, said)
    _report("backend full (then a plain up)", city.converges(before))


POLICY = "citykit-faults-freeze"


def test_admission_policy_rejects_one_object(city: City) -> None:
    """A ValidatingAdmissionPolicy rejects one ConfigMap of the city: `up` names the object and
    the policy, and the rest of the city stays as it is."""
    from citykit import compiler

    compiled = compiler.compile_city(EXAMPLE, str(city.environment))
    target = next(
        obj["metadata"]
        for unit in compiled.units
        if unit.component.name == "grafana"
        for obj in unit.objects
        if obj["kind"] == "ConfigMap"
    )
    namespace, name = target["namespace"], target["name"]
    before = city.credentials()
    assert city.wait_all_ready() == []
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"object.metadata.name != '{name}'",
                    "message": "frozen by the change board",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY},
        "spec": {
            "policyName": POLICY,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    city.cluster.kubectl("apply", "-f", "-", input_text=json.dumps(policy))
    city.cluster.kubectl("apply", "-f", "-", input_text=json.dumps(binding))
    try:
        city.cluster.kubectl("delete", "configmap", "-n", namespace, name)
        deadline = time.monotonic() + 30
        while True:  # the policy takes effect once the API server has loaded it
            probe = city.cluster.kubectl(
                "create", "configmap", "-n", namespace, name, "--dry-run=server", check=False
            )
            if POLICY in probe.stderr or time.monotonic() > deadline:
                break
            time.sleep(1)
        deployments = city.cluster.get_json(
            "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
        )["items"]
        failed = city.citykit("up", "--yes", expect=1)
        said = failed.stdout + failed.stderr
        assert f"{namespace}/{name}" in said and POLICY in said, said
        assert "frozen by the change board" in said, said
        # Nothing rolled back: every Deployment still there, every component Ready as before.
        after = city.cluster.get_json(
            "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
        )["items"]
        assert {d["metadata"]["uid"] for d in after} == {d["metadata"]["uid"] for d in deployments}
        rows = {row["component"]: row["state"] for row in city.status()}
        assert rows.pop("grafana") == "missing"  # its rejected ConfigMap
        assert set(rows.values()) == {"ready"}, rows
        _report("admission policy rejects one object", 0, failed.stderr)
    finally:
        city.cluster.kubectl("delete", "validatingadmissionpolicybinding", POLICY, check=False)
        city.cluster.kubectl("delete", "validatingadmissionpolicy", POLICY, check=False)
    _report("admission policy (the next up, policy removed)", city.converges(before))


@contextmanager
def _protected(city: City) -> Iterator[None]:
    """The tier's environment with protectData on, as staging and prod have it."""
    original = city.environment.read_text()
    data = yaml.safe_load(original)
    city.environment.write_text(yaml.safe_dump(data | {"protectData": True}))
    try:
        yield
    finally:
        city.environment.write_text(original)


def test_deleted_namespace_where_data_is_protected(city: City) -> None:
    from citykit import compiler

    before = city.credentials()
    with _protected(city):
        city.converges(before)  # protection on: the stateful resources protected and retained
        compiled = compiler.compile_city(EXAMPLE, str(city.environment))
        namespace, component = next(
            (obj["metadata"]["namespace"], unit.component.name)
            for unit in compiled.units
            if unit.component.name == "postgis"
            for obj in unit.objects
            if obj.get("kind") == "StatefulSet"
        )
        city.cluster.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=300s")
        state = _state(city)
        refused = city.citykit("up", "--yes", expect=2)
        lost = next(line for line in refused.stderr.splitlines() if "no longer has" in line)
        assert component in lost, refused.stderr
        assert "--accept-data-loss" in refused.stderr, refused.stderr
        assert _state(city) == state, "a refused up wrote state"
        assert city.cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0
        started = time.monotonic()
        accepted = city.citykit("up", "--yes", "--accept-data-loss", timeout=1500)
        assert "will be recreated empty" in accepted.stdout, accepted.stdout
        _report(
            f"deleted namespace {namespace} with protectData (refused, then accepted)",
            time.monotonic() - started,
            refused.stderr,
        )
        _report("protectData (the next plain up)", city.converges(before))
    _report("protectData off again", city.converges(before))
