"""Component images from their `LocalImage` recipes, built once and cached by recipe.

An archive is `~/.cache/citykit/images/<component>-<key>-<hash>.tar`, the hash taken over the
recipe and the builder's and base's versions: a present archive makes a build a no-op, and a
changed recipe (or builder) builds anew. The bytes of two builds may differ (Debian publishes
security updates), so the key, not the content, decides. Each image is made in a copy of the
cached base root: runtime user, packages (services never start), npm packages, built Go tools,
clean-up, the recipe's script, a non-root start check, then `oci.write_image` with the base as
its first layer, which every image shares. Needs root."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from citykit import paths
from citykit import toolchain
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.errors import OperationFailed
from citykit.images import debian
from citykit.images import oci

BUILDER_VERSION = "2"  # bump when a change here changes what images contain
# Two images build at once: a build waits on Debian's archive and the disk as much as it computes.
BUILDS_AT_ONCE = 2
APP_DIR = "/opt/app"  # where npm packages are installed
# npm runs inside the root (Debian's npm on Debian's node, so native parts match the runtime).
NPM_INSTALL = (
    *("npm", "install", "--prefix", APP_DIR, "--omit=dev", "--no-audit", "--no-fund"),
    *("--no-update-notifier", "--cache", "/tmp/npm-cache"),
)


@dataclass(frozen=True)
class Target:
    """One image to build: a component's recipe for one of its `images` keys."""

    component: str
    key: str
    recipe: LocalImage
    upstream: Image | None
    # A cluster's own image (kube-proxy in the kind node image) may run as root, as upstream's
    # does; a component's never does.
    system: bool = False

    @property
    def name(self) -> str:
        return f"{self.component}/{self.key}"

    @property
    def ref(self) -> str:
        return self.recipe.ref(self.component, self.key)


@dataclass(frozen=True)
class Built:
    target: Target
    archive: Path
    state: Literal["cached", "built"]
    seconds: float
    size: int


Progress = Callable[[Target, str], None]  # (target, "cached" | "building" | "built")


def targets(components: Iterable[type[Component]]) -> list[Target]:
    """The images of these components that have a local recipe, in the order given."""
    return [
        Target(cls.name, key, recipe, cls.images.get(key))
        for cls in components
        for key, recipe in sorted(cls.local_images.items())
    ]


def images_dir() -> Path:
    return paths.cache_dir() / "images"


