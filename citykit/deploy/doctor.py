"""`citykit doctor`: what citykit needs on this machine and whether it is there, one check per
row, each problem with the command that fixes it.

A check says what it is needed for: `dev` (validate, plan, render and `up` to the local
simulated cluster), `local` (the real node), `images` (local images), `tests`, `building` (Go,
once every tool `dev` needs is built), `engine` (the built engine, when a compatible `pulumi` on
PATH is not used instead), `kind` (the kind provider: kind and the container engine it runs on)
or `up -e ENV` (an environment's cluster). Only what `dev` needs decides
the exit code: an environment's cluster that is not reachable is reported, never a failure (`up`
starts the local one). The probes are module functions, so tests replace them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from citykit import toolchain
from citykit.cluster import control_plane
from citykit.cluster import engine as container_engine
from citykit.cluster import local
from citykit.deploy import engine
from citykit.deploy.check import TOOLS_HINT
from citykit.deploy.check import Check
from citykit.deploy.engine_checks import backend_check
from citykit.deploy.engine_checks import engine_available
from citykit.deploy.engine_checks import engine_checks
from citykit.deploy.engine_checks import passphrase_check
from citykit.errors import CitykitError
from citykit.input import environment as environments

PYTHON_MINIMUM = (3, 11)  # pyproject.toml: requires-python
PROBE_SECONDS = 5.0  # a cluster that does not answer in this long is reported unreachable
# A local binary's own version: no network, but a loaded machine can take seconds to start a
# 50 MB Go binary (kubectl missed 5 s while CI's clusters ran, and doctor called it missing).
LOCAL_SECONDS = 30.0

# What each built tool is for; the local control plane's are what `dev` needs.
TOOL_USES: dict[str, str] = {
    **{name: "dev" for name in control_plane.COMPONENTS},
    "kubelet": "local",
    "kube-proxy": "local",
    "coredns": "local",
    "kube-router": "local",
    "kube-score": "tests",
    "pulumi": "engine",
    "pulumi-resource-kubernetes": "engine",
    **{name: "kind" for name in (*container_engine.TOOLS, "kind")},
}


# -- probes (replaced in tests) -----------------------------------------------------------------


def run(command: list[str], timeout: float = LOCAL_SECONDS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)


def which(name: str) -> str | None:
    return shutil.which(name)


def python_version() -> tuple[int, int, int]:
    return sys.version_info[:3]


def server_version(access: engine.ClusterAccess) -> str:
    """The API server's version; OSError-free: raises CitykitError with what went wrong."""
    try:
        result = engine.kubectl(
            access,
            "version",
            "-o",
            "json",
            f"--request-timeout={int(PROBE_SECONDS)}s",
            timeout=PROBE_SECONDS + 2,
        )
    except subprocess.TimeoutExpired:
        raise CitykitError(f"no answer in {PROBE_SECONDS:.0f}s") from None
    try:
        version = json.loads(result.stdout or "{}").get("serverVersion", {}).get("gitVersion")
    except ValueError:
        version = None
    if result.returncode != 0 or not version:
        last = (result.stderr.strip().splitlines() or ["no server version"])[-1]
        raise CitykitError(last[:200])
    return str(version)


def local_running(name: str) -> bool:
    return local.LocalCluster(name).running()


# -- checks -----------------------------------------------------------------------------------


def checks() -> list[Check]:
    return [
        python_check(),
        kubectl_check(),
        go_check(),
        *tool_checks(),
        *engine_checks(),
        backend_check(),
        passphrase_check(),
        container_engine_check(),
        *cluster_checks(),
    ]


def python_check() -> Check:
    version = python_version()
    shown = ".".join(map(str, version))
    wanted = ".".join(map(str, PYTHON_MINIMUM))
    return Check(
        "python",
        version[:2] >= PYTHON_MINIMUM,
        f"{shown} ({sys.executable})",
        "dev",
        "" if version[:2] >= PYTHON_MINIMUM else f"use Python {wanted} or newer: make setup",
    )


