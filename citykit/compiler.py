"""The pipeline in one place: profile file (+ environment) -> validated profile -> plan ->
Kubernetes objects. Pure: nothing here touches a cluster or writes a file."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from citykit.catalog import load_catalog
from citykit.contract.registry import Registry
from citykit.conventions import Object
from citykit.errors import Problem
from citykit.errors import ValidationFailed
from citykit.input import environment as environments
from citykit.input.environment import deep_merge
from citykit.input.loading import read_yaml
from citykit.input.problems import Source
from citykit.input.problems import attribute
from citykit.input.problems import problems_from
from citykit.input.profile import ProfileBase
from citykit.input.profile import profile_model
from citykit.objects import passes
from citykit.objects.render import finish
from citykit.objects.render import render_component
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.planner import build_plan


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


def profile_sources(path: Path, overlays: Sequence[Source]) -> tuple[Source, ...]:
    """The profile file and the environment's `profile:` overlays merged onto it, base first."""
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
    return (Source(str(path), raw), *overlays)


def load_profile(sources: Sequence[Source], reg: Registry) -> ProfileBase:
    """Merge and validate; each problem names the file (profile or environment) that wrote the
    value it is about."""
    file = sources[0].file
    model = profile_model(reg)
    try:
        return model.model_validate(functools.reduce(deep_merge, (s.data for s in sources)))
    except ValidationError as error:
        raise ValidationFailed(problems_from(error, model, file, sources)) from None
    except RecursionError:
        raise ValidationFailed([Problem("", "structure nested too deeply", file=file)]) from None


def plan(profile_path: Path, environment_name: str, reg: Registry | None = None) -> Plan:
    reg = reg or load_catalog()
    loaded = environments.read(environment_name)
    sources = profile_sources(profile_path, loaded.profile_overlays())
    profile = load_profile(sources, reg)
    try:
        return build_plan(profile, loaded.environment, reg, file=str(profile_path))
    except ValidationFailed as failure:
        # Graph problems are located in the merged profile: name the file that wrote them.
        raise ValidationFailed(attribute(failure.problems, sources, str(profile_path))) from None


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
