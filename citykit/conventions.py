"""citykit's conventions on Kubernetes objects, in one place (after kopf's `conventions` module
and lightkube's `sort_objects`): the labels and annotations citykit writes and reads, the order
kinds are applied in, which kinds are cluster-scoped or run pods, and the names of the objects
one component refers to in another (Secrets, Services, certificates, issuers).

Whatever writes one of these and whatever reads it import it from here, so a renamed label or
Secret cannot leave a reader behind. Imports nothing from citykit: every layer uses it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Object = dict[str, Any]

# -- labels -----------------------------------------------------------------------------------
# Kubernetes' recommended labels (app.kubernetes.io), on every object citykit renders.
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "citykit"
# The reference model's place of every object: its layer and clause.
LAYER_LABEL = "citykit.io/layer"
CLAUSE_LABEL = "citykit.io/clause"
# On namespaces: the network zone (政务外网 / 互联网区 / 管理区) a namespace belongs to.
NETWORK_ZONE_LABEL = "citykit.io/zone"
# On a department's tenant namespace and its quota objects (metering).
DEPARTMENT_LABEL = "citykit.io/department"
# A role within one component whose parts run as separate workloads (VictoriaMetrics' cluster).
ROLE_LABEL = "citykit.io/role"
# On every probe pod of `citykit verify`: its value is the city's slug.
VERIFY_LABEL = "citykit.io/verify"
# Labels set by Kubernetes itself that citykit selects on.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
ZONE_LABEL = "topology.kubernetes.io/zone"
HOST_LABEL = "kubernetes.io/hostname"
# Set by Kubernetes on each EndpointSlice: the Service it serves.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
# kwok's simulated nodes carry `type: kwok`.
NODE_TYPE_LABEL = "type"
# Node labels (and taints) of citykit's node pools; the real node of a local cluster carries
# RUNTIME_LABEL with the value RUNTIME.
POOL_LABEL = "citykit.io/pool"
RUNTIME_LABEL = "citykit.io/runtime"
RUNTIME = "containerd"
# On the helper pods local-path-provisioner runs to make and remove a volume's directory: kwok
# completes those that land on a simulated node (kwok-stages.yaml spells it too), as a kubelet
# would once the directory exists.
VOLUME_HELPER_LABEL = "citykit.io/volume-helper"


def common_labels(city: str, component: str, layer: str, clause: str) -> dict[str, str]:
    """The labels every object of a component carries."""
    return {
        MANAGED_BY_LABEL: MANAGER,
        PART_OF_LABEL: city,
        COMPONENT_LABEL: component,
        LAYER_LABEL: layer,
        CLAUSE_LABEL: clause,
    }


def selector_labels(city: str, component: str) -> dict[str, str]:
    """The labels a component's workloads select their pods by."""
    return {NAME_LABEL: component, INSTANCE_LABEL: city}


# -- annotations ------------------------------------------------------------------------------
# On a Secret: the keys whose values the deployment generates (comma-separated).
GENERATE_ANNOTATION = "citykit.io/generate"
# On a Secret: `<namespace>/<name>` of another component's Secret whose values it copies.
SAME_AS_ANNOTATION = "citykit.io/same-as"
# On a NetworkPolicy: the dependency-graph edge (or route, or scrape) it allows.
EDGE_ANNOTATION = "citykit.io/edge"
# On an administrator role (三权分立): the duty it holds.
DUTY_ANNOTATION = "citykit.io/duty"
# kube-score reads the checks to skip from KUBE_SCORE_IGNORE (scorecard/scorecard.go); the reason
# for each is ours, one annotation per check under KUBE_SCORE_REASON (check ids are at most 63
# characters, an annotation name's limit).
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_REASON = "kube-score.citykit.io/"


def checkov_skip_annotation(index: int) -> str:
    """The annotation checkov reads its `index`-th skip from (`CHECK=reason`)."""
    return f"checkov.io/skip{index}"


