"""The kind provider's container engine (citykit/cluster/engine.py, engine_daemon.py) without an
engine: dockerd's command line and environment, which engine is used, started or stopped, and
what stopping takes back from the host (dockerd's iptables chains, the daemon's process), with
`docker info` (the probe), the daemon's pids, its start and the firewall replaced."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from citykit import toolchain
from citykit.cluster import engine
from citykit.cluster import engine_daemon
from citykit.cluster import processes
from citykit.errors import InputError
from citykit.errors import OperationFailed
from citykit.errors import ToolMissing

USER_VERSION = "28.2.2"
OUR_VERSION = "2.0.0-beta.24"


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine with a docker CLI, citykit's run directory under tmp_path, no dockerd running
    and no sleeping."""
    monkeypatch.setattr(engine_daemon, "RUN_DIR", tmp_path / "run")
    monkeypatch.setenv("CITYKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(processes, "alive", lambda pid, binary: False)
    monkeypatch.setattr(engine_daemon, "others", lambda ours: [])
    monkeypatch.setattr(engine.time, "sleep", lambda seconds: None)
    return tmp_path


def answering(user: bool, ours: bool) -> engine.Probe:
    """`docker info` answering for the user's engine (no DOCKER_HOST) and/or citykit's socket."""

    def probe(env: Mapping[str, str]) -> str | None:
        if env.get("DOCKER_HOST") == engine_daemon.layout().host:
            return OUR_VERSION if ours else None
        return USER_VERSION if user else None

    return probe


def ours_running(monkeypatch: pytest.MonkeyPatch, pid: int = 4242) -> None:
    where = engine_daemon.layout()
    where.pidfile.parent.mkdir(parents=True, exist_ok=True)
    where.pidfile.write_text(f"{pid}\n")
    monkeypatch.setattr(processes, "alive", lambda p, binary: p == pid and binary == "dockerd")


def no_start(*args: object) -> None:
    raise AssertionError("no engine may be started")


# -- the pure parts -----------------------------------------------------------------------------


def test_dockerd_command_line(host: Path) -> None:
    where = engine_daemon.layout()
    bins = Path("/cache/bin")
    argv = engine_daemon.command(where, bins / "dockerd", bins / "docker-proxy", bins / "runc")
    run = host / "run"
    assert argv == [
        "/cache/bin/dockerd",
        *("--bridge", "none"),  # no docker0, which would outlive the daemon
        *("--data-root", str(host / "state" / "engine" / "data")),
        *("--exec-root", str(run / "exec")),
        *("--pidfile", str(run / "dockerd.pid")),
        *("-H", f"unix://{run}/docker.sock"),
        *("--userland-proxy-path", "/cache/bin/docker-proxy"),
        *("--add-runtime", "citykit-runc=/cache/bin/runc"),
        *("--default-runtime", "citykit-runc"),
        "--ip-forward-no-drop",  # the host's FORWARD policy stays as it was
    ]
    assert where.log == host / "state" / "engine" / "dockerd.log"


def test_the_real_socket_path_fits_a_unix_socket() -> None:
    socket = engine_daemon.RUN_DIR / "docker.sock"
    assert str(socket) == "/run/citykit-engine/docker.sock"
    assert len(str(socket)) <= engine_daemon.SOCKET_LIMIT


def test_environments(host: Path) -> None:
    base = {"PATH": "/usr/bin", "DOCKER_CONTEXT": "remote", "DOCKER_TLS_VERIFY": "1", "HOME": "/h"}
    ours = engine.engine_env("unix:///run/x.sock", base)
    assert ours["DOCKER_HOST"] == "unix:///run/x.sock" and ours["HOME"] == "/h"
    assert "DOCKER_CONTEXT" not in ours and "DOCKER_TLS_VERIFY" not in ours
    assert ours["PATH"] == f"{toolchain.bin_dir()}:/usr/bin"
    user = engine.engine_env(None, base)  # the user's CLI keeps its own settings
    assert user["DOCKER_CONTEXT"] == "remote" and "DOCKER_HOST" not in user
    daemon = engine_daemon.environment(Path("/cache/runc-v1/runc"), base)
    assert daemon["PATH"] == f"/cache/runc-v1:{toolchain.bin_dir()}:/usr/bin"


@pytest.mark.parametrize(
    ("argv", "hosts"),
    [
        (
            ["-H", "unix:///tmp/eng/docker.sock", "--data-root", "/d"],
            ["unix:///tmp/eng/docker.sock"],
        ),
        (["--host=tcp://127.0.0.1:2375", "-H=unix:///a"], ["tcp://127.0.0.1:2375", "unix:///a"]),
        (["--data-root", "/d"], ["unix:///var/run/docker.sock"]),
    ],
)
def test_the_addresses_of_another_dockerd(argv: list[str], hosts: list[str]) -> None:
    assert engine_daemon.hosts(argv) == hosts


# -- which engine -------------------------------------------------------------------------------


def test_the_users_engine_is_used_and_never_stopped(host: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine_daemon, "spawn", no_start)
    monkeypatch.setattr(engine, "stop", no_start)
    found = engine.working_engine(lambda text: None, answering(user=True, ours=False))
    assert found == engine.Engine(None, False, USER_VERSION)
    engine.release(found, lambda text: None)


def test_citykits_running_engine_is_reused(host: Path, monkeypatch) -> None:
    ours_running(monkeypatch)
    monkeypatch.setattr(engine_daemon, "spawn", no_start)
    found = engine.working_engine(lambda text: None, answering(user=True, ours=True))
    assert found.owned and found.host == engine_daemon.layout().host
    assert found.env()["DOCKER_HOST"] == found.host


def test_nothing_answers(host: Path) -> None:
    assert engine.running(answering(user=False, ours=False)) is None
    # A pidfile whose process is gone is no engine either.
    where = engine_daemon.layout()
    where.pidfile.parent.mkdir(parents=True)
    where.pidfile.write_text("4242")
    assert engine.running(answering(user=False, ours=True)) is None


def test_citykits_engine_is_started_when_none_answers(host: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine, "obstacle", lambda: None)
    monkeypatch.setattr(toolchain, "find", lambda name: Path(f"/cache/{name}"))
    started: list[list[str]] = []

    class Daemon:
        pid = 4242

        def poll(self) -> None:
            return None

    def spawn(where, dockerd, proxy, runc):
        started.append(engine_daemon.command(where, dockerd, proxy, runc))
        ours_running(monkeypatch)
        return Daemon()

    monkeypatch.setattr(engine_daemon, "spawn", spawn)
    calls = []

    def probe(env: Mapping[str, str]) -> str | None:
        calls.append(env.get("DOCKER_HOST"))
        # Answers at its socket on the third try, after dockerd has started containerd.
        ours = env.get("DOCKER_HOST") == engine_daemon.layout().host and len(calls) > 3
        return OUR_VERSION if ours else None

    lines: list[str] = []
    found = engine.working_engine(lines.append, probe)
    assert found == engine.Engine(engine_daemon.layout().host, True, OUR_VERSION)
    assert started[0][:1] == ["/cache/dockerd"] and "starting citykit's" in lines[0]


def test_a_daemon_that_exits_is_reported_with_its_log(host: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine, "obstacle", lambda: None)
    monkeypatch.setattr(toolchain, "find", lambda name: Path(f"/cache/{name}"))

    class Dead:
        pid = 4242

        def poll(self) -> int:
            return 1

    def spawn(where, dockerd, proxy, runc):
        where.log.parent.mkdir(parents=True, exist_ok=True)
        where.log.write_text("starting\nfailed to start daemon: iptables not found\n")
        return Dead()

    monkeypatch.setattr(engine_daemon, "spawn", spawn)
    with pytest.raises(OperationFailed) as error:
        engine.working_engine(lambda text: None, answering(user=False, ours=False))
    assert "iptables not found" in error.value.message
    assert str(engine_daemon.layout().log) in error.value.hint


def test_another_dockerd_that_does_not_answer_is_named(host: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine_daemon, "others", lambda ours: [(3968, ["unix:///tmp/eng.sock"])])
    monkeypatch.setattr(engine_daemon, "spawn", no_start)
    with pytest.raises(InputError) as error:
        engine.working_engine(lambda text: None, answering(user=False, ours=False))
    assert error.value.exit_code == 2 and "pid 3968" in error.value.message
    assert "export DOCKER_HOST=unix:///tmp/eng.sock" in error.value.hint


def test_without_a_docker_cli(host: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissing) as error:
        engine.working_engine(lambda text: None, answering(user=True, ours=False))
    assert "docker CLI" in error.value.message and "docker.io" in error.value.hint
    assert error.value.exit_code == 2


def test_an_unbuilt_engine_says_how_to_build_it(host: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine.os, "geteuid", lambda: 0)
    problem = engine.obstacle()
    assert isinstance(problem, ToolMissing) and "citykit tools install" in problem.hint


def test_only_an_idle_engine_of_citykits_is_stopped(host: Path, monkeypatch) -> None:
    stopped: list[bool] = []
    monkeypatch.setattr(engine, "stop", lambda: stopped.append(True))
    ours = engine.Engine("unix:///run/citykit-engine/docker.sock", True, OUR_VERSION)
    lines: list[str] = []
    monkeypatch.setattr(engine, "containers", lambda found: ["other-control-plane"])
    engine.release(ours, lines.append)
    assert not stopped and "other-control-plane" in lines[-1]
    monkeypatch.setattr(engine, "containers", lambda found: [])
    engine.release(ours, lines.append)
    assert stopped == [True]


def test_deleting_without_any_engine_starts_none(host: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine, "working_engine", no_start)
    assert engine.holding(lambda text: None, answering(user=False, ours=False)) is None


# -- what stopping takes back -------------------------------------------------------------------

# `iptables-save -t <table>` after a kind cluster on citykit's dockerd, beside the real node's
# chains (KUBE-*, its FORWARD rule) and another program's chain whose name starts with DOCKER.
SAVED = {
    ("iptables", "filter"): """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-BRIDGE - [0:0]
:DOCKER-CT - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-INTERNAL - [0:0]
:DOCKER-OTHER - [0:0]
:DOCKER-USER - [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -j DOCKER-OTHER
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-FORWARD
-A FORWARD -i citykit0 -o citykit0 -m comment --comment "citykit real node" -j ACCEPT
-A DOCKER ! -i br-0123456789ab -o br-0123456789ab -j DROP
-A DOCKER-BRIDGE -o br-0123456789ab -j DOCKER
-A DOCKER-FORWARD -j DOCKER-CT
-A DOCKER-FORWARD -j DOCKER-INTERNAL
-A DOCKER-FORWARD -j DOCKER-BRIDGE
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -j DROP
COMMIT
""",
    ("iptables", "nat"): """\
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
COMMIT
""",
    # The user's own rule in DOCKER-USER (moby never deletes that chain): it stays, and its jump.
    ("ip6tables", "filter"): """\
*filter
:FORWARD ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-FORWARD
-A DOCKER-USER -s 2001:db8::/32 -j DROP
COMMIT
""",
}


def test_the_firewall_cleanup_takes_dockerds_chains_and_nothing_else() -> None:
    def saved(command: str, table: str) -> list[str]:
        return SAVED.get((command, table), "").splitlines()  # ip6tables' nat: no chains at all

    commands = [" ".join(argv) for argv in engine_daemon.firewall_cleanup(saved)]
    ours = ["DOCKER", "DOCKER-BRIDGE", "DOCKER-CT", "DOCKER-FORWARD", "DOCKER-INTERNAL"]
    assert commands == [
        "iptables -t filter -D FORWARD -j DOCKER-USER",
        "iptables -t filter -D FORWARD -j DOCKER-FORWARD",
        *(f"iptables -t filter -F {chain}" for chain in [*ours, "DOCKER-USER"]),
        *(f"iptables -t filter -X {chain}" for chain in [*ours, "DOCKER-USER"]),
        "iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "iptables -t nat -D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
        "iptables -t nat -F DOCKER",
        "iptables -t nat -X DOCKER",
        "ip6tables -t filter -D FORWARD -j DOCKER-FORWARD",
        "ip6tables -t filter -F DOCKER",
        "ip6tables -t filter -F DOCKER-FORWARD",
        "ip6tables -t filter -X DOCKER",
        "ip6tables -t filter -X DOCKER-FORWARD",
    ]
    assert engine_daemon.firewall_cleanup(lambda command, table: []) == []


@pytest.mark.parametrize(
    ("ours", "exited", "sharers", "removed"),
    [
        (4242, True, [], True),  # citykit's own dockerd, stopped now, alone on the host
        (4242, False, [], False),  # still running: its chains are in use
        (4242, True, [3968], False),  # another dockerd of this network namespace uses them too
        (None, False, [], False),  # none of citykit's ran: the chains may be the user's engine's
    ],
)
def test_only_citykits_own_stopped_engine_takes_the_chains(
    ours: int | None, exited: bool, sharers: list[int], removed: bool
) -> None:
    assert engine.owns_firewall(ours, exited, sharers) is removed


class Host:
    """What stop() did: docker commands, daemons terminated, firewall cleanups."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, sharers: list[int]) -> None:
        self.docker: list[tuple[str, ...]] = []
        self.terminated: list[int] = []
        self.firewall = 0
        monkeypatch.setattr(engine, "docker", self._docker)
        monkeypatch.setattr(engine_daemon, "terminate", self._terminate)
        monkeypatch.setattr(engine_daemon, "firewall_sharers", lambda ours: sharers)
        monkeypatch.setattr(engine_daemon, "remove_firewall", self._remove_firewall)
        self.monkeypatch = monkeypatch

    def _docker(self, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        self.docker.append(args)
        return subprocess.CompletedProcess(["docker", *args], 0, "0\n", "")

    def _terminate(self, pid: int) -> bool:
        self.terminated.append(pid)
        self.monkeypatch.setattr(processes, "alive", lambda p, binary: False)
        return True

    def _remove_firewall(self) -> None:
        self.firewall += 1


def test_stopping_citykits_engine_takes_back_its_chains_once(host: Path, monkeypatch) -> None:
    ours_running(monkeypatch)
    done = Host(monkeypatch, sharers=[])
    assert engine.stop() is True
    assert done.terminated == [4242] and done.firewall == 1
    assert ("network", "rm", "kind") in done.docker
    assert not engine_daemon.layout().pidfile.exists()
    # Again, with nothing running: nothing done, nothing said.
    done.docker.clear()
    lines: list[str] = []
    monkeypatch.setattr(engine, "containers", lambda found: [])
    engine.release(engine.Engine(engine_daemon.layout().host, True, OUR_VERSION), lines.append)
    assert engine.stop() is False
    assert done.docker == [] and done.terminated == [4242] and done.firewall == 1 and lines == []


def test_chains_another_dockerd_uses_stay(host: Path, monkeypatch) -> None:
    ours_running(monkeypatch)
    done = Host(monkeypatch, sharers=[3968])
    assert engine.stop() is True
    assert done.terminated == [4242] and done.firewall == 0


def test_stopping_with_nothing_running_needs_no_docker(host: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)  # not even a docker CLI
    done = Host(monkeypatch, sharers=[])
    assert engine.stop() is False and engine.stop() is False
    assert done.docker == [] and done.terminated == [] and done.firewall == 0


def test_a_daemon_started_here_is_reaped_when_stopped(host: Path) -> None:
    """A stand-in for dockerd (a script that sleeps), started by spawn as the real one is: once
    terminated it is gone from /proc, no zombie left."""
    fake = host / "bin" / "dockerd"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    where = engine_daemon.layout()
    process = engine_daemon.spawn(where, fake, fake, fake)
    assert engine_daemon.terminate(process.pid) is True
    assert process.returncode is not None  # reaped by terminate's wait
    assert not Path(f"/proc/{process.pid}").exists()
