"""Derivation passes: what the compiler adds to every component from its declarations, so no
component writes it by hand. Each pass takes one component's objects and returns the new list;
one module per pass. The order of PASSES is the order they run in, and this is the one place
that lists them."""

from __future__ import annotations

from collections.abc import Callable

from citykit.conventions import Object
from citykit.objects import (
    backups,
    checkov_skips,
    disruption_budgets,
    generated_secrets,
    kube_score_skips,
    liveness_probes,
    network_policies,
    node_scheduling,
    pod_security,
    probes_and_resources,
    pull_policy,
    service_accounts,
    tls_certificates,
    topology_spread,
    workload_rbac,
)
from citykit.plan.planned import Plan, PlannedComponent

Pass = Callable[[Plan, PlannedComponent, list[Object]], list[Object]]

PASSES: tuple[Pass, ...] = (
    backups.backups,
    generated_secrets.generated_secrets,
    service_accounts.service_account,
    pod_security.harden_workloads,
    node_scheduling.schedule_on_pool,
    topology_spread.topology_spread,
    disruption_budgets.disruption_budgets,
    liveness_probes.liveness_probes,
    pull_policy.image_pull_policy,
    tls_certificates.tls_certificates,
    network_policies.network_policies,
    workload_rbac.workload_rbac,
    checkov_skips.checkov_skips,
    kube_score_skips.kube_score_exceptions,
    probes_and_resources.require_probes_and_resources,
)
