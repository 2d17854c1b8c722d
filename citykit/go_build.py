"""Building the Go tools of toolchain.py from their modules (tools/<group>/go.mod) into the cache,
one `go build` per module, two modules at a time. Builds go to a temporary directory and are
renamed into place, so a killed build never leaves a half-written binary behind; a version bump's
old builds are pruned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from citykit import paths
from citykit.errors import OperationFailed
from citykit.errors import ToolMissing
from citykit.toolchain import PROVIDER_MODULE
from citykit.toolchain import PROVIDER_PSEUDO_VERSION
from citykit.toolchain import PROVIDER_VERSION
from citykit.toolchain import TOOLS
from citykit.toolchain import TOOLS_SRC
from citykit.toolchain import Tool
from citykit.toolchain import bin_dir

Progress = Callable[[Tool, str], None]  # (tool, "cached" | "building" | "built")

# Two modules build at once: one `go build` alone leaves a core idle while it downloads modules
# and while it links (the linker is mostly one thread), and a cold build is mostly those.
BUILDS_AT_ONCE = 2
# Seconds each module took to build cold on two cores, one at a time: the longest start first,
# so the two lanes finish close together instead of the longest starting last.
_COLD_SECONDS = {
    "kubernetes": 525,
    "provider": 513,
    "pulumi": 267,
    "prometheus": 248,
    "cert-manager": 186,
    "moby": 186,
    "minio": 173,
    "coredns": 123,
    "kube-router": 122,
    "kwok": 74,
    "etcd": 48,
}


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolMissing(
            "the Go toolchain is not installed",
            hint="install Go 1.21 or newer; it fetches the toolchain go.mod asks for",
        )
    return go


def module_dir(group: str, module: str, version: str) -> Path:
    """Where the Go module cache holds `module@version` (downloaded when missing): for sources
    a tool's module ships besides Go code, such as kubernetes' pause.c."""
    result = subprocess.run(
        [_go(), "mod", "download", "-json", f"{module}@{version}"],
        cwd=TOOLS_SRC / group,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return Path(json.loads(result.stdout)["Dir"])
    except (ValueError, KeyError):
        raise OperationFailed(
            f"could not download the Go module {module}@{version}: {result.stderr.strip()}"
        ) from None


def _run(
    command: list[str],
    cwd: Path,
    log: Path,
    extra_env: dict[str, str] | None = None,
    hint: str = "",
) -> None:
    env = dict(os.environ) | (extra_env or {})
    env.setdefault("GOFLAGS", "-trimpath")
    # The compiler and linker are Go programs: collecting garbage a quarter as often saved 7% of
    # a module's CPU (kwok cold: 155 core-seconds against 165), for 15% more memory; the soft
    # limit keeps each of the four compiles running at once (two builds, two each) under 3 GiB.
    env.setdefault("GOGC", "400")
    env.setdefault("GOMEMLIMIT", "3GiB")
    env["GOTOOLCHAIN"] = env.get("GOTOOLCHAIN", "auto")
    with log.open("ab") as out:
        result = subprocess.run(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise OperationFailed(
            f"`{' '.join(command)}` failed in {cwd}:\n" + "\n".join(tail),
            hint=f"{hint}; full log: {log}" if hint else f"full log: {log}",
        )


def _prepare_provider(work: Path, log: Path) -> None:
    """Copy the provider's main package next to our go.mod and generate the files it embeds, as
    its Makefile does (`go generate` writes schema-embed.json with the version set)."""
    modcache = subprocess.run(
        [_go(), "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    _run([_go(), "mod", "download", f"{PROVIDER_MODULE}@{PROVIDER_PSEUDO_VERSION}"], work, log)
    source = (
        Path(modcache)
        / f"{PROVIDER_MODULE}@{PROVIDER_PSEUDO_VERSION}"
        / "cmd"
        / "pulumi-resource-kubernetes"
    )
    target = work / "cmd" / "pulumi-resource-kubernetes"
    target.mkdir(parents=True)
    for name in ("main.go", "generate.go", "schema.json", "terraform-mapping.json"):
        shutil.copyfile(source / name, target / name)
    _run([_go(), "run", "generate.go"], target, log, {"VERSION": PROVIDER_VERSION})


def build_command(go: str, tool: Tool, output: Path) -> list[str]:
    ldflags = f"-s -w {tool.ldflags}".strip()
    tags = [f"-tags={','.join(tool.tags)}"] if tool.tags else []
    # `-w` drops the debug information at link time; not compiling it at all (`-dwarf=false`)
    # saves the compiler the work and the build cache the space, for the same binary.
    return [
        *(go, "build", *tags, "-gcflags=all=-dwarf=false", f"-ldflags={ldflags}"),
        *("-o", str(output), tool.package),
    ]


def patched_sources(tool: Tool, group: str) -> dict[tuple[str, str], str]:
    """(module, file in it) -> its patched text, for every file the tool's patches change."""
    patched: dict[tuple[str, str], str] = {}
    for patch in tool.patches:
        key = (patch.module, patch.path)
        text = (
            patched.get(key)
            or (module_dir(group, patch.module, tool.version) / patch.path).read_text()
        )
        found = text.count(patch.find)
        if found != 1:
            raise OperationFailed(
                f"{tool.name}: the patch of {patch.module}@{tool.version}/{patch.path} "
                f"({patch.why}) does not apply: its text occurs {found} times, not once",
                hint="update the Patch in citykit/toolchain.py to this version's source",
            )
        patched[key] = text.replace(patch.find, patch.replace)
    return patched


