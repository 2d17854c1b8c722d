"""The TLS pass: a certificate from the city CA for every component that serves ports, mounted in
its serving pods."""

from __future__ import annotations

from typing import Any

from citykit.conventions import LONG_RUNNING_KINDS
from citykit.conventions import issuer_names
from citykit.conventions import service_host
from citykit.conventions import tls_secret_name
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.traffic import serves

TLS_MOUNT = "/etc/citykit/tls"


def tls_certificates(
    plan: Plan, component: PlannedComponent, objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """With the certificates capability on, every component that serves ports gets a
    certificate for its Service names from the city CA (`<component>-tls`), mounted read-only at
    /etc/citykit/tls in its serving pods. Foundations are skipped: the issuer cannot wait for a
    certificate it issues itself."""
    if plan.by_capability("certificates") is None or component.cls.foundation:
        return objects
    if not serves(component):
        return objects
    secret = tls_secret_name(component.name)
    host = service_host(component.name, component.namespace)  # <name>.<namespace>.svc
    certificate = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": secret},
        "spec": {
            "secretName": secret,
            "dnsNames": [
                component.name,
                host.removesuffix(".svc"),
                host,
                f"{host}.cluster.local",
            ],
            "duration": "2160h",
            "renewBefore": "360h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["server auth", "client auth", "digital signature", "key encipherment"],
            "issuerRef": {
                "kind": "ClusterIssuer",
                "group": "cert-manager.io",
                "name": issuer_names(plan.slug)["internal"],
            },
        },
    }
    for obj in objects:
        if obj["kind"] not in LONG_RUNNING_KINDS:
            continue
        spec = obj["spec"]["template"].setdefault("spec", {})
        spec.setdefault("volumes", []).append(
            {"name": "tls", "secret": {"secretName": secret, "defaultMode": 0o440}}
        )
        for container in spec.get("containers", []):
            container.setdefault("volumeMounts", []).append(
                {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True}
            )
    return [*objects, certificate]
