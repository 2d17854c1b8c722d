"""What the fault cases share: the recovery report, the state backend's content, broken
kubeconfigs, an `up` running in the background, a backend on a small tmpfs and protected data."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.faults.conftest import CLI
from tests.faults.conftest import City


def report(case: str, seconds: float, said: str = "") -> None:
    """For the closing note: what citykit said, and how long recovery took."""
    print(f"\nRECOVERY {case}: {seconds:.1f}s")
    for line in said.strip().splitlines():
        print(f"  said: {line}")


def state_files(city: City) -> dict[str, str]:
    """Every file of the state backend and the stack's workspace (its encrypted config), with a
    hash of its content: what a command wrote. The engine's own logs are not state."""
    pulumi = city.state / "pulumi"
    return {
        str(p.relative_to(pulumi)): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in (pulumi / "backend", pulumi / "stacks")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def kubeconfig_with(city: City, tmp: Path, change: dict[str, object]) -> Path:
    """A copy of the cluster's kubeconfig with top-level fields or the user replaced."""
    data = yaml.safe_load(city.cluster.kubeconfig.read_text())
    user = change.pop("user", None)
    data |= change
    if user is not None:
        data["users"][0]["user"] = user
    path = tmp / "kubeconfig"
    path.write_text(yaml.safe_dump(data))
    return path


def up_in_background(city: City) -> subprocess.Popen[str]:
    """`citykit up` with work to do (every Deployment of the city re-created and awaited),
    returned once the engine is creating them."""
    city.cluster.kubectl(
        "delete", "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
    )
    process = subprocess.Popen(
        [*CLI, "up", *city.args, "--yes"],
        env=city.cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while (
        time.monotonic() < deadline
        and process.poll() is None
        and not city.cluster.get_json(
            "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
        )["items"]
    ):
        time.sleep(0.2)
    assert process.poll() is None, "up ended before it created anything"
    return process


@contextmanager
def backend_on_tmpfs(city: City, spare: int) -> Iterator[Path]:
    """The state backend moved onto a tmpfs with `spare` bytes free beyond what it holds; put
    back on disk afterwards, with whatever the runs wrote."""
    backend = city.state / "pulumi" / "backend"
    saved = city.state / "backend.on-disk"
    shutil.copytree(backend, saved, symlinks=True)
    used = sum(p.stat().st_size for p in backend.rglob("*") if p.is_file())
    size_kib = (used + spare) // 1024 + 64
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(backend)])
    try:
        shutil.copytree(saved, backend, symlinks=True, dirs_exist_ok=True)
        yield backend
    finally:
        shutil.rmtree(saved)
        shutil.copytree(backend, saved, symlinks=True)
        subprocess.run(["umount", str(backend)], check=True)
        shutil.rmtree(backend)
        saved.rename(backend)


@contextmanager
def protected(city: City) -> Iterator[None]:
    """The tier's environment with protectData on, as staging and prod have it."""
    original = city.environment.read_text()
    data = yaml.safe_load(original)
    city.environment.write_text(yaml.safe_dump(data | {"protectData": True}))
    try:
        yield
    finally:
        city.environment.write_text(original)
