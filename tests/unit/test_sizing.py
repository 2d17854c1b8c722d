"""Sizing rules: derived from the city's figures, scaled by the environment, overridable; their
words and their numbers come from one formula, which a property test re-reads from the words."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from citykit import compiler
from citykit.catalog import load_catalog
from citykit.contract import sizing
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Scale
from citykit.contract.component import SizingRule
from citykit.contract.layers import SENSING
from citykit.contract.registry import Registry
from citykit.contract.registry import RegistryError
from citykit.contract.sizing import GiB
from citykit.contract.sizing import KiB
from citykit.contract.sizing import Num
from citykit.contract.sizing import SizingError
from citykit.contract.sizing import choose
from citykit.contract.sizing import city
from citykit.contract.sizing import days
from citykit.contract.sizing import figure
from scripts.bench import megacity_profile
from tests.conftest import EXAMPLE
from tests.conftest import example_data

SCALE = Scale(
    population=1_000_000,
    devices=120_000,
    peak_messages_per_second=18_000,
    video_channels=0,
    daily_data_gb=400,
    districts=3,
    departments=3,
)
CATALOG = load_catalog()


def test_rule_rounds_up_applies_the_factor_and_clamps() -> None:
    rule = SizingRule("replicas", city.devices / 50_000, scales_with="replicas", maximum=5)
    assert rule.apply(SCALE, 1.0) == 3
    assert rule.apply(SCALE, 0.34) == 1
    assert rule.apply(SCALE, 10) == 5


def test_size_rules_ignore_the_replica_factor_of_the_environment() -> None:
    rule = SizingRule("storage", GiB(100), unit="GiB", scales_with="none")
    assert rule.apply(SCALE, 0.25) == 100


def test_plan_shows_derived_figures_per_environment() -> None:
    dev = compiler.plan(EXAMPLE, "dev").by_name("emqx")
    prod = compiler.plan(EXAMPLE, "prod").by_name("emqx")
    assert prod.size("replicas") == 3  # max(3, 120k/50k, 18k/10k)
    assert dev.size("replicas") == 2  # 3 x 0.34 rounded up
    assert {s.source for s in prod.sizing} == {"derived"}


def test_profile_overrides_win_and_are_marked(write_profile) -> None:
    data = example_data()
    data["layers"]["sensing"]["device-broker"]["replicas"] = 9
    planned = compiler.plan(write_profile(data), "dev").by_name("emqx")
    (replicas,) = planned.sizing
    assert (replicas.value, replicas.source) == (9, "override")


# --- the words are the formula ------------------------------------------------------------------

# Read back independently of citykit/sizing.py: what each word of a rule means.
UNIT_SIZES = {
    "GB/day": 1e9 / 86_400,
    "msg/s": 1,
    "days": 86_400,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "GB": 1e9,
    "TB": 1e12,
    "B": 1,
}
TERMS = {
    "peak msg/s": lambda s: s.peak_messages_per_second,
    "daily data": lambda s: s.daily_data_gb * 1e9 / 86_400,  # GB/day in bytes per second
    "video channels": lambda s: s.video_channels,
    "residents": lambda s: s.population,
    "devices": lambda s: s.devices,
    "districts": lambda s: s.districts,
    "departments": lambda s: s.departments,
}
QUANTITY = re.compile(
    r"(\d[\d,]*(?:\.\d+)?) (" + "|".join(re.escape(u) for u in UNIT_SIZES) + r")(?![\w/])"
)


def stated(words: str) -> tuple[str, int, int | None]:
    """A rule's words -> (formula, at least, at most)."""
    statement = words.split(" — ")[0]
    formula, *bounds = statement.split("; ")
    least, most = 1, None
    for bound in bounds:
        kind, number = bound.rsplit(" ", 1)
        value = int(number.replace(",", ""))
        if kind == "at least":
            least = value
        else:
            assert kind == "at most", bound
            most = value
    return formula, least, most


