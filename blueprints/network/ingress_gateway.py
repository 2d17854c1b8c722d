"""Network facilities (7.1.2): the north-south ingress in front of the API gateway."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import ApiAccess
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Image
from citykit.contract.component import Metrics
from citykit.contract.component import PodSecurityException
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import city
from citykit.conventions import ingress_class
from citykit.conventions import issuer_names
from citykit.objects.build import Build


class IngressSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=32, description="Controllers (default: derived).")


@component
class IngressNginx(Component):
    name: ClassVar[str] = "ingress-nginx"
    capability: ClassVar[str] = "ingress-gateway"
    layer = layers.NETWORK
    summary: ClassVar[str] = (
        "North-south ingress (ingress-nginx) exposing the API gateway on node ports."
    )
    docs: ClassVar[str] = (
        "The ingress controller terminates TLS at the edge of the internet zone and forwards to "
        "the API gateway; it is exposed on node ports (80/443 are mapped to them on kind). It "
        "watches Ingress objects cluster-wide, so it is the one component with a ClusterRole, "
        "derived from its declared API access."
    )
    requires = ("api-gateway",)
    images = {"main": Image("registry.k8s.io/ingress-nginx/controller", "v1.12.1")}
    Settings = IngressSettings
    sizing = (
        SizingRule(
            "replicas",
            2 + city.population / 1_000_000,
            scales_with="replicas",
            maximum=32,
            why="a pair for availability, more as the city grows",
        ),
    )
    ports = (
        Port("http", 80, exposed_to="devices"),
        Port("https", 443, exposed_to="devices"),
        Port("metrics", 10254),
    )
    resources = Resources(cpu_millis=250, memory_mi=256)
    metrics = Metrics("metrics")
    api_access = (
        ApiAccess(
            ("",),
            ("services", "endpoints", "secrets", "configmaps", "pods", "nodes", "namespaces"),
            cluster_wide=True,
        ),
        ApiAccess(("networking.k8s.io",), ("ingresses", "ingressclasses"), cluster_wide=True),
        ApiAccess(("networking.k8s.io",), ("ingresses/status",), ("update",), cluster_wide=True),
        ApiAccess(("discovery.k8s.io",), ("endpointslices",), cluster_wide=True),
        ApiAccess(("coordination.k8s.io",), ("leases",), ("get", "create", "update")),
        ApiAccess(("",), ("events",), ("create", "patch")),
    )
    exceptions = (
        PodSecurityException(
            "readOnlyRootFilesystem", "nginx writes its generated configuration under /etc/nginx"
        ),
    )
    workload = Workload(
        Probe("metrics", "/healthz"),
        replicas="replicas",
        run_as=101,
        args=(
            "/nginx-ingress-controller",
            "--http-port=80",
            "--https-port=443",
            "--watch-ingress-without-class=false",
        ),
    )

    def values(self, build: Build) -> TemplateValues:
        plan = build.plan
        gateway = build.peer("api-gateway")
        exposed = [p.name for p in gateway.declared.ports if p.exposed_to == "gateway"]
        port = "http" if "http" in exposed else exposed[0]
        domain = plan.environment.domain
        tls = plan.by_capability("certificates") is not None
        public_tls = f"{plan.slug}-public-tls" if tls else ""
        klass = ingress_class(plan.slug)
        args = [f"--ingress-class={klass['name']}", f"--controller-class={klass['controller']}"]
        if tls:
            args.append(f"--default-ssl-certificate={gateway.namespace}/{public_tls}")
        return TemplateValues(
            env={"POD_NAMESPACE": build.component.namespace},
            extra_args=tuple(args),
            own={
                "ingress": {
                    "class": klass,
                    "name": f"{plan.slug}-public",
                    "namespace": gateway.namespace,
                    "hosts": [domain, f"sso.{domain}"],
                    "service": gateway.name,
                    "port": port,
                    "tls_secret": public_tls,
                    "issuer": issuer_names(plan.slug)["public"],
                }
            },
        )
