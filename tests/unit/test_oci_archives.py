"""Local images as OCI archives: a layout named for containerd, layers that keep links, modes and
owners in sorted order, the same bytes from the same inputs, binary-only images."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from citykit.images import oci
from tests.unit.image_helpers import ROOT
from tests.unit.image_helpers import _read_archive
from tests.unit.image_helpers import _unpack


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
    assert archive["manifest"]["layers"][0]["digest"] == layer_digest
    assert written.layer_digests == (layer_digest,)
    assert archive["manifest"]["layers"][0]["mediaType"] == oci.LAYOUT_MEDIA["layer"]
    config = archive["config"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer_digest]}
    assert len(config["history"]) == 1
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
    assert other.layer_digests == first.layer_digests and other.config_digest != first.config_digest


def _tree(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """What a runtime would see of a root: each path's type, mode and content or link target."""
    tree: dict[str, tuple[str, int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        relative = str(path.relative_to(root))
        if path.is_symlink():
            tree[relative] = ("link", 0, os.readlink(path))
        elif path.is_dir():
            tree[relative] = ("dir", info.st_mode, "")
        elif path.is_fifo():
            tree[relative] = ("fifo", info.st_mode, "")
        else:
            tree[relative] = ("file", info.st_mode, path.read_bytes())
    return tree


def test_an_image_on_a_base_shares_its_layer_and_adds_only_its_changes(tmp_path: Path) -> None:
    """Images built in a copy of a shared base root: the base's layer, the same blob in each,
    then the changes (added, changed, retargeted, re-moded and, as whiteouts, removed entries).
    Unpacked one over the other, the layers give back the image's root exactly."""
    base = _sample_root(tmp_path / "base")
    (base / "usr/share").mkdir()
    (base / "usr/share/unchanged").write_text("same\n")
    (base / "var/cache/apt/archives").mkdir(parents=True)
    (base / "var/cache/apt/archives/lock").write_text("")
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    (root / "etc/config").write_text("key = other\n")  # in place: its hardlink changes too
    (root / "usr/bin/tool").unlink()
    os.link(root / "usr/share/unchanged", root / "usr/bin/new")
    (root / "usr/share").chmod(0o700)
    subprocess.run(["rm", "-r", str(root / "var/cache/apt")], check=True)
    (root / "bin").unlink()
    (root / "bin").symlink_to("usr/local/bin")

    written = oci.write_image(tmp_path / "image.tar", "citykit.local/s/main:1", root, CONFIG, base)
    archive = _read_archive(written.path)
    alone = oci.write_image(tmp_path / "base.tar", "citykit.local/base:1", base, CONFIG)
    assert len(written.layer_digests) == 2
    assert written.layer_digests[0] == alone.layer_digests[0]
    assert archive["config"]["rootfs"]["diff_ids"] == list(written.layer_digests)
    assert len(archive["config"]["history"]) == 2
    entries = {e.name: e for e in archive["layer"]}
    assert list(entries) == [
        *("bin", "etc/config", "etc/config.hard"),
        *("usr/bin/new", "usr/bin/.wh.tool", "usr/share", "var/cache/.wh.apt"),
    ]
    assert entries["bin"].linkname == "usr/local/bin"
    assert entries["etc/config.hard"].islnk()  # its first link is in the same layer
    assert entries["usr/bin/new"].isreg()  # its first link is in the base: a file of its own
    assert entries["usr/share"].mode == 0o700
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    _unpack(archive["layers_bytes"], unpacked)
    assert _tree(unpacked) == _tree(root)

    again = oci.write_image(tmp_path / "again.tar", "citykit.local/s/main:1", root, CONFIG, base)
    assert again.path.read_bytes() == written.path.read_bytes()


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