def evaluate_words(formula: str, scale: Scale, figures: Mapping[str, float]) -> float:
    """The formula's words as arithmetic, in bytes and seconds."""
    names: dict[str, object] = {"max": max, "min": min}
    text = QUANTITY.sub(
        lambda m: f"({m.group(1).replace(',', '')} * {UNIT_SIZES[m.group(2)]!r})", formula
    )
    for index, (term, read) in enumerate(TERMS.items()):
        text = re.sub(rf"(?<![\w]){re.escape(term)}(?![\w])", f"_term{index}", text)
        names[f"_term{index}"] = read(scale)
    for index, (name, value) in enumerate(figures.items()):
        text = re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", f"_figure{index}", text)
        names[f"_figure{index}"] = value
    text = text.replace("×", "*").replace(", else ", " else ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    return float(eval(text, {"__builtins__": {}}, names))


def expected_figures(
    rules: tuple[SizingRule, ...],
    scale: Scale,
    factors: Mapping[str, float],
    overrides: Mapping[str, int],
) -> tuple[dict[str, int], dict[str, float]]:
    """Every figure recomputed from the words alone (overrides win; a figure read by another is
    the planned one), with the raw value before rounding of each derived one."""
    values: dict[str, int] = {}
    raws: dict[str, float] = {}
    pending = list(rules)
    while pending:
        for rule in list(pending):
            formula, least, most = stated(rule.words)
            if rule.name in overrides:
                values[rule.name] = overrides[rule.name]
            else:
                try:
                    raw = evaluate_words(formula, scale, values)
                except NameError:
                    continue  # reads a figure not known yet
                raw = raw / UNIT_SIZES.get(rule.unit, 1) * factors[rule.scales_with]
                raws[rule.name] = raw
                value = max(least, math.ceil(raw - 1e-9))
                values[rule.name] = min(value, most) if most is not None else value
            pending.remove(rule)
    return values, raws


scales = st.builds(
    Scale,
    population=st.integers(1, 100_000_000),
    devices=st.integers(0, 1_000_000_000),
    peak_messages_per_second=st.integers(0, 100_000_000),
    video_channels=st.integers(0, 10_000_000),
    daily_data_gb=st.floats(0, 10_000_000, allow_nan=False),
    districts=st.integers(1, 500),
    departments=st.integers(0, 500),
)
factors = st.fixed_dictionaries(
    {
        "replicas": st.sampled_from([0.1, 0.34, 0.67, 1.0]) | st.floats(0.05, 4),
        "size": st.sampled_from([0.25, 0.5, 1.0]) | st.floats(0.05, 4),
        "none": st.just(1.0),
    }
)
overrides = st.dictionaries(st.sampled_from(["replicas", "storage_gi"]), st.integers(1, 1000))


def _near_integer(raw: float) -> bool:
    return abs(raw - round(raw)) <= 1e-6 * max(1.0, abs(raw))


@settings(max_examples=150, deadline=None)
@given(scale=scales, factors=factors, overrides=overrides)
def test_every_rule_is_what_its_words_say(scale, factors, overrides) -> None:
    for component in CATALOG.components():
        if not component.sizing:
            continue
        names = {rule.name for rule in component.sizing}
        given_overrides = {k: v for k, v in overrides.items() if k in names}
        planned = sizing.derive(component.sizing, scale, factors, given_overrides)
        expected, raws = expected_figures(component.sizing, scale, factors, given_overrides)
        for name, value in planned.items():
            if value != expected[name]:
                # Only float noise at a rounding boundary may tell the two evaluations apart.
                assert name in raws and _near_integer(raws[name]), (component.name, name)


def test_every_city_figure_is_a_formula_term_and_has_words_the_test_reads() -> None:
    fields = [f.name for f in dataclasses.fields(Scale)]
    assert [f.name for f in dataclasses.fields(sizing.CityFigures)] == fields
    assert {city.by_field(name).said for name in fields} == set(TERMS)
    assert set(sizing.UNITS) - {""} == set(UNIT_SIZES)


def test_the_catalog_has_all_its_rules_as_formulas() -> None:
    rules = [rule for c in CATALOG.components() for rule in c.sizing]
    assert len(rules) >= 27
    assert all(not any(ch.isdigit() for ch in rule.why) for rule in rules)


# --- Kafka: what the words say ------------------------------------------------------------------


def megacity(write_profile, **kafka: int):
    """Kafka as planned for the megacity of the deployment targets (scripts/bench.py)."""
    data = megacity_profile()
    if kafka:
        data["layers"].setdefault("common", {})["message-broker"] = kafka
    return compiler.plan(write_profile(data), "prod").by_name("kafka")


def test_kafka_megacity_storage_is_7_days_of_peak_x3_replicas_per_broker(write_profile) -> None:
    kafka = megacity(write_profile)
    brokers = kafka.size("replicas")
    assert brokers == 19  # 3 + 800,000 / 50,000
    per_broker_gib = 7 * 86_400 * 800_000 * 1024 * 3 / brokers / 1024**3 + 20
    assert kafka.size("storage_gi") == math.ceil(per_broker_gib) == 72_877
    rule = next(s for s in kafka.sizing if s.name == "storage_gi")
    assert rule.rule.startswith("peak msg/s × 7 days × 1 KiB × 3 / replicas + 20 GiB")
    # 8.5 PiB before the fix; now 3 copies of a week of peak traffic (~1.3 PiB) in all.
    assert brokers * kafka.size("storage_gi") * 1024**3 < 1.4 * 1024**5


def test_a_dependent_figure_reads_the_override(write_profile) -> None:
    kafka = megacity(write_profile, replicas=5)
    assert kafka.size("replicas") == 5
    assert kafka.size("storage_gi") == math.ceil(7 * 86_400 * 800_000 * 1024 * 3 / 5 / 1024**3 + 20)
    assert [s.source for s in kafka.sizing] == ["override", "derived", "derived", "derived"]


# --- formulas that cannot be right fail where they are written -----------------------------------


def test_words_put_parentheses_only_where_they_change_the_meaning() -> None:
    assert (GiB(1) * (city.devices + 1) / (2 - Num(1))).words() == "1 GiB × (devices + 1) / (2 - 1)"
    assert (1 - (city.devices - 2)).words() == "1 - (devices - 2)"
    assert (3 * (choose(city.devices < 5, 1, 2))).words() == "3 × (1 if devices < 5, else 2)"
    assert (city.peak_messages_per_second * days(7) * KiB(1)).words() == (
        "peak msg/s × 7 days × 1 KiB"
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: GiB(20) + city.population,  # bytes + a count
        lambda: choose(city.peak_messages_per_second < 5_000, 1, 3),  # msg/s vs a count
        lambda: SizingRule("storage_gi", city.population / 1000, unit="GiB"),  # a count, not GiB
        lambda: SizingRule("replicas", city.peak_messages_per_second / 1000),  # msg/s
        lambda: SizingRule("replicas", Num(3), why="3 for a quorum"),  # a number in prose
    ],
)
def test_unit_mistakes_and_numbers_in_prose_are_refused(build) -> None:
    with pytest.raises(SizingError):
        build()


