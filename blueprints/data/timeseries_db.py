"""Data layer (7.2), time-series store: VictoriaMetrics, a single node or its cluster version."""

from __future__ import annotations

from typing import ClassVar

from citykit.blueprints.shared import CURL
from citykit.blueprints.shared import StoreSettings

from citykit.contract import layers
from citykit.contract.component import Backup
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import B
from citykit.contract.sizing import GiB
from citykit.contract.sizing import city
from citykit.contract.sizing import days
from citykit.contract.sizing import figure
from citykit.contract.sizing import max_of
from citykit.contract.sizing import min_of
from citykit.contract.sizing import msg_per_s
from citykit.conventions import ROLE_LABEL
from citykit.conventions import selector_labels
from citykit.conventions import service_host
from citykit.objects.build import Build

# Debian's VictoriaMetrics single-node (v1.79, upstream's image: v1.115), with upstream's binary
# path linked so a `command` written for the upstream image runs too.
VICTORIA_METRICS_LOCAL = LocalImage(
    version="v1.79.5",
    source="debian:bookworm victoria-metrics",
    debian=("victoria-metrics",),
    script="ln -s /usr/bin/victoria-metrics /victoria-metrics-prod\nmkdir -p /storage\n",
    entrypoint=("/usr/bin/victoria-metrics",),
    check="victoria-metrics -help 2>&1 | grep -q -- -storageDataPath",
)


# A sample of `citykit_verify_marker` (metric names cannot hold `-`), labelled with the run,
# imported in Prometheus text format, flushed, then exported back. The single node's API paths:
# verify runs only where the store is real, which is the single node of the `local` environment.
TIMESERIES_ROUND_TRIP = r"""
set -eu
base="http://$TARGET:$PORT_HTTP"
series='citykit_verify_marker{run="'"$RUN"'"}'
curl -fsS --max-time 10 --data-binary "$series 1" "$base/api/v1/import/prometheus"
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  curl -fsS --max-time 10 "$base/internal/force_flush" >/dev/null 2>&1 || true
  curl -fsS --max-time 10 -G -o /tmp/export "$base/api/v1/export" \
    --data-urlencode "match[]=$series"
  if grep -q "$RUN" /tmp/export; then
    echo "written and read back ($attempt attempt(s))"
    exit 0
  fi
  sleep 1
done
echo "the sample was not read back within 10 s"
exit 1
"""

# The component's Service is the read path in both forms (the single node, or vmselect), so
# the backup exports from it: by the single node's path first, then by vmselect's (tenant 0),
# which answers only in the cluster form. The selector is sent URL-encoded (curl would read its
# brackets and braces as a glob).
HTTP_PORT = 8428  # every form's and role's HTTP port, the one the component declares
TIMESERIES_BACKUP = rf"""
set -eu
export_from() {{
  curl -fsS -G "http://$TARGET:{HTTP_PORT}$1/api/v1/export/native" \
    --data-urlencode 'match[]={{__name__!=""}}' -o /backup/latest.native
}}
export_from "" || export_from /select/0/prometheus
"""

VM_CLUSTER = "v1.115.0-cluster"
# Every role of the cluster serves HTTP (API, /health, /metrics) on the single node's port, the
# one the component declares: clients, Prometheus (the container port named `http`) and the
# NetworkPolicies derived from the declaration reach each role there. vmstorage's own ports
# (upstream's defaults) are used by vminsert and vmselect only, within the component.
VM_STORAGE_PORTS = {"vminsert": 8400, "vmselect": 8401}
VM_STORAGE_ARGS = ("-storageDataPath=/storage", "-retentionPeriod=1y")  # single node, vmstorage
# Tells the cluster's roles apart (their selectors, so their disruption budgets and spread);
# `app.kubernetes.io/component` stays the component's name, which deployment status reads.
VM_ROLE_LABEL = ROLE_LABEL
VM_REPLICATION = 2  # copies vminsert writes of each sample (upstream's -replicationFactor)


