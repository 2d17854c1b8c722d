"""Network facilities (7.1.2): certificate issuance. cert-manager issues every endpoint's TLS
certificate from the city's own CA, and the public certificate from the issuer the environment
names (self-signed, the city CA, or the city's ACME service)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import ApiAccess
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.conventions import ingress_class
from citykit.conventions import issuer_names
from citykit.objects.build import Build

VERSION = "v1.17.2"
READ = ("get", "list", "watch")
MANAGE = (*READ, "create", "update", "patch", "delete")


@component
class CertManager(Component):
    name: ClassVar[str] = "cert-manager"
    capability: ClassVar[str] = "certificates"
    layer = layers.NETWORK
    summary: ClassVar[str] = (
        "cert-manager: TLS certificates for every endpoint from the city CA, and for the public "
        "hosts from the environment's issuer."
    )
    docs: ClassVar[str] = (
        "cert-manager's controller with its CustomResourceDefinitions (vendored from the "
        "cert-manager Go module by `scripts/vendor-crds`). A self-signed bootstrap issuer signs "
        "the city's root CA; the `<city>-ca` ClusterIssuer signs one certificate per component "
        "that serves ports (`<component>-tls`, mounted read-only at `/etc/citykit/tls`); the "
        "`<city>-public` ClusterIssuer follows the environment's `tls.issuer` (selfsigned, ca or "
        "acme with HTTP-01 through the city's ingress class) and signs the public hosts served "
        "by the ingress. It is a foundation component: every other component is deployed after "
        "it, so the CRDs exist before any Certificate. The admission webhook and CA injector are "
        "left out: only cert-manager.io/v1 is served (no conversion), and the controller "
        "validates issuers itself."
    )
    foundation: ClassVar[bool] = True
    requires = ("segmentation",)
    images = {
        "main": Image("quay.io/jetstack/cert-manager-controller", VERSION),
        "acmesolver": Image("quay.io/jetstack/cert-manager-acmesolver", VERSION),
    }
    # The controller built from upstream's cmd/controller at the same tag (tools/cert-manager), at
    # the path upstream's image has it. The ACME solver is only started for HTTP-01 challenges,
    # which a local city does not use, so it has no local recipe.
    local_images = {
        "main": LocalImage(
            version=VERSION,
            source=f"go:github.com/cert-manager/cert-manager@{VERSION} (cmd/controller)",
            debian=("ca-certificates",),
            tools=(("/app/cmd/controller/controller", "cert-manager-controller"),),
            entrypoint=("/app/cmd/controller/controller",),
            check="/app/cmd/controller/controller --help >/dev/null",
        )
    }
    Settings = ComponentSettings
    ports = (Port("metrics", 9402), Port("healthz", 9403))
    resources = Resources(cpu_millis=100, memory_mi=256)
    metrics = Metrics("metrics")
    # Its own metrics say whether the city's certificates were issued (Ready).
    checks = (
        Check(
            "the city's certificates are issued",
            "set -eu\n"
            'curl -fsS --max-time 10 "http://$TARGET:$PORT_METRICS/metrics" > /tmp/metrics\n'
            "ready=$(grep -c '^certmanager_certificate_ready_status{.*condition=\"True\".*} 1' "
            "/tmp/metrics || true)\n"
            "pending=$(grep -c '^certmanager_certificate_ready_status{.*condition=\"False\".*} 1' "
            "/tmp/metrics || true)\n"
            'echo "$ready certificates ready, $pending not ready"\n'
            '[ "$ready" -gt 0 ] && [ "$pending" -eq 0 ]\n',
        ),
    )
    api_access = (
        ApiAccess(
            ("cert-manager.io",),
            ("certificates", "certificaterequests", "issuers", "clusterissuers"),
            MANAGE,
            cluster_wide=True,
        ),
        ApiAccess(
            ("cert-manager.io",),
            (
                "certificates/status",
                "certificaterequests/status",
                "issuers/status",
                "clusterissuers/status",
                "certificates/finalizers",
                "certificaterequests/finalizers",
            ),
            ("update", "patch"),
            cluster_wide=True,
        ),
        ApiAccess(("acme.cert-manager.io",), ("orders", "challenges"), MANAGE, cluster_wide=True),
        ApiAccess(
            ("acme.cert-manager.io",),
            (
                "orders/status",
                "challenges/status",
                "orders/finalizers",
                "challenges/finalizers",
            ),
            ("update", "patch"),
            cluster_wide=True,
        ),
        # Certificates are written as Secrets in the namespace of each component.
        ApiAccess(("",), ("secrets",), MANAGE, cluster_wide=True),
        ApiAccess(("",), ("events",), ("create", "patch"), cluster_wide=True),
        # ACME HTTP-01: the solver pod, its Service and Ingress, created per challenge.
        ApiAccess(("",), ("pods", "services"), (*READ, "create", "delete"), cluster_wide=True),
        ApiAccess(
            ("networking.k8s.io",),
            ("ingresses",),
            (*READ, "create", "update", "delete"),
            cluster_wide=True,
        ),
        ApiAccess(("coordination.k8s.io",), ("leases",), ("get", "create", "update", "patch")),
    )
    workload = Workload(
        Probe("healthz", "/livez"),
        args=(
            "--v=2",
            "--cluster-resource-namespace=$(POD_NAMESPACE)",
            "--leader-election-namespace=$(POD_NAMESPACE)",
            "--enable-certificate-owner-ref=true",
        ),
    )

    def values(self, build: Build) -> TemplateValues:
        plan = build.plan
        tls = plan.environment.tls
        names = issuer_names(plan.slug)
        solver = build.component.images["acmesolver"]
        return TemplateValues(
            env={"POD_NAMESPACE": build.component.namespace},
            extra_args=(f"--acme-http01-solver-image={solver}",),
            own={
                "issuers": names,
                "public_issuer": _public_issuer(tls, names, ingress_class(plan.slug)["name"]),
            },
        )


def _public_issuer(tls: Any, names: Mapping[str, str], ingress: str) -> dict[str, Any]:
    """The `spec` of the public ClusterIssuer, from the environment's `tls` section."""
    if tls.issuer == "acme":
        return {
            "acme": {
                "server": tls.acme_server,
                "email": tls.email,
                "privateKeySecretRef": {"name": f"{names['public']}-acme-account"},
                "solvers": [{"http01": {"ingress": {"ingressClassName": ingress}}}],
            }
        }
    if tls.issuer == "ca":
        return {"ca": {"secretName": names["root_secret"]}}
    return {"selfSigned": {}}
