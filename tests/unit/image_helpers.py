"""What the local image tests share: whether they run as root, an OCI archive read back (index,
manifest, config and layers) and its layers unpacked one over the other as a runtime does."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

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
        layers = [_blob(tar, layer["digest"]) for layer in manifest["layers"]]
        layout = json.loads(tar.extractfile("oci-layout").read())  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layers[-1])) as layer:
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
        "layers_bytes": layers,
        "layer_bytes": layers[-1],  # the image's own layer
        "layer": entries,
        "layout": layout,
    }


def _unpack(layers: list[bytes], root: Path) -> None:
    """Extract the layers into `root` in order, as a runtime applies them: a whiteout
    (`.wh.<name>`) removes what a lower layer put there, an entry replaces what is in its way."""
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
            for member in tar.getmembers():
                parent, _, name = member.name.rpartition("/")
                target = root / parent / name.removeprefix(".wh.")
                if name.startswith(".wh.") or not (member.isdir() and target.is_dir()):
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    elif target.exists() or target.is_symlink():
                        target.unlink()
                if not name.startswith(".wh."):
                    tar.extract(member, root, numeric_owner=True, filter="fully_trusted")
