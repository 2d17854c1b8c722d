"""Sensing facilities (7.1.1) beyond the MQTT broker: the device registry / protocol adapter and
the GB/T 28181 video-access gateway slot."""

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
    SizingRule,
    Workload,
)
from citykit.contract.registry import component
from citykit.contract.sizing import city, max_of
from citykit.conventions import service_host


class ScaledSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=128, description="Replicas (default: derived).")


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

    def values(self, build: Any) -> Mapping[str, Any]:
        db = build.plan.by_capability("relational-db")
        url = f"jdbc:postgresql://{service_host(db.name, db.namespace)}:5432/city" if db else ""
        return {"env": {"HONO_REGISTRY_JDBC_URL": url}}


@component
class Zlmediakit(Component):
    name: ClassVar[str] = "zlmediakit"
    capability: ClassVar[str] = "video-gateway"
    layer = layers.SENSING
    enabled_by_default: ClassVar[bool] = False
    pool = "edge"
    summary: ClassVar[str] = (
        "GB/T 28181 video-access gateway slot (ZLMediaKit media server) on edge nodes."
    )
    docs: ClassVar[str] = (
        "Off by default (`layers.sensing.video-gateway.enabled: true`): a ZLMediaKit media "
        "server on the district edge pool that receives GB/T 28181 / RTSP streams from cameras. "
        "Servers are derived from the number of video channels (about 500 per server)."
    )
    images = {"main": Image("docker.io/zlmediakit/zlmediakit", "Release.8.0")}
    Settings = ScaledSettings
    sizing = (
        SizingRule(
            "replicas",
            max_of(1, city.video_channels / 500),
            scales_with="replicas",
            maximum=128,
        ),
    )
    ports = (
        Port("http", 8080),
        Port("rtsp", 8554, exposed_to="devices"),
        Port("sip", 5060, "UDP", exposed_to="devices"),
    )
    resources = Resources(cpu_millis=1000, memory_mi=1024)
    workload = Workload(
        Probe("http", "/index/api/getServerConfig"),
        replicas="replicas",
        writable=("/tmp", "/opt/media/log"),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        return {"protocols": {"sip": "UDP"}}
