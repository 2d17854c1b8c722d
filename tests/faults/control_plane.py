"""Kill one process of the local control plane and start it again, as a crashed static pod is
restarted by its kubelet: same binary, same arguments, same ports and data directory. The
cluster's state file gets the new pid, so `citykit cluster down` still stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from citykit import toolchain

# Started processes outlive their Popen objects (the cluster's `down` stops them by pid); kept
# here so they are never collected while running, which Python reports as a ResourceWarning.
_STARTED: list[subprocess.Popen[bytes]] = []


def command_line(pid: int) -> list[str]:
    return [part.decode() for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]


def kill(cluster_dir: Path, name: str) -> list[str]:
    """SIGKILL the control-plane process `name`; returns its command line, to start it again."""
    pid = json.loads((cluster_dir / "state.json").read_text())["pids"][name]
    argv = command_line(pid)
    os.kill(pid, signal.SIGKILL)
    while Path(f"/proc/{pid}").exists() and state_files(pid) not in ("Z", "X"):
        time.sleep(0.05)
    return argv


def start(cluster_dir: Path, name: str, argv: list[str]) -> int:
    state_file = cluster_dir / "state.json"
    with (cluster_dir / "logs" / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cluster_dir,
            start_new_session=True,
            env=toolchain.path_env(),
        )
    _STARTED.append(process)
    state = json.loads(state_file.read_text())
    state["pids"][name] = process.pid
    state_file.write_text(json.dumps(state, indent=2))
    return process.pid


def state_files(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"