def cache_key(target: Target) -> str:
    """12 hex digits of the SHA-256 of everything that decides the image's content."""
    document = {
        "builder": BUILDER_VERSION,
        "base": [debian.SUITE, debian.BASE_VERSION],
        "component": target.component,
        "key": target.key,
        "recipe": dataclasses.asdict(target.recipe),
        "tools": {name: _tool_version(name) for _, name in target.recipe.tools},
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _tool_version(name: str) -> str:
    """The tool's version and build recipe (its cache home's name), so a rebuilt tool makes a
    new image."""
    tool = toolchain.BY_NAME.get(name)
    return tool.home.name if tool else ""


def archive_path(target: Target) -> Path:
    return images_dir() / f"{target.component}-{target.key}-{cache_key(target)}.tar"


def is_built(target: Target) -> bool:
    return archive_path(target).is_file()


def build(target: Target, progress: Progress | None = None) -> Built:
    """The archive of one image: the cached one, or built now (into a temporary directory, the
    archive renamed into place)."""
    report = progress or (lambda target, state: None)
    out = archive_path(target)
    if out.is_file():
        report(target, "cached")
        return Built(target, out, "cached", 0.0, out.stat().st_size)
    debian.need_root()
    for _, name in target.recipe.tools:
        toolchain.find(name)  # before a minute of debootstrap, not after
    report(target, "building")
    started = time.monotonic()
    logs = images_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{target.component}-{target.key}.log"
    log.write_text(f"# {target.ref} from {target.recipe.source}\n")
    source = debian.archive()
    base = debian.base(log, source)
    work = Path(tempfile.mkdtemp(prefix=f".build-{target.component}-{target.key}-", dir=out.parent))
    try:
        root = work / "root"
        debian.run(["cp", "-a", str(base), str(root)], log)
        labels = _prepare(target, root, source, log)
        written = oci.write_image(out, target.ref, root, _config(target, labels), base=base)
    finally:
        debian.remove_root(work)
    _prune(target, out)
    report(target, "built")
    return Built(target, out, "built", time.monotonic() - started, written.size)


def build_all(chosen: Iterable[Target], progress: Progress | None = None) -> list[Built]:
    """The archives of these targets, in their order; missing ones built BUILDS_AT_ONCE at a
    time, each in its own copy of the base root (made first, once, since every copy reads it)."""
    targets = list(chosen)
    if all(is_built(target) for target in targets):
        return [build(target, progress) for target in targets]
    debian.need_root()
    sweep()
    logs = images_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    debian.base(logs / "base.log")
    with ThreadPoolExecutor(max_workers=BUILDS_AT_ONCE) as pool:
        return list(pool.map(lambda target: build(target, progress), targets))


def sweep(older_than: float = 6 * 3600) -> None:
    """Remove what killed builds left (work roots, partial archives: dot-directories in the
    cache), once they are older than any build takes."""
    directory = images_dir()
    if not directory.is_dir():
        return
    for path in directory.glob(".*"):
        if path.is_dir() and time.time() - path.stat().st_mtime > older_than:
            debian.remove_root(path)


def _prepare(target: Target, root: Path, source: debian.Archive, log: Path) -> dict[str, str]:
    """Turn a copy of the base into the image's root; returns the labels that record what was
    installed (package versions as resolved at build time)."""
    recipe = target.recipe
    debian.configure_apt(root, source)
    if not (target.system and recipe.user == 0):
        _add_user(root, recipe, log)
    labels: dict[str, str] = {}
    with debian.proc_mounted(root):
        packages = list(recipe.debian) + (["nodejs", "npm"] if recipe.npm else [])
        if packages:
            debian.in_root(root, ["apt-get", "update", "-qq"], log)
            debian.in_root(root, ["apt-get", "install", "-y", "-qq", *packages], log)
            labels["io.citykit.debian"] = ",".join(_dpkg_versions(root, recipe.debian))
        if recipe.npm:
            (root / APP_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
            options, env = _npm_host_settings(root)
            debian.in_root(root, [*NPM_INSTALL, *options, *recipe.npm], log, env=env)
            labels["io.citykit.npm"] = ",".join(_npm_versions(root, recipe.npm))
            if "npm" not in recipe.debian:  # npm only installs; the image runs node alone
                debian.in_root(root, ["apt-get", "purge", "-y", "-qq", "--auto-remove", "npm"], log)
        for path, name in recipe.tools:
            # Placed from inside the root, so its symlinks (/bin -> usr/bin, /var/run -> /run)
            # resolve there and never on the host.
            shutil.copyfile(toolchain.find(name), root / "tmp" / name)
            debian.in_root(root, ["install", "-D", "-m", "0755", f"/tmp/{name}", path], log)
        # Clean before the script, so what the script makes (log links in /var/log) stays.
        debian.clean(root)
        if recipe.script:
            debian.in_root(root, ["/bin/sh", "-ec", recipe.script], log)
        if recipe.check:
            _check(root, recipe, log)
    debian.clean_scratch(root)
    return labels


def _npm_host_settings(root: Path) -> tuple[list[str], dict[str, str]]:
    """What npm inside the root needs to reach the registry as the host does: the host's CA
    bundle (which holds any TLS-inspecting proxy's CA), its registry and its proxy variables."""
    options: list[str] = []
    for candidate in (
        os.environ.get("NODE_EXTRA_CA_CERTS"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            shutil.copyfile(candidate, root / "tmp/host-ca.crt")  # removed with /tmp by clean()
            options += ["--cafile", "/tmp/host-ca.crt"]
            break
    registry = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry")  # noqa: SIM112
    host_npm = shutil.which("npm")
    if not registry and host_npm:
        result = subprocess.run(
            [host_npm, "config", "get", "registry"], capture_output=True, text=True, check=False
        )
        registry = result.stdout.strip() if result.returncode == 0 else None
    if registry:
        options += ["--registry", registry]
    proxies = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy")
    return options, {name: os.environ[name] for name in proxies if name in os.environ}


def _add_user(root: Path, recipe: LocalImage, log: Path) -> None:
    """Create the runtime user (uid = gid = `user`) unless the root already has that uid."""
    if recipe.user == 0:
        raise OperationFailed("a local image must not run as root (uid 0)")
    uids = {line.split(":")[2] for line in _lines(root / "etc/passwd")}
    if str(recipe.user) in uids:
        return
    gids = {line.split(":")[2] for line in _lines(root / "etc/group")}
    if str(recipe.user) not in gids:
        debian.in_root(root, ["groupadd", "--gid", str(recipe.user), recipe.user_name], log)
    home = recipe.workdir
    debian.in_root(
        root,
        [
            *("useradd", "--uid", str(recipe.user), "--gid", str(recipe.user)),
            *("--no-create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin"),
            recipe.user_name,
        ],
        log,
    )


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.count(":") >= 2]


def _environment(recipe: LocalImage) -> tuple[tuple[str, str], ...]:
    """The image's environment: the recipe's, with a PATH when it sets none."""
    names = {name for name, _ in recipe.env}
    return recipe.env if "PATH" in names else (("PATH", debian.PATH), *recipe.env)


def _check(root: Path, recipe: LocalImage, log: Path) -> None:
    user = f"{recipe.user}:{recipe.user}"
    env = [f"{name}={value}" for name, value in _environment(recipe)]
    if "HOME" not in {name for name, _ in recipe.env}:
        env.append("HOME=/tmp")
    debian.run(
        [
            *("chroot", f"--userspec={user}", str(root), "/usr/bin/env", "-i", *env),
            *("/bin/sh", "-ec", f"cd {recipe.workdir}\n{recipe.check}"),
        ],
        log,
        owner=recipe.user,
    )


def _dpkg_versions(root: Path, packages: Iterable[str]) -> list[str]:
    names = sorted(set(packages))
    if not names:
        return []
    result = subprocess.run(
        ["chroot", str(root), "dpkg-query", "-W", "-f=${Package}=${Version}\\n", *names],
        capture_output=True,
        text=True,
        env=debian.chroot_env(),
        check=False,
    )
    return sorted(result.stdout.split())


def _npm_versions(root: Path, specs: Iterable[str]) -> list[str]:
    found = []
    for spec in specs:
        at = spec.rfind("@")
        name = spec[:at] if at > 0 else spec
        manifest = root / APP_DIR.lstrip("/") / "node_modules" / name / "package.json"
        version = json.loads(manifest.read_text()).get("version", "?")
        found.append(f"{name}@{version}")
    return sorted(found)


def _config(target: Target, labels: dict[str, str]) -> oci.ImageConfig:
    recipe = target.recipe
    return oci.ImageConfig(
        entrypoint=recipe.entrypoint,
        cmd=recipe.cmd,
        user=f"{recipe.user}:{recipe.user}",
        env=_environment(recipe),
        workdir=recipe.workdir,
        labels=(
            *sorted(labels.items()),
            ("io.citykit.component", target.component),
            ("io.citykit.image", target.key),
            ("io.citykit.recipe", cache_key(target)),
        ),
        stop_signal=recipe.stop_signal,
        source=recipe.source,
        version=recipe.version,
    )


def _prune(target: Target, keep: Path) -> None:
    """Remove the archives of earlier recipes of the same image."""
    pattern = re.compile(re.escape(f"{target.component}-{target.key}-") + r"[0-9a-f]{12}\.tar")
    for path in images_dir().glob(f"{target.component}-{target.key}-*.tar"):
        if path != keep and pattern.fullmatch(path.name):
            path.unlink()
