"""Planning: validated profile + environment -> the component graph with layers, dependencies and
sizing. Pure; every inconsistency is collected and reported at once before anything renders."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from pydantic.alias_generators import to_camel

from citykit.contract import layers
from citykit.contract import sizing
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.registry import Registry
from citykit.contract.sizing import ScalesWith
from citykit.errors import Problem
from citykit.errors import ValidationFailed
from citykit.input import names
from citykit.input.environment import Environment
from citykit.input.profile import ProfileBase
from citykit.plan.graph import toposort
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.planned import Sized
from citykit.plan.planned import namespace_for

# The largest volume Kubernetes accounts for exactly, 8 PiB: above 2^63 milli-bytes the API server
# calls a storage request "invalid" (its int64 arithmetic overflows; found by
# tests/e2e/test_parity.py), and above 8 EiB it silently caps the request.
MAX_VOLUME_GI = 8 * 1024**2


def _setting_path(component: type[Component], key: str = "") -> str:
    base = f"layers.{component.layer.key}.{component.capability}"
    return f"{base}.{key}" if key else base


def _chosen(
    profile: ProfileBase, registry: Registry
) -> dict[str, tuple[type[Component], ComponentSettings]]:
    """Capability -> (implementation, settings) for every capability that is on."""
    chosen: dict[str, tuple[type[Component], ComponentSettings]] = {}
    for capability, implementations in registry.capabilities().items():
        default = implementations[0]
        entry = profile.capability_settings(default.layer.key, capability)
        if entry is None:
            if default.enabled_by_default:
                chosen[capability] = (default, default.Settings())
            continue
        if not entry.enabled:
            continue
        name = getattr(entry, "implementation", default.name)
        chosen[capability] = (registry.get(name), entry)
    return chosen


def _graph_problems(
    chosen: Mapping[str, tuple[type[Component], ComponentSettings]], registry: Registry, file: str
) -> list[Problem]:
    problems: list[Problem] = []
    capabilities = registry.capabilities()
    enabled_names = {cls.name for cls, _ in chosen.values()}
    for capability, (cls, _) in sorted(chosen.items()):
        for needed in cls.requires:
            if needed in chosen:
                continue
            if needed not in capabilities:
                # A catalog bug, reported the same way so it is never silent.
                problems.append(
                    Problem(
                        _setting_path(cls),
                        f"{cls.name} requires {needed!r}, which no component provides",
                        file=file,
                    )
                )
                continue
            provider = capabilities[needed][0]
            problems.append(
                Problem(
                    _setting_path(cls),
                    f"{cls.name} ({capability}) requires {needed!r}, which is switched off",
                    file=file,
                    hint=f"enable {_setting_path(provider)} or disable {_setting_path(cls)}",
                )
            )
        for used in cls.uses:
            if used not in capabilities:
                problems.append(
                    Problem(
                        _setting_path(cls),
                        f"{cls.name} uses {used!r}, which no component provides",
                        file=file,
                    )
                )
        for other in cls.conflicts:
            clash = chosen.get(other, (None, None))[0] or (
                registry.get(other) if other in enabled_names else None
            )
            if clash is not None and clash is not cls:
                problems.append(
                    Problem(
                        _setting_path(cls),
                        f"{cls.name} conflicts with {clash.name} ({_setting_path(clash)})",
                        file=file,
                        hint="disable one of the two",
                    )
                )
    return problems


def _sizing(
    cls: type[Component],
    settings: ComponentSettings,
    profile: ProfileBase,
    environment: Environment,
) -> tuple[Sized, ...]:
    """The component's figures in declaration order. A rule reading another figure reads the
    planned one: the override where the profile sets it (contract/sizing.py, `derive`)."""
    overrides: dict[str, int] = {}
    for rule in cls.sizing:
        override: Any = getattr(settings, rule.name, None)
        if override is not None:
            overrides[rule.name] = int(override)
    factors: dict[ScalesWith, float] = {
        "replicas": environment.replica_factor,
        "size": environment.size_factor,
        "none": 1.0,
    }
    figures = sizing.derive(cls.sizing, profile.scale_for_sizing(), factors, overrides)
    return tuple(
        Sized(
            rule.name,
            figures[rule.name],
            rule.unit,
            "override" if rule.name in overrides else "derived",
            rule.words,
        )
        for rule in cls.sizing
    )


def _volume_problems(planned: Sequence[PlannedComponent], file: str) -> list[Problem]:
    problems: list[Problem] = []
    for component in planned:
        for figure in component.sizing:
            if figure.unit != "GiB" or figure.value <= MAX_VOLUME_GI:
                continue
            setting = _setting_path(component.cls, to_camel(figure.name))
            if figure.source == "override":
                how, hint = "", f"at most {MAX_VOLUME_GI}"
            else:
                how = f" ({figure.rule})"
                hint = f"set {setting} to at most {MAX_VOLUME_GI} (more replicas share the data)"
            problems.append(
                Problem(
                    setting,
                    f"a volume of {names.short(figure.value)} GiB{how} is larger than Kubernetes "
                    f"can account for ({MAX_VOLUME_GI} GiB, 8 PiB)",
                    file=file,
                    hint=hint,
                )
            )
    return problems


def _bound_problems(planned: Sequence[PlannedComponent], file: str) -> list[Problem]:
    """Figures above the figure their rule keeps them under (`SizingRule.not_above`): only an
    override can be, since the formulas keep to their bounds."""
    problems: list[Problem] = []
    for component in planned:
        for rule in component.cls.sizing:
            if not rule.not_above:
                continue
            value, bound = component.size(rule.name), component.size(rule.not_above)
            if value <= bound:
                continue
            problems.append(
                Problem(
                    _setting_path(component.cls, to_camel(rule.name)),
                    f"{value} {rule.name} is more than the {bound} {rule.not_above} planned",
                    file=file,
                    hint=f"at most {bound}, or raise {to_camel(rule.not_above)}",
                )
            )
    return problems


def _replicas(cls: type[Component], sized: Sequence[Sized]) -> int:
    """Pods of the component's standard workload as planned (`PlannedComponent.replicas`)."""
    figure = cls.workload.replicas if cls.workload is not None else None
    return next((item.value for item in sized if item.name == figure), 1)


