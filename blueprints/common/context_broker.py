"""Common-capability layer (7.3), context broker: FIWARE Orion-LD, for cities that use NGSI-LD."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import Workload
from citykit.contract.registry import component


@component
class OrionLd(Component):
    name: ClassVar[str] = "orion-ld"
    capability: ClassVar[str] = "context-broker"
    layer = layers.COMMON
    enabled_by_default: ClassVar[bool] = False
    summary: ClassVar[str] = "FIWARE Orion-LD: NGSI-LD context broker, for cities that use NGSI-LD."
    docs: ClassVar[str] = (
        "Off by default; switch it on with `layers.common.context-broker.enabled: true`. Orion-LD "
        "keeps its context in MongoDB-compatible storage provided by the operator."
    )
    images = {"main": Image("docker.io/fiware/orion-ld", "1.8.0")}
    ports = (Port("http", 1026),)
    resources = Resources(cpu_millis=250, memory_mi=512)
    workload = Workload(Probe("http", "/version"))
