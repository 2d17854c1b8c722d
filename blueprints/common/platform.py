"""Common-capability layer (7.3): message broker, API gateway, identity, event hub, digital twin,
GIS, AI serving and the NGSI-LD context broker option."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from citykit.contract import layers
from citykit.contract.component import (
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
from citykit.contract.sizing import GiB, KiB, Num, choose, city, days, figure, max_of, msg_per_s
from citykit.conventions import headless_host, pod_host, service_host
from citykit.plan.routes import gateway_routes


class ReplicatedSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=64, description="Replicas (default: derived).")


class BrokerSettings(ReplicatedSettings):
    partitions: int | None = Field(
        None, ge=1, le=10_000, description="Partitions per city topic (default: derived)."
    )
    storage_gi: int | None = Field(None, ge=1, description="Volume per broker in GiB.")


def _odd(value: int | None) -> int | None:
    if value is not None and value % 2 == 0:
        raise PydanticCustomError(
            "invalid",
            "{message}",
            {
                "message": f"{value} controller voters: a KRaft quorum needs an odd number",
                "hint": "1, 3, 5, 7 or 9; an even quorum survives no more failures than one "
                "voter fewer",
            },
        )
    return value


class KafkaSettings(BrokerSettings):
    controllers: Annotated[int | None, AfterValidator(_odd)] = Field(
        None,
        ge=1,
        le=9,
        description="KRaft controller voters, an odd number, at most the brokers: the first "
        "brokers are also controllers (default: derived).",
    )


def _host(build: Any, capability: str) -> str:
    peer = build.plan.by_capability(capability)
    return service_host(peer.name, peer.namespace) if peer else ""


# Kafka listens in plain text without authentication (KAFKA_LISTENERS, no SASL), so the probe
# bootstraps from the Service like any client of the city. The marker is produced with a fixed
# key (one partition) to topic `citykit-verify` (created on first use, as the brokers allow),
# then every partition is read from the beginning to its end. Success is judged by what is
# consumed, not by kcat's exit status.
KAFKA_ROUND_TRIP = r"""
set -eu
broker="$TARGET:$PORT_KAFKA"
topic=citykit-verify
printf '%s\n' "$RUN" > /tmp/message
timeout 30 kcat -P -b "$broker" -t "$topic" -k citykit-verify -X message.timeout.ms=20000 \
  < /tmp/message > /tmp/produce.log 2>&1 || echo "kcat -P exited $?" >> /tmp/produce.log
attempt=0
while :; do
  attempt=$((attempt + 1))
  timeout 15 kcat -C -b "$broker" -t "$topic" -o beginning -e -q -f '%s\n' \
    > /tmp/consumed 2>/tmp/consume.log || true
  if grep -qxF "$RUN" /tmp/consumed; then
    echo "produced and consumed $RUN on topic $topic ($attempt read(s))"
    exit 0
  fi
  [ "$attempt" -ge 3 ] && break
  sleep 2
done
echo "$RUN not consumed from $topic: $(tail -n 2 /tmp/produce.log /tmp/consume.log \
  | grep -v '^==>' | tr '\n' ' ' | head -c 240)"
