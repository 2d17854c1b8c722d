"""Data circulation and utilisation facilities (7.1.4), dataspace connector: Eclipse EDC, the
connector of the city's trusted data space."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SecretSpec
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.objects.build import Build


@component
class EdcConnector(Component):
    name: ClassVar[str] = "edc-connector"
    capability: ClassVar[str] = "dataspace-connector"
    layer = layers.CIRCULATION
    summary: ClassVar[str] = (
        "Dataspace connector (Eclipse EDC): catalog, contract and policy endpoints."
    )
    docs: ClassVar[str] = (
        "An Eclipse Dataspace Components connector (Tractus-X runtime) for the city's trusted "
        "data space (可信数据空间): it publishes the catalog of shareable datasets, negotiates "
        "usage contracts and enforces policies, and hands transfers to the data-exchange "
        "service."
    )
    requires = ("data-exchange", "relational-db")
    images = {"main": Image("docker.io/tractusx/edc-runtime-memory", "0.7.7")}
    ports = (
        Port("management", 8081),
        Port("protocol", 8084, exposed_to="gateway"),
        Port("public", 8185),
    )
    resources = Resources(cpu_millis=500, memory_mi=1024)
    secrets = (SecretSpec("api-key", ("key",)),)
    workload = Workload(
        Probe("management", "/api/check/health"), writable=("/tmp",), initial_delay=20
    )

    def values(self, build: Build) -> TemplateValues:
        return TemplateValues(
            env={
                "EDC_PARTICIPANT_ID": f"city-{build.plan.profile.city.admin_code}",
                "EDC_DSP_CALLBACK_ADDRESS": f"https://{build.plan.environment.domain}/edc-connector/api/v1/dsp",
            },
            secret_env=(self.secret_env("EDC_API_AUTH_KEY", "api-key", "key"),),
        )
