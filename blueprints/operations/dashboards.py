"""Operations and maintenance system (7.6), dashboards: Grafana, with a city dashboard derived
from the plan (a row per reference-model layer)."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SecretSpec
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.objects.build import Build
from citykit.plan import monitoring

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


PROVISIONING = "/etc/grafana/provisioning/citykit"


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
        config_path=PROVISIONING,
        writable=("/tmp", "/var/lib/grafana"),
    )

    def values(self, build: Build) -> TemplateValues:
        prometheus = build.peer("metrics").url("http")
        return TemplateValues(
            config=monitoring.grafana_provisioning(build.plan, prometheus),
            env={
                "GF_PATHS_PROVISIONING": PROVISIONING,
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_AUTH_ANONYMOUS_ENABLED": "false",
            },
            secret_env=(self.secret_env("GF_SECURITY_ADMIN_PASSWORD", "admin", "password"),),
        )
