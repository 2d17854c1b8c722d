"""The city profile: what the city needs. The static part (identity, figures, districts,
departments) is declared here; the `layers` part is assembled from the components a registry
holds, so adding a component adds its settings to the schema without touching this file."""

from __future__ import annotations

import functools
from typing import Annotated
from typing import Any
from typing import Literal
from typing import cast

from pydantic import Field
from pydantic import StringConstraints
from pydantic import create_model
from pydantic import field_validator
from pydantic import model_validator

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Scale
from citykit.contract.model import Model
from citykit.contract.registry import Registry
from citykit.input.names import CitySlug
from citykit.input.names import Slug

API_VERSION = "citykit.io/v1alpha1"

# Printable text in any script; control characters (newlines included) are refused so a name can
# never look like more than one line of anything. That includes C1 controls and U+2028/U+2029,
# which YAML reads as line breaks (folding the name) or refuses (failing render), and U+FFFE/FFFF,
# which YAML refuses too (tests/e2e/test_parity.py found them).
DisplayName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]+$"
    ),
    Field(description="Display name in any script, one line, at most 128 characters."),
]


class CityIdentity(Model):
    name: DisplayName = Field(description="Display name of the city, e.g. 杭州市余杭区.")
    slug: CitySlug = Field(
        description="DNS-safe short name; prefixes every namespace, e.g. yuhang."
    )
    admin_code: str = Field(
        pattern=r"^[0-9]{6}([0-9]{3}|[0-9]{6})?$",
        description="Administrative division code (GB/T 2260, 6 digits; 9 or 12 for townships).",
    )


class ScaleFigures(Model):
    population: int = Field(ge=1, le=100_000_000, description="Resident population.")
    devices: int = Field(0, ge=0, le=1_000_000_000, description="Connected IoT devices.")
    peak_messages_per_second: int = Field(
        0, ge=0, le=100_000_000, description="Peak device messages per second across the city."
    )
    video_channels: int = Field(
        0, ge=0, le=10_000_000, description="Video channels connected through GB/T 28181."
    )
    daily_data_gb: float = Field(
        0, ge=0, le=10_000_000, description="New data per day landing in the data lake, in GB."
    )


class District(Model):
    slug: Slug = Field(description="DNS-safe district name; becomes a zone label.")
    name: DisplayName = Field(description="Display name, e.g. 五常街道.")
    edge_nodes: int | None = Field(
        None, ge=0, le=1000, description="Edge nodes in this district (default: environment's)."
    )


class Quota(Model):
    cpu: int = Field(8, ge=1, le=100_000, description="CPU cores the department may request.")
    memory_gi: int = Field(32, ge=1, le=1_000_000, description="Memory (GiB) it may request.")
    storage_gi: int = Field(200, ge=1, le=10_000_000, description="Persistent storage (GiB).")
    pods: int = Field(100, ge=1, le=100_000, description="Pods it may run.")


class Department(Model):
    slug: Slug = Field(description="DNS-safe department name; becomes a tenant namespace.")
    name: DisplayName = Field(description="Display name, e.g. 数据资源管理局.")
    quota: Quota = Field(default_factory=Quota, description="The department's resource quota.")


def _unique_slugs(items: list[Any], what: str) -> list[Any]:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.slug in seen:
            raise ValueError(
                f"{what} slug {item.slug!r} is used twice (entries {seen[item.slug]} and {index})"
            )
        seen[item.slug] = index
    return items


class ProfileBase(Model):
    api_version: Literal["citykit.io/v1alpha1"] = Field(
        description="Schema version of this file: citykit.io/v1alpha1."
    )
    kind: Literal["CityProfile"] = Field(description="Always CityProfile.")
    city: CityIdentity = Field(description="Who the city is.")
    scale: ScaleFigures = Field(description="The city's figures; sizing rules derive from them.")
    districts: list[District] = Field(
        min_length=1, max_length=500, description="Districts; each becomes a zone with edge nodes."
    )
    departments: list[Department] = Field(
        default_factory=list, max_length=500, description="Departments; each becomes a tenant."
    )

    @field_validator("districts")
    @classmethod
    def _districts_unique(cls, value: list[District]) -> list[District]:
        return _unique_slugs(value, "district")

    @field_validator("departments")
    @classmethod
    def _departments_unique(cls, value: list[Department]) -> list[Department]:
        return _unique_slugs(value, "department")

    def scale_for_sizing(self) -> Scale:
        return Scale(
            population=self.scale.population,
            devices=self.scale.devices,
            peak_messages_per_second=self.scale.peak_messages_per_second,
            video_channels=self.scale.video_channels,
            daily_data_gb=self.scale.daily_data_gb,
            districts=len(self.districts),
            departments=len(self.departments),
        )

    def capability_settings(self, layer: str, capability: str) -> ComponentSettings | None:
        """The profile's entry for a capability, or None when the profile does not mention it."""
        layer_model = getattr(self, "layers")  # noqa: B009 - `layers` is added per registry
        entry: ComponentSettings | None = getattr(
            getattr(layer_model, layer), capability.replace("-", "_"), None
        )
        return entry


