"""What the local image tests share: whether they run as root, and an OCI archive read back
(index, manifest, config and layer)."""

from __future__ import annotations

import json
import os
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
