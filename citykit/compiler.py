"""The pipeline in one place: profile file (+ environment) -> validated profile -> plan ->
Kubernetes objects. Pure: nothing here touches a cluster or writes a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from citykit import environment as environments
from citykit import passes, registry
from citykit.environment import Environment, deep_merge
from citykit.errors import Problem, ValidationFailed
from citykit.loading import problems_from, read_yaml
from citykit.plan import Plan, PlannedComponent, build_plan
from citykit.profile import ProfileBase, profile_model
from citykit.registry import Registry
from citykit.render import Object, finish, render_component


@dataclass(frozen=True)
class Unit:
    """One component's objects, in apply order."""

    component: PlannedComponent
    objects: tuple[Object, ...]


@dataclass(frozen=True)
class Compiled:
    plan: Plan
    units: tuple[Unit, ...]  # in the plan's topological order

    def objects(self) -> list[Object]:
        return [obj for unit in self.units for obj in unit.objects]


def load_profile(path: Path, environment: Environment, reg: Registry) -> ProfileBase:
    raw: Any = read_yaml(path, what="profile")
    if not isinstance(raw, dict):
        raise ValidationFailed(
            [
                Problem(
                    "",
                    "expected a mapping of keys to values at the top level",
                    file=str(path),
                    hint="start from `citykit init`",
                )
            ]
        )
    if environment.profile:
        raw = deep_merge(raw, environment.profile)
    model = profile_model(reg)
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ValidationFailed(problems_from(error, model, str(path))) from None
    except RecursionError:
        raise ValidationFailed(
            [Problem("", "structure nested too deeply", file=str(path))]
        ) from None


def plan(profile_path: Path, environment_name: str, reg: Registry | None = None) -> Plan:
    reg = reg or registry.load_catalog()
    environment, _ = environments.load(environment_name)
    profile = load_profile(profile_path, environment, reg)
    return build_plan(profile, environment, reg, file=str(profile_path))


def compile_plan(the_plan: Plan) -> Compiled:
    units: list[Unit] = []
    for component in the_plan.components:
        objects = render_component(the_plan, component)
        for derive in passes.PASSES:
            objects = derive(the_plan, component, objects)
        units.append(Unit(component, tuple(finish(the_plan, component, objects))))
    return Compiled(the_plan, tuple(units))


def compile_city(
    profile_path: Path, environment_name: str, reg: Registry | None = None
) -> Compiled:
    return compile_plan(plan(profile_path, environment_name, reg))
