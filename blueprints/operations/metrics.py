"""Operations and maintenance system (7.6), metrics: Prometheus, whose scrape jobs and alert
rules are derived from the plan (citykit/plan/monitoring.py): every component that declares
`metrics` is scraped and alerted on, grouped by reference-model layer."""

from __future__ import annotations

import json
from typing import ClassVar

from citykit.blueprints.shared import CURL
from citykit.blueprints.shared import RetentionSettings
from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import ApiAccess
from citykit.contract.component import Backup
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import FieldEnv
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import Retention
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import GiB
from citykit.contract.sizing import Num
from citykit.objects.build import Build
from citykit.plan import monitoring

# Prometheus v3.3.0 itself (static binaries built by `citykit tools install` from its Go module),
# not Debian's 2.42, which is built without Kubernetes service discovery, the heart of the scrape
# configuration. Laid out as upstream's image: /bin/prometheus and /bin/promtool, a default
# config, the data directory /prometheus, nobody (65534), the same ENTRYPOINT and CMD. The web UI's
# assets are not built (npm), so /graph is empty; the API and /-/ready serve as upstream's.
HTTP_PORT = 9090  # the port Prometheus declares, which its default config and backup name too
PROMETHEUS_DEFAULT_CONFIG = f"""global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:{HTTP_PORT}"]
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


class MetricsSettings(RetentionSettings):
    replicas: int | None = Field(
        None, ge=1, le=4, description="Replicas, each scraping every target (default: derived)."
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
    ports = (Port("http", HTTP_PORT),)
    resources = Resources(cpu_millis=500, memory_mi=2048)
    stateful: ClassVar[bool] = True
    metrics = Metrics("http")
    api_access = (ApiAccess(("",), ("pods", "endpoints", "services"), cluster_wide=True),)
    # The current value of every series (federation), enough to rebuild dashboards' state;
    # history beyond that lives in the time-series store.
    backup = Backup(
        CURL,
        f'curl -fsS -G "http://$TARGET:{HTTP_PORT}/federate" '
        '--data-urlencode "match[]={job=~".+"}" '
        "-o /backup/federate-$(date +%Y%m%dT%H%M).txt",
        keep=Retention("federate-*.txt", 14),
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

    def values(self, build: Build) -> TemplateValues:
        plan = build.plan
        alerting = build.peer("alerting").planned
        replicated = build.component.replicas > 1
        config = monitoring.prometheus_config(plan, alerting, replicated)
        files = {
            "prometheus.yml": json.dumps(config, sort_keys=True, indent=1),
            "rules.yml": json.dumps(monitoring.alert_rules(plan), sort_keys=True, indent=1),
        }
        if not replicated:
            return TemplateValues(config=files)
        # The `replica` external label is the pod's name, read from the environment.
        return TemplateValues(
            config=files,
            extra_args=("--enable-feature=expand-external-labels",),
            field_env=(FieldEnv(monitoring.POD_NAME, "metadata.name"),),
        )
