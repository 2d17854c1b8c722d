"""A file backend's stack state that cannot be read is put back from the backend's own copies.

A state file cut short (a full disk, a crash while it was written) or garbled makes every engine
command fail, though the `file://` backend keeps earlier copies of it: `<stack>.json.bak` (the
previous version), `.pulumi/backups/<project>/<stack>/` (a copy of each version written, as
citykit leaves checkpoint backups on) and `.pulumi/history/<project>/<stack>/` (the checkpoint
after each update). The newest of them that reads as a state replaces the broken file, which is
kept beside it for inspection, and the user is told which copy was used."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from citykit.errors import InputError

PROJECT = "citykit"  # engine.PROJECT; not imported, so this module stays free of the engine


class StateUnreadable(InputError):
    """The stack's state file is broken and no readable copy exists (exit 2)."""


def _readable(path: Path) -> bool:
    """True for a stack state as the file backend writes it: a JSON document with a checkpoint
    for a stack."""
    try:
        data: Any = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    checkpoint = data.get("checkpoint") if isinstance(data, dict) else None
    return isinstance(checkpoint, dict) and isinstance(checkpoint.get("stack"), str)


def candidates(root: Path, stack: str) -> list[Path]:
    """The backend's copies of the stack's state, newest first."""
    found = [root / "stacks" / PROJECT / f"{stack}.json.bak"]
    found += (root / "backups" / PROJECT / stack).glob(f"{stack}.*.json")
    found += (root / "history" / PROJECT / stack).glob(f"{stack}-*.checkpoint.json")
    existing = [path for path in found if path.is_file()]
    return sorted(existing, key=lambda path: path.stat().st_mtime_ns, reverse=True)


def restore_if_corrupt(backend_url: str, stack: str, say: Callable[[str], None]) -> Path | None:
    """Put back the newest readable copy when the stack's state file is unreadable; the copy
    used, or None when nothing needed restoring (or the backend is not a local directory)."""
    if not backend_url.startswith("file://"):
        return None
    root = Path(backend_url.removeprefix("file://")) / ".pulumi"
    state = root / "stacks" / PROJECT / f"{stack}.json"
    if not state.is_file() or _readable(state):
        return None
    good = next((copy for copy in candidates(root, stack) if _readable(copy)), None)
    if good is None:
        raise StateUnreadable(
            f"the state of stack {stack} ({state}) is unreadable and the backend has no "
            "readable copy of it (.bak, backups/, history/)",
            hint="restore the file from your own backup of the state directory; without one, "
            "move it away and run `citykit up`, which deploys again (the cluster's objects "
            "are taken over; generated credentials stay in the stack config)",
        )
    stamp = time.strftime("%Y%m%dT%H%M%S")
    kept = state.with_name(f"{state.name}.corrupt-{stamp}")
    state.rename(kept)
    state.write_bytes(good.read_bytes())
    # The blob store's attribute file (checksum, content type) described the broken content.
    state.with_name(f"{state.name}.attrs").unlink(missing_ok=True)
    written = datetime.fromtimestamp(good.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    say(
        f"the state file {state} was unreadable; restored it from the backend's copy {good} "
        f"(written {written}); the broken file is kept as {kept.name}"
    )
    return good


class BackendFull(InputError):
    """The state backend's filesystem has no room for the state an operation writes (exit 2)."""


# What one update adds to a file backend, in copies of the state: the new state (written beside
# the old one, then renamed), `.bak`, the backup under backups/ and the checkpoint under history/.
COPIES_PER_UPDATE = 4
MARGIN = 1 << 20


def _size(amount: int) -> str:
    return f"{amount / (1 << 20):.1f} MiB"


def check_space(backend_url: str, stack: str) -> None:
    """Before an operation that writes state: a full backend would fail only at the end, after
    the cluster was changed, with the state file cut short. Refused first instead."""
    if not backend_url.startswith("file://"):
        return
    directory = Path(backend_url.removeprefix("file://"))
    state = directory / ".pulumi" / "stacks" / PROJECT / f"{stack}.json"
    current = state.stat().st_size if state.is_file() else 0
    needed = COPIES_PER_UPDATE * current + MARGIN
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise BackendFull(
            f"the state backend {directory} has {_size(free)} free; saving this stack's state "
            f"needs about {_size(needed)} ({_size(current)} per copy: the new state, its .bak, "
            "a backup and a history checkpoint); nothing was changed",
            hint=f"free space on that filesystem (df -h {directory}), or move old copies out "
            f"of {directory / '.pulumi' / 'backups'} and {directory / '.pulumi' / 'history'}",
        )


def full_backend_error(text: str, backend_url: str) -> str | None:
    """The message for an engine failure that was the backend's disk filling up mid-operation;
    None for any other failure."""
    if "no space left on device" not in text:
        return None
    directory = backend_url.removeprefix("file://")
    return (
        f"the state backend {directory} ran out of space while the engine saved the stack's "
        "state: the cluster was changed, but this run's record of it could not be written. "
        "The previous state is kept in the backend's copies; the next run restores it and "
        "takes over the objects this run created"
    )