def _apply_patches(group: str, tools: list[Tool], work: Path, log: Path) -> None:
    """Build against patched copies of the modules the tools' patches change: each module is
    copied out of the module cache (which Go never lets a build change, `-overlay` included)
    and patched, and the work copy's go.mod points at it with a `replace`."""
    for tool in tools:
        for (module, path), text in patched_sources(tool, group).items():
            copy = work / "patched" / module.replace("/", "_")
            if not copy.exists():
                shutil.copytree(module_dir(group, module, tool.version), copy)
                for entry in [copy, *copy.rglob("*")]:
                    entry.chmod(entry.stat().st_mode | 0o200)  # the cache's files are read-only
                _run([_go(), "mod", "edit", f"-replace={module}=./patched/{copy.name}"], work, log)
            (copy / path).write_text(text)


def build_env(tool: Tool) -> dict[str, str] | None:
    """CGO set where the recipe decides it; otherwise Go's default (on where a C compiler is)."""
    if tool.static:
        return {"CGO_ENABLED": "0"}
    if tool.cgo:
        return {"CGO_ENABLED": "1"}
    return None


def _build_group(group: str, tools: list[Tool], log: Path) -> None:
    """Build every tool of one Go module in one `go build`, then move each into its home."""
    source = TOOLS_SRC / group
    if not (source / "go.mod").is_file():
        raise ToolMissing(
            f"{source / 'go.mod'} not found",
            hint="run citykit from its source checkout (the tools/ directory)",
        )
    cache = paths.cache_dir() / "tools"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"build-{group}-", dir=cache) as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(source, work)
        if group == "provider":
            _prepare_provider(work, log)
        _apply_patches(group, tools, work, log)
        out = Path(tmp) / "out"
        out.mkdir()
        for tool in tools:
            _run(
                build_command(_go(), tool, out / tool.name),
                work,
                log,
                build_env(tool),
                "it links C libraries: install their -dev packages with scripts/system-deps"
                if tool.cgo
                else "",
            )
        for tool in tools:
            staging = Path(tmp) / f"home-{tool.name}"
            staging.mkdir()
            (out / tool.name).rename(staging / tool.name)
            if tool.home.exists():
                shutil.rmtree(tool.home)
            staging.rename(tool.home)


def link_all() -> None:
    """Refresh the links in bin_dir() to the built tools' current versions."""
    directory = bin_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        link = directory / tool.name
        if (tool.built() or not tool.on_path) and (link.is_symlink() or link.exists()):
            link.unlink()
        if tool.built() and tool.on_path:
            link.symlink_to(tool.binary)


def prune() -> list[Path]:
    """Remove builds of the tools' other versions or recipes (what a version bump leaves)."""
    cache = paths.cache_dir() / "tools"
    current = {tool.home for tool in TOOLS}
    removed = []
    for tool in TOOLS:
        for home in cache.glob(f"{tool.name}-*"):
            prefix_owner = max(
                (t for t in TOOLS if home.name.startswith(f"{t.name}-")),
                key=lambda t: len(t.name),
            )
            if home.is_dir() and home not in current and prefix_owner is tool:
                shutil.rmtree(home, ignore_errors=True)
                removed.append(home)
    return removed


def install(progress: Progress | None = None) -> list[tuple[Tool, float]]:
    """Build every missing tool; returns (tool, seconds) for the ones built now. Every module
    that can be built is, even when another fails: the first failure is raised at the end."""
    report = progress or (lambda tool, state: None)
    logs = paths.cache_dir() / "tools"
    logs.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[Tool]] = {}
    for tool in TOOLS:
        if tool.built():
            report(tool, "cached")
        else:
            groups.setdefault(tool.group, []).append(tool)

    def build(group: str) -> list[tuple[Tool, float]]:
        tools = groups[group]
        for tool in tools:
            report(tool, "building")
        started = time.monotonic()
        _build_group(group, tools, logs / f"build-{group}.log")
        seconds = time.monotonic() - started
        for tool in tools:
            report(tool, "built")
        return [(tool, seconds) for tool in tools]

    longest_first = sorted(groups, key=lambda group: -_COLD_SECONDS.get(group, 0))
    with ThreadPoolExecutor(max_workers=BUILDS_AT_ONCE) as pool:
        futures: list[Future[list[tuple[Tool, float]]]] = [
            pool.submit(build, group) for group in longest_first
        ]
    built: list[tuple[Tool, float]] = []
    failures = []
    for future in futures:
        error = future.exception()
        if error is None:
            built.extend(future.result())
        else:
            failures.append(error)
    link_all()
    prune()
    if failures:
        raise failures[0]
    return built
