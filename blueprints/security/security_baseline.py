"""Security-assurance system (7.5): the roles of 三权分立 (separation of the system, security and
audit administrators), a read-only operator role per department, and the image registry
allow-list as a ValidatingAdmissionPolicy. Network policies, workload RBAC and pod hardening are
derived for every component by the passes listed in citykit/objects/passes.py."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import TemplateValues
from citykit.contract.registry import component
from citykit.objects.build import Build
from citykit.plan import admission
from citykit.plan import roles


@component
class SecurityBaseline(Component):
    name: ClassVar[str] = "security-baseline"
    capability: ClassVar[str] = "security-baseline"
    layer = layers.SECURITY
    summary: ClassVar[str] = (
        "三权分立 administrator roles, per-department operator roles, image registry allow-list."
    )
    docs: ClassVar[str] = (
        "Cluster roles for the three separated administrators (等保 level 3): the system "
        "administrator runs workloads but cannot change RBAC or read Secrets, the security "
        "administrator manages RBAC, NetworkPolicies and admission policy but not workloads, "
        "the audit administrator reads everything except Secret values and changes nothing. "
        "Each is bound to a group (`<city>:system-admins`, `<city>:security-admins`, "
        "`<city>:audit-admins`) that the identity provider maps staff into. Every department "
        "gets a read-only operator role in its tenant namespace. A ValidatingAdmissionPolicy "
        "rejects pods in the city's namespaces whose images come from other registries than "
        "the ones the plan uses (or the environment's registry mirror)."
    )
    readiness = "exists"

    def values(self, build: Build) -> TemplateValues:
        plan = build.plan
        return TemplateValues(
            own={
                "admin_roles": roles.admin_roles(plan),
                "department_roles": roles.department_roles(plan),
                "allowed_registries": admission.allowed_registries(plan),
                "city_namespaces": admission.city_namespaces(plan),
            }
        )
