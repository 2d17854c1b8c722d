"""The security-assurance system (7.5) as derivations from the plan, not per-component YAML."""

from __future__ import annotations

from typing import Any

from citykit.component import Port
from citykit.plan import Plan, PlannedComponent, tenant_namespace
from citykit.routes import API_GATEWAY, gateway_routes
from citykit.verify.probe import probe_ref


def audit_policy(plan: Plan | None = None) -> dict[str, Any]:
    """The API-server audit policy the cluster providers install (等保 security audit).

    Request and response bodies for what changes who may do what (RBAC, Secrets, admission and
    policy objects, and the city's own namespaces being removed); metadata for every other
    request; nothing for health probes and the controllers' own watch traffic."""
    del plan  # the same policy for every city today; the parameter keeps the call sites honest
    sensitive = [
        {"group": "rbac.authorization.k8s.io"},
        {"group": "", "resources": ["secrets", "serviceaccounts/token"]},
        {"group": "admissionregistration.k8s.io"},
        {"group": "networking.k8s.io", "resources": ["networkpolicies"]},
    ]
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version"]},
            {
                "level": "None",
                "verbs": ["watch"],
                "users": ["system:kube-scheduler", "system:kube-controller-manager"],
            },
            {
                "level": "None",
                "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
            },
            # Secret bodies never go to the log: metadata only, whoever reads them.
            {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
            {
                "level": "RequestResponse",
                "verbs": ["create", "update", "patch", "delete"],
                "resources": sensitive,
            },
            {
                "level": "Request",
                "verbs": ["delete"],
                "resources": [{"group": "", "resources": ["namespaces"]}],
            },
            {"level": "Metadata"},
        ],
    }


# -- 三权分立: three administrators whose powers do not overlap ----------------------------------
READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete", "deletecollection"]
WORKLOAD_RESOURCES = {
    "": ["pods", "pods/log", "services", "configmaps", "persistentvolumeclaims", "events"],
    "apps": ["deployments", "statefulsets", "daemonsets", "replicasets"],
    "batch": ["jobs", "cronjobs"],
    "autoscaling": ["horizontalpodautoscalers"],
    "policy": ["poddisruptionbudgets"],
}
SECURITY_RESOURCES = {
    "rbac.authorization.k8s.io": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
    "networking.k8s.io": ["networkpolicies"],
    "admissionregistration.k8s.io": [
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    ],
    "": ["serviceaccounts"],
}


def _rules(resources: dict[str, list[str]], verbs: list[str]) -> list[dict[str, Any]]:
    return [
        {"apiGroups": [group], "resources": sorted(names), "verbs": verbs}
        for group, names in sorted(resources.items())
    ]


def admin_roles(plan: Plan) -> list[dict[str, Any]]:
    """System, security and audit administrator ClusterRoles: no verb on a resource is held by
    two of them (the audit administrator only reads, and never Secret values)."""
    slug = plan.slug
    readable = {**WORKLOAD_RESOURCES, **SECURITY_RESOURCES}
    readable[""] = sorted(
        {
            *WORKLOAD_RESOURCES[""],
            *SECURITY_RESOURCES[""],
            "namespaces",
            "resourcequotas",
            "limitranges",
            "nodes",
        }
    )
    return [
        {
            "name": f"{slug}-system-admin",
            "group": f"{slug}:system-admins",
            "duty": "system administrator: deploys and operates workloads; no RBAC, no Secrets",
            "rules": _rules(WORKLOAD_RESOURCES, READ + WRITE),
        },
        {
            "name": f"{slug}-security-admin",
            "group": f"{slug}:security-admins",
            "duty": "security administrator: RBAC, network policy, admission policy; no workloads",
            "rules": [
                *_rules(SECURITY_RESOURCES, READ + WRITE),
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "patch"]},
            ],
        },
        {
            "name": f"{slug}-audit-admin",
            "group": f"{slug}:audit-admins",
            "duty": "audit administrator: reads everything except Secret values; changes nothing",
            "rules": _rules(readable, READ),
        },
    ]


def department_roles(plan: Plan) -> list[dict[str, Any]]:
    """A read-only operator role in each department's tenant namespace."""
    if plan.by_capability("tenancy") is None:
        return []
    return [
        {
            "namespace": tenant_namespace(plan.slug, department.slug),
            "group": f"{plan.slug}:dept-{department.slug}-operators",
            "rules": _rules(WORKLOAD_RESOURCES, READ),
        }
        for department in plan.profile.departments
    ]


