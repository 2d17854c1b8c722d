"""Sizing rules as data. A rule's formula is a small expression tree over the city's figures
(`city.population`, …), constants with units (`days(7)`, `KiB(1)`, `GiB(20)`, `msg_per_s(1_000)`)
and the component's other figures (`figure("replicas")`), built with + - × / (`max_of`, `min_of`,
`choose`). The number and the words shown by `citykit plan` and the component docs both come from
the tree, so they cannot disagree:

    storage = city.peak_messages_per_second * days(7) * KiB(1) * 3 / figure("replicas") + GiB(20)
    storage.words() == "peak msg/s × 7 days × 1 KiB × 3 / replicas + 20 GiB"

Units are checked when a formula is written: every quantity has a dimension (bytes and seconds
as exponents), sums and comparisons need equal ones, and a rule's formula must come out in its
rule's unit, so "GiB + a count of residents" or a formula in bytes/s for a GiB figure fails at
import. Values are computed in base units (bytes, seconds) and converted once, to the rule's
unit, at the end."""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

from citykit.contract import units

# The tree and its units (formulas.py, units.py); what blueprints and the contract read from here.
from citykit.contract.formulas import Below
from citykit.contract.formulas import Choice
from citykit.contract.formulas import CityFigures as CityFigures
from citykit.contract.formulas import Expr
from citykit.contract.formulas import Extreme
from citykit.contract.formulas import Figure
from citykit.contract.formulas import Num as Num
from citykit.contract.formulas import Scale as Scale
from citykit.contract.formulas import city as city
from citykit.contract.formulas import lift
from citykit.contract.units import UNITS as UNITS
from citykit.contract.units import SizingError as SizingError

ScalesWith = Literal["replicas", "size", "none"]


# What blueprint authors write formulas with.


def figure(name: str, unit: str = "") -> Figure:
    """Another figure of the same component, in its rule's unit (checked at registration)."""
    return Figure(name, unit)


def max_of(*args: Expr | float) -> Expr:
    return Extreme("max", tuple(lift(arg) for arg in args))


def min_of(*args: Expr | float) -> Expr:
    return Extreme("min", tuple(lift(arg) for arg in args))


def choose(condition: Below, then: Expr | float, otherwise: Expr | float) -> Expr:
    return Choice(condition, lift(then), lift(otherwise))


# Constants with units, named after the unit (hence the capitals) as they are read: `KiB(1)`.
def B(number: float) -> Num:
    return Num(number, "B")


def KiB(number: float) -> Num:
    return Num(number, "KiB")


def GiB(number: float) -> Num:
    return Num(number, "GiB")


def days(number: float) -> Num:
    return Num(number, "days")


def msg_per_s(number: float) -> Num:
    return Num(number, "msg/s")


def GB_per_day(number: float) -> Num:
    return Num(number, "GB/day")


