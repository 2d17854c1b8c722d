"""Faults in reaching the cluster: a kubeconfig naming a missing context, a server that cannot be
reached, credentials the server rejects (a wrong token, an expired client certificate). Each case
checks that citykit names what happened and that the refused commands wrote no state; the last
test then checks that a plain `citykit up` converges with nothing lost (tests/faults/conftest.py:
`converges`). One convergence for all: a refused run that changed nothing leaves nothing to
recover, and each `up` costs the tier half a minute on a loaded machine. Recovery times are
printed (`-s`) for the closing note of issue 15."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.faults.conftest import CLUSTER_NAME
from tests.faults.conftest import City
from tests.faults.helpers import kubeconfig_with
from tests.faults.helpers import report
from tests.faults.helpers import state_files


@pytest.fixture(scope="module")
def before(city: City) -> dict[str, dict[str, str]]:
    """The generated credentials before the module's first case, for the convergence after the
    last."""
    return city.credentials()


def test_missing_context(city: City, before: object, tmp_path: Path) -> None:
    state = state_files(city)
    broken = kubeconfig_with(city, tmp_path, {"current-context": "gone"})
    failed = city.citykit("up", "--yes", expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
    assert f"the kubeconfig {broken} has no context 'gone'" in failed.stderr, failed.stderr
    assert state_files(city) == state, "a refused up wrote state"
    report("missing context (converges below)", 0, failed.stderr)


def test_unreachable_server_is_named(city: City, before: object, tmp_path: Path) -> None:
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


def test_rejected_credentials(city: City, before: object, tmp_path: Path) -> None:
    """A wrong token (the server answers 401), as a revoked or mistyped credential."""
    state = state_files(city)
    broken = kubeconfig_with(city, tmp_path, {"user": {"token": "not-a-valid-token"}})
    for verb in ("preview", "up"):
        extra = ("--yes",) if verb == "up" else ()
        failed = city.citykit(verb, *extra, expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
        assert "401 Unauthorized" in failed.stderr, failed.stderr
    assert state_files(city) == state, "a refused run wrote state"
    report("rejected credentials (converges below)", 0, failed.stderr)


def test_expired_client_certificate(city: City, before: object, tmp_path: Path) -> None:
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
    state = state_files(city)
    user = {
        "client-certificate": str(tmp_path / "expired.crt"),
        "client-key": str(tmp_path / "expired.key"),
    }
    broken = kubeconfig_with(city, tmp_path, {"user": user})
    for verb in ("preview", "up"):
        extra = ("--yes",) if verb == "up" else ()
        failed = city.citykit(verb, *extra, expect=2, env={"CITYKIT_KUBECONFIG": str(broken)})
        assert "401 Unauthorized" in failed.stderr and "expired" in failed.stderr, failed.stderr
    assert state_files(city) == state, "a refused run wrote state"
    report("expired client certificate (converges below)", 0, failed.stderr)


def test_after_the_refused_runs_a_plain_up_converges(
    city: City, before: dict[str, dict[str, str]]
) -> None:
    """Last in the module: the cluster and the state as the cases above left them."""
    report("cluster access faults: the plain up after them", city.converges(before))
