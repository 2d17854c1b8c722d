"""Data circulation and utilisation facilities (7.1.4), data exchange: Apache SeaTunnel, the
sharing engine between departments."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Image
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import GB_per_day
from citykit.contract.sizing import city
from citykit.objects.build import Build


class ExchangeSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=64, description="Workers (default: derived).")


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

    def values(self, build: Build) -> TemplateValues:
        return TemplateValues(
            env={
                "CITY_DB": build.peer("relational-db").address(),
                "CITY_LAKE": build.peer("data-lake").address(),
                "CITY_BROKER": build.peer("message-broker").address(),
                "EXCHANGE_AUDIT_TOPIC": f"{build.plan.slug}.exchange-audit",
            }
        )
