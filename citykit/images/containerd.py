"""Loading image archives into a node's containerd, where its kubelet finds them.

Images go into containerd's `k8s.io` namespace, the one the CRI plugin (hence the kubelet)
reads, with `ctr images import`. The socket comes from the caller (the local cluster knows its
node's) or from $CITYKIT_CONTAINERD_ADDRESS; no socket means nothing to load into, which is not
an error: images stay built in the cache."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from citykit.errors import OperationFailed
from citykit.errors import ToolMissing

NAMESPACE = "k8s.io"
ADDRESS_ENV = "CITYKIT_CONTAINERD_ADDRESS"


def default_address() -> str | None:
    return os.environ.get(ADDRESS_ENV) or None


def reachable(address: str | None) -> bool:
    """Whether `address` is a Unix socket (a running containerd listens there)."""
    if not address:
        return False
    try:
        return stat.S_ISSOCK(Path(address).stat().st_mode)
    except OSError:
        return False


def _ctr() -> str:
    found = shutil.which("ctr")
    if found is None:
        raise ToolMissing(
            "ctr (containerd's client) is not installed",
            hint="`apt-get install containerd` provides it",
        )
    return found


def _run(address: str, *args: str, timeout: float = 600) -> str:
    command = [_ctr(), "--address", address, "--namespace", NAMESPACE, *args]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        raise OperationFailed(f"`{' '.join(command)}` timed out after {timeout:.0f}s") from error
    if result.returncode != 0:
        raise OperationFailed(
            f"`{' '.join(command)}` failed: {(result.stderr or result.stdout).strip()[-1500:]}"
        )
    return result.stdout


def load(archive: Path, address: str) -> None:
    """Import an OCI archive (every platform in it) into the node's `k8s.io` namespace."""
    _run(address, "images", "import", "--all-platforms", str(archive))


def loaded(address: str) -> set[str]:
    """The image references the node's runtime has."""
    return {line.strip() for line in _run(address, "images", "ls", "-q").splitlines() if line}
