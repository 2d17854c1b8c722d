"""Local image recipes: reference naming, cache keys, the recipes' agreement with their workloads,
the Debian archive and containerd address the builder uses, and the one real build (marked
`real`). Fast otherwise: nothing is debootstrapped."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from citykit.catalog import load_catalog
from citykit.contract import image_refs as refs
from citykit.contract.component import LocalImage
from citykit.images import build
from citykit.images import containerd
from citykit.images import debian
from tests.unit.image_helpers import ROOT
from tests.unit.image_helpers import _read_archive
from tests.unit.image_helpers import _unpack


# -- references ----------------------------------------------------------------------------------
def test_local_refs_are_named_by_component_key_and_version() -> None:
    assert refs.local_ref("postgis", "main", "15-3.3") == "citykit.local/postgis/main:15-3.3"
    assert refs.local_ref("mosquitto", "broker", "2.0.11-1.2+deb12u2").endswith(
        ":2.0.11-1.2_deb12u2"
    )
    assert refs.is_local("citykit.local/postgis/main:15-3.3")
    recipe = LocalImage(version="v1.0.0", source="test")
    assert recipe.ref("node-red", "main") == "citykit.local/node-red/main:v1.0.0"
    with pytest.raises(ValueError):
        refs.local_ref("Bad Name", "main", "1")


# -- recipes and the cache -------------------------------------------------------------------------
def _targets() -> list[build.Target]:
    return build.targets(load_catalog().components())


def test_build_all_makes_the_base_once_then_builds_two_at_a_time_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path))
    chosen = _targets()[:5]
    events: list[str] = []
    running: set[str] = set()
    overlapped = threading.Event()
    lock = threading.Lock()

    def fake_build(target: build.Target, progress: object = None) -> build.Built:
        with lock:
            events.append(target.name)
            running.add(target.name)
            if len(running) > 1:
                overlapped.set()
        overlapped.wait(timeout=5)  # the second build starts while the first runs
        with lock:
            running.discard(target.name)
        return build.Built(target, tmp_path / target.name, "built", 0.0, 0)

    monkeypatch.setattr(build, "build", fake_build)
    monkeypatch.setattr(debian, "need_root", lambda: None)
    monkeypatch.setattr(debian, "base", lambda log, source=None: events.append("base"))
    results = build.build_all(chosen)
    assert [r.target for r in results] == chosen
    assert events[0] == "base" and events.count("base") == 1
    assert overlapped.is_set()


def test_cache_key_follows_the_recipe_not_the_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path))
    target = next(t for t in _targets() if t.component == "mosquitto")
    key = build.cache_key(target)
    assert len(key) == 12 and key == build.cache_key(target)
    assert build.archive_path(target) == tmp_path / "images" / f"mosquitto-broker-{key}.tar"
    assert not build.is_built(target)
    changed = dataclasses.replace(target, recipe=dataclasses.replace(target.recipe, cmd=("x",)))
    assert build.cache_key(changed) != key
    monkeypatch.setattr(build, "BUILDER_VERSION", "test")
    assert build.cache_key(target) != key
    # A present archive is the cache: build() returns it without building (and without root).
    monkeypatch.undo()
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path))
    build.archive_path(target).parent.mkdir(parents=True)
    build.archive_path(target).write_bytes(b"archive")
    states: list[str] = []
    result = build.build(target, lambda t, state: states.append(state))
    assert result.state == "cached" and states == ["cached"]


def test_every_recipe_matches_its_component() -> None:
    targets = _targets()
    names = {t.component for t in targets}
    assert {
        "mosquitto",
        "postgis",
        "victoria-metrics",
        "prometheus",
        "alertmanager",
        "node-red",
        "one-network-services",
        "one-network-operations",
        "one-network-collaboration",
    } <= names
    catalog = load_catalog()
    for target in targets:
        cls = catalog.get(target.component)
        recipe = target.recipe
        assert target.key in cls.images, f"{target.name}: no upstream image with that key"
        assert recipe.user != 0, f"{target.name} runs as root"
        assert recipe.debian or recipe.npm or recipe.tools, target.name
        assert target.ref == refs.local_ref(target.component, target.key, recipe.version)
        workload = cls.workload
        if workload is not None and workload.image == target.key:
            assert recipe.user == workload.run_as, f"{target.name}: image user != workload"
    portal = {catalog.get(n).local_images["main"] for n in names if n.startswith("one-network")}
    assert len(portal) == 1  # one shared nginx recipe
    template = Path(__file__).resolve().parents[2] / "templates/mosquitto/broker.yaml.j2"
    mosquitto = catalog.get("mosquitto").local_images["broker"]
    assert f"runAsUser: {mosquitto.user}" in template.read_text()


def test_debian_archive_comes_from_the_machines_sources(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://other.example/trixie\nSuites: trixie\n"
    )
    legacy = tmp_path / "sources.list"
    legacy.write_text("deb [arch=amd64] http://mirror.example/debian bookworm main\n")
    found = debian.archive((sources, legacy))
    assert found.mirror == "http://mirror.example/debian"
    assert found.lines == (
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main",
    )
    assert debian.archive((tmp_path / "none",)).mirror == debian.DEFAULT_MIRROR


def test_containerd_address_must_be_a_socket(tmp_path: Path) -> None:
    assert not containerd.reachable(None)
    assert not containerd.reachable(str(tmp_path / "missing.sock"))
    (tmp_path / "file").write_text("")
    assert not containerd.reachable(str(tmp_path / "file"))
    path = tmp_path / "c.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert containerd.reachable(str(path))


# -- a real build ----------------------------------------------------------------------------------
@pytest.mark.real
def test_real_mosquitto_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds the mosquitto image for real into a fresh cache (the debootstrap base is the
    user's, made once), checks the archive with tar, unpacks its two layers and runs mosquitto
    from them as its user."""
    if not ROOT:
        pytest.fail("image builds need root (debootstrap, chroot): run the real tier as root")
    base = debian.base_root()
    monkeypatch.setattr(debian, "base_root", lambda: base)
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path / "cache"))
    target = next(t for t in _targets() if t.component == "mosquitto")
    built = build.build(target)
    assert built.state == "built" and built.archive.is_relative_to(tmp_path)
    listing = subprocess.run(
        ["tar", "-tf", str(built.archive)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "index.json" in listing and "oci-layout" in listing
    archive = _read_archive(built.archive)
    assert archive["descriptor"]["annotations"]["io.containerd.image.name"] == target.ref
    assert archive["config"]["config"]["User"] == "1883:1883"
    assert len(archive["layers_bytes"]) == 2  # the shared base, then mosquitto's changes
    root = tmp_path / "root"
    root.mkdir()
    _unpack(archive["layers_bytes"], root)
    assert (root / "usr/sbin/mosquitto").is_file()
    assert not any((root / "var/lib/apt/lists").iterdir())
    assert (root / "mosquitto/data").stat().st_uid == 1883
    version = subprocess.run(
        ["chroot", "--userspec=1883:1883", str(root), "/usr/sbin/mosquitto", "-h"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "mosquitto version 2.0.11" in version.stdout
