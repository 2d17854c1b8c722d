"""Compute facilities (7.1.3): department tenancy — a namespace per department with quota, limits,
default-deny and metering labels — and the city's priority classes."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import TemplateValues
from citykit.contract.registry import component
from citykit.conventions import tenant_namespace
from citykit.objects.build import Build


@component
class Tenancy(Component):
    name: ClassVar[str] = "tenancy"
    capability: ClassVar[str] = "tenancy"
    layer = layers.COMPUTE
    summary: ClassVar[str] = (
        "A namespace per department (tenant) with ResourceQuota, LimitRange, default-deny, "
        "metering labels; city PriorityClasses."
    )
    docs: ClassVar[str] = (
        "Each department in the profile becomes a tenant namespace `<city>-dept-<department>` in "
        "the government zone, with the quota from the profile (`departments[].quota`), a "
        "LimitRange so every container has requests and limits, restricted Pod Security, "
        "default-deny "
        "NetworkPolicies and a `citykit.io/department` label used for metering. Three "
        "PriorityClasses (critical, standard, batch) order the city's workloads."
    )
    readiness = "exists"

    def values(self, build: Build) -> TemplateValues:
        plan = build.plan
        tenants = []
        for department in plan.profile.departments:
            merged = department.quota.model_dump(by_alias=True)
            tenants.append(
                {
                    "namespace": tenant_namespace(plan.slug, department.slug),
                    "slug": department.slug,
                    "name": department.name,
                    "quota": {
                        "requests.cpu": str(merged["cpu"]),
                        "limits.cpu": str(merged["cpu"] * 2),
                        "requests.memory": f"{merged['memoryGi']}Gi",
                        "limits.memory": f"{merged['memoryGi']}Gi",
                        "requests.storage": f"{merged['storageGi']}Gi",
                        "pods": str(merged["pods"]),
                    },
                }
            )
        priorities = [
            {
                "name": f"{plan.slug}-critical",
                "value": 100000,
                "description": "City-critical services: gateway, identity, brokers, databases.",
            },
            {
                "name": f"{plan.slug}-standard",
                "value": 10000,
                "description": "Applications and common capabilities.",
            },
            {
                "name": f"{plan.slug}-batch",
                "value": 1000,
                "description": "Batch and analytics jobs; preempted first.",
            },
        ]
        return TemplateValues(own={"tenants": tenants, "priorities": priorities})