def _first_line(command: list[str]) -> str | None:
    try:
        result = run(command)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.strip().splitlines()
    return lines[0] if result.returncode == 0 and lines else None


def kubectl_check() -> Check:
    found = which("kubectl")
    hint = "sudo apt-get install -y kubectl"
    if found is None:
        return Check("kubectl", False, "not on PATH", "dev", hint)
    version = _kubectl_client(found)
    return Check(
        "kubectl",
        version is not None,
        f"{version or 'does not answer'} ({found})",
        "dev",
        "" if version else hint,
    )


def _kubectl_client(binary: str) -> str | None:
    try:
        result = run([binary, "version", "--client", "-o", "json"])
        version = json.loads(result.stdout)["clientVersion"]["gitVersion"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None
    return str(version)


def go_check() -> Check:
    """Go builds the tools: needed while one that `dev` needs is not built."""
    missing = [t.name for t in toolchain.TOOLS if not t.built()]
    needed_by_dev = any(TOOL_USES.get(name) == "dev" for name in missing) or (
        not engine_available()
    )
    found = which("go")
    version = _first_line([found, "version"]) if found else None
    hint = "install Go 1.21 or newer (https://go.dev/doc/install), then " + TOOLS_HINT
    return Check(
        "go",
        version is not None,
        f"{version} ({found})" if version else "not on PATH",
        "dev" if needed_by_dev else "building",
        "" if version else hint,
    )


def tool_checks() -> list[Check]:
    return [
        Check(
            f"tool {tool.name}",
            tool.built(),
            f"{tool.version} " + ("built" if tool.built() else "not built"),
            TOOL_USES.get(tool.name, "images"),
            "" if tool.built() else TOOLS_HINT,
        )
        for tool in toolchain.TOOLS
    ]


def container_engine_check() -> Check:
    """What the kind provider would run on: the engine that answers, else whether citykit can
    start its own (the same choice as engine.working_engine, nothing started)."""
    label, use = "container engine", "kind"
    try:
        found = container_engine.running()
    except CitykitError as error:  # no docker CLI
        return Check(label, False, error.message, use, error.hint)
    if found is not None:
        return Check(label, True, f"{found.describe()}, answering", use)
    problem = container_engine.obstacle()
    if problem is not None:
        return Check(label, False, problem.message, use, problem.hint)
    return Check(
        label,
        True,
        f"none runs: the kind provider starts citykit's dockerd {toolchain.MOBY_VERSION} (built)",
        use,
    )


def cluster_checks() -> list[Check]:
    """Each shipped environment's cluster: reachable, with its server version. Never required:
    `up` starts the local cluster, and the others belong to their environments."""
    rows: list[Check] = []
    for name in environments.SHIPPED:
        environment = environments.load(name)[0]
        cluster = environment.cluster
        label = f"cluster {name}"
        use = f"up -e {name}"  # never "dev": see the docstring
        try:
            access = engine.environment_access(environment)
        except CitykitError as error:
            rows.append(Check(label, False, error.message, use, error.hint))
            continue
        if (
            cluster.provider == "local"
            and not os.environ.get("CITYKIT_KUBECONFIG")
            and not local_running(cluster.name)
        ):
            rows.append(
                Check(
                    label,
                    False,
                    f"{access.description}: not running",
                    use,
                    f"citykit cluster up -e {name} (citykit up -e {name} starts it too)",
                )
            )
            continue
        try:
            version = server_version(access)
        except CitykitError as error:
            rows.append(
                Check(
                    label,
                    False,
                    f"{access.description}: unreachable: {error.message}",
                    use,
                    f"check the kubeconfig {access.kubeconfig}"
                    + (f" and its context {access.context}" if access.context else ""),
                )
            )
            continue
        rows.append(Check(label, True, f"{access.description}: reachable, {version}", use))
    return rows


def healthy(rows: list[Check]) -> bool:
    """Everything `dev` needs is there."""
    return all(row.ok for row in rows if row.required)
