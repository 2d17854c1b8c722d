"""Sensing facilities (7.1.1), video gateway: the GB/T 28181 video-access gateway slot."""

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
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import city
from citykit.contract.sizing import max_of


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