def allowed_registries(plan: Plan) -> list[str]:
    """Registry prefixes pods may pull from: those of the plan's images, backups and verify probe
    (or the mirror)."""
    prefixes = set()
    for component in plan.components:
        for reference in component.images.values():
            prefixes.add(reference.split("/")[0] + "/")
    for component in plan.components:
        backup = component.cls.backup
        if backup is not None:
            prefixes.add(backup.image.ref(plan.environment.registry_mirror).split("/")[0] + "/")
    # `citykit verify` runs its probe pods in the city's namespaces.
    prefixes.add(probe_ref(plan).split("/")[0] + "/")
    return sorted(prefixes)


def city_namespaces(plan: Plan) -> list[str]:
    names = [plan.namespace(layer) for layer in plan.layers_in_use()]
    if plan.by_capability("tenancy") is not None:
        names += [tenant_namespace(plan.slug, d.slug) for d in plan.profile.departments]
    return sorted(names)


# -- NetworkPolicies from the graph ----------------------------------------------------------------
EDGE_ANNOTATION = "citykit.io/edge"
GATEWAY_CAPABILITIES = (API_GATEWAY, "ingress-gateway")


def _peer(plan: Plan, component: PlannedComponent) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": component.namespace}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": component.name}},
    }


def _ports(ports: list[Port]) -> list[dict[str, Any]]:
    return [{"protocol": p.protocol, "port": p.port} for p in ports]


def _policy(
    name: str, component: PlannedComponent, edge: str, direction: str, rule: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name[:63].rstrip("-"), "annotations": {EDGE_ANNOTATION: edge}},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": component.name}},
            "policyTypes": [direction],
            direction.lower(): [rule],
        },
    }


def _serves(component: PlannedComponent) -> bool:
    return bool(component.cls.ports) and (
        component.cls.workload is not None or component.cls.readiness == "rollout"
    )


Edge = tuple[PlannedComponent, PlannedComponent, list[Port], str, str]


def traffic_edges(plan: Plan) -> list[Edge]:
    """Every allowed connection (client, server, ports, why, name prefix): the dependency
    graph's edges to components that serve ports, gateway routes to gateway-exposed ports,
    and Prometheus to every metrics port. Nothing else may connect."""
    edges: list[Edge] = []
    for client in plan.components:
        for name in client.peers:
            server = plan.by_name(name)
            offered = [p for p in server.cls.ports if p.exposed_to != "self"]
            if _serves(server) and _serves(client) and offered:
                edges.append((client, server, offered, f"{client.name} -> {server.name}", ""))
    # The API gateway reaches exactly the backends of its route table (the one list every
    # gateway implementation is configured from); the ingress in front of it reaches every port
    # declared `exposed_to="gateway"` (the API gateway's own among them).
    api_gateway, ingress = (plan.by_capability(cap) for cap in GATEWAY_CAPABILITIES)
    routed: dict[str, list[Port]] = {}
    for route in gateway_routes(plan):
        routed.setdefault(route.backend.name, []).append(route.port)
    for server in plan.components:
        exposed = [p for p in server.cls.ports if p.exposed_to == "gateway"]
        for gateway, ports in ((api_gateway, routed.get(server.name, [])), (ingress, exposed)):
            if gateway is not None and ports and gateway.name != server.name:
                edges.append(
                    (
                        gateway,
                        server,
                        ports,
                        f"{gateway.name} -> {server.name} (gateway route)",
                        "route-",
                    )
                )
    prometheus = plan.by_capability("metrics")
    if prometheus is not None:
        for server in plan.components:
            metrics = server.cls.metrics
            if metrics is not None and server.name != prometheus.name:
                ports = [p for p in server.cls.ports if p.name == metrics.port]
                edges.append(
                    (
                        prometheus,
                        server,
                        ports,
                        f"{prometheus.name} -> {server.name} (metrics)",
                        "metrics-",
                    )
                )
    return edges


