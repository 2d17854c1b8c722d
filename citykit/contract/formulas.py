"""The expression tree of a sizing formula: constants with units, the city's figures, the
component's other figures, + - × /, max and min, and a choice on a comparison. Each node knows its
dimension (checked when the tree is built: a sum of bytes and residents fails at import), its
value in base units for a city (`Scale`), and the words `citykit plan` and the docs show."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from citykit.contract import units
from citykit.contract.units import Dim
from citykit.contract.units import SizingError


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


class Quantity(Expr):
    """A leaf: a number in the unit its `unit` field names (checked when it is made)."""

    unit: str

    def __post_init__(self) -> None:
        units.by_symbol(self.unit)

    def dim(self) -> Dim:
        return units.by_symbol(self.unit).dim

    def in_base_units(self, number: float) -> float:
        return number * units.by_symbol(self.unit).size


@dataclass(frozen=True, eq=False)
class Num(Quantity):
    """A constant, with a unit or without (a plain number)."""

    number: float
    unit: str = ""

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        return self.in_base_units(self.number)

    def words(self) -> str:
        return units.number_words(self.number) + (f" {self.unit}" if self.unit else "")


@dataclass(frozen=True, eq=False)
class CityFigure(Quantity):
    """One of the city's figures (a `Scale` field), in the unit it is given in."""

    field_name: str
    said: str  # how the words call it
    source: str  # where the profile gives it
    unit: str = ""

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        number: float = getattr(scale, self.field_name)
        return self.in_base_units(number)

    def words(self) -> str:
        return self.said


@dataclass(frozen=True, eq=False)
class Figure(Quantity):
    """Another figure of the same component (e.g. its `replicas`), as planned: overridden,
    scaled by the environment, rounded and bounded."""

    name: str
    unit: str = ""

    def value(self, scale: Scale, figures: Mapping[str, float]) -> float:
        return self.in_base_units(figures[self.name])

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
