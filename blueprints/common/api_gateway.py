"""Common-capability layer (7.3), API gateway: Apache APISIX by default, Kong as the option;
both route `/<application>/` from the plan's route table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from typing import ClassVar

import yaml
from citykit.blueprints.shared import ReplicatedSettings

from citykit.contract import layers
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import city
from citykit.objects.build import Build
from citykit.plan.routes import gateway_routes

# Both gateways pass the full path on (APISIX `uri: /<app>/*` without a rewrite, Kong
# `strip_path: false`), so `/<app>/` must be answered by the application itself under its
# prefix. ROUTES (`check_env`) lists the paths of `citykit.plan.routes.gateway_routes`; a route
# whose application does not run for real (REAL_COMPONENTS) is counted, not judged. A 404 that is
# the gateway's own ("no route") is told apart from the application's.
GATEWAY_ROUTES = r"""
set -eu
judged=0 failed=0 other=0
for path in $ROUTES; do
  app=${path#/}
  app=${app%/}
  case " $REAL_COMPONENTS " in
    *" $app "*) ;;
    *) other=$((other + 1)); continue ;;
  esac
  judged=$((judged + 1))
  attempt=0
  while :; do
    attempt=$((attempt + 1))
    code=$(curl -sS --max-time 10 -o /tmp/answer -w '%{http_code}' \
      "http://$TARGET:$PORT_HTTP$path" 2>/tmp/error) || code=000
    case $code in
      000 | 5??) [ "$attempt" -lt 3 ] && { sleep 2; continue; } ;;
    esac
    break
  done
  case $code in
    000)
      failed=$((failed + 1))
      echo "$path: no answer ($(head -c 100 /tmp/error))" ;;
    404)
      failed=$((failed + 1))
      if grep -qiE 'route not found|no route matched' /tmp/answer; then
        echo "$path: 404 from the gateway (no route)"
      else
        echo "$path: 404 from $app (it does not serve its prefix)"
      fi ;;
    5??)
      failed=$((failed + 1))
      echo "$path: HTTP $code" ;;
  esac
done
if [ "$judged" -eq 0 ]; then
  echo "no route to an application that runs for real ($other to simulated ones not judged)"
  exit 0
fi
echo "$((judged - failed)) of $judged routes answered by their application" \
  "($other to simulated applications not judged)"
[ "$failed" -eq 0 ]
"""


def gateway_check_env(plan: Any) -> dict[str, str]:
    """ROUTES for GATEWAY_ROUTES: the route table's paths, space-separated."""
    return {"ROUTES": " ".join(route.path for route in gateway_routes(plan))}


# Shared by every api-gateway implementation, so choosing one never changes the city's sizing.
GATEWAY_SIZING = (
    SizingRule(
        "replicas",
        2 + city.population / 500_000,
        why="a pair for availability, more as the city grows",
        scales_with="replicas",
        maximum=32,
    ),
)


@component
class Apisix(Component):
    name: ClassVar[str] = "apisix"
    capability: ClassVar[str] = "api-gateway"
    layer = layers.COMMON
    summary: ClassVar[str] = (
        "Apache APISIX API gateway (standalone mode, routes derived from the plan)."
    )
    docs: ClassVar[str] = (
        "APISIX in standalone (YAML) mode, so it needs no etcd: the route table is generated "
        "from the plan — every component port declared `exposed_to=gateway` (the 7.4 "
        "applications) gets a route `/<component>/*`. Identity (Keycloak) fronts the routes with "
        "OpenID Connect in the applications."
    )
    requires = ("identity",)
    images = {"main": Image("docker.io/apache/apisix", "3.11.0-debian")}
    Settings = ReplicatedSettings
    sizing = GATEWAY_SIZING
    ports = (
        Port("http", 9080, exposed_to="gateway"),
        Port("https", 9443, exposed_to="gateway"),
        Port("metrics", 9091),
    )
    resources = Resources(cpu_millis=500, memory_mi=512)
    metrics = Metrics("metrics", "/apisix/prometheus/metrics")
    checks = (Check("routes /<application>/ to the application", GATEWAY_ROUTES, timeout=240),)
    workload = Workload(
        Probe("http"),
        replicas="replicas",
        run_as=636,
        config_path="/usr/local/apisix/conf/cfg",
        writable=("/tmp", "/usr/local/apisix/logs", "/usr/local/apisix/conf"),
    )

    def check_env(self, plan: Any) -> Mapping[str, str]:
        return gateway_check_env(plan)

    def values(self, build: Build) -> TemplateValues:
        apisix = {
            "routes": [
                {
                    "uri": f"{route.path}*",
                    "name": route.name,
                    "upstream": {
                        "type": "roundrobin",
                        "scheme": "http",
                        "nodes": {f"{route.host}:{route.port.port}": 1},
                    },
                }
                for route in gateway_routes(build.plan)
            ]
        }
        config = {
            "deployment": {"role": "data_plane", "role_data_plane": {"config_provider": "yaml"}},
            "plugin_attr": {
                "prometheus": {"export_addr": {"ip": "0.0.0.0", "port": self.port("metrics")}}
            },
        }
        return TemplateValues(
            config={
                "apisix.yaml": json.dumps(apisix, sort_keys=True, indent=1) + "\n#END\n",
                "config.yaml": json.dumps(config, sort_keys=True, indent=1),
            },
            # Read by no template: the route table is in `apisix.yaml`.
            own={"routes": apisix["routes"]},
        )


