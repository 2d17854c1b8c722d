"""The planned city: each chosen component with its namespace, dependencies, peers, sizing and
images, in deployment order. What every later stage reads; made by `planner.build_plan`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Image
from citykit.contract.component import PodSecurityException
from citykit.contract.layers import Layer
from citykit.input.environment import Environment
from citykit.input.profile import ProfileBase


@dataclass(frozen=True)
class Sized:
    """One sizing figure as planned: its value and where it came from."""

    name: str
    value: int
    unit: str
    source: Literal["derived", "override"]
    rule: str


@dataclass(frozen=True)
class PlannedComponent:
    cls: type[Component]
    settings: ComponentSettings
    namespace: str
    # Component names this one is deployed after: what it requires or uses (when in the plan),
    # what it requires when replicated (when it is), and every foundation.
    requires: tuple[str, ...]
    sizing: tuple[Sized, ...]
    images: Mapping[str, str]
    # Component names this one talks to: its required and used capabilities (foundations it
    # only waits for are ordering, not traffic). Network policies are derived from these.
    peers: tuple[str, ...] = ()
    # Images of the component are built locally (environment `localImages`): its pods whose
    # images are all local run as real containers on the local cluster's real node.
    local_images: bool = False

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def capability(self) -> str:
        return self.cls.capability

    @property
    def layer(self) -> Layer:
        return self.cls.layer

    @property
    def exceptions(self) -> tuple[PodSecurityException, ...]:
        return self.cls.exceptions

    def image_ref(self, image: Image, mirror: str | None) -> str:
        """The reference for an image the component uses besides its workloads' (a backup's):
        the planned one when it is one of the component's own images (so a local build is used
        where the plan chose it), else the mirror's."""
        for key, declared in self.cls.images.items():
            if declared == image:
                return self.images[key]
        return image.ref(mirror)

    def size(self, name: str) -> int:
        for item in self.sizing:
            if item.name == name:
                return item.value
        raise KeyError(f"component {self.name!r} has no sizing figure {name!r}")

    @property
    def replicas(self) -> int:
        """Pods of its standard workload: its `Workload.replicas` figure, else one."""
        workload = self.cls.workload
        return self.size(workload.replicas) if workload is not None and workload.replicas else 1


@dataclass(frozen=True)
class Plan:
    profile: ProfileBase
    environment: Environment
    components: tuple[PlannedComponent, ...]  # topological order: dependencies first

    @property
    def slug(self) -> str:
        return self.profile.city.slug

    def by_name(self, name: str) -> PlannedComponent:
        for planned in self.components:
            if planned.name == name:
                return planned
        raise KeyError(name)

    def by_capability(self, capability: str) -> PlannedComponent | None:
        for planned in self.components:
            if planned.capability == capability:
                return planned
        return None

    def namespace(self, layer: Layer) -> str:
        return namespace_for(self.slug, layer)

    def layers_in_use(self) -> list[Layer]:
        used = {planned.layer.key for planned in self.components}
        return [layer for layer in layers.ALL if layer.key in used]

    def edges(self) -> list[tuple[str, str]]:
        """(dependent, dependency) pairs by component name, in plan order."""
        return [(p.name, dep) for p in self.components for dep in p.requires]


def namespace_for(slug: str, layer: Layer) -> str:
    return f"{slug}-{layer.key}"


def local_image_refs(component: PlannedComponent) -> set[str]:
    """The component's locally built image references (none unless the plan chose them)."""
    if not component.local_images:
        return set()
    return {ref for key, ref in component.images.items() if key in component.cls.local_images}
