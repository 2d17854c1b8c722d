"""The Debian side of image builds: this machine's archive, the cached bookworm minbase root and
running commands inside a root (chroot, /proc mounted only while a build runs).

Images use the archive this machine is configured for (its deb.debian.org entries, bookworm,
bookworm-updates, bookworm-security), so they build wherever the machine itself can install
packages. The debootstrap base takes about a minute; it is made once, brought up to date
with the security archive, and copied for every image."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from citykit import paths
from citykit.errors import OperationFailed
from citykit.errors import ToolMissing

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_VERSION = "1"  # bump when the base root's recipe changes
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Services must never start inside a build root (postinst scripts call invoke-rc.d).
POLICY_RC_D = "#!/bin/sh\n# citykit image build: no service starts in a build root\nexit 101\n"
# Keep the images small: no manuals, no translations, no docs but the licences.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""
APT_CONF = 'APT::Install-Recommends "0";\nAPT::Install-Suggests "0";\nAcquire::Retries "3";\n'


@dataclass(frozen=True)
class Archive:
    """Where Debian packages come from: `mirror` for debootstrap, `lines` for the root's apt."""

    mirror: str
    lines: tuple[str, ...]


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs (fields lower-cased; comment lines dropped)."""
    fields: dict[str, str] = {}
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields = {}
            continue
        if raw[0].isspace() and fields:
            continue  # continuation lines (multi-line Signed-By keys) are not needed
        name, _, value = raw.partition(":")
        fields[name.strip().lower()] = value.strip()


def _entries(files: Sequence[Path]) -> list[tuple[str, str]]:
    """(uri, suite) of every enabled `deb` entry for a bookworm suite, in file order."""
    found: list[tuple[str, str]] = []
    for file in files:
        if not file.is_file():
            continue
        text = file.read_text(encoding="utf-8", errors="replace")
        if file.suffix == ".sources":
            for stanza in _stanzas(text):
                if "deb" not in stanza.get("types", "").split():
                    continue
                if stanza.get("enabled", "yes").lower() == "no":
                    continue
                for uri in stanza.get("uris", "").split():
                    for suite in stanza.get("suites", "").split():
                        found.append((uri.rstrip("/"), suite))
            continue
        for line in text.splitlines():
            words = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb":
                found.append((words[1].rstrip("/"), words[2]))
    return [(uri, suite) for uri, suite in found if suite.split("-")[0] == SUITE]


def archive(files: Sequence[Path] = SOURCES) -> Archive:
    """This machine's Debian archive for bookworm: the mirror of the main suite and the entries
    (updates, security) the image roots use. Falls back to deb.debian.org."""
    entries = list(dict.fromkeys(_entries(files)))
    mirror = next((uri for uri, suite in entries if suite == SUITE), DEFAULT_MIRROR)
    if not entries:
        entries = [(DEFAULT_MIRROR, SUITE)]
    return Archive(mirror, tuple(f"deb {uri} {suite} main" for uri, suite in entries))


def need_root() -> None:
    if os.geteuid() != 0:
        raise OperationFailed(
            "building images needs root (debootstrap, chroot and mounting /proc in the root)",
            hint="run `citykit images build` as root, e.g. with sudo",
        )


def run(
    command: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    owner: int | None = None,
) -> None:
    """Run a build step with its output appended to `log`; fail with the log's tail. With
    `owner`, output goes through a pipe owned by that uid, as runc gives a container's stdio
    to its user: a non-root program can then reopen /dev/stderr (nginx's error log link)."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        if owner is None:
            returncode = subprocess.run(
                list(command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                check=False,
            ).returncode
        else:
            read, write = os.pipe()
            os.fchown(write, owner, owner)
            with subprocess.Popen(
                list(command),
                stdout=write,
                stderr=write,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
            ) as process:
                os.close(write)
                with os.fdopen(read, "rb") as stream:
                    out.write(stream.read())
                returncode = process.wait()
    if returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-20:]
        raise OperationFailed(
            f"`{' '.join(command)[:300]}` failed (exit {returncode}):\n" + "\n".join(tail),
            hint=f"full log: {log}",
        )


def chroot_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for commands in a root: nothing of the host's leaks in."""
    env = {
        "PATH": PATH,
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "DEBCONF_NONINTERACTIVE_SEEN": "true",
    }
    return env | dict(extra or {})


def in_root(
    root: Path, command: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> None:
    """Run `command` inside `root` as root, in a clean environment (plus `env`)."""
    run(["chroot", str(root), *command], log, chroot_env(env))


def mounts_under(root: Path) -> list[Path]:
    """Mount points inside `root`, deepest first (from /proc/self/mounts)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    base = str(root.resolve())
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 1:
            point = fields[1].replace("\\040", " ")
            if point == base or point.startswith(base + "/"):
                points.append(Path(point))
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def unmount_all(root: Path) -> None:
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


def remove_root(root: Path) -> None:
    """Delete a build root, after unmounting whatever a killed build left mounted in it (never
    delete through a mount)."""
    if not root.exists():
        return
    unmount_all(root)
    if mounts_under(root):
        raise OperationFailed(f"{root} still has mounts; not deleting it")
    shutil.rmtree(root)


@contextmanager
def proc_mounted(root: Path) -> Iterator[None]:
    """/proc in the root while packages install (some maintainer scripts read it)."""
    target = root / "proc"
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(target)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def configure_apt(root: Path, source: Archive) -> None:
    """Sources, no recommends, no docs, no services: what every build root's apt needs."""
    (root / "etc/apt/sources.list").write_text("\n".join(source.lines) + "\n")
    (root / "etc/apt/apt.conf.d/90citykit").write_text(APT_CONF)
    (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/dpkg/dpkg.cfg.d/90citykit-excludes").write_text(DPKG_EXCLUDES)
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    # Name resolution for apt and npm inside the root: the host's, removed again by clean().
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)


def _remove(root: Path, patterns: Sequence[str]) -> None:
    for pattern in patterns:
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def clean_scratch(root: Path) -> None:
    """Empty the scratch directories (what a start check wrote)."""
    _remove(root, ("tmp/*", "var/tmp/*"))


def clean(root: Path) -> None:
    """Remove what a build leaves behind and what differs from build to build: apt lists and
    caches, logs, docs, the build-only policy, the host's resolver config."""
    _remove(
        root,
        (
            "var/lib/apt/lists/*",
            "var/cache/apt/*",
            "var/cache/debconf/*-old",
            "var/cache/ldconfig/aux-cache",
            "var/lib/dpkg/*-old",
            "var/log/*",
            "root/.npm",
            "root/.cache",
            "usr/share/man/*",
            "usr/share/info/*",
        ),
    )
    clean_scratch(root)
    locales = root / "usr/share/locale"
    if locales.is_dir():  # translations (debootstrap's too; dpkg excludes only later installs)
        for path in locales.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
    docs = root / "usr/share/doc"
    if docs.is_dir():
        for path in sorted(docs.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_symlink() or path.is_file():
                if path.name != "copyright":
                    path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    (root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("")  # the runtime mounts its own
    (root / "etc/hostname").write_text("")


def _debootstrap() -> str:
    found = shutil.which("debootstrap")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log = paths.cache_dir() / "images" / "build.log"
        env = dict(os.environ) | {"DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], log, env)
        run(["apt-get", "install", "-y", "-qq", "debootstrap"], log, env)
        found = shutil.which("debootstrap")
    if not found:
        raise ToolMissing(
            "debootstrap is not installed",
            hint="`apt-get install debootstrap` (scripts/system-deps installs it)",
        )
    return found


def base_root() -> Path:
    return paths.cache_dir() / "images" / f"base-{SUITE}-minbase-{BASE_VERSION}"


def base(log: Path, source: Archive | None = None) -> Path:
    """The bookworm minbase root, made once (debootstrap, then upgraded from updates and
    security) into a temporary directory and renamed into place."""
    root = base_root()
    if (root / "etc/debian_version").is_file():
        return root
    need_root()
    source = source or archive()
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        target = work / "root"
        run(
            [_debootstrap(), "--variant=minbase", SUITE, str(target), source.mirror],
            log,
            dict(os.environ) | {"LC_ALL": "C.UTF-8"},
        )
        configure_apt(target, source)
        with proc_mounted(target):
            in_root(target, ["apt-get", "update", "-qq"], log)
            in_root(target, ["apt-get", "-y", "-qq", "upgrade"], log)
        clean(target)
        if root.exists():
            remove_root(root)
        target.rename(root)
    finally:
        remove_root(work)
    return root
