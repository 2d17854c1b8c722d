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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

ScalesWith = Literal["replicas", "size", "none"]


class SizingError(ValueError):
    """A formula that cannot be right: mismatched units, unknown or circular references."""


@dataclass(frozen=True)
class Scale:
    """The city's figures the sizing rules read (a plain copy, so rules stay pure)."""

    population: int
    devices: int
    peak_messages_per_second: int
    video_channels: int
    daily_data_gb: float
    districts: int
    departments: int


@dataclass(frozen=True)
class Dim:
    """A dimension: exponents of bytes and seconds (messages, residents and devices are counts)."""

    bytes: int = 0
    seconds: int = 0

    def __mul__(self, other: Dim) -> Dim:
        return Dim(self.bytes + other.bytes, self.seconds + other.seconds)

    def __truediv__(self, other: Dim) -> Dim:
        return Dim(self.bytes - other.bytes, self.seconds - other.seconds)

    def __str__(self) -> str:
        parts = [f"{base}^{exp}" for base, exp in (("B", self.bytes), ("s", self.seconds)) if exp]
        return " ".join(parts) or "a count"


COUNT = Dim()
BYTES = Dim(bytes=1)
SECONDS = Dim(seconds=1)
PER_SECOND = COUNT / SECONDS


@dataclass(frozen=True)
class Unit:
    symbol: str
    size: float  # how many base units (bytes, seconds) one of it is
    dim: Dim


UNITS: Mapping[str, Unit] = {
    unit.symbol: unit
    for unit in (
        Unit("", 1, COUNT),
        Unit("B", 1, BYTES),
        Unit("KiB", 1024, BYTES),
        Unit("MiB", 1024**2, BYTES),
        Unit("GiB", 1024**3, BYTES),
        Unit("TiB", 1024**4, BYTES),
        Unit("GB", 1e9, BYTES),
        Unit("TB", 1e12, BYTES),
        Unit("days", 86_400, SECONDS),
        Unit("msg/s", 1, PER_SECOND),
        Unit("GB/day", 1e9 / 86_400, BYTES / SECONDS),
    )
}


def _unit(symbol: str) -> Unit:
    if symbol not in UNITS:
        raise SizingError(f"unknown unit {symbol!r}; known: {', '.join(sorted(UNITS))}")
    return UNITS[symbol]


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}"


# Precedence in the words: a sub-formula is put in parentheses when it binds less tightly.
_CHOICE, _SUM, _PRODUCT, _ATOM = 0, 1, 2, 3


class Expr:
    """A node of a formula. Subclasses are frozen dataclasses; operators build bigger trees."""

    def dim(self) -> Dim:
        raise NotImplementedError

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        """The value in base units (bytes, seconds); `figures` holds the component's figures
        this formula refers to."""
        raise NotImplementedError

    def words(self) -> str:
        raise NotImplementedError

    def precedence(self) -> int:
        return _ATOM

    def children(self) -> tuple[Expr, ...]:
        return ()

    def walk(self) -> Iterator[Expr]:
        """This node and every node below it."""
        yield self
        for child in self.children():
            yield from child.walk()

    def refs(self) -> frozenset[str]:
        """Names of the component's figures this formula reads."""
        return frozenset(node.name for node in self.walk() if isinstance(node, Figure))

    def city_figures(self) -> tuple[CityFigure, ...]:
        """The city's figures this formula reads, each once, in the order they appear."""
        found = [node for node in self.walk() if isinstance(node, CityFigure)]
        return tuple({node.field_name: node for node in found}.values())

    def __add__(self, other: Expr | float) -> Expr:
        return BinOp("+", self, lift(other))

    def __radd__(self, other: Expr | float) -> Expr:
        return BinOp("+", lift(other), self)

    def __sub__(self, other: Expr | float) -> Expr:
        return BinOp("-", self, lift(other))

    def __rsub__(self, other: Expr | float) -> Expr:
        return BinOp("-", lift(other), self)

    def __mul__(self, other: Expr | float) -> Expr:
        return BinOp("×", self, lift(other))

    def __rmul__(self, other: Expr | float) -> Expr:
        return BinOp("×", lift(other), self)

    def __truediv__(self, other: Expr | float) -> Expr:
        return BinOp("/", self, lift(other))

    def __rtruediv__(self, other: Expr | float) -> Expr:
        return BinOp("/", lift(other), self)

    def __lt__(self, other: Expr | float) -> Below:
        return Below(self, lift(other))


def lift(operand: Expr | float) -> Expr:
    return operand if isinstance(operand, Expr) else Num(operand)


def _same_dims(what: str, parts: Sequence[Expr]) -> None:
    dims = {part.dim() for part in parts}
    if len(dims) > 1:
        raise SizingError(
            f"{what} of quantities in different units: "
            + ", ".join(f"{part.words()} ({part.dim()})" for part in parts)
        )


@dataclass(frozen=True, eq=False)
class Num(Expr):
    """A constant, with a unit or without (a plain number)."""

    number: float
    unit: str = ""

    def __post_init__(self) -> None:
        _unit(self.unit)

    def dim(self) -> Dim:
        return _unit(self.unit).dim

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        return self.number * _unit(self.unit).size

    def words(self) -> str:
        return _number(self.number) + (f" {self.unit}" if self.unit else "")