def test_rules_are_ordered_after_the_figures_they_read_and_cycles_are_refused() -> None:
    storage = SizingRule("storage_gi", GiB(10) * figure("replicas"), unit="GiB")
    replicas = SizingRule("replicas", 2 + city.devices / 1000)
    assert [r.name for r in sizing.order((storage, replicas))] == ["replicas", "storage_gi"]
    looping = SizingRule("replicas", figure("storage_gi", "GiB") / GiB(10))
    with pytest.raises(SizingError, match="cycle: storage_gi -> replicas -> storage_gi"):
        sizing.order((storage, looping))
    with pytest.raises(SizingError, match="does not have"):
        sizing.order((storage,))
    in_gib = SizingRule("storage_gi", figure("replicas", "GiB") * 2, unit="GiB")
    with pytest.raises(SizingError, match="that figure is in 'a count'"):
        sizing.order((in_gib, replicas))


def test_the_registry_refuses_a_component_whose_rules_read_each_other() -> None:
    class LoopSettings(ComponentSettings):
        replicas: int | None = None
        partitions: int | None = None

    class Loop(Component):
        name: ClassVar[str] = "loop"
        capability: ClassVar[str] = "loop"
        layer = SENSING
        summary: ClassVar[str] = "loops"
        Settings = LoopSettings
        sizing = (
            SizingRule("replicas", figure("partitions") + 1),
            SizingRule("partitions", figure("replicas") + 1),
        )

    with pytest.raises(RegistryError, match=r"loop.*cycle"):
        Registry([Loop])