exit 1
"""


# Each broker's identity comes from its pod's name (`kafka-<ordinal>`): its node id, the name it
# advertises to clients and whether it is one of the first CONTROLLERS ordinals, which are also
# the KRaft controller voters. The rest are brokers only, so they do not listen on the
# controller port (a broker that names a CONTROLLER listener would be refused without the
# `controller` role). The image's start script then turns the KAFKA_* variables into
# server.properties (and fills what is unset from its own defaults, node id 1 among them, so
# every variable that differs per node is set here); CITYKIT_* variables are not Kafka's.
KAFKA_START = r"""
set -eu
host=$(hostname)
id=${host##*-}
export KAFKA_NODE_ID="$id"
export KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://$host.$CITYKIT_PEERS:9092"
if [ "$id" -lt "$CITYKIT_CONTROLLERS" ]; then
  export KAFKA_PROCESS_ROLES=broker,controller
  export KAFKA_LISTENERS=PLAINTEXT://:9092,CONTROLLER://:9093
else
  export KAFKA_PROCESS_ROLES=broker
  export KAFKA_LISTENERS=PLAINTEXT://:9092
fi
exec /etc/kafka/docker/run
"""


def kafka_cluster_id(slug: str) -> str:
    """The KRaft cluster id every node formats its storage with: a base64url UUID (22
    characters, as `kafka-storage.sh random-uuid` prints), fixed per city so that renders are
    deterministic and a node that restarts joins the cluster it formatted for."""
    digest = hashlib.sha256(f"citykit/{slug}/kafka".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@component
class Kafka(Component):
    name: ClassVar[str] = "kafka"
    capability: ClassVar[str] = "message-broker"
    layer = layers.COMMON
    summary: ClassVar[str] = "Apache Kafka (KRaft, no ZooKeeper): the city event backbone."
    docs: ClassVar[str] = (
        "Kafka in KRaft mode. The controller quorum is a separate, odd figure (`controllers`): "
        "the first brokers of the StatefulSet (`kafka-0` …) are also its voters, the others "
        "are brokers only, so a large cluster keeps a small quorum that every metadata write "
        "waits for. A one- or two-broker city runs a single combined node as the voter. "
        "Partitions per city topic are derived from the peak message rate (about 1,000 msg/s "
        "per partition), brokers from partitions and message rate. Topics used by the "
        "applications are listed in `x.topics` and created by the applications' own start-up."
    )
    images = {"main": Image("docker.io/apache/kafka", "3.9.0")}
    Settings = KafkaSettings
    sizing = (
        SizingRule(
            "replicas",
            3 + city.peak_messages_per_second / msg_per_s(50_000),
            why="a quorum, then brokers for throughput",
            scales_with="replicas",
            maximum=64,
        ),
        SizingRule(
            "controllers",
            choose(figure("replicas") < 3, 1, choose(figure("replicas") < 10, 3, 5)),
            why="an odd KRaft quorum among the first brokers: a single voter until there are "
            "brokers for a quorum, then three, which survive a loss, and five in a large "
            "cluster, which survive a drain and a failure at once; no more, as every voter "
            "acknowledges each metadata write",
            not_above="replicas",
        ),
        SizingRule(
            "partitions",
            max_of(6, city.peak_messages_per_second / msg_per_s(1_000)),
            maximum=10_000,
        ),
        SizingRule(
            "storage_gi",
            city.peak_messages_per_second * days(7) * KiB(1) * 3 / figure("replicas") + GiB(20),
            why="the retention window of peak traffic, replicated, shared by the brokers",
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("kafka", 9092), Port("controller", 9093))
    resources = Resources(cpu_millis=1000, memory_mi=2048)
    stateful: ClassVar[bool] = True
    quorum: ClassVar[bool] = True
    # Messages are replicated three ways; the backup keeps the topic layout and configuration
    # needed to rebuild the cluster (message data itself is replayed from the sources).
    backup = Backup(
        Image("docker.io/apache/kafka", "3.9.0"),
        '/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$TARGET:9092" --describe '
        "> /backup/topics-$(date +%Y%m%dT%H%M).txt",
    )
    checks = (Check("a message is carried end to end", KAFKA_ROUND_TRIP, timeout=150),)
    workload = Workload(
        Probe("kafka"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/var/lib/kafka/data",
        command=("/bin/sh", "-c", KAFKA_START),
        writable=("/tmp", "/opt/kafka/config", "/opt/kafka/logs"),
        initial_delay=20,
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        me = build.component
        replicas = me.size("replicas")
        peers = headless_host(me.name, me.namespace)
        voters = ",".join(
            f"{i}@{pod_host(me.name, i, me.namespace)}:9093" for i in range(me.size("controllers"))
        )
        copies = str(min(3, replicas))
        return {
            "env": {
                "CITYKIT_CONTROLLERS": str(me.size("controllers")),
                "CITYKIT_PEERS": peers,
                "CLUSTER_ID": kafka_cluster_id(build.plan.slug),
                "KAFKA_CONTROLLER_QUORUM_VOTERS": voters,
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
                "KAFKA_NUM_PARTITIONS": str(me.size("partitions")),
                "KAFKA_DEFAULT_REPLICATION_FACTOR": copies,
                # The image's defaults (one copy) would leave consumer offsets and transactions
                # on a single broker.
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": copies,
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": copies,
            }
        }


@component
class Nats(Component):
    name: ClassVar[str] = "nats"
    capability: ClassVar[str] = "message-broker"
    layer = layers.COMMON
    default: ClassVar[bool] = False
    summary: ClassVar[str] = "NATS with JetStream: a light event broker for small cities."
    docs: ClassVar[str] = (
        "NATS JetStream for cities whose message rate does not justify Kafka: one small "
        "StatefulSet, persistent streams, the same topic names."
    )
    images = {"main": Image("docker.io/library/nats", "2.10.26-alpine")}
    Settings = BrokerSettings
    sizing = (
        SizingRule(
            "replicas",
            Num(3),
            why="a JetStream quorum",
            scales_with="replicas",
            maximum=5,
        ),
        SizingRule(
            "partitions",
            Num(1),
            why="streams are not partitioned; kept for profile compatibility",
        ),
        SizingRule(
            "storage_gi",
            GiB(10) + GiB(1) * city.peak_messages_per_second / msg_per_s(1_000),
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("client", 4222), Port("cluster", 6222), Port("monitor", 8222))
    resources = Resources(cpu_millis=250, memory_mi=512)
    stateful: ClassVar[bool] = True
    quorum: ClassVar[bool] = True
    backup = Backup(
        Image("docker.io/natsio/nats-box", "0.17.0"),
        'nats --server "nats://$TARGET:4222" account backup /backup/latest --force',
    )
    workload = Workload(
        Probe("monitor", "/healthz"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/data",
        args=("--jetstream", "--store_dir", "/data", "--http_port", "8222"),
    )


class QueueBrokerSettings(ReplicatedSettings):
    storage_gi: int | None = Field(None, ge=1, description="Volume per broker in GiB.")


@component
class Rabbitmq(Component):
    name: ClassVar[str] = "rabbitmq"
    capability: ClassVar[str] = "message-broker"
    layer = layers.COMMON
    default: ClassVar[bool] = False
    summary: ClassVar[str] = "RabbitMQ: an AMQP message broker for small cities."
    docs: ClassVar[str] = (
        "RabbitMQ for cities whose message rate does not justify Kafka: one server below 5,000 "
        "msg/s at peak, a three-node cluster (quorum queues) above. Nodes find each other from "
        "the StatefulSet's stable names (classic peer discovery), share a generated Erlang "
        "cookie, and the administrator's credentials are generated at deploy time. Clients "
        "connect over AMQP (5672); the management API (15672) serves the definitions backup and "
        "the rabbitmq_prometheus plugin the metrics (15692)."
    )
    images = {"main": Image("docker.io/library/rabbitmq", "4.0.9-management-alpine")}
    Settings = QueueBrokerSettings
    sizing = (
        SizingRule(
            "replicas",
            choose(city.peak_messages_per_second < msg_per_s(5_000), 1, 3),
            why="a single server for a quiet city, else a quorum for quorum queues",
            scales_with="replicas",
            maximum=7,
        ),
        SizingRule(
            "storage_gi",
            GiB(10) + GiB(1) * city.peak_messages_per_second / msg_per_s(1_000),
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("amqp", 5672), Port("management", 15672), Port("prometheus", 15692))
    resources = Resources(cpu_millis=250, memory_mi=512)
    secrets = (
        SecretSpec("credentials", ("user", "password")),
        SecretSpec("cluster", ("cookie",)),
    )
    stateful: ClassVar[bool] = True
    quorum: ClassVar[bool] = True
    metrics = Metrics("prometheus")
    # Messages are transient; the backup keeps the definitions (users, vhosts, exchanges,
    # queues, bindings, policies) needed to rebuild the broker.
    backup = Backup(
        Image("docker.io/curlimages/curl", "8.13.0"),
        'curl -fsS -u "$USER:$PASSWORD" "http://$TARGET:15672/api/definitions" '
        "-o /backup/definitions-$(date +%Y%m%dT%H%M).json && "
        "ls -1t /backup/definitions-*.json | tail -n +15 | xargs -r rm --",
        (("USER", "credentials", "user"), ("PASSWORD", "credentials", "password")),
    )
    workload = Workload(
        Probe("amqp"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/var/lib/rabbitmq",
        config_path="/etc/rabbitmq/city",
        writable=("/tmp", "/var/log/rabbitmq"),
        initial_delay=20,
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        me = build.component
        config = [
            "log.console = true",
            "log.file = false",
            "loopback_users = none",
            "listeners.tcp.default = 5672",
            "management.tcp.port = 15672",
            "prometheus.tcp.port = 15692",
            "cluster_formation.peer_discovery_backend = classic_config",
            *(
                f"cluster_formation.classic_config.nodes.{i + 1} = "
                f"rabbit@{pod_host(me.name, i, me.namespace)}.cluster.local"
                for i in range(me.size("replicas"))
            ),
        ]
        return {
            "config": {
                "rabbitmq.conf": "\n".join(config) + "\n",
                "enabled_plugins": "[rabbitmq_management,rabbitmq_prometheus].\n",
            },
            "env": {
                "RABBITMQ_CONFIG_FILE": "/etc/rabbitmq/city/rabbitmq.conf",
                "RABBITMQ_ENABLED_PLUGINS_FILE": "/etc/rabbitmq/city/enabled_plugins",
                "RABBITMQ_USE_LONGNAME": "true",
            },
            "secret_env": [
                {"name": "RABBITMQ_DEFAULT_USER", "secret": "rabbitmq-credentials", "key": "user"},
                {
                    "name": "RABBITMQ_DEFAULT_PASS",
                    "secret": "rabbitmq-credentials",
                    "key": "password",
                },
                {"name": "RABBITMQ_ERLANG_COOKIE", "secret": "rabbitmq-cluster", "key": "cookie"},
            ],
        }


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

    def values(self, build: Any) -> Mapping[str, Any]:
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
            "plugin_attr": {"prometheus": {"export_addr": {"ip": "0.0.0.0", "port": 9091}}},
        }
        return {
            "config": {
                "apisix.yaml": json.dumps(apisix, sort_keys=True, indent=1) + "\n#END\n",
                "config.yaml": json.dumps(config, sort_keys=True, indent=1),
            },
            "routes": apisix["routes"],
        }


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

    def values(self, build: Any) -> Mapping[str, Any]:
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
        return {
            "config": {"kong.yml": yaml.safe_dump(declarative, sort_keys=True)},
            "env": {
                "KONG_DATABASE": "off",
                "KONG_DECLARATIVE_CONFIG": f"{KONG_CONFIG_PATH}/kong.yml",
                "KONG_PREFIX": KONG_PREFIX,
                "KONG_PROXY_LISTEN": "0.0.0.0:8000",
                "KONG_ADMIN_LISTEN": "127.0.0.1:8001",
                "KONG_ADMIN_GUI_LISTEN": "off",
                "KONG_STATUS_LISTEN": "0.0.0.0:8100",
                "KONG_PROXY_ACCESS_LOG": "/dev/stdout",
                "KONG_ADMIN_ACCESS_LOG": "/dev/stdout",
                "KONG_PROXY_ERROR_LOG": "/dev/stderr",
                "KONG_ADMIN_ERROR_LOG": "/dev/stderr",
                "KONG_ANONYMOUS_REPORTS": "off",
                # `auto` would start one worker per node CPU, beyond the pod's CPU and memory.
                "KONG_NGINX_WORKER_PROCESSES": "2",
            },
        }


def oidc_clients(build: Any) -> list[str]:
    return [p.name for p in build.plan.components if p.layer.key == "applications"]


# The realm imported at start is named after the city's slug (`values`: "realm": city.slug),
# which is CITY, so no extra variable is needed. The issuer's host is KC_HOSTNAME's (the public
# name), so only its path is judged.
KEYCLOAK_DISCOVERY = r"""
set -eu
realm="$CITY"
code=$(curl -sS --max-time 15 -o /tmp/discovery -w '%{http_code}' \
  "http://$TARGET:$PORT_HTTP/realms/$realm/.well-known/openid-configuration")
if [ "$code" != 200 ]; then
  echo "GET /realms/$realm/.well-known/openid-configuration: HTTP $code"
  exit 1
fi
issuer=$(jq -r '.issuer // "none"' /tmp/discovery 2>/dev/null) || issuer="unreadable"
if ! jq -e --arg realm "$realm" '.issuer | endswith("/realms/" + $realm)' /tmp/discovery \
    >/dev/null 2>&1; then
  echo "discovery document of realm $realm has issuer $issuer"
  exit 1
fi
echo "realm $realm discovery served, issuer $issuer"
"""


@component
class Keycloak(Component):
    name: ClassVar[str] = "keycloak"
    capability: ClassVar[str] = "identity"
    layer = layers.COMMON
    summary: ClassVar[str] = (
        "Keycloak: single sign-on for staff and citizens, one OIDC client per application."
    )
    docs: ClassVar[str] = (
        "Keycloak with its database in the relational store. A realm named after the city is "
        "imported at start; it has one OpenID Connect client per 7.4 application in the plan. "
        "The admin password is generated at deploy time."
    )
    requires = ("relational-db",)
    images = {"main": Image("quay.io/keycloak/keycloak", "26.1.4")}
    Settings = ReplicatedSettings
    sizing = (
        SizingRule(
            "replicas",
            2 + city.population / 1_000_000,
            why="a pair for availability, more as the city grows",
            scales_with="replicas",
            maximum=16,
        ),
    )
    ports = (Port("http", 8080), Port("management", 9000))
    resources = Resources(cpu_millis=500, memory_mi=1024)
    secrets = (
        SecretSpec("admin", ("password",)),
        SecretSpec("db", ("password",), same_as="relational-db:credentials"),
    )
    metrics = Metrics("management")
    checks = (Check("serves the city realm's OIDC discovery document", KEYCLOAK_DISCOVERY),)
    workload = Workload(
        Probe("management", "/health/ready"),
        liveness=Probe("management", "/health/live"),
        replicas="replicas",
        args=("start", "--import-realm", "--optimized"),
        config_path="/opt/keycloak/data/import",
        writable=("/tmp", "/opt/keycloak/data/tmp"),
        initial_delay=30,
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        city = build.plan.profile.city
        realm = {
            "realm": city.slug,
            "displayName": city.name,
            "enabled": True,
            "sslRequired": "external",
            "clients": [
                {
                    "clientId": name,
                    "protocol": "openid-connect",
                    "publicClient": False,
                    "standardFlowEnabled": True,
                    "redirectUris": [f"https://{build.plan.environment.domain}/{name}/*"],
                }
                for name in oidc_clients(build)
            ],
        }
        db = _host(build, "relational-db")
        return {
            "config": {"realm.json": json.dumps(realm, sort_keys=True, ensure_ascii=False)},
            "env": {
                "KC_DB": "postgres",
                "KC_DB_URL": f"jdbc:postgresql://{db}:5432/city",
                "KC_DB_USERNAME": "postgres",
                "KC_HEALTH_ENABLED": "true",
                "KC_METRICS_ENABLED": "true",
                "KC_HTTP_ENABLED": "true",
                "KC_HOSTNAME": f"sso.{build.plan.environment.domain}",
                "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            },
            "secret_env": [
                {
                    "name": "KC_BOOTSTRAP_ADMIN_PASSWORD",
                    "secret": "keycloak-admin",
                    "key": "password",
                },
                {"name": "KC_DB_PASSWORD", "secret": "keycloak-db", "key": "password"},
            ],
        }


# Node-RED from npm on Debian's nodejs 18 (node-red 4 needs node >= 18.5), started as the
# nodered/node-red image starts it: red.js with the user directory /data, where flows and
# settings live (the workload's writable volume), further arguments after it. npm is used for the
# install only, so the editor's palette manager cannot install nodes at run time.
NODE_RED_LOCAL = LocalImage(
    version="4.0.9",
    source="npm:node-red@4.0.9 + debian:bookworm nodejs",
    debian=("ca-certificates",),  # for flows that call HTTPS services
    npm=("node-red@4.0.9",),
    script="mkdir -p /data\nchown 10001:10001 /data\n",
    user_name="node-red",
    entrypoint=("/usr/bin/node", "/opt/app/node_modules/node-red/red.js", "--userDir", "/data"),
    env=(
        ("HOME", "/data"),
        ("NODE_PATH", "/opt/app/node_modules:/data/node_modules"),
        ("FLOWS", "flows.json"),
    ),
    workdir="/opt/app",
    check="node /opt/app/node_modules/node-red/red.js --help | grep -q 'Node-RED v4.0.9'",
)


@component
class NodeRed(Component):
    name: ClassVar[str] = "node-red"
    capability: ClassVar[str] = "event-hub"
    layer = layers.COMMON
    summary: ClassVar[str] = (
        "Event hub of the city intelligent hub: flows from broker events to actions."
    )
    docs: ClassVar[str] = (
        "Node-RED as the workflow / event hub slot: flows subscribe to the message broker's city "
        "topics and call application APIs through the gateway."
    )
    requires = ("message-broker",)
    real_run: ClassVar[str] = (
        "OOM-killed at start with a 51 MiB memory limit (a size factor of 0.1): Node.js needs "
        "more than that to load the palette. The `local` environment keeps dev's size factor."
    )
    images = {"main": Image("docker.io/nodered/node-red", "4.0.9")}
    local_images = {"main": NODE_RED_LOCAL}
    ports = (Port("http", 1880),)
    resources = Resources(cpu_millis=250, memory_mi=512)
    workload = Workload(Probe("http", "/"), writable=("/tmp", "/data"))
    checks = (
        Check(
            "the editor and its flows API answer",
            'set -eu\nbase="http://$TARGET:$PORT_HTTP"\n'
            'curl -fsS --max-time 10 -o /tmp/editor "$base/"\n'
            'grep -q "<title>Node-RED</title>" /tmp/editor\n'
            'curl -fsS --max-time 10 -H "Node-RED-API-Version: v2" "$base/flows" '
            "| jq -e .rev >/dev/null\n"
            'echo "editor served, flows API at revision $(curl -fsS --max-time 10 '
            '-H "Node-RED-API-Version: v2" "$base/flows" | jq -r .rev)"\n',
        ),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        return {"env": {"CITY_BROKER": _host(build, "message-broker")}}


@component
class Ditto(Component):
    name: ClassVar[str] = "ditto"
    capability: ClassVar[str] = "digital-twin"
    layer = layers.COMMON
    summary: ClassVar[str] = (
        "Eclipse Ditto: digital twins of city things, fed from the device broker."
    )
    docs: ClassVar[str] = (
        "The Eclipse Ditto gateway as the digital-twin slot: twins of devices and city assets, "
        "updated from the MQTT device broker and published to the message broker."
    )
    requires = ("message-broker", "device-broker")
    images = {"main": Image("docker.io/eclipse/ditto-gateway", "3.6.9")}
    ports = (Port("http", 8080),)
    resources = Resources(cpu_millis=500, memory_mi=1024)
    workload = Workload(Probe("http", "/alive"), initial_delay=30)

    def values(self, build: Any) -> Mapping[str, Any]:
        return {
            "env": {
                "CITY_BROKER": _host(build, "message-broker"),
                "CITY_DEVICE_BROKER": _host(build, "device-broker"),
            }
        }


@component
class Geoserver(Component):
    name: ClassVar[str] = "geoserver"
    capability: ClassVar[str] = "gis"
    layer = layers.COMMON
    summary: ClassVar[str] = "GeoServer: OGC map and feature services over PostGIS."
    docs: ClassVar[str] = (
        "GeoServer publishes the city's spatial layers (WMS/WFS/WMTS) from PostGIS for the "
        "operations centre and the digital twin."
    )
    requires = ("relational-db",)
    images = {"main": Image("docker.osgeo.org/geoserver", "2.26.2")}
    ports = (Port("http", 8080),)
    resources = Resources(cpu_millis=500, memory_mi=2048)
    workload = Workload(
        Probe("http", "/geoserver/web/"),
        writable=("/tmp", "/opt/geoserver_data"),
        initial_delay=30,
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        return {"env": {"POSTGRES_HOST": _host(build, "relational-db")}}


@component
class Ollama(Component):
    name: ClassVar[str] = "ollama"
    capability: ClassVar[str] = "ai-serving"
    layer = layers.COMMON
    summary: ClassVar[str] = "Model serving slot for city large models, on the GPU/NPU pool."
    docs: ClassVar[str] = (
        "An Ollama server on the GPU pool (tainted nodes; this component tolerates the taint "
        "and asks for one GPU per replica). Cities with their own serving stack replace it."
    )
    images = {"main": Image("docker.io/ollama/ollama", "0.6.5")}
    ports = (Port("http", 11434),)
    # Pulled models live in the /.ollama emptyDir: room for a few 7B-14B models (limit 4x).
    resources = Resources(cpu_millis=2000, memory_mi=8192, ephemeral_mi=8192)
    pool = "gpu"
    workload = Workload(Probe("http", "/"), writable=("/tmp", "/.ollama"))


@component
class OrionLd(Component):
    name: ClassVar[str] = "orion-ld"
    capability: ClassVar[str] = "context-broker"
    layer = layers.COMMON
    enabled_by_default: ClassVar[bool] = False
    summary: ClassVar[str] = "FIWARE Orion-LD: NGSI-LD context broker, for cities that use NGSI-LD."
    docs: ClassVar[str] = (
        "Off by default; switch it on with `layers.common.context-broker.enabled: true`. Orion-LD "
        "keeps its context in MongoDB-compatible storage provided by the operator."
    )
    images = {"main": Image("docker.io/fiware/orion-ld", "1.8.0")}
    ports = (Port("http", 1026),)
    resources = Resources(cpu_millis=250, memory_mi=512)
    workload = Workload(Probe("http", "/version"))
