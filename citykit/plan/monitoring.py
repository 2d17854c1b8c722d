"""The operations system (7.6) derived from the plan: scrape jobs, alert rules, dashboards, log
retention. Pure functions of the plan, used by the operations components' values() (the
backups it also derives are a pass: objects/backups.py)."""

from __future__ import annotations

import json
from typing import Any

from citykit.contract import layers
from citykit.conventions import NAME_LABEL
from citykit.conventions import headless_host
from citykit.conventions import pod_host
from citykit.conventions import service_host
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent

AUDIT_RETENTION_DAYS = 180  # 等保 level 3 keeps security audit records >= 6 months
AUDIT_RETENTION = f"{AUDIT_RETENTION_DAYS * 24}h"
DEFAULT_RETENTION = "720h"
# The external label that tells the replicas of an HA Prometheus pair apart (their series would
# otherwise collide wherever they meet); its value is the pod's name.
REPLICA_LABEL = "replica"
POD_NAME = "POD_NAME"
# A replicated Loki: its bucket in the data lake, the variables its configuration reads, and its
# gossip port (memberlist).
LOKI_BUCKET = "loki"
POD_IP = "POD_IP"
S3_ACCESS_KEY = "S3_ACCESS_KEY"
S3_SECRET_KEY = "S3_SECRET_KEY"
MEMBERLIST_PORT = 7946


def scraped(plan: Plan) -> list[PlannedComponent]:
    return [c for c in plan.components if c.cls.metrics is not None]


def prometheus_config(
    plan: Plan, alerting: PlannedComponent | None, replicated: bool = False
) -> dict[str, Any]:
    """Scrape jobs, rules and alerting. `replicated`: one of an HA pair of Prometheus replicas
    that scrape the same targets; each carries its pod's name as the `replica` external label
    (expanded from the environment: `--enable-feature=expand-external-labels`), dropped from
    the alerts it sends, so that Alertmanager sees both replicas' copies of an alert as one."""
    jobs = []
    for component in scraped(plan):
        metrics = component.cls.metrics
        assert metrics is not None
        jobs.append(
            {
                "job_name": component.name,
                "metrics_path": metrics.path,
                "kubernetes_sd_configs": [
                    {
                        "role": "pod",
                        "namespaces": {"names": [component.namespace]},
                        "selectors": [{"role": "pod", "label": f"{NAME_LABEL}={component.name}"}],
                    }
                ],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                        "regex": metrics.port,
                        "action": "keep",
                    },
                    {"target_label": "component", "replacement": component.name},
                    {"target_label": "layer", "replacement": component.layer.key},
                    {"target_label": "clause", "replacement": component.layer.clause},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                ],
            }
        )
    external_labels = {"city": plan.slug}
    if replicated:
        external_labels[REPLICA_LABEL] = "${" + POD_NAME + "}"
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": "30s",
            "evaluation_interval": "30s",
            "external_labels": external_labels,
        },
        "rule_files": ["/etc/prometheus/rules.yml"],
        "scrape_configs": jobs,
    }
    if alerting is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": alertmanager_targets(alerting)}]}]
        }
        if replicated:
            config["alerting"]["alert_relabel_configs"] = [
                {"action": "labeldrop", "regex": REPLICA_LABEL}
            ]
    return config


def alertmanager_targets(alerting: PlannedComponent) -> list[str]:
    """Where Prometheus sends alerts: every replica of a clustered Alertmanager by its stable
    name (each must get every alert; the cluster deduplicates the notifications, and the
    load-balanced Service would hand each alert to one replica only), else its Service."""
    port = alerting.cls.ports[0].port
    workload = alerting.cls.workload
    replicas = alerting.replicas
    if workload is not None and replicas > 1 and workload.kind_for(replicas) == "StatefulSet":
        return [f"{pod_host(alerting.name, i, alerting.namespace)}:{port}" for i in range(replicas)]
    return [f"{service_host(alerting.name, alerting.namespace)}:{port}"]


def alert_rules(plan: Plan) -> dict[str, Any]:
    """One group per reference-model layer, one 'down' alert per scraped component."""
    groups = []
    for layer in layers.ALL:
        members = [c for c in scraped(plan) if c.layer.key == layer.key]
        if not members:
            continue
        groups.append(
            {
                "name": f"{layer.clause} {layer.title}",
                "rules": [
                    {
                        "alert": "ComponentDown",
                        "expr": f'up{{component="{c.name}"}} == 0',
                        "for": "5m",
                        "labels": {"severity": "critical", "layer": layer.key, "component": c.name},
                        "annotations": {"summary": f"{c.name} ({layer.title_zh}) is down"},
                    }
                    for c in members
                ],
            }
        )
    return {"groups": groups}


