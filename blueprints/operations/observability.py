"""Operations and maintenance system (7.6): metrics (Prometheus), alerting (Alertmanager),
dashboards (Grafana) and logs (Loki). Scrape jobs, alert rules and dashboards are derived from
the plan — every component that declares `metrics` is scraped, alerted on and drawn, grouped by
reference-model layer — never written per component."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import (
    ApiAccess,
    Backup,
    Check,
    Component,
    ComponentSettings,
    Image,
    LocalImage,
    Metrics,
    Port,
    Probe,
    Resources,
    SecretSpec,
    SizingRule,
    Workload,
)
from citykit.contract.registry import component
from citykit.contract.sizing import GB_per_day, GiB, Num, choose, city, days, figure
from citykit.conventions import pod_host, secret_name
from citykit.plan import monitoring

CURL = Image("docker.io/curlimages/curl", "8.13.0")
# MinIO's client, at the release the data lake ships, makes a replicated Loki's bucket.
MC = Image("quay.io/minio/mc", "RELEASE.2025-04-16T18-13-26Z")
CLUSTER_PORT = 9094  # Alertmanager's gossip

# Prometheus v3.3.0 itself (static binaries built by `citykit tools install` from its Go module),
# not Debian's 2.42, which is built without Kubernetes service discovery, the heart of the scrape
# configuration. Laid out as upstream's image: /bin/prometheus and /bin/promtool, a default
# config, the data directory /prometheus, nobody (65534), the same ENTRYPOINT and CMD. The web UI's
# assets are not built (npm), so /graph is empty; the API and /-/ready serve as upstream's.
PROMETHEUS_DEFAULT_CONFIG = """global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
"""
PROMETHEUS_LOCAL = LocalImage(
    version="v3.3.0",
    source="go:github.com/prometheus/prometheus@v0.303.0 (v3.3.0) + debian:bookworm",
    debian=("ca-certificates",),
    tools=(("/bin/prometheus", "prometheus"), ("/bin/promtool", "promtool")),
    script=f"""
mkdir -p /etc/prometheus /prometheus
cat > /etc/prometheus/prometheus.yml <<'EOF'
{PROMETHEUS_DEFAULT_CONFIG}EOF
chown 65534:65534 /prometheus
""",
    user=65534,
    user_name="nobody",
    entrypoint=("/bin/prometheus",),
    cmd=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
    workdir="/prometheus",
    check="prometheus --version 2>&1 | grep -q 'version 3.3.0'\n"
    "promtool check config /etc/prometheus/prometheus.yml >/dev/null",
)
# Debian's Alertmanager 0.25 (upstream's image: v0.28) laid out as upstream's: /bin/alertmanager,
# the default config at /etc/alertmanager/alertmanager.yml, data in /alertmanager.
ALERTMANAGER_LOCAL = LocalImage(
    version="v0.25.0",
    source="debian:bookworm prometheus-alertmanager",
    debian=("prometheus-alertmanager",),
    script="""