# -- kinds ------------------------------------------------------------------------------------
# Apply order by kind (after lightkube's sort_objects): what others refer to comes first.
KIND_ORDER = (
    "CustomResourceDefinition",
    "Namespace",
    "PriorityClass",
    "StorageClass",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "Service",
    "IngressClass",
    "Ingress",
    "DaemonSet",
    "Deployment",
    "StatefulSet",
    "Job",
    "CronJob",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)
CLUSTER_SCOPED = {
    "CustomResourceDefinition",
    "Namespace",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ClusterIssuer",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
# Kinds that run pods: those that keep them running, those whose pods run to completion.
LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
REPLICATED_KINDS = ("Deployment", "StatefulSet")
POD_TEMPLATE_KINDS = (*LONG_RUNNING_KINDS, "Job")
WORKLOAD_KINDS = (*POD_TEMPLATE_KINDS, "CronJob")
BATCH_KINDS = ("Job", "CronJob")


def kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def sort_objects(objects: Iterable[Object]) -> list[Object]:
    """Objects in apply order: by kind (KIND_ORDER, unknown kinds last), then namespace, name."""
    return sorted(
        objects,
        key=lambda o: (
            kind_rank(o["kind"]),
            o["metadata"].get("namespace", ""),
            o["metadata"].get("name", ""),
        ),
    )


def pod_templates(obj: Object) -> list[Object]:
    """The pod templates of a workload (created empty where missing), none for other kinds."""
    spec = obj.get("spec") or {}
    if obj["kind"] in POD_TEMPLATE_KINDS:
        return [spec.setdefault("template", {})]
    if obj["kind"] == "CronJob":
        return [
            spec.setdefault("jobTemplate", {}).setdefault("spec", {}).setdefault("template", {})
        ]
    return []


def workload_replicas(obj: Object) -> int:
    """The pods a workload keeps: its `replicas` for a Deployment or StatefulSet, else one."""
    if obj["kind"] not in REPLICATED_KINDS:
        return 1
    return int((obj.get("spec") or {}).get("replicas", 1))


# -- names ------------------------------------------------------------------------------------
def secret_name(component: str, secret: str) -> str:
    """The Secret a component's SecretSpec `secret` becomes."""
    return f"{component}-{secret}"


def tls_secret_name(component: str) -> str:
    """The Secret (and Certificate) holding a component's serving certificate."""
    return f"{component}-tls"


def backup_name(component: str) -> str:
    """A component's backup CronJob and the claim its copies go to."""
    return f"{component}-backup"


def service_name(component: str) -> str:
    """A component's (load-balanced) Service: named after the component."""
    return component


def headless_service_name(component: str) -> str:
    """The headless Service that gives a StatefulSet's pods their stable names."""
    return f"{component}-headless"


def service_host(component: str, namespace: str) -> str:
    """A component's Service as other pods reach it."""
    return f"{service_name(component)}.{namespace}.svc"


def pod_host(component: str, ordinal: int, namespace: str) -> str:
    """One StatefulSet pod of a component by its stable name, through the headless Service."""
    return f"{component}-{ordinal}.{headless_service_name(component)}.{namespace}.svc"


def headless_host(component: str, namespace: str) -> str:
    """The headless Service of a component: one DNS record per pod (peer discovery)."""
    return f"{headless_service_name(component)}.{namespace}.svc"


def tenant_namespace(city: str, department: str) -> str:
    """A department's tenant namespace (made by the tenancy component)."""
    return f"{city}-dept-{department}"[:63].rstrip("-")


def issuer_names(city: str) -> dict[str, str]:
    """The ClusterIssuers (and the root CA's Secret) every certificate refers to."""
    return {
        "bootstrap": f"{city}-selfsigned",
        "internal": f"{city}-ca",
        "public": f"{city}-public",
        "root_secret": f"{city}-root-ca",
    }


def ingress_class(city: str) -> dict[str, str]:
    """The city's IngressClass and the controller class its ingress controller claims: one per
    city, so two cities on one cluster never serve each other's Ingresses."""
    return {"name": f"{city}-public", "controller": f"citykit.io/ingress-nginx-{city}"}
