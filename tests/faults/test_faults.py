"""Each case breaks one thing around a deployed city, checks that citykit names what happened,
then that a plain `citykit up` converges with nothing lost (tests/faults/conftest.py: `converges`).
Recovery times are printed (`-s`) for the closing note of issue 15."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from tests.conftest import EXAMPLE
from tests.faults.conftest import CLI, CLUSTER_NAME, City, decoded


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
    from cryptography.hazmat.primitives import hashes, serialization
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
