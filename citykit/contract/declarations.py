"""What a component declares besides its class attributes' plain values: images and how to build
them locally, ports, resources, secrets, the database it serves, metrics, API access, pod-security
exceptions, its standard workload, backup and restore drill, functional checks and checkov skips.
Plain frozen data, re-exported by `citykit.contract.component` (where blueprints import them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from citykit.contract.image_refs import local_ref


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
class Database:
    """The database a store serves its clients, declared once by the store: clients read it
    through their build context (`build.peer("relational-db").jdbc_url()`), never by hand."""

    name: str
    user: str  # the role clients log in as
    port: str  # the name of the declared port it is served on
    jdbc: str  # the JDBC subprotocol: jdbc:<jdbc>://<host>:<port>/<name>
    driver: str  # the JDBC driver class


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
    # Seconds the software takes to answer once started, about: readiness's start delay, from
    # which the startup probe's budget is derived (objects/liveness_probes.py).
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
class Retention:
    """Which backup files a run keeps: the newest `copies` files under /backup matching
    `pattern` (a shell glob of file names); older ones are removed after a successful run."""

    pattern: str
    copies: int

    def __post_init__(self) -> None:
        # Expanded by the shell unquoted (it is a glob): letters, digits, . _ - and * only.
        if not self.pattern or not set(self.pattern) <= _GLOB_CHARACTERS:
            raise ValueError(f"retention pattern {self.pattern!r}: letters, digits, . _ - * only")
        if self.copies < 1:
            raise ValueError(f"retention of {self.copies} copies: keep at least one")


_GLOB_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-*")


@dataclass(frozen=True)
class Backup:
    """How a stateful component's data is copied to its backup volume. The operations system
    turns this into a CronJob and a claim (`<name>-backup`) in the component's namespace.
    `script` runs under /bin/sh with TARGET (the component's service host) and the `secret_env`
    variables set; it writes under /backup. A script that writes a new file each run declares
    how many it keeps (`keep`), or the volume fills up night after night; one that refreshes
    the same files (a mirror) needs none."""

    image: Image
    script: str
    secret_env: tuple[tuple[str, str, str], ...] = ()  # (variable, secret suffix, key)
    drill: RestoreDrill | None = None
    keep: Retention | None = None


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
