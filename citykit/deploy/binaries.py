"""Which Pulumi CLI and Kubernetes provider plugin a deployment runs with: what the user already
has where it fits, else what `citykit tools install` built.

- The engine: a `pulumi` on PATH whose version the pinned SDK works with (the same major version,
  not older than the SDK) is used as it is; otherwise the engine built from its Go module.
- The provider: the built plugin when there is one (registered in PULUMI_HOME at exactly the
  version the SDK asks for, offline). Without it, an engine from PATH (an official install, on a
  machine that reaches Pulumi's download site) acquires the plugin at that version itself.
  Building stays the fallback and the default on machines like this one, which reach no
  download site; the acquisition path cannot be exercised here.

Nothing here imports `pulumi`: `citykit doctor` asks the same questions without the SDK."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from citykit import toolchain
from citykit.errors import ToolMissing

INSTALL_HINT = (
    "run `citykit tools install` (builds the Pulumi engine and the Kubernetes provider from "
    "their Go modules; `make tools` does the same); on a machine with internet access the "
    "official installer works too: https://www.pulumi.com/docs/install/"
)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Engine:
    pulumi: Path
    version: str
    source: str  # "PATH" (the user's) | "built" (citykit tools install)
    # None: no built plugin; the engine acquires it at `provider_version` (needs its download site).
    provider: Path | None
    provider_version: str = toolchain.PROVIDER_VERSION

    @property
    def provider_source(self) -> str:
        return "built" if self.provider is not None else "acquired by the engine"


def sdk_version() -> str:
    """The installed Pulumi SDK's version (the package metadata: importing it is slow)."""
    return metadata.version("pulumi")


def _parsed(version: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(version.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def compatible(cli_version: str, sdk: str | None = None) -> bool:
    """A CLI the SDK can drive: the same major version and not older than the SDK (a newer CLI
    understands what an older SDK sends, not the other way round)."""
    cli, wanted = _parsed(cli_version), _parsed(sdk or sdk_version())
    return cli is not None and wanted is not None and cli[0] == wanted[0] and cli >= wanted


def cli_version(binary: Path) -> str | None:
    """`pulumi version` of a binary, or None when it does not answer."""
    try:
        result = subprocess.run(
            [str(binary), "version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
            env=dict(os.environ) | {"PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = result.stdout.strip()
    return version if result.returncode == 0 and _parsed(version) else None


def on_path() -> tuple[Path, str] | None:
    """The user's own `pulumi` (not a link to the built one) and its version."""
    found = shutil.which("pulumi")
    if found is None:
        return None
    built = toolchain.BY_NAME["pulumi"].binary
    if built.exists() and Path(found).resolve() == built.resolve():
        return None
    version = cli_version(Path(found))
    return (Path(found), version) if version else None


def choose() -> Engine:
    """The engine and provider `up` and the other deployment commands run with, or ToolMissing
    (exit 2) saying how to get them."""
    built_engine = toolchain.BY_NAME["pulumi"]
    built_provider = toolchain.BY_NAME["pulumi-resource-kubernetes"]
    provider = built_provider.binary if built_provider.built() else None
    user = on_path()
    if user is not None and compatible(user[1]):
        return Engine(user[0], user[1], "PATH", provider)
    if built_engine.built() and provider is not None:
        return Engine(built_engine.binary, built_engine.version, "built", provider)
    found = f"; the pulumi on PATH ({user[0]}, {user[1]}) is not compatible" if user else ""
    raise ToolMissing(
        f"the Pulumi engine is not installed (no built engine and provider, and no pulumi "
        f"{wanted()} on PATH{found})",
        hint=INSTALL_HINT,
    )


def wanted() -> str:
    """The CLI versions the SDK works with, in words."""
    sdk = sdk_version()
    return f">= {sdk}, < {int(sdk.split('.', 1)[0]) + 1}"