KONG_PREFIX = "/kong_prefix"
KONG_CONFIG_PATH = "/kong/declarative"


@component
class Kong(Component):
    name: ClassVar[str] = "kong"
    capability: ClassVar[str] = "api-gateway"
    layer = layers.COMMON
    default: ClassVar[bool] = False
    summary: ClassVar[str] = (
        "Kong Gateway (open-source, DB-less declarative config, routes derived from the plan)."
    )
    docs: ClassVar[str] = (
        "Kong in DB-less mode, so it needs no database: the declarative configuration "
        "(`_format_version: 3.0`) is generated from the same plan-derived route table as "
        "APISIX's — every component port declared `exposed_to=gateway` gets a service and a "
        "route `/<component>/` (the full path is passed on). Choose it with "
        "`layers.common.api-gateway.implementation: kong`. The proxy listens on 8000 "
        "(`http`, first port, like every api-gateway implementation); the Admin API only on "
        "127.0.0.1:8001 inside the pod (Kong Manager is off); the status listener on 8100 "
        "serves `/status/ready` (readiness) and, with the global `prometheus` plugin, "
        "`/metrics`. The root filesystem stays read-only: Kong's prefix (`KONG_PREFIX`, "
        "generated nginx configuration, sockets, the DB-less cache) is a writable emptyDir. "
        "Identity: as with APISIX, the applications are the OpenID Connect clients of the city "
        "realm and the gateway only depends on Keycloak; gap: Kong's `openid-connect` plugin "
        "is Enterprise-only, so the open-source image cannot enforce OIDC at the gateway "
        "(cities that need it use Kong Enterprise or a plugin image of their own)."
    )
    requires = ("identity",)
    images = {"main": Image("docker.io/library/kong", "3.9.0")}
    Settings = ReplicatedSettings
    sizing = GATEWAY_SIZING
    ports = (Port("http", 8000, exposed_to="gateway"), Port("status", 8100))
    resources = Resources(cpu_millis=500, memory_mi=512)
    metrics = Metrics("status", "/metrics")
    checks = (Check("routes /<application>/ to the application", GATEWAY_ROUTES, timeout=240),)
    workload = Workload(
        Probe("status", "/status/ready"),
        liveness=Probe("status", "/status"),
        replicas="replicas",
        config_path=KONG_CONFIG_PATH,
        writable=("/tmp", KONG_PREFIX),
    )

    def check_env(self, plan: Any) -> Mapping[str, str]:
        return gateway_check_env(plan)

    def values(self, build: Build) -> TemplateValues:
        routes = gateway_routes(build.plan)
        declarative = {
            "_format_version": "3.0",
            "services": [
                {
                    "name": route.name,
                    "url": route.url,
                    "routes": [
                        {
                            "name": route.name,
                            "paths": [route.path],
                            "strip_path": False,
                        }
                    ],
                }
                for route in routes
            ],
            "plugins": [
                {
                    "name": "prometheus",
                    "config": {
                        "status_code_metrics": True,
                        "latency_metrics": True,
                        "bandwidth_metrics": True,
                        "upstream_health_metrics": True,
                    },
                }
            ],
        }
        return TemplateValues(
            config={"kong.yml": yaml.safe_dump(declarative, sort_keys=True)},
            env={
                "KONG_DATABASE": "off",
                "KONG_DECLARATIVE_CONFIG": f"{KONG_CONFIG_PATH}/kong.yml",
                "KONG_PREFIX": KONG_PREFIX,
                "KONG_PROXY_LISTEN": f"0.0.0.0:{self.port('http')}",
                "KONG_ADMIN_LISTEN": "127.0.0.1:8001",
                "KONG_ADMIN_GUI_LISTEN": "off",
                "KONG_STATUS_LISTEN": f"0.0.0.0:{self.port('status')}",
                "KONG_PROXY_ACCESS_LOG": "/dev/stdout",
                "KONG_ADMIN_ACCESS_LOG": "/dev/stdout",
                "KONG_PROXY_ERROR_LOG": "/dev/stderr",
                "KONG_ADMIN_ERROR_LOG": "/dev/stderr",
                "KONG_ANONYMOUS_REPORTS": "off",
                # `auto` would start one worker per node CPU, beyond the pod's CPU and memory.
                "KONG_NGINX_WORKER_PROCESSES": "2",
            },
        )
