"""Deterministic OCI image archives: the same root and config give the same bytes.

An archive is a tar of an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) with
uncompressed layers, which `ctr images import` (containerd, hence a kubelet's node) loads without
a registry. An image made from a copy of a shared base root has two layers: the base's whole root,
the same blob in every image made from it, and what the image changed (entries added or changed,
whiteouts for entries removed). A node then stores and unpacks the base once, not once per image:
containerd skips a layer whose snapshot it already has. Other images have one layer.

Determinism comes from the layers: entries in sorted order, one fixed mtime, numeric owners
exactly as on disk (no user names, which depend on the build host), and JSON written with sorted
keys. Uncompressed, because gzip output depends on the zlib version while
containerd stores either form; the archive is local and never pulled over a network.

A layer is either a root filesystem directory (symlinks, hardlinks, devices, FIFOs and modes kept;
sockets skipped) or, for binary-only images such as `pause`, a list of (path in the image, host
file or bytes) entries owned by root, their parent directories added."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from pathlib import PurePosixPath
from typing import Any

EPOCH = 0  # the mtime of every entry, and the image's `created`
CREATED = "1970-01-01T00:00:00Z"

LAYOUT_MEDIA = {
    "index": "application/vnd.oci.image.index.v1+json",
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar",
}
ANNOTATION_REF = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD = "io.containerd.image.name"

Entry = tuple[str, Path | bytes]  # (absolute path in the image, host file or content)
LayerSource = Path | Sequence[Entry]

_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_architecture() -> str:
    """The OCI architecture name of this machine (images are built for the machine they run on)."""
    machine = platform.machine().lower()
    return _ARCHITECTURES.get(machine, machine)


@dataclass(frozen=True)
class ImageConfig:
    """What the runtime needs besides the files: the OCI image config's `config` part."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""  # "uid:gid"; "" is root (only for images that need no user at all)
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = "/"
    labels: tuple[tuple[str, str], ...] = ()  # added to the fixed OCI labels
    stop_signal: str = ""
    source: str = ""  # org.opencontainers.image.source
    version: str = ""  # org.opencontainers.image.version
    architecture: str = ""  # "" is this machine's


@dataclass(frozen=True)
class WrittenImage:
    path: Path
    ref: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]  # the base's first, when there is a base
    size: int  # bytes of the archive