def _replicated_problems(
    by_name: Mapping[str, tuple[type[Component], ComponentSettings]],
    sized: Mapping[str, Sequence[Sized]],
    chosen: Mapping[str, tuple[type[Component], ComponentSettings]],
    registry: Registry,
    file: str,
) -> list[Problem]:
    """Capabilities a component requires once it runs more than one replica
    (`Component.replicated_requires`) that the plan does not have."""
    problems: list[Problem] = []
    capabilities = registry.capabilities()
    for name, (cls, _) in sorted(by_name.items()):
        replicas = _replicas(cls, sized[name])
        for needed in cls.replicated_requires:
            if needed not in capabilities:
                problems.append(
                    Problem(
                        _setting_path(cls),
                        f"{cls.name} requires {needed!r} when replicated, which no component "
                        "provides",
                        file=file,
                    )
                )
            elif replicas > 1 and needed not in chosen:
                assert cls.workload is not None and cls.workload.replicas is not None
                problems.append(
                    Problem(
                        _setting_path(cls),
                        f"{cls.name} ({cls.capability}) requires {needed!r} to run "
                        f"{replicas} replicas, which is switched off",
                        file=file,
                        hint=f"enable {_setting_path(capabilities[needed][0])} or set "
                        f"{_setting_path(cls, to_camel(cls.workload.replicas))}: 1",
                    )
                )
    return problems


def _any_local(cls: type[Component], environment: Environment) -> bool:
    return environment.local_images and any(key in cls.local_images for key in cls.images)


def _images(cls: type[Component], environment: Environment) -> dict[str, str]:
    """Image references by key: the environment's mirror of upstream's, or the locally built
    image where the environment asks for local images and the component has a recipe."""
    refs = {}
    for key, image in sorted(cls.images.items()):
        recipe = cls.local_images.get(key) if environment.local_images else None
        refs[key] = (
            recipe.ref(cls.name, key)
            if recipe is not None
            else image.ref(environment.registry_mirror)
        )
    return refs


def build_plan(
    profile: ProfileBase, environment: Environment, registry: Registry, file: str = ""
) -> Plan:
    chosen = _chosen(profile, registry)
    problems = _graph_problems(chosen, registry, file)
    if problems:
        raise ValidationFailed(problems)

    by_name = {cls.name: (cls, settings) for cls, settings in chosen.values()}
    # Figures first: how many replicas a component runs decides what it requires.
    sized = {
        name: _sizing(cls, settings, profile, environment)
        for name, (cls, settings) in by_name.items()
    }
    problems = _replicated_problems(by_name, sized, chosen, registry, file)
    if problems:
        raise ValidationFailed(problems)
    capability_to_name = {capability: cls.name for capability, (cls, _) in chosen.items()}
    foundations = sorted(cls.name for cls, _ in chosen.values() if cls.foundation)
    nodes: dict[str, tuple[str, ...]] = {}
    talks_to: dict[str, tuple[str, ...]] = {}
    for name, (cls, _) in by_name.items():
        deps = {capability_to_name[c] for c in cls.requires}
        if _replicas(cls, sized[name]) > 1:
            deps.update(capability_to_name[c] for c in cls.replicated_requires)
        # Used capabilities are edges only when they are on; their absence is not a problem.
        deps.update(capability_to_name[c] for c in cls.uses if c in capability_to_name)
        talks_to[name] = tuple(sorted(deps))
        if not cls.foundation:
            # Foundation components (namespaces, zones) come before everything else.
            deps.update(foundations)
        nodes[name] = tuple(sorted(deps))
    order_key = {name: (layers.index(cls.layer), name) for name, (cls, _) in by_name.items()}
    paths = {name: _setting_path(cls) for name, (cls, _) in by_name.items()}
    ordered = toposort(nodes, order_key, file, paths)

    planned = tuple(
        PlannedComponent(
            cls=by_name[name][0],
            settings=by_name[name][1],
            namespace=namespace_for(profile.city.slug, by_name[name][0].layer),
            requires=nodes[name],
            sizing=sized[name],
            images=_images(by_name[name][0], environment),
            peers=talks_to[name],
            local_images=_any_local(by_name[name][0], environment),
        )
        for name in ordered
    )
    problems = _volume_problems(planned, file) + _bound_problems(planned, file)
    if problems:
        raise ValidationFailed(problems)
    return Plan(profile=profile, environment=environment, components=planned)
