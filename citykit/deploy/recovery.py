"""What a killed or interrupted run leaves behind, taken back before the next one: the stack's
lock of a process that is gone, and the pending operations of an update that did not finish."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from citykit.deploy import freshness
from citykit.deploy.engine import Deployment

Say = Callable[[str], None]


def _running(pid: int) -> bool:
    """True while `pid` runs; a killed engine whose parent died too stays a zombie until
    reaped, which must count as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def clear_stale_lock(deployment: Deployment, say: Say) -> None:
    """A `file://` backend keeps a lock file per running update; a killed citykit leaves one
    behind. Remove locks whose process is gone on this machine, so a re-run converges."""
    url = deployment.backend_url()
    if not url.startswith("file://"):
        return
    root = Path(url.removeprefix("file://")) / ".pulumi" / "locks"
    if not root.is_dir():
        return
    for lock in root.rglob("*.json"):
        if deployment.name not in str(lock.parent):
            continue
        try:
            data = json.loads(lock.read_text())
        except (OSError, ValueError):
            continue
        pid, host = int(data.get("pid", 0)), data.get("hostname", "")
        if host != socket.gethostname() or pid <= 0:
            continue
        if _running(pid):
            continue  # a real concurrent update
        say(f"removing the lock of a killed run (pid {pid})")
        lock.unlink(missing_ok=True)


def _pending_operations(deployment: Deployment) -> list[Any]:
    """The state's pending operations, from a file backend's checkpoint directly where it can
    be read; other backends are asked through the engine."""
    latest = freshness.checkpoint(deployment.backend_url(), deployment.name)
    if latest is not None:
        return list(latest.get("pending_operations") or [])
    return list((deployment.stack.export_stack().deployment or {}).get("pending_operations") or [])


def recover_interrupted(deployment: Deployment, say: Say) -> None:
    """An interrupted run leaves pending operations in the state: resources that may or may not
    exist. Refreshing with clear_pending_creates reconciles them with the cluster first, so the
    re-run converges instead of tripping over half-created objects."""
    pending = _pending_operations(deployment)
    if pending:
        say(f"the last run was interrupted ({len(pending)} pending operations); refreshing first")
        deployment.stack.refresh(
            clear_pending_creates=True,
            color="never",
            on_output=lambda _: None,
            suppress_progress=True,
        )
