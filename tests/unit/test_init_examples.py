"""Every commented example in `citykit init`'s starter profile validates once uncommented.

The convention the test reads: an example is an indented comment (`  # data:`), so uncommenting
it is removing `# ` and keeping the indentation; comments at column 0 are prose. A run of such
lines is a block (a layer); its children (capabilities, at the block's second indentation) are
uncommented one at a time with the block's first line, then every block at once."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from citykit import compiler
from citykit.errors import ValidationFailed
from citykit.plan.planned import Plan
from tests.conftest import ENVIRONMENTS

EXAMPLE_LINE = re.compile(r"^( +)# ?(.*)$")


def starter() -> list[str]:
    text = resources.files("citykit.templates").joinpath("init/profile.yaml").read_text("utf-8")
    return text.splitlines()


def blocks(lines: list[str]) -> list[list[int]]:
    """Example blocks as line numbers: a line at the run's outer indentation (a layer) and the
    deeper lines after it."""
    found: list[list[int]] = []
    previous = -2
    for number, line in enumerate(lines):
        if EXAMPLE_LINE.match(line):
            if number != previous + 1 or depth(line) <= depth(lines[found[-1][0]]):
                found.append([])
            found[-1].append(number)
            previous = number
    return found


def depth(line: str) -> int:
    match = EXAMPLE_LINE.match(line)
    assert match
    text = match.group(2)
    return len(text) - len(text.lstrip(" "))


def examples(lines: list[str]) -> dict[str, list[int]]:
    """Each block's first line with one of its children; a block without children alone."""
    found: dict[str, list[int]] = {}
    for block in blocks(lines):
        head, rest = block[0], block[1:]
        if not rest:
            found[lines[head].strip()] = block
            continue
        child_depth = depth(lines[rest[0]])
        children: list[list[int]] = []
        for number in rest:
            if depth(lines[number]) == child_depth:
                children.append([])
            children[-1].append(number)
        for child in children:
            name = f"{lines[head].strip()} {lines[child[0]].strip()}"
            found[name] = [head, *child]
    return found


def validate(profile: Path, env: str) -> Plan:
    try:
        return compiler.plan(profile, env)
    except ValidationFailed as failure:
        pytest.fail("\n".join(failure.lines()))


def uncommented(lines: list[str], numbers: list[int]) -> str:
    result = list(lines)
    for number in numbers:
        match = EXAMPLE_LINE.match(result[number])
        assert match
        result[number] = match.group(1) + match.group(2)
    return "\n".join(result) + "\n"


LINES = starter()
EXAMPLES = examples(LINES)


def test_the_starter_has_commented_examples() -> None:
    # Guards the convention: if the template stopped indenting its examples, nothing is tested.
    assert len(EXAMPLES) >= 3, EXAMPLES


def test_the_starter_validates_as_written(tmp_path: Path) -> None:
    profile = tmp_path / "city.yaml"
    profile.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    validate(profile, "dev")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_validates_uncommented(tmp_path: Path, name: str) -> None:
    profile = tmp_path / "city.yaml"
    profile.write_text(uncommented(LINES, EXAMPLES[name]), encoding="utf-8")
    for env in ENVIRONMENTS:
        validate(profile, env)


def test_all_examples_validate_together(tmp_path: Path) -> None:
    every = sorted({number for numbers in EXAMPLES.values() for number in numbers})
    profile = tmp_path / "city.yaml"
    profile.write_text(uncommented(LINES, every), encoding="utf-8")
    plan = validate(profile, "dev")
    names = {component.name for component in plan.components}
    # The examples took effect: the optional capability is on, the alternative chosen.
    assert {"orion-ld", "nats"} <= names and "kafka" not in names
    assert plan.by_name("minio").size("replicas") == 4
