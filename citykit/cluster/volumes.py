"""Prepares the directories of the local StorageClass's volumes for real pods.

kwok provisions a hostPath PersistentVolume for every claim of the `citykit-local` StorageClass.
On a simulated node nothing reads it; on the real node the kubelet would create the directory
itself, owned by root with mode 0755, and a database running as a non-root user could not write
to it (hostPath volumes get no fsGroup ownership, unlike a CSI volume on a real cluster). This
small process does what a local-path provisioner does: it creates each volume's directory, open to
the pod's user, as soon as the PersistentVolume appears. Run as
`python -m citykit.cluster.volumes --kubeconfig-dir PKI --server URL --root DIR`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import ssl
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

POLL_SECONDS = 1.0


def prepare(root: Path, volumes: list[dict[str, Any]]) -> list[Path]:
    """Create (mode 0777) the directory of every hostPath volume under `root`; return them."""
    made = []
    for volume in volumes:
        path = Path((volume.get("spec", {}).get("hostPath") or {}).get("path", ""))
        if not path.is_absolute() or root not in path.parents:
            continue
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            made.append(path)
        if path.stat().st_mode & 0o777 != 0o777:
            path.chmod(0o777)  # the pod's uid is not known here; chmod is not subject to umask
    return made


def _context(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


def run(pki: Path, server: str, root: Path) -> None:
    context = _context(pki)
    url = f"{server}/api/v1/persistentvolumes"
    while True:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(url, timeout=5, context=context) as response:
                items = json.loads(response.read()).get("items", [])
            for path in prepare(root, items):
                print(f"prepared {path}", flush=True)
        time.sleep(POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pki", type=Path, required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    os.umask(0)
    args.root.mkdir(parents=True, exist_ok=True)
    try:
        run(args.pki, args.server, args.root)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
