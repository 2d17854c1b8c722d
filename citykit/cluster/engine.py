"""The container engine the kind provider runs on: the user's own Docker engine when one answers,
else citykit's own dockerd (engine_daemon.py), built from tools/moby with the runc of tools/runc.

citykit never starts or stops the user's engine; its own one it starts when a kind cluster needs
it and stops once no container is left in it. One engine per machine: a second dockerd would
fight the first over its iptables chains and the docker0 bridge, so a dockerd that runs without
answering is reported rather than started beside. The docker CLI is the machine's own. `docker
info` is the probe throughout, passed in (server_version by default) so tests replace it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass

from citykit import toolchain
from citykit.cluster import engine_daemon
from citykit.cluster import processes
from citykit.cluster.engine_daemon import Layout
from citykit.errors import CitykitError
from citykit.errors import InputError
from citykit.errors import OperationFailed
from citykit.errors import ToolMissing

TOOLS = ("dockerd", "docker-proxy", "runc")
# Debian's (scripts/system-deps): dockerd starts containerd itself and programs iptables.
HOST_BINARIES = ("containerd", "containerd-shim-runc-v2", "iptables")
KIND_NETWORK = "kind"  # the network kind makes for its nodes
PROBE_SECONDS = 5.0
START_SECONDS = 60.0
DOCKER_HINT = (
    "put a docker CLI on PATH: Debian's comes with `apt-get install docker.io` (whose own daemon, "
    "once running, is used instead of citykit's), or Docker's static CLI "
    "(https://download.docker.com/linux/static/stable/)"
)

Probe = Callable[[Mapping[str, str]], str | None]  # environment -> server version, or None
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Engine:
    """An engine that answers. `host` None: wherever the user's docker CLI points (DOCKER_HOST,
    its context or the default socket)."""

    host: str | None
    owned: bool  # citykit started it, so citykit stops it
    version: str

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        return engine_env(self.host, os.environ if base is None else base)

    def describe(self) -> str:
        if self.owned:
            return f"citykit's dockerd {self.version} at {self.host}"
        where = self.host or os.environ.get("DOCKER_HOST") or engine_daemon.DEFAULT_HOST
        return f"the user's Docker engine {self.version} at {where}"


def engine_env(host: str | None, base: Mapping[str, str]) -> dict[str, str]:
    """What `docker` and `kind` run with: the built tools first on PATH and, for a given host,
    DOCKER_HOST alone deciding the engine (a context or TLS settings would point elsewhere)."""
    env = toolchain.path_env(dict(base))
    if host is not None:
        env["DOCKER_HOST"] = host
        for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(name, None)
    return env


def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        raise ToolMissing(
            "the kind provider needs a docker CLI, which is not installed", hint=DOCKER_HINT
        )
    return found


def server_version(env: Mapping[str, str]) -> str | None:
    """`docker info`'s server version with this environment, None when no engine answers."""
    try:
        result = subprocess.run(
            [docker_cli(), "info", "--format", "{{.ServerVersion}}"],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = result.stdout.strip()
    return version if result.returncode == 0 and version else None


def running(probe: Probe = server_version) -> Engine | None:
    """The engine that answers now, without starting one: citykit's own when it runs (it holds
    the clusters citykit made there), else the user's."""
    where = engine_daemon.layout()
    if engine_daemon.our_pid(where) is not None:
        version = probe(engine_env(where.host, os.environ))
        if version:
            return Engine(where.host, True, version)
    version = probe(engine_env(None, os.environ))
    return Engine(None, False, version) if version else None


def obstacle() -> CitykitError | None:
    """Why citykit could not start its own engine here, or None."""
    where = engine_daemon.layout()
    try:
        docker_cli()
    except ToolMissing as error:
        return error
    others = engine_daemon.others(engine_daemon.our_pid(where))
    if others:
        pid, hosts = others[0]
        answering = os.environ.get("DOCKER_HOST") or engine_daemon.DEFAULT_HOST
        return InputError(
            f"a dockerd (pid {pid}) runs but does not answer `docker info` at {answering}",
            hint=f"export DOCKER_HOST={hosts[0]} to use it, or stop it: citykit starts no second "
            "engine beside it (the two would fight over iptables chains and the docker0 bridge)",
        )
    if os.geteuid() != 0:
        return ToolMissing(
            "no container engine answers, and citykit can start its own only as root",
            hint="start Docker (and export DOCKER_HOST if it does not serve the default socket), "
            "or run as root",
        )
    missing = [name for name in HOST_BINARIES if shutil.which(name) is None]
    if missing:
        return ToolMissing(
            f"citykit's container engine needs {', '.join(missing)}",
            hint="run scripts/system-deps (Debian: containerd iptables)",
        )
    if len(str(where.socket)) > engine_daemon.SOCKET_LIMIT:
        return OperationFailed(f"the engine socket path {where.socket} is too long for a socket")
    for name in TOOLS:
        if not toolchain.BY_NAME[name].built():
            return ToolMissing(
                f"no container engine answers, and citykit's own ({name}) is not built",
                hint="citykit tools install (or start Docker)",
            )
    return None


def working_engine(progress: Progress, probe: Probe = server_version) -> Engine:
    """An engine that answers: the running one (running()), else citykit's own, started now."""
    docker_cli()
    found = running(probe)
    if found is not None:
        progress(f"container engine: {found.describe()}")
        return found
    where = engine_daemon.layout()
    pid = engine_daemon.our_pid(where)
    if pid is not None:  # started a moment ago (by another citykit), not answering yet
        return _wait(where, pid, probe, None)
    problem = obstacle()
    if problem is not None:
        raise problem
    dockerd, proxy, runc = (toolchain.find(name) for name in TOOLS)
    progress(f"starting citykit's container engine (dockerd {toolchain.MOBY_VERSION}; {where.log})")
    process = engine_daemon.spawn(where, dockerd, proxy, runc)
    return _wait(where, process.pid, probe, process)


def holding(progress: Progress, probe: Probe = server_version) -> Engine | None:
    """The engine that may hold citykit's kind clusters, to delete one: the running one, else
    citykit's own started again when it has a data root (a stopped engine keeps its stopped
    containers), else None: then no kind cluster exists."""
    found = running(probe)
    if found is not None or not engine_daemon.layout().data_root.is_dir():
        return found
    return working_engine(progress, probe)


def _wait(where: Layout, pid: int, probe: Probe, process: subprocess.Popen[bytes] | None) -> Engine:
    env = engine_env(where.host, os.environ)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        version = probe(env)
        if version:
            return Engine(where.host, True, version)
        if process is not None:
            process.poll()  # reaped, so an exited daemon is no zombie that looks alive
        if not processes.alive(pid, "dockerd"):
            raise OperationFailed(
                "citykit's container engine (dockerd) exited:\n" + engine_daemon.tail(where.log),
                hint=f"its log: {where.log}",
            )
        time.sleep(0.5)
    if process is not None:  # started here and not answering: not left behind half-started
        engine_daemon.terminate(pid)
    raise OperationFailed(
        f"citykit's container engine did not answer in {START_SECONDS:.0f}s:\n"
        + engine_daemon.tail(where.log),
        hint=f"its log: {where.log}",
    )


def docker(
    env: Mapping[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The docker CLI against an engine (`Engine.env()`); the caller reads the result."""
    return subprocess.run(
        [docker_cli(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def containers(engine: Engine) -> list[str]:
    """The names of every container of the engine, running or not."""
    result = docker(engine.env(), "ps", "--all", "--format", "{{.Names}}")
    if result.returncode != 0:
        raise OperationFailed(f"`docker ps` failed: {result.stderr.strip()}")
    return result.stdout.split()


def release(engine: Engine, progress: Progress) -> None:
    """After a kind cluster is deleted: stop citykit's own engine unless it still holds
    containers (another kind cluster's); the user's is never stopped."""
    if not engine.owned:
        return
    left = containers(engine)
    if left:
        progress(f"citykit's container engine keeps running for {', '.join(left)}")
        return
    if stop():
        progress("stopped citykit's container engine (its images stay cached)")


def stop() -> bool:
    """Stop citykit's own engine, leaving nothing of it on the host: what kind leaves (its network
    once unused, the nodes' anonymous volumes) removed first, then the daemon, then the iptables
    chains it leaves on exit. The data root, with its cached images, stays. True when it ran; with
    nothing running it does nothing and says nothing, so it can be called again."""
    where = engine_daemon.layout()
    pid = engine_daemon.our_pid(where)
    exited = False
    if pid is not None:
        env = engine_env(where.host, os.environ)
        used = docker(env, "network", "inspect", KIND_NETWORK, "--format", "{{len .Containers}}")
        if used.returncode == 0 and used.stdout.strip() == "0":
            docker(env, "network", "rm", KIND_NETWORK)
        docker(env, "volume", "prune", "--force")  # anonymous volumes only (API >= 1.42)
        exited = engine_daemon.terminate(pid)
    engine_daemon.sweep(where)
    if owns_firewall(pid, exited, engine_daemon.firewall_sharers(pid) if exited else []):
        engine_daemon.remove_firewall()
    return pid is not None


def owns_firewall(ours: int | None, exited: bool, sharers: list[int]) -> bool:
    """Whether dockerd's chains are citykit's to remove: only after citykit's own dockerd (`ours`,
    found running by its pidfile) has exited, and while no other dockerd of this network namespace
    (`sharers`) uses the same chains. Never for the user's engine, nor with none running: chains
    found then may be another dockerd's."""
    return ours is not None and exited and not sharers
