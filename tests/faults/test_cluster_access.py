"""Faults in reaching the cluster: a kubeconfig naming a missing context, a server that cannot be
reached, credentials the server rejects (a wrong token, an expired client certificate). Each case
checks that citykit names what happened, then that a plain `citykit up` converges with nothing
lost (tests/faults/conftest.py: `converges`). Recovery times are printed (`-s`) for the closing
note of issue 15."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.faults.conftest import CLUSTER_NAME
from tests.faults.conftest import City
from tests.faults.helpers import kubeconfig_with
from tests.faults.helpers import report


def test_missing_context(city: City, tmp_path: Path) -> None:
    before = city.credentials()
    broken = kubeconfig_with(city, tmp_path, {"current-context": "gone"})
    failed = city.citykit("up", "--yes", expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
    assert f"the kubeconfig {broken} has no context 'gone'" in failed.stderr, failed.stderr
    report("missing context", city.converges(before), failed.stderr)


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
    report("unreachable server (no recovery needed)", 0, failed.stderr)


def test_rejected_credentials(city: City, tmp_path: Path) -> None:
    """A wrong token (the server answers 401), as a revoked or mistyped credential."""
    before = city.credentials()
    broken = kubeconfig_with(city, tmp_path, {"user": {"token": "not-a-valid-token"}})
    for verb in ("preview", "up"):
        extra = ("--yes",) if verb == "up" else ()
        failed = city.citykit(verb, *extra, expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
        assert "401 Unauthorized" in failed.stderr, failed.stderr
    report("rejected credentials", city.converges(before), failed.stderr)


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
    broken = kubeconfig_with(city, tmp_path, {"user": user})
    for verb in ("preview", "up"):
        extra = ("--yes",) if verb == "up" else ()
        failed = city.citykit(verb, *extra, expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
        assert "401 Unauthorized" in failed.stderr and "expired" in failed.stderr, failed.stderr
    report("expired client certificate", city.converges(before), failed.stderr)
