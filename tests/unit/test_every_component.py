"""Every component of the registry renders objects that pass strict schema validation and checkov,
those the example city leaves out too: `citykit.testing.covering_variants` chooses them, in as few
variants of the example city as cover them all (the example itself is checked by test_render.py
and test_checkov.py)."""

from __future__ import annotations

from pathlib import Path

from citykit import testing
from citykit.catalog import load_catalog


def test_the_variants_render_every_component_of_the_registry() -> None:
    rendered = {
        unit.component.name
        for overlay in [None, *testing.covering_variants()]
        for unit in testing.compile_variant(overlay, "prod").units
    }
    assert rendered == set(load_catalog().names())


def test_every_component_passes_strict_schema_validation() -> None:
    for overlay in testing.covering_variants():
        assert testing.check_schemas(testing.compile_variant(overlay, "prod").objects()) > 0


def test_checkov_reports_no_failures_for_every_component(tmp_path: Path) -> None:
    for index, overlay in enumerate(testing.covering_variants()):
        testing.check_checkov(testing.compile_variant(overlay, "prod"), tmp_path / str(index))
