"""The Go programs citykit runs, built from their Go modules (tools/<group>/go.mod, pinned).

This machine kind reaches the Go module proxy but no download site, so the Pulumi engine, the
Kubernetes provider and the local control plane are compiled here once and cached under
`~/.cache/citykit/tools/<tool>-<version>/`, keyed by version and build recipe: a warm cache makes
`install` a no-op. This module says which tools, at which versions, built how, and where a built
one is; go_build.py builds them."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from citykit import paths
from citykit.errors import ToolMissing

REPO = Path(__file__).resolve().parent.parent
TOOLS_SRC = REPO / "tools"

KUBERNETES_VERSION = "v1.37.2"
PULUMI_VERSION = "v3.274.1"
# The provider commit that the pinned Python package pulumi-kubernetes==4.25.0a1768448096 was
# released from (its alpha number is the commit's Unix time).
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_PSEUDO_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"
PROVIDER_VERSION = "4.25.0-alpha.1768448096"
ETCD_VERSION = "v3.7.3"
KWOK_VERSION = "v0.8.0"
COREDNS_VERSION = "v1.12.1"
# NetworkPolicy enforcement on the real node: kube-router's policy controller alone (as k3s
# embeds it). sigs.k8s.io/kube-network-policies builds too, but needs the nftables `queue`
# expression, which this host's kernel lacks (CONFIG_NFT_QUEUE); kube-router uses iptables and
# ipset, which it has. v2.1.0 is the only version the module proxy serves.
KUBE_ROUTER_VERSION = "v2.1.0"
CERT_MANAGER_VERSION = "v1.17.2"
# Prometheus v3.3.0 is Go module version v0.303.0 (tools/prometheus): the local prometheus image's
# binaries, since Debian's prometheus has no Kubernetes service discovery.
PROMETHEUS_VERSION = "v3.3.0"
# The data lake's MinIO server and the mc client its backup job runs: the releases of the pinned
# images quay.io/minio/minio and quay.io/minio/mc (blueprints/data/data_lake.py). MinIO tags
# releases RELEASE.<time>, which are no Go module versions (the proxy answers 403), so tools/minio
# and tools/mc require each tag's commit as a pseudo-version; the full commit is what upstream
# stamps into the binary.
MINIO_RELEASE = "RELEASE.2025-04-22T22-12-26Z"
MINIO_PSEUDO_VERSION = "v0.0.0-20250422221226-0d7408fc9969"
MINIO_COMMIT = "0d7408fc9969caf07de6a8c3a84f9fbb10a6739e"
MC_RELEASE = "RELEASE.2025-04-16T18-13-26Z"
MC_PSEUDO_VERSION = "v0.0.0-20250416181326-b00526b153a3"
MC_COMMIT = "b00526b153a31b36767991a4f5ce2cced435ee8e"
# The lint gate over the rendered manifests (tests/unit/test_kube_score.py).
KUBE_SCORE_VERSION = "v1.20.0"
# The kind provider's container engine (citykit/cluster/engine.py), for machines without a usable
# Docker: dockerd with its port proxy, the runc it runs containers with, and kind itself.
MOBY_VERSION = "v2.0.0-beta.24"
RUNC_VERSION = "v1.5.2"
KIND_VERSION = "v0.33.0"
# The kind node image's default StorageClass, as kind's own node image deploys it.
LOCAL_PATH_VERSION = "v0.0.30"
CRICTL_VERSION = "v1.37.0"  # in the kind node image, as kind's own (`kind load` runs it)
# A fixed build date keeps the kube binaries byte-identical across machines and rebuilds.
_KUBE_BUILD_DATE = "2026-01-01T00:00:00Z"


def _kube_version_ldflags(version: str) -> str:
    """What kubernetes' own build (hack/lib/version.sh) stamps into every binary: without it they
    report `v0.0.0-master+$Format:%H$`, which `kubectl version` cannot parse."""
    major, minor = version.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": _KUBE_BUILD_DATE,
    }
    return " ".join(
        f"-X {package}.{key}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in values.items()
    )


def _minio_ldflags(module: str, release: str, commit: str) -> str:
    """What MinIO's release build (`MINIO_RELEASE=RELEASE go run buildscripts/gen-ldflags.go
    <time>`; mc's is the same with MC_RELEASE) stamps: without it `--version` says
    DEVELOPMENT.GOGET and the server does not know its release time. Its GOPATH and GOROOT stamps
    only shorten paths in logged stack traces, which -trimpath already does."""
    date, clock = release.removeprefix("RELEASE.").split("T")  # 2025-04-22, 22-12-26Z
    values = {
        "Version": f"{date}T{clock.replace('-', ':')}",  # the release time in RFC 3339
        "CopyrightYear": date[:4],
        "ReleaseTag": release,
        "CommitID": commit,
        "ShortCommitID": commit[:12],
    }
    return " ".join(f"-X {module}/cmd.{key}={value}" for key, value in values.items())


@dataclass(frozen=True)
class Patch:
    """One change to an upstream file, made at build time in a copy of its module (go_build):
    `find` must occur in the file exactly once, or the build stops."""

    module: str  # the Go module, at the tool's version
    path: str  # the file, relative to the module's root
    find: str
    replace: str
    why: str


# kube-router's policy controller runs a full sync (iptables-save, rebuild, iptables-restore of
# every pod's chains) for every pod event in the cluster, back to back while pods change. On a
# kind cluster of nine nodes on two cores that took half of both cores while verify's probe pods
# came and went. After each sync the patched controller waits this long, so the events of those
# seconds are handled by one sync; verify's allowed flows are retried for about 40 s.
NETPOL_SYNC_PAUSE_SECONDS = 3
_KUBE_ROUTER_MODULE = "github.com/cloudnativelabs/kube-router/v2"
_NETPOL_SYNC_PAUSE = Patch(
    _KUBE_ROUTER_MODULE,
    "pkg/controllers/netpol/network_policy_controller.go",
    find="\t\t\t\tnpc.fullPolicySync() // fullPolicySync() is a blocking request here\n",
    replace=(
        "\t\t\t\tnpc.fullPolicySync() // fullPolicySync() is a blocking request here\n"
        "\t\t\t\tselect { // citykit: the requests of the next seconds make one sync\n"
        "\t\t\t\tcase <-stopCh:\n"
        "\t\t\t\t\treturn\n"
        f"\t\t\t\tcase <-time.After({NETPOL_SYNC_PAUSE_SECONDS} * time.Second):\n"
        "\t\t\t\t}\n"
    ),
    why="one policy sync per few seconds of pod events, not one per event",
)


@dataclass(frozen=True)
class Tool:
    name: str  # the binary's name
    group: str  # tools/<group>: the Go module it is built from
    package: str  # the Go package of its main
    version: str
    ldflags: str = ""
    # Statically linked (CGO off): the binary is also put into a container image with nothing else.
    static: bool = False
    # Build tags (`go build -tags`): features upstream's own build selects, such as seccomp.
    tags: tuple[str, ...] = ()
    # Links C libraries (CGO on, even where the environment turns it off): needs a C compiler
    # and the libraries' Debian -dev packages (scripts/system-deps).
    cgo: bool = False
    # Linked into bin_dir(), which is first on the PATH of the processes citykit starts. Off for
    # a tool that would shadow the host's own (runc: the real node's containerd runs Debian's).
    on_path: bool = True
    patches: tuple[Patch, ...] = ()

    def __post_init__(self) -> None:
        if self.static and self.cgo:
            raise ValueError(f"{self.name}: a static build has CGO off, so it cannot link C")

    @property
    def fingerprint(self) -> str:
        """Everything besides the version that decides the binary, so a changed build recipe is
        rebuilt instead of taken from the cache."""
        recipe = f"{self.package}|{self.ldflags}|{self.static}"
        # Appended only when set, so the recipes (and cached builds) of tools without them keep
        # their hash.
        if self.tags:
            recipe += f"|tags={','.join(self.tags)}"
        if self.cgo:
            recipe += "|cgo"
        for patch in self.patches:
            recipe += f"|patch={patch.module}/{patch.path}:{patch.find}->{patch.replace}"
        return hashlib.sha256(recipe.encode()).hexdigest()[:8]

    @property
    def home(self) -> Path:
        return paths.cache_dir() / "tools" / f"{self.name}-{self.version}-{self.fingerprint}"

    @property
    def binary(self) -> Path:
        return self.home / self.name

    def built(self) -> bool:
        return self.binary.is_file() and os.access(self.binary, os.X_OK)


TOOLS: tuple[Tool, ...] = (
    Tool("etcd", "etcd", "go.etcd.io/etcd/server/v3", ETCD_VERSION),
    *(
        Tool(
            name,
            "kubernetes",
            f"k8s.io/kubernetes/cmd/{name}",
            KUBERNETES_VERSION,
            _kube_version_ldflags(KUBERNETES_VERSION),
        )
        for name in (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            # The real node: a kubelet and kube-proxy from the same release as the control plane.
            "kubelet",
            "kube-proxy",
            # The kind node image (citykit/images/node_image.py) runs kubeadm; kind applies its
            # manifests with the node's kubectl.
            "kubeadm",
            "kubectl",
        )
    ),
    Tool("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok", KWOK_VERSION),
    # Cluster DNS and NetworkPolicy enforcement of the real node run as pods, from these static
    # binaries (citykit/cluster/addon_images.py makes their images).
    Tool(
        "coredns",
        "coredns",
        "github.com/coredns/coredns",
        COREDNS_VERSION,
        f"-X github.com/coredns/coredns/coremain.GitCommit={COREDNS_VERSION}",
        static=True,
    ),
    Tool(
        "kube-router",
        "kube-router",
        f"{_KUBE_ROUTER_MODULE}/cmd/kube-router",
        KUBE_ROUTER_VERSION,
        "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version="
        f"{KUBE_ROUTER_VERSION} "
        f"-X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate={_KUBE_BUILD_DATE}",
        static=True,
        patches=(_NETPOL_SYNC_PAUSE,),
    ),
    # cert-manager's controller for the real node (its image): upstream's cmd/controller module,
    # copied into tools/cert-manager because the module proxy does not serve it (see README).
    Tool(
        "cert-manager-controller",
        "cert-manager",
        "github.com/cert-manager/cert-manager/controller-binary",
        CERT_MANAGER_VERSION,
        f"-X github.com/cert-manager/cert-manager/pkg/util.AppVersion={CERT_MANAGER_VERSION}",
        static=True,
    ),
    *(
        Tool(
            name,
            "prometheus",
            f"github.com/prometheus/prometheus/cmd/{name}",
            PROMETHEUS_VERSION,
            "-X github.com/prometheus/common/version.Version="
            f"{PROMETHEUS_VERSION.lstrip('v')} "
            "-X github.com/prometheus/common/version.Branch=HEAD "
            "-X github.com/prometheus/common/version.BuildUser=citykit "
            f"-X github.com/prometheus/common/version.BuildDate={_KUBE_BUILD_DATE}",
            static=True,
        )
        for name in ("prometheus", "promtool")
    ),
    # The data lake's object store and the client its backup job runs, for their local images;
    # static like upstream's own release builds.
    Tool(
        "minio",
        "minio",
        "github.com/minio/minio",
        MINIO_RELEASE,
        _minio_ldflags("github.com/minio/minio", MINIO_RELEASE, MINIO_COMMIT),
        static=True,
    ),
    Tool(
        "mc",
        "mc",
        "github.com/minio/mc",
        MC_RELEASE,
        _minio_ldflags("github.com/minio/mc", MC_RELEASE, MC_COMMIT),
        static=True,
    ),
    # Stamped as upstream's goreleaser build does (main.version without the "v").
    Tool(
        "kube-score",
        "kube-score",
        "github.com/zegl/kube-score/cmd/kube-score",
        KUBE_SCORE_VERSION,
        f"-X main.version={KUBE_SCORE_VERSION.lstrip('v')} -X main.date={_KUBE_BUILD_DATE}",
        static=True,
    ),
    # The kind provider's engine, when no Docker engine answers (citykit/cluster/engine.py).
    # dockerd and its port proxy are static with upstream's static_build tags (nri_no_wasm
    # leaves out NRI's WebAssembly plugin runtime); runc links libseccomp, as upstream's
    # release does.
    *(
        Tool(
            name,
            "moby",
            f"github.com/moby/moby/v2/cmd/{name}",
            MOBY_VERSION,
            f"-X github.com/moby/moby/v2/dockerversion.Version={MOBY_VERSION.lstrip('v')} "
            f"-X github.com/moby/moby/v2/dockerversion.BuildTime={_KUBE_BUILD_DATE}",
            static=True,
            tags=("netgo", "osusergo", "static_build", "nri_no_wasm"),
        )
        for name in ("dockerd", "docker-proxy")
    ),
    Tool(
        "runc",
        "runc",
        "github.com/opencontainers/runc",
        RUNC_VERSION,
        cgo=True,
        tags=("seccomp", "urfave_cli_no_docs"),
        on_path=False,
    ),
    Tool("kind", "kind", "sigs.k8s.io/kind", KIND_VERSION),
    Tool(
        "crictl",
        "cri-tools",
        "sigs.k8s.io/cri-tools/cmd/crictl",
        CRICTL_VERSION,
        f"-X sigs.k8s.io/cri-tools/pkg/version.Version={CRICTL_VERSION}",
        static=True,
    ),
    Tool(
        "local-path-provisioner",
        "local-path-provisioner",
        "github.com/rancher/local-path-provisioner",
        LOCAL_PATH_VERSION,
        f"-X main.VERSION={LOCAL_PATH_VERSION}",
        static=True,
    ),
    Tool(
        "pulumi",
        "pulumi",
        "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
        PULUMI_VERSION,
        f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={PULUMI_VERSION}",
    ),
    Tool(
        "pulumi-resource-kubernetes",
        "provider",
        "./cmd/pulumi-resource-kubernetes",
        PROVIDER_VERSION,
        f"-X {PROVIDER_MODULE}/pkg/version.Version={PROVIDER_VERSION}",
    ),
)
BY_NAME = {tool.name: tool for tool in TOOLS}


def bin_dir() -> Path:
    """One directory with a link to every built tool: what `citykit tools path` prints."""
    return paths.cache_dir() / "tools" / "bin"


def find(name: str) -> Path:
    tool = BY_NAME[name]
    if not tool.built():
        raise ToolMissing(
            f"{name} {tool.version} is not installed",
            hint="run `citykit tools install` (builds it from its Go module, cached under "
            f"{paths.cache_dir() / 'tools'})",
        )
    return tool.binary


def missing() -> list[Tool]:
    return [tool for tool in TOOLS if not tool.built()]


def path_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment with the tools' directory first on PATH."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    return env
