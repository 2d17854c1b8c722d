"""The MLPS 2.0 (等保2.0, GB/T 22239-2019) level-3 technical control families, including the cloud
extension: for each, the concrete controls counted from the compiled objects (not asserted: if a
pass stops producing NetworkPolicies, the count says so) and the gaps the platform cannot close by
itself. `citykit compliance` (compliance.py) reports them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from citykit.compiler import Compiled
from citykit.conventions import DUTY_ANNOTATION
from citykit.conventions import EDGE_ANNOTATION
from citykit.conventions import GENERATE_ANNOTATION
from citykit.conventions import NETWORK_ZONE_LABEL
from citykit.conventions import POD_TEMPLATE_KINDS
from citykit.conventions import backup_name
from citykit.plan import monitoring

Object = dict[str, Any]


@dataclass(frozen=True)
class Family:
    key: str
    title: str
    title_zh: str
    controls: Callable[[Compiled], list[str]]
    gaps: tuple[str, ...]


def _count(compiled: Compiled, kind: str, where: Callable[[Object], bool] = lambda o: True) -> int:
    return sum(1 for o in compiled.objects() if o["kind"] == kind and where(o))


def _pods(compiled: Compiled) -> list[Object]:
    found = []
    for obj in compiled.objects():
        spec = obj.get("spec") or {}
        if obj["kind"] in POD_TEMPLATE_KINDS:
            found.append(spec.get("template", {}))
        elif obj["kind"] == "CronJob":
            found.append(spec.get("jobTemplate", {}).get("spec", {}).get("template", {}))
    return found


def _containers(compiled: Compiled) -> list[Object]:
    return [c for pod in _pods(compiled) for c in pod.get("spec", {}).get("containers", [])]


def _namespaces(compiled: Compiled) -> list[Object]:
    return [o for o in compiled.objects() if o["kind"] == "Namespace"]


def _restricted(ns: Object) -> bool:
    labels = ns["metadata"].get("labels", {})
    return all(
        labels.get(f"pod-security.kubernetes.io/{m}") == "restricted"
        for m in ("enforce", "audit", "warn")
    )


def network_architecture(c: Compiled) -> list[str]:
    zones = sorted({n["metadata"]["labels"].get(NETWORK_ZONE_LABEL, "") for n in _namespaces(c)})
    return [
        f"{len(_namespaces(c))} namespaces in security zones {', '.join(z for z in zones if z)}",
        f"{_count(c, 'ResourceQuota')} tenant ResourceQuotas, {_count(c, 'PriorityClass')} "
        "PriorityClasses (capacity and priority guarantees)",
        "node pools (general / GPU / edge per district) with taints for isolation",
    ]


def boundary_protection(c: Compiled) -> list[str]:
    deny = _count(c, "NetworkPolicy", lambda o: o["metadata"]["name"] == "default-deny")
    edges = _count(
        c, "NetworkPolicy", lambda o: EDGE_ANNOTATION in (o["metadata"].get("annotations") or {})
    )
    return [
        f"default-deny ingress and egress in {deny} namespaces",
        f"{edges} allow rules, each traced to a dependency-graph edge ({EDGE_ANNOTATION})",
        "single north-south entry: ingress gateway -> API gateway routes derived from the plan",
    ]


def access_control(c: Compiled) -> list[str]:
    admins = [
        o
        for o in c.objects()
        if o["kind"] == "ClusterRole"
        and DUTY_ANNOTATION in (o["metadata"].get("annotations") or {})
    ]
    tokens = sum(1 for p in _pods(c) if p.get("spec", {}).get("automountServiceAccountToken"))
    return [
        f"三权分立: {len(admins)} separated administrator roles "
        f"({', '.join(sorted(o['metadata']['name'] for o in admins))})",
        f"{_count(c, 'Role', lambda o: o['metadata']['name'] == 'department-operator')} "
        "read-only department operator roles",
        f"{_count(c, 'ServiceAccount')} per-component service accounts; API token mounted in "
        f"{tokens} pod templates only (declared API access), least-privilege roles derived",
    ]


def intrusion_prevention(c: Compiled) -> list[str]:
    restricted = sum(1 for n in _namespaces(c) if _restricted(n))
    containers = _containers(c)
    dropped = sum(
        1
        for x in containers
        if x.get("securityContext", {}).get("capabilities", {}).get("drop") == ["ALL"]
    )
    return [
        f"Pod Security `restricted` enforced in {restricted}/{len(_namespaces(c))} namespaces",
        f"{dropped}/{len(containers)} containers drop all capabilities, run as non-root with "
        "RuntimeDefault seccomp and no privilege escalation",
    ]


def malicious_code(c: Compiled) -> list[str]:
    return [
        f"image registry allow-list: {_count(c, 'ValidatingAdmissionPolicy')} admission policy "
        "rejecting images from unlisted registries",
        "every image pinned to a version tag; pulled through the registry mirror when configured",
    ]


def security_audit(c: Compiled) -> list[str]:
    return [
        "API-server audit policy (RequestResponse for RBAC/admission/policy changes, metadata "
        "for everything else, never Secret bodies) installed by the local and kind providers; "
        "audit log kept 180 days (--audit-log-maxage=180)",
        f"Loki retention {monitoring.AUDIT_RETENTION} (180 days) for audit streams",
        f"{_count(c, 'NetworkPolicy')} network policies and all RBAC objects labelled with "
        "their component and layer for review",
    ]


def identity_authentication(c: Compiled) -> list[str]:
    generated = _count(
        c, "Secret", lambda o: GENERATE_ANNOTATION in (o["metadata"].get("annotations") or {})
    )
    return [
        "single sign-on realm per city (Keycloak) with one OIDC client per application",
        f"{generated} credentials generated at deploy time (Pulumi secrets), none in templates "
        "or rendered files",
        "cluster access by client certificates / OIDC groups mapped to the separated roles",
    ]


def data_protection(c: Compiled) -> list[str]:
    read_only = sum(
        1 for x in _containers(c) if x.get("securityContext", {}).get("readOnlyRootFilesystem")
    )
    certificates = _count(c, "Certificate")
    mounted = sum(
        1
        for pod in _pods(c)
        for volume in pod.get("spec", {}).get("volumes", [])
        if volume.get("name") == "tls"
    )
    tls = (
        f"{certificates} TLS certificates from the city CA and the public issuer (cert-manager), "
        f"mounted in {mounted} serving pod templates"
        if certificates
        else "no certificates: the certificates capability is off"
    )
    return [
        tls,
        "credentials stored only as Kubernetes Secrets from encrypted Pulumi state "
        "(passphrase or cloud KMS secrets provider)",
        f"{read_only}/{len(_containers(c))} containers with a read-only root filesystem",
        "stateful resources protected from `destroy` in environments with protectData",
    ]


def backup_recovery(c: Compiled) -> list[str]:
    jobs = sorted(
        o["metadata"]["name"]
        for unit in c.units
        for o in unit.objects
        if o["kind"] == "CronJob" and o["metadata"]["name"] == backup_name(unit.component.name)
    )
    return [
        f"{len(jobs)} nightly backup CronJobs to separate backup volumes ({', '.join(jobs)})",
        "data volumes retained on delete where protectData is set",
    ]


def centralised_management(c: Compiled) -> list[str]:
    scraped = len([u for u in c.units if u.component.cls.metrics is not None])
    return [
        f"Prometheus scrapes {scraped} components; alert rules grouped by reference-model layer",
        "Grafana dashboard with a row per layer; `citykit status` / `drift` for the whole city",
        "one declarative source (profile + environment) deployed by one Pulumi stack per "
        "environment",
    ]


BACKUP = "backup-recovery"
FAMILIES = (
    Family(
        "network-architecture",
        "Network architecture",
        "网络架构",
        network_architecture,
        ("redundant physical links and bandwidth guarantees are the data centre's",),
    ),
    Family(
        "boundary-protection",
        "Boundary protection",
        "边界防护",
        boundary_protection,
        ("a perimeter firewall / WAF in front of the ingress nodes",),
    ),
    Family(
        "access-control",
        "Access control",
        "访问控制",
        access_control,
        ("mapping staff to the administrator groups in the identity provider",),
    ),
    Family(
        "intrusion-prevention",
        "Intrusion prevention",
        "入侵防范",
        intrusion_prevention,
        ("network and host intrusion detection (IDS/HIDS) on the nodes",),
    ),
    Family(
        "malicious-code",
        "Malicious code prevention",
        "恶意代码防范",
        malicious_code,
        ("image vulnerability and malware scanning before images enter the mirror",),
    ),
    Family(
        "security-audit",
        "Security audit",
        "安全审计",
        security_audit,
        (
            "node-level log shipping needs a privileged agent outside the restricted "
            "namespaces; a tamper-proof audit archive",
        ),
    ),
    Family(
        "identity-authentication",
        "Identity authentication",
        "身份鉴别",
        identity_authentication,
        (
            "two-factor authentication for administrators (configure in the identity provider)",
            "SM2/SM3 national cryptography for authentication",
        ),
    ),
    Family(
        "data-integrity-confidentiality",
        "Data integrity and confidentiality",
        "数据完整性和保密性",
        data_protection,
        (
            "SM4 encryption at rest and SM-suite TLS (GM/T 0024) need national-crypto builds of "
            "the components",
            "etcd encryption at rest is configured on the cluster",
        ),
    ),
    Family(
        "backup-recovery",
        "Backup and recovery",
        "数据备份恢复",
        backup_recovery,
        (
            "off-site copies of the backup volumes",
            "message data in Kafka relies on replication; its backup keeps topic layout only",
        ),
    ),
    Family(
        "centralised-management",
        "Centralised management",
        "集中管控",
        centralised_management,
        ("physical security and environment monitoring of the machine rooms",),
    ),
)
