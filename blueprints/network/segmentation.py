"""Zone segmentation (7.1.2): one namespace per layer in use, each in its security zone
(互联网区 / 政务外网 / 管理区), with Pod Security `restricted` and a default-deny policy."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import TemplateValues
from citykit.contract.registry import component
from citykit.objects.build import Build


@component
class Zones(Component):
    name: ClassVar[str] = "zones"
    capability: ClassVar[str] = "segmentation"
    layer = layers.NETWORK
    summary: ClassVar[str] = (
        "Network zones as namespaces (internet / government / management) with restricted Pod "
        "Security and default-deny NetworkPolicies."
    )
    foundation: ClassVar[bool] = True
    readiness = "exists"

    def values(self, build: Build) -> TemplateValues:
        return TemplateValues(
            own={
                "namespaces": [
                    {
                        "name": build.plan.namespace(layer),
                        "zone": layer.zone.value,
                        "layer": layer.key,
                        "clause": layer.clause,
                    }
                    for layer in build.plan.layers_in_use()
                ]
            }
        )
