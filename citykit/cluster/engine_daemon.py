"""citykit's own dockerd as a process (engine.py decides when it runs): where its files are, its
command line and environment, finding it (and any other dockerd) again, stopping it.

Its images stay cached in `<state>/engine/data` between clusters; its exec root, socket and
pidfile live under /run/citykit-engine, since a unix socket path must fit in 108 bytes and the
state directory can be anywhere (a test's temporary directory). Like the local cluster's
processes it runs detached, and a pid counts as its only while that pid runs `dockerd`.

What it puts on the host it takes back when it stops: it makes no docker0 bridge (`--bridge=none`),
and the iptables chains dockerd leaves on exit are removed (remove_firewall) once it has exited."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from citykit import paths
from citykit import toolchain
from citykit.cluster import node_teardown
from citykit.cluster import processes
from citykit.cluster.node_host import run

RUN_DIR = Path("/run/citykit-engine")
SOCKET_LIMIT = 107  # sun_path is 108 bytes, the terminating NUL included
RUNTIME = "citykit-runc"  # the built runc, registered under its own name and made the default
DEFAULT_HOST = "unix:///var/run/docker.sock"  # dockerd's and the docker CLI's default
STOP_SECONDS = 30.0  # dockerd stops its containers first (15 s each at most)
KILL_SECONDS = 10.0  # after SIGKILL, for the kernel to take the process down
REAP_SECONDS = 5.0  # for another process's exited child to be reaped by its parent (or init)
# Every chain dockerd makes in iptables and ip6tables and leaves there when it exits: moby
# v2.0.0-beta.24's daemon/libnetwork/drivers/bridge/internal/iptabler/iptabler.go (DOCKER in
# filter and nat; DOCKER-FORWARD, -BRIDGE, -CT, -INTERNAL, -ISOLATION-STAGE-1/-2 in filter),
# daemon/libnetwork/firewall_linux.go (DOCKER-USER) and the obsolete ones moby itself removes
# on start (iptabler/network.go's removeIPChains: DOCKER-ISOLATION, DOCKER-INGRESS). Names, not
# a prefix: other software's chains may start with DOCKER too.
DOCKER_CHAINS = frozenset(
    {
        "DOCKER",
        "DOCKER-FORWARD",
        "DOCKER-BRIDGE",
        "DOCKER-CT",
        "DOCKER-INTERNAL",
        "DOCKER-ISOLATION-STAGE-1",
        "DOCKER-ISOLATION-STAGE-2",
        "DOCKER-USER",
        "DOCKER-ISOLATION",
        "DOCKER-INGRESS",
    }
)
# Where the user puts rules of their own for their Docker (moby never deletes it): kept with any.
USER_CHAIN = "DOCKER-USER"
DOCKER_TABLES = ("filter", "nat")  # the only tables moby makes chains in
FIREWALLS = ("iptables", "ip6tables")  # dockerd programs both (--ip6tables is on by default)
# The dockerds this process started, so stopping one reaps it rather than leaving a zombie.
_children: dict[int, subprocess.Popen[bytes]] = {}


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
    and runs containers with the built runc. No default bridge: kind makes a network of its own,
    and docker0 would outlive the daemon (`none` is moby's config.DisableNetworkBridge, which
    also deletes a docker0 an earlier run left)."""
    flags = {
        "--bridge": "none",
        "--data-root": str(where.data_root),
        "--exec-root": str(where.exec_root),
        "--pidfile": str(where.pidfile),
        "-H": where.host,
        "--userland-proxy-path": str(proxy),
        "--add-runtime": f"{RUNTIME}={runc}",
        "--default-runtime": RUNTIME,
    }
    # When dockerd turns on IP forwarding it also sets the host's FORWARD policy to DROP, which
    # would cut the real node's pods off (their bridged traffic crosses FORWARD) and outlive us.
    return [
        str(dockerd),
        *(part for flag, value in flags.items() for part in (flag, value)),
        "--ip-forward-no-drop",
    ]


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
        process = subprocess.Popen(
            command(where, dockerd, proxy, runc),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command, as the local cluster does
            env=environment(runc, os.environ),
        )
    _children[process.pid] = process
    return process


def terminate(pid: int) -> bool:
    """SIGTERM, then SIGKILL to its process group after STOP_SECONDS; True once it has exited.
    Reaped when this process started it, else waited for until its parent (init, or the
    citykit that started it) has reaped it."""
    child = _children.pop(pid, None)
    if child is not None and child.poll() is not None:
        child = None  # reaped already (a start that failed): the pid may be another's by now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    if _exits(pid, child, STOP_SECONDS):
        return True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    return _exits(pid, child, KILL_SECONDS)


def _exits(pid: int, child: subprocess.Popen[bytes] | None, seconds: float) -> bool:
    if child is not None:
        try:
            child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + seconds
    while processes.alive(pid, "dockerd"):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    # Exited (alive() counts a zombie as exited): not ours to reap, so give its parent a moment.
    deadline = time.monotonic() + REAP_SECONDS
    while _listed(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


def _listed(pid: int) -> bool:
    """Whether /proc still lists `pid` as a dockerd, a zombie included (its command line is
    gone then, its name in stat is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(" (", 1)[-1].rsplit(")", 1)[0] == "dockerd"


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


def firewall_sharers(ours: int | None) -> list[int]:
    """The other dockerds in this process's network namespace, whose chains are the same
    DOCKER_CHAINS (one whose namespace cannot be read counts as sharing)."""
    mine = _netns("self")
    return [pid for pid, _ in others(ours) if mine is None or _netns(str(pid)) in (mine, None)]


def _netns(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def firewall_cleanup(saved: Callable[[str, str], list[str]]) -> list[list[str]]:
    """The commands that remove DOCKER_CHAINS and every jump into them, in iptables and
    ip6tables, from `saved(command, table)`: that table's `<command>-save` lines."""
    commands: list[list[str]] = []
    for command in FIREWALLS:
        for table in DOCKER_TABLES:
            lines = saved(command, table)
            ours = DOCKER_CHAINS - {USER_CHAIN} if _user_rules(lines) else DOCKER_CHAINS
            commands += node_teardown.chain_commands(command, table, lines, ours.__contains__)
    return commands


def _user_rules(saved: list[str]) -> bool:
    """Whether USER_CHAIN holds rules besides the RETURN older dockerds put there: the user's."""
    rules = [line for line in saved if line.startswith(f"-A {USER_CHAIN} ")]
    return any(line != f"-A {USER_CHAIN} -j RETURN" for line in rules)


def remove_firewall() -> None:
    """Remove dockerd's chains; only once citykit's own dockerd has exited and no other
    shares them (engine.py decides). Each command may fail harmlessly (a rule already gone)."""

    def saved(command: str, table: str) -> list[str]:
        if shutil.which(f"{command}-save") is None:
            return []
        return run(f"{command}-save", "-t", table, check=False).stdout.splitlines()

    for argv in firewall_cleanup(saved):
        run(*argv, check=False)


def tail(log: Path, lines: int = 10) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
