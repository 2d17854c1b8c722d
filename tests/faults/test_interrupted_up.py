"""`citykit up` interrupted: by Ctrl-C, or by the API server or etcd killed while it runs. Each
case checks that citykit names what happened, then that a plain `citykit up` converges with
nothing lost (tests/faults/conftest.py: `converges`). Recovery times are printed (`-s`) for the
closing note of issue 15."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.faults import control_plane
from tests.faults.conftest import CLUSTER_NAME
from tests.faults.conftest import City
from tests.faults.conftest import decoded
from tests.faults.helpers import report
from tests.faults.helpers import up_in_background


def test_ctrl_c_during_up(city: City) -> None:
    before = city.credentials()
    locks = city.backend / "locks"
    process = up_in_background(city)  # the engine holds the stack's lock and is creating
    assert list(locks.rglob("*.json")), "up never took the stack lock"
    # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
    interrupted = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    stopped = time.monotonic() - interrupted
    assert process.returncode == 130, out + err
    assert "`citykit up` was interrupted" in err and "released the stack's lock" in err, err
    assert "Traceback" not in err, err
    assert not list(locks.rglob("*.json")), "the lock outlived the interrupted run"
    for value in decoded(before):
        assert value not in out + err
    report("Ctrl-C (time to stop)", stopped, err)
    report("Ctrl-C (the next up)", city.converges(before))


@pytest.mark.parametrize("process_name", ["kube-apiserver", "etcd"])
def test_control_plane_process_killed_during_up(city: City, process_name: str) -> None:
    """The process is killed while `up` creates Deployments and is back 8 s later, as a crashed
    static pod restarted by its kubelet. The outage stays under the node monitor's grace period:
    a longer one makes the controller-manager mark kwok's nodes and pods not Ready, which kwok
    (unlike a kubelet) never reverts."""
    before = city.credentials()
    cluster_dir = city.state / "clusters" / CLUSTER_NAME
    process = up_in_background(city)
    started = time.monotonic()
    argv = control_plane.kill(cluster_dir, process_name)
    time.sleep(8)
    control_plane.start(cluster_dir, process_name, argv)
    out, err = process.communicate(timeout=900)
    took = time.monotonic() - started
    assert "Traceback" not in err, err
    if process.returncode != 0:
        # Failing is allowed, silently failing is not: the failing resource and its cause.
        assert process.returncode == 1 and "error: failed at" in err, out + err
    else:
        assert "create" in out, out
    said = f"exit {process.returncode} after {took:.1f}s\n" + "\n".join(
        line for line in (out + err).splitlines() if "error" in line or "create" in line
    )
    report(f"{process_name} killed during up (that up)", took, said)
    report(f"{process_name} killed during up (the next up)", city.converges(before))
