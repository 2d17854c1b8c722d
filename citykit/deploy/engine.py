"""The Automation API driver: one Pulumi stack per city and environment, run with the engine and
provider built by `citykit tools install`, offline.

Where things live (all under the citykit state dir, `~/.local/state/citykit` by default):
- `pulumi/backend/`: the `file://` state backend (unless the environment names another URL);
- `pulumi/stacks/<city>-<env>/`: the workspace (stack settings, encrypted config);
- `pulumi/home/`: PULUMI_HOME, with the provider plugin installed from the built binary;
- `pulumi/passphrase`: the generated passphrase (mode 0600) when neither CITYKIT_PASSPHRASE nor
  PULUMI_CONFIG_PASSPHRASE(_FILE) is set and the secrets provider is `passphrase`.

Generated credentials are kept as one encrypted stack config value (`citykit:generated`): created
once, reused by every later run, handed to the program as Pulumi secrets."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from citykit import paths, toolchain
from citykit.compiler import Compiled
from citykit.errors import InputError, OperationFailed, ToolMissing
from citykit.plan import Plan

if TYPE_CHECKING:
    from pulumi import automation as auto

PROJECT = "citykit"
# Resource operations the engine runs at once. Its default, 4 per CPU, is 8 on a 2-core machine,
# and most operations spend their time waiting (readiness awaits, API round trips), not working.
PARALLEL = 64
CLIENT_QPS, CLIENT_BURST = 500, 1000
GENERATED_KEY = "citykit:generated"
GENERATE_ANNOTATION = "citykit.io/generate"
SAME_AS = "citykit.io/same-as"
INSTALL_HINT = (
    "run `citykit tools install` (builds the Pulumi engine and the Kubernetes provider from "
    "their Go modules); on a machine with internet access the official installer works too: "
    "https://www.pulumi.com/docs/install/"
)


def stack_name(plan: Plan) -> str:
    return f"{plan.slug}-{plan.environment.name}"


def pulumi_dir() -> Path:
    return paths.state_dir() / "pulumi"


@dataclass(frozen=True)
class ClusterAccess:
    """How the provider reaches the cluster."""

    kubeconfig: Path
    context: str | None
    description: str


def engine_binaries() -> tuple[Path, Path]:
    """The engine and the provider, or a clear ToolMissing (exit 2)."""
    try:
        return toolchain.find("pulumi"), toolchain.find("pulumi-resource-kubernetes")
    except ToolMissing as error:
        raise ToolMissing(
            f"the Pulumi engine is not installed ({error.message})", hint=INSTALL_HINT
        ) from None


def _passphrase_env(provider: str) -> dict[str, str]:
    if provider != "passphrase":
        return {}
    if os.environ.get("CITYKIT_PASSPHRASE"):
        return {"PULUMI_CONFIG_PASSPHRASE": os.environ["CITYKIT_PASSPHRASE"]}
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get(
        "PULUMI_CONFIG_PASSPHRASE_FILE"
    ):
        return {}
    key = pulumi_dir() / "passphrase"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        # Created with 0600 from the start: never readable by others, even for a moment.
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(key)}


def _engine_env(plan: Plan) -> dict[str, str]:
    base = pulumi_dir()
    env = {
        "PULUMI_HOME": str(base / "home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        # Use the plugin registered at the exact version, not the same binary found on PATH.
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS": "false",
        # The engine rewrites the whole state after every step: with ~400 objects that made it
        # CPU-bound at ~11 steps/s, 3/4 of a first `up`. The state is written when an
        # operation ends (success or failure); a run killed midway leaves the previous state,
        # and the next `up` refreshes, then creates what it does not know with server-side
        # apply, which takes over an object that already exists.
        "PULUMI_SKIP_CHECKPOINTS": "true",
    }
    env |= _passphrase_env(plan.environment.engine.secrets_provider)
    return env


def _install_provider_plugin(env: Mapping[str, str], provider: Path) -> None:
    """Register the built provider in PULUMI_HOME at the exact version the SDK asks for, so the
    engine never tries to download it."""
    version = toolchain.PROVIDER_VERSION
    plugin_dir = Path(env["PULUMI_HOME"]) / "plugins" / f"resource-kubernetes-v{version}"
    if (plugin_dir / "pulumi-resource-kubernetes").is_file():
        return
    result = subprocess.run(
        ["pulumi", "plugin", "install", "resource", "kubernetes", version, "--file", str(provider)],
        env=toolchain.path_env(dict(os.environ) | dict(env)),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OperationFailed(
            f"could not register the Kubernetes provider plugin: {result.stderr.strip()}"
        )


def cluster_access(plan: Plan, *, start: bool, progress: Callable[[str], None]) -> ClusterAccess:
    """The kubeconfig for the environment's cluster; the local cluster is started when `start`."""
    override = os.environ.get("CITYKIT_KUBECONFIG")
    if override:
        return ClusterAccess(Path(override), None, f"kubeconfig {override}")
    cluster = plan.environment.cluster
    if cluster.provider == "local":
        from citykit.cluster import providers
        from citykit.cluster.local import LocalCluster

        local = LocalCluster(cluster.name)
        if not local.running():
            if not start:
                raise InputError(
                    f"the local cluster {cluster.name!r} is not running",
                    hint=f"start it with `citykit cluster up -e {plan.environment.name}` or run "
                    "`citykit up`, which starts it",
                )
            progress(f"starting the local cluster {cluster.name!r}")
            from citykit import security

            local.up(
                providers.nodes_for(plan),
                security.audit_policy(plan),
                progress=progress,
                real_node=cluster.real_node,
            )
        node = local.real_node
        # Only `up` (which starts the cluster) needs the images; destroy, status and drift work
        # without them, even when the image cache was cleared.
        if start and node is not None and plan.environment.local_images:
            from citykit.images import node as node_images

            node_images.ensure_loaded(plan, str(node.containerd_socket), progress)
        return ClusterAccess(local.kubeconfig, None, f"local cluster {cluster.name}")
    if cluster.provider == "kind":
        from citykit.cluster import kind

        kubeconfig = kind.state_dir(cluster.name) / "kubeconfig"
        if not kubeconfig.is_file():
            raise InputError(
                f"no kind cluster {cluster.name!r} created by citykit",
                hint=f"create it with `citykit cluster up -e {plan.environment.name}`",
            )
        return ClusterAccess(kubeconfig, f"kind-{cluster.name}", f"kind cluster {cluster.name}")
    kubeconfig = Path(os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config")))
    if not kubeconfig.is_file():
        raise InputError(
            f"no kubeconfig at {kubeconfig} for the existing cluster (context {cluster.context})",
            hint="set KUBECONFIG or CITYKIT_KUBECONFIG",
        )
    return ClusterAccess(kubeconfig, cluster.context, f"context {cluster.context}")


def required_secrets(compiled: Compiled) -> dict[str, list[str]]:
    """'<namespace>/<name>' -> keys, for every Secret whose values are generated at deploy time."""
    needed: dict[str, list[str]] = {}
    for obj in compiled.objects():
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj.get("kind") == "Secret" and GENERATE_ANNOTATION in annotations:
            key = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
            needed[key] = [k for k in annotations[GENERATE_ANNOTATION].split(",") if k]
    return needed


def shared_secrets(compiled: Compiled) -> dict[str, str]:
    """'<namespace>/<name>' -> the secret whose values it shares (`SecretSpec.same_as`)."""
    shared: dict[str, str] = {}
    for obj in compiled.objects():
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj.get("kind") == "Secret" and SAME_AS in annotations:
            name = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
            shared[name] = annotations[SAME_AS]
    return shared


def fill_generated(
    existing: Mapping[str, Mapping[str, str]],
    needed: Mapping[str, list[str]],
    shared: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Existing values kept (a re-run never rotates a password), missing ones generated; a
    secret that shares another's values (a database client's password) copies them."""
    result: dict[str, dict[str, str]] = {}
    for secret, keys in sorted(needed.items()):
        values = dict(existing.get(secret, {}))
        for key in keys:
            values.setdefault(key, secrets.token_urlsafe(24))
        result[secret] = {k: values[k] for k in keys}
    for secret, source in sorted((shared or {}).items()):
        if secret in result and source in result:
            for key in result[secret]:
                if key in result[source]:
                    result[secret][key] = result[source][key]
    return result


class Deployment:
    """A city's stack in one environment."""

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self.plan = compiled.plan
        self.name = stack_name(self.plan)
        self.work_dir = pulumi_dir() / "stacks" / self.name
        self._stack: auto.Stack | None = None
        self.access: ClusterAccess | None = None
        self.generated: dict[str, dict[str, str]] = {}

    # -- workspace ------------------------------------------------------------------------
    def backend_url(self) -> str:
        return self.plan.environment.engine.backend_url or f"file://{pulumi_dir() / 'backend'}"

    def open(self, *, start_cluster: bool, progress: Callable[[str], None]) -> auto.Stack:
        from pulumi import automation as auto

        _, provider = engine_binaries()
        os.environ["PATH"] = toolchain.path_env()["PATH"]
        env = _engine_env(self.plan)
        _install_provider_plugin(env, provider)
        if self.backend_url().startswith("file://"):
            Path(self.backend_url().removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.access = cluster_access(self.plan, start=start_cluster, progress=progress)
        secrets_provider = self.plan.environment.engine.secrets_provider
        options = auto.LocalWorkspaceOptions(
            work_dir=str(self.work_dir),
            pulumi_home=env["PULUMI_HOME"],
            env_vars=env,
            secrets_provider=secrets_provider,
            project_settings=auto.ProjectSettings(
                name=PROJECT,
                runtime="python",
                backend=auto.ProjectBackend(url=self.backend_url()),
                description="citykit: a city-wide digital transformation platform",
            ),
        )
        self._stack = auto.create_or_select_stack(
            stack_name=self.name, project_name=PROJECT, program=self._program, opts=options
        )
        return self._stack

    @property
    def stack(self) -> auto.Stack:
        if self._stack is None:
            raise RuntimeError("Deployment.open() first")
        return self._stack

    def ensure_generated_secrets(self) -> dict[str, dict[str, str]]:
        from pulumi import automation as auto

        existing: dict[str, dict[str, str]] = {}
        config = self.stack.get_all_config()
        if GENERATED_KEY in config:
            existing = json.loads(config[GENERATED_KEY].value)
        values = fill_generated(
            existing, required_secrets(self.compiled), shared_secrets(self.compiled)
        )
        if values != existing:
            self.stack.set_config(
                GENERATED_KEY, auto.ConfigValue(json.dumps(values, sort_keys=True), secret=True)
            )
        self.generated = values
        return values

    # -- the inline program ---------------------------------------------------------------------
    def _program(self) -> None:
        import pulumi
        import pulumi_kubernetes as k8s

        from citykit.deploy.program import ProgramOptions, deploy_city

        access = self.access
        assert access is not None
        provider = k8s.Provider(
            "cluster",
            kubeconfig=str(access.kubeconfig),
            context=access.context,
            delete_unreachable=True,
            # The provider's client allows 50 requests/s by default: a refresh of the example
            # city (a read per object, more for workloads) took 16 s of waiting for that limit.
            # The API server's priority and fairness, not the client, should say no.
            kube_client_settings=k8s.KubeClientSettingsArgs(qps=CLIENT_QPS, burst=CLIENT_BURST),
        )
        outputs = deploy_city(
            self.compiled,
            ProgramOptions(
                protect_data=self.plan.environment.protect_data,
                provider=provider,
                generated=self.generated,
            ),
        )
        for name, value in outputs.items():
            pulumi.export(name, value)


def kubectl(
    access: ClusterAccess, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl")
    if binary is None:
        raise ToolMissing("kubectl is not installed", hint="install kubectl")
    command = [binary, "--kubeconfig", str(access.kubeconfig)]
    if access.context:
        command += ["--context", access.context]
    return subprocess.run(
        [*command, *args], input=stdin, capture_output=True, text=True, check=False
    )
