"""Common-capability layer (7.3), message broker: RabbitMQ, for small cities."""

from __future__ import annotations

from typing import ClassVar

from citykit.blueprints.shared import CURL
from citykit.blueprints.shared import ReplicatedSettings
from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import Backup
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import Retention
from citykit.contract.component import SecretSpec
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import GiB
from citykit.contract.sizing import choose
from citykit.contract.sizing import city
from citykit.contract.sizing import msg_per_s
from citykit.conventions import pod_host
from citykit.objects.build import Build

# The ports RabbitMQ declares, which its configuration and the backup name too.
AMQP_PORT = 5672
MANAGEMENT_PORT = 15672
PROMETHEUS_PORT = 15692
CONFIG_PATH = "/etc/rabbitmq/city"


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
    ports = (
        Port("amqp", AMQP_PORT),
        Port("management", MANAGEMENT_PORT),
        Port("prometheus", PROMETHEUS_PORT),
    )
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
        CURL,
        f'curl -fsS -u "$USER:$PASSWORD" "http://$TARGET:{MANAGEMENT_PORT}/api/definitions" '
        "-o /backup/definitions-$(date +%Y%m%dT%H%M).json",
        (("USER", "credentials", "user"), ("PASSWORD", "credentials", "password")),
        keep=Retention("definitions-*.json", 14),
    )
    workload = Workload(
        Probe("amqp"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/var/lib/rabbitmq",
        config_path=CONFIG_PATH,
        writable=("/tmp", "/var/log/rabbitmq"),
        initial_delay=20,
    )

    def values(self, build: Build) -> TemplateValues:
        me = build.component
        config = [
            "log.console = true",
            "log.file = false",
            "loopback_users = none",
            f"listeners.tcp.default = {AMQP_PORT}",
            f"management.tcp.port = {MANAGEMENT_PORT}",
            f"prometheus.tcp.port = {PROMETHEUS_PORT}",
            "cluster_formation.peer_discovery_backend = classic_config",
            *(
                f"cluster_formation.classic_config.nodes.{i + 1} = "
                f"rabbit@{pod_host(me.name, i, me.namespace)}.cluster.local"
                for i in range(me.size("replicas"))
            ),
        ]
        return TemplateValues(
            config={
                "rabbitmq.conf": "\n".join(config) + "\n",
                "enabled_plugins": "[rabbitmq_management,rabbitmq_prometheus].\n",
            },
            env={
                "RABBITMQ_CONFIG_FILE": f"{CONFIG_PATH}/rabbitmq.conf",
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{CONFIG_PATH}/enabled_plugins",
                "RABBITMQ_USE_LONGNAME": "true",
            },
            secret_env=(
                self.secret_env("RABBITMQ_DEFAULT_USER", "credentials", "user"),
                self.secret_env("RABBITMQ_DEFAULT_PASS", "credentials", "password"),
                self.secret_env("RABBITMQ_ERLANG_COOKIE", "cluster", "cookie"),
            ),
        )
