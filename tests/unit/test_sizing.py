"""Sizing rules: derived from the city's figures, scaled by the environment, overridable."""

from __future__ import annotations

from citykit import compiler
from citykit.component import Scale, SizingRule
from tests.conftest import EXAMPLE, example_data

SCALE = Scale(
    population=1_000_000,
    devices=120_000,
    peak_messages_per_second=18_000,
    video_channels=0,
    daily_data_gb=400,
    districts=3,
    departments=3,
)


def test_rule_rounds_up_applies_the_factor_and_clamps() -> None:
    rule = SizingRule(
        "replicas", "devices / 50k", lambda s: s.devices / 50_000, scales_with="replicas", maximum=5
    )
    assert rule.apply(SCALE, 1.0) == 3
    assert rule.apply(SCALE, 0.34) == 1
    assert rule.apply(SCALE, 10) == 5


def test_size_rules_ignore_the_replica_factor_of_the_environment() -> None:
    rule = SizingRule("storage", "fixed", lambda s: 100, scales_with="none")
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
