"""The component graph: missing dependencies, conflicts and cycles fail before rendering, naming
both ends; the order is topological and deterministic. Uses fresh registries."""

from __future__ import annotations

from typing import ClassVar

import pytest

from citykit import compiler, layers
from citykit.component import Component
from citykit.errors import ValidationFailed
from citykit.registry import Registry, RegistryError


def make(
    name: str,
    capability: str,
    layer: layers.Layer = layers.DATA,
    *,
    requires: tuple[str, ...] = (),
    conflicts: tuple[str, ...] = (),
    default: bool = True,
    foundation: bool = False,
    enabled: bool = True,
) -> type[Component]:
    attrs = {
        "name": name,
        "capability": capability,
        "layer": layer,
        "summary": f"{name} test",
        "requires": requires,
        "conflicts": conflicts,
        "default": default,
        "foundation": foundation,
        "enabled_by_default": enabled,
    }
    cls: type[Component] = type(name.title().replace("-", ""), (Component,), attrs)
    cls.__annotations__ = {"name": ClassVar[str]}
    return cls


MINIMAL = (
    "apiVersion: citykit.io/v1alpha1\nkind: CityProfile\n"
    "city: {name: 测试市, slug: test, adminCode: '110000'}\n"
    "scale: {population: 1000}\ndistricts: [{slug: a, name: A}]\n"
)


def test_duplicate_names_are_refused_naming_both_classes() -> None:
    registry = Registry([make("db", "database")])
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register(make("db", "store"))


def test_order_is_topological_with_foundations_first(write_profile) -> None:
    registry = Registry(
        [
            make("app", "portal", layers.APPLICATIONS, requires=("database", "broker")),
            make("db", "database"),
            make("kafka", "broker", layers.COMMON, requires=("database",)),
            make("zones", "segmentation", layers.NETWORK, foundation=True),
        ]
    )
    plan = compiler.plan(write_profile(MINIMAL), "dev", registry)
    assert [c.name for c in plan.components] == ["zones", "db", "kafka", "app"]
    assert set(plan.edges()) == {
        ("db", "zones"),
        ("kafka", "db"),
        ("kafka", "zones"),
        ("app", "db"),
        ("app", "kafka"),
        ("app", "zones"),
    }


def test_a_missing_dependency_names_both_ends_and_the_fix(write_profile) -> None:
    registry = Registry(
        [
            make("app", "portal", layers.APPLICATIONS, requires=("database",)),
            make("db", "database"),
        ]
    )
    path = write_profile(MINIMAL + "layers: {data: {database: {enabled: false}}}\n")
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(path, "dev", registry)
    (problem,) = caught.value.problems
    assert problem.path == "layers.applications.portal"
    assert "app (portal) requires 'database', which is switched off" in problem.message
    assert "enable layers.data.database" in problem.hint


def test_conflicts_name_both_components(write_profile) -> None:
    registry = Registry(
        [
            make("nginx", "ingress", layers.NETWORK, conflicts=("gateway",)),
            make("apisix", "gateway", layers.COMMON),
        ]
    )
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(write_profile(MINIMAL), "dev", registry)
    (problem,) = caught.value.problems
    assert "nginx conflicts with apisix (layers.common.gateway)" in problem.message


def test_cycles_are_reported_with_the_whole_loop(write_profile) -> None:
    registry = Registry(
        [
            make("a", "alpha", requires=("beta",)),
            make("b", "beta", requires=("gamma",)),
            make("c", "gamma", requires=("alpha",)),
        ]
    )
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(write_profile(MINIMAL), "dev", registry)
    (problem,) = caught.value.problems
    assert problem.message == "dependency cycle: a -> b -> c -> a"


def test_optional_capabilities_stay_off_unless_enabled(write_profile) -> None:
    registry = Registry([make("orion", "context-broker", layers.COMMON, enabled=False)])
    assert compiler.plan(write_profile(MINIMAL), "dev", registry).components == ()
    path = write_profile(MINIMAL + "layers: {common: {context-broker: {enabled: true}}}\n")
    assert [c.name for c in compiler.plan(path, "dev", registry).components] == ["orion"]


def test_each_capability_needs_exactly_one_default() -> None:
    registry = Registry([make("x", "thing"), make("y", "thing")])
    with pytest.raises(RegistryError, match="exactly one default"):
        registry.capabilities()
