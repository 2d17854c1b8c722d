"""Units of the sizing formulas (sizing.py): every quantity has a dimension, exponents of bytes
and seconds (messages, residents and devices are counts), so sums and comparisons can be checked
to add like to like, and each unit says how many base units (bytes, seconds) one of it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class SizingError(ValueError):
    """A formula that cannot be right: mismatched units, unknown or circular references."""


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


def by_symbol(symbol: str) -> Unit:
    if symbol not in UNITS:
        raise SizingError(f"unknown unit {symbol!r}; known: {', '.join(sorted(UNITS))}")
    return UNITS[symbol]


def number_words(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}"
