"""Derivation passes: what the compiler adds to every component from its declarations, so no
component writes it by hand. Each pass takes one component's objects and returns the new list;
one module per pass. The order of PASSES is the order they run in, and this is the one place
that lists them."""

from __future__ import annotations

from collections.abc import Callable

from citykit.conventions import Object
from citykit.objects import backups
from citykit.objects import checkov_skips
from citykit.objects import disruption_budgets
from citykit.objects import generated_secrets
from citykit.objects import kube_score_skips
from citykit.objects import liveness_probes
from citykit.objects import network_policies
from citykit.objects import node_scheduling
from citykit.objects import pod_security
from citykit.objects import probes_and_resources
from citykit.objects import pull_policy
from citykit.objects import service_accounts
from citykit.objects import tls_certificates
from citykit.objects import topology_spread
from citykit.objects import workload_rbac
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent

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