@dataclass(frozen=True)
class SizingRule:
    """One derived figure of a component. `name` is also the settings field that overrides it.

    The figure is `formula`, in `unit`, times the environment's replica or size factor
    (`scales_with`), rounded up and kept within `minimum`..`maximum`. A formula may read the
    component's other figures (`figure("replicas")`): they are computed first, and what it reads
    is their planned value, the profile's override where there is one (a user who sets
    replicas=5 gets storage per broker for 5 brokers). `why` says the reasons in prose; it may
    not state numbers (digits), which come only from the formula."""

    name: str
    formula: Expr
    scales_with: ScalesWith = "none"
    unit: str = ""
    minimum: int = 1
    maximum: int | None = None
    why: str = ""
    # Another figure of the component this one may never exceed (Kafka's controller voters are
    # some of its brokers): the formula keeps to it, and the plan refuses an override beyond it.
    not_above: str = ""
    # Filled in from `formula`: the words shown by `citykit plan` and the docs.
    words: str = field(init=False)

    def __post_init__(self) -> None:
        expected = units.by_symbol(self.unit).dim
        if self.formula.dim() != expected:
            raise SizingError(
                f"sizing rule {self.name!r}: {self.formula.words()} comes out in "
                f"{self.formula.dim()}, not {self.unit or 'a count'}"
            )
        if any(char.isdigit() for char in self.why):
            raise SizingError(
                f"sizing rule {self.name!r}: `why` states a number ({self.why!r}); "
                "numbers belong in the formula"
            )
        bounds = [f"at least {self.minimum:,}"] if self.minimum != 1 else []
        bounds += [f"at most {self.maximum:,}"] if self.maximum is not None else []
        words = "; ".join([self.formula.words(), *bounds])
        object.__setattr__(self, "words", words + (f" — {self.why}" if self.why else ""))

    def raw(self, scale: Scale, figures: Mapping[str, float]) -> float:
        """The formula's value in the rule's unit, before the environment and rounding."""
        return self.formula.value(scale, figures) / units.by_symbol(self.unit).size

    def apply(self, scale: Scale, factor: float, figures: Mapping[str, float] | None = None) -> int:
        raw = self.raw(scale, figures or {})
        if self.scales_with != "none":
            raw *= factor
        # The tolerance keeps float noise (3 × 0.34 = 1.0200000000000002) from adding one.
        value = max(self.minimum, math.ceil(raw - 1e-9))
        return min(value, self.maximum) if self.maximum is not None else value


def order(rules: Sequence[SizingRule]) -> tuple[SizingRule, ...]:
    """The rules with every rule after the figures it reads (declaration order otherwise).
    Raises SizingError for a duplicate name, a reference to no figure or in another unit, and a
    cycle."""
    by_name: dict[str, SizingRule] = {}
    for rule in rules:
        if rule.name in by_name:
            raise SizingError(f"sizing rule {rule.name!r} is declared twice")
        by_name[rule.name] = rule
    for rule in rules:
        if rule.not_above and rule.not_above not in by_name:
            raise SizingError(
                f"sizing rule {rule.name!r} may not exceed figure {rule.not_above!r}, which the "
                f"component does not have (figures: {', '.join(by_name)})"
            )
        for ref in rule.formula.walk():
            if not isinstance(ref, Figure):
                continue
            if ref.name not in by_name:
                raise SizingError(
                    f"sizing rule {rule.name!r} reads figure {ref.name!r}, which the component "
                    f"does not have (figures: {', '.join(by_name)})"
                )
            if ref.unit != by_name[ref.name].unit:
                raise SizingError(
                    f"sizing rule {rule.name!r} reads {ref.name!r} in {ref.unit or 'a count'!r}, "
                    f"but that figure is in {by_name[ref.name].unit or 'a count'!r}"
                )
    ordered: list[SizingRule] = []

    def visit(rule: SizingRule, path: tuple[str, ...]) -> None:
        if any(done.name == rule.name for done in ordered):
            return
        if rule.name in path:
            cycle = [*path[path.index(rule.name) :], rule.name]
            raise SizingError("sizing rules read each other in a cycle: " + " -> ".join(cycle))
        for name in sorted(rule.formula.refs()):
            visit(by_name[name], (*path, rule.name))
        ordered.append(rule)

    for rule in rules:
        visit(rule, ())
    return tuple(ordered)


def derive(
    rules: Sequence[SizingRule],
    scale: Scale,
    factors: Mapping[ScalesWith, float],
    overrides: Mapping[str, int],
) -> dict[str, int]:
    """Every figure of a component: the override where the profile gives one, else the rule's
    value, computed after the figures it reads (which are therefore the overridden ones)."""
    figures: dict[str, int] = {}
    for rule in order(rules):
        if rule.name in overrides:
            figures[rule.name] = overrides[rule.name]
        else:
            figures[rule.name] = rule.apply(scale, factors[rule.scales_with], figures)
    return figures
