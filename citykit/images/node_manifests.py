"""What the kind node image carries for `kind create cluster` to apply: the pod network and the
default StorageClass (kind's /kind/manifests/default-cni.yaml and default-storage.yaml), as data.

kind's own kindnetd and its local-path images are not served by the Go module proxy, so the pod
network is kube-router (already built for the real node) as a full CNI: routes between the nodes'
pod subnets, a bridge per node and the NetworkPolicy controller; storage is rancher's
local-path-provisioner, from its Go module, as kind's own storage manifest deploys it."""

from __future__ import annotations

import copy
import json
from typing import Any

from citykit.cluster.addons import NETPOL_REF
from citykit.cluster.addons import netpol_objects
from citykit.conventions import VOLUME_HELPER_LABEL

STORAGE_NAMESPACE = "local-path-storage"
STORAGE_CLASS = "standard"  # kind's name for its default class
VOLUMES_DIR = "/var/local-path-provisioner"
CNI_CONF = "/etc/cni/net.d/10-kuberouter.conflist"

# kube-router fills in the node's pod subnet (spec.podCIDR) as the bridge's host-local range.
_CNI_CONFIG = {
    "cniVersion": "0.3.0",
    "name": "kube-router",
    "plugins": [
        {
            "name": "kubernetes",
            "type": "bridge",
            "bridge": "kube-bridge",
            "isDefaultGateway": True,
            "hairpinMode": True,
            "ipam": {"type": "host-local"},
        },
        {"type": "portmap", "capabilities": {"snat": True, "portMappings": True}},
    ],
}

_INSTALL_CNI = f"""set -e
mkdir -p /etc/cni/net.d
if [ ! -f {CNI_CONF} ]; then
  cp /etc/kube-router/cni-conf.json {CNI_CONF}.tmp
  mv {CNI_CONF}.tmp {CNI_CONF}
fi
"""


def cni_objects() -> list[dict[str, Any]]:
    """kube-router's objects of the real node, its DaemonSet turned into the cluster's CNI: on
    every node, routing pod subnets over BGP between the nodes, and the policy controller."""
    objects = copy.deepcopy(netpol_objects())
    for obj in objects:
        if obj["kind"] == "ClusterRole":
            obj["rules"].append(
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch", "update"]}
            )
        if obj["kind"] != "DaemonSet":
            continue
        pod = obj["spec"]["template"]["spec"]
        pod.pop("nodeSelector", None)
        container = pod["containers"][0]
        container["imagePullPolicy"] = "IfNotPresent"
        container["command"] = [
            "/usr/local/bin/kube-router",
            "--run-firewall=true",
            "--run-router=true",
            "--run-service-proxy=false",
            "--enable-cni=true",
            "--bgp-graceful-restart=true",
            "--hostname-override=$(NODE_NAME)",
            "--health-port=20244",
            "--v=1",
        ]
        container["env"].append({"name": "KUBE_ROUTER_CNI_CONF_FILE", "value": CNI_CONF})
        container["volumeMounts"] += [
            {"name": "cni-conf-dir", "mountPath": "/etc/cni/net.d"},
            {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": True},
        ]
        pod["initContainers"] = [
            {
                "name": "install-cni",
                "image": NETPOL_REF,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", _INSTALL_CNI],
                "securityContext": {"runAsUser": 0},
                "volumeMounts": [
                    {"name": "cni-conf-dir", "mountPath": "/etc/cni/net.d"},
                    {"name": "kube-router-cfg", "mountPath": "/etc/kube-router"},
                ],
            }
        ]
        pod["volumes"] += [
            {"name": "cni-conf-dir", "hostPath": {"path": "/etc/cni/net.d"}},
            {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
            {"name": "kube-router-cfg", "configMap": {"name": "kube-router-cfg"}},
        ]
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-router-cfg", "namespace": "kube-system"},
        "data": {"cni-conf.json": json.dumps(_CNI_CONFIG, indent=2, sort_keys=True)},
    }
    return [config_map, *objects]


_SETUP = """#!/bin/sh
set -eu
mkdir -m 0777 -p "$VOL_DIR"
"""
_TEARDOWN = """#!/bin/sh
set -eu
rm -rf "$VOL_DIR"
"""


def storage_objects(provisioner_ref: str, helper_ref: str) -> list[dict[str, Any]]:
    """local-path-provisioner as kind deploys it (kind's const_storage.go): a default
    StorageClass `standard` whose volumes are directories on the node the pod runs on."""
    name = "local-path-provisioner"
    labels = {"app": name}
    helper_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod", "labels": {VOLUME_HELPER_LABEL: "true"}},
        "spec": {
            "priorityClassName": "system-node-critical",
            "tolerations": [{"key": "node.kubernetes.io/disk-pressure", "operator": "Exists"}],
            "containers": [
                {"name": "helper-pod", "image": helper_ref, "imagePullPolicy": "IfNotPresent"}
            ],
        },
    }
    config = {
        "nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [VOLUMES_DIR]}]
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STORAGE_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": f"{name}-service-account", "namespace": STORAGE_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{name}-role"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "persistentvolumeclaims", "configmaps"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "persistentvolumes", "pods"],
                    "verbs": ["*"],
                },
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                {
                    "apiGroups": ["storage.k8s.io"],
                    "resources": ["storageclasses"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{name}-bind"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{name}-role",
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": f"{name}-service-account",
                    "namespace": STORAGE_NAMESPACE,
                }
            ],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": STORAGE_NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": f"{name}-service-account",
                        "priorityClassName": "system-node-critical",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [
                            {
                                "key": "node-role.kubernetes.io/control-plane",
                                "operator": "Equal",
                                "effect": "NoSchedule",
                            },
                        ],
                        "containers": [
                            {
                                "name": name,
                                "image": provisioner_ref,
                                "imagePullPolicy": "IfNotPresent",
                                "command": [
                                    "local-path-provisioner",
                                    "--debug",
                                    "start",
                                    "--helper-image",
                                    helper_ref,
                                    "--config",
                                    "/etc/config/config.json",
                                ],
                                "env": [
                                    {
                                        "name": "POD_NAMESPACE",
                                        "valueFrom": {
                                            "fieldRef": {"fieldPath": "metadata.namespace"}
                                        },
                                    }
                                ],
                                "volumeMounts": [
                                    {"name": "config-volume", "mountPath": "/etc/config/"}
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config-volume", "configMap": {"name": "local-path-config"}}
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "namespace": "kube-system",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "local-path-config", "namespace": STORAGE_NAMESPACE},
            "data": {
                "config.json": json.dumps(config, indent=2, sort_keys=True),
                "setup": _SETUP,
                "teardown": _TEARDOWN,
                "helperPod.yaml": json.dumps(helper_pod, indent=2, sort_keys=True),
            },
        },
    ]
