"""What a real node needs besides the kubelet: the pod sandbox image, cluster DNS (CoreDNS) and
NetworkPolicy enforcement (kube-router's policy controller), as objects (plain data) and the
references of their images (addon_images.py builds them).

They run as pods in kube-system, as on a kubeadm or kind cluster, so the city's NetworkPolicies
treat them exactly as they would there: the zones' `allow-dns` policy lets every pod reach
kube-system on port 53, and nothing else is special-cased. Their images contain the binaries
built by `citykit tools install` (static) and, for kube-router, Debian's iptables and ipset."""

from __future__ import annotations

from typing import Any

from citykit import toolchain
from citykit.contract.component import LocalImage
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.images import build

PAUSE_REF = "citykit.local/pause:3.10"
COREDNS_REF = f"citykit.local/coredns:{toolchain.COREDNS_VERSION.lstrip('v')}"
# kube-router runs Debian's iptables and ipset, so its image is a Debian root with the binary.
NETPOL_TARGET = build.Target(
    "kube-router",
    "main",
    LocalImage(
        version=toolchain.KUBE_ROUTER_VERSION,
        source=f"go:github.com/cloudnativelabs/kube-router/v2@{toolchain.KUBE_ROUTER_VERSION} "
        "+ debian:bookworm iptables ipset",
        debian=("iptables", "ipset"),
        tools=(("/usr/local/bin/kube-router", "kube-router"),),
        user=65532,
        entrypoint=("/usr/local/bin/kube-router",),
        check="/usr/local/bin/kube-router --version",
    ),
    None,
)
NETPOL_REF = NETPOL_TARGET.ref
DNS_SERVICE_IP = "10.96.0.10"
DNS_LABELS = {"k8s-app": "kube-dns"}
NETPOL_LABELS = {"app": "kube-router"}
SERVICE_CIDR = "10.96.0.0/16"  # the API server's --service-cluster-ip-range (control_plane.py)
NAMESPACE = "kube-system"

COREFILE = """.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def coredns_objects() -> list[dict[str, Any]]:
    """CoreDNS as kubeadm deploys it: a ServiceAccount with read access to Services and
    EndpointSlices, the Corefile, a Deployment and the `kube-dns` Service at 10.96.0.10."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns")},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("coredns"),
            "data": {"Corefile": COREFILE},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("coredns", DNS_LABELS),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": DNS_LABELS},
                "template": {
                    "metadata": {"labels": DNS_LABELS},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        "dnsPolicy": "Default",
                        "nodeSelector": {RUNTIME_LABEL: RUNTIME},
                        "tolerations": [{"operator": "Exists"}],
                        "securityContext": {
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                            # Port 53 as a non-root user without file capabilities on the binary
                            # (a namespaced, safe sysctl).
                            "sysctls": [
                                {"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}
                            ],
                        },
                        "containers": [
                            {
                                "name": "coredns",
                                "image": COREDNS_REF,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                    {"name": "metrics", "containerPort": 9153},
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "70Mi"},
                                    "limits": {"memory": "170Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "initialDelaySeconds": 10,
                                },
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/coredns"},
                                ],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("kube-dns", DNS_LABELS),
            "spec": {
                "selector": DNS_LABELS,
                "clusterIP": DNS_SERVICE_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    {"name": "metrics", "port": 9153, "protocol": "TCP"},
                ],
            },
        },
    ]


def netpol_objects() -> list[dict[str, Any]]:
    """kube-router with only its NetworkPolicy controller (as k3s runs it): a DaemonSet on the
    host network that turns the policies into iptables rules and ipsets on the node."""
    name = "kube-router"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["networkpolicies"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["get", "create", "update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta(name, NETPOL_LABELS),
            "spec": {
                "selector": {"matchLabels": NETPOL_LABELS},
                "template": {
                    "metadata": {"labels": NETPOL_LABELS},
                    "spec": {
                        "serviceAccountName": name,
                        "hostNetwork": True,
                        "priorityClassName": "system-node-critical",
                        "nodeSelector": {RUNTIME_LABEL: RUNTIME},
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [
                            {
                                "name": name,
                                "image": NETPOL_REF,
                                "imagePullPolicy": "Never",
                                "command": [
                                    "/usr/local/bin/kube-router",
                                    "--run-firewall=true",
                                    "--run-router=false",
                                    "--run-service-proxy=false",
                                    "--enable-cni=false",
                                    "--hostname-override=$(NODE_NAME)",
                                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                                    "--health-port=20244",
                                    "--v=1",
                                ],
                                "env": [
                                    {
                                        "name": "NODE_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                    }
                                ],
                                "readinessProbe": {
                                    "httpGet": {
                                        "host": "127.0.0.1",
                                        "path": "/healthz",
                                        "port": 20244,
                                    },
                                    "initialDelaySeconds": 5,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "50Mi"},
                                    "limits": {"memory": "250Mi"},
                                },
                                "securityContext": {
                                    # iptables and ipset on the host need root with NET_ADMIN.
                                    "runAsUser": 0,
                                    "privileged": True,
                                },
                                "volumeMounts": [
                                    # The lock kube-proxy's iptables calls take on the host too.
                                    {"name": "xtables-lock", "mountPath": "/run/xtables.lock"}
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "xtables-lock",
                                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
                            }
                        ],
                    },
                },
            },
        },
    ]


def objects() -> list[dict[str, Any]]:
    return [*coredns_objects(), *netpol_objects()]
