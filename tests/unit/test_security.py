"""The security-assurance system as derived for the example city, in every environment."""

from __future__ import annotations

import re
from typing import Any

import pytest

from citykit import compiler
from citykit import manifests
from citykit.cluster.audit_policy import audit_policy
from citykit.compiler import Compiled
from citykit.conventions import EDGE_ANNOTATION
from citykit.plan.traffic import GATEWAY_CAPABILITIES
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def compiled(request: pytest.FixtureRequest) -> Compiled:
    return compiler.compile_city(EXAMPLE, request.param)


def by_kind(compiled: Compiled, kind: str) -> list[dict[str, Any]]:
    return [o for o in compiled.objects() if o["kind"] == kind]


def test_every_workload_namespace_is_restricted_with_default_deny(compiled: Compiled) -> None:
    namespaces = {n["metadata"]["name"]: n for n in by_kind(compiled, "Namespace")}
    workload_namespaces = {
        o["metadata"]["namespace"]
        for o in compiled.objects()
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job")
    }
    assert workload_namespaces <= set(namespaces)
    deny = {
        p["metadata"]["namespace"]
        for p in by_kind(compiled, "NetworkPolicy")
        if p["metadata"]["name"] == "default-deny"
        and p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    }
    for name, namespace in namespaces.items():
        labels = namespace["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", name
        assert name in deny, name


def test_every_allow_rule_traces_to_a_graph_edge_or_a_declared_exposure(
    compiled: Compiled,
) -> None:
    plan = compiled.plan
    edges = {f"{a} -> {b}" for a, b in plan.edges()}
    allowed_suffixes = (
        "(gateway route)",
        "(metrics)",
        "(replicas and jobs of one component)",
        "(declared device ports)",
        "(declared API access)",
    )
    rules = [
        p
        for p in by_kind(compiled, "NetworkPolicy")
        if p["metadata"]["name"] not in ("default-deny", "allow-dns")
    ]
    assert rules
    for policy in rules:
        edge = policy["metadata"]["annotations"][EDGE_ANNOTATION]
        assert edge in edges or edge.endswith(allowed_suffixes), edge
        if edge in edges:
            client, server = edge.split(" -> ")
            assert server in plan.by_name(client).peers


def test_a_component_reaches_exactly_what_it_requires(compiled: Compiled) -> None:
    plan = compiled.plan
    for component in plan.components:
        egress = [
            p
            for p in by_kind(compiled, "NetworkPolicy")
            if p["metadata"]["namespace"] == component.namespace
            and p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
            == component.name
            and p["spec"]["policyTypes"] == ["Egress"]
        ]
        reached = {
            rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for p in egress
            for rule in p["spec"]["egress"]
            if rule.get("to") and "podSelector" in rule["to"][0]
        }
        reached.discard(component.name)
        allowed = {d for d in component.peers if plan.by_name(d).cls.ports}
        if component.capability in GATEWAY_CAPABILITIES:
            allowed |= {
                c.name
                for c in plan.components
                if any(p.exposed_to == "gateway" for p in c.cls.ports)
            }
        if component.capability == "metrics":
            allowed |= {c.name for c in plan.components if c.cls.metrics}
        assert reached <= allowed, (component.name, reached - allowed)
        assert {
            d for d in component.peers if plan.by_name(d).cls.ports and plan.by_name(d).cls.workload
        } <= reached | {component.name}


def test_separated_administrators_do_not_share_write_powers(compiled: Compiled) -> None:
    roles = {
        r["metadata"]["name"]: r
        for r in by_kind(compiled, "ClusterRole")
        if "citykit.io/duty" in (r["metadata"].get("annotations") or {})
    }
    slug = compiled.plan.slug
    assert set(roles) == {f"{slug}-system-admin", f"{slug}-security-admin", f"{slug}-audit-admin"}

    def powers(role: dict[str, Any], writes: bool) -> set[tuple[str, str, str]]:
        return {
            (g, r, v)
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
            if (v not in ("get", "list", "watch")) == writes
        }

    system, security_admin, audit = (
        roles[f"{slug}-{n}-admin"] for n in ("system", "security", "audit")
    )
    assert not powers(audit, writes=True)
    assert not {(g, r) for g, r, _ in powers(system, True)} & {
        (g, r) for g, r, _ in powers(security_admin, True)
    }
    for role in roles.values():
        assert not any("secrets" in rule["resources"] for rule in role["rules"])
    bindings = {b["metadata"]["name"]: b for b in by_kind(compiled, "ClusterRoleBinding")}
    groups = {bindings[name]["subjects"][0]["name"] for name in roles}
    assert len(groups) == 3


def test_workload_rbac_is_exactly_the_declared_access(compiled: Compiled) -> None:
    for component in compiled.plan.components:
        roles = [
            o
            for o in compiled.objects()
            if o["kind"] in ("Role", "ClusterRole")
            and o["metadata"]["labels"]["app.kubernetes.io/component"] == component.name
            and "citykit.io/duty" not in (o["metadata"].get("annotations") or {})
            and o["metadata"]["name"] != "department-operator"
        ]
        declared = sorted((a.api_groups, a.resources, a.verbs) for a in component.cls.api_access)
        rendered = sorted(
            (tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"]))
            for role in roles
            for r in role["rules"]
        )
        assert rendered == declared, component.name


def test_service_account_tokens_only_where_api_access_is_declared(compiled: Compiled) -> None:
    for unit in compiled.units:
        for obj in unit.objects:
            if obj["kind"] == "ServiceAccount":
                assert obj["automountServiceAccountToken"] == bool(unit.component.cls.api_access)


PASSWORDISH = re.compile(
    r"(?i)(password|passwd|secret|token|apikey|api_key)[\"']?\s*[:=]\s*"
    r"[\"']?([A-Za-z0-9+/_\-]{8,})"
)


def test_no_literal_credential_in_rendered_files(compiled: Compiled) -> None:
    for path, text in manifests.files(compiled).items():
        for match in PASSWORDISH.finditer(text):
            value = match.group(2)
            assert (
                value.startswith(("secretKeyRef", "valueFrom", "secretName"))
                or value.isupper()
                or ("-" in value and value.islower())
            ), f"{path}: {match.group(0)}"
    for secret in by_kind(compiled, "Secret"):
        assert "data" not in secret and "stringData" not in secret


def test_audit_policy_keeps_secret_bodies_out(compiled: Compiled) -> None:
    policy = audit_policy(compiled.plan)
    secret_rules = [
        r
        for r in policy["rules"]
        if any("secrets" in res.get("resources", []) for res in r.get("resources", []))
    ]
    assert secret_rules[0]["level"] == "Metadata"  # first match wins
    assert policy["rules"][-1] == {"level": "Metadata"}


def test_image_allow_list_covers_exactly_the_plan_registries(compiled: Compiled) -> None:
    policy = by_kind(compiled, "ValidatingAdmissionPolicy")[0]
    allowed = policy["spec"]["variables"][0]["expression"]
    for obj in compiled.objects():
        for template in [
            obj.get("spec", {}).get("template", {}),
            obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}),
        ]:
            for container in template.get("spec", {}).get("containers", []):
                assert f'"{container["image"].split("/")[0]}/"' in allowed
    if compiled.plan.environment.registry_mirror:
        mirror_host = compiled.plan.environment.registry_mirror.split("/")[0]
        assert allowed == f'["{mirror_host}/"]'