ln -s /usr/bin/prometheus-alertmanager /usr/bin/alertmanager
mkdir -p /etc/alertmanager /alertmanager
cp /etc/prometheus/alertmanager.yml /etc/alertmanager/alertmanager.yml
chown 65534:65534 /alertmanager
""",
    user=65534,
    user_name="nobody",
    entrypoint=("/bin/alertmanager",),
    cmd=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
    workdir="/alertmanager",
    check="alertmanager --version 2>&1 | grep -q 'version 0.25'\n"
    "amtool check-config /etc/alertmanager/alertmanager.yml >/dev/null",
)


class RetentionSettings(ComponentSettings):
    storage_gi: int | None = Field(None, ge=1, description="Volume size in GiB (default: derived).")
    retention_days: int = Field(30, ge=1, le=3650, description="Days of data kept.")


class MetricsSettings(RetentionSettings):
    replicas: int | None = Field(
        None, ge=1, le=4, description="Replicas, each scraping every target (default: derived)."
    )


class LogsSettings(RetentionSettings):
    replicas: int | None = Field(
        None, ge=1, le=32, description="Replicas in the ring (default: derived)."
    )
    replication_factor: int | None = Field(
        None,
        ge=1,
        le=5,
        description="Copies the replicas keep of each stream, at most `replicas` "
        "(default: derived).",
    )


class AlertingSettings(ComponentSettings):
    replicas: int | None = Field(
        None, ge=1, le=5, description="Replicas in the gossip cluster (default: derived)."
    )


# Every active target of a job named after a component that runs for real must be up; the
# targets of simulated components (kwok pods run nothing) are counted, not judged.
PROMETHEUS_TARGETS_UP = r"""
set -eu
# Targets are scraped every 30 s: right after a deployment a new target is "unknown", or "down"
# from a scrape before its pod was ready. Judge once every real target has been scraped since,
# or after 120 s.
deadline=$(( $(date +%s) + 120 ))
while :; do
  curl -fsS --max-time 10 -o /tmp/active "http://$TARGET:$PORT_HTTP/api/v1/targets?state=active"
  jq -r '.data.activeTargets[] | "\(.labels.job) \(.health) \(.scrapeUrl)"' /tmp/active \
    > /tmp/targets
  up=0 down=0 other=0
  : > /tmp/not-up
  while read -r job health url; do
    case " $REAL_COMPONENTS " in
      *" $job "*)
        if [ "$health" = up ]; then up=$((up + 1))
        else down=$((down + 1)); echo "$job $health $url" >> /tmp/not-up; fi ;;
      *) other=$((other + 1)) ;;
    esac
  done < /tmp/targets
  if [ "$down" -eq 0 ] && [ "$up" -gt 0 ]; then break; fi
  [ "$(date +%s)" -ge "$deadline" ] && break
  sleep 5
done
cat /tmp/not-up
echo "$up targets of real components up, $down not up ($other targets of simulated ones)"
[ "$down" -eq 0 ] && [ "$up" -gt 0 ]
"""
PROMETHEUS_RULES_LOADED = """
set -eu
curl -fsS --max-time 10 -o /tmp/rules "http://$TARGET:$PORT_HTTP/api/v1/rules"
groups=$(jq '.data.groups | length' /tmp/rules)
echo "$groups rule groups loaded"
[ "$groups" -gt 0 ]
"""
READY = """
set -eu
curl -fsS --max-time 10 -o /tmp/ready "http://$TARGET:$PORT_HTTP/-/ready"
head -c 100 /tmp/ready
"""


# Grafana's own health (its database), then the provisioned Prometheus data source's health as
# Grafana's "Save & test" runs it: Grafana itself queries Prometheus. The admin user is the one
# the workload sets (GF_SECURITY_ADMIN_USER); the password comes from the environment only.
GRAFANA_HEALTH = r"""
set -eu
base="http://$TARGET:$PORT_HTTP"
curl -fsS --max-time 10 -o /tmp/health "$base/api/health"
database=$(jq -r '.database // "missing"' /tmp/health 2>/dev/null) || database="unreadable"
if [ "$database" != ok ]; then
  echo "/api/health: database $database"
  exit 1
fi
admin() {
  curl -sS --max-time 20 --user "admin:$GRAFANA_PASSWORD" -o "$1" -w '%{http_code}' "$base$2"
}
code=$(admin /tmp/source /api/datasources/name/Prometheus)
if [ "$code" != 200 ]; then
  echo "database ok, but the Prometheus data source: HTTP $code"
  exit 1
fi
uid=$(jq -r '.uid // empty' /tmp/source)
code=$(admin /tmp/check "/api/datasources/uid/$uid/health")
status=$(jq -r '.status // "none"' /tmp/check 2>/dev/null) || status="unreadable"
message=$(jq -r '.message // ""' /tmp/check 2>/dev/null | head -c 120) || message=""
if [ "$code" != 200 ] || [ "$status" != OK ]; then
  echo "database ok, but the Prometheus data source: HTTP $code, $status: $message"
  exit 1