@component
class VictoriaMetrics(Component):
    name: ClassVar[str] = "victoria-metrics"
    capability: ClassVar[str] = "timeseries-db"
    layer = layers.DATA
    summary: ClassVar[str] = "Time-series store for sensor readings and city indicators."
    docs: ClassVar[str] = (
        "VictoriaMetrics: ingests device telemetry at the city's peak message rate and answers "
        "PromQL. Where `replicas` is one (dev, local) it is the single-node version. From two, "
        "upstream's cluster version: `replicas` vmstorage nodes (a StatefulSet with a claim "
        "each), and as many vminsert and vmselect pods (Deployments) that name every storage "
        "node by its stable DNS name. vminsert writes each sample to two nodes "
        "(`-replicationFactor=2`), vmselect deduplicates the copies "
        "(`-dedup.minScrapeInterval=1ms`), so a storage node may be lost or drained. The "
        "Service `victoria-metrics` is the read path in both forms (in the cluster: vmselect, "
        "`/select/0/prometheus/...`); in the cluster the write path is the Service "
        "`victoria-metrics-insert` (`/insert/0/prometheus/...`). Every role serves HTTP on "
        "8428. Storage is derived from the message rate and the copies kept."
    )
    images = {
        "main": Image("docker.io/victoriametrics/victoria-metrics", "v1.115.0"),
        "storage": Image("docker.io/victoriametrics/vmstorage", VM_CLUSTER),
        "insert": Image("docker.io/victoriametrics/vminsert", VM_CLUSTER),
        "select": Image("docker.io/victoriametrics/vmselect", VM_CLUSTER),
    }
    local_images = {"main": VICTORIA_METRICS_LOCAL}
    Settings = StoreSettings
    sizing = (
        SizingRule(
            "replicas",
            max_of(2, city.peak_messages_per_second / msg_per_s(100_000)),
            why="storage nodes (and vminsert and vmselect pods) of the cluster version: a "
            "replicated pair, more for a heavy message rate; a single node where the "
            "environment scales it to one",
            scales_with="replicas",
            maximum=64,
        ),
        SizingRule(
            "storage_gi",
            city.peak_messages_per_second
            * days(365)
            * B(1)
            * min_of(VM_REPLICATION, figure("replicas"))
            / figure("replicas")
            + GiB(10),
            why="a sample per message, compressed to about a byte, for the retention period, "
            "in as many copies as are kept, shared by the storage nodes",
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("http", HTTP_PORT),)
    resources = Resources(cpu_millis=500, memory_mi=1024)
    stateful: ClassVar[bool] = True
    metrics = Metrics("http")
    backup = Backup(CURL, TIMESERIES_BACKUP)
    checks = (Check("a sample written is read back", TIMESERIES_ROUND_TRIP),)
    workload = Workload(
        Probe("http", "/health"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/storage",
        args=VM_STORAGE_ARGS,
    )

    def standard_workload(self, build: Build) -> bool:
        nodes: int = build.component.size("replicas")
        return nodes < 2

    def values(self, build: Build) -> TemplateValues:
        if self.standard_workload(build):
            return TemplateValues()
        plan, me = build.plan, build.component
        nodes, storage = me.size("replicas"), f"{me.name}-storage"
        # vmstorage's own Service is headless: one stable name per pod.
        hosts = [f"{storage}-{i}.{service_host(storage, me.namespace)}" for i in range(nodes)]
        http = [f"-httpListenAddr=:{HTTP_PORT}"]
        roles = (
            (
                "storage",
                "vmstorage",
                "StatefulSet",
                storage,
                True,
                [
                    *VM_STORAGE_ARGS,
                    *http,
                    *(f"-{name}Addr=:{port}" for name, port in VM_STORAGE_PORTS.items()),
                ],
            ),
            (
                "insert",
                "vminsert",
                "Deployment",
                f"{me.name}-insert",
                False,
                [
                    *http,
                    f"-replicationFactor={VM_REPLICATION}",
                    *(f"-storageNode={host}:{VM_STORAGE_PORTS['vminsert']}" for host in hosts),
                ],
            ),
            (
                "select",
                "vmselect",
                "Deployment",
                me.name,
                False,
                [
                    *http,
                    "-dedup.minScrapeInterval=1ms",
                    *(f"-storageNode={host}:{VM_STORAGE_PORTS['vmselect']}" for host in hosts),
                ],
            ),
        )
        return TemplateValues(
            own={
                "cluster": [
                    {
                        "name": f"{me.name}-{key}",
                        "container": role,
                        "kind": kind,
                        "service": service,
                        "headless": headless,
                        "image": me.images[key],
                        "args": args,
                        "labels": {VM_ROLE_LABEL: role},
                        "selector": selector_labels(plan.slug, me.name) | {VM_ROLE_LABEL: role},
                        "ports": {"http": HTTP_PORT, **(VM_STORAGE_PORTS if headless else {})},
                        "replicas": nodes,
                        "data": headless,
                    }
                    for key, role, kind, service, headless, args in roles
                ]
            }
        )
