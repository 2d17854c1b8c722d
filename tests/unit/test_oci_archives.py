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
