"""The real node's system images, built here when missing and cached by content: the pod
sandbox (kubernetes' own pause.c), CoreDNS (its static binary alone) and kube-router's policy
controller (a Debian root with iptables and ipset, built as a local image recipe)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

from citykit import go_build
from citykit import toolchain
from citykit.cluster.addons import COREDNS_REF
from citykit.cluster.addons import NETPOL_TARGET
from citykit.cluster.addons import PAUSE_REF
from citykit.errors import ToolMissing
from citykit.images import build
from citykit.images import oci
from citykit.images.build import images_dir


def _pause_archive(say: Callable[[str], None]) -> Path:
    """The pod sandbox image: kubernetes' own pause.c (from the pinned kubernetes module),
    compiled statically with the host's C compiler, as its Makefile does."""
    # Keyed by the kubernetes release that ships pause.c: a warm start asks Go for nothing.
    key = f"{toolchain.KUBERNETES_VERSION}|{PAUSE_REF}"
    out = images_dir() / f"pause-{hashlib.sha256(key.encode()).hexdigest()[:12]}.tar"
    if out.is_file():
        return out
    module = go_build.module_dir("kubernetes", "k8s.io/kubernetes", toolchain.KUBERNETES_VERSION)
    source = module / "build" / "pause" / "linux" / "pause.c"
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise ToolMissing(
            "a C compiler is needed to build the pause image", hint="apt-get install gcc"
        )
    say("building the pause image from kubernetes' pause.c")
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "pause"
        subprocess.run(
            [
                compiler,
                "-Os",
                "-Wall",
                "-Werror",
                "-static",
                "-DVERSION=v3.10-citykit",
                "-o",
                str(binary),
                str(source),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(["strip", str(binary)], check=False, capture_output=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        oci.write_image(
            out,
            PAUSE_REF,
            [("/pause", binary)],
            oci.ImageConfig(
                entrypoint=("/pause",),
                user="65535:65535",
                source="k8s.io/kubernetes/build/pause",
                version="3.10",
            ),
        )
    return out


def binary_archive(
    ref: str,
    tool: str,
    entrypoint: str,
    version: str,
    user: str,
    libraries: Sequence[Path] = (),
) -> Path:
    """An image whose only content is one built tool, with the shared libraries it links when
    it is not static (the kind node's control-plane images)."""
    binary = toolchain.find(tool)
    # The tool's cache home names its version and build recipe: no need to hash the binary.
    key = "|".join([toolchain.BY_NAME[tool].home.name, ref, user, *map(str, libraries)])
    out = images_dir() / f"{tool}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.tar"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        entries: list[oci.Entry] = [(entrypoint, binary)]
        entries += [(str(library), library.resolve()) for library in libraries]
        oci.write_image(
            out,
            ref,
            entries,
            oci.ImageConfig(
                entrypoint=(entrypoint,),
                user=user,
                source=toolchain.BY_NAME[tool].package,
                version=version,
            ),
        )
    return out


def build_images(say: Callable[[str], None]) -> list[Path]:
    """The archives of the node's system images, built when missing (cached by content)."""
    return [
        _pause_archive(say),
        binary_archive(
            COREDNS_REF, "coredns", "/coredns", toolchain.COREDNS_VERSION, "65532:65532"
        ),
        build.build(NETPOL_TARGET).archive,
    ]