fi
echo "database ok; Prometheus data source: $message"
"""
# A line carrying the run's marker pushed to stream {job="citykit-verify"}, then queried back
# (ingestion is asynchronous: retried for up to 10 s).
LOKI_ROUND_TRIP = r"""
set -eu
base="http://$TARGET:$PORT_HTTP"
jq -nc --arg ts "$(date +%s%N)" --arg line "citykit-verify marker $RUN" \
  '{streams: [{stream: {job: "citykit-verify"}, values: [[$ts, $line]]}]}' > /tmp/push
code=$(curl -sS --max-time 10 -o /tmp/pushed -w '%{http_code}' \
  -H "Content-Type: application/json" --data-binary @/tmp/push "$base/loki/api/v1/push")
if [ "$code" != 204 ]; then
  echo "push refused: HTTP $code $(head -c 160 /tmp/pushed)"
  exit 1
fi
: > /tmp/error
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if curl -fsS --max-time 10 -G -o /tmp/found "$base/loki/api/v1/query_range" \
      --data-urlencode "query={job=\"citykit-verify\"} |= \"$RUN\"" \
      --data-urlencode since=15m --data-urlencode limit=10 2>/tmp/error; then
    jq -r '.data.result[].values[][1]' /tmp/found > /tmp/lines 2>/dev/null || : > /tmp/lines
    if grep -qF "$RUN" /tmp/lines; then
      echo "pushed and read back on {job=\"citykit-verify\"} ($attempt attempt(s))"
      exit 0
    fi
  fi
  sleep 1
