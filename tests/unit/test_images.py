"""Local images: reference naming, deterministic OCI archives, recipe cache keys, the recipes'
agreement with their workloads, and `citykit images list`. Fast: nothing is debootstrapped; the
one real build is marked `real`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from citykit.catalog import load_catalog
from citykit.contract import image_refs as refs
from citykit.contract.component import LocalImage
from citykit.images import build
from citykit.images import containerd
from citykit.images import debian
from citykit.images import oci
from tests.conftest import EXAMPLE

CLI = [sys.executable, "-m", "citykit.cli"]
ROOT = os.geteuid() == 0


def _blob(tar: tarfile.TarFile, digest: str) -> bytes:
    member = tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
    assert member is not None
    return member.read()


def _read_archive(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        names = tar.getnames()
        members = {m.name: m for m in tar.getmembers()}
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        descriptor = index["manifests"][0]
        manifest_bytes = _blob(tar, descriptor["digest"])
        manifest = json.loads(manifest_bytes)
        config_bytes = _blob(tar, manifest["config"]["digest"])
        layer_bytes = _blob(tar, manifest["layers"][0]["digest"])
        layout = json.loads(tar.extractfile("oci-layout").read())  # type: ignore[union-attr]
    with tarfile.open(fileobj=__import__("io").BytesIO(layer_bytes)) as layer:
        entries = layer.getmembers()
    return {
        "names": names,
        "members": members,
        "index": index,
        "descriptor": descriptor,
        "manifest": manifest,
        "manifest_bytes": manifest_bytes,
        "config": json.loads(config_bytes),
        "config_bytes": config_bytes,
        "layer_bytes": layer_bytes,
        "layer": entries,
        "layout": layout,
    }


def _sample_root(base: Path) -> Path:
    root = base / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/bin/tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "usr/bin/tool").chmod(0o4755)
    (root / "etc/config").write_text("key = value\n")
    os.link(root / "etc/config", root / "etc/config.hard")
    (root / "bin").symlink_to("usr/bin")
    os.mkfifo(root / "etc/fifo")
    if ROOT:
        os.chown(root / "etc/config", 1883, 1883)
    return root


CONFIG = oci.ImageConfig(
    entrypoint=("/usr/bin/tool",),
    cmd=("--flag",),
    user="1883:1883",
    env=(("PATH", "/usr/bin:/bin"), ("MODE", "test")),
    workdir="/etc",
    stop_signal="SIGQUIT",
    source="debian:bookworm test",
    version="1.2.3",
)


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


# -- OCI archives --------------------------------------------------------------------------------
def test_archive_is_an_oci_layout_named_for_containerd(tmp_path: Path) -> None:
    root = _sample_root(tmp_path)
    ref = "citykit.local/sample/main:1.2.3"
    written = oci.write_image(tmp_path / "out" / "image.tar", ref, root, CONFIG)
    archive = _read_archive(written.path)
    assert archive["layout"] == {"imageLayoutVersion": "1.0.0"}
    assert archive["names"] == sorted(archive["names"])
    assert {"index.json", "oci-layout", "blobs/sha256"} <= set(archive["names"])
    for member in archive["members"].values():
        assert member.mtime == 0 and member.uid == 0 and member.uname == ""
    descriptor = archive["descriptor"]
    assert descriptor["annotations"] == {
        "io.containerd.image.name": ref,
        "org.opencontainers.image.ref.name": ref,
    }
    assert descriptor["platform"]["os"] == "linux"
    assert descriptor["digest"] == written.manifest_digest
    assert "sha256:" + hashlib.sha256(archive["manifest_bytes"]).hexdigest() == (
        written.manifest_digest
    )
    layer_digest = "sha256:" + hashlib.sha256(archive["layer_bytes"]).hexdigest()
    assert archive["manifest"]["layers"][0]["digest"] == layer_digest == written.layer_digest
    assert archive["manifest"]["layers"][0]["mediaType"] == oci.LAYOUT_MEDIA["layer"]
    config = archive["config"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer_digest]}
    assert config["created"] == oci.CREATED
    runtime = config["config"]
    assert runtime["Entrypoint"] == ["/usr/bin/tool"] and runtime["Cmd"] == ["--flag"]
    assert runtime["User"] == "1883:1883" and runtime["WorkingDir"] == "/etc"
    assert runtime["Env"] == ["PATH=/usr/bin:/bin", "MODE=test"]
    assert runtime["StopSignal"] == "SIGQUIT"
    assert runtime["Labels"]["org.opencontainers.image.title"] == ref
    assert runtime["Labels"]["org.opencontainers.image.version"] == "1.2.3"
    assert runtime["Labels"]["org.opencontainers.image.source"] == "debian:bookworm test"
    assert runtime["Labels"]["org.opencontainers.image.created"] == oci.CREATED


def test_layer_keeps_links_modes_and_owners_in_sorted_order(tmp_path: Path) -> None:
    root = _sample_root(tmp_path)
    written = oci.write_image(tmp_path / "image.tar", "citykit.local/s/main:1", root, CONFIG)
    entries = {e.name: e for e in _read_archive(written.path)["layer"]}
    names = list(entries)
    assert names == [
        *("bin", "etc", "etc/config", "etc/config.hard", "etc/fifo"),
        *("usr", "usr/bin", "usr/bin/tool"),
    ]
    assert all(e.mtime == 0 and e.uname == "" and e.gname == "" for e in entries.values())
    assert entries["bin"].issym() and entries["bin"].linkname == "usr/bin"
    assert entries["etc/config.hard"].islnk() and entries["etc/config.hard"].linkname == (
        "etc/config"
    )
    assert entries["etc/fifo"].isfifo()
    assert entries["usr/bin/tool"].mode == 0o4755
    if ROOT:
        assert (entries["etc/config"].uid, entries["etc/config"].gid) == (1883, 1883)


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    root = _sample_root(tmp_path)
    first = oci.write_image(tmp_path / "a.tar", "citykit.local/s/main:1", root, CONFIG)
    os.utime(root / "etc/config", (12345, 12345))  # mtimes never reach the archive
    copy = tmp_path / "copy"  # other inodes, other mtimes, the same content
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
    os.utime(copy / "usr/bin/tool", (99, 99))
    second = oci.write_image(tmp_path / "b.tar", "citykit.local/s/main:1", copy, CONFIG)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.manifest_digest == second.manifest_digest
    other = oci.write_image(tmp_path / "c.tar", "citykit.local/s/main:2", root, CONFIG)
    assert other.layer_digest == first.layer_digest and other.config_digest != first.config_digest


def test_binary_only_images_from_entries(tmp_path: Path) -> None:
    binary = tmp_path / "pause"
    binary.write_bytes(b"\x7fELF fake")
    binary.chmod(0o755)
    written = oci.write_image(
        tmp_path / "pause.tar",
        "citykit.local/pause:3.10",
        [("/pause", binary), ("/etc/nsswitch.conf", b"hosts: files dns\n")],
        oci.ImageConfig(entrypoint=("/pause",), user="65535:65535"),
    )
    archive = _read_archive(written.path)
    entries = {e.name: e for e in archive["layer"]}
    assert list(entries) == ["etc", "etc/nsswitch.conf", "pause"]
    assert entries["etc"].isdir() and entries["etc"].mode == 0o755
    assert entries["pause"].mode == 0o755 and entries["pause"].uid == 0
    assert entries["etc/nsswitch.conf"].mode == 0o644
    assert archive["config"]["config"]["User"] == "65535:65535"
    with pytest.raises(ValueError):
        oci.write_image(tmp_path / "bad.tar", "x", [("/../escape", b"")], oci.ImageConfig())


# -- recipes and the cache -------------------------------------------------------------------------
def _targets() -> list[build.Target]:
    return build.targets(load_catalog().components())


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


# -- the CLI ---------------------------------------------------------------------------------------
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


# -- a real build ----------------------------------------------------------------------------------
@pytest.mark.real
def test_real_mosquitto_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds the mosquitto image for real into a fresh cache (the debootstrap base is the
    user's, made once), checks the archive with tar and runs mosquitto from it as its user."""
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
    layer = tmp_path / "layer.tar"
    layer.write_bytes(archive["layer_bytes"])
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(layer), "-C", str(root)], check=True)
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
