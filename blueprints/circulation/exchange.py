"""Data circulation and utilisation facilities (7.1.4): the data-exchange service and the
dataspace connector of the city's trusted data space."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import (
    Component,
    ComponentSettings,
    Image,
    Port,
    Probe,
    Resources,
    SecretSpec,
    SizingRule,
    Workload,
)
from citykit.contract.registry import component
from citykit.contract.sizing import GB_per_day, city
from citykit.conventions import service_host


class ExchangeSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=64, description="Workers (default: derived).")


def _peer(build: Any, capability: str) -> str:
    peer = build.plan.by_capability(capability)
    return f"{service_host(peer.name, peer.namespace)}:{peer.cls.ports[0].port}" if peer else ""


@component
class SeaTunnel(Component):
    name: ClassVar[str] = "seatunnel"
    capability: ClassVar[str] = "data-exchange"
    layer = layers.CIRCULATION
    summary: ClassVar[str] = (
        "Data-exchange service: scheduled and streaming sharing between departments."
    )
    docs: ClassVar[str] = (
        "Apache SeaTunnel as the data-exchange / sharing engine between department systems, the "
        "data lake and the relational store; exchange jobs are audited through the broker. "
        "Workers are derived from the daily data volume."
    )
    requires = ("relational-db", "data-lake", "message-broker")
    images = {"main": Image("docker.io/apache/seatunnel", "2.3.10")}
    Settings = ExchangeSettings
    sizing = (
        SizingRule(
            "replicas",
            2 + city.daily_data_gb / GB_per_day(500),
            why="a pair for availability, more as the data grows",
            scales_with="replicas",
            maximum=64,
        ),
    )
    ports = (Port("http", 5801),)
    resources = Resources(cpu_millis=500, memory_mi=2048)
    workload = Workload(
        Probe("http"), replicas="replicas", writable=("/tmp", "/opt/seatunnel/logs")
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        return {
            "env": {
                "CITY_DB": _peer(build, "relational-db"),
                "CITY_LAKE": _peer(build, "data-lake"),
                "CITY_BROKER": _peer(build, "message-broker"),
                "EXCHANGE_AUDIT_TOPIC": f"{build.plan.slug}.exchange-audit",
            }
        }


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

    def values(self, build: Any) -> Mapping[str, Any]:
        return {
            "env": {
                "EDC_PARTICIPANT_ID": f"city-{build.plan.profile.city.admin_code}",
                "EDC_DSP_CALLBACK_ADDRESS": f"https://{build.plan.environment.domain}/edc-connector/api/v1/dsp",
            },
            "secret_env": [
                {"name": "EDC_API_AUTH_KEY", "secret": "edc-connector-api-key", "key": "key"}
            ],
        }