def dashboard(plan: Plan) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for layer in layers.ALL:
        members = [c for c in plan.components if c.layer.key == layer.key]
        if not members:
            continue
        panels.append(
            {
                "type": "row",
                "title": f"{layer.clause} {layer.title_zh} {layer.title}",
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
            }
        )
        y += 1
        for index, member in enumerate(members):
            expr = (
                f'up{{component="{member.name}"}}'
                if member.cls.metrics
                else f'count(up{{layer="{layer.key}"}})'
            )
            panels.append(
                {
                    "type": "stat",
                    "title": member.name,
                    "targets": [{"expr": expr, "refId": "A"}],
                    "gridPos": {"x": (index % 6) * 4, "y": y + index // 6 * 4, "w": 4, "h": 4},
                }
            )
        y += ((len(members) - 1) // 6 + 1) * 4
    return {
        "title": f"{plan.profile.city.name} — city platform",
        "uid": f"citykit-{plan.slug}",
        "schemaVersion": 39,
        "panels": panels,
        "tags": ["citykit"],
    }


def grafana_provisioning(plan: Plan, prometheus_url: str | None) -> dict[str, str]:
    """Grafana's provisioning files: Prometheus at `prometheus_url` (read by Grafana from its
    peer's declaration) as the data source, and the city dashboard."""
    datasources = {
        "apiVersion": 1,
        "datasources": []
        if prometheus_url is None
        else [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "access": "proxy",
                "isDefault": True,
                "url": prometheus_url,
            }
        ],
    }
    providers = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "citykit",
                "type": "file",
                "options": {"path": "/etc/grafana/provisioning/citykit"},
            }
        ],
    }
    return {
        "datasources.yaml": json.dumps(datasources, sort_keys=True),
        "dashboards.yaml": json.dumps(providers, sort_keys=True),
        "city.json": json.dumps(dashboard(plan), sort_keys=True, ensure_ascii=False),
    }


def loki_config(
    loki: PlannedComponent | None = None, lake: PlannedComponent | None = None
) -> dict[str, Any]:
    """Loki in monolithic mode (`-target=all`). A single instance (no `loki`, or one replica)
    keeps its ring in memory and chunks and index on its volume. Replicated, as upstream scales
    the monolithic mode: the replicas form a memberlist ring (joined through the headless
    Service, each advertising its pod's IP), keep `replication_factor` copies of what they
    ingest, and share chunks and index (TSDB shipper) in bucket LOKI_BUCKET of the data lake
    `lake`. The pod's IP and the lake's keys are read from the environment
    (`-config.expand-env=true`), never written here. The compactor, which applies retention, runs
    on one replica, chosen by its own ring."""
    common: dict[str, Any] = {"path_prefix": "/loki", "replication_factor": 1}
    config: dict[str, Any] = {"auth_enabled": False, "server": {"http_listen_port": 3100}}
    store = "filesystem"
    if loki is None or loki.replicas == 1:
        common["ring"] = {"kvstore": {"store": "inmemory"}}
        common["storage"] = {
            "filesystem": {"chunks_directory": "/loki/chunks", "rules_directory": "/loki/rules"}
        }
    else:
        assert lake is not None, "a replicated Loki requires the data lake (plan)"
        store = "s3"
        common["replication_factor"] = loki.size("replication_factor")
        # The ring's address of every module (ingester, scheduler, compactor) and memberlist's.
        common["instance_addr"] = "${" + POD_IP + "}"
        common["ring"] = {"kvstore": {"store": "memberlist"}}
        common["storage"] = {
            "s3": {
                # The lake's S3 port is its first; it serves plain HTTP inside the cluster.
                "endpoint": f"{service_host(lake.name, lake.namespace)}:{lake.cls.ports[0].port}",
                "bucketnames": LOKI_BUCKET,
                "access_key_id": "${" + S3_ACCESS_KEY + "}",
                "secret_access_key": "${" + S3_SECRET_KEY + "}",
                "insecure": True,
                "s3forcepathstyle": True,
            }
        }
        config["memberlist"] = {
            "bind_port": MEMBERLIST_PORT,
            "advertise_addr": "${" + POD_IP + "}",
            # dns+: every address of the headless Service (its pods, ready or not), resolved
            # again at each attempt to join.
            "join_members": [f"dns+{headless_host(loki.name, loki.namespace)}:{MEMBERLIST_PORT}"],
        }
    config |= {
        "common": common,
        "schema_config": {
            "configs": [
                {
                    "from": "2024-01-01",
                    "store": "tsdb",
                    "object_store": store,
                    "schema": "v13",
                    "index": {"prefix": "index_", "period": "24h"},
                }
            ]
        },
        "compactor": {
            "working_directory": "/loki/compactor",
            "retention_enabled": True,
            "delete_request_store": store,
        },
        "limits_config": {
            "retention_period": DEFAULT_RETENTION,
            "retention_stream": [
                {"selector": '{stream="audit"}', "priority": 1, "period": AUDIT_RETENTION}
            ],
        },
    }
    return config
