"""The component graph: missing dependencies, conflicts and cycles fail before rendering, naming
both ends; the order is topological and deterministic (fresh registries). Then the figure drawn
from it (`citykit graph`): the reference model's layers, checked as text and as a picture."""

from __future__ import annotations

import itertools
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from citykit import compiler
from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.registry import Registry
from citykit.contract.registry import RegistryError
from citykit.errors import ValidationFailed
from citykit.reports import diagram
from citykit.reports import figure
from tests.conftest import EXAMPLE
from tests.conftest import example_data

CLI = [sys.executable, "-m", "citykit.cli"]


def make(
    name: str,
    capability: str,
    layer: layers.Layer = layers.DATA,
    *,
    requires: tuple[str, ...] = (),
    conflicts: tuple[str, ...] = (),
    default: bool = True,
    foundation: bool = False,
    enabled: bool = True,
) -> type[Component]:
    attrs = {
        "name": name,
        "capability": capability,
        "layer": layer,
        "summary": f"{name} test",
        "requires": requires,
        "conflicts": conflicts,
        "default": default,
        "foundation": foundation,
        "enabled_by_default": enabled,
    }
    cls: type[Component] = type(name.title().replace("-", ""), (Component,), attrs)
    cls.__annotations__ = {"name": ClassVar[str]}
    return cls


MINIMAL = (
    "apiVersion: citykit.io/v1alpha1\nkind: CityProfile\n"
    "city: {name: 测试市, slug: test, adminCode: '110000'}\n"
    "scale: {population: 1000}\ndistricts: [{slug: a, name: A}]\n"
)


def test_duplicate_names_are_refused_naming_both_classes() -> None:
    registry = Registry([make("db", "database")])
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register(make("db", "store"))


def test_order_is_topological_with_foundations_first(write_profile) -> None:
    registry = Registry(
        [
            make("app", "portal", layers.APPLICATIONS, requires=("database", "broker")),
            make("db", "database"),
            make("kafka", "broker", layers.COMMON, requires=("database",)),
            make("zones", "segmentation", layers.NETWORK, foundation=True),
        ]
    )
    plan = compiler.plan(write_profile(MINIMAL), "dev", registry)
    assert [c.name for c in plan.components] == ["zones", "db", "kafka", "app"]
    assert set(plan.edges()) == {
        ("db", "zones"),
        ("kafka", "db"),
        ("kafka", "zones"),
        ("app", "db"),
        ("app", "kafka"),
        ("app", "zones"),
    }


def test_a_missing_dependency_names_both_ends_and_the_fix(write_profile) -> None:
    registry = Registry(
        [
            make("app", "portal", layers.APPLICATIONS, requires=("database",)),
            make("db", "database"),
        ]
    )
    path = write_profile(MINIMAL + "layers: {data: {database: {enabled: false}}}\n")
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(path, "dev", registry)
    (problem,) = caught.value.problems
    assert problem.path == "layers.applications.portal"
    assert "app (portal) requires 'database', which is switched off" in problem.message
    assert "enable layers.data.database" in problem.hint


def test_conflicts_name_both_components(write_profile) -> None:
    registry = Registry(
        [
            make("nginx", "ingress", layers.NETWORK, conflicts=("gateway",)),
            make("apisix", "gateway", layers.COMMON),
        ]
    )
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(write_profile(MINIMAL), "dev", registry)
    (problem,) = caught.value.problems
    assert "nginx conflicts with apisix (layers.common.gateway)" in problem.message


def test_cycles_are_reported_with_the_whole_loop(write_profile) -> None:
    registry = Registry(
        [
            make("a", "alpha", requires=("beta",)),
            make("b", "beta", requires=("gamma",)),
            make("c", "gamma", requires=("alpha",)),
        ]
    )
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(write_profile(MINIMAL), "dev", registry)
    (problem,) = caught.value.problems
    assert problem.message == "dependency cycle: a -> b -> c -> a"


def test_optional_capabilities_stay_off_unless_enabled(write_profile) -> None:
    registry = Registry([make("orion", "context-broker", layers.COMMON, enabled=False)])
    assert compiler.plan(write_profile(MINIMAL), "dev", registry).components == ()
    path = write_profile(MINIMAL + "layers: {common: {context-broker: {enabled: true}}}\n")
    assert [c.name for c in compiler.plan(path, "dev", registry).components] == ["orion"]


def test_each_capability_needs_exactly_one_default() -> None:
    registry = Registry([make("x", "thing"), make("y", "thing")])
    with pytest.raises(RegistryError, match="exactly one default"):
        registry.capabilities()


# The figure (`citykit graph`): the reference model's layered drawing of the plan.


def _boxes(text: str) -> dict[str, tuple[float, ...]]:
    """Each cluster's bounding box (x0, y0, x1, y1) in the dot text, by cluster name."""
    found = re.findall(r'subgraph "cluster_([a-z]+)" \{\n\s+graph \[.*?bb="([^"]+)"', text)
    return {key: tuple(float(v) for v in bb.split(",")) for key, bb in found}


