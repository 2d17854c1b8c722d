"""The kind provider's container engine (citykit/cluster/engine.py, engine_daemon.py) without an
engine: dockerd's command line and environment, and which engine is used, started or stopped,
with `docker info` (the probe), the daemon's pids and its start replaced."""

from __future__ import annotations

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
        *("--data-root", str(host / "state" / "engine" / "data")),
        *("--exec-root", str(run / "exec")),
        *("--pidfile", str(run / "dockerd.pid")),
        *("-H", f"unix://{run}/docker.sock"),
        *("--userland-proxy-path", "/cache/bin/docker-proxy"),
        *("--add-runtime", "citykit-runc=/cache/bin/runc"),
        *("--default-runtime", "citykit-runc"),
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
