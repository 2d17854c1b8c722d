"""`citykit images`: `list` (from the catalog or a plan, built or not) and `build` without
recipes or a runtime, and bad input exiting 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLE

CLI = [sys.executable, "-m", "citykit.cli"]


def _cli(tmp_path: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "CITYKIT_CACHE_DIR": str(tmp_path / "cache"),
        "CITYKIT_STATE_DIR": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [*CLI, "images", *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert result.returncode == expect, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_images_list_json(tmp_path: Path) -> None:
    rows = json.loads(_cli(tmp_path, "list", "-o", "json").stdout)
    by = {(r["component"], r["image"]): r for r in rows}
    postgis = by[("postgis", "main")]
    assert (
        postgis["recipe"] and postgis["localRef"] == "citykit.local/postgis/main:15-3.3-patroni-3.0"
    )
    assert postgis["upstream"] == "ghcr.io/zalando/spilo-17:4.0-p2"
    assert postgis["differsFromUpstream"] is True and postgis["state"] == "not built"
    assert by[("node-red", "main")]["differsFromUpstream"] is False
    assert by[("emqx", "broker")]["recipe"] is False and by[("emqx", "broker")]["state"] is None

    # An archive in the cache makes the image "built".
    archive = Path(postgis["archive"])
    assert archive.is_relative_to(tmp_path / "cache" / "images")
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    rows = json.loads(_cli(tmp_path, "list", "-c", "postgis", "-o", "json").stdout)
    assert [r["state"] for r in rows] == ["built"]


def test_images_list_follows_the_plan(tmp_path: Path) -> None:
    rows = json.loads(_cli(tmp_path, "list", "-p", str(EXAMPLE), "-o", "json").stdout)
    components = {r["component"] for r in rows}
    assert "emqx" in components and "mosquitto" not in components
    assert "citykit images" in _cli(tmp_path, "list", "-p", str(EXAMPLE)).stdout


def test_images_bad_input_exits_2(tmp_path: Path) -> None:
    result = _cli(tmp_path, "list", "-c", "no-such-component", expect=2)
    assert "no-such-component" in result.stderr
    result = _cli(tmp_path, "build", "-p", str(EXAMPLE), "-c", "mosquitto", expect=2)
    assert "not in the plan" in result.stderr
    _cli(tmp_path, "list", "-p", str(tmp_path / "missing.yaml"), expect=2)


def test_images_build_without_recipes_or_runtime(tmp_path: Path) -> None:
    result = _cli(tmp_path, "build", "-c", "emqx", "-o", "json")
    assert json.loads(result.stdout) == {"images": [], "address": None, "loaded": False}
    assert "no local image recipe" in result.stderr


def test_images_build_for_kind_says_up_imports_them(tmp_path: Path) -> None:
    """staging's cluster is kind's: `up` imports the images, into the nodes that run them."""
    cache = tmp_path / "cache" / "images"
    cache.mkdir(parents=True)
    from citykit.catalog import load_catalog
    from citykit.images import build

    targets = build.targets(c for c in load_catalog().components() if c.name == "mosquitto")
    for target in targets:  # cached: present is all `build` asks of an archive
        (cache / build.archive_path(target).name).write_bytes(b"")
    result = _cli(tmp_path, "build", "-c", "mosquitto", "-e", "staging")
    assert "cached" in result.stdout
    assert "`citykit up -e staging` imports into the kind cluster's nodes" in result.stdout