def test_the_figure_stacks_layers_bottom_up_with_systems_at_the_sides() -> None:
    plan = compiler.plan(EXAMPLE, "dev")
    fig = figure.layout(plan)
    assert [band.layer.key for band in fig.bands] == [
        "applications",
        "common",
        "data",
        "circulation",
        "compute",
        "network",
        "sensing",
    ]
    assert fig.left == ("security-baseline",)
    assert fig.right[:2] == ("grafana", "prometheus"), "dependents above what they use"
    assert fig.widest_row <= figure.MAX_PER_ROW, "a wide layer wraps instead of making a strip"
    # Foundations are drawn once, as a band; every other edge the components talk over stays.
    foundations = {c.name for c in fig.foundations}
    assert foundations == {"zones", "cert-manager"}
    assert not [edge for edge in fig.edges if edge[1] in foundations]
    assert set(fig.edges) == {
        (c.name, peer) for c in plan.components if not c.cls.foundation for peer in c.peers
    }
    # Inside a layer, a dependency sits on a lower row than what uses it.
    common = next(band for band in fig.bands if band.layer.key == "common")
    row = {name: index for index, names in enumerate(common.rows) for name in names}
    assert row["apisix"] < row["keycloak"]


def test_the_figure_bands_do_not_overlap_and_hold_their_boxes() -> None:
    text = diagram.dot(compiler.plan(EXAMPLE, "dev"))
    assert text == diagram.dot(compiler.plan(EXAMPLE, "dev")), "byte-identical for one input"
    assert '-> "zones"' not in text and '-> "cert-manager"' not in text
    assert f"fontname={diagram._dot_string(diagram.FONT)}" in text
    boxes = _boxes(text)
    assert len(boxes) == 9
    for (a, (ax0, ay0, ax1, ay1)), (b, (bx0, by0, bx1, by1)) in itertools.combinations(
        boxes.items(), 2
    ):
        assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, f"{a} overlaps {b}"
    stack = [boxes[key] for key in ("sensing", "network", "compute", "circulation", "data")]
    stack += [boxes["common"], boxes["applications"]]
    assert [box[1] for box in stack] == sorted(box[1] for box in stack), "bottom-up (y grows up)"
    assert len({(box[0], box[2]) for box in stack}) == 1, "the bands are equally wide"
    assert boxes["security"][2] <= stack[0][0] and boxes["operations"][0] >= stack[0][2]
    plan = compiler.plan(EXAMPLE, "dev")
    drawn = re.findall(r'"([a-z0-9-]+)" \[label="[^"]*", pos="([\d.]+),([\d.]+)"\];', text)
    assert {name for name, _, _ in drawn} == {c.name for c in plan.components} - {
        "zones",
        "cert-manager",
    }
    for name, x, y in drawn:
        layer = plan.by_name(name).layer.key
        x0, y0, x1, y1 = boxes[layer]
        assert x0 < float(x) < x1 and y0 < float(y) < y1, f"{name} is outside its layer {layer}"


def test_the_figure_escapes_the_city_name(write_profile) -> None:  # type: ignore[no-untyped-def]
    data = example_data()
    data["city"]["name"] = 'x" ]; "a" -> "b" \\N <svg onload=alert(1)>'
    text = diagram.dot(compiler.plan(write_profile(data), "dev"))
    assert 'label="x\\" ]; \\"a\\" -> \\"b\\" \\\\N <svg onload=alert(1)> — dev"' in text
    assert '"a" -> "b"' not in text
    svg = _graphviz(text, "svg").decode()
    assert "&lt;svg onload=alert(1)&gt;" in svg and "<svg onload" not in svg


def test_a_figure_of_only_the_cross_cutting_systems_still_draws(write_profile) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(
        [make(f"op{index}", f"ops{index}", layers.OPERATIONS) for index in range(3)]
        + [make("guard", "guard", layers.SECURITY)]
    )
    plan = compiler.plan(write_profile(MINIMAL), "dev", registry)
    fig = figure.layout(plan)
    assert fig.bands == () and fig.right == ("op0", "op1", "op2")
    text = diagram.dot(plan)
    assert '"op0" [label="op0\\nops0"' in text
    if shutil.which("dot"):
        _graphviz(text, "svg")


def _graphviz(text: str, output: str, *extra: str) -> bytes:
    binary = shutil.which("dot")
    if binary is None:
        pytest.fail("graphviz is a test dependency (scripts/system-deps installs it)")
    command = [binary, *diagram.RENDER_ARGS, f"-T{output}", *extra]
    result = subprocess.run(command, input=text.encode(), capture_output=True, check=True)
    return result.stdout + (result.stderr if extra else b"")


def test_the_png_is_a_figure_not_a_strip_and_its_chinese_is_set_in_a_cjk_font(
    tmp_path: Path,
) -> None:
    """What a person looking at `citykit graph -f png` would check: the picture's shape, and that
    the Chinese layer names come out as characters rather than empty boxes (the font Graphviz
    resolves our labels to covers Chinese, per fontconfig)."""
    command = [*CLI, "graph", "-p", str(EXAMPLE), "-f", "png", "--out", str(tmp_path / "city.png")]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    png = (tmp_path / "city.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert 0.6 <= width / height <= 1.5, f"{width}x{height} is a strip"
    assert width <= 2000, "readable at its own size, not a 4,000-pixel-wide strip"

    cjk_files = subprocess.run(
        ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=True
    ).stdout
    assert cjk_files.strip(), "no CJK font installed: scripts/system-deps installs one"
    verbose = _graphviz(diagram.dot(compiler.plan(EXAMPLE, "dev")), "png", "-v").decode(
        errors="replace"
    )
    resolved = re.findall(r'fontname: "([^"]*)" resolved to: .*?(/\S+)', verbose)
    assert resolved, "Graphviz names the font it resolved"
    for fontname, path in resolved:
        assert fontname == diagram.FONT
        assert path in cjk_files, f"labels are set in {path}, which has no Chinese"
