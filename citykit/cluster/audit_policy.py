"""The API-server audit policy the cluster providers (local, kind) install: 等保 security audit
of who changes who may do what."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from citykit.plan.planned import Plan


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
