"""docs/components/ is generated from the catalog and must be up to date."""

from __future__ import annotations

from citykit.catalog import load_catalog
from citykit.reports import docs
from tests.conftest import ROOT


def test_component_docs_are_up_to_date() -> None:
    directory = ROOT / "docs" / "components"
    expected = docs.generate()
    actual = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.md")}
    assert actual == expected, "run scripts/gen-docs"


def test_every_component_has_a_page_with_its_settings() -> None:
    catalog = load_catalog()
    files = docs.generate(catalog)
    for component in catalog.components():
        text = files[f"{component.name}.md"]
        assert component.summary in text and component.layer.clause in text
        assert "`enabled`" in text


def test_the_readme_profile_example_validates(write_profile) -> None:
    """The profile shown in README.md is a working profile, not an illustration."""
    import re

    import yaml

    from citykit import compiler

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    profiles = [b for b in blocks if "kind: CityProfile" in b]
    assert profiles, "README.md shows a profile"
    for block in profiles:
        path = write_profile(yaml.safe_load(block))
        plan = compiler.plan(path, "dev")
        assert plan.by_capability("data-lake") is not None