def write_image(
    out: Path, ref: str, layers_from: LayerSource, config: ImageConfig, base: Path | None = None
) -> WrittenImage:
    """Write the OCI archive of the image named `ref` to `out`, atomically (a temporary file in
    the same directory, renamed), and return its digests. `base` is the root that the root
    `layers_from` was copied from: the image then has the base's layer and a layer of the
    changes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".oci-", dir=out.parent) as tmp:
        layers: list[Path] = []
        if base is not None:
            if not isinstance(layers_from, Path):
                raise ValueError("a base layer goes only with a root directory")
            layers.append(Path(tmp) / "base.tar")
            _layer_from_root(base, layers[-1])
        layers.append(Path(tmp) / "layer.tar")
        if isinstance(layers_from, Path):
            _layer_from_root(layers_from, layers[-1], base)
        else:
            _layer_from_entries(layers_from, layers[-1])
        digested = [(*_digest_file(layer), layer) for layer in layers]
        layer_digests = tuple(digest for digest, _, _ in digested)
        config_blob = _json(_config(ref, config, layer_digests))
        config_digest = _digest(config_blob)
        manifest_blob = _json(
            {
                "schemaVersion": 2,
                "mediaType": LAYOUT_MEDIA["manifest"],
                "config": {
                    "mediaType": LAYOUT_MEDIA["config"],
                    "digest": config_digest,
                    "size": len(config_blob),
                },
                "layers": [
                    {"mediaType": LAYOUT_MEDIA["layer"], "digest": digest, "size": size}
                    for digest, size, _ in digested
                ],
            }
        )
        manifest_digest = _digest(manifest_blob)
        index_blob = _json(
            {
                "schemaVersion": 2,
                "mediaType": LAYOUT_MEDIA["index"],
                "manifests": [
                    {
                        "mediaType": LAYOUT_MEDIA["manifest"],
                        "digest": manifest_digest,
                        "size": len(manifest_blob),
                        "platform": {
                            "architecture": config.architecture or host_architecture(),
                            "os": "linux",
                        },
                        "annotations": {ANNOTATION_CONTAINERD: ref, ANNOTATION_REF: ref},
                    }
                ],
            }
        )
        blobs: dict[str, Path | bytes] = {
            config_digest: config_blob,
            manifest_digest: manifest_blob,
        }
        blobs.update((digest, layer) for digest, _, layer in digested)
        partial = Path(tmp) / "image.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_dir(tar, "blobs")
            _add_dir(tar, "blobs/sha256")
            for digest in sorted(blobs):
                _add_blob(tar, "blobs/sha256/" + digest.split(":", 1)[1], blobs[digest])
            _add_blob(tar, "index.json", index_blob)
            _add_blob(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        os.replace(partial, out)
    return WrittenImage(out, ref, manifest_digest, config_digest, layer_digests, out.stat().st_size)


def _config(ref: str, config: ImageConfig, layer_digests: tuple[str, ...]) -> dict[str, Any]:
    labels = dict(config.labels) | {
        "org.opencontainers.image.created": CREATED,
        "org.opencontainers.image.source": config.source,
        "org.opencontainers.image.title": ref,
        "org.opencontainers.image.version": config.version,
    }
    runtime: dict[str, Any] = {
        "Env": [f"{name}={value}" for name, value in config.env],
        "WorkingDir": config.workdir,
        "Labels": labels,
    }
    if config.user:
        runtime["User"] = config.user
    if config.entrypoint:
        runtime["Entrypoint"] = list(config.entrypoint)
    if config.cmd:
        runtime["Cmd"] = list(config.cmd)
    if config.stop_signal:
        runtime["StopSignal"] = config.stop_signal
    return {
        "created": CREATED,
        "architecture": config.architecture or host_architecture(),
        "os": "linux",
        "config": runtime,
        # Uncompressed layers: each one's diff ID is its digest.
        "rootfs": {"type": "layers", "diff_ids": list(layer_digests)},
        "history": [
            {"created": CREATED, "created_by": "citykit images: the shared base root"}
            for _ in layer_digests[1:]
        ]
        + [{"created": CREATED, "created_by": f"citykit images: {config.source}"}],
    }


def _json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _digest_file(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return "sha256:" + sha.hexdigest(), size


def _fixed(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = EPOCH
    info.uname = info.gname = ""
    return info


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(_fixed(info))


def _add_blob(tar: tarfile.TarFile, name: str, content: Path | bytes, mode: int = 0o644) -> None:
    info = _fixed(tarfile.TarInfo(name))
    info.mode = mode
    if isinstance(content, bytes):
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
        return
    info.size = content.stat().st_size
    with content.open("rb") as stream:
        tar.addfile(info, stream)


WHITEOUT = ".wh."  # a layer's marker that an entry of the layers below is gone (OCI image spec)


def _walk(root: Path, base: Path | None = None) -> Iterator[tuple[str, Path | None]]:
    """Every path under `root` in sorted depth-first order (a directory, then what it holds),
    symlinks never followed. With `base`, only what differs from it: an entry `base` lacks or
    has otherwise, and a whiteout (`.wh.<name>`, no path) in place of one that only `base` has;
    a directory is walked even when itself unchanged. A mount inside the root (a /proc left
    mounted by a build) is refused rather than archived."""
    device = root.lstat().st_dev

    Walked = Iterator[tuple[str, Path | None]]

    def visit(directory: Path, below: Path | None, prefix: str) -> Walked:
        names = _names(directory)
        below_names = _names(below) if below is not None else set()
        for name in sorted(names | below_names):
            if name not in names:
                yield prefix + WHITEOUT + name, None
                continue
            path = directory / name
            info = path.lstat()
            lower = below / name if below is not None and name in below_names else None
            lower_info = lower.lstat() if lower is not None else None
            if lower is None or lower_info is None or not _same(path, info, lower, lower_info):
                yield prefix + name, path
            if stat.S_ISDIR(info.st_mode):
                if info.st_dev != device:
                    raise ValueError(f"{path} is a mount point; unmount it before archiving")
                lower_dir = lower if lower_info and stat.S_ISDIR(lower_info.st_mode) else None
                yield from visit(path, lower_dir, prefix + name + "/")

    yield from visit(root, base, "")


def _names(directory: Path) -> set[str]:
    with os.scandir(directory) as scan:
        return {entry.name for entry in scan}


def _same(path: Path, info: os.stat_result, lower: Path, lower_info: os.stat_result) -> bool:
    """Whether an entry would be archived exactly as the base's entry is (mtimes are not
    archived, so they do not count)."""
    owner = (info.st_mode, info.st_uid, info.st_gid)
    if owner != (lower_info.st_mode, lower_info.st_uid, lower_info.st_gid):
        return False
    if stat.S_ISREG(info.st_mode):
        return info.st_size == lower_info.st_size and _same_bytes(path, lower)
    if stat.S_ISLNK(info.st_mode):
        return os.readlink(path) == os.readlink(lower)
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        return info.st_rdev == lower_info.st_rdev
    return True  # a directory (its entries are compared one by one) or a FIFO


def _same_bytes(first: Path, second: Path) -> bool:
    with first.open("rb") as one, second.open("rb") as other:
        while True:
            chunk = one.read(1 << 20)
            if chunk != other.read(1 << 20):
                return False
            if not chunk:
                return True


def _layer_from_root(root: Path, out: Path, base: Path | None = None) -> None:
    """The layer of `root`; with `base`, of its changes from `base` (`_walk`). Hardlinks join
    only entries of the same layer: tarfile links a file to an earlier one it archived, and
    archives a file whose earlier link is in the base as a file of its own."""
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for relative, path in _walk(root, base):
            if path is None:
                _add_blob(tar, relative, b"")
                continue
            info = tar.gettarinfo(str(path), arcname=relative)
            if info is None:  # sockets: created by a running program, never part of an image
                continue
            _fixed(info)
            if info.isreg():
                with path.open("rb") as stream:
                    tar.addfile(info, stream)
            else:
                tar.addfile(info)


def _layer_from_entries(entries: Sequence[Entry], out: Path) -> None:
    files: dict[str, Path | bytes] = {}
    directories: set[str] = set()
    for name, content in entries:
        path = PurePosixPath("/", name)
        relative = str(path.relative_to("/"))
        if relative in ("", ".") or ".." in path.parts:
            raise ValueError(f"{name!r} is not a file path inside the image")
        files[relative] = content
        directories.update(str(parent.relative_to("/")) for parent in path.parents)
    directories.discard(".")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for relative in sorted(directories | set(files)):
            if relative not in files:
                _add_dir(tar, relative)
                continue
            content = files[relative]
            if isinstance(content, bytes):
                _add_blob(tar, relative, content)
            else:
                _add_blob(tar, relative, content, stat.S_IMODE(content.stat().st_mode))
