"""The local cluster's processes: detached, so the cluster outlives the command that started it,
and found again from the pids and binaries in its state file. Pids are reused, so a pid counts as
ours only while it runs the binary recorded for it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from citykit.errors import InputError


@dataclass(frozen=True)
class ComponentState:
    name: str
    pid: int
    port: int
    alive: bool


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_port(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the API server binds: connections of a stopped cluster in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            raise InputError(
                f"port {port} is in use; a cluster with a real node serves the API there",
                hint="stop the other cluster (`citykit cluster down`) or what listens on it",
            ) from None
    return port


def alive(pid: int, binary: str) -> bool:
    """True when `pid` runs `binary` (pids are reused, so the command line is checked)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return stat[0] != "Z" and Path(cmdline.decode(errors="replace")).name == binary


def stop(found: list[ComponentState], binaries: dict[str, str], directory: Path) -> None:
    """Stop `found` (last started first), each with its process group: SIGTERM, then SIGKILL for
    what still runs after 15 s; then anything else that runs from `directory`."""
    for component in reversed(found):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(component.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(
        alive(c.pid, binaries.get(c.name, c.name)) for c in found
    ):
        time.sleep(0.2)
    for component in found:
        if alive(component.pid, binaries.get(component.name, component.name)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(component.pid, signal.SIGKILL)
    for component in found:
        for _ in range(50):
            if not alive(component.pid, binaries.get(component.name, component.name)):
                break
            time.sleep(0.1)
    # Belt and braces: anything still running with this cluster's directory in its command
    # line is one of ours (a pid the state file lost, a process stuck in shutdown).
    for pid in strays(directory):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def strays(directory: Path) -> list[int]:
    """Processes (other than this one) whose command line names a file under `directory`."""
    marker = (str(directory) + "/").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
