"""The component contract: a component is data (class attributes) plus one small pure method.

A component is one implementation of a capability (`emqx` implements `device-broker`). It declares
its reference-model layer, what capabilities it requires and conflicts with, its images, its
settings model (which becomes part of the profile schema), its sizing rules, the ports it serves,
how readiness is judged, and its templates under `templates/<name>/`. Everything cross-cutting
(labels, namespaces, hardening, network policies, monitoring) is derived from these declarations
by the compiler, never written per component."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from citykit.contract.image_refs import local_ref
from citykit.contract.layers import Layer
from citykit.contract.model import Model

# Sizing rules are data of their own (contract/sizing.py); re-exported as part of the contract.
from citykit.contract.sizing import Scale as Scale
from citykit.contract.sizing import SizingRule as SizingRule


class ComponentSettings(Model):
    """Settings every component accepts under `layers.<layer>.<capability>` in the profile."""

    enabled: bool = Field(True, description="Deploy this capability. Set false to leave it out.")


@dataclass(frozen=True)
class Image:
    repository: str  # e.g. docker.io/emqx/emqx
    tag: str

    def ref(self, mirror: str | None) -> str:
        if not mirror:
            return f"{self.repository}:{self.tag}"
        # A mirror replaces the registry host and keeps the path, as air-gapped registries do.
        path = (
            self.repository.split("/", 1)[1]
            if "." in self.repository.split("/")[0]
            else (self.repository)
        )
        return f"{mirror.rstrip('/')}/{path}:{self.tag}"


@dataclass(frozen=True)
class LocalImage:
    """How this machine builds the component's image from packages when no registry is reachable
    (`citykit images build`): a Debian bookworm minbase root with `debian` packages, `npm`
    packages under /opt/app (on Debian's nodejs) and Go `tools`, then `script`; it runs as the
    non-root `user`.
    Debian ships older releases than upstream's tags, so `version` says what is really inside and
    names the image (`citykit.local/<component>/<key>:<version>`). The entrypoint and cmd follow
    the upstream image's, so the workload's `command`/`args` give the same command line."""

    version: str  # version of the software inside, in the upstream tag's style (v2.42.0, 15-3.3)
    source: str  # where it comes from, e.g. "debian:bookworm mosquitto", "npm:node-red@4.0.9"
    debian: tuple[str, ...] = ()  # Debian packages installed into a bookworm minbase root
    npm: tuple[str, ...] = ()  # npm packages installed (with Debian's nodejs) under /opt/app
    # Go programs built by `citykit tools install`, copied in: (path in the image, tool name).
    tools: tuple[tuple[str, str], ...] = ()
    script: str = ""  # /bin/sh run as root in the root after the installs (dirs, config, links)
    user: int = 10001  # the uid (and gid) the image runs as: the workload's `run_as`, never 0
    # The passwd/group name given to `user` when the root has no such uid. It is created before
    # the packages, so a package that adds the same system user (postgres) keeps this uid.
    user_name: str = "app"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = "/"
    stop_signal: str = ""  # as upstream's STOPSIGNAL (nginx: SIGQUIT, postgres: SIGINT)
    # A /bin/sh command run as `user` in the finished root (root filesystem as built, /tmp
    # writable) that must exit 0: proof the software starts as non-root, or the build fails.
    check: str = ""

    def ref(self, component: str, key: str) -> str:
        return local_ref(component, key, self.version)


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    protocol: Literal["TCP", "UDP"] = "TCP"
    # Who may connect besides the components that require this one: "gateway" (the ingress /
    # API gateway path), "devices" (field devices through the network edge) or "" (peers only);
    # "self": only the component's own pods and the kubelet's probes (replication, consensus,
    # health), so it is neither offered to the components that require it nor on its Service.
    exposed_to: Literal["", "gateway", "devices", "self"] = ""


@dataclass(frozen=True)
class Resources:
    """Requests per replica; limits are derived (2x CPU, 1x memory, 4x ephemeral storage) by the
    compiler. Ephemeral storage is what a container writes outside its claims (emptyDirs, logs,
    its writable layer): it is not scaled with the environment, since a small city's container
    writes as much scratch data as a large one's."""

    cpu_millis: int = 100
    memory_mi: int = 128
    ephemeral_mi: int = 256


@dataclass(frozen=True)
class SecretSpec:
    """A secret the component needs. Values are generated at deploy time, never templated."""

    name: str  # suffix: the Secret is named `<component>-<name>`
    keys: tuple[str, ...] = ("password",)
    # "<capability>:<secret suffix>": take the same values as that component's secret (e.g. a
    # database client's password is the database's), since Secrets are per namespace. Made only
    # where that component is one this talks to (a peer): no copy for a connection not made.
    same_as: str | None = None


@dataclass(frozen=True)
class Metrics:
    """Where Prometheus scrapes the component (port name from `ports`)."""

    port: str
    path: str = "/metrics"


@dataclass(frozen=True)
class ApiAccess:
    """One RBAC rule the component's service account needs on the Kubernetes API. The security
    system derives the Role/ClusterRole and binding from these; templates never write RBAC."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...] = ("get", "list", "watch")
    cluster_wide: bool = False


@dataclass(frozen=True)
class PodSecurityException:
    """A declared, reasoned deviation from the hardened defaults, shown by `plan`."""

    setting: str
    reason: str


@dataclass(frozen=True)
class Probe:
    """A health check: an HTTP GET of `path` on the named port, or a TCP connect."""

    port: str
    path: str | None = None


@dataclass(frozen=True)
class Workload:
    """A standard workload rendered by the shared templates in `templates/_workload/`: the
    Service(s), the Deployment or StatefulSet with probes, writable scratch directories and, for
    StatefulSets, a claim per replica. Components with unusual needs write their own templates
    instead (or as well: extra objects go in `templates/<name>/`)."""

    probe: Probe  # readiness
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    # Liveness, when the software serves a check of its own for it (Kong's /status); None: derived
    # from readiness by the availability pass (a slower TCP connect to the same port).
    liveness: Probe | None = None
    image: str = "main"  # key in `images`
    args: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    replicas: str | None = None  # the sizing rule giving the replica count; None: one
    data_path: str | None = None  # StatefulSet: where the claim is mounted
    storage: str | None = None  # the sizing rule giving the claim size in GiB
    writable: tuple[str, ...] = ("/tmp",)  # emptyDir mounts (root filesystem is read-only)
    run_as: int = 10001  # uid/gid: non-root (restricted Pod Security), above host uid range
    # The group, when the image's files belong to another group than `run_as` (images built for
    # arbitrary uids give their files to group 0); None: the same as `run_as`.
    run_as_group: int | None = None
    config_path: str | None = None  # where the `x.config` files are mounted (a ConfigMap)
    initial_delay: int = 10
    # Replicas that find one another by name (a gossip cluster): once there is more than one,
    # the workload is a StatefulSet, whose pods are `<name>-<i>.<name>-headless`, whatever
    # `kind` says; a single replica keeps `kind`.
    peer_names: bool = False

    def kind_for(self, replicas: int) -> Literal["Deployment", "StatefulSet"]:
        """The kind rendered for `replicas` pods."""
        return "StatefulSet" if self.peer_names and replicas > 1 else self.kind


@dataclass(frozen=True)
class RestoreDrill:
    """How `citykit verify --restore-drill` proves that a backup restores. `mark` runs like a
    `Check` (probe pod, the component's identity, `secret_env`) and writes MARKER under a
    `citykit-verify` name; the backup Job then runs on demand; `restore` runs in a scratch pod
    of the component's own image `image`, as `run_as`, with the backup volume read-only at
    /backup and `writable` emptyDirs, restores the newest backup into a scratch instance there
    and exits 0 when it finds MARKER in it."""

    mark: str
    restore: str
    secret_env: tuple[tuple[str, str, str], ...] = ()  # for `mark`: (variable, suffix, key)
    image: str = "main"  # key in the component's `images`
    run_as: int = 10001
    writable: tuple[str, ...] = ("/tmp",)
    memory_mi: int = 512


@dataclass(frozen=True)
class Backup:
    """How a stateful component's data is copied to its backup volume. The operations system
    turns this into a CronJob and a claim (`<name>-backup`) in the component's namespace.
    `script` runs under /bin/sh with TARGET (the component's service host) and the `secret_env`
    variables set; it writes under /backup."""

    image: Image
    script: str
    secret_env: tuple[tuple[str, str, str], ...] = ()  # (variable, secret suffix, key)
    drill: RestoreDrill | None = None


@dataclass(frozen=True)
class Check:
    """A functional check of the running component (`citykit verify`). `script` runs under
    /bin/sh in a short-lived pod of the verify probe image (curl, jq, psql, mosquitto clients,
    kcat, nc), in the component's namespace and with its network identity, so the component's own
    NetworkPolicies admit it. The pod gets TARGET (the component's service host), PORT_<NAME> for
    each declared port, RUN (a marker unique to this run, `citykit-verify-<time>`),
    REAL_COMPONENTS (the components whose pods run for real) and the `secret_env` variables from
    the component's Secrets. Exit 0 passes; otherwise the output's last lines are the detail.
    Scripts never print secret values and write only under a `citykit-verify` prefix."""

    name: str  # what is proved, in words: "an authenticated publish is delivered"
    script: str
    secret_env: tuple[tuple[str, str, str], ...] = ()  # (variable, secret suffix, key)
    timeout: int = 60  # seconds, pod start included


@dataclass(frozen=True)
class CheckSkip:
    """A checkov check that does not apply to a component, with the reason (shown by
    `citykit compliance`)."""

    check: str
    reason: str


class Component:
    """Base class of every component. Subclasses set the class attributes; most need no code."""

    name: ClassVar[str]
    capability: ClassVar[str]
    layer: ClassVar[Layer]
    summary: ClassVar[str]
    # The implementation chosen when the profile does not name one.
    default: ClassVar[bool] = True
    # Whether the capability is deployed when the profile does not mention it (read from the
    # default implementation).
    enabled_by_default: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ()
    # Capabilities the component connects to when the plan has them, without needing them: like
    # `requires` for ordering, network policies and deployment, but never a plan error when off.
    uses: ClassVar[tuple[str, ...]] = ()
    # Capabilities required only where the component's `Workload.replicas` figure is above one
    # (a replicated Loki keeps its logs in the data lake): there like `requires`, a plan problem
    # when off; no edge at all where the component runs single.
    replicated_requires: ClassVar[tuple[str, ...]] = ()
    # A foundation component (zones and namespaces) is a dependency of every other component.
    foundation: ClassVar[bool] = False
    conflicts: ClassVar[tuple[str, ...]] = ()
    images: ClassVar[Mapping[str, Image]] = {}
    # Recipes for building `images` locally from packages, keyed like `images` (citykit/images).
    local_images: ClassVar[Mapping[str, LocalImage]] = {}
    Settings: ClassVar[type[ComponentSettings]] = ComponentSettings
    sizing: ClassVar[tuple[SizingRule, ...]] = ()
    ports: ClassVar[tuple[Port, ...]] = ()
    resources: ClassVar[Resources] = Resources()
    secrets: ClassVar[tuple[SecretSpec, ...]] = ()
    # The replicas agree by majority (Raft, erasure-coded writes): the derived disruption budget
    # keeps a majority running as well as all but one, so two replicas may lose none.
    quorum: ClassVar[bool] = False
    # Stateful components keep data in PersistentVolumeClaims: protected from destroy in
    # environments with protectData, and backed up by the operations system.
    stateful: ClassVar[bool] = False
    metrics: ClassVar[Metrics | None] = None
    api_access: ClassVar[tuple[ApiAccess, ...]] = ()
    exceptions: ClassVar[tuple[PodSecurityException, ...]] = ()
    # How deployment judges readiness: "rollout" (workload controllers' own status), "exists"
    # (config-only objects).
    readiness: ClassVar[Literal["rollout", "exists"]] = "rollout"
    # The node pool the pods run on: general nodes, GPU/NPU nodes or district edge nodes (the
    # last two are tainted, so only components that ask for them land there).
    pool: ClassVar[Literal["general", "gpu", "edge"]] = "general"
    workload: ClassVar[Workload | None] = None
    backup: ClassVar[Backup | None] = None
    # What `citykit verify` runs against the deployed component (see `Check`).
    checks: ClassVar[tuple[Check, ...]] = ()
    checkov_skips: ClassVar[tuple[CheckSkip, ...]] = ()
    docs: ClassVar[str] = ""
    # What running the component as a real container (environment `local`) showed, and what was
    # changed for it: shown on its docs page under "Running for real".
    real_run: ClassVar[str] = ""

    @classmethod
    def template_dir(cls) -> str:
        return cls.name

    def values(self, build: Any) -> Mapping[str, Any]:
        """Extra template values computed from the build context. Pure; default none."""
        return {}

    def standard_workload(self, build: Any) -> bool:
        """Whether the shared templates render the declared `workload` for this build. A
        component whose topology follows its planned figures answers from them and renders its
        other form from its own templates (VictoriaMetrics: a single node where `replicas` is
        one, its cluster version above). Pure; default: wherever a workload is declared."""
        return True

    def check_env(self, plan: Any) -> Mapping[str, str]:
        """Extra variables for this component's `checks`, computed from the plan (the gateway's
        route table, the city's realm). Pure; default none."""
        return {}
