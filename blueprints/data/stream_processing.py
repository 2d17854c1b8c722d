"""Data layer (7.2), stream processing: an Apache Flink session cluster."""

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
from citykit.contract.sizing import city
from citykit.contract.sizing import max_of
from citykit.contract.sizing import msg_per_s
from citykit.objects.build import Build


class StreamSettings(ComponentSettings):
    replicas: int | None = Field(
        None, ge=1, le=256, description="Task managers (default: derived)."
    )


@component
class Flink(Component):
    name: ClassVar[str] = "flink"
    capability: ClassVar[str] = "stream-processing"
    layer = layers.DATA
    summary: ClassVar[str] = (
        "Apache Flink session cluster: stream processing of device and event data."
    )
    docs: ClassVar[str] = (
        "A Flink session cluster (job manager and task managers in one Deployment of task "
        "slots) that city jobs are submitted to. Task managers are derived from the peak "
        "message rate (about 5,000 msg/s per task manager)."
    )
    requires = ("message-broker",)
    images = {"main": Image("docker.io/library/flink", "1.20.1-java17")}
    Settings = StreamSettings
    sizing = (
        SizingRule(
            "replicas",
            max_of(2, city.peak_messages_per_second / msg_per_s(5_000)),
            why="task managers for throughput, a pair at least",
            scales_with="replicas",
            maximum=256,
        ),
    )
    ports = (Port("ui", 8081), Port("rpc", 6123))
    resources = Resources(cpu_millis=1000, memory_mi=2048)
    workload = Workload(
        Probe("ui", "/overview"),
        replicas="replicas",
        args=("jobmanager",),
        run_as=9999,
        writable=("/tmp", "/opt/flink/log", "/opt/flink/conf"),
    )

    def values(self, build: Build) -> TemplateValues:
        return TemplateValues(
            env={
                "FLINK_PROPERTIES": (
                    f"jobmanager.rpc.address: {self.name}\ntaskmanager.numberOfTaskSlots: 4"
                ),
                "CITY_BROKER": build.peer("message-broker").host,
            }
        )
