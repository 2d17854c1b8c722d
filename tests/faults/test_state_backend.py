"""Faults of the state backend: a wrong passphrase, a corrupt state file, a full disk. Each case
checks that citykit names what happened, then that a plain `citykit up` converges with nothing
lost (tests/faults/conftest.py: `converges`). Recovery times are printed (`-s`) for the closing
note of issue 15."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time

from tests.faults.conftest import City
from tests.faults.helpers import backend_on_tmpfs
from tests.faults.helpers import report
from tests.faults.helpers import state_files
from tests.faults.helpers import up_in_background


def test_wrong_passphrase_changes_nothing(city: City) -> None:
    before = city.credentials()
    state = state_files(city)
    failed = city.citykit("up", "--yes", expect=2, env={"PULUMI_CONFIG_PASSPHRASE": "wrong"})
    assert "PULUMI_CONFIG_PASSPHRASE does not decrypt" in failed.stderr, failed.stderr
    assert state_files(city) == state, "a wrong passphrase wrote state"
    report("wrong passphrase", city.converges(before), failed.stderr)


def test_corrupt_state_is_restored(city: City) -> None:
    before = city.credentials()
    state = city.backend / "stacks" / "citykit" / "yuhang-faults.json"
    content = state.read_bytes()
    state.write_bytes(content[: len(content) // 2])
    started = time.monotonic()
    restored = city.citykit("up", "--yes", timeout=1500)
    took = time.monotonic() - started
    assert "was unreadable; restored it from the backend's copy" in restored.stdout, (
        restored.stdout + restored.stderr
    )
    assert json.loads(state.read_text())["checkpoint"]["stack"]
    assert list(state.parent.glob("yuhang-faults.json.corrupt-*"))
    said = [line for line in restored.stdout.splitlines() if "unreadable" in line]
    report("corrupt state (the restoring up)", took, "\n".join(said))
    report("corrupt state (the next up)", city.converges(before))


def test_state_backend_disk_full(city: City) -> None:
    before = city.credentials()
    with backend_on_tmpfs(city, spare=512 * 1024) as backend:
        # Too little room for this stack's state: refused before anything changes.
        state = state_files(city)
        refused = city.citykit("up", "--yes", expect=2)
        assert f"the state backend {backend} has" in refused.stderr, refused.stderr
        assert "nothing was changed" in refused.stderr
        assert state_files(city) == state
        # Room enough when `up` starts, then the disk fills while it runs.
        subprocess.run(["mount", "-o", "remount,size=256m", str(backend)], check=True)
        process = up_in_background(city)
        filler = backend / "filler"
        with filler.open("wb") as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * (1 << 20))
        out_text, err = process.communicate(timeout=900)
        assert process.returncode == 1, out_text + err
        assert f"the state backend {backend} ran out of space" in err, err
        assert "Traceback" not in err, err
        report("backend full during up", 0, err)
        filler.unlink()
        started = time.monotonic()
        restored = city.citykit("up", "--yes", timeout=1500)
        took = time.monotonic() - started
        said = "\n".join(line for line in restored.stdout.splitlines() if "state" in line)
        report("backend full (the next up, space freed)", took, said)
    report("backend full (then a plain up)", city.converges(before))
