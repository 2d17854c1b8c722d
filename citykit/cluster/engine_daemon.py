"""citykit's own dockerd as a process (engine.py decides when it runs): where its files are, its
command line and environment, finding it (and any other dockerd) again, stopping it.

Its images stay cached in `<state>/engine/data` between clusters; its exec root, socket and
pidfile live under /run/citykit-engine, since a unix socket path must fit in 108 bytes and the
state directory can be anywhere (a test's temporary directory). Like the local cluster's
processes it runs detached, and a pid counts as its only while that pid runs `dockerd`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from citykit import paths
from citykit import toolchain
from citykit.cluster import processes

RUN_DIR = Path("/run/citykit-engine")
SOCKET_LIMIT = 107  # sun_path is 108 bytes, the terminating NUL included
RUNTIME = "citykit-runc"  # the built runc, registered under its own name and made the default
DEFAULT_HOST = "unix:///var/run/docker.sock"  # dockerd's and the docker CLI's default
STOP_SECONDS = 30.0  # dockerd stops its containers first (15 s each at most)


@dataclass(frozen=True)
class Layout:
    data_root: Path
    exec_root: Path
    socket: Path
    pidfile: Path
    log: Path

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


def layout() -> Layout:
    state = paths.state_dir() / "engine"
    return Layout(
        data_root=state / "data",
        exec_root=RUN_DIR / "exec",
        socket=RUN_DIR / "docker.sock",
        pidfile=RUN_DIR / "dockerd.pid",
        log=state / "dockerd.log",
    )


def command(where: Layout, dockerd: Path, proxy: Path, runc: Path) -> list[str]:
    """dockerd refuses to start without its userland proxy; it starts Debian's containerd itself,
    and runs containers with the built runc."""
    flags = {
        "--data-root": str(where.data_root),
        "--exec-root": str(where.exec_root),
        "--pidfile": str(where.pidfile),
        "-H": where.host,
        "--userland-proxy-path": str(proxy),
        "--add-runtime": f"{RUNTIME}={runc}",
        "--default-runtime": RUNTIME,
    }
    return [str(dockerd), *(part for flag, value in flags.items() for part in (flag, value))]


def environment(runc: Path, base: Mapping[str, str]) -> dict[str, str]:
    """dockerd's: the built tools first on PATH, the built runc before them, so whatever dockerd
    and its containerd look up as `runc` is that one too."""
    env = toolchain.path_env(dict(base))
    env["PATH"] = f"{runc.parent}{os.pathsep}{env['PATH']}"
    return env


def hosts(argv: list[str]) -> list[str]:
    """The addresses a dockerd command line (without argv[0]) serves, else dockerd's default."""
    found = []
    for index, arg in enumerate(argv):
        for flag in ("-H", "--host"):
            if arg == flag and index + 1 < len(argv):
                found.append(argv[index + 1])
            elif arg.startswith(f"{flag}="):
                found.append(arg.split("=", 1)[1])
    return found or [DEFAULT_HOST]


def our_pid(where: Layout) -> int | None:
    try:
        pid = int(where.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if processes.alive(pid, "dockerd") else None


def others(ours: int | None) -> list[tuple[int, list[str]]]:
    """Every other running dockerd: (pid, the addresses it serves)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == ours:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if Path(argv[0]).name == "dockerd" and processes.alive(int(entry.name), "dockerd"):
            found.append((int(entry.name), hosts(argv[1:])))
    return found


def spawn(where: Layout, dockerd: Path, proxy: Path, runc: Path) -> subprocess.Popen[bytes]:
    where.data_root.mkdir(parents=True, exist_ok=True)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    where.pidfile.unlink(missing_ok=True)  # a dead daemon's: dockerd refuses a live one's
    with where.log.open("ab") as log:
        return subprocess.Popen(
            command(where, dockerd, proxy, runc),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command, as the local cluster does
            env=environment(runc, os.environ),
        )


def terminate(pid: int) -> None:
    """SIGTERM, then SIGKILL to its process group after STOP_SECONDS."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and processes.alive(pid, "dockerd"):
        time.sleep(0.2)
    if processes.alive(pid, "dockerd"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def sweep(where: Layout) -> None:
    """dockerd starts containerd in a session of its own and stops it on the way out; what still
    runs from the exec root after a while (a killed daemon's containerd and shims) is killed."""
    deadline = time.monotonic() + 10
    while processes.strays(RUN_DIR) and time.monotonic() < deadline:
        time.sleep(0.2)
    for stray in processes.strays(RUN_DIR):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(stray, signal.SIGKILL)
    where.pidfile.unlink(missing_ok=True)


def tail(log: Path, lines: int = 10) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