done
echo "the pushed line was not returned within 10 s $(head -c 160 /tmp/error)"
exit 1
"""


@component
class Prometheus(Component):
    name: ClassVar[str] = "prometheus"
    capability: ClassVar[str] = "metrics"
    layer = layers.OPERATIONS
    summary: ClassVar[str] = "Prometheus: scrapes every component's metrics; alert rules per layer."
    docs: ClassVar[str] = (
        "One scrape job per component that declares metrics (pods discovered in its namespace "
        "by its name label, relabelled with its layer and clause), and alert rules grouped by "
        "reference-model layer: a component down, a workload not ready. Pod discovery needs "
        "read access to pods cluster-wide, declared as API access. Where the `replicas` figure "
        "is above one (prod, staging) Prometheus runs as an HA pair: every replica scrapes "
        "every target and evaluates every rule on its own volume, tells its series apart by "
        "the `replica` external label (its pod's name), drops that label from the alerts it "
        "sends, and sends them to every Alertmanager replica, which deduplicate them; a "
        "single replica (dev, local) has no `replica` label."
    )
    requires = ("alerting",)
    real_run: ClassVar[str] = (
        "Debian's Prometheus (2.42) refused the generated configuration (`field "
        "kubernetes_sd_configs not found`): it is built without Kubernetes service discovery. "
        "The local image is Prometheus 3.3.0, the pinned version, built from its Go module. Its "
        "first start could not write its volume (`open /prometheus/queries.active: permission "
        "denied`): the kubelet had created the hostPath directory as root. The local cluster now "
        "prepares every volume before the kubelet mounts it (`citykit/cluster/volumes.py`)."
    )
    images = {"main": Image("docker.io/prom/prometheus", "v3.3.0")}
    local_images = {"main": PROMETHEUS_LOCAL}
    Settings = MetricsSettings
    sizing = (
        SizingRule(
            "replicas",
            Num(2),
            why="an HA pair, each replica scraping every target, so either one alone keeps "
            "the metrics and the alerts going",
            scales_with="replicas",
        ),
        SizingRule(
            "storage_gi",
            GiB(40),
            why="the retention period's metrics of every component scraped",
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("http", 9090),)
    resources = Resources(cpu_millis=500, memory_mi=2048)
    stateful: ClassVar[bool] = True
    metrics = Metrics("http")
    api_access = (ApiAccess(("",), ("pods", "endpoints", "services"), cluster_wide=True),)
    # The current value of every series (federation), enough to rebuild dashboards' state;
    # history beyond that lives in the time-series store.
    backup = Backup(
        CURL,
        'curl -fsS -G "http://$TARGET:9090/federate" --data-urlencode "match[]={job=~".+"}" '
        "-o /backup/federate-$(date +%Y%m%dT%H%M).txt",
    )
    checks = (
        Check("every scrape target of a real component is up", PROMETHEUS_TARGETS_UP, timeout=180),
        Check("the alert rules are loaded", PROMETHEUS_RULES_LOADED),
    )
    workload = Workload(
        Probe("http", "/-/ready"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/prometheus",
        config_path="/etc/prometheus",
        run_as=65534,
        args=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        plan = build.plan
        alerting = plan.by_capability("alerting")
        replicated = build.component.replicas > 1
        config = monitoring.prometheus_config(plan, alerting, replicated)
        values: dict[str, Any] = {
            "config": {
                "prometheus.yml": json.dumps(config, sort_keys=True, indent=1),
                "rules.yml": json.dumps(monitoring.alert_rules(plan), sort_keys=True, indent=1),
            }
        }
        if replicated:
            # The `replica` external label is the pod's name, read from the environment.
            values["extra_args"] = ["--enable-feature=expand-external-labels"]
            values["field_env"] = [{"name": monitoring.POD_NAME, "field": "metadata.name"}]
        return values


@component
class Alertmanager(Component):
    name: ClassVar[str] = "alertmanager"
    capability: ClassVar[str] = "alerting"
    layer = layers.OPERATIONS
    summary: ClassVar[str] = "Alertmanager: groups and routes alerts by reference-model layer."
    docs: ClassVar[str] = (
        "Alerts are grouped by layer and component and routed to the city's on-call receiver "
        "(a webhook the operations team configures). Where the `replicas` figure is above one "
        "(prod, staging) the replicas form a gossip cluster (a StatefulSet, peers by their "
        "stable names, port 9094): Prometheus sends every alert to every replica, the cluster "
        "shares silences and sends each notification once, and a restarted replica takes its "
        "state back from its peers. A single replica (dev, local) is a Deployment with "
        "clustering off."
    )
    images = {"main": Image("docker.io/prom/alertmanager", "v0.28.1")}
    local_images = {"main": ALERTMANAGER_LOCAL}
    Settings = AlertingSettings
    sizing = (
        SizingRule(
            "replicas",
            Num(2),
            why="a gossip cluster that shares silences and notifies once, so either replica "
            "alone keeps alerting",
            scales_with="replicas",
        ),
    )
    # Gossip among the replicas only (memberlist: TCP here; its UDP share passes the `-peers`
    # policies too, which name no port). A single replica does not listen on it.
    ports = (Port("http", 9093), Port("cluster", CLUSTER_PORT, exposed_to="self"))
    resources = Resources(cpu_millis=100, memory_mi=256)
    metrics = Metrics("http")
    checks = (Check("is ready", READY),)
    # Not a quorum: every replica notifies on its own once its peers are out of reach (at worst
    # a duplicate notification), so one replica down at a time is all the budget keeps.
    # /-/ready answers once the web server runs, not on the cluster's state: a replica whose
    # peers are unreachable still takes alerts, as it should.
    workload = Workload(
        Probe("http", "/-/ready"),
        replicas="replicas",
        peer_names=True,
        config_path="/etc/alertmanager",
        run_as=65534,
        args=(
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/tmp/alertmanager",
        ),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        config = {
            "route": {
                "receiver": "on-call",
                "group_by": ["layer", "component", "alertname"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            },
            "receivers": [{"name": "on-call"}],
        }
        values: dict[str, Any] = {
            "config": {"alertmanager.yml": json.dumps(config, sort_keys=True, indent=1)}
        }
        me = build.component
        if me.replicas == 1:
            # Alertmanager listens for gossip by default: a lone replica has no one to hear.
            values["extra_args"] = ["--cluster.listen-address="]
        else:
            # The pod's IP as its address in the cluster: Alertmanager would otherwise look for
            # a private (RFC 1918) address among its interfaces and refuse to start without one.
            values["extra_args"] = [
                f"--cluster.listen-address=0.0.0.0:{CLUSTER_PORT}",
                f"--cluster.advertise-address=$(POD_IP):{CLUSTER_PORT}",
                *(
                    f"--cluster.peer={pod_host(me.name, i, me.namespace)}:{CLUSTER_PORT}"
                    for i in range(me.replicas)
                ),
            ]
            values["field_env"] = [{"name": "POD_IP", "field": "status.podIP"}]
        return values


@component
class Grafana(Component):
    name: ClassVar[str] = "grafana"
    capability: ClassVar[str] = "dashboards"
    layer = layers.OPERATIONS
    summary: ClassVar[str] = "Grafana: a city dashboard with a row per reference-model layer."
    docs: ClassVar[str] = (
        "Provisioned with Prometheus as its data source and one dashboard whose rows are the "
        "reference-model layers and whose panels are the components (up / ready). The admin "
        "password is generated at deploy time."
    )
    requires = ("metrics",)
    images = {"main": Image("docker.io/grafana/grafana", "11.6.0")}
    ports = (Port("http", 3000),)
    resources = Resources(cpu_millis=200, memory_mi=512)
    secrets = (SecretSpec("admin", ("password",)),)
    metrics = Metrics("http")
    checks = (
        Check(
            "is healthy and its Prometheus data source answers",
            GRAFANA_HEALTH,
            (("GRAFANA_PASSWORD", "admin", "password"),),
        ),
    )
    workload = Workload(
        Probe("http", "/api/health"),
        run_as=472,
        config_path="/etc/grafana/provisioning/citykit",
        writable=("/tmp", "/var/lib/grafana"),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        plan = build.plan
        prometheus = plan.by_capability("metrics")
        return {
            "config": monitoring.grafana_provisioning(plan, prometheus),
            "env": {
                "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning/citykit",
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_AUTH_ANONYMOUS_ENABLED": "false",
            },
            "secret_env": [
                {"name": "GF_SECURITY_ADMIN_PASSWORD", "secret": "grafana-admin", "key": "password"}
            ],
        }


@component
class Loki(Component):
    name: ClassVar[str] = "loki"
    capability: ClassVar[str] = "logging"
    layer = layers.OPERATIONS
    summary: ClassVar[str] = "Loki: log store; audit streams kept 180 days (等保 security audit)."
    docs: ClassVar[str] = (
        "Loki in monolithic mode with a 180-day retention for audit streams (`stream=audit`) "
        "and 30 days for the rest. Where the `replicas` figure is one (dev, local) it is a "
        "single instance with its logs on its volume. Above one (prod, staging) it is scaled "
        "out as upstream documents: the replicas form a memberlist ring through their headless "
        "Service (gossip on port 7946, queries and pushes among them on gRPC port 9095, neither "
        "open to other components), keep `replication_factor` copies of what they ingest, and "
        "share chunks and index in the data lake (bucket `loki`, made by an init container "
        "with MinIO's client; the lake's keys are copied into Loki's namespace and read from "
        "the environment); the compactor, which applies retention, runs on one replica. A "
        "replicated Loki requires the data lake. Node-level log shipping needs a privileged "
        "agent, which restricted Pod Security forbids in the city's namespaces: `citykit "
        "compliance` lists it as a gap for the cluster operator."
    )
    replicated_requires = ("data-lake",)
    images = {"main": Image("docker.io/grafana/loki", "3.4.3"), "mc": MC}
    Settings = LogsSettings
    sizing = (
        SizingRule(
            "replicas",
            2 + city.daily_data_gb / GB_per_day(6_000),
            why="a pair, and a replica more for each share of logs a single Loki ingests, the "
            "logs being a fixed part of the city's data; rounded up, any city with data runs "
            "a third, so that writes keep a majority of their copies while a replica is down",
            scales_with="replicas",
            maximum=32,
        ),
        SizingRule(
            "replication_factor",
            choose(figure("replicas") < 3, 1, 3),
            why="copies of every stream kept by the replicas until it is flushed to the lake: a "
            "write needs a majority of its copies, so three survive a replica down, while two "
            "would stop writes whenever either is; a single copy below three replicas",
            not_above="replicas",
        ),
        SizingRule(
            "storage_gi",
            choose(
                figure("replicas") < 2,
                GiB(20) + city.daily_data_gb * days(180) / 300,
                GiB(20),
            ),
            why="a single instance keeps the logs, in proportion to the city's data, for the "
            "audit retention period; replicas keep only their write-ahead log and index "
            "caches, the logs being in the data lake",
            scales_with="size",
            unit="GiB",
        ),
    )
    # Among the replicas only: gRPC (pushes to the ingesters, queries, the scheduler's ring) and
    # memberlist gossip. A single instance does not gossip.
    ports = (
        Port("http", 3100),
        Port("grpc", 9095, exposed_to="self"),
        Port("memberlist", monitoring.MEMBERLIST_PORT, exposed_to="self"),
    )
    resources = Resources(cpu_millis=250, memory_mi=1024)
    # Only where replicated (a peer of the data lake): the lake's keys, for its bucket.
    secrets = (SecretSpec("lake", ("user", "password"), same_as="data-lake:root"),)
    stateful: ClassVar[bool] = True
    metrics = Metrics("http")
    # The audit stream is what must survive (等保 security audit): exported nightly.
    backup = Backup(
        CURL,
        'curl -fsS -G "http://$TARGET:3100/loki/api/v1/query_range" '
        "--data-urlencode 'query={stream=\"audit\"}' --data-urlencode limit=5000 "
        "--data-urlencode since=24h -o /backup/audit-$(date +%Y%m%dT%H%M).json",
    )
    checks = (Check("accepts a pushed log line and returns it", LOKI_ROUND_TRIP),)
    workload = Workload(
        Probe("http", "/ready"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/loki",
        config_path="/etc/loki",
        run_as=10001,
        args=("-config.file=/etc/loki/loki.yaml",),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        me = build.component
        lake = build.plan.by_capability("data-lake")
        config = monitoring.loki_config(me, lake)
        values: dict[str, Any] = {
            "config": {"loki.yaml": json.dumps(config, sort_keys=True, indent=1)}
        }
        if me.replicas == 1:
            return values
        keys = [
            {
                "name": monitoring.S3_ACCESS_KEY,
                "secret": secret_name(me.name, "lake"),
                "key": "user",
            },
            {
                "name": monitoring.S3_SECRET_KEY,
                "secret": secret_name(me.name, "lake"),
                "key": "password",
            },
        ]
        lake_host = config["common"]["storage"]["s3"]["endpoint"]
        values |= {
            "extra_args": ["-config.expand-env=true", "-target=all"],
            "field_env": [{"name": monitoring.POD_IP, "field": "status.podIP"}],
            "secret_env": keys,
            # Loki does not make its bucket. mc fails until the lake answers, and the init
            # container is run again (with back-off) until it has made it or found it made.
            "init_containers": [
                {
                    "name": "bucket",
                    "image": me.images["mc"],
                    "args": ["mb", "--ignore-existing", f"lake/{monitoring.LOKI_BUCKET}"],
                    "secret_env": keys,
                    "env": {
                        "MC_CONFIG_DIR": "/tmp/.mc",
                        "MC_HOST_lake": f"http://$({monitoring.S3_ACCESS_KEY}):"
                        f"$({monitoring.S3_SECRET_KEY})@{lake_host}",
                    },
                }
            ],
        }
        return values
