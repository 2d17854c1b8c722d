"""Common-capability layer (7.3), GIS: GeoServer over PostGIS."""

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
class Geoserver(Component):
    name: ClassVar[str] = "geoserver"
    capability: ClassVar[str] = "gis"
    layer = layers.COMMON
    summary: ClassVar[str] = "GeoServer: OGC map and feature services over PostGIS."
    docs: ClassVar[str] = (
        "GeoServer publishes the city's spatial layers (WMS/WFS/WMTS) from PostGIS for the "
        "operations centre and the digital twin."
    )
    requires = ("relational-db",)
    images = {"main": Image("docker.osgeo.org/geoserver", "2.26.2")}
    ports = (Port("http", 8080),)
    resources = Resources(cpu_millis=500, memory_mi=2048)
    workload = Workload(
        Probe("http", "/geoserver/web/"),
        writable=("/tmp", "/opt/geoserver_data"),
        initial_delay=30,
    )

    def values(self, build: Build) -> TemplateValues:
        return TemplateValues(env={"POSTGRES_HOST": build.peer("relational-db").host})