@dataclass(frozen=True, eq=False)
class CityFigure(Expr):
    """One of the city's figures (a `Scale` field), in the unit it is given in."""

    field_name: str
    said: str  # how the words call it
    source: str  # where the profile gives it
    unit: str = ""

    def dim(self) -> Dim:
        return _unit(self.unit).dim

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        number: float = getattr(scale, self.field_name)
        return number * _unit(self.unit).size

    def words(self) -> str:
        return self.said


@dataclass(frozen=True, eq=False)
class Figure(Expr):
    """Another figure of the same component (e.g. its `replicas`), as planned: overridden,
    scaled by the environment, rounded and bounded."""

    name: str
    unit: str = ""

    def __post_init__(self) -> None:
        _unit(self.unit)

    def dim(self) -> Dim:
        return _unit(self.unit).dim

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        return figures[self.name] * _unit(self.unit).size

    def words(self) -> str:
        return self.name


_OPERATIONS: Mapping[str, tuple[int, Callable[[float, float], float]]] = {
    "+": (_SUM, lambda a, b: a + b),
    "-": (_SUM, lambda a, b: a - b),
    "×": (_PRODUCT, lambda a, b: a * b),
    "/": (_PRODUCT, lambda a, b: a / b),
}


@dataclass(frozen=True, eq=False)
class BinOp(Expr):
    op: Literal["+", "-", "×", "/"]
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        if self.op in "+-":
            _same_dims("a sum", (self.left, self.right))

    def dim(self) -> Dim:
        if self.op == "×":
            return self.left.dim() * self.right.dim()
        if self.op == "/":
            return self.left.dim() / self.right.dim()
        return self.left.dim()

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        operation = _OPERATIONS[self.op][1]
        return operation(self.left.value(scale, figures), self.right.value(scale, figures))

    def precedence(self) -> int:
        return _OPERATIONS[self.op][0]

    def words(self) -> str:
        mine = self.precedence()
        left = _wrap(self.left, self.left.precedence() < mine)
        # Left-associative: a right operand of equal precedence needs parentheses after - and /.
        right_tight = self.right.precedence() < mine or (
            self.right.precedence() == mine and self.op in "-/"
        )
        return f"{left} {self.op} {_wrap(self.right, right_tight)}"

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


def _wrap(expr: Expr, parenthesize: bool) -> str:
    return f"({expr.words()})" if parenthesize else expr.words()


@dataclass(frozen=True, eq=False)
class Extreme(Expr):
    """max(…) or min(…) of quantities in the same unit."""

    function: Literal["max", "min"]
    args: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.args) < 2:
            raise SizingError(f"{self.function} of fewer than two quantities")
        _same_dims(f"{self.function}", self.args)

    def dim(self) -> Dim:
        return self.args[0].dim()

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        values = [arg.value(scale, figures) for arg in self.args]
        return max(values) if self.function == "max" else min(values)

    def words(self) -> str:
        return f"{self.function}({', '.join(arg.words() for arg in self.args)})"

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclass(frozen=True, eq=False)
class Below:
    """`left < right`, the condition of a `choose`."""

    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        _same_dims("a comparison", (self.left, self.right))

    def holds(self, scale: Scale, figures: Mapping[str, float]) -> bool:
        return self.left.value(scale, figures) < self.right.value(scale, figures)

    def words(self) -> str:
        return f"{self.left.words()} < {self.right.words()}"


@dataclass(frozen=True, eq=False)
class Choice(Expr):
    """`then` where the condition holds, else `otherwise`."""

    condition: Below
    then: Expr
    otherwise: Expr

    def __post_init__(self) -> None:
        _same_dims("a choice", (self.then, self.otherwise))

    def dim(self) -> Dim:
        return self.then.dim()

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        chosen = self.then if self.condition.holds(scale, figures) else self.otherwise
        return chosen.value(scale, figures)

    def precedence(self) -> int:
        return _CHOICE

    def words(self) -> str:
        return f"{self.then.words()} if {self.condition.words()}, else {self.otherwise.words()}"

    def children(self) -> tuple[Expr, ...]:
        return (self.condition.left, self.condition.right, self.then, self.otherwise)


# What blueprint authors write formulas with.


@dataclass(frozen=True)
class CityFigures:
    """The city's figures as formula terms; `city.<Scale field>`."""

    population: CityFigure = CityFigure("population", "residents", "`scale.population`")
    devices: CityFigure = CityFigure("devices", "devices", "`scale.devices`")
    peak_messages_per_second: CityFigure = CityFigure(
        "peak_messages_per_second", "peak msg/s", "`scale.peakMessagesPerSecond`", "msg/s"
    )
    video_channels: CityFigure = CityFigure(
        "video_channels", "video channels", "`scale.videoChannels`"
    )
    daily_data_gb: CityFigure = CityFigure(
        "daily_data_gb", "daily data", "`scale.dailyDataGb`, in GB/day", "GB/day"
    )
    districts: CityFigure = CityFigure("districts", "districts", "the number of `districts`")
    departments: CityFigure = CityFigure(
        "departments", "departments", "the number of `departments`"
    )

    def by_field(self, name: str) -> CityFigure:
        term: CityFigure = getattr(self, name)
        return term


city = CityFigures()


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
        expected = _unit(self.unit).dim
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
        return self.formula.value(scale, figures) / _unit(self.unit).size

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