def network_policies(
    plan: Plan, component: PlannedComponent, objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Allow rules for one component, in its own namespace; the zones' default-deny does the
    rest. Each policy carries the edge it comes from in `citykit.io/edge`."""
    if not _serves(component) and not component.peers:
        return objects
    added: list[dict[str, Any]] = []
    if _serves(component):
        added.append(
            _policy(
                f"{component.name}-peers",
                component,
                f"{component.name} -> {component.name} (replicas and jobs of one component)",
                "Ingress",
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": component.name}}}
                    ]
                },
            )
        )
        added.append(
            _policy(
                f"{component.name}-peers-out",
                component,
                f"{component.name} -> {component.name} (replicas and jobs of one component)",
                "Egress",
                {
                    "to": [
                        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": component.name}}}
                    ]
                },
            )
        )
    for client, server, ports, edge, kind in traffic_edges(plan):
        if server.name == component.name:
            added.append(
                _policy(
                    f"{server.name}-{kind}from-{client.name}",
                    server,
                    edge,
                    "Ingress",
                    {"from": [_peer(plan, client)], "ports": _ports(ports)},
                )
            )
        if client.name == component.name:
            added.append(
                _policy(
                    f"{client.name}-{kind}to-{server.name}",
                    client,
                    edge,
                    "Egress",
                    {"to": [_peer(plan, server)], "ports": _ports(ports)},
                )
            )
    devices = [p for p in component.cls.ports if p.exposed_to == "devices"]
    if devices:
        added.append(
            _policy(
                f"{component.name}-from-devices",
                component,
                f"devices -> {component.name} (declared device ports)",
                "Ingress",
                {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _ports(devices)},
            )
        )
    if component.cls.api_access:
        added.append(
            _policy(
                f"{component.name}-to-apiserver",
                component,
                f"{component.name} -> kubernetes API (declared API access)",
                "Egress",
                {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]},
            )
        )
    return [*objects, *added]


# -- workload RBAC from declared API access ---------------------------------------------------
def workload_rbac(
    plan: Plan, component: PlannedComponent, objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A Role (namespace) and/or ClusterRole (cluster-wide) with exactly the declared rules,
    bound to the component's ServiceAccount."""
    access = component.cls.api_access
    if not access:
        return objects
    added: list[dict[str, Any]] = []
    subject = [{"kind": "ServiceAccount", "name": component.name, "namespace": component.namespace}]
    for cluster_wide in (False, True):
        rules = [
            {
                "apiGroups": list(a.api_groups),
                "resources": list(a.resources),
                "verbs": list(a.verbs),
            }
            for a in access
            if a.cluster_wide == cluster_wide
        ]
        if not rules:
            continue
        kind = "ClusterRole" if cluster_wide else "Role"
        name = f"{plan.slug}-{component.name}" if cluster_wide else component.name
        added.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": name},
                "rules": rules,
            }
        )
        added.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": f"{kind}Binding",
                "metadata": {"name": name},
                "subjects": subject,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            }
        )
    return [*objects, *added]


# -- TLS for every endpoint ---------------------------------------------------------------------
TLS_MOUNT = "/etc/citykit/tls"
SERVING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def issuer_names(slug: str) -> dict[str, str]:
    """The ClusterIssuers (and the root CA's Secret) every certificate refers to."""
    return {
        "bootstrap": f"{slug}-selfsigned",
        "internal": f"{slug}-ca",
        "public": f"{slug}-public",
        "root_secret": f"{slug}-root-ca",
    }


def ingress_class(slug: str) -> dict[str, str]:
    """The city's IngressClass and the controller class its ingress controller claims: one per
    city, so two cities on one cluster never serve each other's Ingresses."""
    return {"name": f"{slug}-public", "controller": f"citykit.io/ingress-nginx-{slug}"}


def tls_certificates(
    plan: Plan, component: PlannedComponent, objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """With the certificates capability on, every component that serves ports gets a
    certificate for its Service names from the city CA (`<component>-tls`), mounted read-only at
    /etc/citykit/tls in its serving pods. Foundations are skipped: the issuer cannot wait for a
    certificate it issues itself."""
    if plan.by_capability("certificates") is None or component.cls.foundation:
        return objects
    if not _serves(component):
        return objects
    secret = f"{component.name}-tls"
    host = f"{component.name}.{component.namespace}"
    certificate = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": secret},
        "spec": {
            "secretName": secret,
            "dnsNames": [component.name, host, f"{host}.svc", f"{host}.svc.cluster.local"],
            "duration": "2160h",
            "renewBefore": "360h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["server auth", "client auth", "digital signature", "key encipherment"],
            "issuerRef": {
                "kind": "ClusterIssuer",
                "group": "cert-manager.io",
                "name": issuer_names(plan.slug)["internal"],
            },
        },
    }
    for obj in objects:
        if obj["kind"] not in SERVING_KINDS:
            continue
        spec = obj["spec"]["template"].setdefault("spec", {})
        spec.setdefault("volumes", []).append(
            {"name": "tls", "secret": {"secretName": secret, "defaultMode": 0o440}}
        )
        for container in spec.get("containers", []):
            container.setdefault("volumeMounts", []).append(
                {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True}
            )
    return [*objects, certificate]
