"""Sensing facilities (7.1.1), device registry: the Eclipse Hono device registry, the protocol
adapters' source of truth."""

from __future__ import annotations

from typing import ClassVar

from citykit.blueprints.shared import ScaledSettings

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import city
from citykit.objects.build import Build


@component
class HonoRegistry(Component):
    name: ClassVar[str] = "hono-registry"
    capability: ClassVar[str] = "device-registry"
    layer = layers.SENSING
    summary: ClassVar[str] = (
        "Device registry and credentials (Eclipse Hono), the protocol adapters' source of truth."
    )
    docs: ClassVar[str] = (
        "The Eclipse Hono JDBC device registry: devices, credentials and tenants (one per "
        "department) kept in the relational store; protocol adapters and the MQTT broker "
        "authenticate devices against it. Replicas are derived from the device count."
    )
    requires = ("device-broker", "relational-db")
    images = {"main": Image("docker.io/eclipse/hono-service-device-registry-jdbc", "2.6.1")}
    Settings = ScaledSettings
    sizing = (
        SizingRule(
            "replicas",
            2 + city.devices / 200_000,
            why="a pair for availability, more as devices are added",
            scales_with="replicas",
            maximum=128,
        ),
    )
    ports = (Port("http", 8080), Port("health", 8088))
    resources = Resources(cpu_millis=250, memory_mi=512)
    workload = Workload(Probe("health", "/readiness"), replicas="replicas", initial_delay=20)

    def values(self, build: Build) -> TemplateValues:
        return TemplateValues(
            env={"HONO_REGISTRY_JDBC_URL": build.peer("relational-db").jdbc_url()}
        )
