"""Is the target cluster there, and does it accept us? Asked before the engine runs.

The Kubernetes provider treats a cluster it cannot reach or that rejects its credentials as
"unreachable" and then plans every object as a create without a word: a preview against a dead
server looked like a plan. So each command that talks to the cluster first names the kubeconfig,
context and server it will use and makes one discovery request with a short timeout; a failure
is reported with what to fix, before anything is written."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import yaml

from citykit import paths
from citykit.errors import InputError

if TYPE_CHECKING:
    from citykit.deploy.engine import ClusterAccess

# Seconds for the discovery request: a live API server answers in milliseconds; a server behind
# a dropped route would otherwise hold the command for kubectl's default of no timeout.
REQUEST_TIMEOUT = 5


class ClusterUnusable(InputError):
    """The cluster cannot be reached, or it rejects the kubeconfig's credentials (exit 2)."""


@dataclass(frozen=True)
class Target:
    kubeconfig: Path
    context: str
    server: str

    def describe(self) -> str:
        return f"server {self.server} (kubeconfig {self.kubeconfig}, context {self.context})"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _named(entries: Any, name: str) -> dict[str, Any] | None:
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None


def target(access: ClusterAccess) -> Target:
    """The context and server `access` selects, read from its kubeconfig the way kubectl reads
    it; a missing file, context or cluster entry is a ClusterUnusable naming what is missing."""
    path = access.kubeconfig
    fix = f"fix {path}, or point CITYKIT_KUBECONFIG (or KUBECONFIG) at a working kubeconfig"
    try:
        data = _mapping(yaml.safe_load(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ClusterUnusable(
            f"the kubeconfig {path} does not exist",
            hint="point CITYKIT_KUBECONFIG (or KUBECONFIG) at the cluster's kubeconfig",
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ClusterUnusable(f"cannot read the kubeconfig {path}: {reason}", hint=fix) from None
    contexts = [str(c.get("name")) for c in data.get("contexts") or [] if isinstance(c, dict)]
    name = access.context or str(data.get("current-context") or "")
    known = f"its contexts: {', '.join(contexts)}" if contexts else "it has no contexts"
    if not name:
        raise ClusterUnusable(
            f"the kubeconfig {path} names no current-context ({known})",
            hint=f"select one with `kubectl --kubeconfig {path} config use-context NAME`",
        )
    context = _named(data.get("contexts"), name)
    if context is None:
        where = "context" if access.context else "current-context"
        raise ClusterUnusable(
            f"the kubeconfig {path} has no context {name!r} (the {where} citykit uses; {known})",
            hint=f"add the context to {path}, or use one that exists"
            + (
                " (the environment's cluster.context)"
                if access.context
                else f" (`kubectl --kubeconfig {path} config use-context NAME`)"
            ),
        )
    cluster_name = str(_mapping(context.get("context")).get("cluster") or "")
    cluster = _named(data.get("clusters"), cluster_name)
    server = str(_mapping((cluster or {}).get("cluster")).get("server") or "")
    if not server:
        raise ClusterUnusable(
            f"the kubeconfig {path}: context {name!r} names cluster {cluster_name!r}, which has "
            "no server",
            hint=fix,
        )
    return Target(path, name, server)


def _classify(stderr: str) -> tuple[str, str]:
    """kubectl's failure text -> (what happened, how to fix it)."""
    text = stderr.lower()
    if "unauthorized" in text or "must be logged in" in text:
        return (
            "rejected the credentials (401 Unauthorized)",
            "the token or client certificate of this context is wrong, expired or revoked: "
            "get fresh credentials for the cluster (a citykit local cluster's own kubeconfig is "
            f"{paths.state_dir() / 'clusters' / '<name>' / 'kubeconfig'}: use it, or leave "
            "CITYKIT_KUBECONFIG unset)",
        )
    if "forbidden" in text:
        return (
            "refused the request (403 Forbidden)",
            "the user of this context may not read the cluster's API: grant it access, or use a "
            "context with enough rights",
        )
    if "x509" in text or "certificate" in text or "tls" in text:
        return (
            "failed the TLS handshake",
            "the kubeconfig's certificate authority or client certificate does not match the "
            "server, or has expired: get a fresh kubeconfig for the cluster",
        )
    return (
        "could not be reached",
        "check that the cluster is running and that this server address is right (for a "
        "citykit local cluster: `citykit cluster up -e ENV`), or point CITYKIT_KUBECONFIG at "
        "the right kubeconfig",
    )


def check(access: ClusterAccess) -> Target:
    """One discovery request to the target; ClusterUnusable when it fails."""
    from citykit.deploy.engine import kubectl

    where = target(access)
    try:
        result = kubectl(
            access,
            "get",
            "--raw",
            "/api",
            f"--request-timeout={REQUEST_TIMEOUT}s",
            timeout=REQUEST_TIMEOUT * 3,
        )
    except subprocess.TimeoutExpired:
        result = subprocess.CompletedProcess([], 1, "", "timed out")
    if result.returncode == 0:
        return where
    what, fix = _classify(result.stderr)
    detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    raise ClusterUnusable(
        f"the cluster at {where.describe()} {what}" + (f"\n  kubectl: {detail}" if detail else ""),
        hint=fix,
    )
