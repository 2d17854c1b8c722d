"""docs/components/ is generated from the catalog and must be up to date."""

from __future__ import annotations

from citykit import docs, registry
from tests.conftest import ROOT


def test_component_docs_are_up_to_date() -> None:
    directory = ROOT / "docs" / "components"
    expected = docs.generate()
    actual = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.md")}
    assert actual == expected, "run scripts/gen-docs"


def test_every_component_has_a_page_with_its_settings() -> None:
    catalog = registry.load_catalog()
    files = docs.generate(catalog)
    for component in catalog.components():
        text = files[f"{component.name}.md"]
        assert component.summary in text and component.layer.clause in text
        assert "`enabled`" in text
