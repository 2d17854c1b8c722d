"""Common-capability layer (7.3), digital twin: Eclipse Ditto."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.objects.build import Build


@component
class Ditto(Component):
    name: ClassVar[str] = "ditto"
    capability: ClassVar[str] = "digital-twin"
    layer = layers.COMMON
    summary: ClassVar[str] = (
        "Eclipse Ditto: digital twins of city things, fed from the device broker."
    )
    docs: ClassVar[str] = (
        "The Eclipse Ditto gateway as the digital-twin slot: twins of devices and city assets, "
        "updated from the MQTT device broker and published to the message broker."
    )
    requires = ("message-broker", "device-broker")
    images = {"main": Image("docker.io/eclipse/ditto-gateway", "3.6.9")}
    ports = (Port("http", 8080),)
    resources = Resources(cpu_millis=500, memory_mi=1024)
    workload = Workload(Probe("http", "/alive"), initial_delay=30)

    def values(self, build: Build) -> TemplateValues:
        return TemplateValues(
            env={
                "CITY_BROKER": build.peer("message-broker").host,
                "CITY_DEVICE_BROKER": build.peer("device-broker").host,
            }
        )