def _choice_model(component: type[Component]) -> type[ComponentSettings]:
    """The component's settings plus an `implementation` tag naming it."""
    # Models are built at run time from the registry, so their parts are typed as Any.
    tag: Any = Literal[component.name]
    fields: dict[str, Any] = {
        "implementation": (
            tag,
            Field(component.name, description=f"Which implementation: {component.name}."),
        )
    }
    model: Any = create_model(
        f"{component.__name__}Choice",
        __base__=component.Settings,
        __doc__=f"{component.summary} (implementation `{component.name}`)",
        **fields,
    )
    return cast("type[ComponentSettings]", model)


def _capability_field(capability: str, implementations: list[type[Component]]) -> tuple[Any, Any]:
    default = implementations[0]
    names = ", ".join(c.name for c in implementations)
    description = (
        f"{default.summary} Implementations: {names} (default {default.name}); "
        f"{'on' if default.enabled_by_default else 'off'} unless set."
    )
    choices = [_choice_model(c) for c in implementations]
    if len(choices) == 1:
        return (choices[0] | None, Field(None, alias=capability, description=description))
    members: Any = functools.reduce(lambda a, b: a | b, choices)  # type: ignore[arg-type,return-value]
    union: Any = Annotated[members, Field(discriminator="implementation")]
    return (union | None, Field(None, alias=capability, description=description))


def _fill_default_implementation(default_name: str) -> Any:
    def fill(value: Any) -> Any:
        # The discriminator needs a tag; an entry without one means the default implementation.
        if isinstance(value, dict) and "implementation" not in value:
            return {**value, "implementation": default_name}
        return value

    return fill


@functools.cache
def profile_model(registry: Registry) -> type[ProfileBase]:
    """Build the full profile model for a registry (cached: registries are built once)."""
    by_layer: dict[str, dict[str, list[type[Component]]]] = {}
    for capability, implementations in registry.capabilities().items():
        by_layer.setdefault(implementations[0].layer.key, {})[capability] = implementations

    layer_fields: dict[str, Any] = {}
    for layer in layers.ALL:
        capabilities = by_layer.get(layer.key, {})
        fields: dict[str, Any] = {}
        defaults: dict[str, str] = {}
        for capability, implementations in sorted(capabilities.items()):
            python_name = capability.replace("-", "_")
            annotation, field = _capability_field(capability, implementations)
            fields[python_name] = (annotation, field)
            defaults[capability] = implementations[0].name

        def fill_defaults(data: Any, _defaults: dict[str, str] = defaults) -> Any:
            if not isinstance(data, dict):
                return data
            return {
                key: _fill_default_implementation(_defaults[key])(value)
                if key in _defaults
                else value
                for key, value in data.items()
            }

        validators: dict[str, Any] = {"_defaults": model_validator(mode="before")(fill_defaults)}
        layer_model: Any = create_model(
            f"{layer.key.title()}Layer",
            __base__=Model,
            __doc__=f"{layer.clause} {layer.title} ({layer.title_zh}).",
            __validators__=validators,
            **fields,
        )
        layer_fields[layer.key] = (
            layer_model,
            Field(
                default_factory=layer_model,
                description=f"{layer.clause} {layer.title} ({layer.title_zh}): its capabilities.",
            ),
        )

    layers_model: Any = create_model(
        "Layers",
        __base__=Model,
        __doc__="Per reference-model layer, the capabilities that are on and their implementation.",
        **layer_fields,
    )
    model: type[ProfileBase] = create_model(
        "CityProfile",
        __base__=ProfileBase,
        __doc__="A city profile: what the city needs (citykit.io/v1alpha1).",
        layers=(
            layers_model,
            Field(default_factory=layers_model, description="Capabilities per layer."),
        ),
    )
    return model
